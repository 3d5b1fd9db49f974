package compose

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden imports every testdata/*.yaml and compares the inventory, as indented JSON, with
// testdata/*.golden.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			docs, errs := load.Documents(name, data)
			var set inventory.Set
			for _, doc := range docs {
				if !Detect(doc) {
					t.Fatalf("document %d is not detected as compose", doc.Index)
				}
				s, derrs := Import(doc)
				set.Add(s)
				errs = append(errs, derrs...)
			}
			if len(errs) > 0 {
				t.Fatalf("errors:\n%v", errs)
			}
			got, err := json.MarshalIndent(set, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the import (run go test -update and review the diff):\n%s", golden, got)
			}
		})
	}
}
