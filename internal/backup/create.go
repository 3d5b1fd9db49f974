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
	"strconv"
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
	// The writer starts first: its lock keeps prunes away from the chunks the file
	// index names from the check below until the backup is committed, so a file the
	// snapshot leaves out is never missing from the repository.
	bw := r.NewBackup(repo.Meta{Workloads: req.Workloads, Group: req.Group, Kind: metaKind})
	defer bw.Abort()
	var listed []repo.Manifest
	manifests := func() ([]repo.Manifest, error) {
		if listed != nil {
			return listed, nil
		}
		ms, err := r.List(ctx)
		listed = ms
		return ms, err
	}
	indexes := map[string]map[int]*slotIndex{}
	for _, w := range req.Workloads {
		indexes[w] = map[int]*slotIndex{}
		if req.ForceRead {
			continue
		}
		indexes[w] = m.loadIndexes(ctx, r, repoName, w, manifests)
		for _, idx := range indexes[w] {
			if err := dropMissing(ctx, bw, idx); err != nil {
				return nil, fmt.Errorf("backup of %s: %w", w, err)
			}
		}
	}
	snapName := "backup-" + begin.UTC().Format("20060102-150405") + "-" + randomHex(2)
	group, err := m.o.Snapshots.CreateGroupWith(ctx, req.Workloads, snapName, snapshot.GroupOptions{
		Index: volumeIndex(indexes, req.ForceRead),
		Disks: m.diskRequests(indexes, repoName, bw.ID(), req.ForceRead),
	})
	if err != nil {
		return nil, err
	}
	// Every VM disk copy started a checkpoint for the next backup. Once this backup
	// is stored, the checkpoints it was copied since are done with; if it fails, its
	// own are dropped and the next backup copies since the old ones again.
	var disks []snapshot.DiskPlan
	defer func() {
		for _, d := range disks {
			switch {
			case err != nil:
				m.dropCheckpoint(context.WithoutCancel(ctx), d.Instance, d.Checkpoint)
			case d.Since != "":
				m.dropCheckpoint(context.WithoutCancel(ctx), d.Instance, d.Since)
			}
		}
	}()
	defer func() {
		for _, s := range group.Snapshots {
			if derr := m.o.Snapshots.Delete(context.WithoutCancel(ctx), s.Spec.Workload, snapName); derr != nil {
				m.o.Logger.Error("backup: delete the temporary snapshot", "workload", s.Spec.Workload, "snapshot", snapName, "err", derr)
			}
		}
	}()
	sv := saved{FrozenTogether: group.FrozenTogether, Warnings: group.Warnings}
	var total int64
	plans := map[string][]snapshot.TarFile{}
	for _, s := range group.Snapshots {
		st := s.Status
		sv.Workloads = append(sv.Workloads, savedWorkload{Name: s.Spec.Workload, Tier: st.Tier, Labels: labels[s.Spec.Workload],
			Spec: *st.Workload, Consistency: st.Consistency, Slots: st.Slots})
		sv.Warnings = append(sv.Warnings, st.Warnings...)
		total += st.Bytes
		dir := snapshot.Dir(m.o.DataDir, s.Spec.Workload, snapName)
		for _, sl := range st.Slots {
			for _, f := range sl.Files {
				if filepath.Base(f) == snapshot.DiskImageFile {
					continue // its plan is a snapshot.DiskPlan
				}
				plan, ok, err := readPlan(filepath.Join(dir, f))
				if err != nil {
					return nil, fmt.Errorf("backup of %s: %w", s.Spec.Workload, err)
				}
				if !ok {
					continue
				}
				plans[filepath.Join(dir, f)] = plan
				for _, tf := range plan {
					if tf.Skipped {
						total += tf.Size
					}
				}
			}
		}
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
	bw.SetMeta(meta)
	var done, read, unchanged int64
	type newIndex struct {
		workload string
		slot     int
		idx      *slotIndex
	}
	var written []newIndex
	for _, s := range group.Snapshots {
		dir := snapshot.Dir(m.o.DataDir, s.Spec.Workload, snapName)
		for _, sl := range s.Status.Slots {
			next := &slotIndex{Backup: bw.ID(), Volumes: map[string]map[string]indexedFile{}}
			old := indexes[s.Spec.Workload][sl.Slot]
			for _, f := range sl.Files {
				name := path.Join(s.Spec.Workload, filepath.ToSlash(f))
				report := func() {
					if progress != nil {
						progress(v1alpha1.BackupProgress{Workload: s.Spec.Workload, File: name, Bytes: done, Total: total,
							Unchanged: unchanged, Read: read})
					}
				}
				readN := func(n int64) { done += n; read += n; report() }
				sameN := func(n int64) { done += n; unchanged += n; report() }
				p := filepath.Join(dir, f)
				plan, ok := plans[p]
				volume, isVolume := volumeOf(f)
				isRootfs := filepath.Base(f) == snapshot.RootfsFile
				var err error
				switch {
				case filepath.Base(f) == snapshot.DiskImageFile:
					var dp snapshot.DiskPlan
					dp, err = snapshot.ReadDiskPlan(p)
					if err == nil {
						disks = append(disks, dp)
						var oldDisk *diskIndex
						if old != nil {
							oldDisk = old.Disk
						}
						next.Disk, err = addDisk(ctx, bw, name, p, dp, oldDisk, readN, sameN)
					}
				case ok && isVolume:
					next.Volumes[volume] = map[string]indexedFile{}
					err = addVolume(ctx, bw, name, p, plan, old.files(volume), next.Volumes[volume], readN, sameN)
				case ok && isRootfs:
					next.Rootfs = map[string]indexedFile{}
					err = addVolume(ctx, bw, name, p, plan, old.files(snapshot.RootfsIndex), next.Rootfs, readN, sameN)
				default:
					err = addFile(ctx, bw, name, p, readN)
				}
				if err != nil {
					return nil, fmt.Errorf("backup of %s: file %s: %w", s.Spec.Workload, name, err)
				}
			}
			if len(next.Volumes) == 0 && next.Rootfs == nil && next.Disk == nil {
				continue
			}
			data, err := json.Marshal(next)
			if err != nil {
				return nil, err
			}
			name := path.Join(s.Spec.Workload, "slot-"+strconv.Itoa(sl.Slot), indexFile)
			if err := bw.AddBytes(ctx, name, data, 0o600); err != nil {
				return nil, fmt.Errorf("backup of %s: file %s: %w", s.Spec.Workload, name, err)
			}
			written = append(written, newIndex{s.Spec.Workload, sl.Slot, next})
		}
	}
	man, err := bw.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", strings.Join(req.Workloads, ", "), err)
	}
	b = m.describe(repoName, man)
	b.Seconds = m.o.Clock().Sub(begin).Seconds()
	for _, w := range req.Workloads {
		m.event(ctx, w, "Normal", "BackedUp", fmt.Sprintf("backup %s in %s: %d workloads, %s (%s unchanged, %s read; %s new), %s-consistent, in %s",
			b.ID, repoName, len(b.Workloads), bytesText(b.Size), bytesText(b.UnchangedBytes), bytesText(b.ReadBytes), bytesText(b.StoredBytes), b.Consistency,
			time.Duration(b.Seconds*float64(time.Second)).Round(time.Millisecond)))
	}
	for _, n := range written {
		if err := m.saveIndex(repoName, n.workload, n.slot, n.idx); err != nil {
			// The next backup rebuilds it from this one.
			m.o.Logger.Warn("backup: save the file index", "workload", n.workload, "slot", n.slot, "err", err)
		}
	}
	m.o.Logger.Info("backup taken", "id", b.ID, "repo", repoName, "workloads", req.Workloads, "bytes", b.Size, "stored", b.StoredBytes)
	return b, nil
}

// addVolume streams an archive that has a plan (a volume's or the root filesystem
// layer's) into the backup as name: the content of the large files it left out is the
// chunks old lists, and next gets every large file's state and chunks.
func addVolume(ctx context.Context, bw *repo.Writer, name, p string, plan []snapshot.TarFile, old, next map[string]indexedFile,
	read, unchanged func(int64)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	parts, fill := volumeParts(f, plan, old, next, read, unchanged)
	if err := bw.AddParts(ctx, name, 0o600, parts); err != nil {
		return err
	}
	fill()
	return nil
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
	// A slot's file index is the backup's bookkeeping, not the workload's data.
	for _, f := range man.Files {
		if path.Base(f.Name) == indexFile {
			b.Size -= f.Size
		}
	}
	b.UnchangedBytes = man.Stats.BytesReused
	b.ReadBytes = b.Size - b.UnchangedBytes
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
