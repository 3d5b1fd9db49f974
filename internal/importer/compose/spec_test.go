package compose

import (
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

func TestCommand(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"none", "", nil},
		{"string", `command: bundle exec rails s -p 3000 -b '0.0.0.0'`, []string{"bundle", "exec", "rails", "s", "-p", "3000", "-b", "0.0.0.0"}},
		{"list", `command: ["npm", "run", "start:prod"]`, []string{"npm", "run", "start:prod"}},
		{"list of numbers", `command: [sleep, 30]`, []string{"sleep", "30"}},
		{"quotes", `command: sh -c "echo \"hi there\" && sleep 1"`, []string{"sh", "-c", `echo "hi there" && sleep 1`}},
		{"entrypoint only", `entrypoint: ["/docker-entrypoint.sh"]`, []string{"/docker-entrypoint.sh"}},
		{"entrypoint and command", "entrypoint: /bin/tini --\ncommand: [app, serve]", []string{"/bin/tini", "--", "app", "serve"}},
		{"empty entrypoint", "entrypoint: []\ncommand: app", []string{"app"}},
		{"interpolated", "command: run --level ${LEVEL:-debug}", []string{"run", "--level", "debug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := service(t, "image: x\n"+tt.body).Spec.Command; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("command %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string]string
	}{
		{"map", "environment:\n  A: x\n  B: 2\n  C: true\n  D:", map[string]string{"A": "x", "B": "2", "C": "true", "D": ""}},
		{"list", "environment: [A=x, B=, C, D=a=b]", map[string]string{"A": "x", "B": "", "C": "", "D": "a=b"}},
		{"interpolation", `environment: ["A=${X:-dflt}", "B=${Y}", "C=$$HOME"]`, map[string]string{"A": "dflt", "B": "", "C": "$HOME"}},
		{"none", "environment: {}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := service(t, "image: x\n"+tt.body).Spec.Env; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRestart(t *testing.T) {
	tests := []struct {
		body string
		want v1alpha1.RestartPolicy
	}{
		{"", v1alpha1.RestartAlways},
		{"restart: always", v1alpha1.RestartAlways},
		{"restart: unless-stopped", v1alpha1.RestartAlways},
		{"restart: on-failure", v1alpha1.RestartOnFailure},
		{"restart: on-failure:3", v1alpha1.RestartOnFailure},
		{`restart: "no"`, v1alpha1.RestartNever},
		{"restart: no", v1alpha1.RestartNever},
		{"deploy: {restart_policy: {condition: none}}", v1alpha1.RestartNever},
		{"deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}", v1alpha1.RestartOnFailure},
		{"restart: \"no\"\ndeploy: {restart_policy: {condition: any}}", v1alpha1.RestartNever},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			if got := service(t, "image: x\n"+tt.body).Spec.RestartPolicy; got != tt.want {
				t.Errorf("restartPolicy %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReplicasAndResources(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		replicas    int32
		cpu, memory string
	}{
		{"defaults", "", 1, "100m", "128Mi"},
		{"deploy", "deploy:\n  replicas: 4\n  resources:\n    limits: {cpus: '0.5', memory: 512M}", 4, "500m", "512Mi"},
		{"numbers", "deploy: {resources: {limits: {cpus: 2, memory: 1073741824}}}", 1, "2", "1Gi"},
		{"reservations without limits", "deploy: {resources: {reservations: {cpus: '0.25', memory: 64m}}}", 1, "250m", "64Mi"},
		{"limits win over reservations", "deploy: {resources: {limits: {memory: 1g}, reservations: {cpus: '0.1', memory: 256m}}}", 1, "100m", "1Gi"},
		{"legacy keys", "scale: 3\ncpus: 1.5\nmem_limit: 1024k", 3, "1500m", "1Mi"},
		{"legacy reservation", "mem_reservation: 2gb", 1, "100m", "2Gi"},
		{"same scale and replicas", "scale: 2\ndeploy: {replicas: 2}", 2, "100m", "128Mi"},
		{"zero replicas", "deploy: {replicas: 0}", 0, "100m", "128Mi"},
		{"zero limits mean none", "cpus: 0\nmem_limit: 0", 1, "100m", "128Mi"},
		{"interpolated", "deploy: {replicas: '${REPLICAS:-5}'}\nmem_limit: ${MEM:-300m}", 5, "100m", "300Mi"},
		{"odd sizes", "mem_limit: 1500\ncpus: '0.0001'", 1, "1m", "1500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := service(t, "image: x\n"+tt.body)
			if got := *w.Spec.Replicas; got != tt.replicas {
				t.Errorf("replicas %d, want %d", got, tt.replicas)
			}
			if got := w.Spec.Resources.CPU.String(); got != tt.cpu {
				t.Errorf("cpu %s, want %s", got, tt.cpu)
			}
			if got := w.Spec.Resources.Memory.String(); got != tt.memory {
				t.Errorf("memory %s, want %s", got, tt.memory)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"512M", "512Mi", true},
		{"1g", "1Gi", true},
		{"1GB", "1Gi", true},
		{"256m", "256Mi", true},
		{"256mb", "256Mi", true},
		{"1024k", "1Mi", true},
		{"1000kb", "1000Ki", true},
		{"100b", "100", true},
		{"2048", "2Ki", true},
		{"1.5g", "1536Mi", true},
		{"512Mi", "512Mi", true},
		{"1 g", "1Gi", true},
		{"12Q", "", false},
		{"-1g", "", false},
		{"g", "", false},
		{"1.g", "", false},
		{"99999999999999999999t", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := parseMemory(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parseMemory(%q) error %v, want ok %v", tt.in, err, tt.ok)
			}
			if tt.ok && q.String() != tt.want {
				t.Errorf("parseMemory(%q) = %s, want %s", tt.in, q.String(), tt.want)
			}
		})
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"0.5", "500m", true},
		{"1", "1", true},
		{"1.25", "1250m", true},
		{".5", "500m", true},
		{"2.", "2", true},
		{"1e-1", "100m", true},
		{"0.0005", "1m", true},
		{"0", "0", true},
		{"-1", "", false},
		{"half", "", false},
		{"500m", "", false},
		{"1/2", "", false},
		{"1e99", "", false},
		{"1e999", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := parseCPU(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parseCPU(%q) error %v, want ok %v", tt.in, err, tt.ok)
			}
			if tt.ok && q.String() != tt.want {
				t.Errorf("parseCPU(%q) = %s, want %s", tt.in, q.String(), tt.want)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *v1alpha1.HealthCheck
	}{
		{"none", "", nil},
		{"curl", `healthcheck: {test: ["CMD", "curl", "-f", "http://localhost:8080/healthz"], interval: 10s, retries: 3}`,
			&v1alpha1.HealthCheck{HTTP: &v1alpha1.HTTPProbe{Path: "/healthz", Port: 8080}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"curl default port and path", `healthcheck: {test: ["CMD", "/usr/bin/curl", "--fail", "http://127.0.0.1"]}`,
			&v1alpha1.HealthCheck{HTTP: &v1alpha1.HTTPProbe{Path: "/", Port: 80}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"wget", `healthcheck: {test: ["CMD", "wget", "-q", "-O", "-", "http://localhost:3000/up?deep=1"], interval: 1m30s}`,
			&v1alpha1.HealthCheck{HTTP: &v1alpha1.HTTPProbe{Path: "/up?deep=1", Port: 3000}, IntervalSeconds: 90, FailureThreshold: 3}},
		{"curl of another host", `healthcheck: {test: ["CMD", "curl", "-f", "http://api:8080/"]}`,
			&v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"curl", "-f", "http://api:8080/"}}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"curl with more", `healthcheck: {test: ["CMD", "curl", "-f", "http://localhost/", "||", "exit", "1"]}`,
			&v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"curl", "-f", "http://localhost/", "||", "exit", "1"}}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"cmd", `healthcheck: {test: ["CMD", "pg_isready"], retries: 7, interval: 2500ms}`,
			&v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"pg_isready"}}, IntervalSeconds: 3, FailureThreshold: 7}},
		{"cmd-shell", `healthcheck: {test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]}`,
			&v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"string", `healthcheck: {test: "redis-cli ping"}`,
			&v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"/bin/sh", "-c", "redis-cli ping"}}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"short interval", `healthcheck: {test: [CMD, true], interval: 100ms}`,
			&v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"true"}}, IntervalSeconds: 1, FailureThreshold: 3}},
		{"disabled", `healthcheck: {test: [CMD, true], disable: true}`, nil},
		{"NONE", `healthcheck: {test: [NONE]}`, nil},
		{"only timing", `healthcheck: {interval: 5s}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := service(t, "image: x\n"+tt.body).Spec.Health; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("health:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLabelsAndAnnotations(t *testing.T) {
	set, errs := importYAML(t, `
name: shop
services:
  web:
    image: nginx
    labels:
      strata.dev/tenant: acme
      com.example.description: "Not a label value: it has spaces"
  tool:
    build: {dockerfile: Dockerfile.tool}
  api:
    image: api
    build: ./api
`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []struct {
		labels, annotations map[string]string
	}{
		{map[string]string{v1alpha1.LabelTenant: "acme"}, map[string]string{AnnotationProject: "shop"}},
		{nil, map[string]string{AnnotationProject: "shop", AnnotationBuildContext: "."}},
		{nil, map[string]string{AnnotationProject: "shop", AnnotationBuildContext: "./api"}},
	}
	for i, it := range set.Items {
		m := it.Workload.Metadata
		if !reflect.DeepEqual(m.Labels, want[i].labels) || !reflect.DeepEqual(m.Annotations, want[i].annotations) {
			t.Errorf("%s: labels %v annotations %v, want %v and %v", m.Name, m.Labels, m.Annotations, want[i].labels, want[i].annotations)
		}
	}
	if img := set.Items[1].Workload.Spec.Image; img != "" {
		t.Errorf("build-only image %q, want none", img)
	}
	if ia := set.Items[1].Workload.Spec.Traits.ImageAvailable; ia == nil || !*ia {
		t.Errorf("build-only imageAvailable %v, want true", ia)
	}
}
