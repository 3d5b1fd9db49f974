package compose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/golden"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

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
				s, derrs := Import(doc, Options{})
				set.Add(s)
				errs = append(errs, derrs...)
			}
			if len(errs) > 0 {
				t.Fatalf("errors:\n%v", errs)
			}
			golden.JSON(t, strings.TrimSuffix(file, ".yaml")+".golden.json", set)
		})
	}
}
