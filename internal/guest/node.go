package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"regexp"
	"strings"
	"time"
)

// Node mode. A guest booted with Config.Mode ModeNode runs no entrypoint of
// its own: it is a container host. The host gives it each image's root
// filesystem as a read-only block device; the guest mounts it once per
// device, gives each container an overlayfs with a writable upper directory
// on the guest's tmpfs, writes an OCI runtime bundle and runs it with crun
// (or runsc) from the tools disk.
//
// The node operations travel on the exec agent's streams: an ExecRequest
// whose Node field is set is answered with one NodeReply as a JSON line, and
// the stream ends. An ExecRequest whose Container field is set runs its Args
// inside that container (the runtime's exec), with the usual frames.

// The guest's modes.
const (
	// ModeImage runs Config.Args in the image's root filesystem (the default).
	ModeImage = ""
	// ModeNode serves the node operations (NodeRequest) and runs no entrypoint.
	ModeNode = "node"
)

// Container runtimes inside a node guest.
const (
	// RuntimeCrun is the default, for the container tier: crun, an OCI
	// runtime in C with runc's command line. Under emulation it starts a
	// container in a fraction of runc's time, most of which is runc's own
	// Go start-up run instruction by instruction, several times per start.
	RuntimeCrun = "crun"
	// RuntimeRunc runs a container with runc instead, when the tools disk
	// carries it (NodeTools.Runc). It is kept for one release, to measure
	// the two side by side (BenchmarkStartTrue), and then goes.
	RuntimeRunc  = "runc"
	RuntimeRunsc = "runsc" // gVisor: the sandbox tier
)

// Paths of the runtimes in the guest's root (on the tools disk).
const (
	CrunPath  = "/usr/bin/crun"
	RuncPath  = "/usr/sbin/runc"
	RunscPath = "/usr/bin/runsc"
)

// RunscID is the ID runsc knows container id by in a node guest: id with a
// "+" after it, a character no instance ID holds (runtime.ValidID). runsc
// takes an ID as a prefix of the IDs it has and refuses one that begins
// another's ("web-1" beside "web-10") as ambiguous, an exact match
// included; with the mark no ID begins another.
func RunscID(id string) string { return id + "+" }

// The node operations (NodeRequest.Op).
const (
	// NodeCreate mounts the image, makes the container's root filesystem
	// and writes its bundle (NodeRequest.Container); nothing runs yet.
	NodeCreate = "create"
	// NodeStart starts a created container.
	NodeStart = "start"
	// NodeWait waits until the container has ended and answers its exit code.
	NodeWait = "wait"
	// NodeStop sends NodeRequest.Signal (SIGTERM when 0) and SIGKILL after
	// GraceSeconds, and answers the exit code once it has ended.
	NodeStop = "stop"
	// NodeLogs answers the container's output (stdout and stderr, in the
	// order written) from Offset, at most MaxLogChunk bytes.
	NodeLogs = "logs"
	// NodeState answers the container's state without waiting.
	NodeState = "state"
	// NodeRemove kills what still runs, deletes the container and frees
	// its root filesystem and log.
	NodeRemove = "remove"
	// NodeDisk waits up to WaitMillis for the virtio disk whose serial is
	// ID (one the host plugged in while the VM runs) and answers its device
	// (NodeReply.Device); an error says which disks the guest has instead.
	// The host asks before it uses a disk it plugged in: a guest on a busy
	// host can take seconds to see one, and may miss a hot-plug.
	NodeDisk = "disk"
	// NodeStats answers what a running container uses (NodeReply.Stats):
	// for crun (or runc) its cgroup's CPU time and memory, for runsc the sandbox's
	// own accounting (runsc keeps no cgroup in the guest). A container
	// that does not run answers its state without Stats.
	NodeStats = "stats"
	// NodePause freezes a running container's processes (the runtime's
	// pause); NodeResume lets them run again. A stop resumes a paused
	// container after its first signal, so that it can act on it.
	NodePause  = "pause"
	NodeResume = "resume"
	// NodeRootfs is answered as an exec is (frames, not a NodeReply):
	// its output is what the container has changed in its image's root
	// filesystem, its overlayfs's upper directory, as a layer archive (a
	// tar of the files added or changed and a whiteout .wh.NAME for each
	// removed), and exit code 0 once the whole archive is sent; an error
	// frame says why not. crun and runc containers only (runsc keeps its changes
	// inside the sandbox). AgentClient.NodeRootfs reads it.
	NodeRootfs = "rootfs"
	// NodeLayer unpacks a layer archive (as NodeRootfs writes one) into a
	// created container's root filesystem before it starts: its files over
	// the image's, its whiteouts removing what they name. Like NodeRootfs
	// it travels as an exec: the archive is its stdin, exit code 0 says it
	// is in place. AgentClient.NodeLayer sends it.
	NodeLayer = "layer"
)

// MaxDiskWait bounds NodeRequest.WaitMillis.
const MaxDiskWait = 10 * time.Minute

// VirtiofsPrefix starts a ContainerSpec.Image shared with virtiofs.
const VirtiofsPrefix = "virtiofs:"

// DiskBySerial starts a ContainerSpec.Image that names a virtio disk by its
// serial number: the ID the host gave a disk it plugged in while the VM runs
// (qemu's AttachDisk), whose guest device name (vdb, vdc, ...) the host cannot
// know. The guest has no udev to make this link; it looks the serial up in
// /sys/block.
const DiskBySerial = "/dev/disk/by-id/virtio-"

// MaxLogChunk bounds NodeReply.Log.
const MaxLogChunk = 512 << 10

// NodeRequest is one node operation.
type NodeRequest struct {
	Op string `json:"op"`
	// ID names the container: letters, digits, '.', '_' and '-', at most 64.
	ID string `json:"id"`
	// Container is the container to make, for NodeCreate.
	Container *ContainerSpec `json:"container,omitempty"`
	// Signal is NodeStop's first signal (a number; 0 is SIGTERM).
	Signal int `json:"signal,omitempty"`
	// GraceSeconds is NodeStop's time before SIGKILL (0 is 10 s).
	GraceSeconds int `json:"graceSeconds,omitempty"`
	// Offset is where NodeLogs starts reading.
	Offset int64 `json:"offset,omitempty"`
	// WaitMillis is how long NodeDisk waits for the disk (0: not at all).
	WaitMillis int64 `json:"waitMillis,omitempty"`
}

// ContainerSpec is what the guest needs to run one container.
type ContainerSpec struct {
	// Image is the guest's block device holding the image's root
	// filesystem ("/dev/vdb", or DiskBySerial and the disk's serial), or
	// "virtiofs:<tag>" for a directory the host shares with virtiofs;
	// mounted read-only and shared by every container of that image.
	Image string `json:"image"`
	// ImageFSType is the image device's filesystem; empty is ext4.
	ImageFSType string `json:"imageFSType,omitempty"`
	// Args, Env, WorkingDir and User are the container's process, as in
	// Config. User is "UID[:GID]" or names from the image's /etc/passwd.
	Args       []string `json:"args"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
	// Hostname is the container's; empty is its ID.
	Hostname string `json:"hostname,omitempty"`
	// Runtime is RuntimeCrun (when empty), RuntimeRunc or RuntimeRunsc.
	Runtime string `json:"runtime,omitempty"`
	// Limits; zero is unlimited.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	MilliCPU    int64 `json:"milliCPU,omitempty"`
	Pids        int64 `json:"pids,omitempty"`
	// Capabilities are the container's capability set, as CAP_ names
	// ("CAP_NET_ADMIN"); empty: the guest's default set (a container
	// runtime's usual one).
	Capabilities []string `json:"capabilities,omitempty"`
	// Mounts are directories (or files) the host shares with virtiofs,
	// bind-mounted into the container.
	Mounts []ContainerMount `json:"mounts,omitempty"`
	// Net, when set, gives the container its own network: the NIC the
	// host plugged in for it (found by its MAC), moved into the container's
	// network namespace as eth0 with Net's address and default route. Nil:
	// the container's network namespace has loopback only.
	Net *ContainerNet `json:"net,omitempty"`
}

// ContainerMount is a part of a virtiofs share bind-mounted into a
// container. The guest mounts each tag once (the first container that
// names it waits up to WaitMillis for the device the host has just plugged
// in) and keeps it mounted while the VM runs.
type ContainerMount struct {
	// Tag is the virtiofs tag of the share (qemu's AttachFS).
	Tag string `json:"tag"`
	// Source is the path of the directory or file within the share:
	// relative, without "..".
	Source string `json:"source"`
	// Path is where the container sees it: absolute, not "/".
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// WaitMillis bounds the wait for the tag's device.
	WaitMillis int64 `json:"waitMillis,omitempty"`
}

// ContainerNet is a container's place on its segment.
type ContainerNet struct {
	// MAC is the hardware address of the NIC the host plugged in for the
	// container (qemu's AttachNIC); the guest waits up to WaitMillis for
	// it to appear (a hot-plug takes seconds under emulation).
	MAC        string `json:"mac"`
	WaitMillis int64  `json:"waitMillis,omitempty"`
	NetConfig
}

// Container states in NodeReply.State.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
)

// NodeReply answers a NodeRequest.
type NodeReply struct {
	// Error says why the operation failed; the other fields are then unset.
	Error string `json:"error,omitempty"`
	// State is the container's state after the operation.
	State string `json:"state,omitempty"`
	// ExitCode is set once the container has ended (128+N for signal N).
	ExitCode *int `json:"exitCode,omitempty"`
	// OOMKilled reports, once the container has ended, that the guest's
	// kernel killed a process of it for its memory limit (crun and runc).
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Device answers NodeDisk: the disk's device node, like /dev/vdb.
	Device string `json:"device,omitempty"`
	// Log and NextOffset answer NodeLogs.
	Log        []byte `json:"log,omitempty"`
	NextOffset int64  `json:"nextOffset,omitempty"`
	// Stats answers NodeStats while the container runs.
	Stats *ContainerStats `json:"stats,omitempty"`
	// Millis is how long the guest took for the operation.
	Millis int64 `json:"millis,omitempty"`
}

// ContainerStats is what one container uses, as the guest measures it.
type ContainerStats struct {
	// CPUSeconds is the CPU time its processes have used since it started,
	// user and system, over all CPUs.
	CPUSeconds float64 `json:"cpuSeconds"`
	// MemoryBytes is the memory it holds now: its cgroup's memory.current
	// (page cache included, as the memory limit counts it), or for runsc
	// the sandbox's memory usage.
	MemoryBytes int64 `json:"memoryBytes"`
}

var containerID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports the first problem of r, naming the field.
func (r NodeRequest) Validate() error {
	switch r.Op {
	case NodeCreate, NodeStart, NodeWait, NodeStop, NodeLogs, NodeState, NodeRemove, NodeDisk, NodeStats, NodePause, NodeResume, NodeRootfs, NodeLayer:
	default:
		return fmt.Errorf("node request: op %q is not one of create, start, wait, stop, logs, state, remove, disk, stats, pause, resume, rootfs, layer", r.Op)
	}
	if r.WaitMillis < 0 || r.WaitMillis > MaxDiskWait.Milliseconds() {
		return fmt.Errorf("node request: waitMillis %d: give 0 to %d", r.WaitMillis, MaxDiskWait.Milliseconds())
	}
	if !containerID.MatchString(r.ID) {
		return fmt.Errorf("node request: id %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", r.ID)
	}
	if r.Op == NodeCreate {
		if r.Container == nil {
			return errors.New("node request: create needs container")
		}
		if err := r.Container.Validate(); err != nil {
			return err
		}
	}
	if r.Signal < 0 || r.Signal > 64 {
		return fmt.Errorf("node request: signal %d is not a signal number (1 to 64, or 0 for SIGTERM)", r.Signal)
	}
	if r.GraceSeconds < 0 || r.Offset < 0 {
		return errors.New("node request: graceSeconds and offset cannot be negative")
	}
	return nil
}

// Validate reports the first problem of c, naming the field.
func (c ContainerSpec) Validate() error {
	switch {
	case !strings.HasPrefix(c.Image, "/dev/") && !strings.HasPrefix(c.Image, VirtiofsPrefix):
		return fmt.Errorf("container.image %q: give the guest's block device holding the image, like /dev/vdb, or virtiofs:<tag>", c.Image)
	case c.Image == VirtiofsPrefix:
		return errors.New("container.image \"virtiofs:\" has no tag; give the tag of the host's vhost-user-fs device")
	case len(c.Args) == 0 || c.Args[0] == "":
		return errors.New("container.args: no program to run (the image has no entrypoint or cmd, and the workload no command)")
	case c.Runtime != "" && c.Runtime != RuntimeCrun && c.Runtime != RuntimeRunc && c.Runtime != RuntimeRunsc:
		return fmt.Errorf("container.runtime %q: use crun, runc or runsc", c.Runtime)
	case c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/"):
		return fmt.Errorf("container.workingDir %q is not absolute", c.WorkingDir)
	case c.MemoryBytes < 0 || c.MilliCPU < 0 || c.Pids < 0:
		return errors.New("container: memoryBytes, milliCPU and pids cannot be negative")
	}
	for i, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("container.env[%d] %q is not KEY=VALUE", i, kv)
		}
	}
	for i, cp := range c.Capabilities {
		if !capName.MatchString(cp) {
			return fmt.Errorf("container.capabilities[%d] %q: give a capability's name, like CAP_NET_ADMIN", i, cp)
		}
	}
	for i, m := range c.Mounts {
		switch {
		case !virtiofsTag.MatchString(m.Tag):
			return fmt.Errorf("container.mounts[%d].tag %q: give the tag of the host's vhost-user-fs device: 1 to 36 letters, digits, '.', '_' or '-'", i, m.Tag)
		case m.Source == "" || path.IsAbs(m.Source) || path.Clean(m.Source) != m.Source || m.Source == ".." || strings.HasPrefix(m.Source, "../"):
			return fmt.Errorf("container.mounts[%d].source %q: give a clean path relative to the share, without \"..\"", i, m.Source)
		case !path.IsAbs(m.Path) || path.Clean(m.Path) == "/":
			return fmt.Errorf("container.mounts[%d].path %q: give an absolute path other than /", i, m.Path)
		case m.WaitMillis < 0 || m.WaitMillis > MaxDiskWait.Milliseconds():
			return fmt.Errorf("container.mounts[%d].waitMillis %d: give 0 to %d", i, m.WaitMillis, MaxDiskWait.Milliseconds())
		}
	}
	if n := c.Net; n != nil {
		if mac, err := net.ParseMAC(n.MAC); err != nil || len(mac) != 6 {
			return fmt.Errorf("container.net.mac %q: give the NIC's 6-byte Ethernet address, like 02:00:0a:00:00:05", n.MAC)
		}
		if !n.Address.IsValid() || !n.Address.Addr().Is4() {
			return fmt.Errorf("container.net.address %q: give an IPv4 address with its prefix length, like 10.0.0.5/24", n.Address)
		}
		if n.Gateway.IsValid() && !n.Address.Masked().Contains(n.Gateway) {
			return fmt.Errorf("container.net.gateway %s is not in the container's subnet %s", n.Gateway, n.Address.Masked())
		}
		if err := n.validate("container.net"); err != nil {
			return err
		}
		if n.WaitMillis < 0 || n.WaitMillis > MaxDiskWait.Milliseconds() {
			return fmt.Errorf("container.net.waitMillis %d: give 0 to %d", n.WaitMillis, MaxDiskWait.Milliseconds())
		}
	}
	return nil
}

var (
	capName     = regexp.MustCompile(`^CAP_[A-Z0-9_]+$`)
	virtiofsTag = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$`)
)

// WriteNodeReply writes r as one JSON line.
func WriteNodeReply(w io.Writer, r NodeReply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Node runs one node operation and returns the guest's reply; a reply with
// Error set is returned as an error too.
func (c *AgentClient) Node(ctx context.Context, req NodeRequest) (NodeReply, error) {
	if err := req.Validate(); err != nil {
		return NodeReply{}, err
	}
	if err := ctx.Err(); err != nil {
		return NodeReply{}, err
	}
	stream, err := c.session.OpenStream()
	if err != nil {
		return NodeReply{}, fmt.Errorf("guest node %s: open a stream: %w", req.Op, err)
	}
	defer stream.Close()
	stop := context.AfterFunc(ctx, func() { _ = stream.SetDeadline(time.Now()) })
	defer stop()
	if err := WriteRequest(stream, ExecRequest{Node: &req}); err != nil {
		return NodeReply{}, fmt.Errorf("guest node %s: %w", req.Op, err)
	}
	line, err := bufio.NewReaderSize(stream, 64<<10).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return NodeReply{}, ctx.Err()
		}
		return NodeReply{}, fmt.Errorf("guest node %s %s: read the reply: %w", req.Op, req.ID, err)
	}
	var rep NodeReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return NodeReply{}, fmt.Errorf("guest node %s %s: decode the reply: %w", req.Op, req.ID, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("guest node %s %s: %s", req.Op, req.ID, rep.Error)
	}
	return rep, nil
}

// NodeRootfs writes the layer archive of what container id has changed in
// its root filesystem (NodeRootfs) to w. The guest sends it as an exec's
// output, and its end as an exit code, so that a layer it could not write
// to its end is an error here (what reached w of it is then no layer).
func (c *AgentClient) NodeRootfs(ctx context.Context, id string, w io.Writer) error {
	req := NodeRequest{Op: NodeRootfs, ID: id}
	if err := req.Validate(); err != nil {
		return err
	}
	code, err := c.Run(ctx, ExecRequest{Node: &req}, nil, w, nil)
	if err != nil {
		return fmt.Errorf("guest node rootfs %s: %w", id, err)
	}
	if code != 0 {
		return fmt.Errorf("guest node rootfs %s: exit code %d", id, code)
	}
	return nil
}

// NodeLayer unpacks the layer archive read from layer into created
// container id's root filesystem (NodeLayer), before it starts.
func (c *AgentClient) NodeLayer(ctx context.Context, id string, layer io.Reader) error {
	req := NodeRequest{Op: NodeLayer, ID: id}
	if err := req.Validate(); err != nil {
		return err
	}
	code, err := c.Run(ctx, ExecRequest{Node: &req}, layer, nil, nil)
	if err != nil {
		return fmt.Errorf("guest node layer %s: %w", id, err)
	}
	if code != 0 {
		return fmt.Errorf("guest node layer %s: exit code %d", id, code)
	}
	return nil
}

// ExecIn runs args inside container id, like Exec.
func (c *AgentClient) ExecIn(ctx context.Context, id string, args, env []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 || args[0] == "" {
		return -1, errors.New("guest exec: no program to run")
	}
	return c.Run(ctx, ExecRequest{Container: id, Args: args, Env: env}, stdin, stdout, stderr)
}
