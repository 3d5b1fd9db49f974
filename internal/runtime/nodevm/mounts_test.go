package nodevm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// TestMounts: containers in a node VM get their host directories through
// the node VM's virtiofs share. A write in a read-write mount lands in the
// host directory, a read-only mount refuses writes (in the container, and
// on the host side of the share for the guest's root too), a host file is
// mounted as a file, two containers
// of one node VM see only their own directories, a new Driver value keeps
// them working, a Start replaces binds a half-done one left, Remove leaves no mount of the instance on the host, and
// the node VM's removal leaves no virtiofsd, socket, mount or directory.
func TestMounts(t *testing.T) {
	s := needNodeVMs(t)
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: sharing host directories with virtiofs needs root")
	}
	if _, err := os.Stat(qemu.DefaultVirtiofsd); err != nil {
		testenv.Skipf(t, "skipping: no %s (qemu-system-common): %v", qemu.DefaultVirtiofsd, err)
	}
	s.removeNodeVMs(t)
	const grace = 5 * time.Second
	d := s.placementDriver(t, grace)
	if !d.Capabilities().Mounts {
		t.Fatal("Capabilities().Mounts is false on a root host with virtiofsd")
	}
	host := t.TempDir()
	volA, volB, conf := filepath.Join(host, "vol-a"), filepath.Join(host, "vol-b"), filepath.Join(host, "conf")
	for _, dir := range []string{volA, volB, conf} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(volB, "b.txt"), "only b\n")
	write(filepath.Join(conf, "app.conf"), "listen 8080\n")

	start := func(d *nodevm.Driver, id string, mounts []runtime.Mount) runtime.Status {
		t.Helper()
		t.Cleanup(func() {
			_ = d.Stop(context.Background(), id, 0)
			_ = d.Remove(context.Background(), id)
		})
		st, err := d.Start(t.Context(), runtime.InstanceSpec{
			ID: id, Workload: id, Tier: v1alpha1.TierContainer, Image: s.image, Command: script.Serve(600),
			CPUMilli: 100, MemoryBytes: 64 << 20, Mounts: mounts,
		})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return st
	}
	sh := func(d *nodevm.Driver, id, script string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		code, err := d.Exec(t.Context(), id, []string{"sh", "-c", script}, nil, &out, &out)
		if err != nil {
			t.Fatalf("exec in %s: %v", id, err)
		}
		return strings.TrimSpace(out.String()), code
	}

	a := start(d, "va", []runtime.Mount{
		{HostPath: volA, Path: "/data"}, {HostPath: conf, Path: "/etc/app", ReadOnly: true},
		{HostPath: filepath.Join(conf, "app.conf"), Path: "/etc/app.conf", ReadOnly: true}, // a file
	})
	b := start(d, "vb", []runtime.Mount{{HostPath: volB, Path: "/data"}})
	if a.PID != b.PID {
		t.Fatalf("va in QEMU %d, vb in %d: want one node VM", a.PID, b.PID)
	}
	vm := nodevm.VMID(nodevm.DefaultClass)

	// A write in the container lands in the host directory, and the host's
	// writes reach the container.
	if out, code := sh(d, "va", "echo from-guest > /data/a.txt && cat /etc/app/app.conf /etc/app.conf"); code != 0 || out != "listen 8080\nlisten 8080" {
		t.Errorf("va: write /data/a.txt and read /etc/app/app.conf and the file /etc/app.conf: exit %d: %q", code, out)
	}
	if got, err := os.ReadFile(filepath.Join(volA, "a.txt")); err != nil || string(got) != "from-guest\n" {
		t.Errorf("host's %s/a.txt: %q, %v; want from-guest", volA, got, err)
	}
	write(filepath.Join(volA, "late.txt"), "from-host\n")
	if out, code := sh(d, "va", "cat /data/late.txt"); code != 0 || out != "from-host" {
		t.Errorf("va: a file the host wrote after the start: exit %d: %q", code, out)
	}

	// A read-only mount refuses writes in the container, and its bind in
	// the share is read-only on the host too: the guest's own root, which
	// could remount its side, gets no write through virtiofsd either.
	share := filepath.Join(s.state, "shares", vm)
	if out, code := sh(d, "va", "echo x > /etc/app/new.txt"); code == 0 {
		t.Errorf("va: a write to the read-only mount succeeded: %q", out)
	}
	if err := os.WriteFile(filepath.Join(share, "va", "1", "new.txt"), nil, 0o600); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write to the read-only mount's bind in the share: %v, want read-only file system", err)
	}
	if _, err := os.Stat(filepath.Join(conf, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("a write to the read-only mount reached the host: %v", err)
	}

	// Two containers of one node VM see their own directories only.
	if out, code := sh(d, "vb", "ls /data; cat /data/b.txt"); code != 0 || out != "b.txt\nonly b" {
		t.Errorf("vb: /data holds %q (exit %d), want b.txt alone", out, code)
	}
	if out, code := sh(d, "vb", "ls /etc/app 2>&1; ls /run/strata 2>&1"); code == 0 {
		t.Errorf("vb sees va's mounts or the share: %q", out)
	}

	// A new Driver value (a restarted daemon) keeps the mounts working.
	_ = d.Close()
	d = s.placementDriver(t, grace)
	if out, code := sh(d, "vb", "echo again > /data/again.txt && cat /data/b.txt"); code != 0 || out != "only b" {
		t.Errorf("vb after a new driver value: exit %d: %q", code, out)
	}
	if got, err := os.ReadFile(filepath.Join(volB, "again.txt")); err != nil || string(got) != "again\n" {
		t.Errorf("host's %s/again.txt: %q, %v", volB, got, err)
	}

	// Binds that a Start ended half-way left under an instance's ID (no
	// record names them) give way to the next Start of that ID.
	stale := filepath.Join(share, "vc", "0")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(volA, stale, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	start(d, "vc", []runtime.Mount{{HostPath: volB, Path: "/data"}})
	if out, code := sh(d, "vc", "ls /data"); code != 0 || strings.Contains(out, "a.txt") || !strings.Contains(out, "b.txt") {
		t.Errorf("vc, started over a stale bind of vol-a: /data holds %q (exit %d), want vol-b's", out, code)
	}

	// Remove leaves no mount of the instance; the data stays.
	for _, id := range []string{"va", "vb", "vc"} {
		if err := d.Stop(t.Context(), id, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if m := mountsBelow(t, filepath.Join(share, id)); len(m) > 0 {
			t.Errorf("after removing %s: still mounted: %q", id, m)
		}
		if _, err := os.Lstat(filepath.Join(share, id)); !os.IsNotExist(err) {
			t.Errorf("after removing %s: its directory in the share is left: %v", id, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(volA, "a.txt")); err != nil || string(got) != "from-guest\n" {
		t.Errorf("host's %s/a.txt after Remove: %q, %v", volA, got, err)
	}
	if virtiofsds(share) == 0 {
		t.Errorf("no virtiofsd serves %s while its node VM runs", share)
	}

	// The empty node VM goes after the grace, and its share with it.
	deadline := time.Now().Add(grace + 2*time.Minute)
	for {
		if _, err := s.q.Status(t.Context(), vm); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node VM %s still there %v after its last instance went", vm, grace+2*time.Minute)
		}
		time.Sleep(time.Second)
	}
	if m := mountsBelow(t, share); len(m) > 0 {
		t.Errorf("after the node VM's removal: still mounted: %q", m)
	}
	if _, err := os.Lstat(share); !os.IsNotExist(err) {
		t.Errorf("after the node VM's removal: its share %s is left: %v", share, err)
	}
	gone := time.Now().Add(10 * time.Second)
	for virtiofsds(share) > 0 && time.Now().Before(gone) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := virtiofsds(share); n > 0 {
		t.Errorf("after the node VM's removal: %d virtiofsd processes left", n)
	}
	if socks, _ := filepath.Glob(filepath.Join(s.qemu, vm, "fs-*.sock")); len(socks) > 0 {
		t.Errorf("after the node VM's removal: sockets left: %q", socks)
	}
}

// mountsBelow lists the host's mount points at or below dir.
func mountsBelow(t testing.TB, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// virtiofsds counts the processes whose command line shares dir.
func virtiofsds(dir string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("source="+dir+"\x00")) {
			if st, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat")); err == nil && !bytes.Contains(st, []byte(") Z ")) {
				n++
			}
		}
	}
	return n
}
