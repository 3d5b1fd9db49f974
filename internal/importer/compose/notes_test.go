package compose

import (
	"strings"
	"testing"
)

// TestNotes: what a service asks for and strata cannot express is noted at its line, never
// dropped silently; what carries over gets no note.
func TestNotes(t *testing.T) {
	set, errs := importYAML(t, `services:
  app:
    build: ./app
    depends_on: [db]
    networks: [default, backend, frontend]
    configs: [app_config]
    secrets: [db_password]
    network_mode: "service:proxy"
    security_opt: ["seccomp:./strict.json", "label=type:container_t", no-new-privileges]
    sysctls: {net.ipv4.ip_local_port_range: "1024 65000"}
    volumes: [/cache, "./src:/src"]
    tmpfs: /run
    user: "1000"
    working_dir: /app
    environment: {A: b}
  db:
    image: postgres:16
    volumes: ["pgdata:/var/lib/postgresql/data"]
    environment: {POSTGRES_DB: app}
    ports: ["5432:5432"]
    restart: always
`)
	if len(errs) > 0 || len(set.Items) != 2 {
		t.Fatalf("%d items, errors:\n%v", len(set.Items), errs)
	}
	want := []struct {
		line int
		path string
		msg  string
	}{
		{3, "services.app.build", "built from source (build context ./app) and names no image"},
		{4, "services.app.depends_on", "start order (depends_on) is not carried over"},
		{5, "services.app.networks", "networks (backend, frontend) are not carried over"},
		{6, "services.app.configs", "configs are not carried over"},
		{7, "services.app.secrets", "secrets are not carried over"},
		{8, "services.app.network_mode", "network_mode service:proxy (sharing the namespace of another container) is not carried over"},
		{9, "services.app.security_opt[0]", "the seccomp profile ./strict.json is not carried over"},
		{9, "services.app.security_opt[1]", "the SELinux option label=type:container_t is not carried over"},
		{10, "services.app.sysctls[net.ipv4.ip_local_port_range]", "the namespaced sysctl net.ipv4.ip_local_port_range=1024 65000 is not carried over"},
		{11, "services.app.volumes[0]", "the anonymous volume /cache is not carried over"},
		{11, "services.app.volumes[1]", "the bind mount of the project file ./src is not carried over"},
		{12, "services.app.tmpfs", "tmpfs mounts are not carried over"},
		{13, "services.app.user", "user is not carried over"},
		{14, "services.app.working_dir", "working_dir is not carried over"},
	}
	notes := set.Items[0].Notes
	if len(notes) != len(want) {
		t.Errorf("got %d notes, want %d: %+v", len(notes), len(want), notes)
	}
	for i, w := range want {
		if i >= len(notes) {
			break
		}
		if n := notes[i]; n.Line != w.line || n.Path != w.path || !strings.Contains(n.Message, w.msg) {
			t.Errorf("note %d is %+v, want line %d path %s and %q", i, n, w.line, w.path, w.msg)
		}
	}
	if notes := set.Items[1].Notes; len(notes) > 0 {
		t.Errorf("a service that carries over whole has notes: %+v", notes)
	}
}
