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

// scratch keeps two 1 MiB random files in its root filesystem (no volume), written once.
const scratch = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: scratch}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "[ -e /srv/a ] || { mkdir -p /srv && dd if=/dev/urandom of=/srv/a bs=1024 count=1024 2>/dev/null && dd if=/dev/urandom of=/srv/b bs=1024 count=1024 2>/dev/null; echo ready > /srv/ready; }; trap 'exit 0' TERM; sleep 100000 & wait"]
`

// TestBackupIncrementalRootfs: through the CLI and a real container, the large files a
// container wrote into its root filesystem are indexed like a volume's: a second
// backup reads none of them, a file edited with its size and mtime set back and a file
// replaced by a rename are read again, a removal from the image stays removed, a lost
// index comes back from the repository, and --force-read reads all. Every backup restores byte-identical.
func TestBackupIncrementalRootfs(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	e.applyDoc("scratch", scratch)
	e.eventually("scratch runs", 60*time.Second, func() error { _, err := e.running("scratch", 1); return err })
	e.eventually("scratch wrote its data", 60*time.Second, func() error {
		_, err := e.strata("exec", "scratch", "--", "cat", "/srv/ready")
		return err
	})
	e.must("repo", "init", "file://"+filepath.Join(e.dir, "repo"))
	files := []string{"/srv/a", "/srv/b"}

	n := 0
	backup := func(what string, wantUnchanged int64, args ...string) {
		t.Helper()
		before := e.sums("scratch", files...)
		var b v1alpha1.Backup
		out := e.must(append([]string{"backup", "create", "scratch", "-o", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &b); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes, %d unchanged, %d read, %d stored", what, b.Size, b.UnchangedBytes, b.ReadBytes, b.StoredBytes)
		if b.UnchangedBytes != wantUnchanged || b.ReadBytes+b.UnchangedBytes != b.Size {
			t.Errorf("%s: %d unchanged, %d read of %d; want %d unchanged", what, b.UnchangedBytes, b.ReadBytes, b.Size, wantUnchanged)
		}
		if wantUnchanged == 2<<20 && b.ReadBytes > 256<<10 {
			t.Errorf("%s: read %d bytes; want only the layer's headers and small files", what, b.ReadBytes)
		}
		n++
		as := fmt.Sprintf("scratch-r%d", n)
		e.must("restore", b.ID, "--as", as)
		e.eventually(as+" runs", 60*time.Second, func() error { _, err := e.running(as, 1); return err })
		if after := e.sums(as, files...); after != before {
			t.Errorf("%s: restored\n%s\nwant\n%s", what, after, before)
		}
		if _, err := e.strata("exec", as, "--", "sh", "-c", "test -e /bin/wget"); (err == nil) != (n < 5) {
			t.Errorf("%s: /bin/wget in the restore: %v; it was removed before backup 5", what, err == nil)
		}
		e.deleteGone(as)
	}

	backup("first backup", 0)
	backup("unchanged", 2<<20)

	// An edit in place with the size and mtime set back: the ctime tells.
	e.must("exec", "scratch", "--", "sh", "-c",
		"touch -r /srv/a /srv/stamp && dd if=/dev/urandom of=/srv/a bs=1024 count=4 seek=100 conv=notrunc 2>/dev/null && touch -r /srv/stamp /srv/a")
	backup("after an edit with size and mtime restored", 1<<20)

	// A file replaced by a rename, with the old one's size and mtime.
	e.must("exec", "scratch", "--", "sh", "-c",
		"dd if=/dev/urandom of=/srv/b.new bs=1024 count=1024 2>/dev/null && touch -r /srv/b /srv/b.new && mv /srv/b.new /srv/b")
	backup("after a rename over a file", 1<<20)

	// A file of the image removed: a whiteout in the layer.
	e.must("exec", "scratch", "--", "busybox", "rm", "/bin/wget")
	backup("after a removal from the image", 2<<20)

	// A lost index is rebuilt from the repository, the layer's files with it.
	if err := os.RemoveAll(filepath.Join(e.dir, "data", "backup", "index")); err != nil {
		t.Fatal(err)
	}
	backup("with the index lost", 2<<20)
	backup("with --force-read", 0, "--force-read")
}
