package repo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// otherProcess opens a second Repo on the repository at url that behaves
// like one in another process: it has its own in-process exclusion, so it
// meets the other Repos' operations only through the lock objects.
func otherProcess(t testing.TB, url string, key Key, opts Options) *Repo {
	t.Helper()
	st, err := OpenStorage(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return otherProcessOn(t, st, key, opts)
}

func otherProcessOn(t testing.TB, st Storage, key Key, opts Options) *Repo {
	t.Helper()
	r, err := OpenStorageRepo(context.Background(), st, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.exclude = &exclusion{changed: make(chan struct{})}
	return r
}

// wantLocked fails the test unless err is a *LockedError whose one held
// lock is of the given kind and operation and held by pid on this host,
// and whose message says who holds it and what to do.
func wantLocked(t testing.TB, err error, exclusive bool, op string, pid int) {
	t.Helper()
	host, _ := os.Hostname()
	wantLockedBy(t, err, exclusive, op, host, pid)
}

// wantLockedBy is wantLocked for a holder on host.
func wantLockedBy(t testing.TB, err error, exclusive bool, op, host string, pid int) {
	t.Helper()
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("error %v; want a LockedError", err)
	}
	if len(le.Held) != 1 {
		t.Fatalf("LockedError holds %d locks; want 1: %v", len(le.Held), err)
	}
	h := le.Held[0]
	if h.Exclusive != exclusive || h.Op != op || h.PID != pid || h.Host != host {
		t.Fatalf("conflicting lock %+v; want exclusive=%v op %s pid %d host %s", h, exclusive, op, pid, host)
	}
	msg := err.Error()
	for _, part := range []string{h.Kind() + " lock", "for " + op, "pid " + strconv.Itoa(pid), "host " + host, "since", "wait for", "strata repo unlock"} {
		if !strings.Contains(msg, part) {
			t.Fatalf("error %q does not say %q", msg, part)
		}
	}
	t.Logf("error: %v", err)
}

// lockNames returns the names of the repository's lock objects.
func lockNames(t testing.TB, r *Repo) []string {
	t.Helper()
	var names []string
	err := r.st.List(context.Background(), locksPrefix, func(oi ObjectInfo) error {
		names = append(names, oi.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func wantNoLocks(t testing.TB, r *Repo) {
	t.Helper()
	if names := lockNames(t, r); len(names) != 0 {
		t.Fatalf("lock objects left: %v", names)
	}
}

// putTestLock stores a lock as another process would: by default one of
// this host and process that is not held, edited by mutate.
func putTestLock(t testing.TB, r *Repo, mutate func(*LockInfo)) LockInfo {
	t.Helper()
	var b [lockIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	p := thisProcess()
	now := r.opts.Now().UTC()
	l := LockInfo{Name: locksPrefix + hex.EncodeToString(b[:]), Format: lockFormat,
		Host: p.host, PID: p.pid, Nonce: p.nonce, BootID: p.boot, StartTime: p.start,
		Op: "backup", Taken: now, Refreshed: now}
	mutate(&l)
	if err := r.putLock(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLockWriterBlocksDelete runs a Writer in one "process": Prune, GC
// and Delete in another fail with ErrLocked naming the Writer's lock,
// while other Writers and readers go ahead; after Commit, Prune works and
// no lock is left.
func TestLockWriterBlocksDelete(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			_, url, key := newRepo(t, b)
			r1 := otherProcess(t, url, key, Options{Holder: "first"})
			r2 := otherProcess(t, url, key, Options{Holder: "second"})
			old := backupFiles(t, r1, Meta{Group: "g"}, testFile{name: "a", data: []byte("old")})

			w := r1.NewBackup(Meta{Group: "g"})
			if err := w.AddBytes(ctx, "a", randomBytes(1, mib), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := r2.Prune(ctx, Retention{KeepLast: 1}, time.Now())
			wantLocked(t, err, false, "backup", os.Getpid())
			if !strings.Contains(err.Error(), "(first)") {
				t.Errorf("error %q does not name the holder", err)
			}
			_, err = r2.GC(ctx, time.Now(), 0)
			wantLocked(t, err, false, "backup", os.Getpid())
			err = r2.Delete(ctx, old.ID)
			wantLocked(t, err, false, "backup", os.Getpid())

			// Shared locks do not conflict: another backup and a verify run.
			other := backupFiles(t, r2, Meta{Group: "g"}, testFile{name: "b", data: []byte("other")})
			verifyClean(t, r2, old.ID)
			if n := len(lockNames(t, r1)); n != 1 {
				t.Fatalf("%d lock objects while one Writer runs; want 1", n)
			}

			m, err := w.Commit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantNoLocks(t, r1)
			res, err := r2.Prune(ctx, Retention{KeepLast: 1}, time.Now())
			if err != nil {
				t.Fatalf("Prune after Commit: %v", err)
			}
			if len(res.Deleted) != 2 || len(res.Kept) != 1 || res.Kept[0].Backup.ID != m.ID && res.Kept[0].Backup.ID != other.ID {
				t.Fatalf("Prune kept %d, deleted %d", len(res.Kept), len(res.Deleted))
			}
			wantNoLocks(t, r1)
		})
	}
}

// TestLockExclusiveBlocksShared holds an exclusive lock in one "process":
// a Writer, a verify, a restore and a GC in another fail with ErrLocked
// and leave no lock behind; once it is released they work.
func TestLockExclusiveBlocksShared(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			_, url, key := newRepo(t, b)
			r1 := otherProcess(t, url, key, Options{})
			r2 := otherProcess(t, url, key, Options{})
			m := backupFiles(t, r2, Meta{Group: "g"}, testFile{name: "a", data: randomBytes(2, mib)})

			_, done, err := r1.exclusiveOp(ctx, "prune")
			if err != nil {
				t.Fatal(err)
			}
			w := r2.NewBackup(Meta{Group: "g"})
			err = w.AddBytes(ctx, "a", []byte("x"), 0o600)
			wantLocked(t, err, true, "prune", os.Getpid())
			_, err = w.Commit(ctx)
			errIs(t, err, ErrLocked) // the Writer is spent
			_, err = r2.Verify(ctx, m.ID)
			wantLocked(t, err, true, "prune", os.Getpid())
			_, err = r2.OpenFile(ctx, m, "a")
			wantLocked(t, err, true, "prune", os.Getpid())
			_, err = r2.GC(ctx, time.Now(), 0)
			wantLocked(t, err, true, "prune", os.Getpid())
			if n := len(lockNames(t, r1)); n != 1 {
				t.Fatalf("%d lock objects after the failed attempts; want only the exclusive one", n)
			}

			done()
			wantNoLocks(t, r1)
			backupFiles(t, r2, Meta{Group: "g"}, testFile{name: "b", data: []byte("y")})
			rc, err := r2.OpenFile(ctx, m, "a")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(lockNames(t, r1)); n != 1 {
				t.Fatalf("%d lock objects while a file is open; want 1", n)
			}
			rc.Close()
			wantNoLocks(t, r1)
		})
	}
}

// TestLockInProcess checks that within one process locks never conflict
// with each other: GC waits for the process's Writer (as before locks
// existed) and then runs, Delete too.
func TestLockInProcess(t *testing.T) {
	ctx := context.Background()
	r, url, key := newRepo(t, fileBackend())
	r2, err := Open(ctx, url, key) // a second Repo of the same process shares its exclusion
	if err != nil {
		t.Fatal(err)
	}
	m := backupFiles(t, r, Meta{Group: "g"}, testFile{name: "a", data: []byte("a")})
	w := r.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "b", []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	gcDone := make(chan error, 1)
	go func() {
		_, err := r2.GC(ctx, time.Now(), 0)
		gcDone <- err
	}()
	select {
	case err := <-gcDone:
		t.Fatalf("GC ended (%v) while a Writer of the process runs; want it to wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-gcDone; err != nil {
		t.Fatalf("GC after the Writer: %v", err)
	}
	if err := r2.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	wantNoLocks(t, r)
}

// notifyStorage wraps a Storage: it reports each completed Put of a lock
// on puts, and fails lock Puts while failLocks is set.
type notifyStorage struct {
	Storage
	puts      chan string
	failLocks atomic.Bool
}

var errInjected = errors.New("injected failure")

func (s *notifyStorage) Put(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, locksPrefix) && s.failLocks.Load() {
		return &StorageError{Op: "put", URL: s.URL(), Name: name, Err: errInjected}
	}
	err := s.Storage.Put(ctx, name, data)
	if err == nil && strings.HasPrefix(name, locksPrefix) {
		select {
		case s.puts <- name:
		default:
		}
	}
	return err
}

// TestLockStaleByAge takes a Writer's lock with a clock that stands
// still: another process whose clock is past the stale age sees it stale,
// its GC removes it and runs, and the Writer finds its lock gone at the
// next refresh, so its Commit fails instead of writing a backup whose
// chunks a GC may have deleted.
func TestLockStaleByAge(t *testing.T) {
	ctx := context.Background()
	_, url, key := newRepo(t, fileBackend())
	st, err := OpenStorage(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifyStorage{Storage: st, puts: make(chan string, 1)}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r1 := otherProcessOn(t, ns, key, Options{Now: func() time.Time { return t0 }, LockRefresh: 100 * time.Millisecond, LockStaleAge: time.Hour})
	r2 := otherProcess(t, url, key, Options{Now: func() time.Time { return t0.Add(time.Hour + time.Minute) }})

	w := r1.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "a", []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Right after a refresh, so that the next one comes after the removal.
	<-ns.puts
	<-ns.puts
	locks, err := r2.Locks(ctx)
	if err != nil || len(locks) != 1 || !locks[0].Stale || !strings.Contains(locks[0].StaleReason, "not refreshed for 1h1m0s") {
		t.Fatalf("Locks = %+v, %v; want the Writer's lock, stale", locks, err)
	}
	t.Logf("lock: %v", locks[0])
	if _, err := r2.GC(ctx, t0, 0); err != nil {
		t.Fatalf("GC with only a stale lock: %v", err)
	}
	wantNoLocks(t, r2)

	deadline := time.Now().Add(10 * time.Second)
	for w.lock.err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err = w.Commit(ctx)
	errIs(t, err, errLockLost)
	if !strings.Contains(err.Error(), "removed by another process") {
		t.Fatalf("Commit after the lock was removed: %v", err)
	}
	t.Logf("commit: %v", err)
	if ms, _ := r2.List(ctx); len(ms) != 0 {
		t.Fatalf("a backup whose lock was lost was committed: %v", ids(ms))
	}
	wantNoLocks(t, r2)
}

// TestLockRefresh runs a Writer far longer than the stale age with a
// short refresh interval: its lock stays live, its refresh time moves,
// and a GC elsewhere keeps failing until Commit.
func TestLockRefresh(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			_, url, key := newRepo(t, b)
			opts := Options{LockRefresh: 30 * time.Millisecond, LockStaleAge: 600 * time.Millisecond}
			r1 := otherProcess(t, url, key, opts)
			r2 := otherProcess(t, url, key, opts)
			w := r1.NewBackup(Meta{Group: "g"})
			if err := w.AddBytes(ctx, "a", []byte("a"), 0o600); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * opts.LockStaleAge)
			locks, err := r2.Locks(ctx)
			if err != nil || len(locks) != 1 || locks[0].Stale {
				t.Fatalf("Locks = %+v, %v; want the Writer's lock, live", locks, err)
			}
			if age := locks[0].Refreshed.Sub(locks[0].Taken); age < 2*opts.LockStaleAge {
				t.Fatalf("lock refreshed %v after it was taken; want it kept fresh for %v", age, 3*opts.LockStaleAge)
			}
			_, err = r2.GC(ctx, time.Now(), 0)
			wantLocked(t, err, false, "backup", os.Getpid())
			if err := w.AddBytes(ctx, "b", []byte("b"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			wantNoLocks(t, r1)
			if _, err := r2.GC(ctx, time.Now(), 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLockRefreshFails makes the storage refuse the lock's refresh: the
// Writer's next AddFile and its Commit fail, saying why, and the lock is
// gone once the storage works again.
func TestLockRefreshFails(t *testing.T) {
	ctx := context.Background()
	_, url, key := newRepo(t, fileBackend())
	st, err := OpenStorage(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifyStorage{Storage: st, puts: make(chan string, 1)}
	r := otherProcessOn(t, ns, key, Options{LockRefresh: 20 * time.Millisecond, LockStaleAge: time.Minute})
	w := r.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "a", []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	ns.failLocks.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for w.lock.err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	err = w.AddFile(ctx, "b", randomReader(3, 4*mib), 0o600)
	errIs(t, err, errLockLost)
	errIs(t, err, errInjected)
	if !strings.Contains(err.Error(), "refresh lock") || !strings.Contains(err.Error(), "the backup stops") {
		t.Fatalf("AddFile after a failed refresh: %v", err)
	}
	t.Logf("error: %v", err)
	_, err = w.Commit(ctx)
	errIs(t, err, errLockLost)
	ns.failLocks.Store(false)
	wantNoLocks(t, r)
	if ms, _ := r.List(ctx); len(ms) != 0 {
		t.Fatalf("backups after a failed refresh: %v", ids(ms))
	}
}

// deadPID starts and reaps a short process and returns its pid, which
// then belongs to no process.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true(1) to get a dead pid: %v", err)
	}
	pid := cmd.Process.Pid
	if pidAlive(pid) {
		t.Skipf("pid %d was used again at once", pid)
	}
	return pid
}

// TestLockDeadHolder stores locks of other processes: a lock of this host
// whose process has exited (or whose pid now belongs to a later process)
// is stale at once and removed by the next operation; a lock of a live
// process here, or of another host, blocks it.
func TestLockDeadHolder(t *testing.T) {
	ctx := context.Background()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Skipf("cannot start sleep(1): %v", err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill() // it is still sleeping
		_ = sleeper.Wait()         // "signal: killed"
	})
	live := sleeper.Process.Pid
	liveStart, ok := processStart(live)
	if !ok {
		t.Skip("no /proc/<pid>/stat here to tell a process's start time")
	}
	dead := deadPID(t)

	cases := []struct {
		name   string
		mutate func(*LockInfo)
		stale  string // the reason, or "" for a live lock
	}{
		{"dead pid", func(l *LockInfo) { l.PID, l.Nonce, l.StartTime = dead, "other", 0 }, fmt.Sprintf("process %d has exited", dead)},
		{"pid used again", func(l *LockInfo) { l.PID, l.Nonce, l.StartTime = live, "other", liveStart+1 }, "the pid now belongs to another process"},
		{"live pid", func(l *LockInfo) { l.PID, l.Nonce, l.StartTime = live, "other", liveStart }, ""},
		{"other host", func(l *LockInfo) { l.Host, l.PID, l.Nonce = "elsewhere.example", dead, "other" }, ""},
		{"left behind here", func(*LockInfo) {}, "left behind by this process"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _, _ := newRepo(t, fileBackend())
			l := putTestLock(t, r, func(l *LockInfo) {
				l.Exclusive, l.Op = true, "prune"
				tc.mutate(l)
			})
			locks, err := r.Locks(ctx)
			if err != nil || len(locks) != 1 || locks[0].Name != l.Name {
				t.Fatalf("Locks = %+v, %v; want the lock stored", locks, err)
			}
			if !strings.Contains(locks[0].StaleReason, tc.stale) || locks[0].Stale != (tc.stale != "") {
				t.Fatalf("lock judged stale=%v (%q); want stale reason %q", locks[0].Stale, locks[0].StaleReason, tc.stale)
			}
			w := r.NewBackup(Meta{Group: "g"})
			err = w.AddBytes(ctx, "a", []byte("a"), 0o600)
			w.Abort()
			if tc.stale == "" {
				wantLockedBy(t, err, true, "prune", l.Host, l.PID)
				if names := lockNames(t, r); len(names) != 1 {
					t.Fatalf("lock objects %v; want the live lock only", names)
				}
				return
			}
			if err != nil {
				t.Fatalf("backup with a stale lock stored: %v", err)
			}
			wantNoLocks(t, r)
		})
	}
}

// TestStaleReason judges locks against a fake process table.
func TestStaleReason(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	me := processIdentity{host: "h1", pid: 100, nonce: "n1", boot: "b1", start: 500}
	probe := processProbe{
		alive: func(pid int) bool { return pid == 100 || pid == 200 },
		start: func(pid int) (uint64, bool) { return map[int]uint64{100: 500, 200: 700}[pid], true },
	}
	base := LockInfo{Host: "h1", PID: 200, Nonce: "n2", BootID: "b1", StartTime: 700, Refreshed: now.Add(-time.Minute)}
	cases := []struct {
		name   string
		edit   func(*LockInfo)
		held   bool
		me     processIdentity
		reason string
	}{
		{"live process here", func(*LockInfo) {}, false, me, ""},
		{"old", func(l *LockInfo) { l.Refreshed = now.Add(-31 * time.Minute) }, false, me, "not refreshed for 31m0s (stale after 30m0s)"},
		{"old, other host", func(l *LockInfo) { l.Host, l.Refreshed = "h2", now.Add(-31*time.Minute) }, false, me, "not refreshed"},
		{"future refresh (clock skew)", func(l *LockInfo) { l.Refreshed = now.Add(time.Hour) }, false, me, ""},
		{"other host, pid unknown here", func(l *LockInfo) { l.Host, l.PID = "h2", 999 }, false, me, ""},
		{"exited", func(l *LockInfo) { l.PID = 300 }, false, me, "process 300 has exited"},
		{"pid used again", func(l *LockInfo) { l.StartTime = 650 }, false, me, "the pid now belongs to another process"},
		{"start time unknown", func(l *LockInfo) { l.StartTime = 0 }, false, me, ""},
		{"before a reboot", func(l *LockInfo) { l.BootID = "b0" }, false, me, "taken before host h1 last booted"},
		{"boot unknown", func(l *LockInfo) { l.BootID = "" }, false, me, ""},
		{"this process, held", func(l *LockInfo) { l.PID, l.Nonce, l.StartTime = 100, "n1", 500 }, true, me, ""},
		{"this process, left behind", func(l *LockInfo) { l.PID, l.Nonce, l.StartTime = 100, "n1", 500 }, false, me, "left behind"},
		{"this pid, earlier process", func(l *LockInfo) { l.PID, l.Nonce, l.StartTime = 100, "n0", 0 }, false, me, "earlier process with pid 100"},
		{"no host name here", func(l *LockInfo) { l.PID = 300 }, false, processIdentity{pid: 100, nonce: "n1"}, ""},
	}
	for _, tc := range cases {
		l := base
		tc.edit(&l)
		got := staleReason(&l, now, DefaultLockStaleAge, tc.me, tc.held, probe)
		if tc.reason == "" && got != "" || !strings.Contains(got, tc.reason) {
			t.Errorf("%s: stale reason %q; want %q", tc.name, got, tc.reason)
		}
	}
}

// TestRemoveLocks covers RemoveStaleLocks and RemoveLock: stale locks go,
// live ones stay, an unreadable lock blocks until removed by name, and
// objects under locks/ not named like locks are no locks.
func TestRemoveLocks(t *testing.T) {
	ctx := context.Background()
	r, url, key := newRepo(t, fileBackend())
	w := r.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "a", []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := putTestLock(t, r, func(l *LockInfo) {
		l.Host, l.Nonce, l.Refreshed = "gone.example", "other", l.Refreshed.Add(-time.Hour)
	})
	junk := locksPrefix + strings.Repeat("ab", lockIDLen/2)
	if err := r.st.Put(ctx, junk, []byte("not a sealed lock")); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Put(ctx, locksPrefix+"README", []byte("not a lock name")); err != nil {
		t.Fatal(err)
	}

	removed, err := r.RemoveStaleLocks(ctx)
	if err != nil || len(removed) != 1 || removed[0].Name != stale.Name {
		t.Fatalf("RemoveStaleLocks = %+v, %v; want only %s", removed, err, stale.Name)
	}
	locks, err := r.Locks(ctx)
	if err != nil || len(locks) != 2 {
		t.Fatalf("Locks = %+v, %v; want the Writer's and the unreadable one", locks, err)
	}
	r2 := otherProcess(t, url, key, Options{})
	_, err = r2.GC(ctx, time.Now(), 0)
	var le *LockedError
	if !errors.As(err, &le) || len(le.Held) != 2 || !strings.Contains(err.Error(), "unreadable lock "+junk) {
		t.Fatalf("GC with a live and an unreadable lock: %v", err)
	}
	errIs(t, r.RemoveLock(ctx, "nonsense"), ErrInvalid)
	if err := r.RemoveLock(ctx, strings.TrimPrefix(junk, locksPrefix)); err != nil {
		t.Fatal(err)
	}
	errIs(t, r.RemoveLock(ctx, junk), ErrNotFound)
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.GC(ctx, time.Now(), 0); err != nil {
		t.Fatalf("GC with no lock left: %v", err)
	}
	if names := lockNames(t, r); len(names) != 1 || names[0] != locksPrefix+"README" {
		t.Fatalf("objects under locks/: %v; want only the README", names)
	}
}

// Environment of the child process of TestLockKilledHolder.
const (
	envLockChild = "STRATA_REPO_LOCK_CHILD" // the repository URL
	envLockKey   = "STRATA_REPO_LOCK_KEY"
)

// lockChild starts a backup (which takes a shared lock), says "locked"
// and waits to be killed.
func lockChild() {
	ctx := context.Background()
	key, err := ParseKey(os.Getenv(envLockKey))
	if err == nil {
		var r *Repo
		r, err = Open(ctx, os.Getenv(envLockChild), key)
		if err == nil {
			w := r.NewBackup(Meta{Group: "child"})
			err = w.AddBytes(ctx, "a", []byte("a"), 0o600)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
	os.Exit(2)
}

// TestLockKilledHolder kills a process with SIGKILL while it holds a
// Writer's lock: while it lives its lock blocks GC here, naming it; once
// it is dead the lock is stale at once (same host, pid gone), and the
// next GC removes it and runs.
func TestLockKilledHolder(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			r, url, key := newRepo(t, b)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envLockChild+"="+url, envLockKey+"="+key.Hex())
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			reaped := false
			t.Cleanup(func() {
				if !reaped {
					_ = cmd.Process.Kill() // the test failed before it killed the child
					_ = cmd.Wait()
				}
			})
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "locked" {
				t.Fatalf("child said %q, %v; stderr: %s", line, err, stderr.String())
			}
			child := cmd.Process.Pid
			_, err = r.GC(ctx, time.Now(), 0)
			wantLocked(t, err, false, "backup", child)

			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait() // "signal: killed"
			reaped = true
			locks, err := r.Locks(ctx)
			if err != nil || len(locks) != 1 || !locks[0].Stale {
				t.Fatalf("Locks after the kill = %+v, %v; want the child's lock, stale", locks, err)
			}
			t.Logf("lock: %v", locks[0])
			if _, err := r.GC(ctx, time.Now(), 0); err != nil {
				t.Fatalf("GC after the holder was killed: %v", err)
			}
			wantNoLocks(t, r)
		})
	}
}

// TestLockRace has several "processes" take shared and exclusive locks at
// once, many times: an exclusive holder never overlaps any other holder,
// and every lock object is gone at the end.
func TestLockRace(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			_, url, key := newRepo(t, b)
			const procs, rounds = 4, 12
			var (
				mu               sync.Mutex
				shared, excl     int
				gotShared, gotEx atomic.Int32
				violation        atomic.Value
			)
			enter := func(exclusive bool) {
				mu.Lock()
				defer mu.Unlock()
				if excl > 0 || exclusive && shared > 0 {
					violation.Store(fmt.Sprintf("exclusive=%v entered with %d shared and %d exclusive holders", exclusive, shared, excl))
				}
				if exclusive {
					excl++
				} else {
					shared++
				}
			}
			leave := func(exclusive bool) {
				mu.Lock()
				defer mu.Unlock()
				if exclusive {
					excl--
				} else {
					shared--
				}
			}
			var wg sync.WaitGroup
			for p := range procs {
				r := otherProcess(t, url, key, Options{})
				wg.Go(func() {
					for i := range rounds {
						exclusive := (p+i)%3 == 0
						l, err := r.lock(ctx, "test", exclusive)
						if errors.Is(err, ErrLocked) {
							continue
						}
						if err != nil {
							violation.Store(err.Error())
							return
						}
						enter(exclusive)
						time.Sleep(2 * time.Millisecond)
						leave(exclusive)
						l.release()
						if exclusive {
							gotEx.Add(1)
						} else {
							gotShared.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if v := violation.Load(); v != nil {
				t.Fatal(v)
			}
			t.Logf("%d shared and %d exclusive locks taken of %d attempts", gotShared.Load(), gotEx.Load(), procs*rounds)
			if gotShared.Load() == 0 || gotEx.Load() == 0 {
				t.Errorf("no lock of one kind was ever taken")
			}
			wantNoLocks(t, otherProcess(t, url, key, Options{}))
		})
	}
}

// TestCommitAfterLockRemoved: a Writer whose lock was removed by force (as `strata
// repo unlock --lock` does) between two refreshes does not write its manifest: a prune
// may have deleted the chunks it reuses.
func TestCommitAfterLockRemoved(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newRepo(t, fileBackend())
	w := r.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "a", []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	locks, err := r.Locks(ctx)
	if err != nil || len(locks) != 1 {
		t.Fatalf("Locks = %+v, %v; want the Writer's", locks, err)
	}
	if err := r.RemoveLock(ctx, locks[0].Name); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); !errors.Is(err, errLockLost) {
		t.Fatalf("Commit after the lock was removed: %v, want the lock lost", err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("backups after the failed commit: %+v, %v; want none", list, err)
	}
}
