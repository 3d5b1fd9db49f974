package load

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFile feeds arbitrary bytes to the loader. It must never panic; every problem names the
// file and a line; every object it accepts encodes to JSON and decodes again to the same object.
func FuzzFile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(head + "spec: {image: x, replicas: 2, resources: {cpu: 500m}}\n"))
	f.Add([]byte("{\"apiVersion\": \"strata.dev/v1alpha1\", \"kind\": \"Segment\", \"metadata\": {\"name\": \"a\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, errs := File("fuzz.yaml", data)
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Msg == "" {
				t.Fatalf("error without a place or a message: %#v", e)
			}
		}
		for _, o := range objs {
			b, err := json.Marshal(o.Object)
			if err != nil {
				t.Fatalf("accepted object does not encode: %v", err)
			}
			again, errs := File("again.json", b)
			if len(errs) > 0 || len(again) != 1 {
				t.Fatalf("accepted object does not load again: %v\n%s", errs, b)
			}
			b2, _ := json.Marshal(again[0].Object)
			if string(b) != string(b2) {
				t.Fatalf("object changed on a second load:\n%s\n%s", b, b2)
			}
		}
	})
}
