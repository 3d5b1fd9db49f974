package qemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/segtest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// nodeApplets are the busybox applets the node VM tests run in the guest.
var nodeApplets = []string{"sh", "sleep", "cat", "ip", "ping", "ls", "mount", "umount", "mkdir", "grep", "true", "basename", "dirname", "test"}

// busyboxRoot writes a root filesystem of a static busybox and its applets
// into an ext4 disk at path.
func busyboxRoot(t testing.TB, path string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: no static busybox (install busybox-static): %v", err)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "mnt", "proc", "sys", "dev", "run", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range nodeApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := guest.MakeRootDisk(t.Context(), root, path, 0); err != nil {
		t.Fatal(err)
	}
}

// nodeInitrd writes an initramfs for a node VM: strata's base initramfs
// with a configuration that mounts root and sleeps.
func nodeInitrd(t testing.TB, k guest.Kernel, path string) {
	t.Helper()
	var buf bytes.Buffer
	if err := guest.BuildInitramfs(&buf, k, guestInit); err != nil {
		t.Fatal(err)
	}
	cfg, err := guest.ConfigArchive(guest.Config{
		Hostname: "node", Args: []string{"sleep", "86400"},
		Root: guest.RootFS{Device: "/dev/vda", FSType: "ext4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(buf.Bytes(), cfg...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// guestSh runs script in node VM id and returns its output; it fails the
// test when the script fails.
func guestSh(t testing.TB, d *qemu.Driver, id, script string) string {
	t.Helper()
	out, code, err := tryGuestSh(t.Context(), d, id, script)
	if err != nil || code != 0 {
		t.Fatalf("in the guest: %s: exit %d, %v: %s", script, code, err, out)
	}
	return out
}

func tryGuestSh(ctx context.Context, d *qemu.Driver, id, script string) (string, int, error) {
	var out bytes.Buffer
	code, err := d.Exec(ctx, id, []string{"sh", "-c", script}, nil, &out, &out)
	return out.String(), code, err
}

// waitGuest runs script in the guest until it succeeds, at most timeout.
func waitGuest(t testing.TB, d *qemu.Driver, id, what, script string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, code, err := tryGuestSh(t.Context(), d, id, script)
		if err == nil && code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: exit %d, %v: %s", what, timeout, code, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nodeNet is a segment in a network namespace the test created, with the
// port guard of strata's network manager.
type nodeNet struct {
	m   *netseg.Manager
	seg netseg.Segment
}

func newNodeNet(t testing.TB) nodeNet {
	t.Helper()
	n := segtest.New(t, "strata-node", "nodes", netip.MustParsePrefix("10.77.3.0/24"))
	return nodeNet{m: n.M, seg: n.Seg}
}

// nic attaches a tap for id to the segment and returns it for AttachNIC
// with the attachment.
func (n nodeNet) nic(t testing.TB, id string) (qemu.NIC, netseg.Attachment) {
	t.Helper()
	att, err := n.m.AttachTap(t.Context(), n.seg.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	tap, err := n.m.OpenTap(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tap.Close() })
	return qemu.NIC{ID: id, Tap: tap, MAC: att.MAC}, att
}

// ifaceOf is the guest's script that prints the name of the interface with mac.
func ifaceOf(mac string) string {
	return fmt.Sprintf(`for a in /sys/class/net/*/address; do if [ "$(cat $a)" = %q ]; then basename $(dirname $a); fi; done | grep .`, mac)
}

// TestNodeVMHotplug boots a node VM on q35 under the driver's accelerator,
// plugs a NIC on a guarded tap into it and pings the segment's gateway,
// checks that the port guard drops a spoofed source, unplugs the NIC, plugs
// a read-only disk and reads a file from it, then hands the VM to a new
// driver value, which detaches what the first one attached.
func TestNodeVMHotplug(t *testing.T) {
	needQEMU(t)
	k := guestKernel(t)
	if guestInit == "" {
		t.Fatal(noGuestInit)
	}
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: needs root (taps, bridges and network namespaces)")
	}
	dir := t.TempDir()
	rootDisk, initrd := filepath.Join(dir, "root.ext4"), filepath.Join(dir, "initrd.img")
	busyboxRoot(t, rootDisk)
	nodeInitrd(t, k, initrd)
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "known.txt"), []byte("read-only layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDisk := filepath.Join(dir, "data.ext4")
	if err := guest.MakeRootDisk(t.Context(), dataDir, dataDisk, 8<<20); err != nil {
		t.Fatal(err)
	}
	net := newNodeNet(t)

	state := filepath.Join(dir, "state")
	newDriver := func() *qemu.Driver {
		d, err := qemu.New(t.Context(), qemu.Config{StateDir: state, GuestInit: guestInit, KernelDir: kernelDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	d := newDriver()
	const id = "node1"
	removeAll(t, d, id)
	start := time.Now()
	if _, err := d.StartNode(t.Context(), qemu.NodeSpec{
		ID: id, MemoryBytes: 256 << 20, Initrd: initrd, RootDisk: rootDisk,
		LogPath: filepath.Join(dir, "node.log"),
	}); err != nil {
		t.Fatal(err)
	}
	waitGuest(t, d, id, "the guest agent", "true", 2*time.Minute)
	if st, err := d.Status(t.Context(), id); err != nil || st.State != runtime.StateRunning || st.Workload != "" || st.Labels[qemu.LabelNodeVM] != "true" {
		t.Fatalf("a node VM's status: %+v, %v; want it running, with no workload and labelled %s", st, err, qemu.LabelNodeVM)
	}
	t.Logf("node VM boot to agent ready (%s): %v", d.Accel(), time.Since(start).Round(time.Millisecond))

	// A NIC on a guarded tap: it appears with its MAC, takes the address
	// strata gave it and reaches the gateway.
	nic, att := net.nic(t, "nic1")
	start = time.Now()
	if err := d.AttachNIC(t.Context(), id, nic); err != nil {
		t.Fatal(err)
	}
	ifname := strings.TrimSpace(waitGuest(t, d, id, "the NIC in the guest", ifaceOf(att.MAC.String()), 30*time.Second))
	t.Logf("NIC hot-plug to interface %s in the guest: %v", ifname, time.Since(start).Round(time.Millisecond))
	prefix := netip.PrefixFrom(att.IP, att.Subnet.Bits())
	guestSh(t, d, id, fmt.Sprintf("ip link set %s up && ip addr add %s dev %s", ifname, prefix, ifname))
	waitGuest(t, d, id, "ping the gateway", fmt.Sprintf("ping -c 1 -W 1 %s", att.Gateway), 20*time.Second)

	// The port guard holds for the hot-plugged tap: another source address is dropped.
	spoofed := netip.PrefixFrom(att.IP.Next().Next().Next(), att.Subnet.Bits())
	guestSh(t, d, id, fmt.Sprintf("ip addr flush dev %s && ip addr add %s dev %s", ifname, spoofed, ifname))
	if out, code, err := tryGuestSh(t.Context(), d, id, fmt.Sprintf("ping -c 2 -W 1 %s", att.Gateway)); err != nil || code == 0 {
		t.Fatalf("a ping from the spoofed address %s got through (exit %d, %v): %s", spoofed.Addr(), code, err, out)
	}
	guestSh(t, d, id, fmt.Sprintf("ip addr flush dev %s && ip addr add %s dev %s", ifname, prefix, ifname))
	waitGuest(t, d, id, "ping the gateway again", fmt.Sprintf("ping -c 1 -W 1 %s", att.Gateway), 20*time.Second)

	start = time.Now()
	if err := d.DetachNIC(t.Context(), id, "nic1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("NIC hot-unplug: %v", time.Since(start).Round(time.Millisecond))
	if out := guestSh(t, d, id, "cat /sys/class/net/*/address"); strings.Contains(out, att.MAC.String()) {
		t.Fatalf("the NIC is still in the guest after DetachNIC: %s", out)
	}

	// What an attach cut short leaves in QEMU (a NIC's back end, a disk's block
	// node, under the IDs the next attach of the same device uses) is cleared
	// by that attach rather than refused as a duplicate.
	qmp(t, filepath.Join(state, id, "qmp.sock"),
		`{"execute": "netdev_add", "arguments": {"type": "hubport", "id": "hpnet-nic3", "hubid": 0}}`,
		fmt.Sprintf(`{"execute": "blockdev-add", "arguments": {"driver": "raw", "node-name": "hpblk-layer0", "read-only": true, "file": {"driver": "file", "filename": %q, "read-only": true}}}`, dataDisk))
	nic3, att3 := net.nic(t, "nic3")
	if err := d.AttachNIC(t.Context(), id, nic3); err != nil {
		t.Fatalf("a NIC whose back end an earlier attach left: %v", err)
	}
	waitGuest(t, d, id, "the NIC whose back end was left", ifaceOf(att3.MAC.String()), 30*time.Second)
	if err := d.DetachNIC(t.Context(), id, "nic3"); err != nil {
		t.Fatal(err)
	}
	if err := d.AttachDisk(t.Context(), id, qemu.Disk{ID: "layer0", Path: dataDisk}); err != nil {
		t.Fatalf("a disk whose block node an earlier attach left: %v", err)
	}
	if err := d.DetachDisk(t.Context(), id, "layer0"); err != nil {
		t.Fatal(err)
	}

	// A read-only disk: its file is readable, writes are refused.
	start = time.Now()
	if err := d.AttachDisk(t.Context(), id, qemu.Disk{ID: "layer1", Path: dataDisk}); err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(waitGuest(t, d, id, "the disk in the guest",
		`for s in /sys/block/vd*/serial; do if [ "$(cat $s)" = layer1 ]; then basename $(dirname $s); fi; done | grep .`, 30*time.Second))
	t.Logf("disk hot-plug to /dev/%s in the guest: %v", dev, time.Since(start).Round(time.Millisecond))
	if ro := strings.TrimSpace(guestSh(t, d, id, "cat /sys/block/"+dev+"/ro")); ro != "1" {
		t.Fatalf("/sys/block/%s/ro = %q, want 1", dev, ro)
	}
	if got := guestSh(t, d, id, "mount -o ro /dev/"+dev+" /mnt && cat /mnt/known.txt && umount /mnt"); got != "read-only layer\n" {
		t.Fatalf("the disk's file reads %q", got)
	}

	// Errors name the VM and the device.
	err := d.AttachDisk(t.Context(), id, qemu.Disk{ID: "layer1", Path: dataDisk})
	if !errors.Is(err, qemu.ErrDeviceExists) || !strings.Contains(err.Error(), `"node1"`) || !strings.Contains(err.Error(), `"layer1"`) {
		t.Fatalf("a second disk layer1: %v", err)
	}
	if err := d.DetachNIC(t.Context(), id, "layer1"); !errors.Is(err, qemu.ErrNoDevice) {
		t.Fatalf("DetachNIC of a disk: %v", err)
	}
	// QEMU refuses a raw file read as qcow2: the attach fails and leaves no record.
	err = d.AttachDisk(t.Context(), id, qemu.Disk{ID: "notqcow", Path: dataDisk, Format: "qcow2"})
	if err == nil || !strings.Contains(err.Error(), `node VM "node1": attach disk "notqcow"`) {
		t.Fatalf("a raw disk given as qcow2: %v", err)
	}
	if devs, err := d.NodeDevices(id); err != nil || len(devs) != 1 || devs[0].ID != "layer1" {
		t.Fatalf("devices after a failed attach: %+v, %v", devs, err)
	}

	// A second NIC, then a new driver value detaches both devices.
	nic2, att2 := net.nic(t, "nic2")
	if err := d.AttachNIC(t.Context(), id, nic2); err != nil {
		t.Fatal(err)
	}
	waitGuest(t, d, id, "the second NIC in the guest", ifaceOf(att2.MAC.String()), 30*time.Second)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := newDriver()
	devs, err := d2.NodeDevices(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[0].ID != "layer1" || devs[1].ID != "nic2" || devs[1].MAC != att2.MAC.String() {
		t.Fatalf("the new driver sees devices %+v, want layer1 and nic2", devs)
	}
	start = time.Now()
	if err := d2.DetachDisk(t.Context(), id, "layer1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("disk hot-unplug: %v", time.Since(start).Round(time.Millisecond))
	if err := d2.DetachNIC(t.Context(), id, "nic2"); err != nil {
		t.Fatal(err)
	}
	out := guestSh(t, d2, id, "cat /sys/class/net/*/address; ls /sys/block")
	if strings.Contains(out, att2.MAC.String()) || strings.Contains(out, dev) {
		t.Fatalf("devices still in the guest after the new driver detached them: %s", out)
	}
	if devs, err := d2.NodeDevices(id); err != nil || len(devs) != 0 {
		t.Fatalf("devices after detaching all: %+v, %v", devs, err)
	}

	// Every root port full: the next device is refused, naming the VM.
	start = time.Now()
	for i := range qemu.NodePorts {
		if err := d2.AttachDisk(t.Context(), id, qemu.Disk{ID: fmt.Sprintf("l%d", i), Path: dataDisk}); err != nil {
			t.Fatalf("disk %d of %d: %v", i+1, qemu.NodePorts, err)
		}
	}
	t.Logf("%d disks plugged in %v", qemu.NodePorts, time.Since(start).Round(time.Millisecond))
	waitGuest(t, d2, id, "every disk in the guest", fmt.Sprintf("test $(ls -d /sys/block/vd* | grep -c .) = %d", qemu.NodePorts+1), time.Minute)
	err = d2.AttachDisk(t.Context(), id, qemu.Disk{ID: "onemore", Path: dataDisk})
	if !errors.Is(err, qemu.ErrNoFreePort) || !strings.Contains(err.Error(), `node VM "node1"`) {
		t.Fatalf("a disk beyond %d ports: %v", qemu.NodePorts, err)
	}
	if err := d2.DetachDisk(t.Context(), id, "l7"); err != nil {
		t.Fatal(err)
	}
	if err := d2.AttachDisk(t.Context(), id, qemu.Disk{ID: "onemore", Path: dataDisk}); err != nil {
		t.Fatalf("a disk into the port l7 left: %v", err)
	}

	if err := d2.Stop(t.Context(), id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, err := d2.Status(t.Context(), id); err != nil || st.State != runtime.StateExited {
		t.Fatalf("after stop: %+v, %v", st, err)
	}
}

// TestNodeVMBadInput: a node VM's or device's bad input is refused before
// anything starts, naming the VM, the device and what to give instead.
func TestNodeVMBadInput(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	d := newVMDriver(t, filepath.Join(dir, "state"))
	initrd := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(initrd, []byte("not booted"), 0o600); err != nil {
		t.Fatal(err)
	}
	tap, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"bad VM ID", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "Node_1", Initrd: initrd})
			return err
		}(),
			[]string{`"Node_1"`, "lower-case letters"}},
		{"relative initrd", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "n1", Initrd: "initrd.img"})
			return err
		}(),
			[]string{`node VM "n1"`, "initrd", "not an absolute path"}},
		{"root disk format", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "n1", Initrd: initrd, RootDisk: initrd, RootDiskFormat: "vmdk"})
			return err
		}(), []string{`node VM "n1"`, `"vmdk"`, "raw or qcow2"}},
		{"boot disk ID", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "n1", Initrd: initrd, Disks: []qemu.Disk{{ID: "tools", Path: initrd}, {ID: "Tools_2", Path: initrd}}})
			return err
		}(), []string{`node VM "n1"`, "disks[1]", `"Tools_2"`, "lower-case letters"}},
		{"boot disk format", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "n1", Initrd: initrd, Disks: []qemu.Disk{{ID: "tools", Path: initrd, Format: "vmdk"}}})
			return err
		}(), []string{`node VM "n1"`, `disks[0] "tools"`, `"vmdk"`, "raw or qcow2"}},
		{"missing boot disk", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "n1", Initrd: initrd, Disks: []qemu.Disk{{ID: "tools", Path: filepath.Join(dir, "none")}}})
			return err
		}(), []string{`node VM "n1"`, `disks[0] "tools"`, "no such file"}},
		{"too many ports", func() error {
			_, err := d.StartNode(t.Context(), qemu.NodeSpec{ID: "n1", Initrd: initrd, Ports: qemu.MaxNodePorts + 1})
			return err
		}(), []string{`node VM "n1"`, "65 hot-plug ports", "give 1 to 64"}},
		{"NIC without MAC", d.AttachNIC(t.Context(), "n1", qemu.NIC{ID: "nic1", Tap: tap}), []string{`node VM "n1"`, `NIC "nic1"`, "6-byte"}},
		{"long device ID", d.AttachDisk(t.Context(), "n1", qemu.Disk{ID: "a-device-id-of-21-chr", Path: initrd}), []string{`node VM "n1"`, "at most 20"}},
		{"disk format", d.AttachDisk(t.Context(), "n1", qemu.Disk{ID: "d1", Path: initrd, Format: "vhd"}), []string{`disk "d1"`, "raw or qcow2"}},
		{"missing disk", d.AttachDisk(t.Context(), "n1", qemu.Disk{ID: "d1", Path: filepath.Join(dir, "none")}), []string{`disk "d1"`, "no such file"}},
		{"no such VM", d.AttachDisk(t.Context(), "n1", qemu.Disk{ID: "d1", Path: initrd}), []string{`"n1"`, "not found"}},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%s: %v; want it to say %q", tc.name, tc.err, w)
			}
		}
	}
}

// qmp sends each command to the QEMU monitor at sock, as another client
// would, and fails the test on an error reply.
func qmp(t *testing.T, sock string, commands ...string) {
	t.Helper()
	conn, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	dec := json.NewDecoder(conn)
	var msg map[string]json.RawMessage
	if err := dec.Decode(&msg); err != nil { // the greeting
		t.Fatal(err)
	}
	for _, c := range append([]string{`{"execute": "qmp_capabilities"}`}, commands...) {
		if _, err := conn.Write([]byte(c + "\n")); err != nil {
			t.Fatal(err)
		}
		for {
			msg = nil
			if err := dec.Decode(&msg); err != nil {
				t.Fatalf("QMP %s: %v", c, err)
			}
			if _, ev := msg["event"]; !ev {
				break
			}
		}
		if e, bad := msg["error"]; bad {
			t.Fatalf("QMP %s: %s", c, e)
		}
	}
}
