package ui

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"strata.dev/strata/internal/testenv"
)

// TestScriptLogic runs the tests of the page's pure functions (testdata/logic.test.mjs: the
// SSE parser, the watch's reconnects, quantities, chart scales, the plan's arrangement) with
// Node.js, on a copy of the embedded files. The browser test in internal/daemon checks the
// page as a whole.
func TestScriptLogic(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Skipf(t, "node not found: the script logic tests need Node.js 18 or later (apt-get install nodejs)")
	}
	dir := t.TempDir()
	err = fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".js" {
			return err
		}
		data, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(path)), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	test, err := os.ReadFile(filepath.Join("testdata", "logic.test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"package.json":   []byte(`{"type": "module"}` + "\n"), // the assets are ES modules
		"logic.test.mjs": test,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, "--test", "logic.test.mjs")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
