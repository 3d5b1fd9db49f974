package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// Main is strata-guest: it runs the init and powers the VM off, never
// returning. Anywhere but as PID 1 it refuses to run.
func Main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "strata-guest: this is the init of strata's image microVMs and node VMs; it runs only as PID 1 inside one")
		os.Exit(2)
	}
	in := &initProc{power: make(chan struct{}, 1)}
	in.powerOff(in.run())
}

// initProc is the state of the running init.
type initProc struct {
	log    *console
	out    *os.File // the console: the entrypoint's stdout and stderr
	reaper *reaper
	// exit is the ExitPort, opened early and held so that no program of
	// the image can open it and write a report of its own.
	exit  *os.File
	power chan struct{} // the power button was pressed
}

// run boots and runs the entrypoint, returning the report to write.
func (p *initProc) run() (rep guest.ExitReport) {
	defer func() {
		if r := recover(); r != nil {
			rep = setupError(fmt.Errorf("guest init panicked: %v", r))
		}
	}()
	ignoreSignals()
	p.reaper = newReaper()
	mountErr := mountEarly()
	p.log, p.out = openConsole()
	release := kernelRelease()
	p.log.printf("starting on kernel %s", release)
	if mountErr != nil {
		return setupError(mountErr)
	}
	cfg, err := readConfig()
	if err != nil {
		// Still load the modules: the exit port needs them.
		loadModules(filepath.Join(guest.ModulesRoot, release), guest.Modules)
		return setupError(err)
	}
	modules := guest.Modules
	var nodeErr error
	if cfg.Mode == guest.ModeNode {
		nodeErr = leaveInitramfs()
		modules = append(slices.Clone(modules), guest.NodeModules...)
	}
	for _, err := range loadModules(filepath.Join(guest.ModulesRoot, release), modules) {
		p.log.printf("%v", err)
	}
	if nodeErr != nil {
		return setupError(nodeErr)
	}
	if err := lowerReportingOrder(); err != nil {
		p.log.printf("free page reporting order: %v", err)
	}
	// Watch the power button from now on: a press while the root is being
	// set up stops the entrypoint as soon as it has started.
	go watchPowerButton(p.log, p.power)
	if err := p.openExitPort(PortWait); err != nil {
		p.log.printf("%v", err)
	}
	if cfg.Mode == guest.ModeNode {
		return p.runNode(cfg)
	}
	if err := mountRoot(cfg.Root); err != nil {
		return setupError(err)
	}
	if err := prepareRoot(guest.NewRoot, cfg); err != nil {
		return setupError(err)
	}
	if err := configureNetwork(cfg.Net); err != nil {
		return setupError(err)
	}
	entry := command{args: cfg.Args, env: entrypointEnv(guest.NewRoot, cfg), dir: cfg.WorkingDir, user: cfg.User}
	if dev, err := findPort(guest.AgentPort, PortWait); err != nil {
		p.log.printf("exec agent disabled: %v", err)
	} else {
		a := &agent{log: p.log, reaper: p.reaper, root: guest.NewRoot, base: entry}
		go a.serve(dev)
	}
	return p.runEntrypoint(entry, cfg.StopGrace())
}

// runEntrypoint starts the entrypoint and waits for it to end. A press of
// the power button sends it SIGTERM, and SIGKILL grace later.
func (p *initProc) runEntrypoint(c command, grace time.Duration) guest.ExitReport {
	if c.dir != "" {
		// Container runtimes create a missing working directory; so does this.
		if err := os.MkdirAll(filepath.Join(guest.NewRoot, c.dir), 0o755); err != nil { //nolint:gosec // G301: directories of a root filesystem are world-readable
			return setupError(fmt.Errorf("working directory: %w", err))
		}
	}
	devNull, err := os.Open("/dev/null")
	if err != nil {
		return setupError(err)
	}
	c.files = []*os.File{devNull, p.out, p.out}
	proc, err := p.reaper.start(guest.NewRoot, c)
	_ = devNull.Close()
	if err != nil {
		return startError(err)
	}
	var deadline <-chan time.Time
	stopping := false
	for {
		select {
		case ws := <-proc.done:
			return guest.ExitReport{ExitCode: exitCode(ws)}
		case <-p.power:
			if !stopping {
				stopping = true
				p.log.printf("power button: stopping the entrypoint (SIGTERM, SIGKILL after %s)", grace)
				_ = unix.Kill(proc.pid, unix.SIGTERM)
				deadline = time.After(grace)
			}
		case <-deadline:
			_ = unix.Kill(proc.pid, unix.SIGKILL)
		}
	}
}

// powerOff writes the report, ends every other process, syncs and powers
// off. It does not return.
func (p *initProc) powerOff(rep guest.ExitReport) {
	if p.log == nil {
		p.log = &console{w: os.Stderr}
	}
	if rep.Error != "" {
		p.log.printf("%s; exit code %d", rep.Error, rep.ExitCode)
	} else {
		p.log.printf("exit code %d", rep.ExitCode)
	}
	if err := p.writeReport(rep); err != nil {
		p.log.printf("exit report: %v", err)
	}
	_ = unix.Kill(-1, unix.SIGKILL)
	if p.reaper != nil {
		p.reaper.drain(time.Second)
	}
	unix.Sync()
	unmountRoot()
	unix.Sync()
	// QEMU runs with -no-reboot, so a restart ends it too, should power-off
	// fail.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	for {
		time.Sleep(time.Hour)
	}
}

func (p *initProc) openExitPort(wait time.Duration) error {
	dev, err := findPort(guest.ExitPort, wait)
	if err != nil {
		return err
	}
	p.exit, err = os.OpenFile(dev, os.O_WRONLY, 0)
	return err
}

// writeReport writes rep as one JSON line to the ExitPort.
func (p *initProc) writeReport(rep guest.ExitReport) error {
	if p.exit == nil {
		if err := p.openExitPort(time.Second); err != nil {
			return err
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if _, err := p.exit.Write(append(b, '\n')); err != nil {
		return err
	}
	// virtio ports have no fsync (EINVAL); the write has reached the host's
	// queue either way.
	if err := p.exit.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// readConfig reads and checks the Config.
func readConfig() (guest.Config, error) {
	var c guest.Config
	data, err := os.ReadFile(guest.ConfigPath)
	if err != nil {
		return c, fmt.Errorf("read the config: %w (the host appends it to the initramfs as a second archive)", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", guest.ConfigPath, err)
	}
	return c, c.Validate()
}

// ignoreSignals keeps the signals that would end a Go program from ending
// the init (the kernel delivers to PID 1 only signals it handles). They are
// caught rather than ignored so that programs started by the init get the
// default handlers back.
func ignoreSignals() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	go func() {
		for range sigs {
			// dropped
		}
	}()
}

// setupError is the report of a failure before the entrypoint could run.
func setupError(err error) guest.ExitReport {
	return guest.ExitReport{ExitCode: 1, Error: err.Error()}
}
