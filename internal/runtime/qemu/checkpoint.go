package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/internal/runtime"
)

// A disk checkpoint is a persistent dirty bitmap on the disk's qcow2 node: QEMU
// sets a bit for every block the guest writes after the bitmap was added, and
// stores the bitmap in the qcow2 file when it closes the disk. If QEMU stops
// without closing it (killed), the stored bitmap is marked inconsistent and is
// not trusted again.
const (
	// checkpointPrefix starts the bitmap name of every checkpoint strata keeps,
	// so that it never touches bitmaps it did not make.
	checkpointPrefix = "strata-"
	// checkpointGranularity is the block size a checkpoint tracks: the cluster
	// size of strata's qcow2 overlays, the unit QEMU allocates in anyway.
	checkpointGranularity = 64 << 10
)

// bitmap is a dirty bitmap as query-named-block-nodes reports it.
type bitmap struct {
	Name         string `json:"name"`
	Persistent   bool   `json:"persistent"`
	Inconsistent bool   `json:"inconsistent"`
	Busy         bool   `json:"busy"`
	Granularity  int64  `json:"granularity"`
}

// diskState reads the size of a disk node and its dirty bitmaps.
func (d *Driver) diskState(ctx context.Context, id, node string) (int64, []bitmap, error) {
	var nodes []struct {
		Name  string `json:"node-name"`
		Image struct {
			VirtualSize int64 `json:"virtual-size"`
		} `json:"image"`
		Bitmaps []bitmap `json:"dirty-bitmaps"`
	}
	if err := d.runQMP(ctx, id, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return 0, nil, fmt.Errorf("instance %q: read the disk's state: %w", id, err)
	}
	for _, n := range nodes {
		if n.Name == node && n.Image.VirtualSize > 0 {
			return n.Image.VirtualSize, n.Bitmaps, nil
		}
	}
	return 0, nil, fmt.Errorf("instance %q: QEMU reports no size for disk node %s", id, node)
}

// CopyDisk implements runtime.DiskCheckpointer with a backup job, as SnapshotDisk
// does, that copies the whole disk or only the blocks the checkpoint Since marks,
// started in one transaction with the new checkpoint's bitmap: a write after
// that moment is in the new bitmap and not in the copy. Since is not cleared
// here: the caller drops it (DropCheckpoint) once the copy is safely stored, so a
// copy that is lost later costs a larger next copy, never a missed block.
func (d *Driver) CopyDisk(ctx context.Context, id string, req runtime.DiskCopyRequest) (runtime.DiskCopy, error) {
	if _, err := d.running(id); err != nil {
		return runtime.DiskCopy{}, err
	}
	if req.Checkpoint == "" || req.Checkpoint == req.Since {
		return runtime.DiskCopy{}, fmt.Errorf("%w: copy disk of %q: name a new checkpoint", runtime.ErrInvalid, id)
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return runtime.DiskCopy{}, err
	}
	node, _, ok := r.diskNode()
	if !ok {
		return runtime.DiskCopy{}, fmt.Errorf("%w: instance %q has no disk", runtime.ErrUnsupported, id)
	}
	size, bitmaps, err := d.diskState(ctx, id, node)
	if err != nil {
		return runtime.DiskCopy{}, err
	}
	out := runtime.DiskCopy{Size: size, Whole: true, Granularity: checkpointGranularity}
	since := checkpointPrefix + req.Since
	if req.Since != "" {
		i := slices.IndexFunc(bitmaps, func(b bitmap) bool { return b.Name == since })
		switch {
		case i < 0:
			out.Reason = fmt.Sprintf("the disk holds no checkpoint %s (its QEMU ended without saving it, its VM started from a new disk, or it was removed)", req.Since)
		case bitmaps[i].Inconsistent:
			out.Reason = fmt.Sprintf("checkpoint %s is not trustworthy: the VM's QEMU ended without saving it (killed or crashed)", req.Since)
		case !bitmaps[i].Persistent || bitmaps[i].Busy:
			out.Reason = fmt.Sprintf("checkpoint %s is not a saved, idle bitmap", req.Since)
		default:
			out.Whole = false
		}
	}
	// Checkpoints nobody uses any more, and a damaged Since, go.
	keep := map[string]bool{checkpointPrefix + req.Checkpoint: false}
	for _, k := range req.Keep {
		keep[checkpointPrefix+k] = true
	}
	if !out.Whole {
		keep[since] = true
	}
	for _, b := range bitmaps {
		if strings.HasPrefix(b.Name, checkpointPrefix) && !keep[b.Name] {
			if err := d.runQMP(ctx, id, "block-dirty-bitmap-remove", map[string]any{"node": node, "name": b.Name}, nil); err != nil {
				return runtime.DiskCopy{}, fmt.Errorf("instance %q: remove checkpoint %s: %w", id, strings.TrimPrefix(b.Name, checkpointPrefix), err)
			}
		}
	}

	target, base := req.Path+".qcow2", req.Path+".base"
	defer os.Remove(target)
	defer os.Remove(base)
	if out.Whole {
		err = d.qemuImg(ctx, "create", "-q", "-f", "qcow2", target, strconv.FormatInt(size, 10))
	} else {
		// The target of an incremental copy has an empty backing file, so that
		// every block the job writes, zeros too, is allocated in the target
		// itself: its allocation map is the list of changed blocks.
		err = d.qemuImg(ctx, "create", "-q", "-f", "raw", base, strconv.FormatInt(size, 10))
		if err == nil {
			err = d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, target, strconv.FormatInt(size, 10))
		}
	}
	if err != nil {
		return runtime.DiskCopy{}, err
	}
	job := fmt.Sprintf("copy%d", time.Now().UnixNano())
	if err := d.runQMP(ctx, id, "blockdev-add", map[string]any{
		"driver": "qcow2", "node-name": job, "file": map[string]any{"driver": "file", "filename": target},
	}, nil); err != nil {
		return runtime.DiskCopy{}, fmt.Errorf("instance %q: open the copy's target: %w", id, err)
	}
	backup := map[string]any{"job-id": job, "device": node, "target": job, "sync": "full", "auto-dismiss": false}
	if !out.Whole {
		backup["sync"], backup["bitmap"], backup["bitmap-mode"] = "bitmap", since, "never"
	}
	err = d.runQMP(ctx, id, "transaction", map[string]any{"actions": []map[string]any{
		{"type": "blockdev-backup", "data": backup},
		{"type": "block-dirty-bitmap-add", "data": map[string]any{
			"node": node, "name": checkpointPrefix + req.Checkpoint, "persistent": true, "granularity": checkpointGranularity}},
	}}, nil)
	if err == nil {
		err = d.waitJob(ctx, id, job)
		if err != nil {
			_ = d.runQMP(context.WithoutCancel(ctx), id, "job-cancel", map[string]any{"id": job}, nil)
			_ = d.waitJob(context.WithoutCancel(ctx), id, job)
		}
	} else {
		err = fmt.Errorf("instance %q: start the disk copy: %w", id, err)
	}
	if derr := d.runQMP(context.WithoutCancel(ctx), id, "blockdev-del", map[string]any{"node-name": job}, nil); err == nil && derr != nil {
		err = fmt.Errorf("instance %q: close the disk copy: %w", id, derr)
	}
	if err == nil && !out.Whole {
		out.Changed, err = d.changedExtents(ctx, target)
	}
	if err == nil {
		err = d.qemuImg(ctx, "convert", "-f", "qcow2", "-O", "raw", target, req.Path)
	}
	if err != nil {
		_ = os.Remove(req.Path)
		// The checkpoint stands for a copy that does not exist.
		_ = d.runQMP(context.WithoutCancel(ctx), id, "block-dirty-bitmap-remove",
			map[string]any{"node": node, "name": checkpointPrefix + req.Checkpoint}, nil)
		return runtime.DiskCopy{}, err
	}
	return out, nil
}

// changedExtents lists the ranges an incremental copy's target holds itself
// (depth 0 of its allocation map), merging neighbours.
func (d *Driver) changedExtents(ctx context.Context, target string) ([]runtime.Extent, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, d.cfg.QEMUImg, "map", "--output=json", "-f", "qcow2", target) //nolint:gosec // arguments, never shell words
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("qemu-img map: %s", firstLine(stderr.Bytes()))
	}
	var ranges []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Depth  int   `json:"depth"`
	}
	if err := json.Unmarshal(data, &ranges); err != nil {
		return nil, fmt.Errorf("qemu-img map: %w", err)
	}
	var out []runtime.Extent
	for _, r := range ranges {
		if r.Depth != 0 || r.Length <= 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length == r.Start {
			out[n-1].Length += r.Length
			continue
		}
		out = append(out, runtime.Extent{Offset: r.Start, Length: r.Length})
	}
	return out, nil
}

// DropCheckpoint implements runtime.DiskCheckpointer.
func (d *Driver) DropCheckpoint(ctx context.Context, id, name string) error {
	if _, err := d.running(id); err != nil {
		return err
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	node, _, ok := r.diskNode()
	if !ok {
		return nil
	}
	_, bitmaps, err := d.diskState(ctx, id, node)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(bitmaps, func(b bitmap) bool { return b.Name == checkpointPrefix+name }) {
		return nil
	}
	if err := d.runQMP(ctx, id, "block-dirty-bitmap-remove", map[string]any{"node": node, "name": checkpointPrefix + name}, nil); err != nil {
		return fmt.Errorf("instance %q: remove checkpoint %s: %w", id, name, err)
	}
	return nil
}
