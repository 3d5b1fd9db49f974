package guest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{FrameStdin, []byte("some input\n")},
		{FrameStdinClose, []byte{}},
		{FrameStdout, bytes.Repeat([]byte("o"), 70000)},
		{FrameStderr, []byte("oops\n")},
		{FrameError, []byte(`"nope" not found`)},
		{FrameExit, ExitPayload(137)},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&buf, f.Kind, f.Payload); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range frames {
		got, err := ReadFrame(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != want.Kind || !bytes.Equal(got.Payload, want.Payload) {
			t.Errorf("read %s frame of %d bytes, want %s of %d", got.Kind, len(got.Payload), want.Kind, len(want.Payload))
		}
	}
	if _, err := ReadFrame(&buf); !errors.Is(err, io.EOF) {
		t.Errorf("read past the last frame: %v, want EOF", err)
	}
}

func TestFrameWireFormat(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, FrameExit, ExitPayload(7)); err != nil {
		t.Fatal(err)
	}
	want := []byte{5, 0, 0, 0, 4, 0, 0, 0, 7}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("exit frame = % x, want % x", buf.Bytes(), want)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"short header", []byte{3, 0, 0}, "unexpected EOF"},
		{"short payload", []byte{3, 0, 0, 0, 5, 'a', 'b'}, "unexpected EOF"},
		{"too large", []byte{3, 0x7f, 0, 0, 0}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFrame = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if err := WriteFrame(io.Discard, FrameStdout, make([]byte, MaxFramePayload+1)); err == nil {
		t.Error("WriteFrame wrote a payload over the limit")
	}
}

func TestExitPayload(t *testing.T) {
	for _, code := range []int{0, 1, 127, 255, -1} {
		got, err := ParseExit(ExitPayload(code))
		if err != nil || got != code {
			t.Errorf("ParseExit(ExitPayload(%d)) = %d, %v", code, got, err)
		}
	}
	if _, err := ParseExit([]byte{1, 2}); err == nil {
		t.Error("a 2-byte exit payload was accepted")
	}
}

func TestParseHello(t *testing.T) {
	tests := []struct {
		line  string
		nonce string
		ok    bool
	}{
		{"STRATA-AGENT HELLO abc123\n", "abc123", true},
		{"STRATA-AGENT HELLO abc123", "abc123", true},
		{"STRATA-AGENT HELLO abc123\r\n", "abc123", true},
		{"junk from an old sessionSTRATA-AGENT HELLO n1\n", "n1", true},
		{"STRATA-AGENT HELLO old STRATA-AGENT HELLO new\n", "new", true},
		{"STRATA-AGENT HELLO \n", "", false},
		{"STRATA-AGENT HELLO two words\n", "", false},
		{"STRATA-AGENT OK abc\n", "", false},
		{"hello\n", "", false},
	}
	for _, tt := range tests {
		nonce, ok := ParseHello(tt.line)
		if ok != tt.ok || (ok && nonce != tt.nonce) {
			t.Errorf("ParseHello(%q) = %q, %v; want %q, %v", tt.line, nonce, ok, tt.nonce, tt.ok)
		}
	}
	if nonce, ok := ParseHello(HelloLine("x9")); !ok || nonce != "x9" {
		t.Errorf("ParseHello(HelloLine) = %q, %v", nonce, ok)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	want := ExecRequest{Args: []string{"sh", "-c", "echo hi"}, Env: []string{"A=b"}, WorkingDir: "/srv"}
	if err := WriteRequest(&buf, want); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameStdinClose, nil); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(&buf)
	got, err := ReadRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("request = %+v, want %+v", got, want)
	}
	// The frame after the request line is still there.
	if f, err := ReadFrame(br); err != nil || f.Kind != FrameStdinClose {
		t.Errorf("frame after the request = %v, %v", f, err)
	}
}

func TestReadRequestErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no program", `{"args":[]}` + "\n", "no program"},
		{"empty program", `{"args":[""]}` + "\n", "no program"},
		{"not json", "hello\n", "decode"},
		{"no newline", `{"args":["ls"]}`, "EOF"},
		{"too long", `{"args":["` + strings.Repeat("a", MaxRequestLine) + `"]}` + "\n", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadRequest(bufio.NewReader(strings.NewReader(tt.in)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadRequest = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if r, err := ReadRequest(bufio.NewReader(strings.NewReader(`{"ping":true}` + "\n"))); err != nil || !r.Ping {
		t.Errorf("ping request = %+v, %v", r, err)
	}
}

func TestStartExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{&fs.PathError{Op: "exec", Path: "/bin/x", Err: syscall.ENOENT}, ExitNotFound},
		{fmt.Errorf("lookup: %w", fs.ErrNotExist), ExitNotFound},
		{&fs.PathError{Op: "exec", Path: "/etc/hosts", Err: syscall.EACCES}, ExitNotExecutable},
		{&fs.PathError{Op: "exec", Path: "/x", Err: syscall.ENOEXEC}, ExitNotExecutable},
		{&fs.PathError{Op: "exec", Path: "/x", Err: syscall.EPERM}, ExitNotExecutable},
		{os.ErrClosed, 1},
		{errors.New("user \"nobody\" unknown"), 1},
	}
	for _, tt := range tests {
		if got := StartExitCode(tt.err); got != tt.want {
			t.Errorf("StartExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{5, 0, 0, 0, 4, 0, 0, 0, 7})
	f.Add([]byte{3, 0, 0, 0, 2, 'h', 'i', 2, 0, 0, 0, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := ReadFrame(r)
			if err != nil {
				return
			}
			var buf bytes.Buffer
			if err := WriteFrame(&buf, fr.Kind, fr.Payload); err != nil {
				t.Fatalf("a frame read back cannot be written: %v", err)
			}
			again, err := ReadFrame(&buf)
			if err != nil || again.Kind != fr.Kind || !bytes.Equal(again.Payload, fr.Payload) {
				t.Fatalf("frame did not survive a round trip: %v", err)
			}
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add("STRATA-AGENT HELLO abc\n")
	f.Add("xxSTRATA-AGENT HELLO a b\n")
	f.Fuzz(func(t *testing.T, line string) {
		nonce, ok := ParseHello(line)
		if !ok {
			return
		}
		if nonce == "" || strings.ContainsAny(nonce, " \t\r\n") {
			t.Fatalf("ParseHello(%q) gave nonce %q", line, nonce)
		}
		if again, ok := ParseHello(HelloLine(nonce)); !ok || again != nonce {
			t.Fatalf("HelloLine(%q) does not parse back", nonce)
		}
	})
}
