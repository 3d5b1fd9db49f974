package daemon_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// TestDaemonCrashDuringApplies kills the daemon with SIGKILL at random moments during a stream
// of applies; after each restart every acknowledged apply must be there, and the store must open.
func TestDaemonCrashDuringApplies(t *testing.T) {
	e := newE2E(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	acked := map[string]bool{}
	n := 0
	for round := 0; round < 3; round++ {
		e.start()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 200; i++ {
				name := fmt.Sprintf("w-%d", n)
				n++
				doc := fmt.Sprintf("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: %s}\nspec: {image: localhost/busybox:1, replicas: 0}\n", name)
				path := filepath.Join(e.dir, name+".yaml")
				if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
					return
				}
				if _, err := e.strata("apply", "-f", path); err != nil {
					return // the daemon is gone: this apply was not acknowledged
				}
				acked[name] = true
			}
		}()
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		e.kill9()
		<-done
	}
	e.start()
	var list struct {
		Items []v1alpha1.Workload `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.must("get", "workloads", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, w := range list.Items {
		have[w.Metadata.Name] = true
	}
	var lost []string
	for name := range acked {
		if !have[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged applies lost: %s", len(lost), strings.Join(lost, " "))
	}
	if len(acked) == 0 {
		t.Error("no apply was acknowledged: the test measured nothing")
	}
	t.Logf("%d applies acknowledged across 3 crashes, all present", len(acked))
	// Leave nothing: force-delete (replicas 0: no instances).
	for name := range have {
		_, _ = e.strata("delete", "workload", name, "--force", "--wait=false")
	}
}
