package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/golden"
)

// readMixed reads testdata/mixed (a compose project, a multi-document Kubernetes manifest,
// an RVTools vInfo export and strata documents) from inside testdata, so that sources are
// short relative names.
func readMixed(t *testing.T, opts Options) *Result {
	t.Helper()
	t.Chdir("testdata")
	r, errs := Read([]string{"mixed"}, nil, opts)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	t.Chdir("..")
	return r
}

func refs(r *Result) string {
	var out []string
	for _, o := range r.Objects {
		s := o.Ref()
		if o.Workload != nil {
			s += "@" + o.Workload.Spec.Segment
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestReadMixed: segments first (the strata document's, then one per compose project and
// namespace, with a DNS label and a note where the name was not one), then the workloads in
// input order; a name taken by a strata document is given to the imported workload with a
// suffix and a note; skipped objects are kept.
func TestReadMixed(t *testing.T) {
	r := readMixed(t, Options{})
	want := "Segment/edge Segment/shop-front Segment/payments Workload/web@edge Workload/web-2@shop-front " +
		"Workload/api@shop-front Workload/ledger@payments Workload/migrate@default Workload/erp01@default"
	if got := refs(r); got != want {
		t.Errorf("objects\n got %s\nwant %s", got, want)
	}
	notes := strings.Join(r.NoteLines(), "\n")
	for _, want := range []string{
		`mixed/compose.yaml:4: metadata.name: named shop-front: the compose project "Shop_Front" is not a DNS label (Segment/shop-front)`,
		"mixed/compose.yaml:4: metadata.name: named web-2: another input already has a workload named web (Workload/web-2)",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if len(r.Skipped) != 2 {
		t.Errorf("skipped %+v, want the Namespace and the ConfigMap", r.Skipped)
	}
	for _, o := range r.Objects {
		var errs []string
		if o.Workload != nil {
			for _, e := range v1alpha1.ValidateWorkload(o.Workload) {
				errs = append(errs, e.Error())
			}
		} else {
			for _, e := range v1alpha1.ValidateSegment(o.Segment) {
				errs = append(errs, e.Error())
			}
		}
		if len(errs) > 0 {
			t.Errorf("%s is invalid: %v", o.Ref(), errs)
		}
	}

	var y, j bytes.Buffer
	if err := WriteYAML(&y, r); err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "mixed.yaml.golden"), y.Bytes())
	if err := WriteJSON(&j, r); err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "mixed.json.golden"), j.Bytes())
}

// TestSegmentPerNone keeps every imported workload in the default segment and makes no
// segment; strata documents keep theirs.
func TestSegmentPerNone(t *testing.T) {
	r := readMixed(t, Options{SegmentPer: SegmentPerNone})
	want := "Segment/edge Workload/web@edge Workload/web-2@default Workload/api@default " +
		"Workload/ledger@default Workload/migrate@default Workload/erp01@default"
	if got := refs(r); got != want {
		t.Errorf("objects\n got %s\nwant %s", got, want)
	}
}

// TestYAMLReadsBack: the YAML output, read again, is the same objects, all of them strata
// documents taken as they are: what apply does with it.
func TestYAMLReadsBack(t *testing.T) {
	r := readMixed(t, Options{})
	var y bytes.Buffer
	if err := WriteYAML(&y, r); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "imported.yaml")
	if err := os.WriteFile(path, y.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	back, errs := Read([]string{path}, nil, Options{})
	if len(errs) > 0 {
		t.Fatalf("the output does not read back: %v\n%s", errs, y.String())
	}
	if len(back.Objects) != len(r.Objects) || back.Imported() {
		t.Fatalf("read back %s (imported %v), want %s as strata documents", refs(back), back.Imported(), refs(r))
	}
	for i, o := range back.Objects {
		a, _ := json.Marshal(body(o))
		b, _ := json.Marshal(body(r.Objects[i]))
		if !bytes.Equal(a, b) {
			t.Errorf("object %d reads back as\n%s\nwant\n%s", i, a, b)
		}
	}
}

// TestOtherKinds: strata documents that are not Workloads or Segments are handed back for
// the caller to judge; a file that mixes strata documents with others is imported.
func TestOtherKinds(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte("apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: dc1}\nspec:\n  hosts: [{name: h1, capacity: {cpu: \"8\", memory: 32Gi}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, errs := Read([]string{fleet}, nil, Options{})
	if len(errs) > 0 || len(r.Others) != 1 || len(r.Objects) != 0 {
		t.Errorf("fleet: %d others, %d objects, errors %v", len(r.Others), len(r.Objects), errs)
	}
	mixed := filepath.Join(dir, "mixed.yaml")
	src := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {image: x}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: team-b}\nspec: {containers: [{name: c, image: y}]}\n"
	if err := os.WriteFile(mixed, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r, errs = Read([]string{mixed}, nil, Options{})
	if got := refs(r); len(errs) > 0 || got != "Segment/team-b Workload/a@default Workload/b@team-b" {
		t.Errorf("mixed file: %s, errors %v", got, errs)
	}
}

func TestSegmentName(t *testing.T) {
	for in, want := range map[string]string{
		"shop":                         "shop",
		"Shop_Front":                   "shop-front",
		"my.app--v2":                   "my-app-v2",
		"__":                           "imported",
		"café":                         "caf",
		strings.Repeat("a", 70) + "-b": strings.Repeat("a", 63),
	} {
		if got := segmentName(in); got != want {
			t.Errorf("segmentName(%q) = %q, want %q", in, got, want)
		}
	}
}
