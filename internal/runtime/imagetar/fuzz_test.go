package imagetar_test

import (
	"bytes"
	"testing"

	"strata.dev/strata/internal/runtime/imagetar"
)

// FuzzCheck reads arbitrary tarballs as image tarballs: Check never panics, and what
// it accepts names at least one image and unpacks to no more than the cap.
func FuzzCheck(f *testing.F) {
	f.Add(layout(f, "localhost/x:1", layerTar(f, 100)))
	f.Add(layout(f, "Bad/Name:!", layerTar(f, 10)))
	f.Add(layout(f, "localhost/bomb:1", layerTar(f, 2<<20)))
	const maxUnpacked = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := imagetar.Check(bytes.NewReader(data), maxUnpacked)
		if err != nil {
			return
		}
		if len(rep.Images) == 0 || rep.Unpacked > maxUnpacked || rep.Unpacked < 0 {
			t.Fatalf("accepted %+v", rep)
		}
	})
}
