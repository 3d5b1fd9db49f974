package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"

	"strata.dev/strata/internal/runtime"
)

// Exec implements runtime.Execer: the process runs in the instance's
// namespaces with its main process's environment, user and working
// directory; its stdio goes through FIFOs under StateDir/fifo.
func (d *Driver) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("exec in instance %q: %w: empty command", id, runtime.ErrInvalid)
	}
	c, _, err := d.load(ctx, id)
	if err != nil {
		return 0, err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("exec in instance %q: %w", id, runtime.ErrNotRunning)
	}
	if err != nil {
		return 0, fmt.Errorf("exec in instance %q: load task: %w", id, err)
	}
	if ts, err := task.Status(ctx); err != nil || ts.Status != ctr.Running {
		return 0, fmt.Errorf("exec in instance %q: %w", id, runtime.ErrNotRunning)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in instance %q: read spec: %w", id, err)
	}
	proc := *spec.Process
	proc.Args = append([]string(nil), cmd...)
	proc.Terminal = false

	var in *eofReader
	var inR io.Reader
	if stdin != nil {
		in = &eofReader{r: stdin, eof: make(chan struct{})}
		inR = in
	}
	execID := "exec-" + randomHex(8)
	p, err := task.Exec(ctx, execID, &proc, cio.NewCreator(
		cio.WithStreams(inR, nonNil(stdout), nonNil(stderr)),
		cio.WithFIFODir(d.fifoDir()),
	))
	if errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
		return 0, fmt.Errorf("exec in instance %q: %w: %w", id, runtime.ErrNotRunning, err)
	}
	if err != nil {
		return 0, fmt.Errorf("exec in instance %q: %w", id, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, err := p.Delete(dctx, ctr.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			d.log.Warn("deleting an exec'd process", "instance", id, "exec", execID, "err", err)
		}
	}()
	exited, err := p.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in instance %q: wait: %w", id, err)
	}
	if err := p.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec in instance %q: start: %w", id, err)
	}
	if in != nil {
		go func() {
			select {
			case <-in.eof:
				if err := p.CloseIO(ctx, ctr.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) && ctx.Err() == nil {
					d.log.Warn("closing an exec'd process's stdin", "instance", id, "exec", execID, "err", err)
				}
			case <-ctx.Done():
			}
		}()
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		if err != nil {
			return 0, fmt.Errorf("exec in instance %q: %w", id, err)
		}
		p.IO().Wait() // all output copied
		return int(code), nil
	case <-ctx.Done():
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = p.Kill(kctx, syscall.SIGKILL)
		return 0, fmt.Errorf("exec in instance %q: %w", id, ctx.Err())
	}
}

// nonNil returns w, or a writer that discards for nil (so the exec'd
// process's output never blocks on a missing reader).
func nonNil(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// eofReader closes eof once the reader it wraps is exhausted (or fails).
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
		if !errors.Is(err, io.EOF) {
			err = io.EOF // the process sees end of input either way
		}
	}
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
