package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/snapshot"
)

// indexFile is the name, in a backup, of a slot's file index (WORKLOAD/slot-N/INDEX):
// what the next backup needs when the daemon's copy is lost. It is not one of the
// slot's files: a restore leaves it.
const indexFile = "files.index"

// slotIndex is the file index of one workload slot: for each volume and for the root
// filesystem layer, the large files of the last backup (snapshot.LargeFile and up)
// with their state and chunks; for a VM, its disk's checkpoint and blocks.
type slotIndex struct {
	// Backup is the ID of the backup the index describes.
	Backup  string                            `json:"backup"`
	Volumes map[string]map[string]indexedFile `json:"volumes"`
	// Rootfs is the root filesystem layer's (snapshot.RootfsFile) files, by their name
	// in the layer; an index written before layers were indexed has none.
	Rootfs map[string]indexedFile `json:"rootfs,omitempty"`
	// Disk is a VM disk's checkpoint and blocks.
	Disk *diskIndex `json:"disk,omitempty"`
}

// files is the index of one of the slot's archives: volume's, or the root filesystem
// layer's for snapshot.RootfsIndex.
func (s *slotIndex) files(volume string) map[string]indexedFile {
	if s == nil {
		return nil
	}
	if volume == snapshot.RootfsIndex {
		return s.Rootfs
	}
	return s.Volumes[volume]
}

// indexedFile is one file of a slot index.
type indexedFile struct {
	State  snapshot.FileState `json:"state"`
	Chunks []repo.ChunkRef    `json:"chunks"`
}

// indexPath is where the daemon keeps a slot's index for a repository.
func (m *Manager) indexPath(repoName, workload string, slot int) string {
	return filepath.Join(m.dir(), "index", repoName, workload, "slot-"+strconv.Itoa(slot)+".json")
}

// loadIndexes reads a workload's slot indexes from the data directory or, when it has
// none, from the newest backup in r that has them (listing the repository through
// manifests). A slot without an index reads everything.
func (m *Manager) loadIndexes(ctx context.Context, r *repo.Repo, repoName, workload string, manifests func() ([]repo.Manifest, error)) map[int]*slotIndex {
	out := map[int]*slotIndex{}
	dir := filepath.Dir(m.indexPath(repoName, workload, 0))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n, prefixed := strings.CutPrefix(e.Name(), "slot-")
		n, suffixed := strings.CutSuffix(n, ".json")
		if !prefixed || !suffixed {
			continue
		}
		slot, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		var idx slotIndex
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			err = json.Unmarshal(data, &idx)
		}
		if err != nil || idx.Volumes == nil {
			m.o.Logger.Warn("backup: unreadable file index; that slot reads everything", "workload", workload, "slot", slot, "err", err)
			continue
		}
		out[slot] = &idx
	}
	if len(out) > 0 {
		return out
	}
	ms, err := manifests()
	if err != nil {
		m.o.Logger.Warn("backup: list the repository to rebuild the file index; reading everything", "workload", workload, "err", err)
		return out
	}
	for i := len(ms) - 1; i >= 0 && len(out) == 0; i-- {
		for _, f := range ms[i].Files {
			rest, ok := strings.CutPrefix(f.Name, workload+"/slot-")
			if !ok {
				continue
			}
			n, ok := strings.CutSuffix(rest, "/"+indexFile)
			slot, err := strconv.Atoi(n)
			if !ok || err != nil {
				continue
			}
			idx, err := readIndex(ctx, r, ms[i], f.Name)
			if err != nil {
				m.o.Logger.Warn("backup: the file index in the repository is unreadable; that slot reads everything",
					"workload", workload, "backup", ms[i].ID, "err", err)
				continue
			}
			out[slot] = idx
			m.o.Logger.Info("backup: file index rebuilt from the repository", "workload", workload, "slot", slot, "backup", ms[i].ID)
		}
	}
	return out
}

// readIndex reads a slot index stored in a backup.
func readIndex(ctx context.Context, r *repo.Repo, man repo.Manifest, name string) (*slotIndex, error) {
	rc, err := r.OpenFile(ctx, man, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	var idx slotIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, err
	}
	if idx.Volumes == nil {
		return nil, errors.New("no volumes")
	}
	return &idx, nil
}

// saveIndex writes a slot's index to the data directory, replacing the old one whole.
func (m *Manager) saveIndex(repoName, workload string, slot int, idx *slotIndex) error {
	p := m.indexPath(repoName, workload, slot)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// volumeIndex is the index the snapshot consults: for each volume of a slot and its
// root filesystem layer (snapshot.RootfsIndex), a file is unchanged when its state is
// the one indexed and the repository still holds its chunks (checked before the
// snapshot, so that a file left out is never missing).
func volumeIndex(idx map[string]map[int]*slotIndex, forceRead bool) snapshot.VolumeIndex {
	return func(workload string, slot int, volume string) snapshot.Unchanged {
		if forceRead {
			return func(string, snapshot.FileState) bool { return false }
		}
		files := idx[workload][slot].files(volume)
		return func(p string, st snapshot.FileState) bool {
			f, ok := files[p]
			return ok && f.State == st
		}
	}
}

// dropMissing removes from idx the files whose chunks bw's repository no longer has
// (a prune since the last backup), and the disk when any of its blocks is missing.
func dropMissing(ctx context.Context, bw *repo.Writer, idx *slotIndex) error {
	if idx.Disk != nil {
		var refs []repo.ChunkRef
		for _, b := range idx.Disk.Blocks {
			refs = append(refs, b...)
		}
		ok, err := bw.Has(ctx, refs)
		if err != nil {
			return err
		}
		if !ok {
			idx.Disk = nil
		}
	}
	archives := slices.Collect(maps.Values(idx.Volumes))
	if idx.Rootfs != nil {
		archives = append(archives, idx.Rootfs)
	}
	for _, files := range archives {
		for p, f := range files {
			ok, err := bw.Has(ctx, f.Chunks)
			if err != nil {
				return err
			}
			if !ok {
				delete(files, p)
			}
		}
	}
	return nil
}

// volumeParts streams a backup snapshot's archive with a plan (a volume's or the root
// filesystem layer's) into the repository as parts: the archive's own bytes as they
// are, the content of each large file chunked on its own (and put in next, the slot's
// new index), and for a file the snapshot left out the chunks old holds. read counts the bytes read, unchanged those reused.
func volumeParts(f *os.File, plan []snapshot.TarFile, old, next map[string]indexedFile, read func(int64), unchanged func(int64)) (func() (repo.Part, bool, error), func()) {
	var (
		pos     int64
		i       int
		pending []repo.Part
		fill    []func()
	)
	section := func(from, to int64) io.Reader {
		return &countingReader{r: io.NewSectionReader(f, from, to-from), add: read}
	}
	return func() (repo.Part, bool, error) {
			for len(pending) == 0 {
				if i == len(plan) {
					if pos < 0 {
						return repo.Part{}, false, nil
					}
					pending = append(pending, repo.Part{Data: section(pos, 1<<62)})
					pos = -1
					break
				}
				tf := plan[i]
				i++
				if tf.Offset < pos {
					return repo.Part{}, false, fmt.Errorf("archive plan: %s at offset %d is before %d", tf.Path, tf.Offset, pos)
				}
				pending = append(pending, repo.Part{Data: section(pos, tf.Offset)})
				pos = tf.Offset
				if tf.Skipped {
					o, ok := old[tf.Path]
					if !ok || o.State != tf.State {
						return repo.Part{}, false, fmt.Errorf("archive plan: %s was left out but the index does not have it", tf.Path)
					}
					next[tf.Path] = o
					unchanged(tf.Size)
					pending = append(pending, repo.Part{Reuse: o.Chunks})
					continue
				}
				var chunks []repo.ChunkRef
				pending = append(pending, repo.Part{Data: section(pos, pos+tf.Size), Chunks: &chunks})
				pos += tf.Size
				if !tf.Unstable {
					fill = append(fill, func() { next[tf.Path] = indexedFile{State: tf.State, Chunks: chunks} })
				}
			}
			p := pending[0]
			pending = pending[1:]
			return p, true, nil
		}, func() {
			for _, f := range fill {
				f()
			}
		}
}

// readPlan reads an archive's plan; ok is false when it has none.
func readPlan(archive string) (plan []snapshot.TarFile, ok bool, err error) {
	data, err := os.ReadFile(archive + snapshot.PlanSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		return nil, false, fmt.Errorf("archive plan %s: %w", archive+snapshot.PlanSuffix, err)
	}
	return plan, true, nil
}

// volumeOf returns the volume name of a slot file (slot-N/volumes/NAME.tar).
func volumeOf(file string) (string, bool) {
	dir, base := filepath.Split(file)
	if filepath.Base(filepath.Clean(dir)) != "volumes" || !strings.HasSuffix(base, ".tar") {
		return "", false
	}
	return strings.TrimSuffix(base, ".tar"), true
}
