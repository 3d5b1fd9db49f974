package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Lock objects: locksPrefix + 32 hexadecimal digits, sealed like a
// manifest with the object name as additional data.
const (
	locksPrefix = "locks/"
	lockIDLen   = 32
	lockFormat  = 1
)

// Defaults of Options.LockRefresh and Options.LockStaleAge.
const (
	DefaultLockRefresh  = 5 * time.Minute
	DefaultLockStaleAge = 30 * time.Minute
)

// lockReleaseTimeout bounds the deletion of a lock object on release,
// which runs even when the operation's context has ended.
const lockReleaseTimeout = time.Minute

// LockInfo is one lock object: who holds it, for what, since when. The
// stored fields are sealed with the repository key; Name, Stale,
// StaleReason and Err are filled in when it is read.
type LockInfo struct {
	// Name is the lock's object name, locks/<32 hexadecimal digits>.
	Name   string `json:"-"`
	Format int    `json:"format"`
	// Host, PID, Nonce, BootID and StartTime identify the holding
	// process: its host name and pid, a random value made once per
	// process, the host's boot ID and the process's start time (clock
	// ticks after boot). The last three tell, on the same host, a holder
	// that still runs from one that exited and whose pid was used again.
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	Nonce     string `json:"nonce"`
	BootID    string `json:"bootID,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"`
	// Holder is Options.Holder of the Repo that took the lock, for
	// example the daemon's name for the repository connection.
	Holder string `json:"holder,omitempty"`
	// Op is the operation: "backup", "restore", "verify", "delete",
	// "prune" or "gc".
	Op string `json:"op"`
	// Exclusive locks are taken by operations that delete, shared ones by
	// operations that add or read.
	Exclusive bool `json:"exclusive"`
	// Taken and Refreshed are the holder's clock when it took the lock and
	// when it last rewrote it.
	Taken     time.Time `json:"taken"`
	Refreshed time.Time `json:"refreshed"`

	// Stale says the lock no longer protects anything: it was not
	// refreshed for longer than the stale age, or its process is gone
	// from this host. StaleReason says which.
	Stale       bool   `json:"-"`
	StaleReason string `json:"-"`
	// Err is set when the object could not be opened (damaged, or sealed
	// with another key). Such a lock counts as exclusive and live until
	// its storage time is older than the stale age.
	Err error `json:"-"`
}

// Kind is "exclusive" or "shared".
func (l LockInfo) Kind() string {
	if l.Exclusive {
		return "exclusive"
	}
	return "shared"
}

// String describes the lock for messages.
func (l LockInfo) String() string {
	if l.Err != nil {
		return fmt.Sprintf("unreadable lock %s (%v)", l.Name, l.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s lock %s for %s held by pid %d on host %s", l.Kind(), l.Name, l.Op, l.PID, l.Host)
	if l.Holder != "" {
		fmt.Fprintf(&b, " (%s)", l.Holder)
	}
	fmt.Fprintf(&b, " since %s, last refreshed %s", l.Taken.UTC().Format(time.RFC3339), l.Refreshed.UTC().Format(time.RFC3339))
	if l.Stale {
		fmt.Fprintf(&b, ", stale: %s", l.StaleReason)
	}
	return b.String()
}

// LockedError is the failure to take a lock because another live lock
// conflicts with it. It wraps ErrLocked.
type LockedError struct {
	URL       string        // the repository
	Op        string        // the operation that wanted the lock
	Exclusive bool          // the kind of lock it wanted
	Held      []LockInfo    // the conflicting locks
	StaleAge  time.Duration // after which an unrefreshed lock is stale
}

func (e *LockedError) Error() string {
	want := "a shared"
	if e.Exclusive {
		want = "an exclusive"
	}
	held := make([]string, len(e.Held))
	for i, l := range e.Held {
		held[i] = l.String()
	}
	return fmt.Sprintf("%v: %s: cannot take %s lock for %s: %s; "+
		"wait for that operation to finish and try again; if its process is gone, its lock goes stale %v after its last refresh "+
		"(at once on the same host once the process has exited), and `strata repo unlock` removes stale locks",
		ErrLocked, e.URL, want, e.Op, strings.Join(held, "; "), e.StaleAge)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// errLockReleased is the cause of a released lock's context, and
// errLockLost wraps the reason a held lock was lost.
var (
	errLockReleased = errors.New("lock released")
	errLockLost     = errors.New("repository lock lost")
)

// repoLock is a lock this process holds: its object is refreshed in the
// background until release. If a refresh fails, ctx is cancelled with the
// reason, which fails the operation working under bind.
type repoLock struct {
	r    *Repo
	info LockInfo // owned by the refresh goroutine after start

	ctx  context.Context // cancelled when the lock is lost or released
	lose context.CancelCauseFunc

	bg       context.Context // for refresh requests; cancelled by release
	bgCancel context.CancelFunc
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	// none: a read on a read-only Repo, which writes no lock object.
	none bool
}

// lock takes a lock on the repository for op: it writes its lock object,
// then lists the locks, and if a live one conflicts (any other lock when
// exclusive, an exclusive one when shared) it removes its own and fails
// with a *LockedError. Two processes that race may both fail; neither
// proceeds while the other holds a conflicting lock. Stale locks found on
// the way are removed.
func (r *Repo) lock(ctx context.Context, op string, exclusive bool) (*repoLock, error) {
	kind := "shared"
	if exclusive {
		kind = "exclusive"
	}
	fail := func(err error) (*repoLock, error) {
		return nil, fmt.Errorf("take %s lock for %s: %w", kind, op, err)
	}
	if r.opts.ReadOnly {
		if exclusive || op == "backup" {
			return nil, fmt.Errorf("%s of %s: %w: the repository was opened read-only; open it with write access to change it", op, r.URL(), ErrReadOnly)
		}
		return noLock(r), nil
	}
	var idb [lockIDLen / 2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fail(err)
	}
	p := thisProcess()
	now := r.opts.Now().UTC()
	info := LockInfo{
		Name: locksPrefix + hex.EncodeToString(idb[:]), Format: lockFormat,
		Host: p.host, PID: p.pid, Nonce: p.nonce, BootID: p.boot, StartTime: p.start,
		Holder: r.opts.Holder, Op: op, Exclusive: exclusive, Taken: now, Refreshed: now,
	}
	// Held before it is visible, so that another Repo of this process
	// never takes it for a leftover.
	markHeld(r.id, info.Name, true)
	if err := r.putLock(ctx, &info); err != nil {
		r.dropLock(info.Name)
		return fail(err)
	}
	conflicts, err := r.conflicts(ctx, info.Name, exclusive)
	if err != nil {
		r.dropLock(info.Name)
		return fail(err)
	}
	if len(conflicts) > 0 {
		r.dropLock(info.Name)
		return nil, &LockedError{URL: r.URL(), Op: op, Exclusive: exclusive, Held: conflicts, StaleAge: r.opts.LockStaleAge}
	}
	l := &repoLock{r: r, info: info, stop: make(chan struct{}), done: make(chan struct{})}
	l.ctx, l.lose = context.WithCancelCause(context.Background())
	l.bg, l.bgCancel = context.WithCancel(context.Background())
	go l.run()
	return l, nil
}

// conflicts returns the live locks other than own that conflict with a
// lock of the given kind, and removes the stale ones it finds.
func (r *Repo) conflicts(ctx context.Context, own string, exclusive bool) ([]LockInfo, error) {
	locks, err := r.readLocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, l := range locks {
		switch {
		case l.Name == own:
		case l.Stale:
			// A stale lock that cannot be removed now is ignored all the
			// same; the next operation tries again.
			_ = r.st.Delete(ctx, l.Name)
		case exclusive || l.Exclusive || l.Err != nil:
			out = append(out, l)
		}
	}
	return out, nil
}

// dropLock deletes a lock object of this process, even when ctx has
// ended, and forgets it. A lock whose deletion fails stays behind as a
// leftover: stale at once for this process, after the stale age for
// others.
func (r *Repo) dropLock(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), lockReleaseTimeout)
	defer cancel()
	_ = r.st.Delete(ctx, name)
	markHeld(r.id, name, false)
}

func (r *Repo) putLock(ctx context.Context, l *LockInfo) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	sealed, _, err := r.seal.seal(nil, nil, data, []byte(l.Name), false)
	if err != nil {
		return err
	}
	return r.st.Put(ctx, l.Name, sealed)
}

// validLockName reports whether name is locks/<32 hexadecimal digits>.
func validLockName(name string) bool {
	id, ok := strings.CutPrefix(name, locksPrefix)
	return ok && len(id) == lockIDLen && strings.Trim(id, "0123456789abcdef") == ""
}

// readLocks lists and reads every lock object and judges whether it is
// stale. Objects under locks/ that are not named like locks are skipped.
func (r *Repo) readLocks(ctx context.Context) ([]LockInfo, error) {
	var objs []ObjectInfo
	err := r.st.List(ctx, locksPrefix, func(oi ObjectInfo) error {
		if validLockName(oi.Name) {
			objs = append(objs, oi)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	now := r.opts.Now()
	p := thisProcess()
	var out []LockInfo
	for _, oi := range objs {
		l, err := r.readLock(ctx, oi)
		if errors.Is(err, ErrNotFound) {
			continue // released since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("read lock: %w", err)
		}
		if l.Err != nil {
			if now.Sub(oi.ModTime) > r.opts.LockStaleAge {
				l.Stale, l.StaleReason = true, fmt.Sprintf("unreadable and stored more than %v ago", r.opts.LockStaleAge)
			}
		} else {
			l.StaleReason = staleReason(&l, now, r.opts.LockStaleAge, p, isHeld(r.id, l.Name), hostProcesses)
			l.Stale = l.StaleReason != ""
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b LockInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readLock reads one lock object. A storage failure is the error; an
// object that does not open or parse is a LockInfo with Err set.
func (r *Repo) readLock(ctx context.Context, oi ObjectInfo) (LockInfo, error) {
	sealed, err := r.st.Get(ctx, oi.Name)
	if err != nil {
		return LockInfo{}, err
	}
	l := LockInfo{Name: oi.Name}
	plain, _, err := r.seal.open(nil, nil, sealed, []byte(oi.Name))
	if err != nil {
		l.Err = err
		return l, nil
	}
	if err := json.Unmarshal(plain, &l); err != nil {
		l.Err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		return l, nil
	}
	if l.Format != lockFormat {
		l.Err = fmt.Errorf("%w: lock format %d (this strata reads %d)", ErrUnsupportedFormat, l.Format, lockFormat)
	}
	return l, nil
}

// processProbe looks up processes of this host; tests replace it.
type processProbe struct {
	alive func(pid int) bool
	start func(pid int) (uint64, bool)
}

var hostProcesses = processProbe{alive: pidAlive, start: processStart}

// staleReason says why lock l is stale, or "" when it is live, as seen at
// now by process p; held says whether l is among p's own held locks.
//
// A lock is stale when it was not refreshed for longer than staleAge.
// A lock of this host (same host name) is stale at once when the host
// has booted since it was taken, or its process has exited: the pid no
// longer exists, belongs to a process that started later, or is this
// process's pid with another nonce. A lock of this very process that it
// no longer holds was left behind by a failed release.
func staleReason(l *LockInfo, now time.Time, staleAge time.Duration, p processIdentity, held bool, probe processProbe) string {
	if age := now.Sub(l.Refreshed); age > staleAge {
		return fmt.Sprintf("not refreshed for %v (stale after %v)", age.Round(time.Second), staleAge)
	}
	if p.host == "" || l.Host != p.host {
		return ""
	}
	if l.BootID != "" && p.boot != "" && l.BootID != p.boot {
		return "taken before host " + l.Host + " last booted"
	}
	if l.PID == p.pid {
		switch {
		case l.Nonce != p.nonce:
			return fmt.Sprintf("taken by an earlier process with pid %d, which has exited", l.PID)
		case !held:
			return "left behind by this process, which no longer holds it"
		}
		return ""
	}
	if !probe.alive(l.PID) {
		return fmt.Sprintf("process %d has exited", l.PID)
	}
	if l.StartTime != 0 {
		if s, ok := probe.start(l.PID); ok && s != l.StartTime {
			return fmt.Sprintf("process %d has exited (the pid now belongs to another process)", l.PID)
		}
	}
	return ""
}

// run refreshes the lock every LockRefresh until release, and loses it
// on the first failure.
func (l *repoLock) run() {
	defer close(l.done)
	t := time.NewTicker(l.r.opts.LockRefresh)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.refresh(lastOK); err != nil {
			select {
			case <-l.stop:
				return // released while refreshing: not a loss
			default:
			}
			l.lose(fmt.Errorf("%w: %w", errLockLost, err))
			return
		}
		lastOK = time.Now()
	}
}

// refresh rewrites the lock with a new refresh time. It fails when the
// last successful refresh is older than the stale age (others may have
// removed the lock meanwhile), when the object is gone (someone removed
// it), or when the storage fails.
func (l *repoLock) refresh(lastOK time.Time) error {
	staleAge := l.r.opts.LockStaleAge
	deadline := lastOK.Add(staleAge)
	if time.Now().After(deadline) {
		return fmt.Errorf("lock %s was not refreshed for longer than the stale age %v, so other processes may have removed it; the %s stops", l.info.Name, staleAge, l.info.Op)
	}
	ctx, cancel := context.WithDeadline(l.bg, deadline)
	defer cancel()
	if _, err := l.r.st.Stat(ctx, l.info.Name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("lock %s was removed by another process (by `strata repo unlock`, or because it took it for stale); the %s stops", l.info.Name, l.info.Op)
		}
		return fmt.Errorf("refresh lock %s: %w; the %s stops", l.info.Name, err, l.info.Op)
	}
	l.info.Refreshed = l.r.opts.Now().UTC()
	if err := l.r.putLock(ctx, &l.info); err != nil {
		return fmt.Errorf("refresh lock %s: %w; the %s stops", l.info.Name, err, l.info.Op)
	}
	return nil
}

// err returns why the lock was lost, or nil while it is held.
func (l *repoLock) err() error {
	if l.ctx.Err() != nil {
		return context.Cause(l.ctx)
	}
	return nil
}

// check confirms, now, that the lock object is still in the repository: an
// operation about to make its work visible (a backup's manifest) must not
// rely on the last refresh alone, since `strata repo unlock --lock` may have
// removed the lock since, and a prune deleted what the operation reuses.
func (l *repoLock) check(ctx context.Context) error {
	if err := l.err(); err != nil {
		return err
	}
	_, err := l.r.st.Stat(ctx, l.info.Name)
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("%w: lock %s was removed by another process; the %s stops", errLockLost, l.info.Name, l.info.Op)
		l.lose(err)
		return err
	}
	if err != nil {
		return fmt.Errorf("check lock %s: %w", l.info.Name, err)
	}
	return nil
}

// bind returns a context that ends with ctx or when the lock is lost,
// whose cause is then the reason.
func (l *repoLock) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// noLock is what a read takes on a read-only Repo: no lock object, never
// lost, nothing to release.
func noLock(r *Repo) *repoLock {
	l := &repoLock{r: r, none: true}
	l.ctx, l.lose = context.WithCancelCause(context.Background())
	return l
}

// release stops the refreshing and deletes the lock object. It is safe
// to call more than once.
func (l *repoLock) release() {
	if l.none {
		l.once.Do(func() { l.lose(errLockReleased) })
		return
	}
	l.once.Do(func() {
		close(l.stop)
		l.bgCancel()
		<-l.done
		l.lose(errLockReleased)
		l.r.dropLock(l.info.Name)
	})
}

// Locks returns the repository's locks, sorted by name, each judged
// stale or live as the next operation would judge it.
func (r *Repo) Locks(ctx context.Context) ([]LockInfo, error) {
	locks, err := r.readLocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("locks of %s: %w", r.URL(), err)
	}
	return locks, nil
}

// RemoveStaleLocks deletes the stale locks (see Locks) and returns them.
// Live locks stay: their operations are still running.
func (r *Repo) RemoveStaleLocks(ctx context.Context) ([]LockInfo, error) {
	if r.opts.ReadOnly {
		return nil, fmt.Errorf("remove stale locks of %s: %w: the repository was opened read-only", r.URL(), ErrReadOnly)
	}
	locks, err := r.readLocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("remove stale locks of %s: %w", r.URL(), err)
	}
	var removed []LockInfo
	for _, l := range locks {
		if !l.Stale {
			continue
		}
		if err := r.st.Delete(ctx, l.Name); err != nil {
			return removed, fmt.Errorf("remove stale locks of %s: %w", r.URL(), err)
		}
		removed = append(removed, l)
	}
	return removed, nil
}

// RemoveLock deletes the lock with this name (locks/<ID>, or the bare ID)
// whether it is stale or not. It is for a lock of a host that is gone for
// good, before its lock goes stale: removing the lock of an operation that
// still runs lets a conflicting one start, and the running operation
// fails at its next refresh.
func (r *Repo) RemoveLock(ctx context.Context, name string) error {
	if r.opts.ReadOnly {
		return fmt.Errorf("remove lock: %w: the repository %s was opened read-only", ErrReadOnly, r.URL())
	}
	if !strings.HasPrefix(name, locksPrefix) {
		name = locksPrefix + name
	}
	if !validLockName(name) {
		return fmt.Errorf("remove lock: %w: %q is not a lock name; want %s<%d hexadecimal digits> as Locks lists them", ErrInvalid, name, locksPrefix, lockIDLen)
	}
	if _, err := r.st.Stat(ctx, name); err != nil {
		return fmt.Errorf("remove lock: %w", err)
	}
	if err := r.st.Delete(ctx, name); err != nil {
		return fmt.Errorf("remove lock: %w", err)
	}
	return nil
}

// exclusiveOp starts an operation that deletes: it waits for this
// process's Writers and readers (and holds new Writers back), then takes
// an exclusive lock. It returns the context to work under, which ends if
// the lock is lost, and the function that ends the operation.
func (r *Repo) exclusiveOp(ctx context.Context, op string) (context.Context, func(), error) {
	if err := r.exclude.lockExclusive(ctx); err != nil {
		return nil, nil, fmt.Errorf("wait for this process's running backups and restores: %w", err)
	}
	l, err := r.lock(ctx, op, true)
	if err != nil {
		r.exclude.unlockExclusive()
		return nil, nil, err
	}
	ctx, unbind := l.bind(ctx)
	return ctx, func() {
		unbind()
		l.release()
		r.exclude.unlockExclusive()
	}, nil
}

// readOp starts an operation that reads chunks: it waits while an
// exclusive operation of this process runs, then takes a shared lock.
// It returns like exclusiveOp.
func (r *Repo) readOp(ctx context.Context, op string) (context.Context, func(), error) {
	if err := r.exclude.lockReader(ctx); err != nil {
		return nil, nil, fmt.Errorf("wait for this process's garbage collection: %w", err)
	}
	l, err := r.lock(ctx, op, false)
	if err != nil {
		r.exclude.unlockShared()
		return nil, nil, err
	}
	ctx, unbind := l.bind(ctx)
	return ctx, func() {
		unbind()
		l.release()
		r.exclude.unlockShared()
	}, nil
}

// lockCause returns err, or, when ctx ended because its lock was lost,
// the reason joined with err (which then usually just says "context
// canceled").
func lockCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if c := context.Cause(ctx); errors.Is(c, errLockLost) && !errors.Is(err, errLockLost) {
		return fmt.Errorf("%w (%w)", c, err)
	}
	return err
}
