package nodevm_test

import (
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/nodevm"
)

// serve is a spec of a serving container of the default class.
func (s setup) serve(id string) runtime.InstanceSpec {
	return runtime.InstanceSpec{ID: id, Workload: id, Tier: v1alpha1.TierContainer, Image: s.image, Command: script.Serve(600)}
}

// TestRightAfterStart: a Stop or an Exec at once after a Start finds the
// container. Both share one node VM: each boot costs a minute or more under
// TCG on a busy host.
func TestRightAfterStart(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	t.Run("stop", func(t *testing.T) { testStopRightAfterStart(t, s, d) })
	t.Run("exec", func(t *testing.T) { testExecRightAfterStart(t, s, d) })
}

// testStopRightAfterStart: Start returns while crun in the guest is still
// creating the container (seconds under TCG); a Stop at once waits for it
// to exist and kills it, rather than fail because crun does not know it yet.
func testStopRightAfterStart(t *testing.T, s setup, d *nodevm.Driver) {
	for _, id := range []string{"first", "second"} { // the first boots the node VM
		if _, err := d.Start(t.Context(), s.serve(id)); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		if err := d.Stop(t.Context(), id, 0); err != nil {
			t.Errorf("stop %s right after its start: %v", id, err)
		}
		st, err := d.Status(t.Context(), id)
		if err != nil || st.State != runtime.StateExited || st.ExitCode != 137 {
			t.Errorf("status of %s after its stop: %+v, %v; want exited with 137 (SIGKILL)", id, st, err)
		}
		if err := d.Remove(t.Context(), id); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	}
}

// testExecRightAfterStart: once Start returns, the container exists in its
// runtime, so an exec at once runs in it (crun's and runsc's create take
// seconds under TCG; before, Start returned first and the exec failed with
// "container does not exist" or "loading container: file does not exist").
func testExecRightAfterStart(t *testing.T, s setup, d *nodevm.Driver) {
	for _, tier := range []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox} {
		spec := s.serve("exec-" + string(tier))
		spec.Tier = tier
		if _, err := d.Start(t.Context(), spec); err != nil {
			t.Fatalf("start %s: %v", spec.ID, err)
		}
		var out, errOut strings.Builder
		code, err := d.Exec(t.Context(), spec.ID, []string{"echo", "here"}, nil, &out, &errOut)
		if err != nil || code != 0 || out.String() != "here\n" {
			t.Errorf("exec in %s right after its start: code %d, stdout %q, stderr %q, %v; want 0 and \"here\\n\"",
				spec.ID, code, out.String(), errOut.String(), err)
		}
		if err := d.Stop(t.Context(), spec.ID, 0); err != nil {
			t.Errorf("stop %s: %v", spec.ID, err)
		}
		if err := d.Remove(t.Context(), spec.ID); err != nil {
			t.Errorf("remove %s: %v", spec.ID, err)
		}
	}
}
