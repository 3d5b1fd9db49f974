package initproc

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// console writes the init's messages, one line each, to the VM's console,
// which the host keeps in the instance's console log.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

// openConsole opens /dev/console for writing, falling back to the stderr
// the kernel gave the init.
func openConsole() (*console, *os.File) {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return &console{w: os.Stderr}, os.Stderr
	}
	rawOutput(f)
	return &console{w: f}, f
}

// rawOutput stops the terminal from turning "\n" into "\r\n", so that the
// host's log holds what the programs wrote, line for line as a container's.
func rawOutput(f *os.File) {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return // not a terminal
	}
	t.Oflag &^= unix.OPOST | unix.ONLCR
	_ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "strata-guest: "+format+"\n", args...)
}
