package nodevm_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// TestDriverSuite runs the shared driver suite with containers (crun) in a
// node VM under the machine's accelerator (TCG here). The driver serves the
// container tier alone.
func TestDriverSuite(t *testing.T) {
	s := needNodeVMs(t)
	s.tiers = []v1alpha1.Tier{v1alpha1.TierContainer}
	s.removeNodeVMs(t)
	s.bootFirst(t)
	drivertest.Run(t, func(t *testing.T) runtime.Driver { return s.driver(t) }, drivertest.Options{
		Tier: v1alpha1.TierContainer, Image: s.image, Prefix: "n", Timeout: 3 * time.Minute,
		Kill: s.kill(guest.CrunPath, "/run/crun", func(id string) string { return id }),
		// Under TCG a crun start costs the node VM most of a CPU-second.
		MaxBoots: 2, BootTime: 2 * time.Second,
	})
}

// bootFirst boots the node VM of the suite's instances (the default class)
// and plugs the test image in, before the suite starts its instances in
// parallel. Otherwise the suite's first start boots it, and the starts the
// suite spreads out (MaxBoots in BootTime) queue behind that boot and reach
// the node VM all at once, more runtime starts than two emulated cores
// carry.
func (s setup) bootFirst(t *testing.T) {
	t.Helper()
	began := time.Now()
	s.startAndRemove(t, s.driver(t), "first")
	t.Logf("node VM up, and a first container run, in %v", time.Since(began).Round(time.Millisecond))
}

// kill returns the suite's Kill: SIGKILL to the container's main process
// from outside the driver, by the runtime in the node VM (the runtime's
// binary, its state directory in the guest), as an operator in the guest
// would (runtimeID: the ID the runtime knows the instance by).
func (s setup) kill(bin, root string, runtimeID func(string) string) func(id string, _ int) error {
	return func(id string, _ int) error {
		var out bytes.Buffer
		code, err := s.q.Exec(context.Background(), nodevm.VMID(nodevm.DefaultClass), []string{bin, "--root", root, "kill", runtimeID(id), "KILL"}, nil, &out, &out)
		if err == nil && code != 0 {
			err = fmt.Errorf("%s kill %s: exit code %d: %s", bin, id, code, out.String())
		}
		return err
	}
}

// TestDriverSuiteSandbox runs the shared driver suite with sandboxes
// (runsc) in a node VM.
func TestDriverSuiteSandbox(t *testing.T) {
	s := needNodeVMs(t)
	if s.tools.Runsc == "" {
		testenv.Skipf(t, "skipping: no runsc at /opt/strata/bin/runsc; make host-setup builds it")
	}
	s.removeNodeVMs(t)
	s.bootFirst(t)
	drivertest.Run(t, func(t *testing.T) runtime.Driver { return s.driver(t) }, drivertest.Options{
		Tier: v1alpha1.TierSandbox, Image: s.image, Prefix: "s", Timeout: 3 * time.Minute,
		Kill: s.kill(guest.RunscPath, "/run/runsc", guest.RunscID),
		// A runsc start costs the node VM more than a crun start.
		MaxBoots: 1, BootTime: 2 * time.Second,
	})
}

// TestClasses: instances of two isolation classes run in two node VMs, two
// instances of one class in the same one (the same guest kernel: its boot
// ID); the sandbox-tier instance runs under runsc.
func TestClasses(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	start := func(id, class string, tier v1alpha1.Tier) runtime.Status {
		t.Helper()
		spec := runtime.InstanceSpec{
			ID: id, Workload: id, Tier: tier, Image: s.image,
			Command: script.Serve(600), Labels: map[string]string{nodevm.LabelIsolationClass: class},
		}
		t.Cleanup(func() {
			_ = d.Stop(context.Background(), id, 0)
			_ = d.Remove(context.Background(), id)
		})
		st, err := d.Start(t.Context(), spec)
		if err != nil {
			t.Fatalf("start %s of class %s: %v", id, class, err)
		}
		return st
	}
	sh := func(id, script string) string {
		t.Helper()
		var out bytes.Buffer
		if code, err := d.Exec(t.Context(), id, []string{"sh", "-c", script}, nil, &out, nil); err != nil || code != 0 {
			t.Fatalf("exec in %s: %d, %v", id, code, err)
		}
		return strings.TrimSpace(out.String())
	}
	a1 := start("a1", "shop/internal/internal", v1alpha1.TierContainer)
	b := start("b", "acme/untrusted/regulated", v1alpha1.TierSandbox)
	a2 := start("a2", "shop/internal/internal", v1alpha1.TierContainer)
	if a1.PID == b.PID || a1.PID != a2.PID {
		t.Errorf("node VM processes: a1 %d, a2 %d, b %d; want a1 and a2 in one, b in another", a1.PID, a2.PID, b.PID)
	}
	// a1 and a2 run on one guest kernel.
	const bootID = "cat /proc/sys/kernel/random/boot_id"
	if idA1, idA2 := sh("a1", bootID), sh("a2", bootID); idA1 != idA2 || idA1 == "" {
		t.Errorf("guest kernels' boot IDs: a1 %s, a2 %s; want one", idA1, idA2)
	}
	// The sandbox runs under gVisor (runsc), the container under crun.
	const kernel = "dmesg 2>/dev/null | head -n 3; true"
	if out := sh("b", kernel); !strings.Contains(out, "gVisor") {
		t.Errorf("sandbox b: dmesg %q, want gVisor's", out)
	}
	if out := sh("a1", kernel); strings.Contains(out, "gVisor") {
		t.Errorf("container a1: dmesg %q is gVisor's", out)
	}
	list, err := s.q.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var classes []string
	for _, st := range list {
		if st.Labels[qemu.LabelNodeVM] == "true" {
			classes = append(classes, st.Labels[nodevm.LabelClass])
			if st.ID != nodevm.VMID(st.Labels[nodevm.LabelClass]) {
				t.Errorf("node VM %s carries class %q, whose node VM is %s", st.ID, st.Labels[nodevm.LabelClass], nodevm.VMID(st.Labels[nodevm.LabelClass]))
			}
		}
	}
	slices.Sort(classes)
	if want := []string{"acme/untrusted/regulated", "shop/internal/internal"}; !slices.Equal(classes, want) {
		t.Errorf("node VMs of classes %q, want %q", classes, want)
	}
}
