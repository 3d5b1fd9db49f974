package nodevm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// Start implements runtime.Driver: it puts the instance into a node VM of
// its class where it fits (booting one when none does), plugs the image's
// disk into that VM once, and creates and starts the container there.
func (d *Driver) Start(ctx context.Context, spec runtime.InstanceSpec) (_ runtime.Status, err error) {
	if err := d.check(); err != nil {
		return runtime.Status{}, err
	}
	if err := runtime.ValidateSpec(spec); err != nil {
		return runtime.Status{}, err
	}
	if !d.Capabilities().Serves(spec.Tier) {
		return runtime.Status{}, fmt.Errorf("%w: instance %q: the nodevm driver runs tiers %v, not %s", runtime.ErrUnsupported, spec.ID, d.Capabilities().Tiers, spec.Tier)
	}
	if err := d.unsupported(spec); err != nil {
		return runtime.Status{}, err
	}
	if err := checkMounts(spec); err != nil {
		return runtime.Status{}, err
	}
	ref, err := runtime.NormalizeImage(spec.Image)
	if err != nil {
		return runtime.Status{}, err
	}
	unlock := lock("instance/" + d.cfg.StateDir + "/" + spec.ID)
	defer unlock()
	took := newSteps()
	if _, err := os.Stat(d.recordPath(spec.ID)); err == nil {
		return runtime.Status{}, fmt.Errorf("%w: instance %q", runtime.ErrAlreadyExists, spec.ID)
	}
	if _, err := d.newShape(spec); err != nil {
		return runtime.Status{}, err
	}
	info, disk, err := d.cfg.QEMU.ImageDisk(ctx, ref)
	if err != nil {
		return runtime.Status{}, err
	}
	class := Class(spec.Labels)
	diskID, err := imageDiskID(info)
	if err != nil {
		return runtime.Status{}, err
	}
	vm, release, err := d.placeInstance(ctx, spec, class, diskID)
	if err != nil {
		return runtime.Status{}, err
	}
	defer release()
	took.mark("place")
	if err := d.attachImage(ctx, vm, info, disk, diskID); err != nil {
		return runtime.Status{}, err
	}
	took.mark("image")
	c := container(spec, info, diskID, d.cfg.ContainerRuntime)
	if spec.VMNet != nil {
		c.Net = containerNet(spec.VMNet, d.bootTimeout()/4)
	}
	if err := c.Validate(); err != nil {
		return runtime.Status{}, fmt.Errorf("%w: instance %q: %w", runtime.ErrInvalid, spec.ID, err)
	}

	r := &record{
		ID: spec.ID, Workload: spec.Workload, Slot: spec.Slot, Tier: spec.Tier, Image: ref,
		Labels: spec.Labels, LogPath: spec.LogPath, Class: class, VM: vm,
		CPUMilli: spec.CPUMilli, MemoryBytes: spec.MemoryBytes,
	}
	if spec.VMNet != nil {
		if r.NIC, err = d.attachNIC(ctx, vm, spec); err != nil {
			return runtime.Status{}, err
		}
		took.mark("nic")
		defer func() {
			if err != nil {
				c, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				if derr := d.detachNIC(c, vm, spec.ID, r.NIC); derr != nil {
					d.log.Warn("nodevm driver: clean up a failed start", "id", spec.ID, "vm", vm, "err", derr)
				}
			}
		}()
	}
	if len(spec.Mounts) > 0 {
		if c.Mounts, err = d.shareMounts(ctx, vm, spec); err != nil {
			return runtime.Status{}, err
		}
		took.mark("mounts")
		defer func() {
			if err != nil {
				if uerr := d.unshareInstance(vm, spec.ID); uerr != nil {
					d.log.Warn("nodevm driver: clean up a failed start's mounts", "id", spec.ID, "vm", vm, "err", uerr)
				}
			}
		}()
	}
	if spec.LogPath != "" {
		f, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return runtime.Status{}, fmt.Errorf("instance %q: log: %w", spec.ID, err)
		}
		fi, err := f.Stat()
		_ = f.Close()
		if err != nil {
			return runtime.Status{}, err
		}
		r.LogBase = fi.Size()
	}
	if _, err := d.node(ctx, vm, guest.NodeRequest{Op: guest.NodeCreate, ID: spec.ID, Container: &c}); err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q in node VM %s: %w", spec.ID, vm, err)
	}
	defer func() {
		if err != nil {
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, rmErr := d.node(c, vm, guest.NodeRequest{Op: guest.NodeRemove, ID: spec.ID}); rmErr != nil {
				d.log.Warn("nodevm driver: clean up a failed start", "id", spec.ID, "vm", vm, "err", rmErr)
			}
			_ = os.Remove(d.recordPath(spec.ID))
		}
	}()
	took.mark("create")
	if spec.RootfsLayer != "" {
		if err := d.applyLayer(ctx, vm, spec); err != nil {
			return runtime.Status{}, err
		}
		took.mark("layer")
	}
	r.StartedAt = time.Now()
	if err := d.writeRecord(r); err != nil {
		return runtime.Status{}, err
	}
	if _, err := d.node(ctx, vm, guest.NodeRequest{Op: guest.NodeStart, ID: spec.ID}); err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q in node VM %s: %w", spec.ID, vm, err)
	}
	vst, err := d.cfg.QEMU.Status(ctx, vm)
	if err != nil {
		return runtime.Status{}, err
	}
	took.mark("start")
	d.adopt(spec.ID)
	d.log.Debug("nodevm driver: started", "id", spec.ID, "vm", vm, "took", took)
	return r.status(runtime.StateRunning, vst.PID, "running in node VM "+vm), nil
}

// steps times the steps of a Start, for its debug log line.
type steps struct {
	last time.Time
	list []string
}

func newSteps() *steps { return &steps{last: time.Now()} }

// mark ends step name.
func (s *steps) mark(name string) {
	now := time.Now()
	s.list = append(s.list, fmt.Sprintf("%s %dms", name, now.Sub(s.last).Milliseconds()))
	s.last = now
}

// String lists the steps: "place 3ms, image 12ms, ...".
func (s *steps) String() string { return strings.Join(s.list, ", ") }

// unsupported refuses what the driver cannot give an instance yet, rather
// than run it without.
func (d *Driver) unsupported(spec runtime.InstanceSpec) error {
	var what string
	switch {
	case len(spec.Mounts) > 0 && d.noMounts != "":
		return fmt.Errorf("%w: instance %q: the nodevm driver cannot give a container mounts here: %s", runtime.ErrUnsupported, spec.ID, d.noMounts)
	case spec.NetNS != "":
		what = "a network namespace on the host (it takes VMNet: a tap it plugs into the node VM)"
	case spec.VMNet != nil && d.cfg.OpenTap == nil:
		what = "a network (this driver has no Config.OpenTap to open the instance's tap with)"
	case spec.VMNet != nil && len(spec.VMNet.MAC) != 6:
		return fmt.Errorf("%w: instance %q: vmNet.mac %q: the nodevm driver needs the 6-byte MAC the tap is bound to, to find the NIC in the node VM", runtime.ErrInvalid, spec.ID, spec.VMNet.MAC)
	case slices.ContainsFunc(spec.Capabilities, func(c string) bool { return v1alpha1.CapabilityName(c) == v1alpha1.AllCapabilities }):
		what = "every capability (ALL)"
	default:
		return nil
	}
	return fmt.Errorf("%w: instance %q: the nodevm driver does not give a container %s yet", runtime.ErrUnsupported, spec.ID, what)
}

// imageDiskID is the ID of the image's root disk in a node VM: its serial
// in the guest.
func imageDiskID(info runtime.ImageInfo) (string, error) {
	chain := strings.TrimPrefix(info.ChainID, "sha256:")
	if len(chain) < 16 {
		return "", fmt.Errorf("image %s: no usable chain ID %q", info.Ref, info.ChainID)
	}
	return "img-" + chain[:16], nil
}

// attachImage plugs the image's root disk (ID id) into node VM vm unless it
// holds it already and waits until the guest has it. A disk the guest does
// not see (a hot-plug it missed) is plugged in again, once; a disk it still
// does not see is unplugged, so that the next Start plugs it in anew.
func (d *Driver) attachImage(ctx context.Context, vm string, info runtime.ImageInfo, disk, id string) error {
	unlock := lock("vm/" + vm)
	defer unlock()
	devs, err := d.cfg.QEMU.NodeDevices(vm)
	if err != nil {
		return err
	}
	plug := func() error {
		if err := d.cfg.QEMU.AttachDisk(ctx, vm, qemu.Disk{ID: id, Path: disk}); err != nil {
			return fmt.Errorf("image %s: %w", info.Ref, err)
		}
		return nil
	}
	if !slices.ContainsFunc(devs, func(n qemu.NodeDevice) bool { return n.ID == id }) {
		if err := plug(); err != nil {
			return err
		}
	}
	// A guest sees a disk 0.1-0.3 s after its hot-plug on an idle host
	// under TCG; the first wait leaves room for a busy one.
	total := d.bootTimeout()
	first := total / 4
	missing := d.waitDisk(ctx, vm, id, first)
	if !diskMissing(missing) {
		if missing != nil {
			return missing
		}
		return nil
	}
	d.log.Warn("nodevm driver: the guest does not see an image disk; plugging it in again", "vm", vm, "disk", id, "err", missing)
	if err := d.cfg.QEMU.DetachDisk(ctx, vm, id); err != nil && !errors.Is(err, qemu.ErrNoDevice) {
		return fmt.Errorf("image %s: node VM %s does not see its disk %s (%w), and unplugging it failed: %w", info.Ref, vm, id, missing, err)
	}
	if err := plug(); err != nil {
		return err
	}
	if err := d.waitDisk(ctx, vm, id, total-first); err != nil {
		if !diskMissing(err) {
			return err
		}
		if derr := d.cfg.QEMU.DetachDisk(ctx, vm, id); derr != nil {
			d.log.Warn("nodevm driver: unplug an image disk the guest does not see", "vm", vm, "disk", id, "err", derr)
		}
		return fmt.Errorf("image %s: node VM %s did not see its disk %s, also when plugged in again: %w; see the node VM's console %s", info.Ref, vm, id, err, d.consolePath(vm))
	}
	return nil
}

// waitDisk waits up to wait until the guest of node VM vm has the disk with
// serial id.
func (d *Driver) waitDisk(ctx context.Context, vm, id string, wait time.Duration) error {
	_, err := d.node(ctx, vm, guest.NodeRequest{Op: guest.NodeDisk, ID: id, WaitMillis: wait.Milliseconds()})
	return err
}

// diskMissing reports whether err is the guest's answer that a disk did not
// appear.
func diskMissing(err error) bool {
	return err != nil && strings.Contains(err.Error(), "did not appear within")
}

// container is the guest's container for spec: the spec's command or the
// image's entrypoint and cmd, the image's environment with the spec's on
// top, the image's working directory and user, the spec's limits; run by
// containerRuntime (crun, or runc) in the container tier, runsc in the
// sandbox tier.
func container(spec runtime.InstanceSpec, info runtime.ImageInfo, diskID, containerRuntime string) guest.ContainerSpec {
	args := spec.Command
	if len(args) == 0 {
		args = append(slices.Clone(info.Entrypoint), info.Cmd...)
	}
	env := slices.DeleteFunc(slices.Clone(info.Env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, override := spec.Env[k]
		return override
	})
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+spec.Env[k])
	}
	rt := containerRuntime
	if spec.Tier == v1alpha1.TierSandbox {
		rt = guest.RuntimeRunsc
	}
	// The capabilities of a container on the host: the defaults (no NET_RAW, no
	// MKNOD) and those asked for.
	caps := make([]string, 0, len(v1alpha1.DefaultCapabilities)+len(spec.Capabilities))
	for _, c := range append(slices.Clone(v1alpha1.DefaultCapabilities), spec.Capabilities...) {
		caps = append(caps, v1alpha1.CapabilityName(c))
	}
	return guest.ContainerSpec{
		Image: guest.DiskBySerial + diskID, Args: args, Env: env,
		WorkingDir: info.WorkingDir, User: info.User, Runtime: rt,
		MemoryBytes: spec.MemoryBytes, MilliCPU: spec.CPUMilli, Capabilities: caps,
	}
}

// Status implements runtime.Driver.
func (d *Driver) Status(ctx context.Context, id string) (runtime.Status, error) {
	if err := d.check(); err != nil {
		return runtime.Status{}, err
	}
	r, err := d.readRecord(id)
	if err != nil {
		return runtime.Status{}, err
	}
	if r.Finished {
		return r.status(runtime.StateExited, 0, ""), nil
	}
	return d.live(ctx, r)
}

// live asks r's node VM how its container is, and records its end.
func (d *Driver) live(ctx context.Context, r *record) (runtime.Status, error) {
	vst, err := d.cfg.QEMU.Status(ctx, r.VM)
	if err == nil && vst.State != runtime.StateRunning {
		err = runtime.ErrNotRunning
	}
	if vmGone(err) {
		return d.finish(r.ID, exit{code: 137}, "node VM "+r.VM+" has ended, and the container with it")
	}
	if err != nil {
		return r.status(runtime.StateFailed, 0, fmt.Sprintf("node VM %s: %v", r.VM, err)), nil
	}
	rep, err := d.node(ctx, r.VM, guest.NodeRequest{Op: guest.NodeState, ID: r.ID})
	switch {
	case noContainer(err):
		return d.finish(r.ID, exit{code: 137}, "node VM "+r.VM+" has no such container any more (it booted again)")
	case err != nil:
		if ctx.Err() != nil {
			return runtime.Status{}, ctx.Err()
		}
		return r.status(runtime.StateFailed, 0, fmt.Sprintf("node VM %s: %v", r.VM, err)), nil
	case rep.State == guest.StateExited && rep.ExitCode != nil:
		return d.finish(r.ID, exitOf(rep), "")
	case rep.State == guest.StateRunning:
		return r.status(runtime.StateRunning, vst.PID, "running in node VM "+r.VM), nil
	default:
		return r.status(runtime.StateCreating, 0, "created in node VM "+r.VM), nil
	}
}

// exit is how a container ended.
type exit struct {
	code int
	oom  bool
}

// exitOf is the end of the container the guest's reply tells of; its
// ExitCode is set.
func exitOf(rep guest.NodeReply) exit { return exit{code: *rep.ExitCode, oom: rep.OOMKilled} }

// finish records that instance id has ended, unless its record says so
// already, and returns its status.
func (d *Driver) finish(id string, e exit, message string) (runtime.Status, error) {
	unlock := lock("record/" + d.cfg.StateDir + "/" + id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return runtime.Status{}, err
	}
	if !r.Finished {
		r.Finished, r.ExitCode, r.OOMKilled, r.FinishedAt, r.Message = true, e.code, e.oom, time.Now(), message
		if err := d.writeRecord(r); err != nil {
			return runtime.Status{}, err
		}
	}
	return r.status(runtime.StateExited, 0, ""), nil
}

// Stop implements runtime.Driver: the guest sends SIGTERM to the container
// and SIGKILL after grace (rounded up to whole seconds); a zero grace kills
// at once.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := d.check(); err != nil {
		return err
	}
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	if r.Finished {
		return nil
	}
	req := guest.NodeRequest{Op: guest.NodeStop, ID: id, GraceSeconds: int((grace + time.Second - 1) / time.Second)}
	if grace <= 0 {
		req.Signal = 9 // SIGKILL
	}
	rep, err := d.node(ctx, r.VM, req)
	switch {
	case vmGone(err) || noContainer(err):
		_, err := d.live(ctx, r)
		return err
	case err != nil:
		return fmt.Errorf("stop instance %q in node VM %s: %w", id, r.VM, err)
	case rep.ExitCode == nil:
		return fmt.Errorf("stop instance %q in node VM %s: the guest answered no exit code (state %s)", id, r.VM, rep.State)
	}
	_, err = d.finish(id, exitOf(rep), "")
	return err
}

// Remove implements runtime.Driver: it removes the container from its node
// VM (the VM stays, and so does the image's disk in it).
func (d *Driver) Remove(ctx context.Context, id string) error {
	if err := d.check(); err != nil {
		return err
	}
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	if !r.Finished {
		st, err := d.live(ctx, r)
		if err != nil {
			return err
		}
		if st.State != runtime.StateExited {
			return fmt.Errorf("%w: instance %q is %s", runtime.ErrRunning, id, st.State)
		}
	}
	if _, err := d.node(ctx, r.VM, guest.NodeRequest{Op: guest.NodeRemove, ID: id}); err != nil && !vmGone(err) && !noContainer(err) {
		return fmt.Errorf("remove instance %q from node VM %s: %w", id, r.VM, err)
	}
	if r.NIC != "" {
		if err := d.detachNIC(ctx, r.VM, id, r.NIC); err != nil {
			return err
		}
	}
	if err := d.unshareInstance(r.VM, id); err != nil {
		return fmt.Errorf("remove instance %q: its mounts: %w", id, err)
	}
	d.unwatch(id)
	if err := os.Remove(d.recordPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = os.Remove(d.lockPath(id))
	return nil
}

// List implements runtime.Driver.
func (d *Driver) List(ctx context.Context) ([]runtime.Status, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	ids, err := d.ids()
	if err != nil {
		return nil, err
	}
	return runtime.StatusOf(ctx, ids, d.Status)
}

// Exec implements runtime.Execer: the guest runs cmd in the container
// (crun exec, runsc exec).
func (d *Driver) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	r, err := d.readRecord(id)
	if err != nil {
		return 0, err
	}
	if len(cmd) == 0 {
		return 0, fmt.Errorf("%w: exec in %q: no command", runtime.ErrInvalid, id)
	}
	if r.Finished {
		return 0, fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	}
	a, err := d.cfg.QEMU.NodeAgent(ctx, r.VM)
	if vmGone(err) {
		return 0, fmt.Errorf("%w: instance %q: node VM %s has ended", runtime.ErrNotRunning, id, r.VM)
	}
	if err != nil {
		return 0, err
	}
	code, err := a.ExecIn(ctx, id, cmd, nil, stdin, stdout, stderr)
	if err != nil && ctx.Err() == nil {
		if st, serr := d.live(ctx, r); serr == nil && st.State != runtime.StateRunning {
			return 0, fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
		}
	}
	return code, err
}
