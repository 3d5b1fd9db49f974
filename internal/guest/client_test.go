package guest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// fakeGuest serves the agent protocol on a unix socket the way the guest
// init does, running requests with a function instead of programs. Before
// its OK it writes what an earlier session could have left behind.
type fakeGuest struct {
	sock   string
	run    func(req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) int
	closed chan string // the args[0] of each exec whose stream the host closed early
}

func startFakeGuest(t *testing.T, run func(ExecRequest, io.Reader, io.Writer, io.Writer) int) *fakeGuest {
	t.Helper()
	g := &fakeGuest{sock: filepath.Join(t.TempDir(), "agent.sock"), run: run, closed: make(chan string, 10)}
	l, err := net.Listen("unix", g.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go g.serve(conn)
		}
	}()
	return g
}

func (g *fakeGuest) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	nonce, ok := ParseHello(line)
	if !ok {
		return
	}
	// Leftovers: an answer to someone else, and binary bytes without a newline.
	_, _ = io.WriteString(conn, OKLine("stale")+"\x00\x01\x02garbage")
	_, _ = io.WriteString(conn, OKLine(nonce))
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Server(struct {
		io.Reader
		io.WriteCloser
	}{br, conn}, cfg)
	if err != nil {
		return
	}
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go g.exec(st)
	}
}

func (g *fakeGuest) exec(st net.Conn) {
	defer st.Close()
	br := bufio.NewReader(st)
	req, err := ReadRequest(br)
	if err != nil {
		return
	}
	if req.Ping {
		_ = WriteFrame(st, FrameExit, ExitPayload(0))
		return
	}
	if req.Args[0] == "missing" {
		_ = WriteFrame(st, FrameError, []byte(`"missing" not found in PATH`))
		_ = WriteFrame(st, FrameExit, ExitPayload(ExitNotFound))
		return
	}
	stdinR, stdinW := io.Pipe()
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		for {
			f, err := ReadFrame(br)
			if err != nil {
				_ = stdinW.CloseWithError(err)
				return
			}
			switch f.Kind {
			case FrameStdin:
				_, _ = stdinW.Write(f.Payload)
			case FrameStdinClose:
				_ = stdinW.Close()
			}
		}
	}()
	if req.Args[0] == "hang" {
		<-streamEnded
		g.closed <- req.Args[0]
		return
	}
	out := &frameWriter{w: st}
	code := g.run(req, stdinR, out.writer(FrameStdout), out.writer(FrameStderr))
	_ = WriteFrame(st, FrameExit, ExitPayload(code))
}

// frameWriter turns writes into frames of one kind.
type frameWriter struct{ w io.Writer }

type kindWriter struct {
	w    io.Writer
	kind FrameKind
}

func (fw *frameWriter) writer(kind FrameKind) io.Writer { return kindWriter{fw.w, kind} }

func (k kindWriter) Write(p []byte) (int, error) {
	if err := WriteFrame(k.w, k.kind, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// shell is the fake guest's programs: echo, cat, and fail.
func shell(req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) int {
	switch req.Args[0] {
	case "echo":
		_, _ = io.WriteString(stdout, strings.Join(req.Args[1:], " ")+"\n")
	case "cat":
		_, _ = io.Copy(stdout, stdin)
	case "env":
		_, _ = io.WriteString(stdout, strings.Join(req.Env, ","))
	case "fail":
		_, _ = io.WriteString(stderr, "failing\n")
		return 3
	}
	return 0
}

func TestAgentClient(t *testing.T) {
	g := startFakeGuest(t, shell)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := DialAgent(ctx, g.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name             string
		args, env        []string
		stdin            io.Reader
		stdout, stderr   string
		code             int
		startErrExpected bool
	}{
		{name: "stdout", args: []string{"echo", "hi"}, stdout: "hi\n"},
		{name: "stdin", args: []string{"cat"}, stdin: strings.NewReader("in and out"), stdout: "in and out"},
		{name: "big stdin", args: []string{"cat"}, stdin: strings.NewReader(strings.Repeat("x", 100000)), stdout: strings.Repeat("x", 100000)},
		{name: "no stdin", args: []string{"cat"}},
		{name: "env", args: []string{"env"}, env: []string{"A=1", "B=2"}, stdout: "A=1,B=2"},
		{name: "stderr and code", args: []string{"fail"}, stderr: "failing\n", code: 3},
		{name: "not found", args: []string{"missing"}, code: ExitNotFound, startErrExpected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := c.Exec(ctx, tt.args, tt.env, tt.stdin, &stdout, &stderr)
			var se *StartError
			if tt.startErrExpected != errors.As(err, &se) || (!tt.startErrExpected && err != nil) {
				t.Fatalf("Exec error = %v, want a StartError: %v", err, tt.startErrExpected)
			}
			if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Errorf("Exec = %d, %q, %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}

	if _, err := c.Exec(ctx, nil, nil, nil, nil, nil); err == nil {
		t.Error("Exec without args did not fail")
	}
	select {
	case <-c.Done():
		t.Fatal("Done before Close")
	default:
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	<-c.Done()
}

func TestAgentClientCancel(t *testing.T) {
	g := startFakeGuest(t, shell)
	c, err := DialAgent(t.Context(), g.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = c.Exec(ctx, []string{"hang"}, nil, nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exec = %v, want the context's deadline error", err)
	}
	select {
	case name := <-g.closed:
		if name != "hang" {
			t.Errorf("closed stream of %q", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the guest did not see the stream end after the context was cancelled")
	}
	// The session survives a cancelled exec.
	if err := c.Ping(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestDialAgentNoAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err == nil {
			defer conn.Close()
			_, _ = io.Copy(io.Discard, conn) // a guest that is still booting
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := DialAgent(ctx, sock); err == nil || !strings.Contains(err.Error(), "no answer to hello") {
		t.Errorf("DialAgent = %v, want no answer", err)
	}
	if _, err := DialAgent(t.Context(), filepath.Join(t.TempDir(), "none.sock")); err == nil || !strings.Contains(err.Error(), "is the VM running") {
		t.Errorf("DialAgent to no socket = %v", err)
	}
}
