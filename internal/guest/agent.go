package guest

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
)

// The exec agent's protocol, shared by the guest init (the server) and
// AgentClient (the host).
//
// Handshake. The host connects to the AgentPort's chardev socket and writes
// the line "STRATA-AGENT HELLO <nonce>\n". The guest discards bytes until it
// has read such a line, answers "STRATA-AGENT OK <nonce>\n", and both run a
// yamux session over the rest of the byte stream, the guest the server. When
// the session ends (the host disconnected, or any error), the guest waits for
// the next HELLO. The host ignores everything before the OK line with its own
// nonce: answers to earlier connections and the last words of their sessions.
//
// The guest cannot always tell that a host went away: when another connects
// at once, the port never reads end of file, and the new HELLO arrives inside
// the old session, which fails on it. The guest then looks for the HELLO in
// the bytes the failed session consumed and answers it.
//
// Streams. Each yamux stream the host opens is one exec. The host writes one
// ExecRequest as a JSON line, then frames (see Frame): FrameStdin and one
// FrameStdinClose. The guest writes FrameStdout and FrameStderr while the
// program runs and ends with FrameExit; when the program could not start, a
// FrameError comes first and the exit code follows the rule of ExitReport.
// A host that closes the stream before FrameExit abandons the exec: the
// guest kills the program's process group.
const (
	// HelloPrefix starts the host's HELLO line.
	HelloPrefix = "STRATA-AGENT HELLO "
	okPrefix    = "STRATA-AGENT OK "
)

// HelloLine is the line the host sends to open a session.
func HelloLine(nonce string) string { return HelloPrefix + nonce + "\n" }

// OKLine is the guest's answer to HelloLine(nonce).
func OKLine(nonce string) string { return okPrefix + nonce + "\n" }

// ParseHello returns the nonce of the HELLO that ends line (bytes before it
// are ignored: the rest of an earlier, broken line); ok is false when the
// line holds none.
func ParseHello(line string) (nonce string, ok bool) {
	i := strings.LastIndex(line, HelloPrefix)
	if i < 0 {
		return "", false
	}
	nonce = strings.TrimRight(line[i+len(HelloPrefix):], "\r\n")
	return nonce, nonce != "" && !strings.ContainsAny(nonce, " \t\r\n")
}

// ExecRequest is the first line of an exec stream.
type ExecRequest struct {
	// Args is the program and its arguments, looked up like Config.Args.
	Args []string `json:"args,omitempty"`
	// Env entries are added to the entrypoint's environment, replacing
	// entries with the same name.
	Env []string `json:"env,omitempty"`
	// WorkingDir is the program's working directory; empty means the
	// entrypoint's.
	WorkingDir string `json:"workingDir,omitempty"`
	// Ping asks only for a FrameExit with code 0: the agent is serving.
	Ping bool `json:"ping,omitempty"`
	// Container, in a node guest, runs Args inside that container.
	Container string `json:"container,omitempty"`
	// Node, in a node guest, is a node operation: the guest answers one
	// NodeReply line instead of frames.
	Node *NodeRequest `json:"node,omitempty"`
}

// MaxRequestLine bounds the ExecRequest line.
const MaxRequestLine = 1 << 20

// WriteRequest writes r as the JSON line that opens a stream.
func WriteRequest(w io.Writer, r ExecRequest) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadRequest reads the JSON line that opens a stream. It reads no further
// than the newline, so frames that follow stay in br.
func ReadRequest(br *bufio.Reader) (ExecRequest, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > MaxRequestLine {
			return ExecRequest{}, fmt.Errorf("exec request longer than %d bytes", MaxRequestLine)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return ExecRequest{}, fmt.Errorf("read exec request: %w", err)
		}
	}
	var r ExecRequest
	if err := json.Unmarshal(line, &r); err != nil {
		return ExecRequest{}, fmt.Errorf("decode exec request: %w", err)
	}
	if r.Node != nil {
		return r, r.Node.Validate()
	}
	if !r.Ping && (len(r.Args) == 0 || r.Args[0] == "") {
		return ExecRequest{}, errors.New("exec request has no program to run")
	}
	return r, nil
}

// FrameKind says what a frame carries.
type FrameKind byte

// The frame kinds. Host to guest: FrameStdin, FrameStdinClose. Guest to host:
// FrameStdout, FrameStderr, FrameError, FrameExit (always the last).
const (
	FrameStdin      FrameKind = 1 // bytes for the program's stdin
	FrameStdinClose FrameKind = 2 // no more stdin: the guest closes it; empty payload
	FrameStdout     FrameKind = 3 // bytes the program wrote to stdout
	FrameStderr     FrameKind = 4 // bytes the program wrote to stderr
	FrameExit       FrameKind = 5 // the exit code, 4 bytes big-endian (128+N for signal N)
	FrameError      FrameKind = 6 // why the program could not start, as text
)

func (k FrameKind) String() string {
	switch k {
	case FrameStdin:
		return "stdin"
	case FrameStdinClose:
		return "stdin-close"
	case FrameStdout:
		return "stdout"
	case FrameStderr:
		return "stderr"
	case FrameExit:
		return "exit"
	case FrameError:
		return "error"
	}
	return fmt.Sprintf("kind-%d", byte(k))
}

// A Frame is 1 byte of kind, 4 bytes of big-endian payload length, then
// the payload.
type Frame struct {
	Kind    FrameKind
	Payload []byte
}

// Frame sizes.
const (
	frameHeader = 5
	// MaxFramePayload bounds a frame's payload; writers split larger data.
	MaxFramePayload = 1 << 20
)

// WriteFrame writes one frame with a single Write, so writers that share w
// under a mutex never interleave.
func WriteFrame(w io.Writer, kind FrameKind, payload []byte) error {
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("%s frame of %d bytes is larger than %d", kind, len(payload), MaxFramePayload)
	}
	b := make([]byte, frameHeader+len(payload))
	b[0] = byte(kind)
	binary.BigEndian.PutUint32(b[1:frameHeader], uint32(len(payload)))
	copy(b[frameHeader:], payload)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame. A stream that ends between frames is io.EOF;
// one that ends inside a frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader) (Frame, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("%s frame of %d bytes is larger than %d", FrameKind(h[0]), n, MaxFramePayload)
	}
	f := Frame{Kind: FrameKind(h[0]), Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// ExitPayload encodes an exit code for FrameExit.
func ExitPayload(code int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(code)))
}

// ParseExit decodes FrameExit's payload.
func ParseExit(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("exit frame has %d bytes, want 4", len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}

// Exit codes for programs that could not start, as shells report them.
const (
	ExitNotFound      = 127 // no such program
	ExitNotExecutable = 126 // found, but it cannot be executed
)

// StartExitCode is the exit code for a program that could not start
// because of err: ExitNotFound, ExitNotExecutable, or 1 for anything else.
func StartExitCode(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ExitNotFound
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC),
		errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTDIR):
		return ExitNotExecutable
	}
	return 1
}
