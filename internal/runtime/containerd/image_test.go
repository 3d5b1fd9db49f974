package containerd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/containerd/errdefs"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/imagetar"
	"strata.dev/strata/internal/testimage"
)

// zerosLayer is a layer of one file of size zero bytes: gzip makes it about a
// thousand times smaller.
func zerosLayer(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ociLayout(t *testing.T, ref string, layer []byte) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	if err := testimage.BuildFromLayer(&buf, ref, layer, true); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// TestImportRefused: tarballs the driver must refuse are refused whole: a gzip bomb
// over the unpacked cap, a tarball over the size cap, an invalid reference name, and a
// layer containerd cannot unpack. None leaves its name in containerd's image store,
// and a name that pointed at an image before still does.
func TestImportRefused(t *testing.T) {
	env.Need(t)
	cfg := env.Config()
	cfg.ImageLimits = imagetar.Limits{MaxSize: 4 << 20, MaxUnpacked: 64 << 20}
	d, err := containerd.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	is := env.Client(t).ImageService()
	ctx := context.Background()

	const kept = "localhost/strata/import-kept:1"
	good := ociLayout(t, kept, zerosLayer(t, 1000))
	if _, err := d.ImportImage(ctx, good); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = is.Delete(context.Background(), kept) }()
	before, err := is.Get(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}

	bomb := ociLayout(t, "localhost/strata/bomb:1", zerosLayer(t, 100<<20))
	t.Logf("bomb: %d bytes of tarball, 100 MiB unpacked", bomb.Len())
	for _, tc := range []struct {
		name, ref string
		data      *bytes.Buffer
		kind      error
		want      []string
	}{
		{"gzip bomb", "localhost/strata/bomb:1", bomb, runtime.ErrTooLarge, []string{"localhost/strata/bomb:1", "67108864"}},
		{"over the size cap", "localhost/strata/big:1", bytes.NewBuffer(append(ociLayout(t, "localhost/strata/big:1", zerosLayer(t, 10)).Bytes(), make([]byte, 5<<20)...)),
			runtime.ErrTooLarge, []string{"4194304"}},
		{"invalid reference", "", ociLayout(t, "Bad/Name:!", zerosLayer(t, 10)), runtime.ErrInvalid, []string{`"Bad/Name:!"`}},
		{"unpack fails, new name", "localhost/strata/broken:1", ociLayout(t, "localhost/strata/broken:1", []byte(strings.Repeat("not a tar ", 100))), nil, []string{"localhost/strata/broken:1"}},
		{"unpack fails, name in use", kept, ociLayout(t, kept, []byte(strings.Repeat("not a tar ", 100))), nil, []string{kept}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs, err := d.ImportImage(ctx, tc.data)
			if err == nil {
				t.Fatalf("imported %v; want it refused", refs)
			}
			t.Logf("refused: %v", err)
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error is not %v", tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q", w)
				}
			}
			if tc.ref == kept {
				img, err := is.Get(ctx, kept)
				if err != nil || img.Target.Digest != before.Target.Digest {
					t.Errorf("%s after the failed import: %v %v, want it still at %s", kept, img.Target.Digest, err, before.Target.Digest)
				}
			} else if tc.ref != "" {
				if _, err := is.Get(ctx, tc.ref); !errdefs.IsNotFound(err) {
					t.Errorf("%s is registered after the failed import (%v)", tc.ref, err)
				}
			}
		})
	}
	list, err := is.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list {
		if strings.Contains(img.Name, "bomb") || strings.Contains(img.Name, "broken") || strings.Contains(img.Name, "big") || strings.Contains(strings.ToLower(img.Name), "bad") {
			t.Errorf("image %s is registered after a failed import", img.Name)
		}
	}
}
