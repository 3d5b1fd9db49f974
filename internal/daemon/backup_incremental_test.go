package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// journal keeps a 3 MiB random table and a 1 MiB log in its volume, written once.
const journal = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: journal}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "[ -e /data/table ] || { dd if=/dev/urandom of=/data/table bs=1024 count=3072 2>/dev/null; i=0; while [ $i -lt 32768 ]; do echo \"GET /items/$i 200 took ${i}us from 10.0.0.$((i % 250))\"; i=$((i+1)); done | head -c 1048576 > /data/log; echo ready > /data/ready; }; trap 'exit 0' TERM; sleep 100000 & wait"]
  volumes: [{name: data, mountPath: /data}]
`

// TestBackupIncremental: through the CLI and a real container, a second backup of an
// unchanged volume reads none of its large files; a file edited with its size and
// mtime set back, a file replaced by a rename and a deleted file are backed up as they
// are now; a lost file index comes back from the repository; --force-read reads all.
// Every backup restores byte-identical.
func TestBackupIncremental(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	e.applyDoc("journal", journal)
	e.eventually("journal runs", 60*time.Second, func() error { _, err := e.running("journal", 1); return err })
	e.eventually("journal wrote its data", 60*time.Second, func() error {
		_, err := e.strata("exec", "journal", "--", "cat", "/data/ready")
		return err
	})
	e.must("repo", "init", "file://"+filepath.Join(e.dir, "repo"))
	files := []string{"/data/table", "/data/log"}

	n := 0
	backup := func(what string, wantUnchanged int64, args ...string) {
		t.Helper()
		before := e.sums("journal", files...)
		var b v1alpha1.Backup
		out := e.must(append([]string{"backup", "create", "journal", "-o", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &b); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes, %d unchanged, %d read, %d stored", what, b.Size, b.UnchangedBytes, b.ReadBytes, b.StoredBytes)
		if b.UnchangedBytes != wantUnchanged || b.ReadBytes+b.UnchangedBytes != b.Size {
			t.Errorf("%s: %d unchanged, %d read of %d; want %d unchanged", what, b.UnchangedBytes, b.ReadBytes, b.Size, wantUnchanged)
		}
		if wantUnchanged == 4<<20 && b.ReadBytes > 256<<10 {
			t.Errorf("%s: read %d bytes; want only metadata, small files and the root filesystem layer", what, b.ReadBytes)
		}
		n++
		as := fmt.Sprintf("journal-r%d", n)
		e.must("restore", b.ID, "--as", as)
		e.eventually(as+" runs", 60*time.Second, func() error { _, err := e.running(as, 1); return err })
		if after := e.sums(as, files...); after != before {
			t.Errorf("%s: restored\n%s\nwant\n%s", what, after, before)
		}
		if len(files) == 1 {
			if _, err := e.strata("exec", as, "--", "sh", "-c", "ls /data/log"); err == nil {
				t.Errorf("%s: the deleted /data/log is in the restore", what)
			}
		}
		e.deleteGone(as)
	}

	backup("first backup", 0)
	backup("unchanged", 4<<20)

	// An edit in place with the size and mtime set back: the ctime tells.
	e.must("exec", "journal", "--", "sh", "-c",
		"touch -r /data/table /data/stamp && dd if=/dev/urandom of=/data/table bs=1024 count=4 seek=100 conv=notrunc 2>/dev/null && touch -r /data/stamp /data/table")
	backup("after an edit with size and mtime restored", 1<<20)

	// A file replaced by a rename, with the old one's size and mtime.
	e.must("exec", "journal", "--", "sh", "-c",
		"sed 's/GET/PUT/' /data/log > /data/log.new && touch -r /data/log /data/log.new && mv /data/log.new /data/log")
	backup("after a rename over a file", 3<<20)

	// A lost index is rebuilt from the repository.
	if err := os.RemoveAll(filepath.Join(e.dir, "data", "backup", "index")); err != nil {
		t.Fatal(err)
	}
	backup("with the index lost", 4<<20)
	backup("with --force-read", 0, "--force-read")

	// A deleted file: the restore has it no more.
	e.must("exec", "journal", "--", "sh", "-c", "rm /data/log")
	files = files[:1]
	backup("after a delete", 3<<20)
}
