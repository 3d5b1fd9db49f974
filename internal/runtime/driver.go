package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// Driver runs instances of one or more tiers on this host. See the package
// documentation for the terms it uses.
type Driver interface {
	// Name is the driver's short, stable name ("containerd", "qemu", "fake").
	Name() string

	// Capabilities describes the tiers the driver serves and what it enforces.
	Capabilities() Capabilities

	// Start creates the instance and starts its main process, returning its
	// status once the process runs (State running). It returns
	// ErrAlreadyExists if the driver owns an instance with spec.ID (in any
	// state), ErrInvalid for a spec that fails ValidateSpec, ErrUnsupported
	// for a tier the driver does not serve and ErrImageNotFound for an image
	// it does not have. A failed Start leaves nothing behind.
	Start(ctx context.Context, spec InstanceSpec) (Status, error)

	// Stop ends the instance's main process: it asks the process to end
	// (SIGTERM), waits up to grace for it, then kills every process of the
	// instance. It returns once the instance has exited. Stopping an
	// instance that has already exited is not an error; an unknown ID is
	// ErrNotFound. The exited instance keeps its status until Remove.
	Stop(ctx context.Context, id string, grace time.Duration) error

	// Remove deletes an exited instance and everything the driver made for it
	// (for containerd: the task, the container and its snapshot; not the log
	// file, which belongs to the caller). It returns ErrNotFound for an
	// unknown ID and ErrRunning while the main process runs.
	Remove(ctx context.Context, id string) error

	// Status reports the instance's current state; ErrNotFound if the driver
	// owns no instance with this ID.
	Status(ctx context.Context, id string) (Status, error)

	// List reports every instance the driver owns, including those another
	// Driver value (an earlier strata process) started, sorted by ID.
	List(ctx context.Context) ([]Status, error)

	// Close releases the driver's own resources (connections, watchers).
	// Instances keep running; a new Driver value re-adopts them. Closing
	// twice is not an error; other methods fail after Close.
	Close() error
}

// Capabilities states which tiers a driver serves and which parts of an
// InstanceSpec it enforces. A driver accepts every field of a spec; a field
// it does not enforce is ignored only where the flag below says so.
type Capabilities struct {
	// Tiers are the tiers the driver serves, weakest first.
	Tiers []v1alpha1.Tier

	// Limits reports that CPUMilli and MemoryBytes are enforced: a process
	// that allocates beyond MemoryBytes is OOM-killed (Status.OOMKilled).
	Limits bool

	// MemoryBound reports that MemoryBytes bounds the instance without Limits' cgroup:
	// a VM's guest has that much memory, so a process cannot use more (its allocation
	// fails, or the guest's kernel kills it), which the host sees as a failed exit, not
	// as an OOM kill (Status.OOMKilled stays false).
	MemoryBound bool

	// Mounts reports that InstanceSpec.Mounts are honoured; a driver without it
	// refuses a spec with mounts (ErrUnsupported) rather than lose the data.
	Mounts bool

	// NetNS reports that InstanceSpec.NetNS is honoured (the instance joins
	// a prepared network namespace).
	NetNS bool

	// VMNet reports that container and sandbox instances take
	// InstanceSpec.VMNet rather than NetNS: the driver runs them inside a
	// VM (a node VM) and plugs the tap the network manager made for the
	// instance into it as the instance's own NIC, so that the instance
	// keeps its address and the tap's port guard holds for it as for a
	// vm-tier instance. The vm tier takes VMNet whatever this says.
	VMNet bool

	// HostPID reports that Status.PID is the PID of a real host process
	// (/proc/PID exists while the instance runs).
	HostPID bool
}

// Serves reports whether the driver serves tier t.
func (c Capabilities) Serves(t v1alpha1.Tier) bool {
	for _, s := range c.Tiers {
		if s == t {
			return true
		}
	}
	return false
}

// Execer is a Driver that can run an extra process inside a running instance.
type Execer interface {
	// Exec runs cmd inside the running instance id (same root filesystem,
	// environment and namespaces as the main process), copying stdin (may be
	// nil) to it and its output to stdout and stderr (either may be nil to
	// discard), and returns its exit code once it has ended and its output
	// has been copied. It returns ErrNotFound for an unknown ID and
	// ErrNotRunning when the instance's main process has exited.
	Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error)
}

// ImageImporter is a Driver with an image store that images enter by import.
type ImageImporter interface {
	// ImportImage reads an OCI image layout or a docker-archive tarball,
	// stores its images under the names the tarball gives them (the
	// org.opencontainers.image.ref.name annotation of an OCI layout, the
	// RepoTags of a docker archive), prepares them to run (unpacks them once;
	// later starts reuse them) and returns their normalised references.
	// Importing an image that is already present replaces its name's target.
	ImportImage(ctx context.Context, r io.Reader) ([]string, error)
}

// EventSource is a Driver that reports instance events as they happen.
type EventSource interface {
	// Events delivers events about the driver's instances from now on until
	// ctx ends or the driver is closed; then the channel is closed. Events
	// that happen while nobody listens are not replayed: after a restart,
	// List tells what happened meanwhile. A slow reader does not block the
	// driver; events beyond a generous buffer are dropped and logged.
	Events(ctx context.Context) (<-chan Event, error)
}

// ImageSource is a Driver whose image store other drivers may boot from: the
// qemu driver runs an OCI image's root filesystem in a microVM.
type ImageSource interface {
	// ResolveImage returns the image's identity and run configuration;
	// ErrImageNotFound when the store has no image of that name.
	ResolveImage(ctx context.Context, ref string) (ImageInfo, error)
	// WithImageRoot makes the image's root filesystem visible read-only at a
	// temporary directory for the duration of fn, then removes every trace of
	// it (mounts, snapshots). ErrImageNotFound as for ResolveImage.
	WithImageRoot(ctx context.Context, ref string, fn func(root string) error) error
}

// ImageInfo is an image's identity and the run configuration it carries.
type ImageInfo struct {
	Ref    string // the normalised reference (NormalizeImage)
	Digest string // the manifest digest, "sha256:..."; it changes when the image does
	// ChainID identifies the unpacked root filesystem ("sha256:..."): images
	// with the same layers share it.
	ChainID    string
	Entrypoint []string
	Cmd        []string
	Env        []string // "KEY=VALUE"
	WorkingDir string
	User       string
}

// Pauser is a Driver that can freeze a running instance (a container's
// processes, a VM's CPUs) and let it run again: a copy of its data taken in
// between is of one moment.
type Pauser interface {
	// Pause freezes the instance; Resume lets it run again. ErrNotRunning when
	// the instance's main process has exited.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
}

// StateSaver is a Driver that can freeze a running VM and bring it back: the
// primitives that snapshots and backups are built from.
type StateSaver interface {
	Pauser
	// SnapshotDisk freezes the instance's disk as it is now into a read-only
	// image at path (qcow2, standalone: it does not depend on the instance's
	// files); the instance keeps running on a new overlay.
	SnapshotDisk(ctx context.Context, id, path string) error
	// SaveState writes the instance's whole state (memory, devices, disk) to
	// files in dir and lets it run on. It returns what RestoreState needs.
	SaveState(ctx context.Context, id, dir string) (SavedState, error)
	// RestoreState replaces the instance's running state with a saved one:
	// the guest resumes exactly where SaveState left it.
	RestoreState(ctx context.Context, id string, s SavedState) error
}

// SavedState names the files of a saved VM state.
type SavedState struct {
	Memory string // the device and memory state
	Disk   string // the disk as it was at the same moment (qcow2, standalone)
}

// DiskCheckpointer is a StateSaver whose VM disks keep checkpoints: named
// records, kept in the disk image itself, of the blocks the guest writes after
// a copy, so that the next copy reads only those blocks (an incremental
// backup).
type DiskCheckpointer interface {
	// CopyDisk copies instance id's disk as it is now to req.Path, a raw image
	// of the disk's size, and starts checkpoint req.Checkpoint at the same
	// moment. With req.Since naming a checkpoint the disk holds intact, only
	// the blocks written since it are copied (Changed lists them; the rest of
	// req.Path reads as zeros and means "as in the copy of Since"); without
	// one, or when it is missing or damaged (Reason says why), the whole disk
	// is copied. Checkpoints other than Since and those in req.Keep are removed.
	CopyDisk(ctx context.Context, id string, req DiskCopyRequest) (DiskCopy, error)
	// DropCheckpoint removes checkpoint name from instance id's disk; a name
	// the disk does not hold is not an error.
	DropCheckpoint(ctx context.Context, id, name string) error
}

// DiskCopyRequest is what DiskCheckpointer.CopyDisk copies.
type DiskCopyRequest struct {
	Path       string   // where the raw copy goes
	Since      string   // the checkpoint of the previous copy, if any
	Checkpoint string   // the checkpoint to start at this copy's moment
	Keep       []string // other checkpoints still in use (by other repositories)
}

// DiskCopy says what DiskCheckpointer.CopyDisk copied.
type DiskCopy struct {
	// Size is the disk's size in bytes: the size of the raw copy.
	Size int64 `json:"size"`
	// Whole is true when every block was copied; Changed is then empty.
	Whole bool `json:"whole"`
	// Reason says why a copy asked to start from a checkpoint is whole.
	Reason string `json:"reason,omitempty"`
	// Changed lists the byte ranges written since the checkpoint Since, in
	// order, aligned to Granularity.
	Changed []Extent `json:"changed,omitempty"`
	// Granularity is the checkpoint's block size in bytes.
	Granularity int64 `json:"granularity"`
}

// Extent is a byte range of a disk.
type Extent struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// StatsReader is a Driver that reports what its running instances use.
type StatsReader interface {
	// Stats returns the resources instance id has used: CPU time since it
	// started and the memory it holds now. It returns ErrNotFound for an
	// unknown ID and ErrNotRunning when the instance's main process has
	// exited.
	Stats(ctx context.Context, id string) (Stats, error)
}

// Stats is what one instance uses, as its driver measures it: the
// container's or sandbox's cgroup, or the QEMU process of a VM.
type Stats struct {
	// CPUSeconds is the CPU time the instance has used since it started,
	// user and system, summed over all CPUs.
	CPUSeconds float64
	// MemoryBytes is the memory the instance holds now (the cgroup's usage,
	// or the QEMU process's resident set).
	MemoryBytes int64
}

// Prober is a Driver that can check, now, that what it depends on works: its
// runtime daemon answers, its programs are in place. The daemon's /readyz and
// its Host object report the checks.
type Prober interface {
	// Probe runs the driver's checks within ctx and reports each one; it
	// never fails as a whole (a check that could not run is not ready).
	Probe(ctx context.Context) []Check
}

// Check is the result of one readiness check of a driver.
type Check struct {
	// Name is what was checked: "containerd", "runc", "gvisor", "qemu".
	Name string
	// Tiers are the tiers that need it.
	Tiers []v1alpha1.Tier
	// Ready reports that the check passed.
	Ready bool
	// Message says what was found ("containerd 1.7.24 at /run/...") or what
	// is wrong and what to do.
	Message string
}

// CheckExecutable reports why path is not an executable regular file, or nil.
func CheckExecutable(path string) error {
	if path == "" {
		return errors.New("no path configured")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// RootfsSaver is a Driver that can copy what a running container or sandbox has
// changed in its root filesystem, and start an instance from such a copy
// (InstanceSpec.RootfsLayer).
type RootfsSaver interface {
	// SaveRootfs writes the changes instance id has made to its image's root
	// filesystem to w as a layer archive: a tar of the files added or changed,
	// and a whiteout (.wh.NAME) for each one removed. Volumes are not in it.
	// The caller freezes the instance (Pauser) for a point-in-time copy.
	SaveRootfs(ctx context.Context, id string, w io.Writer) error
}

// DiskRestorer is a Driver that keeps VMs' slot disks (InstanceSpec.DiskDir)
// and can put a saved disk in place of one while no instance uses it.
type DiskRestorer interface {
	// RestoreSlotDisk makes a copy of the standalone disk image at from (a
	// qcow2, or a raw image when its name ends in .img) the slot disk in
	// diskDir, for VMs whose vm.disk is base; from stays as it is.
	RestoreSlotDisk(ctx context.Context, diskDir, base, from string) error
}
