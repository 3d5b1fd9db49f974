package fake

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// output is where a modelled process writes; nil writers discard.
type output struct {
	stdout, stderr io.Writer
}

func (o output) out(s string) { write(o.stdout, s) }
func (o output) err(s string) { write(o.stderr, s) }

func write(w io.Writer, s string) {
	if w != nil {
		_, _ = io.WriteString(w, s)
	}
}

// behave runs one of the vocabulary's instant behaviours in instance in and
// returns the exit code and whether the process was OOM-killed. Callers hold
// h.mu.
func (h *Host) behave(in *instance, s script.Script, stdin io.Reader, o output) (code int, oom bool) {
	switch s.Op {
	case script.OpExit:
		return s.Code, false
	case script.OpEcho:
		o.out(strings.Join(s.Words, " ") + "\n")
	case script.OpPrintEnv:
		for _, n := range s.Names {
			o.out(n + "=" + in.spec.Env[n] + "\n")
		}
	case script.OpOutput:
		o.out(s.Stdout + "\n")
		o.err(s.Stderr + "\n")
		return s.Code, false
	case script.OpCat:
		if stdin != nil {
			w := o.stdout
			if w == nil {
				w = io.Discard
			}
			if _, err := io.Copy(w, stdin); err != nil {
				o.err("cat: read error: " + err.Error() + "\n")
				return 1, false
			}
		}
	case script.OpReadFile:
		data, err := in.readFile(s.Path)
		if err != nil {
			o.err(fmt.Sprintf("cat: can't open '%s': No such file or directory\n", s.Path))
			return 1, false
		}
		o.out(string(data))
	case script.OpWriteFile:
		if msg := in.writeFile(s.Path, []byte(s.Text+"\n")); msg != "" {
			o.err(fmt.Sprintf("sh: can't create %s: %s\n", s.Path, msg))
			return 1, false
		}
	case script.OpAllocate:
		if in.spec.MemoryBytes > 0 && int64(s.MiB)<<20 >= in.spec.MemoryBytes {
			return 137, true
		}
		o.err("1+0 records in\n1+0 records out\n")
	}
	return 0, false
}

// mountFor returns the mount that holds path p (the deepest one) and p's
// host path under it.
func (in *instance) mountFor(p string) (runtime.Mount, string, bool) {
	p = path.Clean(p)
	var best runtime.Mount
	var host string
	found := false
	for _, m := range in.spec.Mounts {
		mp := path.Clean(m.Path)
		rel, ok := strings.CutPrefix(p, mp)
		if !ok || rel != "" && !strings.HasPrefix(rel, "/") {
			continue
		}
		if !found || len(mp) > len(path.Clean(best.Path)) {
			best, host, found = m, filepath.Join(m.HostPath, filepath.FromSlash(rel)), true
		}
	}
	return best, host, found
}

func (in *instance) readFile(p string) ([]byte, error) {
	if _, host, ok := in.mountFor(p); ok {
		return os.ReadFile(host)
	}
	data, ok := in.files[path.Clean(p)]
	if !ok {
		return nil, os.ErrNotExist
	}
	return data, nil
}

// writeFile writes data to p and returns "" or busybox's reason for failing.
func (in *instance) writeFile(p string, data []byte) string {
	m, host, ok := in.mountFor(p)
	if !ok {
		files := copyFiles(in.files)
		files[path.Clean(p)] = data
		if err := in.putDisk(files); err != nil {
			return "I/O error"
		}
		return ""
	}
	if m.ReadOnly {
		return "Read-only file system"
	}
	if err := os.WriteFile(host, data, 0o600); err != nil {
		return "nonexistent directory"
	}
	return ""
}

// Exec implements runtime.Execer over the vocabulary: the instant behaviours
// as for the main process, sleep/serve/ignore-term wait on the host's clock,
// anything else exits 127.
func (d *Driver) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	h := d.host
	h.mu.Lock()
	if err := h.call(OpExec, id); err != nil {
		h.mu.Unlock()
		return 0, err
	}
	in, err := d.lookup(id)
	if err != nil {
		h.mu.Unlock()
		return 0, err
	}
	// As with containerd, a paused instance runs no new process.
	if in.exited() || in.paused {
		h.mu.Unlock()
		return 0, fmt.Errorf("exec in instance %q: %w", id, runtime.ErrNotRunning)
	}
	done := in.done
	o := output{stdout: stdout, stderr: stderr}
	s, err := script.Parse(cmd)
	if err != nil {
		h.mu.Unlock()
		o.err(fmt.Sprintf("%s: command not modelled by the fake driver\n", strings.Join(cmd, " ")))
		return 127, nil
	}
	switch s.Op {
	case script.OpSleep, script.OpServe, script.OpIgnoreTerm:
		h.mu.Unlock()
		select {
		case <-h.clock.After(time.Duration(s.Seconds) * time.Second):
			return 0, nil
		case <-done:
			return 137, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("exec in instance %q: %w", id, ctx.Err())
		}
	case script.OpCat:
		// Copy without holding the host's lock: stdin may block.
		h.mu.Unlock()
		code, _ := h.behave(in, s, stdin, o)
		return code, nil
	}
	defer h.mu.Unlock()
	code, oom := h.behave(in, s, stdin, o)
	if oom {
		h.oom(in)
	}
	return code, nil
}
