package nodevm_test

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/internal/runtime/nodevm"
)

// TestImageDiskLost: when the guest has lost an image disk that the qemu
// driver's record still holds (as after a hot-plug the guest missed), the
// next Start of that image plugs it in again instead of failing, as every
// later Start of the image would, with "did not appear".
func TestImageDiskLost(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	s.startAndRemove(t, d, "first")
	vm := nodevm.VMID(nodevm.DefaultClass)
	devs, err := s.q.NodeDevices(vm)
	if err != nil || len(devs) != 1 || devs[0].Kind != "disk" {
		t.Fatalf("devices of node VM %s: %+v, %v; want the image's disk", vm, devs, err)
	}
	// Unplug it with QEMU's monitor, behind the drivers' backs: the guest
	// releases it, the record keeps it.
	deviceDel(t, filepath.Join(s.qemu, vm, "qmp.sock"), "hp-"+devs[0].ID)
	s.startAndRemove(t, d, "second")
	if devs, err := s.q.NodeDevices(vm); err != nil || len(devs) != 1 || devs[0].Kind != "disk" {
		t.Errorf("devices of node VM %s after the second start: %+v, %v; want the image's disk", vm, devs, err)
	}
}

// deviceDel removes device id from the QEMU whose QMP socket is sock and
// waits until the guest has released it.
func deviceDel(t *testing.T, sock, id string) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(conn)
	read := func() map[string]json.RawMessage {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("QMP: %v", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("QMP: %q: %v", line, err)
		}
		return m
	}
	read() // the greeting
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, `{"execute":"device_del","arguments":{"id":"` + id + `"}}`} {
		if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
			t.Fatal(err)
		}
		for {
			m := read()
			if e, ok := m["error"]; ok {
				t.Fatalf("QMP %s: %s", cmd, e)
			}
			if _, ok := m["return"]; ok {
				break
			}
		}
	}
	for {
		m := read()
		var ev string
		_ = json.Unmarshal(m["event"], &ev)
		var data struct {
			Device string `json:"device"`
		}
		_ = json.Unmarshal(m["data"], &data)
		if ev == "DEVICE_DELETED" && data.Device == id {
			return
		}
	}
}
