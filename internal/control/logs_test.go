package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotateLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web-0.log")
	// The writer holds the file open for appending, as the runtime does.
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(s string) {
		if _, err := w.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Repeat("a", 100))
	if rotated, err := rotateLog(path, 200, 2); err != nil || rotated {
		t.Fatalf("a small log was rotated: %v %v", rotated, err)
	}
	for round, c := range []string{"b", "c", "d"} {
		write(strings.Repeat(c, 250))
		rotated, err := rotateLog(path, 200, 2)
		if err != nil || !rotated {
			t.Fatalf("round %d: rotated %v, %v", round, rotated, err)
		}
	}
	write("after\n")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if got := read(path); got != "after\n" {
		t.Errorf("the live log holds %q: appending after the truncation must start at 0", got)
	}
	if got := read(path + ".1"); got != strings.Repeat("d", 250) {
		t.Errorf(".1 = %.20q...", got)
	}
	if got := read(path + ".2"); got != strings.Repeat("c", 250) {
		t.Errorf(".2 = %.20q...", got)
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more old files kept than asked")
	}
	if rotated, err := rotateLog(filepath.Join(dir, "none.log"), 1, 2); rotated || err != nil {
		t.Errorf("a missing log: %v %v", rotated, err)
	}
}
