package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

// DefaultScheduleTick is how often the schedule loop looks for due backups.
const DefaultScheduleTick = 5 * time.Second

// scheduled is one backup the schedule loop takes: a group of workloads (or one).
type scheduled struct {
	group     string // spec.backup.group; "" for a workload on its own
	workloads []string
	repo      string
	keep      v1alpha1.BackupKeep
}

// dueBackups returns the backups that are due at now: workloads with spec.backup.schedule
// whose last attempt is at least one interval ago (or that never had one), gathered by
// spec.backup.group (a group is due when any member is, and takes all its members that
// have a schedule). It is a pure function of its inputs.
func dueBackups(ws []*v1alpha1.Workload, now time.Time) []scheduled {
	byGroup := map[string]*scheduled{}
	due := map[string]bool{}
	for _, w := range ws {
		b := w.Spec.Backup
		if b == nil || b.Schedule == "" {
			continue
		}
		if _, deleting := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]; deleting {
			continue
		}
		every, err := v1alpha1.ParseBackupSchedule(b.Schedule)
		if err != nil {
			continue // admission refuses it; an old record is skipped, not guessed at
		}
		isDue := w.Status == nil || w.Status.Backup == nil || w.Status.Backup.LastAttempt == nil ||
			!now.Before(w.Status.Backup.LastAttempt.Add(every))
		keep := v1alpha1.BackupKeep{Last: v1alpha1.DefaultBackupKeepLast}
		if b.Keep != nil {
			keep = *b.Keep
		}
		key := b.Group
		if key == "" {
			key = "\x00" + w.Metadata.Name
		}
		s, ok := byGroup[key]
		if !ok {
			s = &scheduled{group: b.Group, repo: b.Repo, keep: keep}
			byGroup[key] = s
		}
		s.workloads = append(s.workloads, w.Metadata.Name)
		if isDue {
			due[key] = true
		}
	}
	var res []scheduled
	for key, s := range byGroup {
		if due[key] {
			sort.Strings(s.workloads)
			res = append(res, *s)
		}
	}
	slices.SortFunc(res, func(a, b scheduled) int { return strings.Compare(a.workloads[0], b.workloads[0]) })
	return res
}

// RunSchedules takes due scheduled backups until ctx ends, looking every tick (0:
// DefaultScheduleTick): each backup is followed by a prune of its group with its keep,
// and recorded in the workloads' status.backup.
func (m *Manager) RunSchedules(ctx context.Context, tick time.Duration) error {
	if tick <= 0 {
		tick = DefaultScheduleTick
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := m.RunDue(ctx); err != nil && ctx.Err() == nil {
			m.o.Logger.Error("backup schedule", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RunDue takes the backups that are due now, one after another.
func (m *Manager) RunDue(ctx context.Context) error {
	recs, _, err := m.o.Store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return err
	}
	var ws []*v1alpha1.Workload
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	for _, s := range dueBackups(ws, m.o.Clock()) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.runScheduled(ctx, s)
	}
	return nil
}

// runScheduled takes one scheduled backup, prunes its group, and records the outcome
// in each workload's status.
func (m *Manager) runScheduled(ctx context.Context, s scheduled) {
	attempt := m.o.Clock().UTC()
	b, err := m.Create(ctx, v1alpha1.BackupRequest{Workloads: s.workloads, Group: s.group, Repo: s.repo}, nil)
	if err == nil {
		if perr := m.pruneGroup(ctx, s.repo, b.Group, s.keep); perr != nil {
			m.o.Logger.Error("scheduled backup: prune", "group", b.Group, "err", perr)
			for _, w := range s.workloads {
				m.event(ctx, w, "Warning", "PruneFailed", fmt.Sprintf("prune of group %s after backup %s: %v", b.Group, b.ID, perr))
			}
		}
	}
	for _, w := range s.workloads {
		if serr := m.setBackupStatus(ctx, w, attempt, b, err); serr != nil && !errors.Is(serr, store.ErrNotFound) {
			m.o.Logger.Error("scheduled backup: record status", "workload", w, "err", serr)
		}
	}
}

// pruneGroup applies keep to the backups of one group, then collects the chunks no
// backup uses any more.
func (m *Manager) pruneGroup(ctx context.Context, repoName, group string, keep v1alpha1.BackupKeep) error {
	r, _, err := m.writableRepo(ctx, repoName, "prune of group "+group)
	if err != nil {
		return err
	}
	ms, err := r.List(ctx)
	if err != nil {
		return err
	}
	var mine []repo.Manifest
	for _, man := range ms {
		if man.Meta.Kind == metaKind && man.Meta.GroupKey() == group {
			mine = append(mine, man)
		}
	}
	now := m.o.Clock()
	ds, err := repo.Choose(mine, repo.Retention{KeepLast: int(keep.Last), KeepHourly: int(keep.Hourly), KeepDaily: int(keep.Daily), KeepWeekly: int(keep.Weekly)}, now)
	if err != nil {
		return err
	}
	deleted := 0
	for _, d := range ds {
		if d.Keep {
			continue
		}
		if err := r.Delete(ctx, d.Backup.ID); err != nil {
			return err
		}
		deleted++
	}
	if deleted == 0 {
		return nil
	}
	_, err = r.GC(ctx, now, 0)
	return err
}

// setBackupStatus records a scheduled backup's outcome in the workload's status.backup,
// retrying on conflicts with the controller's writes.
func (m *Manager) setBackupStatus(ctx context.Context, name string, attempt time.Time, b *v1alpha1.Backup, berr error) error {
	return objects.UpdateWorkloadStatus(ctx, m.o.Store, name, func(st *v1alpha1.WorkloadStatus) {
		bs := v1alpha1.BackupStatus{}
		if st.Backup != nil {
			bs = *st.Backup
		}
		bs.LastAttempt = &attempt
		if berr != nil {
			bs.LastError = berr.Error()
		} else {
			done := b.Time.UTC()
			bs.LastSuccess, bs.LastError, bs.LastBackupID = &done, "", b.ID
		}
		st.Backup = &bs
	})
}
