package initproc

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/guest"
)

// saveRootfs answers NodeRootfs as an exec: the layer archive of container
// id's changes (writeLayer; writeSandboxLayer under runsc) as output frames, then exit code 0; an error
// and exit code 1 when it cannot be written to its end.
func (n *node) saveRootfs(out *frameWriter, id string) {
	c, ok := n.get(id)
	if !ok {
		out.fail(fmt.Errorf("no container %q in this node VM", id), 1)
		return
	}
	bw := bufio.NewWriterSize(outputFrames{out}, 32<<10)
	var err error
	if c.runtime() == guest.RuntimeRunsc {
		err = n.writeSandboxLayer(bw, c)
	} else {
		err = writeLayer(bw, filepath.Join(c.dir, "upper"))
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		out.fail(fmt.Errorf("container %s: layer of its changes: %w", id, err), 1)
		return
	}
	out.frame(guest.FrameExit, guest.ExitPayload(0))
}

// applyLayer answers NodeLayer as an exec: it unpacks the layer archive
// read from in into created container id's root filesystem (its overlayfs,
// so that files removed by whiteouts become the overlay's own whiteouts),
// beneath it and nowhere else (package extract), then exit code 0.
// Setuid and setgid bits and owners are kept (root filesystems have them);
// device nodes, pipes and sockets are left out (the runtime gives a
// container its /dev).
func (n *node) applyLayer(out *frameWriter, in io.Reader, id string) {
	c, ok := n.get(id)
	if !ok {
		out.fail(fmt.Errorf("no container %q in this node VM", id), 1)
		return
	}
	if state, _ := n.status(c); state != guest.StateCreated {
		out.fail(fmt.Errorf("container %s is %s; a layer goes into a created container, before it starts", id, state), 1)
		return
	}
	root, err := os.OpenRoot(filepath.Join(c.dir, "rootfs"))
	if err != nil {
		out.fail(fmt.Errorf("container %s: %w", id, err), 1)
		return
	}
	defer root.Close()
	if _, err := extract.Extract(in, root, extract.Options{Whiteouts: true, SpecialModes: true, Owners: true}); err != nil {
		out.fail(fmt.Errorf("container %s: apply the root filesystem layer: %w", id, err), 1)
		return
	}
	out.frame(guest.FrameExit, guest.ExitPayload(0))
}

// stdinFrames reads the stdin frames of a stream as bytes until the host
// closes its stdin (io.EOF).
type stdinFrames struct {
	in   *bufio.Reader
	rest []byte
	eof  bool
}

func (s *stdinFrames) Read(p []byte) (int, error) {
	for len(s.rest) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		f, err := guest.ReadFrame(s.in)
		if err != nil {
			// The stream ended before the host closed stdin: the archive is cut short.
			return 0, fmt.Errorf("the host's stream ended before the layer did: %w", io.ErrUnexpectedEOF)
		}
		switch f.Kind {
		case guest.FrameStdin:
			s.rest = f.Payload
		case guest.FrameStdinClose:
			s.eof = true
		}
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// outputFrames writes what it is given as output frames.
type outputFrames struct{ fw *frameWriter }

func (o outputFrames) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		k := min(len(rest), guest.MaxFramePayload)
		o.fw.frame(guest.FrameStdout, rest[:k])
		rest = rest[k:]
	}
	o.fw.mu.Lock()
	defer o.fw.mu.Unlock()
	if o.fw.broken {
		return 0, errors.New("the host has gone")
	}
	return len(p), nil
}

// writeLayer writes what the overlayfs upper directory upper holds as a
// layer archive (extract.WriteUpper): the container's changes.
func writeLayer(w io.Writer, upper string) error {
	tw := tar.NewWriter(w)
	if err := extract.WriteUpper(extract.TarLayer{Writer: tw}, upper); err != nil {
		return err
	}
	return tw.Close()
}

// writeSandboxLayer writes the changes of runsc container c as a layer
// archive: runsc keeps a sandbox's writes in the sandbox's own overlay (the
// guest's upper directory holds only its backing file), so runsc writes
// them (`runsc tar rootfs-upper`, into a file in the container's directory
// on the guest's tmpfs) with its removals as overlay whiteouts, which
// extract.WhiteoutsToLayer turns into the layer's .wh. entries.
func (n *node) writeSandboxLayer(w io.Writer, c *container) error {
	if state, _ := n.status(c); state != guest.StateRunning {
		return fmt.Errorf("it is %s; runsc writes the layer of a running sandbox", state)
	}
	file := filepath.Join(c.dir, "rootfs-upper.tar")
	defer os.Remove(file)
	out, code, err := n.tool(append(c.runtimeArgs(), "tar", "rootfs-upper", "--file", file, c.runtimeID()))
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("runsc tar rootfs-upper: exit code %d: %s", code, firstLine(out))
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return extract.WhiteoutsToLayer(w, f)
}
