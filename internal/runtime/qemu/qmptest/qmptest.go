// Package qmptest lets tests talk to a running VM's QEMU over its QMP socket: to
// write to its disk through QEMU's block layer, as the guest would, or to end it
// the way a guest's power-off does.
package qmptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DiskDevice is the QOM path of the first anonymous virtio disk's block backend,
// which qemu-io names with -d to write as the guest does.
const DiskDevice = "/machine/peripheral-anon/device[0]/virtio-backend"

// HMP runs a human monitor command in the QEMU whose QMP socket is sock and fails t
// when QEMU answers with an error or with output (qemu-io prints only failures).
// For "quit" it waits until QEMU answers or closes the socket: closing it first
// would drop the command.
func HMP(t testing.TB, sock, command string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	reply := func() map[string]any {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("QMP %s: %v", sock, err)
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			if _, event := m["event"]; !event {
				return m
			}
		}
	}
	reply() // the greeting
	send := func(cmd map[string]any) {
		data, _ := json.Marshal(cmd)
		if _, err := c.Write(append(data, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"execute": "qmp_capabilities"})
	if m := reply(); m["error"] != nil {
		t.Fatalf("QMP %s: %v", sock, m["error"])
	}
	send(map[string]any{"execute": "human-monitor-command", "arguments": map[string]any{"command-line": command}})
	if command == "quit" {
		_, _ = r.ReadBytes('\n')
		return
	}
	m := reply()
	if m["error"] != nil {
		t.Fatalf("%s: %v", command, m["error"])
	}
	if out, _ := m["return"].(string); strings.TrimSpace(out) != "" {
		t.Fatalf("%s: %s", command, out)
	}
}

// PID returns the process ID of the QEMU that serves QMP on sock, or 0.
func PID(sock string) int {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil && bytes.Contains(data, []byte(sock)) && bytes.Contains(data, []byte("qemu-system")) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			return pid
		}
	}
	return 0
}
