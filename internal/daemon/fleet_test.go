package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime/nodevm"
)

// A data centre's fleet: two named hosts and a pool, three node shapes (the largest
// too large for the small host), and overheads of its own.
const dcFleet = `apiVersion: strata.dev/v1alpha1
kind: Fleet
metadata:
  name: dc1
spec:
  hosts:
  - name: edge1
    capacity: {cpu: "4", memory: 8Gi}
  - name: big1
    capacity: {cpu: "64", memory: 256Gi}
  hostPools:
  - prefix: rack2-n
    count: 12
    capacity: {cpu: "16", memory: 64Gi}
  nodeShapes:
  - {name: small, cpu: "1", memory: 2Gi}
  - {name: medium, cpu: "4", memory: 8Gi}
  - {name: large, cpu: "16", memory: 64Gi}
  overheads:
    vm: {cpu: 100m, memory: 128Mi}
    sandbox: {cpu: 50m, memory: 64Mi}
    nodeReserved: {cpu: 200m, memory: 512Mi}
`

func writeFleet(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadNodeSizing: with --fleet, node VMs are of the Fleet's shapes that fit on this
// host (found among its hosts and pools by name), with the Fleet's overheads; without it,
// or with a Fleet without shapes, of the driver's defaults.
func TestReadNodeSizing(t *testing.T) {
	file := writeFleet(t, dcFleet)
	names := func(s nodeSizing) []string {
		var out []string
		for _, sh := range s.shapes {
			out = append(out, sh.Name)
		}
		return out
	}
	for _, c := range []struct {
		host  string
		want  []string
		hostC place.Amount
	}{
		{"big1", []string{"small", "medium", "large"}, place.Amount{CPUMilli: 64000, MemoryBytes: 256 << 30}},
		{"rack2-n3", []string{"small", "medium"}, place.Amount{CPUMilli: 16000, MemoryBytes: 64 << 30}},
		{"edge1", []string{"small"}, place.Amount{CPUMilli: 4000, MemoryBytes: 8 << 30}},
	} {
		s, err := readNodeSizing(file, c.host)
		if err != nil {
			t.Fatalf("host %s: %v", c.host, err)
		}
		if !slices.Equal(names(s), c.want) || s.host != c.hostC {
			t.Errorf("host %s: shapes %v on %v, want %v on %v", c.host, names(s), s.host, c.want, c.hostC)
		}
		if s.overheads.NodeReserved != (place.Amount{CPUMilli: 200, MemoryBytes: 512 << 20}) || s.overheads.Sandbox.MemoryBytes != 64<<20 {
			t.Errorf("host %s: overheads %+v, want the Fleet's", c.host, s.overheads)
		}
	}
	s, err := readNodeSizing(file, "big1")
	if err != nil || s.shapes[1] != (nodevm.Shape{Name: "medium", CPUMilli: 4000, MemoryBytes: 8 << 30}) {
		t.Errorf("medium: %+v, %v", s.shapes, err)
	}
	if s, err := readNodeSizing("", "big1"); err != nil || s.shapes != nil || s.overheads != (place.Overheads{}) {
		t.Errorf("without a Fleet: %+v, %v; want the driver's defaults", s, err)
	}
	noShapes := writeFleet(t, strings.Replace(dcFleet, "  nodeShapes:\n  - {name: small, cpu: \"1\", memory: 2Gi}\n  - {name: medium, cpu: \"4\", memory: 8Gi}\n  - {name: large, cpu: \"16\", memory: 64Gi}\n", "", 1))
	if s, err := readNodeSizing(noShapes, "big1"); err != nil || s.shapes != nil || s.overheads != (place.Overheads{}) {
		t.Errorf("a Fleet without shapes: %+v, %v; want the driver's defaults", s, err)
	}
}

// TestReadNodeSizingErrors: a Fleet that cannot size this host's node VMs stops the
// daemon at start, the error at the file's line and column, saying what to do.
func TestReadNodeSizingErrors(t *testing.T) {
	tiny := strings.Replace(dcFleet, "name: edge1\n    capacity: {cpu: \"4\", memory: 8Gi}", "name: edge1\n    capacity: {cpu: \"1\", memory: 1Gi}", 1)
	for _, c := range []struct {
		name, text, host string
		want             []string
	}{
		{"not this host", dcFleet, "laptop", []string{"fleet.yaml:7:3: spec.hosts: no host named \"laptop\"", "add this host to spec.hosts"}},
		{"a pool member past its count", dcFleet, "rack2-n13", []string{"no host named \"rack2-n13\""}},
		{"no shape fits", tiny, "edge1", []string{"fleet.yaml:16:3: spec.nodeShapes: no node shape fits on host edge1 (1 CPU, 1Gi)",
			"small (1.1 CPU, 2.13Gi with the VM overhead)", "add a node shape that fits"}},
		{"a shape nodeReserved leaves nothing of", strings.Replace(dcFleet, "memory: 512Mi}", "memory: 4Gi}", 1), "big1",
			[]string{"fleet.yaml:16:37: spec.nodeShapes[0].memory", "nodeReserved keeps 4Gi"}},
		{"not a Fleet", "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: web}\n", "big1", []string{"fleet.yaml:2:", "expected a Fleet, found a Segment"}},
		{"a bad field", strings.Replace(dcFleet, "count: 12", "count: twelve", 1), "big1", []string{"fleet.yaml:13:"}},
	} {
		_, err := readNodeSizing(writeFleet(t, c.text), c.host)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
	if _, err := readNodeSizing(filepath.Join(t.TempDir(), "absent.yaml"), "big1"); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("a file that is not there: %v", err)
	}
}
