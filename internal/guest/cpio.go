package guest

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks into its
// initial root filesystem: per entry a 110-byte ASCII header ("070701" and
// thirteen 8-digit hex fields), the name with a NUL, padding to 4 bytes, the
// data, padding to 4 bytes; then an entry named "TRAILER!!!".
//
// Every entry is owned by root, has mtime 0, and gets the next inode number
// from 1, so equal inputs give equal bytes. Regular files have one link:
// the kernel never treats them as hard links.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

// File type bits of the mode field.
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
)

const cpioTrailer = "TRAILER!!!"

type cpioHeader struct {
	name       string
	mode       uint32 // type and permission bits
	size       int64
	nlink      uint32
	rmaj, rmin uint32 // device number of a device node
}

func (cw *cpioWriter) header(h cpioHeader) {
	if cw.err != nil {
		return
	}
	if h.size < 0 || h.size > 0xffffffff {
		cw.err = fmt.Errorf("cpio entry %s: size %d does not fit the newc format", h.name, h.size)
		return
	}
	name := strings.TrimPrefix(h.name, "/")
	cw.ino++
	ino := cw.ino
	if name == cpioTrailer {
		ino = 0
	}
	namesize := len(name) + 1
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, h.mode, 0, 0, h.nlink, 0, h.size, 0, 0, h.rmaj, h.rmin, namesize, 0)
	cw.write([]byte(hdr + name + "\x00"))
	cw.pad(int64(len(hdr) + namesize))
}

func (cw *cpioWriter) write(b []byte) {
	if cw.err == nil {
		_, cw.err = cw.w.Write(b)
	}
}

// pad writes the zeros that bring n bytes to a multiple of 4.
func (cw *cpioWriter) pad(n int64) {
	if r := n % 4; r != 0 {
		cw.write(make([]byte, 4-r))
	}
}

func (cw *cpioWriter) dir(name string, perm uint32) {
	cw.header(cpioHeader{name: name, mode: cpioDir | perm, nlink: 2})
}

func (cw *cpioWriter) charDev(name string, perm, major, minor uint32) {
	cw.header(cpioHeader{name: name, mode: cpioChar | perm, nlink: 1, rmaj: major, rmin: minor})
}

// file writes a regular file of exactly size bytes read from r.
func (cw *cpioWriter) file(name string, perm uint32, size int64, r io.Reader) {
	cw.header(cpioHeader{name: name, mode: cpioReg | perm, nlink: 1, size: size})
	if cw.err != nil {
		return
	}
	n, err := io.CopyN(cw.w, r, size)
	if err != nil {
		cw.err = fmt.Errorf("cpio entry %s: copied %d of %d bytes: %w", name, n, size, err)
		return
	}
	cw.pad(size)
}

func (cw *cpioWriter) close() error {
	cw.header(cpioHeader{name: cpioTrailer, nlink: 1})
	return cw.err
}
