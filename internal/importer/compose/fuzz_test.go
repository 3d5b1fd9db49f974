package compose

import (
	"os"
	"path/filepath"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/load"
)

// FuzzImport feeds raw bytes through load.Documents and imports every document. Whatever the
// input: no panic, every workload is defaulted and valid, names are unique DNS labels, every
// item points into the file, and every error names the file and a line.
func FuzzImport(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	projects, _ := filepath.Glob("testdata/projects/*/compose.yaml")
	seeds = append(seeds, projects...)
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"services: {web: {image: nginx, ports: [\"8080:80\"]}}",
		"services:\n  a: &a\n    <<: *a\n    image: x\n",
		"services: {x: {ports: 80, deploy: {replicas: many, resources: {limits: {memory: 12Q}}}}}",
		"services: {x: {labels: {strata.dev/trust: maybe}, runtime: runsc, build: .}}",
		"services: {Web_1: {}, web-1: {}, WEB.1: {}}",
		"x: &x [*x]\nservices: {a: {command: *x, environment: *x}}",
		"services: {a: {ports: [\"1-100:1-100\", \"1-100:1-100/udp\"], healthcheck: {test: [CMD, curl, \"http://localhost:0/\"]}}}",
		"services: {a: {volumes: [\"a:/x\", \"a:/x\", \"b:/x/\"]}}",
		"services: {a: {command: '${A:-${B:-\"}}'}}",
		"services:\n  a: {image: x, extends: b}\n  b: {extends: {service: a}, privileged: true}\n",
		"services:\n  a: {extends: {file: fuzz.yaml, service: a}}\n",
		"include: [missing.yaml, {path: [x.yaml, y.yaml], env_file: .env, project_directory: sub}]\nservices: {a: {image: x}}\n",
		"services:\n  a:\n    image: ${IMG:?no image}\n    environment: [\"A=${B:+${C-x}}\", \"D=$$E\"]\n    volumes: [\"${V}:/v\", \"~/x:/x:ro\", \"./c:/c:ro,z\"]\n",
		"services:\n  a:\n    image: x\n    security_opt: [\"seccomp:unconfined\", apparmor=unconfined, \"no-new-privileges:false\"]\n    userns_mode: host\n    uts: host\n    cgroup: host\n",
		"services:\n  base: {image: x, environment: [A=1], volumes: [\"./a:/a\"], cap_add: [X]}\n  c: {extends: base, environment: {B: 2}, volumes: [\"./b:/a\"], cap_add: [X, Y]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz.yaml"
		docs, _ := load.Documents(file, data)
		for _, doc := range docs {
			compose := Detect(doc)
			set, errs := Import(doc, Options{})
			if !compose && (len(set.Items) > 0 || len(errs) == 0) {
				t.Fatalf("a document that is not compose gave %d items and %d errors", len(set.Items), len(errs))
			}
			names := map[string]bool{}
			for _, it := range set.Items {
				w := it.Workload
				if errs := v1alpha1.ValidateWorkload(&w); len(errs) > 0 {
					t.Fatalf("workload %q does not validate: %v", w.Metadata.Name, errs.ToAggregate())
				}
				if w.APIVersion != v1alpha1.GroupVersion || w.Kind != v1alpha1.KindWorkload {
					t.Fatalf("workload %q has apiVersion %q kind %q", w.Metadata.Name, w.APIVersion, w.Kind)
				}
				if names[w.Metadata.Name] {
					t.Fatalf("name %q is used twice", w.Metadata.Name)
				}
				names[w.Metadata.Name] = true
				s := it.Source
				if s.File == "" || s.Line < 1 || s.Format != v1alpha1.FormatCompose || s.Kind != SourceKind {
					t.Fatalf("bad source %+v", s)
				}
				if s.Name == w.Metadata.Name {
					t.Fatalf("source name %q is kept although it did not change", s.Name)
				}
				for _, n := range it.Notes {
					if n.Line < 0 || n.Message == "" {
						t.Fatalf("bad note %+v", n)
					}
				}
			}
			for _, e := range append(errs, set.Warnings...) {
				if e.File == "" || e.Line < 1 || e.Msg == "" {
					t.Fatalf("error without file, line or message: %#v", e)
				}
			}
		}
	})
}
