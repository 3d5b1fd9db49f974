package rvtools

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.csv")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "VM\n", "\xef\xbb\xbfVM;CPUs\n;\n", "VM,CPUs\n\"a\nb\",1\n", "VM,Annotation\nx,strata.dev/trust=\n",
		"VM\tTemplate\nx\tTrue\n", "sep=;\nVM;Memory\nx;1,5\n", "VM,VM\n--,\n", "\n\n VM ,cpus\r\nA,2\r\nA,2\r\n",
	} {
		f.Add([]byte(s))
	}
	const file = "fuzz.csv"
	f.Fuzz(func(t *testing.T, data []byte) {
		set, errs := Import(file, data)
		checkInvariants(t, file, set.Items, set.Skipped, errs)
		Detect(data)
	})
}
