package compose

import (
	"path/filepath"
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/golden"
	"strata.dev/strata/internal/inventory"
)

// projectEnviron is the process environment the project tests run with.
var projectEnviron = []string{"HOME=/home/dev", "REGISTRY=registry.example"}

// TestProjectsGolden imports every testdata/projects/*/compose.yaml (with its .env, the files
// it extends and includes) and compares the inventory and the errors with
// testdata/projects/*.golden.json.
func TestProjectsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/projects/*/compose.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no projects: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(filepath.Dir(file))
		t.Run(name, func(t *testing.T) {
			set, errs := importFile(t, file, Options{Environ: projectEnviron})
			got := struct {
				Set    inventory.Set
				Errors []string
			}{Set: set}
			for _, e := range errs {
				got.Errors = append(got.Errors, e.Error())
			}
			golden.JSON(t, filepath.Join("testdata", "projects", name+".golden.json"), got)
		})
	}
}

// TestStatelessNginx: a web server whose only host paths are read-only files of its project
// has them as in-project, read-only hostPaths, and no host access.
func TestStatelessNginx(t *testing.T) {
	set, errs := importFile(t, filepath.Join("testdata", "projects", "nginx", "compose.yaml"), Options{})
	if len(errs) > 0 || len(set.Warnings) > 0 || len(set.Items) != 1 {
		t.Fatalf("%d items, errors:\n%v\nwarnings:\n%v", len(set.Items), errs, set.Warnings)
	}
	it := set.Items[0]
	tr := it.Workload.Spec.Traits
	want := []v1alpha1.HostPath{
		{Path: "./nginx.conf", ReadOnly: true, InProject: true},
		{Path: "./conf.d", ReadOnly: true, InProject: true},
	}
	if !reflect.DeepEqual(tr.HostPaths, want) {
		t.Errorf("hostPaths %+v, want %+v", tr.HostPaths, want)
	}
	if tr.HostAccess != nil || tr.Privileged || tr.Capabilities != nil || tr.Unconfined != nil {
		t.Errorf("traits ask for more than the project's files: %+v", tr)
	}
	if len(it.Notes) != 2 || it.Notes[0].Line != 8 || it.Notes[1].Line != 9 {
		t.Errorf("notes %+v, want one per bind mount, at lines 8 and 9", it.Notes)
	}
}

// TestHostPathPlacement: bind sources are cleaned and placed: inside the project they are
// relative to it, anywhere else absolute (~ with the environment's HOME).
func TestHostPathPlacement(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app", "compose.yaml")
	writeFile(t, file, `services:
  app:
    image: app
    volumes:
      - ./data/../config:/config:ro
      - ../shared:/shared
      - ~/.cache/app:/cache
      - `+filepath.Join(dir, "app", "logs")+`:/logs
      - /var/run/docker.sock:/var/run/docker.sock
      - $HOME:/home
`)
	set, errs := importFile(t, file, Options{Environ: []string{"HOME=/home/dev"}})
	if len(errs) > 0 || len(set.Items) != 1 {
		t.Fatalf("%d items, errors:\n%v", len(set.Items), errs)
	}
	want := []v1alpha1.HostPath{
		{Path: "./config", ReadOnly: true, InProject: true},
		{Path: filepath.ToSlash(filepath.Join(dir, "shared"))},
		{Path: "/home/dev/.cache/app"},
		{Path: "./logs", InProject: true},
		{Path: "/var/run/docker.sock"},
		{Path: "/home/dev"},
	}
	if got := set.Items[0].Workload.Spec.Traits.HostPaths; !reflect.DeepEqual(got, want) {
		t.Errorf("hostPaths\n got %+v\nwant %+v", got, want)
	}
	if got := set.Items[0].Workload.Spec.Traits.HostAccess; got != nil {
		t.Errorf("hostAccess %v, want none", got)
	}
}

// TestExtendsPrivilege: a service that extends a privileged, host-network service of another
// file comes out privileged with host network access, its own keys merged over the base's.
func TestExtendsPrivilege(t *testing.T) {
	set, errs := importFile(t, filepath.Join("testdata", "projects", "extends", "compose.yaml"), Options{})
	if len(errs) > 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	agent := set.Items[0]
	w := agent.Workload
	if w.Metadata.Name != "agent" || !w.Spec.Traits.Privileged {
		t.Fatalf("%s: privileged %v, want the agent privileged through extends", w.Metadata.Name, w.Spec.Traits.Privileged)
	}
	if want := []v1alpha1.HostAccess{v1alpha1.HostNetwork, v1alpha1.HostPID}; !reflect.DeepEqual(w.Spec.Traits.HostAccess, want) {
		t.Errorf("hostAccess %v, want %v", w.Spec.Traits.HostAccess, want)
	}
	if want := []string{"SYS_PTRACE", "NET_ADMIN"}; !reflect.DeepEqual(w.Spec.Traits.Capabilities, want) {
		t.Errorf("capabilities %v, want %v (the base's first, no duplicates)", w.Spec.Traits.Capabilities, want)
	}
	if want := map[string]string{"LOG_LEVEL": "debug", "SCRAPE_INTERVAL": "15s"}; !reflect.DeepEqual(w.Spec.Env, want) {
		t.Errorf("env %v, want %v", w.Spec.Env, want)
	}
	// The base's ./agent.yaml mount at /etc/agent/agent.yaml is replaced by the service's own.
	want := []v1alpha1.HostPath{{Path: "/proc", ReadOnly: true}, {Path: "/srv/agent/agent.yaml", ReadOnly: true}}
	if !reflect.DeepEqual(w.Spec.Traits.HostPaths, want) {
		t.Errorf("hostPaths %+v, want %+v", w.Spec.Traits.HostPaths, want)
	}
	if w.Spec.Traits.Trust != v1alpha1.TrustTrusted || agent.Source.File != filepath.Join("testdata", "projects", "extends", "compose.yaml") || agent.Source.Line != 6 {
		t.Errorf("trust %q source %+v", w.Spec.Traits.Trust, agent.Source)
	}
	// A chain in one file: api extends app extends defaults.
	api := set.Items[3].Workload
	if api.Metadata.Name != "api" || api.Spec.Image != "registry.example/shop/api:2.1" || *api.Spec.Replicas != 2 ||
		api.Spec.Health.IntervalSeconds != 10 || api.Spec.Health.FailureThreshold != 3 || api.Spec.Health.HTTP == nil ||
		api.Spec.Resources.CPU.String() != "500m" || api.Spec.Resources.Memory.String() != "512Mi" ||
		!reflect.DeepEqual(api.Spec.Command, []string{"api", "serve", "--port", "8080"}) ||
		!reflect.DeepEqual(api.Spec.Env, map[string]string{"TZ": "UTC", "LOG_FORMAT": "text"}) {
		t.Errorf("api through its chain: %+v", api.Spec)
	}
}

// TestExtendsRelativePaths: a bind in an extended file is relative to that file, and the
// project's directory is the extending file's.
func TestExtendsRelativePaths(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "shared", "base.yaml"), "services:\n  base:\n    image: x\n    volumes: [\"./conf:/conf:ro\", \"../app/local:/local\"]\n")
	writeFile(t, filepath.Join(dir, "app", "compose.yaml"), "services:\n  app:\n    extends: {file: ../shared/base.yaml, service: base}\n")
	set, errs := importFile(t, filepath.Join(dir, "app", "compose.yaml"), Options{})
	if len(errs) > 0 || len(set.Items) != 1 {
		t.Fatalf("%d items, errors:\n%v", len(set.Items), errs)
	}
	want := []v1alpha1.HostPath{
		{Path: filepath.ToSlash(filepath.Join(dir, "shared", "conf")), ReadOnly: true},
		{Path: "./local", InProject: true},
	}
	if got := set.Items[0].Workload.Spec.Traits.HostPaths; !reflect.DeepEqual(got, want) {
		t.Errorf("hostPaths %+v, want %+v", got, want)
	}
}

func TestExtendsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "services:\n  a:\n    image: a\n    extends: {file: b.yaml, service: b}\n")
	writeFile(t, filepath.Join(dir, "b.yaml"), "services:\n  b:\n    extends: {file: a.yaml, service: a}\n")
	writeFile(t, filepath.Join(dir, "notcompose.yaml"), "- just\n- a list\n")
	writeFile(t, filepath.Join(dir, "compose.yaml"), `services:
  loop-a:
    image: x
    extends: loop-b
  loop-b:
    extends:
      service: loop-a
  self:
    image: x
    extends: self
  cross:
    extends: {file: a.yaml, service: a}
  missing-file:
    extends: {file: nowhere.yaml, service: x}
  missing-service:
    extends: {service: nobody}
  bad-file:
    extends: {file: notcompose.yaml, service: x}
  no-service:
    image: x
    extends: {file: a.yaml}
`)
	file := filepath.Join(dir, "compose.yaml")
	set, errs := importFile(t, file, Options{})
	want := []struct {
		file string
		line int
		msg  string
	}{
		{file, 7, "services.loop-b.extends: extends makes a cycle: loop-a -> loop-b -> loop-a"},
		{file, 10, "extends makes a cycle: self -> self"},
		{filepath.Join(dir, "b.yaml"), 3, "extends makes a cycle: " + filepath.Join(dir, "a.yaml") + ":a -> " +
			filepath.Join(dir, "b.yaml") + ":b -> " + filepath.Join(dir, "a.yaml") + ":a"},
		{file, 14, "the extended file " + filepath.Join(dir, "nowhere.yaml") + ": no such file or directory"},
		{file, 16, `the service "nobody" that missing-service extends is not in ` + file},
		{file, 18, "the extended file " + filepath.Join(dir, "notcompose.yaml") + " is not a compose file"},
		{file, 21, "services.no-service.extends.service: extends names no service"},
	}
	for _, w := range want {
		if !hasError(errs, w.file, w.line, w.msg) {
			t.Errorf("no error at %s:%d with %q", w.file, w.line, w.msg)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	// Every service is still imported, with its own keys.
	if len(set.Items) != 8 {
		t.Errorf("got %d items, want 8", len(set.Items))
	}
}

// TestInclude: included files' services join the project, each with its own directory and
// variables, which the including project's variables override.
func TestInclude(t *testing.T) {
	file := filepath.Join("testdata", "projects", "include", "compose.yaml")
	set, errs := importFile(t, file, Options{})
	if len(errs) > 0 || len(set.Warnings) > 0 {
		t.Fatalf("errors:\n%v\nwarnings:\n%v", errs, set.Warnings)
	}
	got := map[string]inventory.Item{}
	for _, it := range set.Items {
		got[it.Workload.Metadata.Name] = it
	}
	pg, cache := got["postgres"], got["cache"]
	if pg.Source.File != filepath.Join("testdata", "projects", "include", "db", "compose.yaml") || pg.Source.Line != 2 {
		t.Errorf("postgres source %+v", pg.Source)
	}
	if pg.Workload.Spec.Image != "postgres:16.3" || pg.Workload.Spec.Env["POSTGRES_DB"] != "storefront" {
		t.Errorf("postgres image %q env %v: want its own .env's version and the project's DB_NAME", pg.Workload.Spec.Image, pg.Workload.Spec.Env)
	}
	if want := []v1alpha1.HostPath{{Path: "./db/init", ReadOnly: true, InProject: true}}; !reflect.DeepEqual(pg.Workload.Spec.Traits.HostPaths, want) {
		t.Errorf("postgres hostPaths %+v, want %+v", pg.Workload.Spec.Traits.HostPaths, want)
	}
	if cache.Workload.Spec.Image != "redis:7.2-alpine" {
		t.Errorf("cache image %q: want the version of its env_file", cache.Workload.Spec.Image)
	}
	if want := []v1alpha1.HostPath{{Path: "./services/cache/redis.conf", ReadOnly: true, InProject: true}}; !reflect.DeepEqual(cache.Workload.Spec.Traits.HostPaths, want) {
		t.Errorf("cache hostPaths %+v, want %+v (relative to its project_directory)", cache.Workload.Spec.Traits.HostPaths, want)
	}
	if len(set.Items) != 3 {
		t.Errorf("got %d items, want 3", len(set.Items))
	}
}

func TestIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "loop", "compose.yaml"), "include: [../compose.yaml]\nservices:\n  looped: {image: x}\n")
	writeFile(t, filepath.Join(dir, "dup.yaml"), "services:\n  web: {image: other}\n")
	writeFile(t, filepath.Join(dir, "parts", "a.yaml"), "services:\n  part:\n    image: part:1\n    environment: {A: a, B: a}\n")
	writeFile(t, filepath.Join(dir, "parts", "b.yaml"), "services:\n  part:\n    environment: {B: b}\n    privileged: true\n")
	file := filepath.Join(dir, "compose.yaml")
	writeFile(t, file, `include:
  - missing/compose.yaml
  - path: [parts/a.yaml, parts/b.yaml]
  - loop/compose.yaml
  - dup.yaml
  - path: parts/a.yaml
    env_file: [missing.env]
  - {project_directory: x}
services:
  web:
    image: web
`)
	set, errs := importFile(t, file, Options{})
	want := []struct {
		file string
		line int
		msg  string
	}{
		{file, 2, "include[0]: the included file " + filepath.Join(dir, "missing", "compose.yaml") + ": no such file or directory"},
		{filepath.Join(dir, "loop", "compose.yaml"), 1, "include makes a cycle"},
		{filepath.Join(dir, "dup.yaml"), 2, `services.web: the service "web" is defined in ` + file + " already"},
		{file, 6, "include[4]: environment file " + filepath.Join(dir, "missing.env") + ": no such file or directory"},
		{file, 8, "include[5].path: the include names no file"},
		{filepath.Join(dir, "parts", "a.yaml"), 2, `services.part: the service "part" is defined in ` + filepath.Join(dir, "parts", "a.yaml") + " already"},
	}
	for _, w := range want {
		if !hasError(errs, w.file, w.line, w.msg) {
			t.Errorf("no error at %s:%d with %q", w.file, w.line, w.msg)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	// The two files of one include merge: part is privileged, with B from the second file.
	for _, it := range set.Items {
		if w := it.Workload; w.Metadata.Name == "part" {
			if !w.Spec.Traits.Privileged || w.Spec.Image != "part:1" || !reflect.DeepEqual(w.Spec.Env, map[string]string{"A": "a", "B": "b"}) {
				t.Errorf("merged part: %+v", w.Spec)
			}
			return
		}
	}
	t.Errorf("no service part in %d items", len(set.Items))
}

// TestServiceEnvFile: env_file values are the service's environment, later files winning and
// environment winning over them all; a missing file is an error unless required is false.
func TestServiceEnvFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config", "common.env"), "# shared\nLOG_LEVEL=info\nDB_HOST=db\nGREETING=\"hello ${USER_NAME:-world}\"\n")
	writeFile(t, filepath.Join(dir, "config", "web.env"), "LOG_LEVEL=debug\nPORT=8080\n")
	writeFile(t, filepath.Join(dir, "config", "raw.env"), "TEMPLATE=\"${NOT_EXPANDED}\" # kept\n")
	file := filepath.Join(dir, "compose.yaml")
	writeFile(t, file, `services:
  web:
    image: web
    env_file:
      - config/common.env
      - path: config/web.env
      - path: config/optional.env
        required: false
      - path: config/raw.env
        format: raw
    environment:
      PORT: "9090"
  worker:
    image: worker
    env_file: config/missing.env
`)
	set, errs := importFile(t, file, Options{Environ: []string{"USER_NAME=dev"}})
	if len(errs) != 1 || !hasError(errs, file, 15, "env_file "+filepath.Join(dir, "config", "missing.env")+": no such file or directory") {
		t.Errorf("errors:\n%v\nwant one, for the missing file at line 15", errs)
	}
	want := map[string]string{"LOG_LEVEL": "debug", "DB_HOST": "db", "GREETING": "hello dev", "PORT": "9090",
		"TEMPLATE": `"${NOT_EXPANDED}" # kept`}
	if got := set.Items[0].Workload.Spec.Env; !reflect.DeepEqual(got, want) {
		t.Errorf("env %q\nwant %q", got, want)
	}
}

// TestExtendsResetOverride: !reset removes what the base sets, !override replaces a list
// instead of appending to it.
func TestExtendsResetOverride(t *testing.T) {
	set, errs := importYAML(t, `services:
  base:
    image: base
    privileged: true
    ports: ["8080:80"]
    cap_add: [NET_ADMIN]
  child:
    extends: base
    privileged: !reset null
    ports: !override ["9090:90"]
    cap_add: [SYS_TIME]
`)
	if len(errs) > 0 || len(set.Items) != 2 {
		t.Fatalf("%d items, errors:\n%v", len(set.Items), errs)
	}
	w := set.Items[1].Workload
	if w.Spec.Traits.Privileged || len(w.Spec.Ports) != 1 || w.Spec.Ports[0].Port != 90 ||
		!reflect.DeepEqual(w.Spec.Traits.Capabilities, []string{"NET_ADMIN", "SYS_TIME"}) {
		t.Errorf("child: privileged %v ports %+v capabilities %v", w.Spec.Traits.Privileged, w.Spec.Ports, w.Spec.Traits.Capabilities)
	}
}
