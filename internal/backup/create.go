package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// metaKind is the Kind of the repository Meta of workload backups.
const metaKind = "workloads"

// saved is what a backup's Meta.Spec holds: enough to recreate its workloads.
type saved struct {
	Workloads      []savedWorkload `json:"workloads"`
	Consistency    string          `json:"consistency"`
	FrozenTogether bool            `json:"frozenTogether"`
	Warnings       []string        `json:"warnings,omitempty"`
}

// savedWorkload is one workload of a backup. Its slots' files are named relative to
// the workload's directory in the backup (WORKLOAD/).
type savedWorkload struct {
	Name        string                  `json:"name"`
	Tier        v1alpha1.Tier           `json:"tier"`
	Labels      map[string]string       `json:"labels,omitempty"`
	Spec        v1alpha1.WorkloadSpec   `json:"spec"`
	Consistency string                  `json:"consistency"`
	Slots       []v1alpha1.SnapshotSlot `json:"slots"`
}

// Create backs up the workloads at one point into the repository req.Repo: it takes
// their snapshots together (snapshot.CreateGroup), streams every file into the
// repository, and deletes the snapshots. progress, when set, is told after each piece
// uploaded.
func (m *Manager) Create(ctx context.Context, req v1alpha1.BackupRequest, progress func(v1alpha1.BackupProgress)) (b *v1alpha1.Backup, err error) {
	begin := m.o.Clock()
	r, repoName, err := m.writableRepo(ctx, req.Repo, "backup of "+strings.Join(req.Workloads, ", "))
	if err != nil {
		return nil, err
	}
	if len(req.Workloads) == 0 {
		return nil, invalid(errors.New("name at least one workload to back up"))
	}
	labels := map[string]map[string]string{}
	for _, name := range req.Workloads {
		rec, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid(fmt.Errorf("workload %s not found: back up a workload that `strata get workloads` lists", name))
		}
		if err != nil {
			return nil, err
		}
		labels[name] = rec.Labels
	}
	defer func() {
		if m.o.ObserveBackup != nil {
			m.o.ObserveBackup(req.Workloads, m.o.Clock().Sub(begin), err == nil)
		}
		if err != nil {
			for _, w := range req.Workloads {
				m.event(ctx, w, "Warning", "BackupFailed", fmt.Sprintf("backup to %s: %v", repoName, err))
			}
		}
	}()
	snapName := "backup-" + begin.UTC().Format("20060102-150405") + "-" + randomHex(2)
	group, err := m.o.Snapshots.CreateGroup(ctx, req.Workloads, snapName)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range group.Snapshots {
			if derr := m.o.Snapshots.Delete(context.WithoutCancel(ctx), s.Spec.Workload, snapName); derr != nil {
				m.o.Logger.Error("backup: delete the temporary snapshot", "workload", s.Spec.Workload, "snapshot", snapName, "err", derr)
			}
		}
	}()
	sv := saved{FrozenTogether: group.FrozenTogether, Warnings: group.Warnings}
	var total int64
	for _, s := range group.Snapshots {
		st := s.Status
		sv.Workloads = append(sv.Workloads, savedWorkload{Name: s.Spec.Workload, Tier: st.Tier, Labels: labels[s.Spec.Workload],
			Spec: *st.Workload, Consistency: st.Consistency, Slots: st.Slots})
		sv.Warnings = append(sv.Warnings, st.Warnings...)
		total += st.Bytes
	}
	sv.Consistency = consistencyOf(sv.Workloads)
	spec, err := json.Marshal(sv)
	if err != nil {
		return nil, err
	}
	meta := repo.Meta{Workloads: req.Workloads, Group: req.Group, Kind: metaKind, Spec: spec,
		Labels: map[string]string{"consistency": sv.Consistency}}
	for _, w := range sv.Workloads {
		meta.Labels["tier."+w.Name] = string(w.Tier)
	}
	bw := r.NewBackup(meta)
	defer bw.Abort()
	var done int64
	for _, s := range group.Snapshots {
		dir := snapshot.Dir(m.o.DataDir, s.Spec.Workload, snapName)
		for _, sl := range s.Status.Slots {
			for _, f := range sl.Files {
				name := path.Join(s.Spec.Workload, filepath.ToSlash(f))
				pr := func(n int64) {
					done += n
					if progress != nil {
						progress(v1alpha1.BackupProgress{Workload: s.Spec.Workload, File: name, Bytes: done, Total: total})
					}
				}
				if err := addFile(ctx, bw, name, filepath.Join(dir, f), pr); err != nil {
					return nil, fmt.Errorf("backup of %s: file %s: %w", s.Spec.Workload, name, err)
				}
			}
		}
	}
	man, err := bw.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", strings.Join(req.Workloads, ", "), err)
	}
	b = m.describe(repoName, man)
	b.Seconds = m.o.Clock().Sub(begin).Seconds()
	for _, w := range req.Workloads {
		m.event(ctx, w, "Normal", "BackedUp", fmt.Sprintf("backup %s in %s: %d workloads, %s (%s new), %s-consistent, in %s",
			b.ID, repoName, len(b.Workloads), bytesText(b.Size), bytesText(b.StoredBytes), b.Consistency,
			time.Duration(b.Seconds*float64(time.Second)).Round(time.Millisecond)))
	}
	m.o.Logger.Info("backup taken", "id", b.ID, "repo", repoName, "workloads", req.Workloads, "bytes", b.Size, "stored", b.StoredBytes)
	return b, nil
}

// addFile streams the file at p into the backup as name, telling progress about each
// piece read.
func addFile(ctx context.Context, bw *repo.Writer, name, p string, progress func(int64)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return bw.AddFile(ctx, name, &countingReader{r: f, add: progress}, 0o600)
}

// countingReader reports every read's size, at most every 4 MiB.
type countingReader struct {
	r       io.Reader
	add     func(int64)
	pending int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pending += int64(n)
	if c.pending >= 4<<20 || (err != nil && c.pending > 0) {
		c.add(c.pending)
		c.pending = 0
	}
	return n, err
}

// consistencyOf is "application" when every workload's pre hook ran, "crash" when none
// did, "mixed" otherwise.
func consistencyOf(ws []savedWorkload) string {
	app := 0
	for _, w := range ws {
		if w.Consistency == "application" {
			app++
		}
	}
	switch app {
	case len(ws):
		return "application"
	case 0:
		return "crash"
	}
	return "mixed"
}

// describe turns a manifest into the API's Backup.
func (m *Manager) describe(repoName string, man repo.Manifest) *v1alpha1.Backup {
	b := &v1alpha1.Backup{ID: man.ID, Repo: repoName, Time: man.Time, Workloads: slices.Clone(man.Meta.Workloads),
		Group: man.Meta.Group, Size: man.Size(), StoredBytes: man.Stats.BytesStoredNew, Consistency: man.Meta.Labels["consistency"],
		Seconds: man.Stats.Duration.Seconds()}
	var sv saved
	if json.Unmarshal(man.Meta.Spec, &sv) == nil {
		b.FrozenTogether, b.Warnings = sv.FrozenTogether, sv.Warnings
	}
	if b.Group == "" {
		b.Group = man.Meta.GroupKey()
	}
	return b
}

func (m *Manager) event(ctx context.Context, workload, typ, reason, msg string) {
	if m.o.Events != nil {
		m.o.Events.Record(ctx, objects.Event{Type: typ, Reason: reason, Object: "Workload/" + workload, Message: msg})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
