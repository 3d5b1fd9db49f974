package initproc

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

func TestOCISpec(t *testing.T) {
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001:web:/srv:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := guest.ContainerSpec{
		Image: "/dev/vdb", Args: []string{"httpd", "-f"}, Env: []string{"PORT=80"},
		User: "web", WorkingDir: "/srv", MemoryBytes: 128 << 20, MilliCPU: 500, Pids: 100,
	}
	s, err := ociSpec("web-1", spec, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 1000 || s.Process.User.GID != 1001 {
		t.Errorf("user = %+v, want 1000:1001 from the image's /etc/passwd", s.Process.User)
	}
	if s.Process.Cwd != "/srv" || s.Hostname != "web-1" || !slices.Equal(s.Process.Args, spec.Args) {
		t.Errorf("process = %+v, hostname %q", s.Process, s.Hostname)
	}
	for _, kv := range []string{"PORT=80", "HOSTNAME=web-1", "PATH=" + DefaultPath} {
		if !slices.Contains(s.Process.Env, kv) {
			t.Errorf("env %q lacks %s", s.Process.Env, kv)
		}
	}
	r := s.Linux.Resources
	if s.Linux.CgroupsPath != "/strata/web-1/ctr" || r == nil || *r.Memory.Limit != 128<<20 || r.Pids.Limit != 100 {
		t.Errorf("cgroups path %q, resources %+v", s.Linux.CgroupsPath, r)
	}
	// The CPU limit comes once the process runs (limitCPU): runc's init
	// runs in the container's cgroup and must not be throttled by it.
	if r != nil && r.CPU != nil {
		t.Errorf("CPU resources at create %+v; want none", *r.CPU)
	}
	if got := cpuMax(500); got != "50000 100000" {
		t.Errorf("cpu.max for 500m: %q, want \"50000 100000\"", got)
	}
	if got := cpuMax(25); got != "2500 100000" {
		t.Errorf("cpu.max for 25m: %q, want \"2500 100000\"", got)
	}

	if ns := s.Linux.Namespaces[4]; ns.Type != "network" || ns.Path != "" || slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/etc/resolv.conf" }) {
		t.Errorf("without a network: namespace %+v, mounts %+v; want a new network namespace and the image's resolv.conf", ns, s.Mounts)
	}
	if caps := s.Process.Capabilities.Bounding; slices.Contains(caps, "CAP_NET_ADMIN") || !slices.Contains(caps, "CAP_CHOWN") {
		t.Errorf("default capabilities %q: want a runtime's usual set", caps)
	}

	// A container with a network joins the namespace its NIC is in and
	// reads its segment's name servers; its capabilities are those given.
	spec.Net = &guest.ContainerNet{MAC: "02:00:0a:58:00:05", NetConfig: guest.NetConfig{Address: netip.MustParsePrefix("10.88.0.5/24")}}
	spec.Capabilities = []string{"CAP_NET_ADMIN", "CAP_CHOWN", "CAP_NET_ADMIN"}
	s, err = ociSpec("web-1", spec, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if ns := s.Linux.Namespaces[4]; ns.Type != "network" || ns.Path != "/run/strata/netns/web-1" {
		t.Errorf("network namespace %+v, want the one at /run/strata/netns/web-1", ns)
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool {
		return m.Destination == "/etc/resolv.conf" && m.Source == filepath.Join(filepath.Dir(rootfs), "resolv.conf") && slices.Contains(m.Options, "ro")
	}) {
		t.Errorf("mounts %+v: no read-only resolv.conf from the bundle", s.Mounts)
	}
	for _, set := range [][]string{s.Process.Capabilities.Bounding, s.Process.Capabilities.Effective, s.Process.Capabilities.Permitted} {
		if !slices.Equal(set, []string{"CAP_CHOWN", "CAP_NET_ADMIN"}) {
			t.Errorf("capabilities %q: want CAP_CHOWN and CAP_NET_ADMIN alone", set)
		}
	}
	spec.Net, spec.Capabilities = nil, nil

	// Shared directories are bind mounts from the share's mount, read-only
	// where the host says so.
	spec.Mounts = []guest.ContainerMount{{Tag: "vols", Source: "web-1/0", Path: "/data"}, {Tag: "vols", Source: "web-1/1", Path: "/conf", ReadOnly: true}}
	s, err = ociSpec("web-1", spec, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ src, dst, mode string }{{"/run/strata/shares/vols/web-1/0", "/data", "rw"}, {"/run/strata/shares/vols/web-1/1", "/conf", "ro"}} {
		if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool {
			return m.Destination == want.dst && m.Source == want.src && m.Type == "bind" && slices.Contains(m.Options, want.mode) && !slices.Contains(m.Options, map[string]string{"rw": "ro", "ro": "rw"}[want.mode])
		}) {
			t.Errorf("mounts %+v: no %s bind of %s on %s", s.Mounts, want.mode, want.src, want.dst)
		}
	}
	spec.Mounts = nil

	spec.Runtime = guest.RuntimeRunsc
	s, err = ociSpec("sbx", spec, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	// runsc puts the whole sandbox into the container's cgroup, under its limits.
	if r := s.Linux.Resources; s.Linux.CgroupsPath != "/strata/sbx/ctr" || r == nil || r.Memory == nil || *r.Memory.Limit != 128<<20 || r.CPU != nil {
		t.Errorf("runsc: cgroups path %q, resources %+v; want /strata/sbx/ctr, a memory limit of 128 MiB and no CPU limit (set after start)", s.Linux.CgroupsPath, r)
	}
	spec.User = "nobody"
	if _, err := ociSpec("sbx", spec, rootfs); err == nil {
		t.Error("a user the image does not have is accepted")
	}
}

func TestReadLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log")
	if b, next, err := readLog(file, 0); err != nil || len(b) != 0 || next != 0 {
		t.Errorf("a log not written yet: %q, %d, %v", b, next, err)
	}
	if err := os.WriteFile(file, []byte("one\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, next, err := readLog(file, 4)
	if err != nil || string(b) != "two\n" || next != 8 {
		t.Errorf("readLog from 4 = %q, %d, %v", b, next, err)
	}
	if b, next, err = readLog(file, next); err != nil || len(b) != 0 || next != 8 {
		t.Errorf("readLog at the end = %q, %d, %v", b, next, err)
	}
}

// TestWaitImageDevice: an image named by a disk's serial is the virtio disk
// whose /sys/block/vdX/serial holds it; a plain device path is itself; a
// serial no disk has is an error naming it once the wait is over.
func TestWaitImageDevice(t *testing.T) {
	sys := t.TempDir()
	for name, serial := range map[string]string{"vda": "img-0a1b", "vdb": "img-2c3d\n", "vdc": ""} {
		if err := os.MkdirAll(filepath.Join(sys, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, name, "serial"), []byte(serial), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if name, ok := diskBySerial(sys, "img-2c3d"); !ok || name != "vdb" {
		t.Errorf("diskBySerial(img-2c3d) = %q, %v; want vdb", name, ok)
	}
	if name, ok := diskBySerial(sys, "img-0a1b"); !ok || name != "vda" {
		t.Errorf("diskBySerial(img-0a1b) = %q, %v; want vda", name, ok)
	}
	if name, ok := diskBySerial(sys, "img-9999"); ok {
		t.Errorf("diskBySerial(img-9999) = %q, want none", name)
	}
	dev := filepath.Join(t.TempDir(), "vdq")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := waitImageDevice(sys, dev, time.Second); err != nil || got != dev {
		t.Errorf("waitImageDevice(%s) = %q, %v; want the path itself", dev, got, err)
	}
	_, err := waitImageDevice(sys, guest.DiskBySerial+"img-9999", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), guest.DiskBySerial+"img-9999 did not appear") ||
		!strings.HasSuffix(err.Error(), "the guest has disks vda (serial img-0a1b), vdb (serial img-2c3d), vdc (no serial)") {
		t.Errorf("waitImageDevice of an absent serial: %v", err)
	}
	if got := virtioDisks(t.TempDir()); got != "no virtio disk" {
		t.Errorf("virtioDisks of a guest without disks = %q", got)
	}
}

// TestParseOOMKills reads the kernel's memory.events of a cgroup.
func TestParseOOMKills(t *testing.T) {
	for events, want := range map[string]int{
		"low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n": 1,
		"low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n":                    0,
		"oom_group_kill 3\noom_kill 17":                                17,
		"":                                                             0,
	} {
		if got := parseOOMKills(events); got != want {
			t.Errorf("parseOOMKills(%q) = %d, want %d", events, got, want)
		}
	}
}

// TestRemoveCgroup removes a container's cgroup after the ones under it
// (runc's "ctr"), and a cgroup that is gone already.
func TestRemoveCgroup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "strata", "web-0")
	if err := os.MkdirAll(filepath.Join(dir, "ctr", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeCgroup(dir, time.Second); err != nil {
		t.Fatalf("removeCgroup: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cgroup is still there: %v", err)
	}
	if err := removeCgroup(dir, time.Second); err != nil {
		t.Errorf("removeCgroup of a removed cgroup: %v", err)
	}
}

// linkTree links every file of the tools disk at its own path in the root,
// keeps the directories the root has, and leaves lost+found out.
func TestLinkTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	files := map[string]string{"usr/sbin/runc": "runc", "lib/x86_64-linux-gnu/libc.so.6": "libc", "lib64/ld-linux-x86-64.so.2": "ld"}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dst, "usr", "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := linkTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		p := filepath.Join(dst, name)
		if target, err := os.Readlink(p); err != nil || target != filepath.Join(src, name) {
			t.Errorf("%s links to %q (%v); want %s", name, target, err, filepath.Join(src, name))
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != want {
			t.Errorf("%s reads %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "lost+found")); err == nil {
		t.Error("lost+found was linked")
	}
	// A second tools disk over the same root is an error, not a silent mix.
	if err := linkTree(src, dst); err == nil {
		t.Error("linking over existing links succeeded")
	}
}

// fileState reads the runtime's files: no state file, not created; the
// state file and the exec FIFO, created; the state file alone, running.
// crun's state file is "status", runc's "state.json" (stateFiles).
func TestFileState(t *testing.T) {
	for _, rt := range []string{guest.RuntimeCrun, guest.RuntimeRunc} {
		c := &container{id: "web-1", spec: guest.ContainerSpec{Runtime: rt}}
		dir, file, ok := c.stateFiles()
		if !ok {
			t.Fatalf("%s: no state files", rt)
		}
		if want := map[string]string{guest.RuntimeCrun: "status", guest.RuntimeRunc: "state.json"}[rt]; file != want {
			t.Errorf("%s: state file %q, want %q", rt, file, want)
		}
		// The runtime's directory, moved below the test's own.
		dir = filepath.Join(t.TempDir(), dir)
		check := func(when string, wantCreated, wantRunning bool) {
			t.Helper()
			if created, running := fileState(dir, file); created != wantCreated || running != wantRunning {
				t.Errorf("%s, %s: created %t, running %t; want %t, %t", rt, when, created, running, wantCreated, wantRunning)
			}
		}
		check("no directory", false, false)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(dir, "exec.fifo"), 0o600); err != nil {
			t.Fatal(err)
		}
		check("the FIFO alone", false, false)
		if err := os.WriteFile(filepath.Join(dir, file), []byte(`{"pid":42}`), 0o600); err != nil {
			t.Fatal(err)
		}
		check("state and FIFO", true, false)
		if err := os.Remove(filepath.Join(dir, "exec.fifo")); err != nil {
			t.Fatal(err)
		}
		check("state alone", true, true)
	}
	sbx := &container{id: "sbx-1", spec: guest.ContainerSpec{Runtime: guest.RuntimeRunsc}}
	if _, _, ok := sbx.stateFiles(); ok {
		t.Error("runsc: state files; want its state asked of runsc")
	}
}

// TestMakeCgroup: the container's cgroup is made with its parents before the
// runtime starts, so that runsc, which removes the cgroups it made itself,
// leaves it (and its memory events) to the guest; one that is there is kept.
func TestMakeCgroup(t *testing.T) {
	root := t.TempDir()
	if err := makeCgroup(root, "sbx-0"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "strata", "sbx-0")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("cgroup %s: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.events"), []byte("oom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := makeCgroup(root, "sbx-0"); err != nil {
		t.Fatalf("makeCgroup of one that is there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.events")); err != nil {
		t.Errorf("a second makeCgroup lost what the cgroup held: %v", err)
	}
	if err := makeCgroup(filepath.Join(root, "strata", "sbx-0", "memory.events"), "x"); err == nil {
		t.Error("makeCgroup under a file: no error")
	}
}

// TestRuntimeID: crun knows a container by its ID, runsc by its marked ID
// (guest.RunscID), in every command the guest runs, exec's included, each
// runtime from its own path with its own root.
func TestRuntimeID(t *testing.T) {
	n := newNode(&console{w: io.Discard}, nil)
	n.containers["web-1"] = &container{id: "web-1", state: guest.StateRunning}
	n.containers["sbx-1"] = &container{id: "sbx-1", state: guest.StateRunning, spec: guest.ContainerSpec{Runtime: guest.RuntimeRunsc}}
	for id, want := range map[string]string{"web-1": "web-1", "sbx-1": "sbx-1+"} {
		args, err := n.execArgs(id, []string{"true"}, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := args[len(args)-2]; got != want {
			t.Errorf("exec in %s: %q names the container %q, want %q", id, args, got, want)
		}
		wantBin, wantRoot := guest.CrunPath, crunRoot
		if id == "sbx-1" {
			wantBin, wantRoot = guest.RunscPath, runscRoot
		}
		if args[0] != wantBin || args[1] != "--root" || args[2] != wantRoot {
			t.Errorf("exec in %s: %q; want %s --root %s first", id, args, wantBin, wantRoot)
		}
	}
}

// TestLimitCPUEnding: a container that ends as its CPU limit is set (its
// runtime said it runs, then removed its cgroup as it ended, before its run
// returned) is no error: limitCPU waits for the end it finds coming.
func TestLimitCPUEnding(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: the runtime's state directory is under /run, which needs root")
	}
	n := newNode(&console{w: io.Discard}, nil)
	c := &container{
		id:    "strata-limitcpu-test-" + strconv.Itoa(os.Getpid()),
		spec:  guest.ContainerSpec{MilliCPU: 500},
		state: guest.StateRunning, done: make(chan struct{}),
	}
	n.containers[c.id] = c
	// crun's state: created and running (a status file, no exec FIFO).
	dir, file, _ := c.stateFiles()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, file), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, containerCgroup(c.id))); err == nil {
		t.Fatalf("%s exists", containerCgroup(c.id))
	}
	// The run returns a moment after the cgroup went.
	go func() {
		time.Sleep(300 * time.Millisecond)
		n.mu.Lock()
		c.state = guest.StateExited
		n.mu.Unlock()
		close(c.done)
	}()
	if err := n.limitCPU(c); err != nil {
		t.Fatalf("limitCPU of a container that ends: %v", err)
	}
}
