package guest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// DefaultHandshakeTimeout bounds DialAgent's handshake when ctx has no
// deadline. The guest answers once its init has set up the root disk, about
// three seconds after QEMU starts under TCG.
const DefaultHandshakeTimeout = 30 * time.Second

// AgentClient is the host's side of a guest's exec agent: one yamux session
// over the AgentPort's chardev socket. Its methods may be called
// concurrently; each exec is a stream of its own.
type AgentClient struct {
	conn    net.Conn
	session *yamux.Session
}

// StartError is Exec's error when the program could not start in the guest
// (not found, not executable, bad working directory). Code is the exit code
// Exec returns with it, as ExitReport's rule gives.
type StartError struct {
	Code   int
	Reason string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("guest exec: %s (exit code %d)", e.Reason, e.Code)
}

// DialAgent connects to the unix socket QEMU serves the AgentPort on and
// runs the handshake, waiting until ctx's deadline (DefaultHandshakeTimeout
// without one) for the guest to answer. A guest still booting answers once
// its agent runs. When DialAgent times out, call it again: the guest goes
// back to waiting for a HELLO after any session ends.
func DialAgent(ctx context.Context, socketPath string) (*AgentClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("guest agent: connect to %s: %w (is the VM running?)", socketPath, err)
	}
	c, err := NewAgentClient(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("guest agent at %s: %w", socketPath, err)
	}
	return c, nil
}

// NewAgentClient runs the handshake and a yamux session over conn, a byte
// stream to the guest's AgentPort, as DialAgent does. It takes over conn:
// on error it is closed, else Close closes it.
func NewAgentClient(ctx context.Context, conn net.Conn) (*AgentClient, error) {
	if err := handshake(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	session, err := yamux.Client(conn, cfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &AgentClient{conn: conn, session: session}, nil
}

// handshake sends HELLO and reads lines, one byte at a time so that nothing
// of the yamux session is consumed, until the guest answers with our nonce.
func handshake(ctx context.Context, conn net.Conn) error {
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	nonce := hex.EncodeToString(raw[:])
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultHandshakeTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, HelloLine(nonce)); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	// Keep the last len(want) bytes: whatever came before the OK on its
	// line is left over from an earlier session.
	want := []byte(OKLine(nonce))
	window := make([]byte, 0, len(want))
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("no answer to hello: %w", ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return errors.New("no answer to hello before the deadline; the guest init is not serving (still booting, or it failed: see the console log)")
			}
			return fmt.Errorf("no answer to hello: %w", err)
		}
		if len(window) == len(want) {
			window = append(window[:0], window[1:]...)
		}
		window = append(window, b[0])
		if b[0] == '\n' && bytes.Equal(window, want) {
			return conn.SetDeadline(time.Time{})
		}
	}
}

// Close ends the session and every exec still running on it (the guest
// kills their programs).
func (c *AgentClient) Close() error {
	err := c.session.Close()
	if cerr := c.conn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// Done is closed when the session has ended (Close, the socket closed, or
// the guest stopped answering); a new DialAgent is then needed.
func (c *AgentClient) Done() <-chan struct{} { return c.session.CloseChan() }

// Ping checks that the agent serves requests.
func (c *AgentClient) Ping(ctx context.Context) error {
	code, err := c.Run(ctx, ExecRequest{Ping: true}, nil, nil, nil)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("guest agent: ping answered with code %d", code)
	}
	return nil
}

// Exec runs args in the guest's root filesystem with the entrypoint's
// environment plus env, and returns the program's exit code (128+N for
// signal N). stdin may be nil (the program reads end of file at once);
// stdout and stderr may be nil to discard. When the program could not start
// the error is a *StartError and the code is 127, 126 or 1. Cancelling ctx
// ends the exec: the guest kills the program and Exec returns ctx's error.
//
// Exec copies stdin in a goroutine that it does not wait for; like
// os/exec, a stdin that never returns from Read keeps that goroutine.
func (c *AgentClient) Exec(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 || args[0] == "" {
		return -1, errors.New("guest exec: no program to run")
	}
	return c.Run(ctx, ExecRequest{Args: args, Env: env}, stdin, stdout, stderr)
}

// Run is Exec for a whole ExecRequest (to set a working directory).
func (c *AgentClient) Run(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	stream, err := c.session.OpenStream()
	if err != nil {
		return -1, fmt.Errorf("guest exec: open a stream: %w", err)
	}
	defer stream.Close()
	stop := context.AfterFunc(ctx, func() {
		_ = stream.SetDeadline(time.Now())
		_ = stream.Close()
	})
	defer stop()

	code, err := exchange(stream, req, stdin, stdout, stderr)
	if err != nil && ctx.Err() != nil {
		return -1, ctx.Err()
	}
	return code, err
}

// exchange writes the request and stdin and reads frames until FrameExit.
func exchange(stream io.ReadWriter, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := WriteRequest(stream, req); err != nil {
		return -1, fmt.Errorf("guest exec: send the request: %w", err)
	}
	if stdin == nil || req.Ping {
		if err := WriteFrame(stream, FrameStdinClose, nil); err != nil {
			return -1, fmt.Errorf("guest exec: %w", err)
		}
	} else {
		go copyStdin(stream, stdin)
	}
	var reason string
	br := bufio.NewReader(stream)
	for {
		f, err := ReadFrame(br)
		if err != nil {
			return -1, fmt.Errorf("guest exec: the stream ended before the exit code: %w", err)
		}
		switch f.Kind {
		case FrameStdout:
			err = writeOutput(stdout, f.Payload)
		case FrameStderr:
			err = writeOutput(stderr, f.Payload)
		case FrameError:
			reason = string(f.Payload)
		case FrameExit:
			code, err := ParseExit(f.Payload)
			if err != nil {
				return -1, fmt.Errorf("guest exec: %w", err)
			}
			if reason != "" {
				return code, &StartError{Code: code, Reason: reason}
			}
			return code, nil
		default:
			return -1, fmt.Errorf("guest exec: unexpected %s frame from the guest", f.Kind)
		}
		if err != nil {
			return -1, fmt.Errorf("guest exec: write the program's output: %w", err)
		}
	}
}

func writeOutput(w io.Writer, p []byte) error {
	if w == nil {
		return nil
	}
	_, err := w.Write(p)
	return err
}

// copyStdin sends stdin as frames, then FrameStdinClose. Errors end it
// quietly: the exec's own read loop reports a broken stream.
func copyStdin(w io.Writer, stdin io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if werr := WriteFrame(w, FrameStdin, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	_ = WriteFrame(w, FrameStdinClose, nil)
}
