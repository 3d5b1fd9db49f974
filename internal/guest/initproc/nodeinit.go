package initproc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// nodeMounts are what a container host needs beyond the early mounts.
var nodeMounts = []mount{
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid | nodev | noexec, "nsdelegate"},
	{"devpts", "/dev/pts", "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=0620"},
	{"tmpfs", "/dev/shm", "tmpfs", nosuid | nodev, "mode=1777"},
	{"tmpfs", "/tmp", "tmpfs", nosuid | nodev, "mode=1777"},
}

// leaveInitramfs makes the root a mount of its own: a recursive bind of
// the initramfs moved over it. The initramfs itself (rootfs) can never be
// pivoted away from, and the container runtimes pivot_root into each
// container's root; under a bind they can.
func leaveInitramfs() error {
	if err := unix.Mount("/", guest.NewRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("node: bind the initramfs on %s: %w", guest.NewRoot, err)
	}
	if err := unix.Chdir(guest.NewRoot); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("node: move the root's bind over /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("node: chroot: %w", err)
	}
	return unix.Chdir("/")
}

// runNode sets the guest up as a container host, serves the node
// operations on the agent port, and on a press of the power button stops
// every container and returns.
func (p *initProc) runNode(cfg guest.Config) guest.ExitReport {
	for _, m := range nodeMounts {
		if err := doMount("", m); err != nil {
			return setupError(err)
		}
	}
	// Hand the controllers down to the containers' cgroups.
	for _, c := range []string{"cpu", "memory", "pids", "io"} {
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+"+c), 0); err != nil {
			p.log.printf("cgroup controller %s: %v", c, err)
		}
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return setupError(fmt.Errorf("hostname: %w", err))
		}
	}
	if err := configureNetwork(cfg.Net); err != nil {
		return setupError(err)
	}
	dev, err := findPort(guest.AgentPort, PortWait)
	if err != nil {
		return setupError(fmt.Errorf("node: the agent port is needed: %w", err))
	}
	n := newNode(p.log, p.reaper)
	a := &agent{log: p.log, reaper: p.reaper, root: "/", base: command{env: []string{"PATH=" + DefaultPath}}, node: n}
	go a.serve(dev)
	p.log.printf("node agent ready")
	<-p.power
	p.log.printf("power button: stopping the containers (SIGTERM, SIGKILL after %s)", cfg.StopGrace())
	n.stopAll(cfg.StopGrace())
	return guest.ExitReport{ExitCode: 0}
}
