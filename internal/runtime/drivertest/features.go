package drivertest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/testimage"
)

func (s *suite) testMounts(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	if !s.caps.Mounts {
		// A driver that cannot mount refuses, rather than run without the data.
		spec := s.spec(t, "mounts-refused", script.Exit(0))
		spec.Mounts = []runtime.Mount{{HostPath: in, Path: "/in"}}
		s.cleanup(t, s.d, spec.ID)
		if _, err := s.d.Start(ctx(t), spec); !errors.Is(err, runtime.ErrUnsupported) {
			t.Fatalf("start with a mount on a driver without mounts: %v, want ErrUnsupported", err)
		}
		if _, err := s.d.Status(ctx(t), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("a refused start left instance %s: %v", spec.ID, err)
		}
		return
	}
	if err := os.WriteFile(filepath.Join(in, "in.txt"), []byte("from-host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mounts := []runtime.Mount{{HostPath: in, Path: "/in", ReadOnly: true}, {HostPath: out, Path: "/out"}}
	tests := []struct {
		name     string
		cmd      []string
		wantCode bool // exit code 0
		wantLog  string
		check    func(t *testing.T)
	}{
		{"read", script.ReadFile("/in/in.txt"), true, "from-host\n", nil},
		{"write", script.WriteFile("/out/out.txt", "written"), true, "", func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(out, "out.txt"))
			if err != nil || string(b) != "written\n" {
				t.Errorf("host file: %q, %v; want \"written\\n\"", b, err)
			}
		}},
		{"read-only", script.WriteFile("/in/new.txt", "refused"), false, "", func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(in, "new.txt")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a write to a read-only mount reached the host: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := s.spec(t, "mount-"+tt.name, tt.cmd)
			spec.Mounts = mounts
			s.start(t, spec)
			st := s.waitState(t, s.d, spec.ID, runtime.StateExited)
			if (st.ExitCode == 0) != tt.wantCode {
				t.Errorf("exit code %d, want success %v", st.ExitCode, tt.wantCode)
			}
			if tt.wantLog != "" {
				s.waitLog(t, spec.LogPath, tt.wantLog)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

// Memory sizes of the limit test: the limit leaves room for the runtime's
// own overhead (gVisor's sentry counts against it), the small allocation
// fits well within it, the large one far exceeds it.
const (
	memoryLimit = 128 << 20
	smallMiB    = 16
	largeMiB    = 512
)

func (s *suite) testMemoryLimit(t *testing.T) {
	ev := subscribe(t, s.d)
	// Under Limits the kill is the host's OOM kill, reported as such. A MemoryBound
	// driver's instance cannot get the memory inside (a VM's guest refuses the allocation
	// or its kernel kills the process): it fails, with no OOM report.
	oomReported := s.caps.Limits
	codeOK := func(code, want int) bool {
		if want != 0 && !oomReported {
			return code != 0
		}
		return code == want
	}
	tests := []struct {
		name     string
		mib      int
		wantOOM  bool
		wantCode int
	}{
		{"within", smallMiB, false, 0},
		{"beyond", largeMiB, true, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := s.spec(t, "memory-"+tt.name, script.Allocate(tt.mib))
			spec.MemoryBytes = memoryLimit
			spec.CPUMilli = 500
			s.start(t, spec)
			st := s.waitState(t, s.d, spec.ID, runtime.StateExited)
			wantOOM := tt.wantOOM && oomReported
			if st.OOMKilled != wantOOM || !codeOK(st.ExitCode, tt.wantCode) {
				t.Errorf("allocating %d MiB under a %d MiB limit: exit code %d, oomKilled %v (%s); want %d, %v",
					tt.mib, memoryLimit>>20, st.ExitCode, st.OOMKilled, st.Message, tt.wantCode, wantOOM)
			}
			if ev != nil {
				exit := ev.wait(t, spec.ID, runtime.EventExit, s.opts.Timeout)
				if exit.OOMKilled != wantOOM || !codeOK(exit.ExitCode, tt.wantCode) {
					t.Errorf("exit event: code %d, oomKilled %v; want %d, %v", exit.ExitCode, exit.OOMKilled, tt.wantCode, wantOOM)
				}
				if wantOOM {
					ev.wait(t, spec.ID, runtime.EventOOM, s.opts.Timeout)
				}
			}
		})
	}
}

func (s *suite) testExec(t *testing.T) {
	x := s.d.(runtime.Execer) // Run registers the test only for an Execer
	spec := s.spec(t, "exec", script.Serve(longRun))
	spec.Env = map[string]string{"GREETING": "hi"}
	s.serve(t, spec)
	tests := []struct {
		name       string
		cmd        []string
		stdin      string
		wantOut    string
		wantErr    string
		wantCode   int
		nilWriters bool
	}{
		{"output", script.Output("to-stdout", "to-stderr", 3), "", "to-stdout\n", "to-stderr\n", 3, false},
		{"stdin", script.Cat(), "ping pong\n", "ping pong\n", "", 0, false},
		{"env", script.PrintEnv("GREETING"), "", "GREETING=hi\n", "", 0, false},
		{"discard", script.Output("x", "y", 5), "", "", "", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			var stdin *strings.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			var code int
			var err error
			switch {
			case tt.nilWriters:
				code, err = x.Exec(ctx(t), spec.ID, tt.cmd, nil, nil, nil)
			case stdin != nil:
				code, err = x.Exec(ctx(t), spec.ID, tt.cmd, stdin, &stdout, &stderr)
			default:
				code, err = x.Exec(ctx(t), spec.ID, tt.cmd, nil, &stdout, &stderr)
			}
			if err != nil {
				t.Fatalf("exec %q: %v", tt.cmd, err)
			}
			if code != tt.wantCode || stdout.String() != tt.wantOut || stderr.String() != tt.wantErr {
				t.Errorf("exec %q: code %d stdout %q stderr %q; want %d %q %q",
					tt.cmd, code, stdout.String(), stderr.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
	s.stop(t, s.d, spec.ID, time.Minute)
	if _, err := x.Exec(ctx(t), spec.ID, script.Exit(0), nil, nil, nil); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("exec in an exited instance: %v, want ErrNotRunning", err)
	}
}

func (s *suite) testImportImage(t *testing.T) {
	imp := s.d.(runtime.ImageImporter) // Run registers the test only for an ImageImporter
	name := "localhost/strata/import-" + s.opts.Prefix
	tests := []struct {
		name    string
		build   func(*bytes.Buffer) error
		use     string // reference the spec uses
		wantRef string // reference ImportImage returns
	}{
		{"oci", func(b *bytes.Buffer) error { return testimage.Build(b, name+":oci") }, name + ":oci", name + ":oci"},
		{"docker", func(b *bytes.Buffer) error {
			return testimage.BuildDockerArchive(b, "strata-import-"+s.opts.Prefix+":docker")
		},
			"strata-import-" + s.opts.Prefix + ":docker", "docker.io/library/strata-import-" + s.opts.Prefix + ":docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Importing twice is allowed and gives the same names.
			for range 2 {
				var buf bytes.Buffer
				if err := tt.build(&buf); err != nil {
					t.Fatal(err)
				}
				refs, err := imp.ImportImage(ctx(t), &buf)
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				if len(refs) != 1 || refs[0] != tt.wantRef {
					t.Fatalf("import: refs %q, want [%q]", refs, tt.wantRef)
				}
			}
			spec := s.spec(t, "import-"+tt.name, script.Echo("imported", tt.name))
			spec.Image = tt.use
			st := s.start(t, spec)
			if st.Image != tt.wantRef {
				t.Errorf("status image %q, want %q", st.Image, tt.wantRef)
			}
			s.waitState(t, s.d, spec.ID, runtime.StateExited)
			s.waitLog(t, spec.LogPath, "imported "+tt.name+"\n")
		})
	}
	t.Run("garbage", func(t *testing.T) {
		if refs, err := imp.ImportImage(ctx(t), strings.NewReader("not a tarball")); err == nil {
			t.Errorf("import of garbage: refs %q, no error", refs)
		}
	})
	t.Run("invalid reference", func(t *testing.T) {
		// An OCI layout whose only image has a name that is no reference imports
		// nothing and says which name is wrong.
		var buf bytes.Buffer
		if err := testimage.BuildFromLayer(&buf, "Bad/Name:!", make([]byte, 1024), false); err != nil {
			t.Fatal(err)
		}
		refs, err := imp.ImportImage(ctx(t), &buf)
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), `"Bad/Name:!"`) {
			t.Errorf("import of an invalid reference: refs %q, error %v; want ErrInvalid naming the reference", refs, err)
		}
	})
}

func (s *suite) testEvents(t *testing.T) {
	ev := subscribe(t, s.d) // Run registers the test only for an EventSource
	exit := s.spec(t, "event-exit", script.Exit(7))
	s.start(t, exit)
	if e := ev.wait(t, exit.ID, runtime.EventExit, s.opts.Timeout); e.ExitCode != 7 || e.OOMKilled || e.Time.IsZero() {
		t.Errorf("exit event %+v, want code 7, not OOM-killed, with a time", e)
	}
	stop := s.spec(t, "event-stop", script.Serve(longRun))
	s.serve(t, stop)
	s.stop(t, s.d, stop.ID, time.Minute)
	if e := ev.wait(t, stop.ID, runtime.EventExit, s.opts.Timeout); e.ExitCode != 143 {
		t.Errorf("exit event after stop: %+v, want code 143", e)
	}
	// A closed subscription's channel is closed.
	src := s.d.(runtime.EventSource)
	c, cancel := context.WithCancel(ctx(t))
	ch, err := src.Events(c)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.After(s.opts.Timeout)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("event channel still open after its context ended")
		}
	}
}

func (s *suite) testReadopt(t *testing.T) {
	first := s.make(t)
	t.Cleanup(func() { _ = first.Close() }) // closing twice is allowed
	spec := s.spec(t, "readopt", script.Serve(longRun))
	spec.Slot = 2
	spec.Labels = map[string]string{"generation": "1"}
	s.cleanup(t, s.d, spec.ID)
	started, err := s.startOn(t, first, spec)
	if err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, spec.LogPath, script.ServeReady)
	if err := first.Close(); err != nil {
		t.Fatalf("close the first driver: %v", err)
	}

	second := s.make(t)
	t.Cleanup(func() { _ = second.Close() })
	list, err := second.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	st, ok := find(list, spec.ID)
	if !ok {
		t.Fatalf("a new driver does not list %s", spec.ID)
	}
	s.checkRunning(t, st, spec)
	if st.PID != started.PID || !sameLabels(st.Labels, spec.Labels) {
		t.Errorf("re-adopted: pid %d labels %v, want pid %d labels %v", st.PID, st.Labels, started.PID, spec.Labels)
	}
	if x, ok := second.(runtime.Execer); ok {
		var out bytes.Buffer
		if code, err := x.Exec(ctx(t), spec.ID, script.Echo("still", "here"), nil, &out, nil); err != nil || code != 0 || out.String() != "still here\n" {
			t.Errorf("exec through the new driver: code %d, output %q, %v", code, out.String(), err)
		}
	}
	st = s.stop(t, second, spec.ID, time.Minute)
	if st.ExitCode != 143 {
		t.Errorf("stopped through the new driver: exit code %d, want 143", st.ExitCode)
	}
	s.remove(t, second, spec.ID)
}
