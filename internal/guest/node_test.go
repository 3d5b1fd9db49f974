package guest

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/internal/testenv"
)

func TestNodeRequestValidate(t *testing.T) {
	ok := ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}}
	netOK := ContainerNet{MAC: "02:00:0a:58:00:05", NetConfig: NetConfig{
		Address: netip.MustParsePrefix("10.88.0.5/24"), Gateway: netip.MustParseAddr("10.88.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.88.0.1")},
	}}
	for _, tc := range []struct {
		name string
		req  NodeRequest
		want string // "" is valid
	}{
		{"create", NodeRequest{Op: NodeCreate, ID: "web-1", Container: &ok}, ""},
		{"stop", NodeRequest{Op: NodeStop, ID: "web-1", Signal: 15, GraceSeconds: 3}, ""},
		{"stats", NodeRequest{Op: NodeStats, ID: "web-1"}, ""},
		{"pause", NodeRequest{Op: NodePause, ID: "web-1"}, ""},
		{"resume", NodeRequest{Op: NodeResume, ID: "web-1"}, ""},
		{"rootfs", NodeRequest{Op: NodeRootfs, ID: "web-1"}, ""},
		{"layer", NodeRequest{Op: NodeLayer, ID: "web-1"}, ""},
		{"unknown op", NodeRequest{Op: "checkpoint", ID: "a"}, `op "checkpoint" is not one of`},
		{"empty id", NodeRequest{Op: NodeStart}, `id ""`},
		{"id with a slash", NodeRequest{Op: NodeStart, ID: "../x"}, `id "../x"`},
		{"create without container", NodeRequest{Op: NodeCreate, ID: "a"}, "create needs container"},
		{"virtiofs image", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "virtiofs:busybox", Args: []string{"sh"}}}, ""},
		{"virtiofs without tag", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "virtiofs:", Args: []string{"sh"}}}, "has no tag"},
		{"image not a device", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "busybox", Args: []string{"sh"}}}, `container.image "busybox"`},
		{"no args", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb"}}, "container.args"},
		{"runtime", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Runtime: "kata"}}, `container.runtime "kata"`},
		{"relative cwd", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, WorkingDir: "srv"}}, `container.workingDir "srv"`},
		{"env", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Env: []string{"A=1", "B"}}}, `container.env[1] "B"`},
		{"negative memory", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, MemoryBytes: -1}}, "cannot be negative"},
		{"signal", NodeRequest{Op: NodeStop, ID: "a", Signal: 99}, "signal 99"},
		{"capabilities", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Capabilities: []string{"CAP_NET_ADMIN", "NET_RAW"}}}, `container.capabilities[1] "NET_RAW"`},
		{"net", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Net: &netOK}}, ""},
		{"net mac", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Net: &ContainerNet{MAC: "02:00", NetConfig: netOK.NetConfig}}}, `container.net.mac "02:00"`},
		{"net address", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Net: &ContainerNet{MAC: netOK.MAC}}}, "container.net.address"},
		{"net search", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Net: &ContainerNet{MAC: netOK.MAC, NetConfig: NetConfig{Address: netOK.Address, Search: []string{"back\noptions debug"}}}}}, "container.net.search[0]"},
		{"net gateway", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Net: &ContainerNet{MAC: netOK.MAC, NetConfig: NetConfig{Address: netOK.Address, Gateway: netip.MustParseAddr("10.9.0.1")}}}}, "container.net.gateway 10.9.0.1 is not in the container's subnet 10.88.0.0/24"},
		{"mounts", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Mounts: []ContainerMount{
			{Tag: "vols", Source: "web-0/0", Path: "/data"}, {Tag: "vols", Source: "web-0/1", Path: "/etc/app.conf", ReadOnly: true, WaitMillis: 30000},
		}}}, ""},
		{"mount tag", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Mounts: []ContainerMount{
			{Tag: "vols", Source: "a", Path: "/a"}, {Tag: "", Source: "b", Path: "/b"},
		}}}, `container.mounts[1].tag ""`},
		{"mount source escapes", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Mounts: []ContainerMount{
			{Tag: "vols", Source: "../other/0", Path: "/data"},
		}}}, `container.mounts[0].source "../other/0"`},
		{"mount source absolute", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Mounts: []ContainerMount{
			{Tag: "vols", Source: "/etc", Path: "/data"},
		}}}, `container.mounts[0].source "/etc"`},
		{"mount source unclean", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Mounts: []ContainerMount{
			{Tag: "vols", Source: "a/../../b", Path: "/data"},
		}}}, `container.mounts[0].source "a/../../b"`},
		{"mount over root", NodeRequest{Op: NodeCreate, ID: "a", Container: &ContainerSpec{Image: "/dev/vdb", Args: []string{"sh"}, Mounts: []ContainerMount{
			{Tag: "vols", Source: "a", Path: "/"},
		}}}, `container.mounts[0].path "/"`},
		{"disk", NodeRequest{Op: NodeDisk, ID: "img-0a1b2c3d4e5f6a7b", WaitMillis: 30000}, ""},
		{"disk wait", NodeRequest{Op: NodeDisk, ID: "img-0a1b", WaitMillis: MaxDiskWait.Milliseconds() + 1}, "waitMillis 600001: give 0 to 600000"},
		{"negative wait", NodeRequest{Op: NodeDisk, ID: "img-0a1b", WaitMillis: -1}, "waitMillis -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A node request on the wire comes back whole from ReadRequest, and a bad
// one is returned with its error, so the guest can answer it.
func TestReadRequestNode(t *testing.T) {
	var buf bytes.Buffer
	req := NodeRequest{Op: NodeLogs, ID: "web", Offset: 42}
	if err := WriteRequest(&buf, ExecRequest{Node: &req}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRequest(bufio.NewReader(&buf))
	if err != nil || got.Node == nil || *got.Node != req {
		t.Fatalf("ReadRequest = %+v, %v; want the node request %+v", got, err, req)
	}
	buf.Reset()
	buf.WriteString(`{"node":{"op":"start","id":""}}` + "\n")
	got, err = ReadRequest(bufio.NewReader(&buf))
	if err == nil || got.Node == nil {
		t.Fatalf("ReadRequest of a node request without id = %+v, %v; want the request and an error", got, err)
	}
}

func TestConfigNodeMode(t *testing.T) {
	if err := (Config{Mode: ModeNode}).Validate(); err != nil {
		t.Errorf("a node config needs no args or root: %v", err)
	}
	if err := (Config{Mode: "pod"}).Validate(); err == nil || !strings.Contains(err.Error(), `mode "pod"`) {
		t.Errorf("mode pod: %v", err)
	}
	if err := (Config{Mode: ModeNode, StopGraceSeconds: -1}).Validate(); err == nil {
		t.Error("a node config with a negative grace is valid")
	}
}

func TestParseLdd(t *testing.T) {
	out := []byte(`	linux-vdso.so.1 (0x00007ffd6b9f2000)
	libseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x00007f0e0a5d0000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0e0a3ee000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0e0a604000)
`)
	got, err := parseLdd("/usr/sbin/runc", out)
	want := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libseccomp.so.2", "/lib64/ld-linux-x86-64.so.2"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseLdd = %q, %v; want %q", got, err, want)
	}
	_, err = parseLdd("/usr/sbin/runc", []byte("\tlibseccomp.so.2 => not found\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "libseccomp.so.2") {
		t.Errorf("parseLdd of a missing library: %v", err)
	}
}

// The node initramfs is reproducible, holds the runtimes and their
// libraries, and is cached under a name that changes with its contents.
func TestNodeInitramfs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an initramfs")
	}
	k := kernelForTest(t)
	if guestInitErr != nil {
		t.Fatal(guestInitErr)
	}
	tools := DefaultNodeTools()
	tools.Runsc = "" // keep it small; runsc is a static file like any other
	cache := t.TempDir()
	p1, err := NodeInitramfs(cache, k, guestInit, tools)
	if err != nil {
		testenv.Skipf(t, "no node initramfs here: %v", err)
	}
	p2, err := NodeInitramfs(cache, k, guestInit, tools)
	if err != nil || p1 != p2 {
		t.Fatalf("second call = %s, %v; want the cached %s", p2, err, p1)
	}
	var a, b bytes.Buffer
	if err := BuildNodeInitramfs(&a, k, guestInit, tools); err != nil {
		t.Fatal(err)
	}
	if err := BuildNodeInitramfs(&b, k, guestInit, tools); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds differ")
	}
	names := archiveNames(t, a.Bytes())
	for _, want := range []string{"usr/bin/crun", "lib64/ld-linux-x86-64.so.2", "init"} {
		if !slices.Contains(names, want) {
			t.Errorf("node initramfs lacks %s: %q", want, names)
		}
	}
	hasOverlay := slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, "/overlay.ko") })
	if !k.Builtin && !hasOverlay {
		t.Errorf("node initramfs lacks the overlay module: %q", names)
	}
	if k.Builtin && slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "lib/modules") }) {
		t.Errorf("node initramfs for kernel %s, which has no modules, holds some: %q", k.Version, names)
	}
	tools.Runsc = guestInit // any other file: a new name
	p3, err := NodeInitramfs(cache, k, guestInit, tools)
	if err != nil || p3 == p1 {
		t.Errorf("with runsc added: %s, %v; want a new file", p3, err)
	}
}

func archiveNames(t *testing.T, archive []byte) []string {
	t.Helper()
	var names []string
	for _, e := range readCpio(t, archive) {
		names = append(names, e.name)
	}
	return names
}

// The tools disk holds crun (and runc, when asked for) with their libraries,
// each once, and runsc, byte for byte, and is cached under a name that
// changes with its contents; without runc it holds no runc; the base node
// initramfs holds none of them.
func TestNodeToolsDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a disk image")
	}
	if guestInitErr != nil {
		t.Fatal(guestInitErr)
	}
	debugfs := "/usr/sbin/debugfs"
	if _, err := os.Stat(debugfs); err != nil {
		testenv.Skipf(t, "skipping: no debugfs to read the disk with (install e2fsprogs): %v", err)
	}
	tools := DefaultNodeTools()
	if _, err := os.Stat(tools.Crun); err != nil {
		testenv.Skipf(t, "skipping: no crun on the host (%v); make host-setup installs it", err)
	}
	if tools.Runc != "" {
		t.Errorf("DefaultNodeTools has runc %s; want crun alone for containers", tools.Runc)
	}
	tools.Runc = "/usr/sbin/runc"
	if _, err := os.Stat(tools.Runc); err != nil {
		testenv.Skipf(t, "skipping: no runc on the host (%v); make host-setup installs it", err)
	}
	tools.Runsc = guestInit // a static binary in runsc's place, smaller than runsc
	cache := t.TempDir()
	p1, err := NodeToolsDisk(t.Context(), cache, tools)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := NodeToolsDisk(t.Context(), cache, tools)
	if err != nil || p1 != p2 {
		t.Fatalf("second call = %s, %v; want the cached %s", p2, err, p1)
	}
	files := map[string]string{CrunPath: tools.Crun, RuncPath: tools.Runc, RunscPath: tools.Runsc}
	for _, bin := range []string{tools.Crun, tools.Runc} {
		libs, err := sharedLibraries(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range libs {
			files[l] = l
		}
	}
	for inGuest, onHost := range files {
		want, err := os.ReadFile(onHost)
		if err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command(debugfs, "-R", "cat "+inGuest, p1).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on the tools disk: %d bytes (%v); want the %d of %s", inGuest, len(got), err, len(want), onHost)
		}
	}
	tools.Runsc, tools.Runc = "", ""
	p3, err := NodeToolsDisk(t.Context(), cache, tools)
	if err != nil || p3 == p1 {
		t.Errorf("without runsc and runc: %s, %v; want a new file", p3, err)
	}
	for _, absent := range []string{RuncPath, RunscPath} {
		if out, err := exec.Command(debugfs, "-R", "stat "+absent, p3).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("File not found")) {
			t.Errorf("tools disk without runc and runsc: debugfs stat %s: %v: %s; want it not found", absent, err, out)
		}
	}
	if _, err := NodeToolsDisk(t.Context(), cache, NodeTools{Runc: tools.Crun}); err == nil || !strings.Contains(err.Error(), "no crun") {
		t.Errorf("without crun: %v; want an error that says so", err)
	}

	k := kernelForTest(t)
	base, err := NodeBaseInitramfs(cache, k, guestInit)
	if err != nil {
		testenv.Skipf(t, "no node initramfs here: %v", err)
	}
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	names := archiveNames(t, data)
	if !slices.Contains(names, "init") || !slices.Contains(names, "tmp") {
		t.Errorf("base node initramfs lacks init or tmp: %q", names)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "crun") || strings.HasSuffix(n, "runc") || strings.HasSuffix(n, "runsc") || strings.Contains(n, "libseccomp") {
			t.Errorf("base node initramfs holds %s, which belongs on the tools disk", n)
		}
	}
}

// TestRunscID: no instance ID's runsc ID begins another's, so that runsc,
// which takes an ID as a prefix, finds each container by its own.
func TestRunscID(t *testing.T) {
	ids := []string{"web-1", "web-10", "web-1.a", "web-1-0", "w", "web"}
	for _, a := range ids {
		for _, b := range ids {
			if a != b && strings.HasPrefix(RunscID(b), RunscID(a)) {
				t.Errorf("runsc ID %q of %q begins %q, that of %q", RunscID(a), a, RunscID(b), b)
			}
		}
	}
}
