package repo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultGCGrace is how old an unreferenced chunk must be before GC
// deletes it: a backup that is running has stored chunks that no manifest
// names yet, and it must not lose them.
const DefaultGCGrace = time.Hour

// Retention says which backups Prune keeps, per group (Meta.GroupKey).
// A backup is kept if any rule keeps it:
//
//   - KeepLast n keeps the n newest backups.
//   - KeepHourly n walks the backups from newest to oldest and keeps the
//     newest backup of each UTC hour, until it has kept n of them. The
//     hours are the last n hours that have a backup, not the last n hours
//     of the clock: if backups stop for a week, a later Prune still keeps
//     n. KeepDaily does the same with UTC days, KeepWeekly with ISO 8601
//     weeks (Monday to Sunday, UTC).
//   - Backups whose time is after now (a clock that went back) are kept.
//
// A Retention that keeps nothing is refused.
type Retention struct {
	KeepLast   int
	KeepHourly int
	KeepDaily  int
	KeepWeekly int
	// Grace is passed to GC (0 means DefaultGCGrace).
	Grace time.Duration
}

func (ret Retention) validate() error {
	if ret.KeepLast < 0 || ret.KeepHourly < 0 || ret.KeepDaily < 0 || ret.KeepWeekly < 0 || ret.Grace < 0 {
		return fmt.Errorf("%w: retention %+v: counts and grace must not be negative", ErrInvalid, ret)
	}
	if ret.KeepLast+ret.KeepHourly+ret.KeepDaily+ret.KeepWeekly == 0 {
		return fmt.Errorf("%w: a retention that keeps nothing would delete every backup; set at least one of KeepLast, KeepHourly, KeepDaily, KeepWeekly", ErrInvalid)
	}
	return nil
}

// Decision is what Choose decided for one backup, and why.
type Decision struct {
	Backup  Manifest
	Keep    bool
	Reasons []string // "last", "hourly", "daily", "weekly", "future"; empty when removed
}

// retentionRule buckets a backup's time for one rule.
type retentionRule struct {
	reason string
	count  int
	bucket func(time.Time) string
}

// Choose applies the retention to backups (any order) and returns a
// decision for each, in the order given. It is a pure function: now only
// decides which backups are in the future.
func Choose(backups []Manifest, ret Retention, now time.Time) ([]Decision, error) {
	if err := ret.validate(); err != nil {
		return nil, err
	}
	groups := map[string][]int{}
	for i, m := range backups {
		groups[m.Meta.GroupKey()] = append(groups[m.Meta.GroupKey()], i)
	}
	out := make([]Decision, len(backups))
	for i, m := range backups {
		out[i] = Decision{Backup: m}
	}
	for _, idx := range groups {
		// Newest first; equal times by ID, so the choice is deterministic.
		slices.SortFunc(idx, func(a, b int) int {
			if c := backups[b].Time.Compare(backups[a].Time); c != 0 {
				return c
			}
			return cmp.Compare(backups[a].ID, backups[b].ID)
		})
		rules := []retentionRule{
			{"last", ret.KeepLast, func(time.Time) string { return "" }},
			{"hourly", ret.KeepHourly, func(t time.Time) string { return t.UTC().Format("2006-01-02T15") }},
			{"daily", ret.KeepDaily, func(t time.Time) string { return t.UTC().Format("2006-01-02") }},
			{"weekly", ret.KeepWeekly, func(t time.Time) string {
				y, w := t.UTC().ISOWeek()
				return fmt.Sprintf("%d-W%02d", y, w)
			}},
		}
		last := make([]*string, len(rules))
		for n, i := range idx {
			d := &out[i]
			if d.Backup.Time.After(now) {
				d.Reasons = append(d.Reasons, "future")
			}
			for r := range rules {
				rule := &rules[r]
				if rule.count == 0 {
					continue
				}
				b := rule.bucket(d.Backup.Time)
				if rule.reason == "last" {
					b = fmt.Sprint(n) // every backup is its own bucket
				}
				if last[r] != nil && *last[r] == b {
					continue
				}
				last[r] = &b
				rule.count--
				d.Reasons = append(d.Reasons, rule.reason)
			}
			d.Keep = len(d.Reasons) > 0
		}
	}
	return out, nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Kept    []Decision
	Deleted []Decision
	GC      GCResult
}

// Prune deletes the manifests of the backups the retention does not keep
// (see Choose), then runs GC with ret.Grace. now is the clock for both.
// It holds an exclusive lock throughout (see GC). It stops at the first
// failure; what it deleted until then is in the result.
func (r *Repo) Prune(ctx context.Context, ret Retention, now time.Time) (PruneResult, error) {
	var res PruneResult
	if err := ret.validate(); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	ctx, done, err := r.exclusiveOp(ctx, "prune")
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	defer done()
	res, err = r.prune(ctx, ret, now)
	if err != nil {
		return res, fmt.Errorf("prune: %w", lockCause(ctx, err))
	}
	return res, nil
}

func (r *Repo) prune(ctx context.Context, ret Retention, now time.Time) (PruneResult, error) {
	var res PruneResult
	ms, err := r.List(ctx)
	if err != nil {
		return res, err
	}
	ds, err := Choose(ms, ret, now)
	if err != nil {
		return res, err
	}
	for _, d := range ds {
		if d.Keep {
			res.Kept = append(res.Kept, d)
			continue
		}
		if err := r.st.Delete(ctx, d.Backup.objectName()); err != nil {
			return res, fmt.Errorf("delete backup %s: %w", d.Backup.ID, err)
		}
		res.Deleted = append(res.Deleted, d)
	}
	res.GC, err = r.gc(ctx, now, ret.Grace)
	return res, err
}

// GCResult says what GC found and removed.
type GCResult struct {
	// Referenced counts the distinct chunks that manifests name.
	Referenced int
	// Deleted and Freed count the chunks removed and their stored bytes.
	Deleted int
	Freed   int64
	// Young counts unreferenced chunks left because they are newer than
	// the grace period (a backup may be writing them).
	Young int
	// Missing counts chunks that manifests name but the storage lacks
	// (Verify says which backups and files they break).
	Missing int
	// StaleTemp counts leftovers of interrupted writes removed.
	StaleTemp int
}

// GC deletes every chunk that no manifest names and that was stored more
// than grace before now (grace 0 means DefaultGCGrace). It waits for the
// process's running Writers and readers to finish and holds new Writers
// back while it runs; then it takes an exclusive lock on the repository,
// which fails with ErrLocked while another process backs up, restores or
// prunes. If any manifest cannot be read it deletes nothing: a chunk's
// reference might be in it.
func (r *Repo) GC(ctx context.Context, now time.Time, grace time.Duration) (GCResult, error) {
	if grace < 0 {
		return GCResult{}, fmt.Errorf("gc: %w: negative grace %v", ErrInvalid, grace)
	}
	ctx, done, err := r.exclusiveOp(ctx, "gc")
	if err != nil {
		return GCResult{}, fmt.Errorf("gc: %w", err)
	}
	defer done()
	res, err := r.gc(ctx, now, grace)
	return res, lockCause(ctx, err)
}

// gc is GC under a lock already held.
func (r *Repo) gc(ctx context.Context, now time.Time, grace time.Duration) (GCResult, error) {
	var res GCResult
	if grace == 0 {
		grace = DefaultGCGrace
	}

	// Chunks are listed before manifests are read, so every chunk listed
	// that a manifest needs is seen as referenced.
	var chunks []ObjectInfo
	err := r.st.List(ctx, chunksPrefix, func(oi ObjectInfo) error {
		chunks = append(chunks, oi)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	ms, err := r.List(ctx)
	if err != nil {
		return res, fmt.Errorf("gc: deleting nothing: %w", err)
	}
	referenced := map[string]bool{}
	for _, m := range ms {
		for _, f := range m.Files {
			for _, c := range f.Chunks {
				referenced[c.ID.objectName()] = true
			}
		}
	}
	res.Referenced = len(referenced)
	cutoff := now.Add(-grace)
	stored := 0
	for _, oi := range chunks {
		if referenced[oi.Name] {
			stored++
			continue
		}
		if !oi.ModTime.Before(cutoff) || !strings.HasPrefix(oi.Name, chunksPrefix) {
			res.Young++
			continue
		}
		if err := r.st.Delete(ctx, oi.Name); err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		res.Deleted++
		res.Freed += oi.Size
	}
	res.Missing = res.Referenced - stored
	if c, ok := r.st.(staleCleaner); ok {
		n, err := c.RemoveStale(ctx, cutoff)
		res.StaleTemp = n
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
	}
	return res, nil
}
