package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// startWith runs a server with the options set changes, over a fresh store.
func startWith(t *testing.T, set func(o *server.Options)) (*client.Client, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := server.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	o := server.Options{Store: st}
	set(&o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(o).Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = st.Close()
	})
	return client.NewUnix(sock), st
}

// recorded keeps the events a server records.
type recorded struct {
	mu     sync.Mutex
	events []objects.Event
}

func (r *recorded) Record(_ context.Context, e objects.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorded) reasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func workloadDoc(name, spec string) string {
	return "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: " + name + "}\nspec:\n" + spec
}

// TestAdmissionRefusesHostileWorkloads sends the attacker's inputs to the API: each is
// refused as Invalid, with the field at fault named in the answer.
func TestAdmissionRefusesHostileWorkloads(t *testing.T) {
	data := t.TempDir()
	images := filepath.Join(data, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "vmlinuz"), []byte("kernel"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(images, "shadow-link")); err != nil {
		t.Fatal(err)
	}
	c, st := startWith(t, func(o *server.Options) { o.DataDir = data })
	ctx := context.Background()

	big := "metadata: {name: big, annotations: {note: \"" + strings.Repeat("x", 7<<20) + "\"}}\n"
	tests := []struct {
		name, doc, field string
	}{
		{"7 MB annotation", strings.Replace(workloadDoc("big", "  image: localhost/web:1\n"), "metadata: {name: big}\n", big, 1),
			"metadata.annotations"},
		{"mountPath /", workloadDoc("a", "  image: localhost/web:1\n  volumes: [{name: d, mountPath: /}]\n"), "spec.volumes[0].mountPath"},
		{"mountPath /proc/sys", workloadDoc("a", "  image: localhost/web:1\n  volumes: [{name: d, mountPath: /proc/sys}]\n"), "spec.volumes[0].mountPath"},
		{"env A=B", workloadDoc("a", "  image: localhost/web:1\n  env: {\"A=B\": x}\n"), "spec.env[A=B]"},
		{"env empty key", workloadDoc("a", "  image: localhost/web:1\n  env: {\"\": x}\n"), "spec.env[]"},
		{"image ../", workloadDoc("a", "  image: localhost/../../x:1\n"), "spec.image"},
		{"vm kernel /etc/shadow", workloadDoc("a", "  isolation: vm\n  vm: {kernel: /etc/shadow}\n"), "spec.vm.kernel"},
		{"vm initrd /etc/shadow", workloadDoc("a", "  isolation: vm\n  vm: {kernel: vmlinuz, initrd: /etc/shadow}\n"), "spec.vm.initrd"},
		{"vm kernel through a symbolic link", workloadDoc("a", "  isolation: vm\n  vm: {kernel: shadow-link}\n"), "spec.vm.kernel"},
		{"vm disk /dev/vda", workloadDoc("a", "  isolation: vm\n  vm: {disk: {path: /dev/vda}}\n"), "spec.vm.disk.path"},
		{"vm disk beside the images dir", workloadDoc("a", "  isolation: vm\n  vm: {disk: {path: "+data+"/images-x/d.qcow2}}\n"), "spec.vm.disk.path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Create(ctx, "workloads", []byte(tc.doc), true, nil)
			if client.Reason(err) != server.ReasonInvalid {
				t.Fatalf("create: %v (reason %q), want Invalid", err, client.Reason(err))
			}
			if !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("the error does not name %s:\n%.500s", tc.field, err)
			}
		})
	}
	if recs, _, err := st.List(ctx, v1alpha1.KindWorkload); err != nil || len(recs) != 0 {
		t.Errorf("stored: %d workloads, %v; want none", len(recs), err)
	}

	// The same VM from the images directory, by a relative or an absolute name, is admitted.
	for i, kernel := range []string{"vmlinuz", filepath.Join(images, "vmlinuz")} {
		doc := workloadDoc(fmt.Sprint("vm-", i), "  isolation: vm\n  vm: {kernel: "+kernel+"}\n")
		if err := c.Create(ctx, "workloads", []byte(doc), false, nil); err != nil {
			t.Errorf("kernel %s: %v", kernel, err)
		}
	}
}

// TestAdmissionCapacity checks that admission refuses workloads whose requests do not fit
// on the host beside those already admitted, unless forced, and records the overcommit.
func TestAdmissionCapacity(t *testing.T) {
	rec := &recorded{}
	c, _ := startWith(t, func(o *server.Options) {
		o.Capacity = &v1alpha1.Capacity{CPU: resource.MustParse("2"), Memory: resource.MustParse("4Gi")}
		o.Recorder = rec
	})
	ctx := context.Background()
	huge := workloadDoc("huge", "  image: localhost/web:1\n  replicas: 10000\n")
	err := c.Create(ctx, "workloads", []byte(huge), false, nil)
	if client.Reason(err) != server.ReasonInvalid || !strings.Contains(err.Error(), "spec.replicas:") ||
		!strings.Contains(err.Error(), "10000 replicas do not fit") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("replicas 10000 on a 2-CPU host: %v, want Invalid on spec.replicas naming --force", err)
	}

	// 1.5 CPU fit; another 1 CPU does not fit beside them, nor does growing the first to 3.
	a := workloadDoc("a", "  image: localhost/web:1\n  replicas: 3\n  resources: {cpu: 500m, memory: 256Mi}\n")
	if err := c.Create(ctx, "workloads", []byte(a), false, nil); err != nil {
		t.Fatal(err)
	}
	b := workloadDoc("b", "  image: localhost/web:1\n  replicas: 2\n  resources: {cpu: 500m, memory: 256Mi}\n")
	if err := c.Create(ctx, "workloads", []byte(b), false, nil); client.Reason(err) != server.ReasonInvalid ||
		!strings.Contains(err.Error(), "1500m admitted already") {
		t.Fatalf("b beside a: %v, want Invalid counting a's 1500m", err)
	}
	// Updating a counts a once: 4 replicas of 500m fit 2 CPUs exactly.
	a4 := strings.Replace(a, "replicas: 3", "replicas: 4", 1)
	if err := c.Update(ctx, "workloads", "a", []byte(a4), false, nil); err != nil {
		t.Fatalf("a at 4 replicas (exactly the host): %v", err)
	}
	a5 := strings.Replace(a, "replicas: 3", "replicas: 5", 1)
	if err := c.Update(ctx, "workloads", "a", []byte(a5), false, nil); client.Reason(err) != server.ReasonInvalid {
		t.Fatalf("a at 5 replicas: %v, want Invalid", err)
	}
	// Forced, it is stored, and an event says so.
	if err := c.Create(ctx, "workloads", []byte(b), true, nil); err != nil {
		t.Fatalf("b with --force: %v", err)
	}
	if got := strings.Join(rec.reasons(), "\n"); !strings.Contains(got, "Overcommitted: applied with --force although 2 replicas do not fit") {
		t.Errorf("events:\n%s\nwant an Overcommitted warning", got)
	}
	// A workload being deleted no longer counts.
	if err := c.Delete(ctx, "workloads", "a", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "workloads", "b", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, "workloads", []byte(strings.Replace(a4, "name: a", "name: c", 1)), false, nil); err != nil {
		t.Errorf("c after a and b were deleted: %v", err)
	}
}
