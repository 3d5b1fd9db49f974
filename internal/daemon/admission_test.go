package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// many asks for more CPU than the host has: 100 replicas of 10m per CPU, and 100 more.
const many = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: many}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  replicas: %d
  resources: {cpu: 10m, memory: 8Mi}
`

// TestDeleteDuringStartLeavesNothing reproduces an attacker's test against the real daemon
// (containerd, runc, network namespaces): a workload of many replicas is admitted only
// with --force, deleted at once while its instances start, and must leave no container,
// snapshot, network namespace, veth or address behind, and start no more instances after
// the delete than were under way.
func TestDeleteDuringStartLeavesNothing(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "many.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(many, 100*goruntime.NumCPU()+100)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := e.strata("apply", "-f", file)
	if err == nil || !strings.Contains(err.Error(), "spec.replicas") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("apply of more replicas than the host has CPU for: %q, %v; want a refusal naming spec.replicas and --force", out, err)
	}
	e.must("apply", "-f", file, "--force")
	e.eventually("the first instance starts", 120*time.Second, func() error {
		if started, _ := e.startedOf("many", time.Time{}); started == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	e.must("delete", "workload", "many", "--force")
	deletedAt := time.Now()

	ctrSock := filepath.Join(e.dir, "data", "containerd", "containerd.sock")
	e.eventually("nothing of the workload is left", 120*time.Second, func() error {
		var left []string
		if out, err := run("ctr", "-a", ctrSock, "-n", "strata", "containers", "ls", "-q"); err != nil || strings.TrimSpace(out) != "" {
			left = append(left, fmt.Sprintf("containers %q %v", out, err))
		}
		if out, err := run("ctr", "-a", ctrSock, "-n", "strata", "snapshots", "ls"); err != nil || strings.Contains(out, "many-") {
			left = append(left, fmt.Sprintf("snapshots %q %v", out, err))
		}
		if ents, _ := os.ReadDir(filepath.Join(e.dir, "netns")); len(ents) > 0 {
			left = append(left, fmt.Sprintf("%d network namespaces", len(ents)))
		}
		if out, err := run("ip", "-n", e.netns, "-o", "link", "show", "type", "veth"); err != nil || strings.TrimSpace(out) != "" {
			left = append(left, fmt.Sprintf("veths %q %v", out, err))
		}
		if n, err := attachments(filepath.Join(e.dir, "data", "network", "network.json")); err != nil || n > 0 {
			left = append(left, fmt.Sprintf("%d addresses recorded (%v)", n, err))
		}
		if len(left) > 0 {
			return fmt.Errorf("left: %s", strings.Join(left, "; "))
		}
		return nil
	})

	// The delete stopped the starting: at most the instance under way started after it.
	started, late := e.startedOf("many", deletedAt.Add(time.Second))
	t.Logf("%d instances started, %d of them more than a second after the delete", started, late)
	if late > 1 {
		t.Errorf("%d instances started more than a second after the workload was deleted", late)
	}
	if _, err := e.strata("get", "workload", "many"); err == nil {
		t.Error("the workload is still there")
	}
}

// startedOf counts the Started events of a workload's instances, and those after after.
func (e *e2e) startedOf(workload string, after time.Time) (started, late int) {
	e.t.Helper()
	// -o json prints one event per line.
	for _, line := range strings.Split(strings.TrimSpace(e.must("events", "-o", "json")), "\n") {
		var ev struct {
			Reason   string    `json:"reason"`
			Instance string    `json:"instance"`
			Time     time.Time `json:"time"`
		}
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			e.t.Fatalf("event %q: %v", line, err)
		}
		if ev.Reason == "Started" && strings.HasPrefix(ev.Instance, workload+"-") {
			started++
			if !after.IsZero() && ev.Time.After(after) {
				late++
			}
		}
	}
	return started, late
}

// attachments counts the instance attachments the network manager has on record.
func attachments(stateFile string) (int, error) {
	data, err := os.ReadFile(stateFile)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var st struct {
		Attachments []json.RawMessage `json:"attachments"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return 0, err
	}
	return len(st.Attachments), nil
}
