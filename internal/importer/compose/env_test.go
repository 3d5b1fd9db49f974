package compose

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

// importFile imports every document of a compose file on disk.
func importFile(t *testing.T, file string, opts Options) (inventory.Set, diag.List) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs, errs := load.Documents(file, data)
	var set inventory.Set
	for _, doc := range docs {
		s, derrs := Import(doc, opts)
		set.Add(s)
		errs = append(errs, derrs...)
	}
	return set, errs
}

func TestParseEnvFile(t *testing.T) {
	const file = `# comment
  # indented comment

PLAIN=value
SPACED = spaced value   
export EXPORTED=yes
EMPTY=
UNSET_ME
INLINE=value # a comment
HASH=value#not-a-comment
DOUBLE="a # not a comment" # a comment
SINGLE='literal $PLAIN ${PLAIN}'
ESCAPED_SINGLE='Let\'s go!'
ESCAPED_DOUBLE="{\"hello\": \"json\"}"
TABS="a\tb\nc\\d"
RAW_TABS=a\tb
REF=${PLAIN}-$EXPORTED
QUOTED_REF="${PLAIN:-x} and $$"
OUTER=${FROM_PROCESS}
OVERRIDDEN_LATER=first
OVERRIDDEN_LATER=second
MULTI="line one
line two"
AFTER_MULTI=ok
`
	outer := env{{"FROM_PROCESS": "process"}}
	vars := map[string]string{"EARLIER": "from an earlier file"}
	if probs := parseEnvFile(file, outer, vars); len(probs) > 0 {
		t.Fatalf("problems: %+v", probs)
	}
	want := map[string]string{
		"EARLIER": "from an earlier file",
		"PLAIN":   "value", "SPACED": "spaced value", "EXPORTED": "yes", "EMPTY": "",
		"INLINE": "value", "HASH": "value#not-a-comment", "DOUBLE": "a # not a comment",
		"SINGLE": "literal $PLAIN ${PLAIN}", "ESCAPED_SINGLE": "Let's go!",
		"ESCAPED_DOUBLE": `{"hello": "json"}`, "TABS": "a\tb\nc\\d", "RAW_TABS": `a\tb`,
		"REF": "value-yes", "QUOTED_REF": "value and $", "OUTER": "process",
		"OVERRIDDEN_LATER": "second", "MULTI": "line one\nline two", "AFTER_MULTI": "ok",
	}
	if !reflect.DeepEqual(vars, want) {
		t.Errorf("got  %q\nwant %q", vars, want)
	}
}

func TestParseEnvFileProblems(t *testing.T) {
	tests := []struct {
		name, file string
		line, col  int
		msg        string
		warning    bool
	}{
		{"bad name", "A=1\nBAD NAME=x\n", 2, 1, `invalid variable name "BAD NAME"`, false},
		{"unclosed quote", "A=\"open\nB=2\n", 1, 3, "opens a quote", false},
		{"text after quote", "A='x' y\n", 1, 3, `has "y" after its closing quote`, false},
		{"required", "export   A=${NOPE:?needed}\n", 1, 12, "required variable NOPE is not set: needed", false},
		{"unset", "A=$NOPE/x\n", 1, 3, "variable NOPE is not set", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs := parseEnvFile(tt.file, nil, map[string]string{})
			if len(probs) != 1 {
				t.Fatalf("got %d problems %+v, want 1", len(probs), probs)
			}
			p := probs[0]
			if p.line != tt.line || p.col != tt.col || !strings.Contains(p.msg, tt.msg) || p.warning != tt.warning || p.hint == "" {
				t.Errorf("got %+v, want line %d col %d warning %v message with %q", p, tt.line, tt.col, tt.warning, tt.msg)
			}
		})
	}
}

// TestProjectEnv imports a project whose settings live in .env (interval: $HEALTHCHECK_INTERVAL
// included): no error and no warning, and the process environment wins over .env.
func TestProjectEnv(t *testing.T) {
	file := filepath.Join("testdata", "projects", "monitoring", "compose.yaml")
	set, errs := importFile(t, file, Options{Environ: []string{"PROMETHEUS_PORT=19090", "GRAFANA_ADMIN=ops", "NO_EQUALS"}})
	if len(errs) > 0 || len(set.Warnings) > 0 {
		t.Fatalf("errors:\n%v\nwarnings:\n%v", errs, set.Warnings)
	}
	if len(set.Items) != 2 {
		t.Fatalf("got %d items", len(set.Items))
	}
	prom, graf := set.Items[0].Workload, set.Items[1].Workload
	if prom.Spec.Image != "prom/prometheus:v2.53.0" || graf.Spec.Image != "grafana/grafana:11.1.0" {
		t.Errorf("images %q %q", prom.Spec.Image, graf.Spec.Image)
	}
	if h := prom.Spec.Health; h == nil || h.IntervalSeconds != 30 || h.FailureThreshold != 5 {
		t.Errorf("prometheus health %+v", h)
	}
	if got := prom.Spec.Ports[0].Publish; got != 19090 {
		t.Errorf("prometheus publishes %d, want the process environment's 19090", got)
	}
	if got := prom.Spec.Command[1]; got != "--storage.tsdb.retention.time=30d" {
		t.Errorf("command %q", got)
	}
	if got := prom.Metadata.Annotations[AnnotationProject]; got != "monitoring" {
		t.Errorf("project %q", got)
	}
	wantEnv := map[string]string{
		"GF_SECURITY_ADMIN_USER": "ops", "GF_SECURITY_ADMIN_PASSWORD": "$ecret#1",
		"GF_SERVER_ROOT_URL": "https://metrics.example.org/grafana", "GF_INSTALL_PLUGINS": "grafana-clock-panel,grafana-piechart-panel",
		"PROMETHEUS_URL": "http://prometheus:9090", "LITERAL": "$NOT_A_VARIABLE",
	}
	if !reflect.DeepEqual(graf.Spec.Env, wantEnv) {
		t.Errorf("grafana env %q\nwant %q", graf.Spec.Env, wantEnv)
	}

	// Environment files given explicitly replace .env, later ones winning.
	dir := t.TempDir()
	base, prod := filepath.Join(dir, "base.env"), filepath.Join(dir, "prod.env")
	writeFile(t, base, "PROMETHEUS_VERSION=v2.50.0\nGRAFANA_VERSION=10.4.0\nHEALTHCHECK_INTERVAL=1m\nHEALTHCHECK_RETRIES=3\nPROMETHEUS_PORT=9090\n")
	writeFile(t, prod, "GRAFANA_VERSION=${GRAFANA_MAJOR:-11}.0.0\nDOMAIN=prod.example\nGRAFANA_ADMIN=root\nGRAFANA_PASSWORD=x\n")
	set, errs = importFile(t, file, Options{EnvFiles: []string{base, prod}})
	if len(errs) > 0 || len(set.Warnings) > 0 {
		t.Fatalf("errors:\n%v\nwarnings:\n%v", errs, set.Warnings)
	}
	prom, graf = set.Items[0].Workload, set.Items[1].Workload
	if prom.Spec.Image != "prom/prometheus:v2.50.0" || graf.Spec.Image != "grafana/grafana:11.0.0" || prom.Spec.Health.IntervalSeconds != 60 {
		t.Errorf("with env files: images %q %q, interval %d", prom.Spec.Image, graf.Spec.Image, prom.Spec.Health.IntervalSeconds)
	}

	// A missing environment file given explicitly is an error.
	_, errs = importFile(t, file, Options{EnvFiles: []string{filepath.Join(dir, "missing.env")}})
	if !hasError(errs, file, 0, "environment file "+filepath.Join(dir, "missing.env")+": no such file") {
		t.Errorf("a missing env file gives:\n%v", errs)
	}
}

// TestInterpolationErrors imports a service whose variables are missing: in fields that bear
// on isolation they are errors at the field, elsewhere warnings, and ${VAR:?message} is an
// error with the message.
func TestInterpolationErrors(t *testing.T) {
	file := filepath.Join("testdata", "projects", "errors", "compose.yaml")
	set, errs := importFile(t, file, Options{Environ: []string{"REGISTRY=registry.example"}})
	wantErrs := []struct {
		line int
		msg  string
	}{
		{4, "services.api.image: required variable TAG is not set: set TAG to the release to deploy"},
		{5, "services.api.privileged: variable API_PRIVILEGED is not set, and this field decides how the service is isolated"},
		{6, "services.api.network_mode: variable API_NETWORK is not set"},
		{8, "services.api.cap_add[0]: variable EXTRA_CAP is not set"},
		{10, "services.api.volumes[0]: variable DATA_ROOT is not set"},
		{12, "services.api.labels[strata.dev/trust]: variable API_TRUST is not set"},
		{15, `services.api.environment[BROKEN]: "${NOT CLOSED" opens a reference`},
		{22, "services.worker.labels[0]: variable TENANT is not set"},
	}
	for _, w := range wantErrs {
		if !hasError(errs, file, w.line, w.msg) {
			t.Errorf("no error at line %d with %q", w.line, w.msg)
		}
	}
	if len(errs) != len(wantErrs) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(wantErrs), errs)
	}
	wantWarnings := []struct {
		line int
		msg  string
	}{
		{14, "services.api.environment[LOG_LEVEL]: variable LOG_LEVEL is not set: an empty string takes its place"},
		{18, "services.api.healthcheck.interval: variable PROBE_INTERVAL is not set"},
		{23, "services.worker.labels[1]: variable OWNER is not set"},
	}
	for _, w := range wantWarnings {
		if !hasError(set.Warnings, file, w.line, w.msg) {
			t.Errorf("no warning at line %d with %q", w.line, w.msg)
		}
	}
	if len(set.Warnings) != len(wantWarnings) {
		t.Errorf("got %d warnings, want %d:\n%v", len(set.Warnings), len(wantWarnings), set.Warnings)
	}
	// Both services have a value that cannot be interpolated: neither is imported.
	if len(set.Items) != 0 {
		t.Errorf("got %d items, want none", len(set.Items))
	}
	// Without the errors, both are.
	set, errs = importFile(t, file, Options{Environ: []string{"REGISTRY=registry.example", "TAG=1", "API_PRIVILEGED=false", "API_NETWORK=bridge",
		"EXTRA_CAP=NET_BIND_SERVICE", "DATA_ROOT=/srv", "API_TRUST=internal", "TENANT=shop"}})
	if len(set.Items) != 1 || len(errs) != 1 || !hasError(errs, file, 15, "BROKEN") {
		t.Errorf("with the variables set: %d items, errors:\n%v", len(set.Items), errs)
	}
}

// hasError reports whether l holds a problem in file at line (any line when 0) whose text
// contains msg.
func hasError(l diag.List, file string, line int, msg string) bool {
	for _, e := range l {
		if strings.Contains(e.File, file) && (line == 0 || e.Line == line) && strings.Contains(e.Error(), msg) {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
