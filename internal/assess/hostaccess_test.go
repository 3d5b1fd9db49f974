package assess

import (
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// TestHostPaths grades traits.hostPaths: sensitive places (under, at or holding one, "/"
// itself) and writable paths outside the project need a VM, other read-only paths outside it
// a sandbox, the project's own files nothing. Paths are judged cleaned and named as written.
func TestHostPaths(t *testing.T) {
	ro := func(p string) v1alpha1.HostPath { return v1alpha1.HostPath{Path: p, ReadOnly: true} }
	rw := func(p string) v1alpha1.HostPath { return v1alpha1.HostPath{Path: p} }
	project := func(p string, readOnly bool) v1alpha1.HostPath {
		return v1alpha1.HostPath{Path: p, ReadOnly: readOnly, InProject: true}
	}
	tests := []struct {
		name  string
		paths []v1alpha1.HostPath
		tier  v1alpha1.Tier
		want  []reason
	}{
		{"a read-only file of the project", []v1alpha1.HostPath{project("nginx.conf", true)}, v1alpha1.TierContainer, nil},
		{"a writable directory of the project", []v1alpha1.HostPath{project("data", false)}, v1alpha1.TierContainer, nil},
		{"the project itself, writable", []v1alpha1.HostPath{project(".", false)}, v1alpha1.TierContainer, nil},
		{"a project path spelled with ./ and ..", []v1alpha1.HostPath{project("./conf/../html/", false)}, v1alpha1.TierContainer, nil},
		{"a project given by its absolute path", []v1alpha1.HostPath{project("/home/dev/shop/conf", false)}, v1alpha1.TierContainer, nil},

		{"/ is sensitive", []v1alpha1.HostPath{ro("/")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /"}}},
		{"/proc", []v1alpha1.HostPath{ro("/proc")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /proc"}}},
		{"a path under /proc", []v1alpha1.HostPath{ro("/proc/sys/net")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /proc/sys/net"}}},
		{"/procfoo is not /proc", []v1alpha1.HostPath{ro("/procfoo")}, v1alpha1.TierSandbox, []reason{{"host-paths-read-only", "/procfoo"}}},
		{"/sys, spelled loosely", []v1alpha1.HostPath{ro("//sys//fs/cgroup/")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: //sys//fs/cgroup/"}}},
		{"/dev", []v1alpha1.HostPath{rw("/dev/fuse")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /dev/fuse"}}},
		{"/boot", []v1alpha1.HostPath{ro("/boot")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /boot"}}},
		{"the kernel's modules", []v1alpha1.HostPath{ro("/lib/modules")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /lib/modules"}}},
		{"kubelet's state", []v1alpha1.HostPath{ro("/var/lib/kubelet/pods")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /var/lib/kubelet/pods"}}},
		{"docker's state", []v1alpha1.HostPath{ro("/var/lib/docker/containers")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /var/lib/docker/containers"}}},
		{"containerd's state", []v1alpha1.HostPath{ro("/var/lib/containerd")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /var/lib/containerd"}}},
		{"the cluster's credentials", []v1alpha1.HostPath{ro("/etc/kubernetes/admin.conf")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /etc/kubernetes/admin.conf"}}},
		{"docker's socket, read-only", []v1alpha1.HostPath{ro("/var/run/docker.sock")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /var/run/docker.sock"}}},
		{"docker's socket under /run", []v1alpha1.HostPath{rw("/run/docker.sock")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /run/docker.sock"}}},
		{"a file named like the socket", []v1alpha1.HostPath{ro("/var/run/docker.sock.bak")}, v1alpha1.TierSandbox, []reason{{"host-paths-read-only", "/var/run/docker.sock.bak"}}},
		{"containerd's socket", []v1alpha1.HostPath{ro("/run/containerd/containerd.sock")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /run/containerd/containerd.sock"}}},
		{"cri-o's socket", []v1alpha1.HostPath{ro("/var/run/crio/crio.sock")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /var/run/crio/crio.sock"}}},
		{"podman's socket", []v1alpha1.HostPath{ro("/run/podman/podman.sock")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /run/podman/podman.sock"}}},
		{"strata's own socket", []v1alpha1.HostPath{ro("/run/strata/strata.sock")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /run/strata/strata.sock"}}},
		{"a directory that holds a socket", []v1alpha1.HostPath{ro("/var/run")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /var/run"}}},
		{"a directory that holds /etc/kubernetes", []v1alpha1.HostPath{ro("/etc")}, v1alpha1.TierVM, []reason{{"host-paths", "sensitive: /etc"}}},
		{"a path that climbs into /etc/kubernetes", []v1alpha1.HostPath{ro("/srv/../etc/kubernetes/pki")}, v1alpha1.TierVM,
			[]reason{{"host-paths", "sensitive: /srv/../etc/kubernetes/pki"}}},
		{"a sensitive path the source calls the project's", []v1alpha1.HostPath{project("/var/lib/docker/volumes", true)}, v1alpha1.TierVM,
			[]reason{{"host-paths", "sensitive: /var/lib/docker/volumes"}}},

		{"writable outside the project", []v1alpha1.HostPath{rw("/srv/data")}, v1alpha1.TierVM, []reason{{"host-paths", "writable outside the project: /srv/data"}}},
		{"read-only outside the project", []v1alpha1.HostPath{ro("/srv/www")}, v1alpha1.TierSandbox, []reason{{"host-paths-read-only", "/srv/www"}}},
		{"read-only, climbing out of the project", []v1alpha1.HostPath{project("../secrets", true)}, v1alpha1.TierSandbox, []reason{{"host-paths-read-only", "../secrets"}}},
		{"writable, climbing out of the project", []v1alpha1.HostPath{project("conf/../../data", false)}, v1alpha1.TierVM,
			[]reason{{"host-paths", "writable outside the project: conf/../../data"}}},
		{"the project's parent", []v1alpha1.HostPath{project("..", false)}, v1alpha1.TierVM, []reason{{"host-paths", "writable outside the project: .."}}},

		{"the host's time zone, read-only", []v1alpha1.HostPath{ro("/etc/localtime"), ro("/etc/timezone"), ro("/usr/share/zoneinfo/UTC")}, v1alpha1.TierContainer, nil},
		{"the host's time zone, writable", []v1alpha1.HostPath{rw("/etc/localtime")}, v1alpha1.TierVM, []reason{{"host-paths", "writable outside the project: /etc/localtime"}}},

		{"every kind at once", []v1alpha1.HostPath{
			project("nginx.conf", true), ro("/srv/www"), rw("/srv/cache"), ro("/var/run/docker.sock"), ro("/etc/ssl/certs"),
		}, v1alpha1.TierVM, []reason{
			{"host-paths", "sensitive: /var/run/docker.sock; writable outside the project: /srv/cache"},
			{"host-paths-read-only", "/srv/www, /etc/ssl/certs"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.HostPaths = tt.paths })
			if errs := v1alpha1.ValidateWorkload(w); len(errs) > 0 {
				t.Fatalf("the test's workload is invalid: %v", errs)
			}
			checkReasons(t, w, tt.tier, tt.want)
		})
	}
}

// TestHostAccess: the host's network, PID and IPC namespaces, devices and paths written by
// hand need a VM (host-privileges); the host's user, UTS and cgroup namespaces a sandbox
// (host-namespaces). Each reason names only its own.
func TestHostAccess(t *testing.T) {
	tests := []struct {
		access []v1alpha1.HostAccess
		tier   v1alpha1.Tier
		want   []reason
	}{
		{[]v1alpha1.HostAccess{"network"}, v1alpha1.TierVM, []reason{{"host-privileges", "host network"}}},
		{[]v1alpha1.HostAccess{"pid"}, v1alpha1.TierVM, []reason{{"host-privileges", "host pid"}}},
		{[]v1alpha1.HostAccess{"ipc"}, v1alpha1.TierVM, []reason{{"host-privileges", "host ipc"}}},
		{[]v1alpha1.HostAccess{"devices"}, v1alpha1.TierVM, []reason{{"host-privileges", "host devices"}}},
		{[]v1alpha1.HostAccess{"paths"}, v1alpha1.TierVM, []reason{{"host-privileges", "host paths"}}},
		{[]v1alpha1.HostAccess{"user"}, v1alpha1.TierSandbox, []reason{{"host-namespaces", "host user"}}},
		{[]v1alpha1.HostAccess{"uts"}, v1alpha1.TierSandbox, []reason{{"host-namespaces", "host uts"}}},
		{[]v1alpha1.HostAccess{"cgroup"}, v1alpha1.TierSandbox, []reason{{"host-namespaces", "host cgroup"}}},
		{[]v1alpha1.HostAccess{"uts", "user", "cgroup"}, v1alpha1.TierSandbox, []reason{{"host-namespaces", "host uts, host user, host cgroup"}}},
		{[]v1alpha1.HostAccess{"user", "network", "uts"}, v1alpha1.TierVM, []reason{
			{"host-privileges", "host network"}, {"host-namespaces", "host user, host uts"}}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(hostAccessNames(tt.access), "+"), func(t *testing.T) {
			checkReasons(t, workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.HostAccess = tt.access }), tt.tier, tt.want)
		})
	}
}

func hostAccessNames(hs []v1alpha1.HostAccess) []string {
	var names []string
	for _, h := range hs {
		names = append(names, string(h))
	}
	return names
}

// TestUnconfined: each protection turned off asks for a sandbox, and the reason says which.
func TestUnconfined(t *testing.T) {
	tests := []struct {
		unconfined []v1alpha1.Unconfinement
		detail     string
	}{
		{[]v1alpha1.Unconfinement{"seccomp"}, "no seccomp filter"},
		{[]v1alpha1.Unconfinement{"apparmor"}, "no AppArmor profile"},
		{[]v1alpha1.Unconfinement{"privilegeEscalation"}, "privilege escalation allowed"},
		{[]v1alpha1.Unconfinement{"procMount"}, "/proc unmasked"},
		{[]v1alpha1.Unconfinement{"procMount", "seccomp", "apparmor", "privilegeEscalation"},
			"/proc unmasked, no seccomp filter, no AppArmor profile, privilege escalation allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.detail, func(t *testing.T) {
			checkReasons(t, workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Unconfined = tt.unconfined }),
				v1alpha1.TierSandbox, []reason{{"unconfined", tt.detail}})
		})
	}
	// Unconfined beside a VM floor: both reasons, the VM wins.
	checkReasons(t, workload(func(s *v1alpha1.WorkloadSpec) {
		s.Traits.Unconfined = []v1alpha1.Unconfinement{"seccomp"}
		s.Traits.Privileged = true
	}), v1alpha1.TierVM, []reason{{"host-privileges", "privileged"}, {"unconfined", "no seccomp filter"}})
}

// TestManyHostPaths: a workload with two thousand host paths (far more than any real one)
// stays within each rule's cost limit.
func TestManyHostPaths(t *testing.T) {
	var paths []v1alpha1.HostPath
	for i := range 2000 {
		paths = append(paths, v1alpha1.HostPath{Path: "/srv/app/some/deeper/directory/" + strings.Repeat("d", i%40), ReadOnly: i%2 == 0})
	}
	d, err := Default().Assess(workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.HostPaths = paths }))
	if err != nil {
		t.Fatal(err)
	}
	if d.Tier != v1alpha1.TierVM {
		t.Errorf("tier %s, want vm", d.Tier)
	}
}
