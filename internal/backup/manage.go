package backup

import (
	"context"
	"fmt"
	"slices"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
)

// List returns the workload backups in the repository, oldest first.
func (m *Manager) List(ctx context.Context, repoName string) ([]v1alpha1.Backup, error) {
	r, name, err := m.repo(ctx, repoName)
	if err != nil {
		return nil, err
	}
	ms, err := r.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", name, err)
	}
	out := []v1alpha1.Backup{}
	for _, man := range ms {
		if man.Meta.Kind == metaKind {
			out = append(out, *m.describe(name, man))
		}
	}
	slices.SortStableFunc(out, func(a, b v1alpha1.Backup) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// manifest reads the backup with this ID.
func (m *Manager) manifest(ctx context.Context, repoName, id string) (*repo.Repo, string, repo.Manifest, error) {
	r, name, err := m.repo(ctx, repoName)
	if err != nil {
		return nil, name, repo.Manifest{}, err
	}
	man, err := r.Get(ctx, id)
	if err != nil {
		return nil, name, repo.Manifest{}, classify(fmt.Errorf("backup %s in %s: %w (see `strata backup list`)", id, name, err))
	}
	return r, name, man, nil
}

// Verify reads the whole backup back and checks every chunk and file.
func (m *Manager) Verify(ctx context.Context, repoName, id string) (*v1alpha1.BackupVerifyResult, error) {
	r, name, man, err := m.manifest(ctx, repoName, id)
	if err != nil {
		return nil, err
	}
	rep, err := r.VerifyManifest(ctx, man)
	if err != nil {
		return nil, fmt.Errorf("verify backup %s in %s: %w", id, name, err)
	}
	res := &v1alpha1.BackupVerifyResult{ID: man.ID, OK: rep.OK(), Files: rep.Files, Chunks: rep.Chunks, Bytes: rep.Bytes}
	for _, c := range rep.BadChunks {
		res.Problems = append(res.Problems, fmt.Sprintf("chunk %s (used by %v): %s", c.ID, c.Files, c.Err))
	}
	for _, f := range rep.BadFiles {
		res.Problems = append(res.Problems, fmt.Sprintf("file %s: %s", f.Name, f.Err))
	}
	return res, nil
}

// Delete deletes one backup (its manifest); its chunks go at the next prune.
func (m *Manager) Delete(ctx context.Context, repoName, id string) error {
	r, name, man, err := m.manifest(ctx, repoName, id)
	if err != nil {
		return err
	}
	if err := r.Delete(ctx, man.ID); err != nil {
		return classify(fmt.Errorf("delete backup %s in %s: %w", id, name, err))
	}
	m.o.Logger.Info("backup deleted", "id", man.ID, "repo", name)
	return nil
}

// Prune deletes the backups the retention does not keep, per group, and the chunks
// nothing uses any more. With DryRun it only says what it would delete.
func (m *Manager) Prune(ctx context.Context, req v1alpha1.BackupPruneRequest) (*v1alpha1.BackupPruneResult, error) {
	repoOf := m.writableRepo
	if req.DryRun {
		repoOf = func(ctx context.Context, name, _ string) (*repo.Repo, string, error) { return m.repo(ctx, name) }
	}
	r, name, err := repoOf(ctx, req.Repo, "prune")
	if err != nil {
		return nil, err
	}
	ret := repo.Retention{KeepLast: req.KeepLast, KeepHourly: req.KeepHourly, KeepDaily: req.KeepDaily, KeepWeekly: req.KeepWeekly}
	now := m.o.Clock()
	res := &v1alpha1.BackupPruneResult{Kept: []v1alpha1.Backup{}, Deleted: []v1alpha1.Backup{}, DryRun: req.DryRun}
	if req.DryRun {
		ms, err := r.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("prune %s: %w", name, err)
		}
		ds, err := repo.Choose(ms, ret, now)
		if err != nil {
			return nil, classify(fmt.Errorf("prune %s: %w", name, err))
		}
		for _, d := range ds {
			m.sortDecision(res, name, d)
		}
		return res, nil
	}
	pr, err := r.Prune(ctx, ret, now)
	if err != nil {
		return nil, classify(fmt.Errorf("prune %s: %w", name, err))
	}
	for _, d := range append(pr.Kept, pr.Deleted...) {
		m.sortDecision(res, name, d)
	}
	res.FreedBytes = pr.GC.Freed
	m.o.Logger.Info("backups pruned", "repo", name, "kept", len(res.Kept), "deleted", len(res.Deleted), "freed", res.FreedBytes)
	return res, nil
}

func (m *Manager) sortDecision(res *v1alpha1.BackupPruneResult, repoName string, d repo.Decision) {
	b := *m.describe(repoName, d.Backup)
	if d.Keep {
		res.Kept = append(res.Kept, b)
	} else {
		res.Deleted = append(res.Deleted, b)
	}
}

// latest is the newest backup of a group, or of a workload.
func (m *Manager) latest(ctx context.Context, repoName, target string) (*v1alpha1.Backup, error) {
	list, err := m.List(ctx, repoName)
	if err != nil {
		return nil, err
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Group == target || slices.Contains(list[i].Workloads, target) {
			return &list[i], nil
		}
	}
	return nil, invalid(fmt.Errorf("no backup of %s in repository %s: back it up first with `strata backup create`", target, orDefault(repoName)))
}

func orDefault(name string) string {
	if name == "" {
		return v1alpha1.DefaultBackupRepository
	}
	return name
}
