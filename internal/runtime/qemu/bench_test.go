package qemu_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// BenchmarkSaveRestore boots one image VM (a 256 MiB guest) and then saves its whole state and restores it, each
// iteration: save-ms is SaveState (pause, start the disk backup job, write memory and devices,
// resume, wait for the disk copy); restore-ms is RestoreState (replace QEMU,
// load the state, resume).
func BenchmarkSaveRestore(b *testing.B) {
	e := needImageVMs(b)
	dir := b.TempDir()
	d := e.driver(b, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "bench", Workload: "bench", Tier: v1alpha1.TierVM, Image: e.image, MemoryBytes: 256 << 20,
		Command: []string{"sh", "-c", "i=0; while true; do i=$((i+1)); sleep 1; done"},
		LogPath: filepath.Join(dir, "bench.log"),
	}
	removeAll(b, d, spec.ID)
	if _, err := d.Start(b.Context(), spec); err != nil {
		b.Fatal(err)
	}
	time.Sleep(3 * time.Second) // booted
	var save, restore time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		s, err := d.SaveState(b.Context(), spec.ID, filepath.Join(dir, "saved-"+strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		save += time.Since(t0)
		t0 = time.Now()
		if err := d.RestoreState(b.Context(), spec.ID, s); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(t0)
	}
	b.ReportMetric(float64(save)/float64(time.Millisecond)/float64(b.N), "save-ms/op")
	b.ReportMetric(float64(restore)/float64(time.Millisecond)/float64(b.N), "restore-ms/op")
}

// BenchmarkNodeVM boots a node VM (256 MiB, one CPU) each iteration and plugs and
// unplugs a NIC on a guarded tap and a read-only disk: boot-ms is StartNode until
// the guest agent answers; nic-plug-ms and disk-plug-ms run from the attach call
// until the guest lists the device; the unplug times are the detach calls (which
// wait until QEMU reports the device gone). The sub-benchmarks compare 32 root
// ports (the default) with 8, and the kernel command line as NodeCmdline is
// with the TSC frequency a microvm needs under TCG added.
func BenchmarkNodeVM(b *testing.B) {
	khz, err := guest.TSCKHz()
	if err != nil {
		b.Skip(err)
	}
	for _, bc := range []struct {
		name    string
		ports   int
		cmdline string
	}{
		// No '=' in names: the test's temporary directory carries it, and QEMU's
		// option syntax cannot.
		{"ports32", 0, ""},
		{"ports32-tsc", 0, fmt.Sprintf("tsc_early_khz=%d tsc=reliable", khz)},
		{"ports8", 8, ""},
	} {
		b.Run(bc.name, func(b *testing.B) { benchNodeVM(b, bc.ports, bc.cmdline) })
	}
}

func benchNodeVM(b *testing.B, ports int, cmdline string) {
	needQEMU(b)
	k := guestKernel(b)
	if guestInit == "" {
		b.Fatal(noGuestInit)
	}
	if os.Geteuid() != 0 {
		b.Skip("skipping: needs root (taps, bridges and network namespaces)")
	}
	dir := b.TempDir()
	rootDisk, initrd, dataDisk := filepath.Join(dir, "root.ext4"), filepath.Join(dir, "initrd.img"), filepath.Join(dir, "data.ext4")
	busyboxRoot(b, rootDisk)
	nodeInitrd(b, k, initrd)
	if err := guest.MakeRootDisk(b.Context(), b.TempDir(), dataDisk, 8<<20); err != nil {
		b.Fatal(err)
	}
	net := newNodeNet(b)
	nic, att := net.nic(b, "nic1")
	d, err := qemu.New(b.Context(), qemu.Config{StateDir: filepath.Join(dir, "state"), GuestInit: guestInit, KernelDir: kernelDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	var boot, nicPlug, nicUnplug, diskPlug, diskUnplug time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := "bench" + strconv.Itoa(i)
		removeAll(b, d, id)
		t0 := time.Now()
		if _, err := d.StartNode(b.Context(), qemu.NodeSpec{ID: id, MemoryBytes: 256 << 20, Initrd: initrd, RootDisk: rootDisk, Ports: ports, Cmdline: cmdline}); err != nil {
			b.Fatal(err)
		}
		waitGuest(b, d, id, "the guest agent", "true", 2*time.Minute)
		boot += time.Since(t0)

		t0 = time.Now()
		if err := d.AttachNIC(b.Context(), id, nic); err != nil {
			b.Fatal(err)
		}
		waitGuest(b, d, id, "the NIC", ifaceOf(att.MAC.String()), 30*time.Second)
		nicPlug += time.Since(t0)
		t0 = time.Now()
		if err := d.DetachNIC(b.Context(), id, nic.ID); err != nil {
			b.Fatal(err)
		}
		nicUnplug += time.Since(t0)

		t0 = time.Now()
		if err := d.AttachDisk(b.Context(), id, qemu.Disk{ID: "data", Path: dataDisk}); err != nil {
			b.Fatal(err)
		}
		waitGuest(b, d, id, "the disk", "grep -qx data /sys/block/vd*/serial", 30*time.Second)
		diskPlug += time.Since(t0)
		t0 = time.Now()
		if err := d.DetachDisk(b.Context(), id, "data"); err != nil {
			b.Fatal(err)
		}
		diskUnplug += time.Since(t0)
		b.StopTimer()
		if err := d.Stop(b.Context(), id, 0); err != nil {
			b.Fatal(err)
		}
		if err := d.Remove(b.Context(), id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	ms := func(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(boot), "boot-ms/op")
	b.ReportMetric(ms(nicPlug), "nic-plug-ms/op")
	b.ReportMetric(ms(nicUnplug), "nic-unplug-ms/op")
	b.ReportMetric(ms(diskPlug), "disk-plug-ms/op")
	b.ReportMetric(ms(diskUnplug), "disk-unplug-ms/op")
}
