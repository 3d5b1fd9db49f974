package initproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PortWait bounds the wait for a virtio-serial port to appear: the driver
// adds ports as the host announces them, just after the module loads.
const PortWait = 5 * time.Second

// virtioPortsDir lists the virtio-serial ports: <dir>/vportNpM/name holds a
// port's name, and its device is /dev/vportNpM.
const virtioPortsDir = "/sys/class/virtio-ports"

// findPort returns the device of the virtio-serial port called name,
// waiting up to timeout for it to appear.
func findPort(name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if dev, ok := lookupPort(virtioPortsDir, name); ok {
			return dev, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("virtio-serial port %s not found in %s after %s (does QEMU define a virtserialport named %s?)", name, virtioPortsDir, timeout, name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lookupPort looks for name under dir once.
func lookupPort(dir, name string) (string, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "name"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Join("/dev", e.Name()), true
		}
	}
	return "", false
}
