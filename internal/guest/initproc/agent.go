package initproc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// Agent timings.
const (
	// hostPoll is how often the agent looks for a host while none is
	// connected: the port reads end of file then, and cannot be waited on.
	hostPoll = 50 * time.Millisecond
	// outputLinger is how long an exec's output may still flow after its
	// program ended (a background child may hold the pipes open).
	outputLinger = time.Second
)

// agent serves guest.AgentPort: one yamux session after each handshake,
// one exec per stream.
type agent struct {
	log    *console
	reaper *reaper
	root   string
	base   command // the entrypoint's environment, directory and user
	node   *node   // the containers, in a node guest; nil in an image VM
}

// serve runs the agent on the port device dev forever. A port that fails
// is reopened after a second; only its first failure is logged.
func (a *agent) serve(dev string) {
	for failures := 0; ; failures++ {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			a.log.printf("exec agent: %v", err)
			return
		}
		err = a.serveFile(f)
		_ = f.Close()
		if failures == 0 {
			a.log.printf("exec agent: %v (reopening the port)", err)
		}
		time.Sleep(time.Second)
	}
}

// serveFile waits for a HELLO, answers it, and runs a session, over and
// over. It returns only when the port itself failed and must be reopened.
func (a *agent) serveFile(f *os.File) error {
	r := &portReader{f: f}
	for {
		nonce, err := r.waitHello()
		if err != nil {
			return err
		}
		if err := f.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		if _, err := io.WriteString(f, guest.OKLine(nonce)); err != nil {
			_ = f.SetWriteDeadline(time.Time{})
			continue // the host left during the handshake; wait for the next
		}
		if err := f.SetWriteDeadline(time.Time{}); err != nil {
			return err
		}
		a.session(&portConn{r: r, f: f})
		// The session's end interrupted the port with a deadline; clear it.
		if err := f.SetDeadline(time.Time{}); err != nil {
			return err
		}
		r.replayHello()
	}
}

// session serves one yamux session until it ends.
func (a *agent) session(conn *portConn) {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false // the host's end going away shows as end of file
	cfg.LogOutput = io.Discard
	sess, err := yamux.Server(conn, cfg)
	if err != nil {
		a.log.printf("exec agent: %v", err)
		return
	}
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go a.exec(st)
	}
}

// Bounds of portReader's buffers.
const (
	maxJunkLine = 4096 // a longer line without a HELLO is dropped
	tailSize    = 1024 // how much of a session's input is kept for replayHello
)

// portReader reads the agent port for the handshake and for the sessions.
type portReader struct {
	f       *os.File
	pending []byte // read from the port and not consumed yet
	tail    []byte // the last bytes the current session consumed
}

// Read is the session's input.
func (r *portReader) Read(p []byte) (n int, err error) {
	if len(r.pending) > 0 {
		n = copy(p, r.pending)
		r.pending = r.pending[n:]
	} else {
		n, err = r.f.Read(p)
	}
	r.tail = append(r.tail, p[:n]...)
	if len(r.tail) > 2*tailSize {
		r.tail = append(r.tail[:0], r.tail[len(r.tail)-tailSize:]...)
	}
	return n, err
}

// waitHello discards input until a HELLO line and returns its nonce.
// While no host is connected the port reads end of file and cannot be
// waited on, so it polls.
func (r *portReader) waitHello() (string, error) {
	buf := make([]byte, 4096)
	for {
		if i := bytes.IndexByte(r.pending, '\n'); i >= 0 {
			line := string(r.pending[:i+1])
			r.pending = r.pending[i+1:]
			if nonce, ok := guest.ParseHello(line); ok {
				return nonce, nil
			}
			continue
		}
		if len(r.pending) > maxJunkLine {
			r.pending = r.pending[len(r.pending)-len(guest.HelloPrefix)-128:]
		}
		n, err := r.f.Read(buf)
		r.pending = append(r.pending, buf[:n]...)
		switch {
		case errors.Is(err, io.EOF):
			time.Sleep(hostPoll)
		case err != nil:
			return "", err
		}
	}
}

// replayHello puts back, after a session ended, the start of a HELLO that
// the session consumed: a host that connected before the guest saw the last
// one leave. During a session the host sends no HELLO, so any in its input
// is a new host's.
func (r *portReader) replayHello() {
	if i := helloStart(r.tail); i >= 0 {
		r.pending = append(append([]byte{}, r.tail[i:]...), r.pending...)
	}
	r.tail = r.tail[:0]
}

// helloStart is the index of the last HELLO in b, or of a suffix of b that
// begins one (the rest still to be read); -1 if there is none.
func helloStart(b []byte) int {
	if i := bytes.LastIndex(b, []byte(guest.HelloPrefix)); i >= 0 {
		return i
	}
	for n := min(len(b), len(guest.HelloPrefix)-1); n > 0; n-- {
		if bytes.HasSuffix(b, []byte(guest.HelloPrefix[:n])) {
			return len(b) - n
		}
	}
	return -1
}

// portConn is the session's byte stream: reads come through the
// portReader, writes go to the port. Close interrupts pending reads and
// writes with a deadline but keeps the port open for the next session.
type portConn struct {
	r *portReader
	f *os.File
}

func (c *portConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *portConn) Write(p []byte) (int, error) { return c.f.Write(p) }
func (c *portConn) Close() error                { return c.f.SetDeadline(time.Now()) }

// exec runs one stream's request.
func (a *agent) exec(st net.Conn) {
	defer st.Close()
	defer func() {
		// A panic here would end PID 1 and with it the VM, report unwritten.
		if r := recover(); r != nil {
			a.log.printf("exec agent: %v", r)
		}
	}()
	out := &frameWriter{w: st}
	br := bufio.NewReader(st)
	req, err := guest.ReadRequest(br)
	if req.Node != nil {
		a.nodeOp(st, br, req.Node, err)
		return
	}
	if err != nil {
		out.fail(err, 1)
		return
	}
	if req.Ping {
		out.frame(guest.FrameExit, guest.ExitPayload(0))
		return
	}
	c := a.base
	c.args = req.Args
	c.env = mergeEnv(a.base.env, req.Env)
	if req.WorkingDir != "" {
		c.dir = req.WorkingDir
	}
	if req.Container != "" {
		if a.node == nil {
			out.fail(errors.New("this is an image VM, not a node VM: it has no containers"), 1)
			return
		}
		c.args, err = a.node.execArgs(req.Container, req.Args, req.Env, req.WorkingDir)
		if err != nil {
			out.fail(err, 1)
			return
		}
		c.env, c.dir = a.base.env, ""
	}
	code, err := a.run(c, br, out)
	if err != nil {
		out.fail(err, guest.StartExitCode(err))
		return
	}
	out.frame(guest.FrameExit, guest.ExitPayload(code))
}

// nodeOp answers a node operation with one NodeReply line, or as an exec
// for those that stream (NodeRootfs, NodeLayer, whose input is in, the
// stream after the request).
func (a *agent) nodeOp(st net.Conn, in *bufio.Reader, req *guest.NodeRequest, bad error) {
	var rep guest.NodeReply
	switch {
	case bad != nil:
		rep.Error = bad.Error()
	case a.node == nil:
		rep.Error = "this is an image VM, not a node VM: it runs no containers"
	case req.Op == guest.NodeRootfs:
		a.node.saveRootfs(&frameWriter{w: st}, req.ID) // frames, as an exec's
		return
	case req.Op == guest.NodeLayer:
		a.node.applyLayer(&frameWriter{w: st}, &stdinFrames{in: in}, req.ID)
		return
	default:
		rep = a.node.handle(*req)
	}
	_ = guest.WriteNodeReply(st, rep)
}

// run starts c with pipes for its stdio, feeds it the stream's stdin
// frames, sends its output, and returns its exit code. The host closing the
// stream before the end kills the program's process group.
func (a *agent) run(c command, in *bufio.Reader, out *frameWriter) (int, error) {
	var pipes [3][2]*os.File // stdin, stdout, stderr: read and write ends
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			for _, p := range pipes {
				closeAll(p[:]...)
			}
			return 0, err
		}
		pipes[i] = [2]*os.File{r, w}
	}
	stdinR, stdinW := pipes[0][0], pipes[0][1]
	outR, outW := pipes[1][0], pipes[1][1]
	errR, errW := pipes[2][0], pipes[2][1]
	c.files = []*os.File{stdinR, outW, errW}
	p, err := a.reaper.start(a.root, c)
	closeAll(stdinR, outW, errW)
	if err != nil {
		closeAll(stdinW, outR, errR)
		return 0, err
	}

	var mu sync.Mutex // orders the kill below against the program's end
	ended := false
	go func() {
		feedStdin(in, stdinW)
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			_ = unix.Kill(-p.pid, unix.SIGKILL)
		}
	}()
	var copying sync.WaitGroup
	copying.Add(2)
	go func() { defer copying.Done(); out.copyFrom(guest.FrameStdout, outR) }()
	go func() { defer copying.Done(); out.copyFrom(guest.FrameStderr, errR) }()

	ws := <-p.done
	mu.Lock()
	ended = true
	mu.Unlock()
	// A stdin write blocked on a pipe that a left-over child holds ends.
	_ = stdinW.Close()
	copied := make(chan struct{})
	go func() { copying.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(outputLinger):
		closeAll(outR, errR)
		<-copied
	}
	closeAll(outR, errR)
	return exitCode(ws), nil
}

// feedStdin writes stdin frames into the program's stdin until the host
// closes it, and keeps reading (and dropping) frames until the stream ends,
// which is when it returns.
func feedStdin(in *bufio.Reader, stdin *os.File) {
	defer stdin.Close()
	for {
		f, err := guest.ReadFrame(in)
		if err != nil {
			return
		}
		switch f.Kind {
		case guest.FrameStdin:
			_, _ = stdin.Write(f.Payload) // a program that closed its stdin drops the rest
		case guest.FrameStdinClose:
			_ = stdin.Close()
		}
	}
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}

// frameWriter writes frames to a stream from several goroutines.
type frameWriter struct {
	mu     sync.Mutex
	w      io.Writer
	broken bool // a write failed: the host is gone, drop the rest
}

func (fw *frameWriter) frame(kind guest.FrameKind, payload []byte) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.broken {
		return
	}
	if err := guest.WriteFrame(fw.w, kind, payload); err != nil {
		fw.broken = true
	}
}

// fail reports a program that could not start.
func (fw *frameWriter) fail(err error, code int) {
	fw.frame(guest.FrameError, []byte(err.Error()))
	fw.frame(guest.FrameExit, guest.ExitPayload(code))
}

// copyFrom sends what r yields as frames of kind until r ends.
func (fw *frameWriter) copyFrom(kind guest.FrameKind, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			fw.frame(kind, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

var _ io.ReadWriteCloser = (*portConn)(nil)
