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
