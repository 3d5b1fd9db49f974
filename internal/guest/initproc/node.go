package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// Where a node guest keeps its state, all on the /run tmpfs.
const (
	nodeImages     = "/run/strata/images"     // one read-only mount per image device
	nodeContainers = "/run/strata/containers" // <id>/{config.json,rootfs,upper,work,log}
	nodeShares     = "/run/strata/shares"     // one mount per virtiofs tag of ContainerSpec.Mounts
	crunRoot       = "/run/crun"
	runcRoot       = "/run/runc"
	runscRoot      = "/run/runsc"
)

// defaultStopGrace is NodeStop's time before SIGKILL when the host names none.
const defaultStopGrace = 10 * time.Second

// node runs the containers of a node guest.
type node struct {
	log    *console
	reaper *reaper

	mu         sync.Mutex
	containers map[string]*container
	images     map[string]int // image device -> containers using its mount

	// sharesMu guards shares, the virtiofs tags mounted under nodeShares;
	// apart from mu, so that a wait for a tag holds up no other container.
	sharesMu sync.Mutex
	shares   map[string]bool
}

// container is one container of the node.
type container struct {
	id    string
	spec  guest.ContainerSpec
	dir   string // the bundle
	image string // the image device's mount
	state string
	done  chan struct{} // closed when the runtime's run has ended
	code  int           // set before done is closed
	oom   bool          // likewise: the kernel OOM-killed a process of it
	// paused is set while its runtime holds it frozen (NodePause).
	paused bool
}

func newNode(log *console, r *reaper) *node {
	return &node{log: log, reaper: r, containers: map[string]*container{}, images: map[string]int{}, shares: map[string]bool{}}
}

func (c *container) runtime() string {
	switch c.spec.Runtime {
	case guest.RuntimeRunsc, guest.RuntimeRunc:
		return c.spec.Runtime
	}
	return guest.RuntimeCrun
}

// runtimeID is the ID c's runtime knows it by: its own for crun and runc,
// marked for runsc (guest.RunscID).
func (c *container) runtimeID() string {
	if c.runtime() == guest.RuntimeRunsc {
		return guest.RunscID(c.id)
	}
	return c.id
}

// runtimeArgs is the runtime's binary and its global flags.
func (c *container) runtimeArgs() []string {
	switch c.runtime() {
	case guest.RuntimeRunsc:
		// gVisor's own network stack takes over the addresses and routes of
		// the container's namespace (its NIC); without one it has loopback
		// only.
		network := "--network=none"
		if c.spec.Net != nil {
			network = "--network=sandbox"
		}
		return []string{guest.RunscPath, "--root", runscRoot, network}
	case guest.RuntimeRunc:
		return []string{guest.RuncPath, "--root", runcRoot}
	}
	return []string{guest.CrunPath, "--root", crunRoot}
}

// stateFiles are the runtime's directory of c's state (below its --root)
// and the file in it whose presence means that the runtime has created c:
// crun's "status" (written, by a rename, once crun has set the container
// up, right before its process is executed), runc's "state.json". Both
// keep an "exec.fifo" there from a create to the start, which a run does
// not make. ok is false for runsc, whose state is asked of runsc.
func (c *container) stateFiles() (dir, created string, ok bool) {
	switch c.runtime() {
	case guest.RuntimeCrun:
		return filepath.Join(crunRoot, c.runtimeID()), "status", true
	case guest.RuntimeRunc:
		return filepath.Join(runcRoot, c.runtimeID()), "state.json", true
	}
	return "", "", false
}

// handle runs one node operation.
func (n *node) handle(req guest.NodeRequest) guest.NodeReply {
	start := time.Now()
	var rep guest.NodeReply
	var err error
	switch req.Op {
	case guest.NodeCreate:
		rep, err = n.create(req.ID, *req.Container)
	case guest.NodeRemove:
		rep, err = n.remove(req.ID)
	case guest.NodeDisk:
		// No lock: the wait must not hold up the containers' operations.
		rep.Device, err = waitImageDevice(sysBlock, guest.DiskBySerial+req.ID, time.Duration(req.WaitMillis)*time.Millisecond)
	default:
		c, ok := n.get(req.ID)
		if !ok {
			return guest.NodeReply{Error: fmt.Sprintf("no container %q in this node VM", req.ID)}
		}
		switch req.Op {
		case guest.NodeStart:
			if err = n.start(c); err == nil {
				n.waitCreated(c)
				err = n.limitCPU(c)
			}
		case guest.NodeWait:
			<-c.done
		case guest.NodeStop:
			err = n.stop(c, req.Signal, time.Duration(req.GraceSeconds)*time.Second)
		case guest.NodeLogs:
			rep.Log, rep.NextOffset, err = readLog(filepath.Join(c.dir, "log"), req.Offset)
		case guest.NodeStats:
			rep.Stats, err = n.stats(c)
		case guest.NodePause, guest.NodeResume:
			err = n.pause(c, req.Op == guest.NodeResume)
		}
		if err == nil {
			rep.State, rep.ExitCode = n.status(c)
			rep.OOMKilled = n.oomKilled(c)
		}
	}
	if err != nil {
		return guest.NodeReply{Error: err.Error()}
	}
	rep.Millis = time.Since(start).Milliseconds()
	return rep
}

func (n *node) get(id string) (*container, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.containers[id]
	return c, ok
}

func (n *node) status(c *container) (string, *int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.state == guest.StateExited {
		code := c.code
		return c.state, &code
	}
	return c.state, nil
}

func (n *node) oomKilled(c *container) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return c.oom
}

// cgroupRoot is where the guest's cgroup v2 tree is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// containerCgroup is the cgroup of container id, as the OCI spec names it;
// the runtime makes and removes its child "ctr", which holds the processes
// and the limits, so that this one keeps the memory events after the end.
// The guest makes it before the runtime starts (makeCgroup): runsc removes
// the cgroups it made itself when the sandbox ends, this one with them.
func containerCgroup(id string) string { return "/strata/" + id }

// makeCgroup makes container id's cgroup (containerCgroup), and its
// parents, unless they are there.
func makeCgroup(root, id string) error {
	dir := filepath.Join(root, containerCgroup(id))
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: a cgroup directory
		return fmt.Errorf("container %s: make its cgroup %s: %w", id, dir, err)
	}
	return nil
}

// cgroupEmptyWait bounds how long remove waits for a container's cgroup to
// empty: the processes of a container that was just killed take a moment
// to be gone (seconds under emulation on a busy host), and until then the
// kernel refuses to remove the cgroup (EBUSY).
const cgroupEmptyWait = 30 * time.Second

// removeCgroup removes the cgroup directory dir and the cgroups under it,
// waiting up to wait while the kernel reports one busy. One that is gone
// already is no error.
func removeCgroup(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := removeCgroupTree(dir)
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroupTree removes the cgroup dir after its children, deepest
// first (a cgroup's directory holds only the kernel's files besides them).
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// oomKills is the number of processes the kernel's OOM killer killed in
// container id's cgroup (memory.events counts those of child cgroups too,
// removed or not); 0 when it has no such cgroup.
func oomKills(id string) int {
	data, err := os.ReadFile(filepath.Join(cgroupRoot, containerCgroup(id), "memory.events"))
	if err != nil {
		return 0
	}
	return parseOOMKills(string(data))
}

// parseOOMKills reads the oom_kill count of a memory.events file.
func parseOOMKills(events string) int {
	for line := range strings.Lines(events) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// create mounts the image (once per device), makes the container's
// overlayfs and writes its bundle.
func (n *node) create(id string, spec guest.ContainerSpec) (guest.NodeReply, error) {
	// The wait for the container's NIC holds up no other operation.
	var nic netlink.Link
	if spec.Net != nil {
		wait := time.Duration(spec.Net.WaitMillis) * time.Millisecond
		if wait == 0 {
			wait = defaultNICWait
		}
		var err error
		if nic, err = waitNIC(spec.Net.MAC, wait); err != nil {
			return guest.NodeReply{}, fmt.Errorf("container %s: %w", id, err)
		}
	}
	if err := n.mountShares(spec.Mounts); err != nil {
		return guest.NodeReply{}, fmt.Errorf("container %s: %w", id, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.containers[id]; ok {
		return guest.NodeReply{}, fmt.Errorf("container %q exists; remove it first or pick another id", id)
	}
	image, err := n.mountImage(spec)
	if err != nil {
		return guest.NodeReply{}, err
	}
	c := &container{id: id, spec: spec, dir: filepath.Join(nodeContainers, id), image: image, state: guest.StateCreated, done: make(chan struct{})}
	if err := c.prepare(nic); err != nil {
		_ = os.RemoveAll(c.dir)
		n.releaseImage(spec.Image)
		return guest.NodeReply{}, err
	}
	n.containers[id] = c
	return guest.NodeReply{State: c.state}, nil
}

// mountImage mounts the image device read-only, or counts one more user of
// its mount. n.mu is held.
func (n *node) mountImage(spec guest.ContainerSpec) (string, error) {
	dir := filepath.Join(nodeImages, imageDirName(spec.Image))
	if n.images[spec.Image] > 0 {
		n.images[spec.Image]++
		return dir, nil
	}
	fsType := spec.ImageFSType
	var source string
	var err error
	if tag, ok := strings.CutPrefix(spec.Image, guest.VirtiofsPrefix); ok {
		source, fsType = tag, "virtiofs"
	} else if source, err = waitImageDevice(sysBlock, spec.Image, RootWait); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: a mount point
		return "", err
	}
	if fsType == "" {
		fsType = "ext4"
	}
	if err := unix.Mount(source, dir, fsType, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return "", fmt.Errorf("mount image %s (%s) read-only on %s: %w", spec.Image, fsType, dir, err)
	}
	n.images[spec.Image] = 1
	return dir, nil
}

// defaultShareWait bounds the wait for a virtiofs tag when the host names
// no time.
const defaultShareWait = 30 * time.Second

// mountShares mounts each virtiofs tag of mounts under nodeShares unless it
// is mounted already, waiting for a device the host has just plugged in,
// and checks that every mount's source is in its share. A tag stays
// mounted while the VM runs: the host's share holds the mounts of every
// container of the VM, each below a directory of its own.
func (n *node) mountShares(mounts []guest.ContainerMount) error {
	n.sharesMu.Lock()
	defer n.sharesMu.Unlock()
	for i, m := range mounts {
		dir := filepath.Join(nodeShares, m.Tag)
		if !n.shares[m.Tag] {
			if err := mountTag(m.Tag, dir, time.Duration(m.WaitMillis)*time.Millisecond); err != nil {
				return fmt.Errorf("mounts[%d]: %w", i, err)
			}
			n.shares[m.Tag] = true
		}
		if _, err := os.Lstat(filepath.Join(dir, m.Source)); err != nil {
			return fmt.Errorf("mounts[%d]: %s in the share %s: %w", i, m.Source, m.Tag, err)
		}
	}
	return nil
}

// mountTag mounts virtiofs tag on dir, retrying up to wait (0:
// defaultShareWait) while the guest's kernel does not know the tag yet
// (EINVAL: its device is still being probed).
func mountTag(tag, dir string, wait time.Duration) error {
	if wait == 0 {
		wait = defaultShareWait
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: a mount point
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Mount(tag, dir, "virtiofs", unix.MS_NODEV|unix.MS_NOSUID, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) || time.Now().After(deadline) {
			return fmt.Errorf("mount virtiofs tag %s on %s (waited up to %s; is the host's vhost-user-fs device plugged in?): %w", tag, dir, wait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sysBlock lists the guest's block devices.
const sysBlock = "/sys/block"

// waitImageDevice waits up to timeout for the image's block device and
// returns its path: image itself, or for DiskBySerial the /dev node of the
// virtio disk whose serial matches (found in sys, the /sys/block tree).
func waitImageDevice(sys, image string, timeout time.Duration) (string, error) {
	serial, bySerial := strings.CutPrefix(image, guest.DiskBySerial)
	deadline := time.Now().Add(timeout)
	for {
		dev := image
		if bySerial {
			dev = ""
			if name, ok := diskBySerial(sys, serial); ok {
				dev = "/dev/" + name
			}
		}
		if dev != "" {
			if _, err := os.Stat(dev); err == nil {
				return dev, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("image device %s did not appear within %s (is the image disk attached?); the guest has %s", image, timeout, virtioDisks(sys))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// virtioDisks lists the virtio disks in sys with their serials, for
// errors: "disks vda (serial img-0a1b), vdb (no serial)" or "no virtio disk".
func virtioDisks(sys string) string {
	names, _ := filepath.Glob(filepath.Join(sys, "vd*"))
	if len(names) == 0 {
		return "no virtio disk"
	}
	list := make([]string, 0, len(names))
	for _, n := range names {
		serial := "no serial"
		if b, err := os.ReadFile(filepath.Join(n, "serial")); err == nil && strings.TrimSpace(string(b)) != "" {
			serial = "serial " + strings.TrimSpace(string(b))
		}
		list = append(list, filepath.Base(n)+" ("+serial+")")
	}
	return "disks " + strings.Join(list, ", ")
}

// diskBySerial returns the name of the virtio disk in sys whose serial is
// serial.
func diskBySerial(sys, serial string) (string, bool) {
	files, _ := filepath.Glob(filepath.Join(sys, "vd*", "serial"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.TrimSpace(string(b)) == serial {
			return filepath.Base(filepath.Dir(f)), true
		}
	}
	return "", false
}

// releaseImage drops one user of the image's mount, unmounting it after
// the last. n.mu is held.
func (n *node) releaseImage(dev string) {
	n.images[dev]--
	if n.images[dev] > 0 {
		return
	}
	delete(n.images, dev)
	dir := filepath.Join(nodeImages, imageDirName(dev))
	_ = unix.Unmount(dir, unix.MNT_DETACH)
	_ = os.Remove(dir)
}

// imageDirName is the name of image's mount under nodeImages.
func imageDirName(image string) string {
	return strings.NewReplacer("/dev/", "", "/", "_", ":", "_").Replace(image)
}

// prepare makes the overlayfs and config.json of the bundle and, for a
// container with a network, its network namespace with nic in it and its
// resolv.conf. On failure it undoes what it made but the bundle's
// directory.
func (c *container) prepare(nic netlink.Link) (err error) {
	rootfs := filepath.Join(c.dir, "rootfs")
	for _, d := range []string{rootfs, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil { //nolint:gosec // G301: the container's root directory
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", c.image, c.dir, c.dir)
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("container %s: overlayfs over image %s: %w", c.id, c.spec.Image, err)
	}
	defer func() {
		if err != nil {
			_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		}
	}()
	if c.spec.Net != nil {
		if err := os.WriteFile(filepath.Join(c.dir, "resolv.conf"), resolvConf(&c.spec.Net.NetConfig), 0o644); err != nil { //nolint:gosec // G306: read by the container's user
			return err
		}
		if err := setupNetwork(c.id, nic, c.spec.Net); err != nil {
			return fmt.Errorf("container %s: %w", c.id, err)
		}
		defer func() {
			if err != nil {
				_ = removeNetNS(netnsPath(c.id))
			}
		}()
	}
	spec, err := ociSpec(c.id, c.spec, rootfs)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.dir, "config.json"), b, 0o600)
}

// start runs the runtime's run in the background, the container's output
// going to its log file.
func (n *node) start(c *container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.state != guest.StateCreated {
		return fmt.Errorf("container %s is %s; only a created container starts", c.id, c.state)
	}
	logFile, err := os.OpenFile(filepath.Join(c.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	devNull, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	defer devNull.Close()
	if err := makeCgroup(cgroupRoot, c.id); err != nil {
		return err
	}
	args := append(c.runtimeArgs(), "run", "--bundle", c.dir, c.runtimeID())
	p, err := n.reaper.start("/", command{args: args, env: []string{"PATH=" + DefaultPath}, files: []*os.File{devNull, logFile, logFile}})
	if err != nil {
		return fmt.Errorf("container %s: start %s: %w", c.id, c.runtime(), err)
	}
	c.state = guest.StateRunning
	go func() {
		ws := <-p.done
		oom := oomKills(c.id) > 0
		n.mu.Lock()
		c.code, c.oom = exitCode(ws), oom
		c.state = guest.StateExited
		n.mu.Unlock()
		close(c.done)
	}()
	return nil
}

// waitCreated returns once c's runtime knows the container (its state
// command answers) or c has ended, so that a start's reply means the
// container runs: an exec or a stop right after it finds the container.
// Under emulation (TCG) on a busy host the runtime's create takes seconds;
// after runtimeCreateWait it gives up and the caller sees the state as it is.
func (n *node) waitCreated(c *container) {
	n.waitState(c, func(created, _ bool) bool { return created })
}

// cpuPeriod is the CFS period of a container's CPU limit, in microseconds.
const cpuPeriod = 100000

// cpuMax is cgroup v2's cpu.max for a limit of milliCPU: the quota and the
// period, in microseconds.
func cpuMax(milliCPU int64) string {
	return strconv.FormatInt(milliCPU*cpuPeriod/1000, 10) + " " + strconv.Itoa(cpuPeriod)
}

// limitCPU sets the CPU limit of a container that has one, once its
// process runs: until then the runtime's own setup runs in the container's
// cgroup (crun's or runc's child sets the container up, then executes the
// container's process; runsc starts the sandbox's kernel and its gofer),
// and under emulation a quota of 25m made runc's take 30 s. A container
// that has ended needs no limit.
func (n *node) limitCPU(c *container) error {
	if c.spec.MilliCPU == 0 {
		return nil
	}
	n.waitState(c, func(_, running bool) bool { return running })
	err := os.WriteFile(filepath.Join(cgroupRoot, containerCgroup(c.id), "ctr", "cpu.max"), []byte(cpuMax(c.spec.MilliCPU)), 0)
	if err == nil {
		return nil
	}
	// A container that ended at once has no cgroup left: the runtime
	// removes it as the container ends, before its own run returns (runsc
	// tears a sandbox down first), so its end may be a moment away.
	if errors.Is(err, fs.ErrNotExist) {
		select {
		case <-c.done:
		case <-time.After(endingWait):
		}
	}
	if state, _ := n.status(c); state == guest.StateExited {
		return nil
	}
	return fmt.Errorf("container %s: set its CPU limit (%dm): %w", c.id, c.spec.MilliCPU, err)
}

// endingWait bounds how long limitCPU waits for the end of a container
// whose cgroup is already gone: runsc's teardown of a sandbox takes
// seconds under emulation.
const endingWait = 15 * time.Second

// waitState returns once done says yes to c's state (whether the runtime
// has created the container, whether its process runs: the runtime's init
// has executed it), c has ended, or runtimeCreateWait has passed.
//
// A crun or runc container's state is read from the files the runtime
// keeps in its root (fileState), as often as every 10 ms: asking the
// runtime (`crun state`) starts a process each time, which under emulation
// takes the guest's CPU from the runtime that is starting the container
// (half a second and more for runc's Go). runsc's state is asked of runsc.
func (n *node) waitState(c *container, done func(created, running bool) bool) {
	deadline := time.Now().Add(runtimeCreateWait)
	every := 10 * time.Millisecond
	for time.Now().Before(deadline) {
		var created, running bool
		if dir, file, ok := c.stateFiles(); ok {
			created, running = fileState(dir, file)
		} else {
			out, code, err := n.tool(append(c.runtimeArgs(), "state", c.runtimeID()))
			if err != nil {
				return
			}
			var st struct {
				Status string `json:"status"`
			}
			created = code == 0
			running = created && json.Unmarshal([]byte(out), &st) == nil && st.Status != "created"
			every = 50 * time.Millisecond
		}
		if done(created, running) {
			return
		}
		select {
		case <-c.done:
			return
		case <-time.After(every):
		}
	}
}

// runtimeStateLeft reports whether c's runtime may still hold state of it:
// for crun and runc, whether its directory under the runtime's root is
// there (a run that ended has removed it, and an emulated `crun delete`
// of nothing costs a tenth of a second and more); for runsc, always.
func (c *container) runtimeStateLeft() bool {
	dir, _, ok := c.stateFiles()
	return !ok || stateDirLeft(dir)
}

// stateDirLeft reports whether a runtime's directory of a container is
// there (or cannot be told not to be).
func stateDirLeft(dir string) bool {
	_, err := os.Lstat(dir)
	return !errors.Is(err, fs.ErrNotExist)
}

// fileState reads a container's state from its runtime's directory dir
// (container.stateFiles): the runtime writes the file created once it has
// created the container, and removes its exec FIFO once the container's
// process has been executed (a run makes none).
func fileState(dir, created string) (bool, bool) {
	if _, err := os.Stat(filepath.Join(dir, created)); err != nil {
		return false, false
	}
	_, err := os.Stat(filepath.Join(dir, "exec.fifo"))
	return true, errors.Is(err, fs.ErrNotExist)
}

// stop sends sig (SIGTERM for 0) and SIGKILL after grace, and waits for
// the end. A paused container runs again, so that it acts on the signal.
func (n *node) stop(c *container, sig int, grace time.Duration) error {
	if state, _ := n.status(c); state != guest.StateRunning {
		return nil
	}
	if sig == 0 {
		sig = int(unix.SIGTERM)
	}
	if grace <= 0 {
		grace = defaultStopGrace
	}
	// runsc signals no paused sandbox: it runs again first. crun's (and
	// runc's) frozen processes get the signal, then run and act on it.
	if c.runtime() == guest.RuntimeRunsc {
		if err := n.resumeForStop(c); err != nil {
			n.log.printf("%v", err)
		}
	}
	if err := n.kill(c, sig); err != nil {
		return err
	}
	if err := n.resumeForStop(c); err != nil {
		n.log.printf("%v", err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
	}
	if err := n.kill(c, int(unix.SIGKILL)); err != nil {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("container %s did not end 10 s after SIGKILL", c.id)
	}
}

// runtimeCreateWait bounds how long kill waits for a runtime that is still
// creating the container it was started for: under emulation (TCG) on a
// busy host, a runtime's create takes seconds (runc's more than crun's).
const runtimeCreateWait = 2 * time.Minute

// kill sends sig to the container's process through its runtime. A
// container that has just ended is not an error, and one that its runtime
// is still creating (start returns before it exists) gets sig once it
// exists: for crun and runc, once their state file is there (fileState),
// for runsc, while it answers that the container does not exist.
func (n *node) kill(c *container, sig int) error {
	deadline := time.Now().Add(runtimeCreateWait)
	for {
		var out string
		var code int
		creating := false
		if dir, file, ok := c.stateFiles(); ok {
			created, _ := fileState(dir, file)
			creating = !created
		}
		if !creating {
			var err error
			out, code, err = n.tool(append(c.runtimeArgs(), "kill", c.runtimeID(), strconv.Itoa(sig)))
			if err != nil || code == 0 {
				return err
			}
			creating = c.runtime() == guest.RuntimeRunsc && strings.Contains(out, "does not exist")
		}
		if creating && time.Now().After(deadline) {
			return fmt.Errorf("container %s: %s has not created it within %s; cannot send it signal %d", c.id, c.runtime(), runtimeCreateWait, sig)
		}
		wait := time.Second
		if creating {
			wait = 100 * time.Millisecond
		}
		select {
		case <-c.done:
			return nil
		case <-time.After(wait):
		}
		if !creating {
			return fmt.Errorf("container %s: %s kill %d: exit code %d: %s", c.id, c.runtime(), sig, code, strings.TrimSpace(out))
		}
	}
}

// remove kills what still runs, deletes the runtime's state and frees the
// container's files.
func (n *node) remove(id string) (guest.NodeReply, error) {
	c, ok := n.get(id)
	if !ok {
		return guest.NodeReply{}, fmt.Errorf("no container %q in this node VM", id)
	}
	if state, _ := n.status(c); state == guest.StateRunning {
		if err := n.stop(c, int(unix.SIGKILL), time.Second); err != nil {
			return guest.NodeReply{}, err
		}
	}
	// run deletes the container when it ends; this is for one that never
	// ran, or whose runtime ended before it could.
	if c.runtimeStateLeft() {
		_, _, _ = n.tool(append(c.runtimeArgs(), "delete", "--force", c.runtimeID()))
	}
	rootfs := filepath.Join(c.dir, "rootfs")
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return guest.NodeReply{}, fmt.Errorf("container %s: unmount %s: %w", id, rootfs, err)
	}
	if c.spec.Net != nil {
		if err := removeNetNS(netnsPath(id)); err != nil {
			return guest.NodeReply{}, fmt.Errorf("container %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return guest.NodeReply{}, err
	}
	if err := removeCgroup(filepath.Join(cgroupRoot, containerCgroup(id)), cgroupEmptyWait); err != nil {
		return guest.NodeReply{}, fmt.Errorf("container %s: remove its cgroup: %w", id, err)
	}
	n.mu.Lock()
	delete(n.containers, id)
	n.releaseImage(c.spec.Image)
	n.mu.Unlock()
	return guest.NodeReply{}, nil
}

// stopAll stops every running container, for the VM's power-off.
func (n *node) stopAll(grace time.Duration) {
	n.mu.Lock()
	var running []*container
	for _, c := range n.containers {
		if c.state == guest.StateRunning {
			running = append(running, c)
		}
	}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range running {
		wg.Go(func() {
			if err := n.stop(c, 0, grace); err != nil {
				n.log.printf("%v", err)
			}
		})
	}
	wg.Wait()
}

// tool runs a runtime command to its end and returns its output.
func (n *node) tool(args []string) (string, int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", 0, err
	}
	devNull, err := os.Open("/dev/null")
	if err != nil {
		closeAll(r, w)
		return "", 0, err
	}
	p, err := n.reaper.start("/", command{args: args, env: []string{"PATH=" + DefaultPath}, files: []*os.File{devNull, w, w}})
	closeAll(devNull, w)
	if err != nil {
		_ = r.Close()
		return "", 0, err
	}
	out, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	_ = r.Close()
	return string(out), exitCode(<-p.done), nil
}

// execArgs is the runtime command that runs args inside container id.
func (n *node) execArgs(id string, args, env []string, cwd string) ([]string, error) {
	c, ok := n.get(id)
	if !ok {
		return nil, fmt.Errorf("no container %q in this node VM", id)
	}
	if state, _ := n.status(c); state != guest.StateRunning {
		return nil, fmt.Errorf("container %s is %s; exec needs a running container", id, state)
	}
	out := append(c.runtimeArgs(), "exec")
	if cwd != "" {
		out = append(out, "--cwd", cwd)
	}
	for _, kv := range env {
		out = append(out, "--env", kv)
	}
	return append(append(out, c.runtimeID()), args...), nil
}

// readLog reads up to guest.MaxLogChunk bytes of file from offset.
func readLog(file string, offset int64) ([]byte, int64, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, offset, nil // not started yet
	}
	if err != nil {
		return nil, offset, err
	}
	defer f.Close()
	buf := make([]byte, guest.MaxLogChunk)
	k, err := f.ReadAt(buf, offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, offset, err
	}
	return buf[:k], offset + int64(k), nil
}

// ociSpec is the runtime bundle's config for spec, its root filesystem
// at rootfs (to resolve user names).
func ociSpec(id string, spec guest.ContainerSpec, rootfs string) (*specs.Spec, error) {
	cred, err := credential(rootfs, spec.User)
	if err != nil {
		return nil, err
	}
	user := specs.User{}
	if cred != nil {
		user.UID, user.GID = cred.Uid, cred.Gid
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = id
	}
	env := mergeEnv(nil, spec.Env)
	if envValue(env, "HOSTNAME") == "" {
		env = append(env, "HOSTNAME="+hostname)
	}
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	if len(spec.Capabilities) > 0 {
		caps = slices.Compact(slices.Sorted(slices.Values(spec.Capabilities)))
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: hostname,
		Process: &specs.Process{
			Args: spec.Args, Env: env, Cwd: cwd, User: user,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
				"/sys/firmware",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if n := spec.Net; n != nil {
		// The namespace with the container's NIC (setupNetwork) and the
		// name servers of its segment.
		s.Linux.Namespaces[4].Path = netnsPath(id)
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(filepath.Dir(rootfs), "resolv.conf"),
			Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"},
		})
	}
	for _, m := range spec.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: m.Path, Type: "bind", Source: filepath.Join(nodeShares, m.Tag, m.Source),
			Options: []string{"rbind", "rprivate", mode, "nosuid", "nodev"},
		})
	}
	// Both runtimes make the cgroup "ctr" under the container's own and put
	// what they run into it: runc the container's processes, runsc the
	// whole sandbox (gVisor's kernel and the memory it gives the
	// container's processes), so that the limits hold either way.
	s.Linux.CgroupsPath = containerCgroup(id) + "/ctr"
	s.Linux.Resources = resources(spec)
	return s, nil
}

// resources are spec's limits as cgroup settings; nil when it has none.
// The CPU limit is not among them: it is set once the container's process
// runs (limitCPU), so that a small one does not throttle the runtime's own
// setup of the container, which runs in its cgroup.
func resources(spec guest.ContainerSpec) *specs.LinuxResources {
	if spec.MemoryBytes == 0 && spec.Pids == 0 {
		return nil
	}
	r := &specs.LinuxResources{}
	if spec.MemoryBytes > 0 {
		m := spec.MemoryBytes
		r.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if spec.Pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: spec.Pids}
	}
	return r
}
