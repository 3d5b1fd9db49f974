package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup"
	"strata.dev/strata/internal/runtime"
)

// tree is a directory's content: every entry's mode and, for a file, its SHA-256.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil // the volume directory itself is the restore's
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = fi.Mode().String()
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] += fmt.Sprintf(" %d %x", len(data), sha256.Sum256(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// randomData is n bytes that do not compress or deduplicate.
func randomData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// logText is n bytes of a web server's access log.
func logText(seed, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "10.0.%d.%d - - [07/Dec/2026:06:%02d:%02d +0000] \"GET /api/items/%d HTTP/1.1\" 200 %d\n",
			seed%250, i%250, (i/60)%60, i%60, i*7+seed, 300+i%900)
	}
	return b.Bytes()[:n]
}

// TestIncrementalVolume backs a container's volume up again and again, each time after
// one kind of change, and restores every backup: the files whose size, mtime, ctime,
// inode and mode did not change are taken from the last backup without being read,
// every other file is read, and every restore is byte-identical to the volume.
func TestIncrementalVolume(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image,
		Volumes: []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}}, 1)
	vol := runtime.VolumeDir(h.data, "db", "data", 0)
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(vol, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	table := randomData(1, 3<<20)
	log := logText(2, 700<<10)
	write("pg/base/table.dat", table)
	write("pg/log/access.log", log)
	write("pg/PG_VERSION", []byte("17\n"))
	write("small.conf", logText(3, 2000))

	n := 0
	backupAndRestore := func(req v1alpha1.BackupRequest) *v1alpha1.Backup {
		t.Helper()
		req.Workloads = []string{"db"}
		var last v1alpha1.BackupProgress
		b, err := h.m.Create(ctx, req, func(p v1alpha1.BackupProgress) { last = p })
		if err != nil {
			t.Fatal(err)
		}
		if last.Unchanged != b.UnchangedBytes || last.Read+last.Unchanged != last.Bytes {
			t.Errorf("last progress %+v; want its unchanged bytes %d and read+unchanged = bytes", last, b.UnchangedBytes)
		}
		if b.ReadBytes+b.UnchangedBytes != b.Size {
			t.Errorf("backup %d: %d read + %d unchanged != size %d", n, b.ReadBytes, b.UnchangedBytes, b.Size)
		}
		n++
		as := fmt.Sprintf("copy%d", n)
		if _, err := h.m.Restore(ctx, b.ID, v1alpha1.RestoreRequest{As: as}); err != nil {
			t.Fatal(err)
		}
		want, got := tree(t, vol), tree(t, runtime.VolumeDir(h.data, as, "data", 0))
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("backup %d restored:\n%v\nwant the volume:\n%v", n, got, want)
		}
		h.wantNoSnapshots()
		return b
	}
	// The metadata and small files read every time: tar headers, small files and the
	// driver's root filesystem layer.
	const overhead = 64 << 10
	wantUnchanged := func(b *v1alpha1.Backup, unchanged int, what string) {
		t.Helper()
		if b.UnchangedBytes != int64(unchanged) || b.ReadBytes > b.Size-int64(unchanged) || b.ReadBytes < b.Size-int64(unchanged) {
			t.Errorf("%s: %d unchanged, %d read of %d; want %d unchanged", what, b.UnchangedBytes, b.ReadBytes, b.Size, unchanged)
		}
	}

	first := backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(first, 0, "first backup")
	if first.ReadBytes < int64(len(table)+len(log)) {
		t.Errorf("first backup read %d bytes; want at least the %d of the large files", first.ReadBytes, len(table)+len(log))
	}

	same := backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(same, len(table)+len(log), "unchanged second backup")
	if same.ReadBytes > overhead {
		t.Errorf("unchanged second backup read %d bytes; want only metadata and small files (at most %d)", same.ReadBytes, overhead)
	}

	// Same size, mtime set back: only the ctime tells.
	p := filepath.Join(vol, "pg/log/access.log")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Clone(log)
	copy(edited[1000:], "XXXX tampered line with the same length XXXX")
	time.Sleep(10 * time.Millisecond) // a ctime tick apart on coarse clocks
	write("pg/log/access.log", edited)
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(p); after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		t.Fatal("the edit did not keep the size and mtime")
	}
	b := backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(b, len(table), "after an edit with size and mtime restored")

	// A file replaced by a rename: same size and mtime, another inode.
	fi, err = os.Stat(filepath.Join(vol, "pg/base/table.dat"))
	if err != nil {
		t.Fatal(err)
	}
	newTable := randomData(4, len(table))
	write("pg/base/table.dat.new", newTable)
	if err := os.Chtimes(filepath.Join(vol, "pg/base/table.dat.new"), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(vol, "pg/base/table.dat.new"), filepath.Join(vol, "pg/base/table.dat")); err != nil {
		t.Fatal(err)
	}
	b = backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(b, len(edited), "after a rename over a file")

	// A deleted file is gone from the restore; the rest is unchanged.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	b = backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(b, len(newTable), "after a delete")

	// Without the daemon's index, the next backup takes it from the repository.
	if err := os.RemoveAll(filepath.Join(h.data, "backup", "index")); err != nil {
		t.Fatal(err)
	}
	b = backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(b, len(newTable), "with the index lost")
	if _, err := os.Stat(filepath.Join(h.data, "backup", "index", "default", "db", "slot-0.json")); err != nil {
		t.Errorf("the index was not written again: %v", err)
	}

	// --force-read reads everything, and the next backup is incremental again.
	b = backupAndRestore(v1alpha1.BackupRequest{ForceRead: true})
	wantUnchanged(b, 0, "with --force-read")
	b = backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(b, len(newTable), "after --force-read")

	// Every backup deleted and its chunks collected (a clock past the grace period):
	// the index names chunks the repository lost, so the next backup reads the files.
	later := backup.New(backup.Options{Store: h.st, Drivers: mustRegistry(t, h.d), Snapshots: h.snap, DataDir: h.data,
		Clock: func() time.Time { return time.Now().Add(3 * time.Hour) }})
	for _, l := range h.backups() {
		if err := later.Delete(ctx, "", l.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := later.Prune(ctx, v1alpha1.BackupPruneRequest{KeepLast: 1}); err != nil {
		t.Fatal(err)
	}
	b = backupAndRestore(v1alpha1.BackupRequest{})
	wantUnchanged(b, 0, "after its chunks were pruned")
}
