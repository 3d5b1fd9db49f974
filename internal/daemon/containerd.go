package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// privateContainerd is a containerd that strata started for itself, with its whole state
// under one directory.
type privateContainerd struct {
	Address string
	cmd     *exec.Cmd // nil when an earlier strata's containerd was found running and reused
	log     *slog.Logger
}

const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`

// startContainerd starts containerd with a private configuration under dir, or reuses the
// one an earlier strata process started there (it outlives a killed daemon, and so do the
// containers it runs).
func startContainerd(ctx context.Context, dir string, log *slog.Logger) (*privateContainerd, error) {
	addr := filepath.Join(dir, "containerd.sock")
	pc := &privateContainerd{Address: addr, log: log}
	if answers(addr) {
		log.Info("containerd already running", "address", addr)
		return pc, nil
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, fmt.Errorf("containerd is not installed: run `make host-setup` (or install Debian's containerd): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.toml")
	text := fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), addr, filepath.Join(dir, "opt"))
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: a signal to strata's terminal does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	pc.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !answers(addr) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("containerd exited at start (%w): see %s", err, filepath.Join(dir, "containerd.log"))
		case <-ctx.Done():
			_ = pc.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = pc.Stop()
			return nil, fmt.Errorf("containerd did not answer within 30s: see %s", filepath.Join(dir, "containerd.log"))
		}
	}
	log.Info("containerd started", "pid", cmd.Process.Pid, "address", addr)
	return pc, nil
}

// answers reports whether something accepts connections on the socket.
func answers(addr string) bool {
	c, err := net.DialTimeout("unix", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Stop ends a containerd this process started. Containers keep running in their shims.
func (p *privateContainerd) Stop() error {
	if p == nil || p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	done := make(chan struct{})
	go func() {
		for answers(p.Address) {
			time.Sleep(50 * time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
	return nil
}
