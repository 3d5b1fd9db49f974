package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

const mib = 1 << 20

// DefaultMemoryBytes is a VM's memory when the spec sets none.
const DefaultMemoryBytes = 256 * mib

// DefaultTCGCacheMiB sizes TCG's translated-code cache (QEMU's own default is
// 1 GiB). A booting image VM fills about 15 MiB of it; a full cache is
// flushed and refilled, which costs time, never correctness: with 8 MiB image
// VMs reached their first line later on a busy host (docs/benchmarks.md, "The
// VM tier"). Every MiB the guest's code fills stays resident in QEMU.
const DefaultTCGCacheMiB = 16

// minMemoryBytes is the least memory strata's guest kernel boots in.
const minMemoryBytes = 64 * mib

// Start implements runtime.Driver. It returns once QEMU's monitor answers
// and the guest runs; an image VM's entrypoint starts a moment later (its
// output appears in the log).
func (d *Driver) Start(ctx context.Context, spec runtime.InstanceSpec) (_ runtime.Status, err error) {
	if err := d.check(); err != nil {
		return runtime.Status{}, err
	}
	if err := runtime.ValidateSpec(spec); err != nil {
		return runtime.Status{}, err
	}
	if spec.Tier != v1alpha1.TierVM {
		return runtime.Status{}, fmt.Errorf("%w: the qemu driver runs the vm tier, not %s", runtime.ErrUnsupported, spec.Tier)
	}
	if d.choice.Refused != "" {
		return runtime.Status{}, fmt.Errorf("%w: instance %q: %s; the daemon runs with --vm-accel kvm (use auto or tcg to run VMs under software emulation)",
			runtime.ErrUnsupported, spec.ID, d.choice.Refused)
	}
	if len(spec.Mounts) > 0 {
		return runtime.Status{}, fmt.Errorf("%w: instance %q: volumes and host directories cannot be mounted into a VM yet; use the container or sandbox tier for workloads with volumes",
			runtime.ErrUnsupported, spec.ID)
	}
	if err := checkMemory(spec); err != nil {
		return runtime.Status{}, err
	}
	if spec.VMNet != nil && d.cfg.OpenTap == nil {
		return runtime.Status{}, fmt.Errorf("%w: instance %q has a network but the driver was given no way to open taps", runtime.ErrInvalid, spec.ID)
	}

	unlock := d.lockID(spec.ID)
	defer unlock()
	if err := os.Mkdir(d.dir(spec.ID), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return runtime.Status{}, fmt.Errorf("%w: instance %q", runtime.ErrAlreadyExists, spec.ID)
		}
		return runtime.Status{}, err
	}
	r := &record{
		ID: spec.ID, Workload: spec.Workload, Slot: spec.Slot, Image: spec.Image,
		Labels: spec.Labels, LogPath: spec.LogPath, Accel: d.accel, Tap: spec.VMNet != nil,
	}
	var proc *os.Process
	defer func() {
		if err == nil {
			return
		}
		if proc != nil {
			_ = proc.Kill()
			waitGone(proc.Pid, 5*time.Second)
		}
		if rmErr := os.RemoveAll(d.dir(spec.ID)); rmErr != nil {
			d.log.Warn("qemu driver: clean up a failed start", "id", spec.ID, "err", rmErr)
		}
	}()

	if spec.VM != nil {
		r.Source = sourceVM
		r.Image = ""
		r.Args, err = d.prepareVM(ctx, spec)
	} else {
		r.Source = sourceImage
		if r.Image, err = runtime.NormalizeImage(spec.Image); err != nil {
			return runtime.Status{}, err
		}
		r.Args, err = d.prepareImage(ctx, spec)
	}
	if err != nil {
		return runtime.Status{}, err
	}
	if err := d.writeRecord(r); err != nil {
		return runtime.Status{}, err
	}
	proc, err = d.launch(ctx, r)
	if err != nil {
		return runtime.Status{}, err
	}
	return r.status(), nil
}

// checkMemory refuses a VM larger than the host's memory, or too small to boot.
func checkMemory(spec runtime.InstanceSpec) error {
	want := spec.MemoryBytes
	if want == 0 {
		return nil
	}
	if want < minMemoryBytes {
		return fmt.Errorf("%w: instance %q: memory %d MiB is too small for a VM; give at least %d MiB",
			runtime.ErrInvalid, spec.ID, want/mib, minMemoryBytes/mib)
	}
	total, err := hostMemory()
	if err == nil && want > total {
		return fmt.Errorf("%w: instance %q: memory %d MiB is more than this host has (%d MiB); lower spec.resources.memory",
			runtime.ErrInvalid, spec.ID, want/mib, total/mib)
	}
	return nil
}

// hostMemory reads MemTotal from /proc/meminfo.
func hostMemory() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("/proc/meminfo: no MemTotal")
}

// machine is the part of QEMU's command line every instance shares: the
// accelerator, size, console, monitor and agent ports.
func (d *Driver) machine(spec runtime.InstanceSpec, machineType string) []string {
	mem := spec.MemoryBytes
	if mem == 0 {
		mem = DefaultMemoryBytes
	}
	cpus := int(math.Ceil(float64(spec.CPUMilli) / 1000))
	if cpus < 1 {
		cpus = 1
	}
	cpu, accel := "max", d.accel
	if d.accel == accelKVM {
		cpu = "host"
	} else {
		// TCG's translated-code cache defaults to 1 GiB; guests this size do not need it.
		accel += ",tb-size=" + strconv.Itoa(d.cfg.TCGCacheMiB)
	}
	console := "socket,id=con,path=" + d.path(spec.ID, conSocket) + ",server=on,wait=off"
	if spec.LogPath != "" {
		console += ",logfile=" + spec.LogPath + ",logappend=on"
	}
	return []string{
		"-name", "strata-" + spec.ID,
		"-machine", machineType, "-accel", accel, "-cpu", cpu,
		"-m", strconv.FormatInt((mem+mib-1)/mib, 10), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-chardev", console, "-serial", "chardev:con",
		"-qmp", "unix:" + d.path(spec.ID, qmpSocket) + ",server=on,wait=off",
	}
}

// netArgs connects the VM to its tap, passed as fd 3.
func netArgs(spec runtime.InstanceSpec, device string) []string {
	if spec.VMNet == nil {
		return nil
	}
	dev := device + ",netdev=net0"
	if len(spec.VMNet.MAC) > 0 {
		dev += ",mac=" + spec.VMNet.MAC.String()
	}
	return []string{"-netdev", "tap,id=net0,fd=3,vhost=off", "-device", dev}
}

// prepareImage makes an image VM's disk and initrd and returns its QEMU arguments.
func (d *Driver) prepareImage(ctx context.Context, spec runtime.InstanceSpec) ([]string, error) {
	if d.cfg.Images == nil {
		return nil, fmt.Errorf("%w: instance %q: this qemu driver has no image store to boot %s from", runtime.ErrUnsupported, spec.ID, spec.Image)
	}
	info, err := d.cfg.Images.ResolveImage(ctx, spec.Image)
	if err != nil {
		return nil, err
	}
	kernel, err := guest.LocateKernel(d.cfg.KernelDir)
	if err != nil {
		return nil, err
	}
	base, err := d.rootDisk(ctx, info, spec.DiskBytes)
	if err != nil {
		return nil, err
	}
	if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, d.path(spec.ID, overlayFile)); err != nil {
		return nil, err
	}
	cfg := guestConfig(spec, info)
	if err := d.writeInitrd(spec.ID, kernel, cfg); err != nil {
		return nil, err
	}
	args := d.machine(spec, "microvm")
	args = append(args,
		"-global", "virtio-mmio.force-legacy=false",
		"-kernel", kernel.Vmlinuz, "-initrd", d.path(spec.ID, initrdFile),
		"-append", guest.KernelCmdline(d.accel == accelKVM),
		"-blockdev", "driver=file,filename="+d.path(spec.ID, overlayFile)+",node-name=file0",
		"-blockdev", "driver=qcow2,file=file0,node-name=disk0",
		"-device", "virtio-blk-device,drive=disk0",
		// Free page reporting: the guest hands memory it freed back to QEMU, which
		// drops it (what the kernel's unpacking and boot touched, for one).
		"-device", "virtio-balloon-device,free-page-reporting=on",
	)
	args = append(args, d.agentPorts(spec.ID, "virtio-serial-device")...)
	return append(args, netArgs(spec, "virtio-net-device")...), nil
}

// agentPorts is the virtio-serial device (device: virtio-serial-device on
// a microvm's virtio-mmio, virtio-serial-pci on a node VM's q35) of an
// image VM or node VM with its two ports, the agent's and the exit
// report's.
//
// The device has room for exactly those ports (QEMU's default is 31). Over
// virtio-mmio QEMU offers every queue 1024 entries, and the guest's driver
// sets up a pair of queues for each possible port (4.6 MiB for the queues
// of 29 ports that never come) and fills the receiving queue of each port
// present with a 4 KiB buffer per entry: 12 MiB for the control queue and
// two ports, unless the kernel command line caps the queues and buffers
// (guest.KernelCmdline does, for strata's kernel). Over PCI the queues have
// 128 entries, and the 29 ports that never come would cost a node VM's
// guest a queue pair and an interrupt vector each.
func (d *Driver) agentPorts(id, device string) []string {
	ports := []struct{ id, backend, name string }{
		{"agent", "socket,path=" + d.path(id, agentSocket) + ",server=on,wait=off", guest.AgentPort},
		{"exit", "file,path=" + d.path(id, exitFile), guest.ExitPort},
	}
	// Port 0 is the console's, which an image VM does not use: the ports
	// are numbered from 1.
	args := []string{"-device", device + ",max_ports=" + strconv.Itoa(len(ports)+1)}
	for _, p := range ports {
		backend, rest, _ := strings.Cut(p.backend, ",")
		args = append(args,
			"-chardev", backend+",id="+p.id+","+rest,
			"-device", "virtserialport,chardev="+p.id+",name="+p.name)
	}
	return args
}

// guestConfig is what the guest init runs: the workload's command or the
// image's entrypoint and cmd, the image's environment with the workload's on top.
func guestConfig(spec runtime.InstanceSpec, info runtime.ImageInfo) guest.Config {
	cfg := guest.Config{
		Hostname: spec.ID, WorkingDir: info.WorkingDir, User: info.User,
		Root: guest.RootFS{Device: "/dev/vda", FSType: "ext4"},
	}
	if len(spec.Command) > 0 {
		cfg.Args = spec.Command
	} else {
		cfg.Args = append(append([]string{}, info.Entrypoint...), info.Cmd...)
	}
	env := map[string]int{}
	for _, kv := range info.Env {
		k, _, _ := strings.Cut(kv, "=")
		env[k] = len(cfg.Env)
		cfg.Env = append(cfg.Env, kv)
	}
	for _, k := range sortedKeys(spec.Env) {
		kv := k + "=" + spec.Env[k]
		if i, ok := env[k]; ok {
			cfg.Env[i] = kv
		} else {
			cfg.Env = append(cfg.Env, kv)
		}
	}
	if n := spec.VMNet; n != nil {
		cfg.Net = &guest.NetConfig{Address: n.Address, Gateway: n.Gateway, DNS: n.DNS, Search: n.Search}
	}
	return cfg
}

// writeInitrd writes the instance's initrd: the base initramfs with the
// guest's configuration appended as a second archive.
func (d *Driver) writeInitrd(id string, k guest.Kernel, cfg guest.Config) error {
	base, err := d.baseInitramfs(k)
	if err != nil {
		return err
	}
	extra, err := guest.ConfigArchive(cfg)
	if err != nil {
		return fmt.Errorf("%w: instance %q: %w", runtime.ErrInvalid, id, err)
	}
	data, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	return os.WriteFile(d.path(id, initrdFile), append(data, extra...), 0o600) //nolint:gosec // id passed runtime.ValidID: no separators
}

// prepareVM checks a VM source, makes the disk overlay and cloud-init seed,
// and returns the QEMU arguments.
func (d *Driver) prepareVM(ctx context.Context, spec runtime.InstanceSpec) ([]string, error) {
	vm := spec.VM
	args := d.machine(spec, "q35")
	if vm.ContainerDisk != "" {
		return nil, fmt.Errorf("%w: instance %q: vm.containerDisk is not supported by this driver yet; give vm.disk or vm.kernel",
			runtime.ErrUnsupported, spec.ID)
	}
	if vm.Kernel != "" {
		for _, f := range []struct{ field, path string }{{"vm.kernel", vm.Kernel}, {"vm.initrd", vm.Initrd}} {
			if f.path == "" {
				continue
			}
			if err := regularFile(f.path); err != nil {
				return nil, fmt.Errorf("%w: instance %q: %s: %w", runtime.ErrInvalid, spec.ID, f.field, err)
			}
		}
		cmdline := vm.Cmdline
		if !strings.Contains(cmdline, "console=") {
			cmdline = strings.TrimSpace(cmdline + " console=ttyS0")
		}
		args = append(args, "-kernel", vm.Kernel, "-append", cmdline)
		if vm.Initrd != "" {
			args = append(args, "-initrd", vm.Initrd)
		}
	}
	if vm.Firmware == v1alpha1.FirmwareUEFI {
		fw, err := d.uefi(spec.ID)
		if err != nil {
			return nil, err
		}
		args = append(args, fw...)
	}
	if vm.Disk != nil {
		base, format, err := d.bootDisk(ctx, spec)
		if err != nil {
			return nil, err
		}
		overlay, err := d.slotDisk(ctx, spec, base, format)
		if err != nil {
			return nil, err
		}
		args = append(args,
			"-blockdev", "driver=file,filename="+overlay+",node-name=file0",
			"-blockdev", "driver=qcow2,file=file0,node-name=disk0")
		args = append(args, diskDevice(vm.Disk.Bus)...)
	}
	if vm.CloudInit != nil {
		if err := d.writeSeed(ctx, spec); err != nil {
			return nil, err
		}
		args = append(args,
			"-blockdev", "driver=file,filename="+d.path(spec.ID, seedFile)+",node-name=seedfile,read-only=on",
			"-blockdev", "driver=raw,file=seedfile,node-name=seed,read-only=on",
			"-device", "virtio-blk-pci,drive=seed")
	}
	return append(args, netArgs(spec, nicDevice(vm))...), nil
}

// regularFile checks that path is absolute and names a readable regular file.
func regularFile(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkDisk checks that the user's disk exists and is the format they said.
func (d *Driver) checkDisk(ctx context.Context, id, path, format string) error {
	if err := regularFile(path); err != nil {
		return fmt.Errorf("%w: instance %q: vm.disk: %w", runtime.ErrInvalid, id, err)
	}
	// The user's path is an argument, never a shell word; the same goes for the calls below.
	out, err := exec.CommandContext(ctx, d.cfg.QEMUImg, "info", "--output=json", "-f", format, path).CombinedOutput() //nolint:gosec // see above
	if err != nil {
		return fmt.Errorf("%w: instance %q: vm.disk %s is not a usable %s image: %s", runtime.ErrInvalid, id, path, format, firstLine(out))
	}
	var info struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Format != format {
		return fmt.Errorf("%w: instance %q: vm.disk %s: qemu-img reads it as %q, want %s", runtime.ErrInvalid, id, path, info.Format, format)
	}
	if format == string(v1alpha1.DiskQCOW2) {
		if out, err := exec.CommandContext(ctx, d.cfg.QEMUImg, "check", "-q", "-f", format, path).CombinedOutput(); err != nil { //nolint:gosec // an argument, as above
			return fmt.Errorf("%w: instance %q: vm.disk %s is corrupt: %s", runtime.ErrInvalid, id, path, firstLine(out))
		}
	}
	return nil
}

func (d *Driver) qemuImg(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, d.cfg.QEMUImg, args...).CombinedOutput() //nolint:gosec // arguments, never shell words
	if err != nil {
		return fmt.Errorf("qemu-img %s: %s", args[0], firstLine(out))
	}
	return nil
}

func firstLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "no output"
	}
	return s
}

// launch starts QEMU for r in a session of its own and waits until its
// monitor answers.
func (d *Driver) launch(ctx context.Context, r *record) (*os.Process, error) {
	if err := kernelPresent(r); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(d.path(r.ID, qemuLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// A VM outlives the daemon: no CommandContext, which would kill it.
	cmd := exec.Command(d.cfg.QEMU, r.Args...) //nolint:noctx,gosec // see above; the arguments are strata's, never shell words
	cmd.Dir = d.dir(r.ID)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if r.Tap {
		tap, err := d.cfg.OpenTap(r.ID)
		if err != nil {
			return nil, fmt.Errorf("open the tap of %s: %w", r.ID, err)
		}
		defer tap.Close()
		cmd.ExtraFiles = []*os.File{tap}
	}
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	proc := cmd.Process
	start, _ := procStart(proc.Pid)
	done := make(chan struct{})
	d.mu.Lock()
	d.children[r.ID] = done
	d.mu.Unlock()
	go d.reap(r.ID, cmd, done, launched)

	r.PID, r.PIDStart, r.StartedAt = proc.Pid, start, time.Now()
	r.Finished, r.Stopping, r.Killed, r.ExitCode, r.Message, r.FinishedAt = false, false, false, 0, "", time.Time{}
	if err := d.writeRecord(r); err != nil {
		return proc, err
	}
	if err := d.waitMonitor(ctx, r, done); err != nil {
		return proc, err
	}
	return proc, nil
}

// waitMonitor waits until QEMU's monitor answers and reports the guest running.
func (d *Driver) waitMonitor(ctx context.Context, r *record, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.BootTimeout)
	defer cancel()
	for {
		select {
		case <-exited:
			return fmt.Errorf("QEMU exited at start: %s", tail(d.path(r.ID, qemuLog)))
		default:
		}
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := d.vmStatus(qctx, r.ID)
		qcancel()
		if err == nil && (st == "running" || st == "inmigrate") {
			return nil
		}
		if err == nil {
			return fmt.Errorf("QEMU started but the guest is %q: %s", st, tail(d.path(r.ID, qemuLog)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("QEMU's monitor did not answer within %v: %w (%s)", d.cfg.BootTimeout, err, tail(d.path(r.ID, qemuLog)))
		case <-exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reap waits for a QEMU process this driver value started (at started) and
// records how it ended.
func (d *Driver) reap(id string, cmd *exec.Cmd, done chan struct{}, started time.Time) {
	_ = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	d.mu.Lock()
	d.reaped[id] = ws
	if d.children[id] == done {
		delete(d.children, id)
	}
	d.mu.Unlock()
	close(done)
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	switch {
	case err != nil:
	case !r.Finished && r.PID == cmd.Process.Pid:
		d.finish(r)
	case r.Finished && r.FinishedAt.After(started):
		// Another Driver value over the same state directory (a re-adopting
		// one) saw the process gone first and recorded the end; this value's
		// subscribers must hear of it too.
		d.publish(runtime.Event{Type: runtime.EventExit, ID: r.ID, Time: r.FinishedAt, ExitCode: r.ExitCode})
	}
	d.mu.Lock()
	delete(d.reaped, id)
	d.mu.Unlock()
}

// tail returns the last lines of QEMU's own log, for error messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return "QEMU wrote nothing to " + path
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}

// readExitReport reads the last report the guest wrote to its exit port.
func readExitReport(path string) (guest.ExitReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return guest.ExitReport{}, err
	}
	defer f.Close()
	var last []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			last = append(last[:0], line...)
		}
	}
	if last == nil {
		return guest.ExitReport{}, errors.New("no exit report")
	}
	var rep guest.ExitReport
	if err := json.Unmarshal(last, &rep); err != nil {
		return guest.ExitReport{}, fmt.Errorf("exit report %q: %w", last, err)
	}
	return rep, nil
}

// waitGone waits until process pid has ended (or is a zombie).
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if _, ok := procStart(pid); !ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kernelPresent checks that the kernel QEMU's command line boots (-kernel) is
// still on the host. A VM restarts and restores with the command line it was
// started with, and its saved memory holds that very kernel, so a guest kernel
// replaced since (a new build of strata's own, a newer cloud kernel) must not
// be swapped in; this says so instead of QEMU's bare "could not open".
func kernelPresent(r *record) error {
	i := slices.Index(r.Args, "-kernel")
	if i < 0 || i+1 >= len(r.Args) {
		return nil
	}
	k := r.Args[i+1]
	if _, err := os.Stat(k); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: instance %q was started on guest kernel %s, which is no longer on this host (the guest kernel changed since); "+
			"its saved state and its disk belong to that kernel: put the file back to restore or restart it, or remove the instance and start it again on the current kernel",
			runtime.ErrUnsupported, r.ID, k)
	}
	return nil
}
