package snapshot

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestTarPlan: a backup's archive leaves out the content of the large files the index
// says are unchanged and lists every large file in its plan; putting the left-out
// content back at the plan's offsets gives the archive a plain snapshot writes, byte
// for byte. Small files are always in the archive.
func TestTarPlan(t *testing.T) {
	src := t.TempDir()
	big := bytes.Repeat([]byte("2026-12-07T06:00:00Z GET /index.html 200\n"), 5000) // 205 KiB
	other := bytes.Repeat([]byte{7, 1, 9}, 40000)
	for name, data := range map[string][]byte{"logs/app.log": big, "data.bin": other, "small.txt": []byte("hello\n")} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	full, partial := filepath.Join(dir, "full.tar"), filepath.Join(dir, "partial.tar")
	if err := writeTar(full, src, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(full + PlanSuffix); !os.IsNotExist(err) {
		t.Errorf("a plain snapshot wrote a plan: %v", err)
	}
	var asked []string
	if err := writeTar(partial, src, func(path string, st FileState) bool {
		asked = append(asked, path)
		return path == "logs/app.log" && st.Size == int64(len(big))
	}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(partial + PlanSuffix)
	if err != nil {
		t.Fatal(err)
	}
	var plan []TarFile
	if err := json.Unmarshal(data, &plan); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || len(plan) != 2 {
		t.Fatalf("index asked about %q, plan %+v; want the two large files", asked, plan)
	}
	got, _ := os.ReadFile(partial)
	var rebuilt []byte
	pos := int64(0)
	for _, f := range plan {
		if f.State.Size != f.Size || f.State.Inode == 0 || f.State.Ctime == 0 {
			t.Errorf("plan entry %+v: want its size, inode and ctime", f)
		}
		if !f.Skipped {
			continue
		}
		content, _ := os.ReadFile(filepath.Join(src, f.Path))
		rebuilt = append(rebuilt, got[pos:f.Offset]...)
		rebuilt = append(rebuilt, content...)
		pos = f.Offset
	}
	rebuilt = append(rebuilt, got[pos:]...)
	want, _ := os.ReadFile(full)
	if len(got) != len(want)-len(big) || !bytes.Equal(rebuilt, want) {
		t.Fatalf("partial archive %d bytes, rebuilt %d; want %d less than the plain %d and equal once rebuilt",
			len(got), len(rebuilt), len(big), len(want))
	}
}
