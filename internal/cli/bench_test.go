package cli

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkAssessLargeEstate runs `strata assess -o json` end to end over a 10,000-VM RVTools
// export and 5,000 Kubernetes objects: reading, detecting, importing, assessing, printing.
func BenchmarkAssessLargeEstate(b *testing.B) {
	dir := b.TempDir()
	writeEstate(b, dir, 10000, 5000)
	args := []string{"assess", "-f", dir, "-o", "json"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if code := Execute(args, Streams{Out: io.Discard, Err: io.Discard}); code != ExitOK {
			b.Fatalf("exit %d", code)
		}
	}
}

// writeEstate writes a deterministic RVTools export with vms rows and a Kubernetes manifest
// stream with objects documents.
func writeEstate(tb testing.TB, dir string, vms, objects int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	oses := []string{
		"Microsoft Windows Server 2012 R2 (64-bit)", "Microsoft Windows Server 2019 (64-bit)",
		"Red Hat Enterprise Linux 6 (64-bit)", "Red Hat Enterprise Linux 8 (64-bit)", "CentOS 7 (64-bit)",
		"Ubuntu Linux (64-bit)", "Debian GNU/Linux 12 (64-bit)", "SUSE Linux Enterprise 11 (64-bit)",
	}
	var csv strings.Builder
	csv.WriteString("VM,Powerstate,Template,CPUs,Memory,Annotation,Datacenter,Cluster,Host,OS according to the configuration file,OS according to the VMware Tools\n")
	for i := range vms {
		power := "poweredOn"
		if rng.IntN(10) == 0 {
			power = "poweredOff"
		}
		os := oses[rng.IntN(len(oses))]
		fmt.Fprintf(&csv, "VM-%05d,%s,False,%d,%d,\"app %d, tier %d\",DC1,Cluster-%d,esx-%03d.corp,%s,%s\n",
			i, power, 1<<rng.IntN(4), 1024<<rng.IntN(6), i, i%3, i%20, i%300, os, os)
	}
	var yaml strings.Builder
	kinds := []string{"Deployment", "StatefulSet", "DaemonSet", "Pod"}
	for i := range objects {
		kind := kinds[i%len(kinds)]
		fmt.Fprintf(&yaml, "---\napiVersion: %s\nkind: %s\nmetadata:\n  name: app-%d\n  namespace: team-%d\n", apiVersionOf(kind), kind, i, i%40)
		if rng.IntN(5) == 0 {
			yaml.WriteString("  annotations: {strata.dev/data: confidential}\n")
		}
		pod := fmt.Sprintf("containers:\n- name: main\n  image: registry.local/app-%d:1.0\n  ports: [{containerPort: 8080}]\n  resources: {requests: {cpu: 250m, memory: 256Mi}}\n", i)
		if rng.IntN(10) == 0 {
			pod += "  securityContext: {privileged: true}\n"
		}
		if kind == "Pod" {
			yaml.WriteString("spec:\n" + indent(pod, "  "))
			continue
		}
		yaml.WriteString("spec:\n  replicas: 3\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n" + indent(pod, "      "))
	}
	for name, data := range map[string]string{"vinfo.csv": csv.String(), "cluster.yaml": yaml.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func apiVersionOf(kind string) string {
	if kind == "Pod" {
		return "v1"
	}
	return "apps/v1"
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// TestLargeEstateAssesses makes sure the benchmark's input is valid, so the benchmark measures
// the work and not an early error.
func TestLargeEstateAssesses(t *testing.T) {
	dir := t.TempDir()
	writeEstate(t, dir, 200, 100)
	code, stdout, stderr := run(t, "", "assess", "-f", dir, "-o", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := strings.Count(stdout, `"tier": `) - strings.Count(stdout, `"rule": `); n != 300 {
		t.Errorf("assessed %d items, want 300", n)
	}
}
