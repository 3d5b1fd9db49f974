// Package golden compares test output with golden files under testdata/. Tests import it;
// `go test ./pkg -update` rewrites the files instead of comparing, for review in the diff.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Updating reports whether the run rewrites golden files (-update).
func Updating() bool { return *update }

// Compare checks got against the file at path, or writes it there with -update.
func Compare(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil { //nolint:gosec // golden files are read by anyone
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs (run go test -update and review the diff); got:\n%s", path, got)
	}
}

// JSON compares v, as indented JSON with a final newline, against the file at path.
func JSON(tb testing.TB, path string, v any) {
	tb.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	Compare(tb, path, append(got, '\n'))
}
