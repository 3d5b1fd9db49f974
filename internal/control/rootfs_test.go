package control

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// TestRestoredRootfsLayer: a root filesystem layer a restore left for a slot is what the
// slot's next instance starts from, once: the controller removes it after the start.
func TestRestoredRootfsLayer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.apply(workload("src", "1", script.WriteFile("/srv/x", "kept"), "Never"), v1alpha1.TierContainer)
	e.reconcile("src")
	d, err := e.c.o.Drivers.ForTier(v1alpha1.TierContainer)
	if err != nil {
		t.Fatal(err)
	}
	layer := runtime.RootfsLayerFile(e.c.o.DataDir, "web", 0)
	if err := os.MkdirAll(filepath.Dir(layer), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.(runtime.RootfsSaver).SaveRootfs(ctx, "src-0", f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	e.apply(workload("web", "1", script.ReadFile("/srv/x"), "Never"), v1alpha1.TierContainer)
	e.reconcile("web")
	log, err := os.ReadFile(filepath.Join(e.c.o.DataDir, "logs", "web-0.log"))
	if err != nil || string(log) != "kept\n" {
		t.Errorf("web-0 read %q (%v), want the file from the layer, \"kept\\n\"", log, err)
	}
	if _, err := os.Stat(layer); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the applied layer is still there (%v): a later start would apply it again", err)
	}
}
