package kubecluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVolumesPersist applies, with `strata apply --kubeconfig`,
// testdata/volumes.yaml: a container and a sandbox workload, each with a
// volume, that count their starts in a file on it. Each pod is deleted; the
// pod its StatefulSet starts in its place must find its predecessor's file
// and count two starts, and the file must be on the claim's volume.
func TestVolumesPersist(t *testing.T) {
	c := Start(t)
	needRunsc(t, c, "the estate has a sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	strata, err := c.BuildStrata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	estate, err := filepath.Abs("testdata/volumes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	workloads := []struct{ name, runtime string }{{"notebook", "runc"}, {"scratchpad", "runsc"}}
	dirs := map[string]string{}
	for _, w := range workloads {
		// A StatefulSet's claim is <template>-<set>-<ordinal>.
		if dirs[w.name], err = c.ProvideVolume(ctx, "default", "data-"+w.name+"-0", "64Mi"); err != nil {
			t.Fatal(err)
		}
	}
	out, notes, err := c.Exec(ctx, strata, "apply", "-f", estate, "--kubeconfig", c.Kubeconfig())
	t.Logf("strata apply --kubeconfig:\n%s%s", out, notes)
	if err != nil {
		t.Fatalf("strata apply: %v", err)
	}
	first := map[string]corev1.Pod{}
	for _, w := range workloads {
		pods, err := c.WaitReady(ctx, "default", "strata.dev/workload="+w.name, 1)
		if err != nil {
			t.Fatal(err)
		}
		first[w.name] = pods[0]
		if _, err := c.WaitLog(ctx, "default", pods[0].Name, "boots: 1"); err != nil {
			t.Fatal(err)
		}
	}
	runtimes, err := c.PodRuntimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workloads {
		p := first[w.name]
		if rt := runtimes["default/"+p.Name]; rt != w.runtime {
			t.Errorf("pod %s runs under %q, want %s", p.Name, rt, w.runtime)
		}
		grace := int64(5)
		if err := c.Client.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range workloads {
		old := first[w.name]
		var p corev1.Pod
		for p.UID == "" || p.UID == old.UID {
			pods, err := c.WaitReady(ctx, "default", "strata.dev/workload="+w.name, 1)
			if err != nil {
				t.Fatalf("%s after its pod was deleted: %v", w.name, err)
			}
			p = pods[0]
			if p.UID == old.UID {
				time.Sleep(500 * time.Millisecond)
			}
		}
		log, err := c.WaitLog(ctx, "default", p.Name, "boots: ")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (under %s): pod %s deleted, its successor (uid %s) logs %q", w.name, w.runtime, old.Name, p.UID, strings.TrimSpace(log))
		if !strings.Contains(log, "boots: 2") {
			t.Errorf("the new pod of %s logs %q, want boots: 2 (its predecessor's file on the volume)", w.name, log)
		}
		b, err := os.ReadFile(filepath.Join(dirs[w.name], "boots"))
		if err != nil {
			t.Fatalf("%s's volume: %v", w.name, err)
		}
		if n := strings.Count(string(b), "boot of "); n != 2 {
			t.Errorf("%s's volume holds %q, want two starts", w.name, b)
		}
	}
}
