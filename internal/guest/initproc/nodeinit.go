package initproc

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

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
	if cfg.ToolsDisk != "" {
		if err := mountTools(sysBlock, cfg.ToolsDisk, PortWait); err != nil {
			return setupError(err)
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

// mountTools mounts the tools disk whose serial is serial (found in sys,
// the /sys/block tree, within wait) read-only at guest.ToolsMount, and
// links each of its files at its own path in the root, where the runtimes
// are looked for.
func mountTools(sys, serial string, wait time.Duration) error {
	dev, err := waitImageDevice(sys, guest.DiskBySerial+serial, wait)
	if err != nil {
		return fmt.Errorf("node: tools disk: %w", err)
	}
	if err := os.MkdirAll(guest.ToolsMount, 0o755); err != nil { //nolint:gosec // G301: a mount point
		return fmt.Errorf("node: tools disk: %w", err)
	}
	if err := unix.Mount(dev, guest.ToolsMount, "ext4", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("node: mount the tools disk %s read-only on %s: %w", dev, guest.ToolsMount, err)
	}
	return linkTree(guest.ToolsMount, "/")
}

// linkTree makes, for every file under src, a symbolic link to it at the
// same path under dst, and the directories on the way.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == "lost+found" && e.IsDir() {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil { //nolint:gosec // G301: directories of the guest's root
				return fmt.Errorf("node: tools disk: %w", err)
			}
			return nil
		}
		if err := os.Symlink(p, target); err != nil { //nolint:gosec // G122: the read-only tools disk the host built, in a guest of its own
			return fmt.Errorf("node: tools disk: link %s: %w", rel, err)
		}
		return nil
	})
}
