package daemon_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// A compose project as a team runs it today: a web server, and a checker of untrusted
// provenance (its label) that talks to the server by its service name.
const importCompose = `name: shop
services:
  web:
    image: localhost/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo hello-from-web > /www/index.html; httpd -f -p 8080 -h /www & wait"]
    expose: ["8080"]
    deploy:
      resources:
        limits: {cpus: "0.2", memory: 64M}
  checker:
    image: localhost/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
    labels:
      strata.dev/trust: untrusted
`

// A multi-document manifest beside it: a ConfigMap (no workload) and a Deployment in the
// default namespace.
const importManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: pinger-settings
data:
  TARGET: web.shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pinger
spec:
  replicas: 1
  selector:
    matchLabels: {app: pinger}
  template:
    metadata:
      labels: {app: pinger}
    spec:
      containers:
      - name: pinger
        image: localhost/busybox:1
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
`

// TestImportApplyRoundTrip: strata import turns a compose project and a Kubernetes manifest
// into documents; strata apply runs them as they are; the project's services share a
// segment and reach each other by name, the untrusted one from a gVisor sandbox; and apply
// of the original inputs is exactly what import wrote (every object unchanged).
func TestImportApplyRoundTrip(t *testing.T) {
	e := newE2E(t)
	compose := importCompose
	_, err := os.Stat("/opt/strata/bin/runsc")
	sandbox := err == nil
	if !sandbox {
		t.Log("runsc not installed at /opt/strata/bin/runsc: checker runs as a container (make host-setup builds it)")
		compose = strings.Replace(compose, "    labels:\n      strata.dev/trust: untrusted\n", "", 1)
	}
	project := filepath.Join(e.dir, "shop")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	composeFile, manifest := filepath.Join(project, "compose.yaml"), filepath.Join(e.dir, "k8s.yaml")
	for path, text := range map[string]string{composeFile: compose, manifest: importManifest} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// import runs without a daemon.
	imported, err := e.strata("import", "-f", composeFile, "-f", manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# from " + composeFile + ":3, service web", "kind: Segment", "segment: shop"} {
		if !strings.Contains(imported, want) {
			t.Errorf("import's output lacks %q:\n%s", want, imported)
		}
	}
	if sandbox && !strings.Contains(imported, "# tier: sandbox") {
		t.Errorf("checker is not assessed as a sandbox:\n%s", imported)
	}
	importedFile := filepath.Join(e.dir, "imported.yaml")
	if err := os.WriteFile(importedFile, []byte(imported), 0o600); err != nil {
		t.Fatal(err)
	}

	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	out := e.must("apply", "-f", importedFile)
	want := []string{"segment/shop created", "workload/checker created", "workload/pinger created", "workload/web created"}
	if got := sortedLines(out); !slices.Equal(got, want) {
		t.Fatalf("apply of import's output: %q, want %q", got, want)
	}
	e.eventually("every imported workload runs", 180*time.Second, func() error {
		for _, name := range []string{"web", "checker", "pinger"} {
			if _, err := e.running(name, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if w := e.workload("checker"); sandbox && w.Status.Tier != v1alpha1.TierSandbox {
		t.Errorf("checker runs at tier %s, want sandbox", w.Status.Tier)
	}
	if w := e.workload("web"); w.Spec.Segment != "shop" || w.Status.Tier != v1alpha1.TierContainer {
		t.Errorf("web: segment %s, tier %s; want shop, container", w.Spec.Segment, w.Status.Tier)
	}

	// The services of the project reach each other by name in their segment.
	for _, host := range []string{"web", "web.shop"} {
		e.eventually("checker reaches "+host, 60*time.Second, func() error {
			_, err := e.strata("exec", "checker", "--", "sh", "-c",
				"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "+host+" 8080 | grep -q hello-from-web")
			return err
		})
	}

	// apply of the inputs themselves sends what import wrote.
	out = e.must("apply", "-f", composeFile, "-f", manifest)
	want = []string{"segment/shop unchanged", "workload/checker unchanged", "workload/pinger unchanged", "workload/web unchanged"}
	if got := sortedLines(out); !slices.Equal(got, want) {
		t.Errorf("apply of the compose file and manifest: %q, want %q", got, want)
	}
}

func sortedLines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}
