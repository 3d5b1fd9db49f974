package backup

import (
	"context"
	"fmt"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
)

// Locks lists the locks on repository repoName ("" for the default one), live and stale.
func (m *Manager) Locks(ctx context.Context, repoName string) ([]v1alpha1.RepositoryLock, error) {
	r, _, err := m.repo(ctx, repoName)
	if err != nil {
		return nil, err
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, classify(err)
	}
	return apiLocks(locks), nil
}

// Unlock removes the stale locks on repository repoName, or the one lock req names
// (live or not), and says what is left.
func (m *Manager) Unlock(ctx context.Context, repoName string, req v1alpha1.RepositoryUnlockRequest) (*v1alpha1.RepositoryUnlockResult, error) {
	r, name, err := m.writableRepo(ctx, repoName, "unlock")
	if err != nil {
		return nil, err
	}
	res := &v1alpha1.RepositoryUnlockResult{Removed: []v1alpha1.RepositoryLock{}}
	if req.Lock != "" {
		locks, err := r.Locks(ctx)
		if err != nil {
			return nil, classify(err)
		}
		var found *repo.LockInfo
		for i, l := range locks {
			if l.Name == req.Lock || l.Name == "locks/"+req.Lock {
				found = &locks[i]
			}
		}
		if found == nil {
			return nil, invalid(fmt.Errorf("repository %s has no lock %s: `strata repo locks --repo %s` lists them", name, req.Lock, name))
		}
		if err := r.RemoveLock(ctx, found.Name); err != nil {
			return nil, classify(err)
		}
		res.Removed = apiLocks([]repo.LockInfo{*found})
		m.o.Logger.Warn("repository lock removed by request", "repository", name, "lock", found.String())
	} else {
		removed, err := r.RemoveStaleLocks(ctx)
		if err != nil {
			return nil, classify(err)
		}
		res.Removed = apiLocks(removed)
	}
	left, err := r.Locks(ctx)
	if err != nil {
		return nil, classify(err)
	}
	res.Remaining = apiLocks(left)
	return res, nil
}

func apiLocks(locks []repo.LockInfo) []v1alpha1.RepositoryLock {
	out := make([]v1alpha1.RepositoryLock, 0, len(locks))
	for _, l := range locks {
		al := v1alpha1.RepositoryLock{Name: l.Name, Kind: l.Kind(), Op: l.Op, Host: l.Host, PID: l.PID, Holder: l.Holder,
			Taken: l.Taken, Refreshed: l.Refreshed, Stale: l.Stale, StaleReason: l.StaleReason}
		if l.Err != nil {
			al.Error = l.Err.Error()
		}
		out = append(out, al)
	}
	return out
}
