package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/testenv"
)

// randomReader returns n pseudo-random bytes from seed as a stream.
func randomReader(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1], s[2], s[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// chunkFiles returns the paths of the chunk objects of a file repository.
func chunkFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(filepath.Join(root, "chunks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestCorruptChunk flips one byte of a stored chunk: Verify reports the
// chunk with the files that use it, and OpenFile and Restore fail naming
// the backup and the file, leaving no restored file behind. A chunk copied
// over another chunk's name fails the same way.
func TestCorruptChunk(t *testing.T) {
	ctx := context.Background()
	r, url, _ := newRepo(t, fileBackend())
	root := strings.TrimPrefix(url, "file://")
	a, bdata := randomBytes(1, 3*mib), randomBytes(2, 3*mib)
	m := backupFiles(t, r, Meta{Group: "g"},
		testFile{name: "a.img", data: a}, testFile{name: "b.img", data: bdata}, testFile{name: "a-copy.img", data: a})

	victim := m.Files[0].Chunks[len(m.Files[0].Chunks)-1].ID // chunk boundaries depend on the repository's random polynomial: the last one always exists
	path := filepath.Join(root, filepath.FromSlash(victim.objectName()))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	rep, err := r.Verify(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.BadChunks) != 1 || rep.BadChunks[0].ID != victim ||
		strings.Join(rep.BadChunks[0].Files, ",") != "a.img,a-copy.img" {
		t.Fatalf("Verify bad chunks = %+v; want %s used by a.img and a-copy.img", rep.BadChunks, victim)
	}
	if len(rep.BadFiles) != 2 || rep.BadFiles[0].Name != "a.img" || rep.BadFiles[1].Name != "a-copy.img" {
		t.Fatalf("Verify bad files = %+v; want a.img and a-copy.img", rep.BadFiles)
	}
	t.Logf("report: %+v", rep.BadChunks[0])

	rc, err := r.OpenFile(ctx, m, "a.img")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	wantFault(t, err, m.ID, "a.img", victim.String())

	dst := filepath.Join(t.TempDir(), "a.img")
	err = r.Restore(ctx, m, "a.img", dst)
	wantFault(t, err, m.ID, "a.img", victim.String())
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 0 {
		t.Fatalf("a failed Restore left %v behind", ents)
	}
	// The intact file still restores.
	if err := r.Restore(ctx, m, "b.img", filepath.Join(t.TempDir(), "b.img")); err != nil {
		t.Fatal(err)
	}

	// Swap: the sealed bytes of a good chunk under the victim's name.
	good := m.Files[1].Chunks[0].ID
	gdata, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(good.objectName())))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, gdata, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, _ = r.OpenFile(ctx, m, "a.img")
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	wantFault(t, err, m.ID, "a.img", victim.String())

	// A missing chunk is reported too.
	os.Remove(path)
	rep, err = r.Verify(ctx, m.ID)
	if err != nil || len(rep.BadChunks) != 1 || !strings.Contains(rep.BadChunks[0].Err, "not found") {
		t.Fatalf("Verify with a missing chunk = %+v, %v", rep, err)
	}
}

func wantFault(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("read of a corrupt file succeeded")
	}
	errIs(t, err, ErrCorrupt)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not name %q", err, p)
		}
	}
	t.Logf("error: %v", err)
}

// Environment of the child process of TestKillDuringBackup.
const (
	envCrashChild = "STRATA_REPO_CRASH_CHILD" // the repository URL
	envCrashKey   = "STRATA_REPO_CRASH_KEY"
)

// crashSize is what the child backs up: far more than it can store
// before it is killed.
const crashSize = 2 << 30

// crashChild backs up crashSize random bytes until it is killed. It prints
// the backup's ID first.
func crashChild() {
	ctx := context.Background()
	key, err := ParseKey(os.Getenv(envCrashKey))
	if err == nil {
		var r *Repo
		r, err = Open(ctx, os.Getenv(envCrashChild), key)
		if err == nil {
			w := r.NewBackup(Meta{Group: "crash"})
			fmt.Printf("backup %s\n", w.ID())
			err = w.AddFile(ctx, "big.img", randomReader(99, crashSize), 0o600)
			if err == nil {
				_, err = w.Commit(ctx)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("done")
	os.Exit(0)
}

// TestKillDuringBackup kills a process with SIGKILL while it backs up a
// large file: the partial backup is never listed, the earlier backup still
// verifies, a new backup of the same content reuses the orphan chunks and
// verifies, and GC past the grace removes the orphans no backup uses.
func TestKillDuringBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process; skipped in -short mode")
	}
	ctx := context.Background()
	r, url, key := newRepo(t, fileBackend())
	root := strings.TrimPrefix(url, "file://")
	before := backupFiles(t, r, Meta{Group: "crash"}, testFile{name: "small", data: randomBytes(5, 2*mib)})

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashChild+"="+url, envCrashKey+"="+key.Hex())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	childID, ok := strings.CutPrefix(strings.TrimSpace(line), "backup ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q, %v; stderr: %s", line, err, stderr.String())
	}
	// Kill it once it has stored a good number of chunks.
	deadline := time.Now().Add(60 * time.Second)
	for len(chunkFiles(t, root)) < 40 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the child: %v", err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v before it was killed; stderr: %s", err, stderr.String())
	}
	orphans := len(chunkFiles(t, root))
	t.Logf("killed backup %s with %d chunks stored", childID, orphans)

	r, err = Open(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != before.ID {
		t.Fatalf("List after the kill = %v; want only %s", ids(ms), before.ID)
	}
	if _, err := r.Get(ctx, childID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(killed backup) = %v; want ErrNotFound", err)
	}
	verifyClean(t, r, before.ID)

	// The same stream again: its first chunks are the orphans.
	w := r.NewBackup(Meta{Group: "crash"})
	if err := w.AddFile(ctx, "big.img", randomReader(99, 16*mib), 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new backup: %+v", after.Stats)
	if after.Stats.ChunksReused == 0 {
		t.Errorf("the new backup reused no chunk of the killed one")
	}
	verifyClean(t, r, after.ID)

	// GC within the grace keeps everything; past it, only the orphans
	// beyond the new backup's 16 MiB go.
	res, err := r.GC(ctx, time.Now(), 0)
	if err != nil || res.Deleted != 0 {
		t.Fatalf("GC within the grace: %+v, %v; want nothing deleted", res, err)
	}
	res, err = r.GC(ctx, time.Now().Add(2*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GC past the grace: %+v", res)
	if res.Deleted == 0 || res.Missing != 0 {
		t.Errorf("GC after the kill: %+v; want the orphans deleted and nothing missing", res)
	}
	if left := len(chunkFiles(t, root)); left != res.Referenced {
		t.Errorf("%d chunks stored after GC; want exactly the %d referenced", left, res.Referenced)
	}
	verifyClean(t, r, before.ID)
	verifyClean(t, r, after.ID)
}

func verifyClean(t *testing.T, r *Repo, id string) {
	t.Helper()
	rep, err := r.Verify(context.Background(), id)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify(%s) = %+v, %v; want clean", id, rep, err)
	}
}

// TestFullDisk backs up into a 16 MiB tmpfs until it is full: the error
// says there is no space and names the repository, no partial object or
// manifest is left, the repository still opens and the earlier backup
// verifies.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if err := unix.Mount("strata-test", mnt, "tmpfs", 0, "size=16m,mode=0700"); err != nil {
		testenv.Skipf(t, "cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	ctx := context.Background()
	url := "file://" + filepath.Join(mnt, "repo")
	key, err := Init(ctx, url, Options{KeyFile: filepath.Join(t.TempDir(), "key")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	first := backupFiles(t, r, Meta{Group: "g"}, testFile{name: "a", data: randomBytes(1, 4*mib)})

	w := r.NewBackup(Meta{Group: "g"})
	err = w.AddFile(ctx, "big", randomReader(2, 32*mib), 0o600)
	if err == nil {
		_, err = w.Commit(ctx)
	} else {
		w.Abort()
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), url) {
		t.Fatalf("backup into a full disk: %v; want a no-space error naming %s", err, url)
	}
	t.Logf("error: %v", err)

	var temps []string
	_ = filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			temps = append(temps, p)
		}
		return nil
	})
	if len(temps) != 0 {
		t.Errorf("temporary files left after the failed writes: %v", temps)
	}
	r, err = Open(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := r.List(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != first.ID {
		t.Fatalf("List = %v, %v; want only %s", ids(ms), err, first.ID)
	}
	verifyClean(t, r, first.ID)
}

// TestS3Unreachable stops an S3 server under an open repository: backups,
// lists and opens fail with an error that names the operation, the URL
// and the cause, and once the server is back nothing stored was lost.
func TestS3Unreachable(t *testing.T) {
	if s3 == nil {
		testenv.Skipf(t, "%v", s3Skip)
	}
	ctx := context.Background()
	root := t.TempDir()
	srv, err := startS3Server(s3ServerBinary(), root, "")
	if err != nil {
		t.Fatal(err)
	}
	running := true
	t.Cleanup(func() {
		if running {
			srv.stop()
		}
	})
	url := srv.url("unreachable", "")
	key, err := Init(ctx, url, Options{KeyFile: filepath.Join(t.TempDir(), "key")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	first := backupFiles(t, r, Meta{Group: "g"}, testFile{name: "a", data: randomBytes(3, 3*mib)})

	srv.stop()
	running = false
	start := time.Now()
	w := r.NewBackup(Meta{Group: "g"})
	err = w.AddBytes(ctx, "b", randomBytes(4, mib), 0o600)
	w.Abort()
	wantUnreachable(t, err, url)
	_, err = r.List(ctx)
	wantUnreachable(t, err, url)
	_, err = Open(ctx, url, key)
	wantUnreachable(t, err, url)
	t.Logf("three failures in %v", time.Since(start).Round(time.Millisecond))

	srv, err = startS3Server(s3ServerBinary(), root, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	running = true
	ms, err := r.List(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != first.ID {
		t.Fatalf("List after restart = %v, %v; want %s", ids(ms), err, first.ID)
	}
	verifyClean(t, r, first.ID)
}

func wantUnreachable(t *testing.T, err error, url string) {
	t.Helper()
	var se *StorageError
	if !errors.As(err, &se) || se.URL != url || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v; want a StorageError naming %s and the refused connection", err, url)
	}
	t.Logf("error: %v", err)
}
