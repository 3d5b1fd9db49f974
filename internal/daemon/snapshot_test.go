package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

const keeper = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: keeper}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "[ -e /data/state ] || echo v1 > /data/state; trap 'exit 0' TERM; sleep 100000 & wait"]
  volumes: [{name: data, mountPath: /data}]
  backup:
    hooks:
      pre: ["sh", "-c", "echo flushed > /data/flushed"]
      post: ["sh", "-c", "echo resumed > /data/flushed"]
`

// exitCode is the exit status of a failed strata command (0 when err is nil).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestSnapshotContainerVolumes: a container's volume and root filesystem are snapshotted
// between its hooks (application-consistent), changed, restored (the instance restarts on
// the saved data),
// and the snapshot deleted with its files; bad requests get clear errors.
func TestSnapshotContainerVolumes(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "keeper.yaml")
	if err := os.WriteFile(file, []byte(keeper), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	e.eventually("keeper runs", 60*time.Second, func() error { _, err := e.running("keeper", 1); return err })
	cat := func(path string) string {
		out, _ := e.strata("exec", "keeper", "--", "cat", path)
		return strings.TrimSpace(out)
	}
	e.eventually("keeper wrote its state", 10*time.Second, func() error {
		if got := cat("/data/state"); got != "v1" {
			return fmt.Errorf("state %q", got)
		}
		return nil
	})

	// A change to the root filesystem, outside every volume.
	e.must("exec", "keeper", "--", "sh", "-c", "echo root-v1 > /etc/app.conf")

	var snap v1alpha1.Snapshot
	if err := json.Unmarshal([]byte(e.must("snapshot", "create", "keeper", "--name", "s1", "-o", "json")), &snap); err != nil {
		t.Fatal(err)
	}
	st := snap.Status
	if st == nil || st.Consistency != "application" || len(st.Slots) != 1 || st.Slots[0].Instance != "keeper-0" ||
		strings.Join(st.Slots[0].Files, ",") != "slot-0/rootfs.tar,slot-0/volumes/data.tar" || st.Tier != v1alpha1.TierContainer {
		t.Fatalf("snapshot %+v, want one application-consistent slot with the root filesystem and the data volume", st)
	}
	if got := cat("/data/flushed"); got != "resumed" {
		t.Errorf("the post hook did not run: /data/flushed holds %q; events:\n%s", got, e.must("events"))
	}
	if _, err := os.Stat(filepath.Join(e.dir, "data", "snapshots", "keeper", "s1", "slot-0", "volumes", "data.tar")); err != nil {
		t.Errorf("the snapshot's archive: %v", err)
	}

	// Change the data, then restore: the instance comes back on the saved volume.
	e.must("exec", "keeper", "--", "sh", "-c", "echo v2 > /data/state; echo root-v2 > /etc/app.conf; echo new > /etc/extra")
	before := e.workload("keeper").Status.Instances[0].PID
	out := e.must("snapshot", "restore", "keeper", "s1")
	if !strings.Contains(out, "restored s1 of keeper") {
		t.Errorf("restore said %q", out)
	}
	e.eventually("keeper runs again", 60*time.Second, func() error {
		pids, err := e.running("keeper", 1)
		if err == nil && pids["keeper-0"] == before {
			return fmt.Errorf("still the instance from before the restore (pid %d)", before)
		}
		return err
	})
	if got := cat("/data/state"); got != "v1" {
		t.Errorf("after the restore /data/state holds %q, want v1", got)
	}
	if got := cat("/etc/app.conf"); got != "root-v1" {
		t.Errorf("after the restore /etc/app.conf holds %q, want the snapshot's root-v1", got)
	}
	if got := cat("/etc/extra"); got != "" {
		t.Errorf("after the restore /etc/extra holds %q: a file made after the snapshot came back", got)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "data", "rootfs", "keeper")); !os.IsNotExist(err) {
		t.Errorf("the restored layer was not removed after the start: %v", err)
	}
	// The snapshot was taken between the hooks: it holds the pre hook's mark, not the post's.
	if got := cat("/data/flushed"); got != "flushed" {
		t.Errorf("after the restore /data/flushed holds %q, want the pre hook's mark", got)
	}
	if w := e.workload("keeper"); w.Metadata.Annotations[v1alpha1.AnnotationHold] != "" {
		t.Errorf("the workload is still held after the restore: %v", w.Metadata.Annotations)
	}

	// Clear errors.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"snapshot", "create", "keeper", "--name", "s1"}, 1, "already exists"},
		{[]string{"snapshot", "create", "keeper", "--memory"}, 2, "--memory is for VMs"},
		{[]string{"snapshot", "create", "nope"}, 1, "not found"},
		{[]string{"snapshot", "create", "keeper", "--name", "Bad_Name"}, 2, "DNS label"},
		{[]string{"snapshot", "restore", "keeper", "nope"}, 1, "not found"},
	} {
		_, err := e.strata(tc.args...)
		if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("strata %v: exit %d, %v; want exit %d saying %q", tc.args, exitCode(err), err, tc.code, tc.msg)
		}
	}

	var list struct {
		Items []v1alpha1.Snapshot `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.must("snapshot", "list", "keeper", "-o", "json")), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("snapshot list: %+v %v, want s1", list.Items, err)
	}
	e.must("snapshot", "delete", "keeper", "s1")
	if err := json.Unmarshal([]byte(e.must("snapshot", "list", "-o", "json")), &list); err != nil || len(list.Items) != 0 {
		t.Errorf("after delete: %+v %v", list.Items, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "data", "snapshots", "keeper", "s1")); !os.IsNotExist(err) {
		t.Errorf("the snapshot's files are still there: %v", err)
	}
}

const counterVM = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: counter}
spec:
  isolation: vm
  image: localhost/busybox:1
  command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
  resources: {memory: 192Mi}
`

var tickRE = regexp.MustCompile(`tick (\d+)`)

// ticks returns the counter values in text, in order.
func ticks(text string) []int {
	var out []int
	for _, m := range tickRE.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// TestSnapshotVMMemory: a running VM's snapshot with memory, restored later, resumes
// the guest's process where it was (its in-memory counter goes on from the snapshot's
// value); a snapshot without memory of an image VM cannot be restored, and says why.
func TestSnapshotVMMemory(t *testing.T) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	e.extraArgs = []string{"--guest-kernel-dir", kdir}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "counter.yaml")
	if err := os.WriteFile(file, []byte(counterVM), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	e.eventually("the counter VM counts to 5", 120*time.Second, func() error {
		out, err := e.strata("logs", "counter")
		if err != nil {
			return err
		}
		if n := ticks(out); len(n) == 0 || n[len(n)-1] < 5 {
			return fmt.Errorf("ticks so far: %d", len(n))
		}
		return nil
	})
	var snap v1alpha1.Snapshot
	begin := time.Now()
	if err := json.Unmarshal([]byte(e.must("snapshot", "create", "counter", "--name", "live", "--memory", "-o", "json")), &snap); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot with memory took %v", time.Since(begin).Round(time.Millisecond))
	if st := snap.Status; st == nil || len(st.Slots) != 1 || strings.Join(st.Slots[0].Files, ",") != "slot-0/disk.qcow2,slot-0/memory.state" {
		t.Fatalf("snapshot %+v, want the disk and memory of slot 0", snap.Status)
	}
	atSnap := ticks(e.must("logs", "counter"))
	last := atSnap[len(atSnap)-1]
	e.eventually("the counter to move on by 10", 60*time.Second, func() error {
		if n := ticks(e.must("logs", "counter")); n[len(n)-1] < last+10 {
			return fmt.Errorf("at %d", n[len(n)-1])
		}
		return nil
	})

	// A disk-only snapshot of an image VM cannot come back: its root disk starts anew.
	e.must("snapshot", "create", "counter", "--name", "cold")
	_, err := e.strata("snapshot", "restore", "counter", "cold")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "only a snapshot taken with --memory") {
		t.Errorf("restoring a disk-only snapshot of an image VM: exit %d, %v; want exit 2 saying why", exitCode(err), err)
	}

	before := len(ticks(e.must("logs", "counter")))
	begin = time.Now()
	e.must("snapshot", "restore", "counter", "live")
	t.Logf("restore with memory took %v", time.Since(begin).Round(time.Millisecond))
	// The old guest may print a few more ticks before it is replaced; then the counter
	// drops back to the snapshot's value and goes on from there.
	e.eventually("the counter to go on from the snapshot's value", 60*time.Second, func() error {
		n := ticks(e.must("logs", "counter"))
		for i := max(before, 1); i+2 < len(n); i++ {
			if n[i] < n[i-1] {
				if n[i] > last+2 || n[i+1] != n[i]+1 || n[i+2] != n[i]+2 {
					return fmt.Errorf("after the restore the counter went %v; the snapshot was taken at %d", n[i:i+3], last)
				}
				return nil
			}
		}
		return fmt.Errorf("no drop back in the counter yet (%d ticks since the restore)", len(n)-before)
	})
	if w := e.workload("counter"); w.Status.Instances[0].Restarts != 0 {
		t.Errorf("the restore counted as a restart of the slot: %+v", w.Status.Instances[0])
	}
}
