package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmptyInput: an input with no documents is an error naming the file, whatever it
// holds instead (nothing, blank lines, comments, document markers, a byte order mark).
func TestEmptyInput(t *testing.T) {
	for _, src := range []string{"", "\n\n  \n", "# only a comment\n# and another\n", "---\n# nothing yet\n---\n...\n", "\ufeff\n"} {
		set, errs := File("deploy/empty.yaml", []byte(src))
		if len(errs) != 1 || errs[0].File != "deploy/empty.yaml" || !strings.Contains(errs[0].Msg, "no documents") {
			t.Errorf("%q: errors %v, want one saying there are no documents", src, errs)
		}
		if len(set.Items) != 0 {
			t.Errorf("%q: %d items", src, len(set.Items))
		}
	}
	if _, errs := File("one.yaml", []byte("# a comment\nservices:\n  web: {image: nginx}\n")); len(errs) != 0 {
		t.Errorf("a compose file after a comment: %v", errs)
	}
}

// TestHelmTemplateHint: a chart's templates, its Chart.yaml and text with Helm's actions are
// turned away with the hint to render them; a compose file that passes a Go template to a
// command (docker's --format) is read as usual.
func TestHelmTemplateHint(t *testing.T) {
	dir := t.TempDir()
	chart := filepath.Join(dir, "shop")
	write(t, filepath.Join(chart, "Chart.yaml"), "apiVersion: v2\nname: shop\nversion: 0.1.0\n")
	plain := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"
	write(t, filepath.Join(chart, "templates", "configmap.yaml"), plain)

	deployment := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
`
	tests := []struct {
		name, file, src string
		line            int
	}{
		{"actions", "deployment.yaml", deployment, 4},
		{"values only", "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: {{ .Values.service.type }}\n", 6},
		{"chart file", filepath.Join(chart, "Chart.yaml"), "apiVersion: v2\nname: shop\nversion: 0.1.0\n", 0},
		{"plain file in templates/", filepath.Join(chart, "templates", "configmap.yaml"), plain, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := File(tt.file, []byte(tt.src))
			if len(errs) != 1 || errs[0].Line != tt.line || !strings.Contains(errs[0].Error(), "render it with helm template first") {
				t.Fatalf("errors %v, want one at line %d with the helm template hint", errs, tt.line)
			}
		})
	}

	compose := "services:\n  db:\n    image: postgres:16\n    healthcheck:\n      test: [\"CMD-SHELL\", \"docker inspect --format '{{.State.Health.Status}}' db\"]\n"
	if set, errs := File("compose.yaml", []byte(compose)); len(errs) != 0 || len(set.Items) != 1 {
		t.Errorf("compose with a Go template argument: %d items, errors %v", len(set.Items), errs)
	}

	// A directory holding a chart stands for its Chart.yaml alone: one error, not one per template.
	files, err := InputsWith([]string{dir}, Options{Recursive: true})
	if err != nil || len(files) != 1 || filepath.Base(files[0]) != "Chart.yaml" {
		t.Errorf("inputs of a chart: %v, %v", files, err)
	}
}

// TestInputsRecursive: without -R a directory is the files directly in it; with it, the
// files of every directory below too (hidden ones left out), each directory sorted.
func TestInputsRecursive(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.yml", "notes.txt", "k8s/z.yaml", "k8s/base/a.json", "vmware/vinfo.csv", ".git/config.yaml", "k8s/.hidden/x.yaml"} {
		write(t, filepath.Join(dir, f), "x: 1\n")
	}
	rel := func(files []string) string {
		for i, f := range files {
			files[i], _ = filepath.Rel(dir, f)
		}
		return strings.Join(files, " ")
	}
	flat, err := InputsWith([]string{dir}, Options{})
	if err != nil || rel(flat) != "a.yml b.yaml" {
		t.Errorf("without -R: %q, %v", rel(flat), err)
	}
	deep, err := InputsWith([]string{dir}, Options{Recursive: true})
	if want := "a.yml b.yaml k8s/z.yaml k8s/base/a.json vmware/vinfo.csv"; err != nil || rel(deep) != want {
		t.Errorf("with -R: %q, %v; want %q", rel(deep), err, want)
	}
	_, err = InputsWith([]string{filepath.Join(dir, "vmware")}, Options{})
	if err != nil {
		t.Errorf("a directory with a CSV: %v", err)
	}
	nothing := filepath.Join(dir, "nothing", "below")
	write(t, filepath.Join(nothing, "README"), "x")
	if _, err := InputsWith([]string{filepath.Dir(nothing)}, Options{}); err == nil || !strings.Contains(err.Error(), "-R") {
		t.Errorf("an empty directory without -R: %v, want a hint at -R", err)
	}
	if _, err := InputsWith([]string{filepath.Dir(nothing)}, Options{Recursive: true}); err == nil || !strings.Contains(err.Error(), "or below it") {
		t.Errorf("an empty tree with -R: %v", err)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
