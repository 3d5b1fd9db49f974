package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStoreBackupAndRestore: the store is copied while the daemon runs; a workload
// deleted afterwards comes back when a daemon starts from the copy, and runs again;
// the replaced store is kept aside.
func TestStoreBackupAndRestore(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "keeper.yaml")
	if err := os.WriteFile(file, []byte(keeper), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	e.eventually("keeper runs", 60*time.Second, func() error { _, err := e.running("keeper", 1); return err })

	copyPath := filepath.Join(e.dir, "store-copy.db")
	out := e.must("backup", "store", copyPath)
	if !regexp.MustCompile(`store copied to .*: \d+ bytes, \d+ objects at revision \d+`).MatchString(out) {
		t.Errorf("backup store said %q", out)
	}
	if _, err := e.strata("backup", "store", copyPath); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second copy over the first: %v, want it refused", err)
	}

	e.must("delete", "workload", "keeper")
	e.eventually("keeper is gone", 60*time.Second, func() error {
		if out := e.must("get", "workloads"); strings.Contains(out, "keeper") {
			return fmt.Errorf("still listed:\n%s", out)
		}
		return nil
	})
	e.stop()

	e.extraArgs = []string{"--restore-store", copyPath}
	e.start()
	e.extraArgs = nil
	e.eventually("keeper runs again from the restored store", 60*time.Second, func() error { _, err := e.running("keeper", 1); return err })
	aside, _ := filepath.Glob(filepath.Join(e.dir, "data", "strata.db.replaced-*"))
	if len(aside) != 1 {
		t.Errorf("replaced stores kept aside: %v, want one", aside)
	}
	if _, err := os.Stat(copyPath); err != nil {
		t.Errorf("the copy given to --restore-store: %v", err)
	}
}
