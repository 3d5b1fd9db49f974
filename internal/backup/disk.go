package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/snapshot"
)

// diskBlock is the size of the pieces a VM disk is stored in: each block is chunked
// on its own, so the next backup takes an unchanged block's chunks as they are and
// rebuilds only the blocks with a changed part. 1 MiB is the repository's average
// chunk size.
const diskBlock = 1 << 20

// diskIndex is what a slot index keeps of a VM disk's last backup: the checkpoint the
// copy started (the disk's record of the blocks written since) and each block's chunks.
type diskIndex struct {
	Checkpoint string            `json:"checkpoint"`
	Size       int64             `json:"size"`
	BlockSize  int64             `json:"blockSize"`
	Blocks     [][]repo.ChunkRef `json:"blocks"`
}

// diskRequests is the snapshot's GroupOptions.Disks for a backup: a slot whose index
// knows its disk's last backup copies only the blocks written since its checkpoint;
// every copy starts a checkpoint named after this backup. Checkpoints that other
// repositories' indexes name for the slot are kept.
func (m *Manager) diskRequests(idx map[string]map[int]*slotIndex, repoName, backupID string, forceRead bool) func(string, int) runtime.DiskCopyRequest {
	return func(workload string, slot int) runtime.DiskCopyRequest {
		req := runtime.DiskCopyRequest{Checkpoint: backupID, Keep: m.otherCheckpoints(repoName, workload, slot)}
		if s := idx[workload][slot]; s != nil && s.Disk != nil && !forceRead {
			req.Since = s.Disk.Checkpoint
		}
		return req
	}
}

// otherCheckpoints lists the disk checkpoints the indexes of other repositories name
// for a workload's slot.
func (m *Manager) otherCheckpoints(repoName, workload string, slot int) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(m.dir(), "index", "*", workload, "slot-"+strconv.Itoa(slot)+".json"))
	for _, f := range files {
		if filepath.Base(filepath.Dir(filepath.Dir(f))) == repoName {
			continue
		}
		var idx slotIndex
		if data, err := os.ReadFile(f); err == nil && json.Unmarshal(data, &idx) == nil && idx.Disk != nil {
			out = append(out, idx.Disk.Checkpoint)
		}
	}
	return out
}

// addDisk stores a backup snapshot's raw disk copy at p as name, block by block: a
// whole copy is read entire; a copy of the blocks changed since old's checkpoint
// takes old's chunks for every block without a change, reads the blocks changed
// entirely, and rebuilds a block changed in part from old's chunks with the changed
// ranges laid over (counted as read: it is stored anew). It returns the disk's new
// index.
func addDisk(ctx context.Context, bw *repo.Writer, name, p string, plan snapshot.DiskPlan, old *diskIndex,
	read, unchanged func(int64)) (*diskIndex, error) {
	if !plan.Whole && (old == nil || old.Checkpoint != plan.Since || old.Size != plan.Size || old.BlockSize != diskBlock) {
		return nil, fmt.Errorf("the disk was copied since checkpoint %s, which the file index does not describe: run the backup again (with --force-read to read the whole disk)", plan.Since)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := int((plan.Size + diskBlock - 1) / diskBlock)
	next := &diskIndex{Checkpoint: plan.Checkpoint, Size: plan.Size, BlockSize: diskBlock, Blocks: make([][]repo.ChunkRef, n)}
	changed := plan.Changed
	i := 0
	parts := func() (repo.Part, bool, error) {
		if i == n {
			return repo.Part{}, false, nil
		}
		b := i
		i++
		from := int64(b) * diskBlock
		to := min(from+diskBlock, plan.Size)
		whole := repo.Part{Data: &countingReader{r: io.NewSectionReader(f, from, to-from), add: read}, Chunks: &next.Blocks[b]}
		if plan.Whole {
			return whole, true, nil
		}
		for len(changed) > 0 && changed[0].Offset+changed[0].Length <= from {
			changed = changed[1:]
		}
		var in []runtime.Extent // the changed ranges within the block, clipped to it
		for _, e := range changed {
			if e.Offset >= to {
				break
			}
			s, t := max(e.Offset, from), min(e.Offset+e.Length, to)
			in = append(in, runtime.Extent{Offset: s, Length: t - s})
		}
		var dirty int64
		for _, e := range in {
			dirty += e.Length
		}
		switch dirty {
		case 0:
			next.Blocks[b] = old.Blocks[b]
			unchanged(to - from)
			return repo.Part{Reuse: old.Blocks[b]}, true, nil
		case to - from:
			return whole, true, nil
		}
		buf, err := bw.ReadChunks(ctx, old.Blocks[b])
		if err != nil {
			return repo.Part{}, false, fmt.Errorf("block at %d: the last backup's content: %w", from, err)
		}
		if int64(len(buf)) != to-from {
			return repo.Part{}, false, fmt.Errorf("block at %d: the last backup holds %d bytes of it, want %d", from, len(buf), to-from)
		}
		for _, e := range in {
			if _, err := f.ReadAt(buf[e.Offset-from:e.Offset-from+e.Length], e.Offset); err != nil {
				return repo.Part{}, false, fmt.Errorf("block at %d: %w", from, err)
			}
		}
		// The block is stored anew: all of it counts as read.
		read(to - from)
		return repo.Part{Data: bytes.NewReader(buf), Chunks: &next.Blocks[b]}, true, nil
	}
	if err := bw.AddParts(ctx, name, 0o600, parts); err != nil {
		return nil, err
	}
	return next, nil
}

// dropCheckpoint removes a checkpoint from a VM instance's disk, logging a failure
// (a checkpoint left behind costs the disk a few bytes per GiB, and the slot's next
// backup removes it).
func (m *Manager) dropCheckpoint(ctx context.Context, instance, name string) {
	driver, err := m.o.Drivers.ForTier(v1alpha1.TierVM)
	if err != nil {
		return
	}
	c, ok := driver.(runtime.DiskCheckpointer)
	if !ok {
		return
	}
	if err := c.DropCheckpoint(ctx, instance, name); err != nil {
		m.o.Logger.Warn("backup: remove a disk checkpoint", "instance", instance, "checkpoint", name, "err", err)
	}
}
