package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// buildLocks serialises the building of one cached file (a root disk, the
// initramfs) across the Driver values of the process.
var buildLocks sync.Map

func lockPath(p string) func() {
	m, _ := buildLocks.LoadOrStore(p, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// rootDisk returns the ext4 disk holding the image's root filesystem, making
// it the first time: StateDir/images/<chain ID>[-<size>].ext4. Instances
// never write to it; each gets a qcow2 overlay.
func (d *Driver) rootDisk(ctx context.Context, info runtime.ImageInfo, size int64) (string, error) {
	name := strings.TrimPrefix(info.ChainID, "sha256:")
	if name == "" || strings.ContainsAny(name, "/.") {
		return "", fmt.Errorf("image %s: no usable chain ID %q", info.Ref, info.ChainID)
	}
	if size > 0 {
		name += "-" + strconv.FormatInt(size, 10)
	}
	dir := filepath.Join(d.cfg.StateDir, "images")
	p := filepath.Join(dir, name+".ext4")
	unlock := lockPath(p)
	defer unlock()
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp := p + ".tmp"
	defer os.Remove(tmp)
	err := d.cfg.Images.WithImageRoot(ctx, info.Ref, func(root string) error {
		return guest.MakeRootDisk(ctx, root, tmp, size)
	})
	if err != nil {
		return "", fmt.Errorf("image %s: make its root disk: %w", info.Ref, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	return p, nil
}

// baseInitramfs returns the initramfs every image VM starts from, building it
// once per guest kernel and init program: StateDir/guest/initramfs-<hash>.img.
func (d *Driver) baseInitramfs(k guest.Kernel) (string, error) {
	d.mu.Lock()
	built := d.initrd
	d.mu.Unlock()
	if built != "" {
		return built, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", k.Version, k.Vmlinuz)
	f, err := os.Open(d.cfg.GuestInit)
	if err != nil {
		return "", fmt.Errorf("strata's guest init %s: %w (build it with `make build`, or set the daemon's guest init path)", d.cfg.GuestInit, err)
	}
	_, err = io.Copy(h, f)
	_ = f.Close()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(d.cfg.StateDir, "guest")
	p := filepath.Join(dir, "initramfs-"+hex.EncodeToString(h.Sum(nil))[:16]+".img")
	unlock := lockPath(p)
	defer unlock()
	if _, err := os.Stat(p); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		tmp, err := os.CreateTemp(dir, "initramfs-*.tmp")
		if err != nil {
			return "", err
		}
		defer os.Remove(tmp.Name())
		if err := guest.BuildInitramfs(tmp, k, d.cfg.GuestInit); err != nil {
			_ = tmp.Close()
			return "", fmt.Errorf("build the guest initramfs: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return "", err
		}
		if err := os.Rename(tmp.Name(), p); err != nil {
			return "", err
		}
	}
	d.mu.Lock()
	d.initrd = p
	d.mu.Unlock()
	return p, nil
}

// writeSeed writes the cloud-init NoCloud seed: an ISO 9660 image labelled
// "cidata" with user-data, meta-data and, when given, network-config.
func (d *Driver) writeSeed(ctx context.Context, spec runtime.InstanceSpec) error {
	ci := spec.VM.CloudInit
	dir, err := os.MkdirTemp(d.dir(spec.ID), "seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"meta-data": "instance-id: " + spec.ID + "\nlocal-hostname: " + spec.ID + "\n",
		"user-data": ci.UserData,
	}
	if ci.NetworkData != "" {
		files["network-config"] = ci.NetworkData
	}
	names := make([]string, 0, len(files))
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	tool, err := exec.LookPath("genisoimage")
	if err != nil {
		return fmt.Errorf("%w: instance %q: vm.cloudInit needs genisoimage to write the seed (`make host-setup` installs it)", runtime.ErrUnsupported, spec.ID)
	}
	args := append([]string{"-quiet", "-output", d.path(spec.ID, seedFile), "-volid", "cidata", "-joliet", "-rock"}, names...)
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("instance %q: write the cloud-init seed: %s", spec.ID, firstLine(out))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// slotDisk returns the overlay a disk VM writes to, over backing (vm.disk, or its
// qcow2 conversion), of the qemu-img format given. With spec.DiskDir it is the
// slot's disk there, made once from vm.disk and used again at every start, so
// the guest's writes outlive restarts and replacements; a slot disk made from
// another vm.disk than the spec's now is kept aside (renamed, with the time)
// and a fresh one made, so that nothing is lost. Without DiskDir it is the
// instance's own overlay.
func (d *Driver) slotDisk(ctx context.Context, spec runtime.InstanceSpec, backing, format string) (string, error) {
	base := spec.VM.Disk.Path
	if spec.DiskDir == "" {
		overlay := d.path(spec.ID, overlayFile)
		if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-F", format, "-b", backing, overlay); err != nil {
			return "", fmt.Errorf("%w: instance %q: vm.disk %s: %w", runtime.ErrInvalid, spec.ID, base, err)
		}
		return overlay, nil
	}
	if err := os.MkdirAll(spec.DiskDir, 0o700); err != nil {
		return "", fmt.Errorf("instance %q: disk directory: %w", spec.ID, err)
	}
	overlay := filepath.Join(spec.DiskDir, SlotDiskFile)
	from := filepath.Join(spec.DiskDir, slotDiskBaseFile)
	if _, err := os.Stat(overlay); err == nil {
		prev, err := os.ReadFile(from)
		if err == nil && string(prev) == base {
			return overlay, nil
		}
		aside := filepath.Join(spec.DiskDir, fmt.Sprintf("disk-%s.qcow2", time.Now().UTC().Format("20060102T150405Z")))
		if err := os.Rename(overlay, aside); err != nil {
			return "", fmt.Errorf("instance %q: keep the old slot disk: %w", spec.ID, err)
		}
		d.log.Warn("qemu driver: vm.disk changed; the slot's old disk is kept aside", "id", spec.ID, "was", string(prev), "now", base, "kept", aside)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("instance %q: slot disk: %w", spec.ID, err)
	}
	tmp := overlay + ".tmp"
	if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-F", format, "-b", backing, tmp); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("%w: instance %q: vm.disk %s: %w", runtime.ErrInvalid, spec.ID, base, err)
	}
	if err := os.WriteFile(from, []byte(base), 0o600); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("instance %q: slot disk: %w", spec.ID, err)
	}
	if err := os.Rename(tmp, overlay); err != nil {
		return "", fmt.Errorf("instance %q: slot disk: %w", spec.ID, err)
	}
	return overlay, nil
}

var _ runtime.DiskRestorer = (*Driver)(nil)

// RestoreSlotDisk implements runtime.DiskRestorer: a standalone copy of from
// (qcow2, or raw when its name ends in .img) becomes the slot disk of diskDir,
// marked as made from base so that the next start uses it. A qcow2 that names
// other files (a backing file, an external data file) is refused: it may come
// from a backup repository that others write, and would copy host files into
// the guest's disk.
func (d *Driver) RestoreSlotDisk(ctx context.Context, diskDir, base, from string) error {
	if err := regularFile(from); err != nil {
		return fmt.Errorf("%w: restore slot disk: %w", runtime.ErrInvalid, err)
	}
	format := "qcow2"
	if strings.HasSuffix(from, ".img") {
		format = "raw"
	} else if err := d.standalone(ctx, from); err != nil {
		return fmt.Errorf("%w: restore slot disk from %s: %w", runtime.ErrInvalid, from, err)
	}
	if err := os.MkdirAll(diskDir, 0o700); err != nil {
		return fmt.Errorf("restore slot disk: %w", err)
	}
	tmp := filepath.Join(diskDir, SlotDiskFile+".restore")
	defer os.Remove(tmp)
	if err := d.qemuImg(ctx, "convert", "-f", format, "-O", "qcow2", from, tmp); err != nil {
		return fmt.Errorf("restore slot disk from %s: %w", from, err)
	}
	if err := os.WriteFile(filepath.Join(diskDir, slotDiskBaseFile), []byte(base), 0o600); err != nil {
		return fmt.Errorf("restore slot disk: %w", err)
	}
	return os.Rename(tmp, filepath.Join(diskDir, SlotDiskFile))
}

// standalone checks that the qcow2 image at path reads no other file.
func (d *Driver) standalone(ctx context.Context, path string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, d.cfg.QEMUImg, "info", "--output=json", "-f", "qcow2", path) //nolint:gosec // arguments, never shell words
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("not a readable qcow2 image: %s", firstLine(stderr.Bytes()))
	}
	var info struct {
		Backing  string `json:"backing-filename"`
		Specific struct {
			Data struct {
				DataFile string `json:"data-file"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("qemu-img info: %w", err)
	}
	if info.Backing != "" {
		return fmt.Errorf("the image reads a backing file (%q): a saved disk must be standalone", info.Backing)
	}
	if info.Specific.Data.DataFile != "" {
		return fmt.Errorf("the image keeps its data in another file (%q): a saved disk must be standalone", info.Specific.Data.DataFile)
	}
	return nil
}
