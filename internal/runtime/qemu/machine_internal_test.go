package qemu

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// TestTCGCacheSize: under TCG the accelerator argument sizes the translated-code
// cache as configured (default DefaultTCGCacheMiB); under KVM there is none; a
// negative size is refused.
func TestTCGCacheSize(t *testing.T) {
	accelArg := func(d *Driver) string {
		args := d.machine(runtime.InstanceSpec{ID: "a", MemoryBytes: 128 * mib}, "microvm")
		i := slices.Index(args, "-accel")
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("no -accel in %v", args)
		}
		return args[i+1]
	}
	for _, tc := range []struct {
		cfg  int
		want string
	}{{0, "tcg,tb-size=16"}, {64, "tcg,tb-size=64"}} {
		d, err := New(t.Context(), Config{StateDir: t.TempDir(), QEMU: "/bin/true", QEMUImg: "/bin/true", Accel: AccelTCG, TCGCacheMiB: tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		if got := accelArg(d); got != tc.want {
			t.Errorf("TCGCacheMiB %d: -accel %q, want %q", tc.cfg, got, tc.want)
		}
		_ = d.Close()
	}
	if got := accelArg(&Driver{accel: accelKVM, cfg: Config{TCGCacheMiB: 16}}); got != "kvm" {
		t.Errorf("under KVM: -accel %q, want kvm", got)
	}
	_, err := New(t.Context(), Config{StateDir: t.TempDir(), QEMU: "/bin/true", QEMUImg: "/bin/true", Accel: AccelTCG, TCGCacheMiB: -1})
	if err == nil || !strings.Contains(err.Error(), "-1 MiB") {
		t.Errorf("TCGCacheMiB -1: %v, want an error naming the size", err)
	}
}

// TestImagePorts: an image VM's virtio-serial device has room for its ports and no
// more (each possible port costs the guest a pair of 1024-entry queues over
// virtio-mmio), and the ports are the agent's and the exit report's, with the
// same chardev arguments as before.
func TestImagePorts(t *testing.T) {
	d := &Driver{cfg: Config{StateDir: "/state"}}
	args := d.agentPorts("vm1", "virtio-serial-device")
	want := []string{
		"-device", "virtio-serial-device,max_ports=3",
		"-chardev", "socket,id=agent,path=" + d.path("vm1", agentSocket) + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + guest.AgentPort,
		"-chardev", "file,id=exit,path=" + d.path("vm1", exitFile),
		"-device", "virtserialport,chardev=exit,name=" + guest.ExitPort,
	}
	if !slices.Equal(args, want) {
		t.Errorf("image VM ports:\n got %q\nwant %q", args, want)
	}
	ports := 0
	for _, a := range args {
		if strings.HasPrefix(a, "virtserialport,") {
			ports++
		}
	}
	if wantMax := "max_ports=" + strconv.Itoa(ports+1); !strings.Contains(args[1], wantMax) {
		t.Errorf("virtio-serial device %q: want %s (port 0, the console's, and %d ports)", args[1], wantMax, ports)
	}
}

// TestNodePorts: a node VM's virtio-serial device, on PCI, has room for
// the agent's and the exit report's ports and no more (QEMU's default of 31
// ports gives the guest a queue pair and an interrupt vector for each).
func TestNodePorts(t *testing.T) {
	d := &Driver{accel: accelTCG, cfg: Config{TCGCacheMiB: 16, StateDir: "/state"}}
	args := d.nodeArgs(runtime.InstanceSpec{ID: "n"}, guest.Kernel{Vmlinuz: "/k/vmlinuz"}, NodeSpec{ID: "n"}, "raw")
	var serial []string
	ports := 0
	for i := 1; i < len(args); i++ {
		if args[i-1] != "-device" {
			continue
		}
		if strings.HasPrefix(args[i], "virtio-serial") {
			serial = append(serial, args[i])
		}
		if strings.HasPrefix(args[i], "virtserialport,") {
			ports++
		}
	}
	if want := []string{"virtio-serial-pci,max_ports=3"}; !slices.Equal(serial, want) || ports != 2 {
		t.Errorf("node VM serial devices %q and %d ports in %q: want %q and 2 ports", serial, ports, args, want)
	}
}

// TestNodeSharedMemory: a node VM booted with SharedMemory has its RAM in a
// shared memfd of its size, the machine's memory backend; without it, none.
func TestNodeSharedMemory(t *testing.T) {
	d := &Driver{accel: accelTCG, cfg: Config{TCGCacheMiB: 16, StateDir: "/state"}}
	inst := runtime.InstanceSpec{ID: "n", MemoryBytes: 1 << 30}
	k := guest.Kernel{Vmlinuz: "/k/vmlinuz"}
	args := d.nodeArgs(inst, k, NodeSpec{ID: "n", SharedMemory: true}, "raw")
	if i := slices.Index(args, "-machine"); i < 0 || args[i+1] != "q35,memory-backend=mem" {
		t.Errorf("-machine in %q: want q35,memory-backend=mem", args)
	}
	if i := slices.Index(args, "-object"); i < 0 || args[i+1] != "memory-backend-memfd,id=mem,size=1024M,share=on" {
		t.Errorf("-object in %q: want a shared memfd of 1024M", args)
	}
	args = d.nodeArgs(inst, k, NodeSpec{ID: "n"}, "raw")
	if i := slices.Index(args, "-machine"); i < 0 || args[i+1] != "q35" || slices.Contains(args, "-object") {
		t.Errorf("without SharedMemory: %q", args)
	}
}

// TestAttachFSBadInput: a shared directory's bad ID or path is refused,
// naming the VM and what is wrong, before anything starts.
func TestAttachFSBadInput(t *testing.T) {
	d, err := New(t.Context(), Config{StateDir: t.TempDir(), QEMU: "/bin/true", QEMUImg: "/bin/true", Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		fs   FS
		want string
	}{
		{FS{ID: "Shares!", Dir: "/srv"}, `device ID "Shares!"`},
		{FS{ID: "shares", Dir: "srv"}, `shared directory "srv": not an absolute path`},
		{FS{ID: "shares", Dir: "/nonexistent/strata"}, "no such file or directory"},
		{FS{ID: "shares", Dir: file}, "is not a directory"},
		{FS{ID: "shares", Dir: t.TempDir()}, `instance "n1"`}, // no such VM
	} {
		err := d.AttachFS(t.Context(), "n1", tc.fs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AttachFS(%+v) = %v, want an error containing %q", tc.fs, err, tc.want)
		}
	}
}
