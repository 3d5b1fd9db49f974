package compose

import (
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

func TestTraits(t *testing.T) {
	host := func(h ...v1alpha1.HostAccess) func(*v1alpha1.Traits) {
		return func(tr *v1alpha1.Traits) { tr.HostAccess = h }
	}
	paths := func(hp ...v1alpha1.HostPath) func(*v1alpha1.Traits) {
		return func(tr *v1alpha1.Traits) { tr.HostPaths = hp }
	}
	unconfined := func(u ...v1alpha1.Unconfinement) func(*v1alpha1.Traits) {
		return func(tr *v1alpha1.Traits) { tr.Unconfined = u }
	}
	tests := []struct {
		name string
		body string
		want v1alpha1.Traits
	}{
		{"nothing", "image: nginx", defaultTraits(nil)},
		{"privileged", "image: nginx\nprivileged: true", defaultTraits(func(tr *v1alpha1.Traits) { tr.Privileged = true })},
		{"not privileged", "image: nginx\nprivileged: false", defaultTraits(nil)},
		{"cap_add", "image: nginx\ncap_add: [NET_ADMIN]", defaultTraits(func(tr *v1alpha1.Traits) {
			tr.Capabilities = []string{"NET_ADMIN"}
		})},
		{"cap_add prefix, case and duplicates", "image: nginx\ncap_add: [CAP_SYS_ADMIN, net_raw, sys_admin, ALL]",
			defaultTraits(func(tr *v1alpha1.Traits) { tr.Capabilities = []string{"SYS_ADMIN", "NET_RAW", "ALL"} })},
		{"cap_drop is no capability", "image: nginx\ncap_drop: [ALL]", defaultTraits(nil)},
		{"host network", "image: nginx\nnetwork_mode: host", defaultTraits(host(v1alpha1.HostNetwork))},
		{"bridge network", "image: nginx\nnetwork_mode: bridge", defaultTraits(nil)},
		{"service network", "image: nginx\nnetwork_mode: \"service:db\"", defaultTraits(nil)},
		{"host pid", "image: nginx\npid: host", defaultTraits(host(v1alpha1.HostPID))},
		{"host ipc", "image: nginx\nipc: host", defaultTraits(host(v1alpha1.HostIPC))},
		{"shareable ipc", "image: nginx\nipc: shareable", defaultTraits(nil)},
		{"devices", "image: nginx\ndevices: [\"/dev/fuse:/dev/fuse\"]", defaultTraits(host(v1alpha1.HostDevices))},
		{"devices long syntax", "image: nginx\ndevices:\n- source: /dev/sda\n  target: /dev/xvda", defaultTraits(host(v1alpha1.HostDevices))},
		{"no devices", "image: nginx\ndevices: []", defaultTraits(nil)},
		{"host order", "image: nginx\nvolumes: [\"C:\\\\data:/srv\"]\ndevices: [/dev/kvm]\nipc: host\npid: host\nnetwork_mode: host\nuts: host\ncgroup: host\nuserns_mode: host",
			defaultTraits(host(v1alpha1.HostNetwork, v1alpha1.HostPID, v1alpha1.HostIPC, v1alpha1.HostUser, v1alpha1.HostUTS,
				v1alpha1.HostCgroup, v1alpha1.HostDevices, v1alpha1.HostPaths))},
		{"host user", "image: nginx\nuserns_mode: host", defaultTraits(host(v1alpha1.HostUser))},
		{"host uts", "image: nginx\nuts: host", defaultTraits(host(v1alpha1.HostUTS))},
		{"host cgroup", "image: nginx\ncgroup: host", defaultTraits(host(v1alpha1.HostCgroup))},
		{"private cgroup", "image: nginx\ncgroup: private", defaultTraits(nil)},
		{"absolute bind", "image: nginx\nvolumes: [\"/srv/www/:/usr/share/nginx/html:ro\"]",
			defaultTraits(paths(v1alpha1.HostPath{Path: "/srv/www", ReadOnly: true}))},
		{"relative bind", "image: nginx\nvolumes: [\"./html:/usr/share/nginx/html\"]",
			defaultTraits(paths(v1alpha1.HostPath{Path: "./html", InProject: true}))},
		{"read-only relative file", "image: nginx\nvolumes: [\"./conf/../nginx.conf:/etc/nginx/nginx.conf:ro,z\"]",
			defaultTraits(paths(v1alpha1.HostPath{Path: "./nginx.conf", ReadOnly: true, InProject: true}))},
		{"project directory", "image: nginx\nvolumes: [\".:/src\"]", defaultTraits(paths(v1alpha1.HostPath{Path: ".", InProject: true}))},
		{"home bind", "image: nginx\nvolumes: [\"~/html:/html\"]", defaultTraits(host(v1alpha1.HostPaths))},
		{"another user's home", "image: nginx\nvolumes: [\"~www/html:/html\"]", defaultTraits(host(v1alpha1.HostPaths))},
		{"docker socket", "image: portainer\nvolumes: [/var/run/docker.sock:/var/run/docker.sock]",
			defaultTraits(paths(v1alpha1.HostPath{Path: "/var/run/docker.sock"}))},
		{"interpolated bind", "image: nginx\nvolumes: [\"${DATA_DIR:-/srv}/html:/html\"]", defaultTraits(paths(v1alpha1.HostPath{Path: "/srv/html"}))},
		{"the same bind twice", "image: nginx\nvolumes: [\"/srv:/a:ro\", \"/srv:/b:ro\", \"/srv:/c\"]",
			defaultTraits(paths(v1alpha1.HostPath{Path: "/srv", ReadOnly: true}, v1alpha1.HostPath{Path: "/srv"}))},
		{"windows pipe", "image: portainer\nvolumes:\n- type: npipe\n  source: \\\\.\\pipe\\docker_engine\n  target: \\\\.\\pipe\\docker_engine",
			defaultTraits(host(v1alpha1.HostPaths))},
		{"seccomp", "image: nginx\nsecurity_opt: [\"seccomp:unconfined\"]", defaultTraits(unconfined(v1alpha1.UnconfinedSeccomp))},
		{"every unconfinement", "image: nginx\nsecurity_opt: [systempaths=unconfined, \"no-new-privileges:false\", apparmor=unconfined, seccomp=unconfined, \"apparmor:unconfined\"]",
			defaultTraits(unconfined(v1alpha1.UnconfinedSeccomp, v1alpha1.UnconfinedAppArmor, v1alpha1.UnconfinedPrivilegeEscalation, v1alpha1.UnconfinedProcMount))},
		{"confining options", "image: nginx\nsecurity_opt: [no-new-privileges, \"no-new-privileges:true\", \"seccomp:./profile.json\", \"label:type:svirt_apache_t\", apparmor=docker-default]",
			defaultTraits(nil)},
		{"named volume", "image: nginx\nvolumes: [\"html:/html\"]", defaultTraits(nil)},
		{"anonymous volume", "image: nginx\nvolumes: [/var/cache]", defaultTraits(nil)},
		{"long bind", "image: nginx\nvolumes:\n- type: bind\n  source: /etc/ssl\n  target: /ssl", defaultTraits(paths(v1alpha1.HostPath{Path: "/etc/ssl"}))},
		{"long read-only bind", "image: nginx\nvolumes:\n- type: bind\n  source: ./certs\n  target: /ssl\n  read_only: true",
			defaultTraits(paths(v1alpha1.HostPath{Path: "./certs", ReadOnly: true, InProject: true}))},
		{"long volume", "image: nginx\nvolumes:\n- type: volume\n  source: html\n  target: /html", defaultTraits(nil)},
		{"long tmpfs", "image: nginx\nvolumes:\n- type: tmpfs\n  target: /tmp", defaultTraits(nil)},
		{"host-wide sysctl", "image: nginx\nsysctls:\n  vm.overcommit_memory: 1", defaultTraits(func(tr *v1alpha1.Traits) {
			tr.Kernel.Sysctls = []string{"vm.overcommit_memory"}
		})},
		{"namespaced sysctls", "image: nginx\nsysctls:\n- net.ipv4.ip_local_port_range=1024 65000\n- kernel.shm_rmid_forced=1\n- net/ipv4/tcp_syncookies=1\n" +
			"- net.core.somaxconn=1024\n- kernel.msgmax=65536\n- kernel.sem=250 32000 100 128\n- fs.mqueue.msg_max=100",
			defaultTraits(nil)},
		{"mixed sysctls", "image: nginx\nsysctls: [net.ipv4.tcp_fin_timeout=30, vm.swappiness=10, kernel.msgmax=65536, kernel.panic=10, vm.swappiness=1]",
			defaultTraits(func(tr *v1alpha1.Traits) { tr.Kernel.Sysctls = []string{"vm.swappiness", "kernel.panic"} })},
		{"windows", "image: mcr.microsoft.com/windows/nanoserver\nplatform: windows/amd64", defaultTraits(func(tr *v1alpha1.Traits) {
			tr.OS = v1alpha1.OSWindows
		})},
		{"linux platform", "image: nginx\nplatform: linux/arm64", defaultTraits(nil)},
		{"trust, data, tenancy labels", "image: nginx\nlabels:\n  strata.dev/trust: untrusted\n  strata.dev/data: regulated\n  strata.dev/tenancy: multi",
			defaultTraits(func(tr *v1alpha1.Traits) {
				tr.Trust, tr.Data, tr.Tenancy = v1alpha1.TrustUntrusted, v1alpha1.DataRegulated, v1alpha1.TenancyMulti
			})},
		{"labels as a list", "image: nginx\nlabels: [strata.dev/data=confidential, com.example.x=y]", defaultTraits(func(tr *v1alpha1.Traits) {
			tr.Data = v1alpha1.DataConfidential
		})},
		{"deploy labels", "image: nginx\ndeploy:\n  labels: {strata.dev/trust: trusted}", defaultTraits(func(tr *v1alpha1.Traits) {
			tr.Trust = v1alpha1.TrustTrusted
		})},
		{"build only", "build: .", defaultTraits(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := service(t, tt.body)
			if got := w.Spec.Traits; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("traits:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestIsolation(t *testing.T) {
	tests := []struct {
		name string
		body string
		want v1alpha1.Isolation
	}{
		{"default", "image: nginx", v1alpha1.IsolationAuto},
		{"runsc", "image: nginx\nruntime: runsc", "sandbox"},
		{"runsc shim", "image: nginx\nruntime: io.containerd.runsc.v1", "sandbox"},
		{"kata", "image: nginx\nruntime: kata", "vm"},
		{"kata shim", "image: nginx\nruntime: io.containerd.kata-qemu.v2", "vm"},
		{"runc", "image: nginx\nruntime: runc", v1alpha1.IsolationAuto},
		{"label", "image: nginx\nlabels: {strata.dev/isolation: container}", "container"},
		{"label wins over runtime", "image: nginx\nruntime: runsc\nlabels: {strata.dev/isolation: vm}", "vm"},
		{"vm without image", "build: .\nruntime: kata", "vm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := service(t, tt.body).Spec.Isolation; got != tt.want {
				t.Errorf("isolation %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVolumes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []v1alpha1.Volume
	}{
		{"short", "image: postgres\nvolumes: [\"pg_data:/var/lib/postgresql/data\"]",
			[]v1alpha1.Volume{{Name: "pg-data", MountPath: "/var/lib/postgresql/data"}}},
		{"short read-only", "image: postgres\nvolumes: [\"conf:/etc/app:ro\"]", []v1alpha1.Volume{{Name: "conf", MountPath: "/etc/app"}}},
		{"long", "image: postgres\nvolumes:\n- type: volume\n  source: data\n  target: /data\n  volume: {nocopy: true}",
			[]v1alpha1.Volume{{Name: "data", MountPath: "/data"}}},
		{"long without type", "image: postgres\nvolumes:\n- source: data\n  target: /data", []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}},
		{"bind and anonymous are no volumes", "image: postgres\nvolumes: [/a, \"./b:/b\"]", nil},
		{"two", "image: postgres\nvolumes: [\"a:/a\", \"b:/b\"]",
			[]v1alpha1.Volume{{Name: "a", MountPath: "/a"}, {Name: "b", MountPath: "/b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := service(t, tt.body).Spec.Volumes; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("volumes %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTopLevelBindVolume(t *testing.T) {
	set, errs := importYAML(t, `
services:
  app:
    image: app
    volumes: ["shared:/shared", "plain:/plain"]
volumes:
  shared:
    driver_opts: {type: none, o: "bind,rw", device: /srv/shared}
  plain: {}
`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	w := set.Items[0].Workload
	if want := []v1alpha1.HostPath{{Path: "/srv/shared"}}; !reflect.DeepEqual(w.Spec.Traits.HostPaths, want) || w.Spec.Traits.HostAccess != nil {
		t.Errorf("hostPaths %+v hostAccess %v, want %+v and no host access", w.Spec.Traits.HostPaths, w.Spec.Traits.HostAccess, want)
	}
	if want := []v1alpha1.Volume{{Name: "plain", MountPath: "/plain"}}; !reflect.DeepEqual(w.Spec.Volumes, want) {
		t.Errorf("volumes %+v, want %+v", w.Spec.Volumes, want)
	}
}
