package imagetar_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/imagetar"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/testimage"
)

// layerTar is a layer holding one file of size bytes of zeros: it compresses about
// a thousand times.
func layerTar(t testing.TB, size int) []byte {
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

func layout(t testing.TB, ref string, layer []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := testimage.BuildFromLayer(&buf, ref, layer, true); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestNames: the references an OCI layout and a docker archive give, normalised.
func TestNames(t *testing.T) {
	layer := layerTar(t, 1000)
	rep, err := imagetar.Check(bytes.NewReader(layout(t, "localhost/shop/web:1", layer)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != 1 || rep.Images[0] != "localhost/shop/web:1" || rep.Layers != 1 || rep.Unpacked != int64(len(layer)) {
		t.Errorf("report %+v, want localhost/shop/web:1, one layer of %d bytes", rep, len(layer))
	}
	var buf bytes.Buffer
	if err := testimage.BuildDockerArchive(&buf, "web:2"); errors.Is(err, testimage.ErrNoBusybox) {
		testenv.Skipf(t, "%v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	rep, err = imagetar.Check(bytes.NewReader(buf.Bytes()), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != 1 || rep.Images[0] != "docker.io/library/web:2" || rep.Layers != 1 || rep.Unpacked == 0 {
		t.Errorf("report %+v, want docker.io/library/web:2 and one layer", rep)
	}
}

// TestBomb: a tarball of about 100 KiB whose layer unpacks to 100 MiB is refused
// past the cap, with an error naming the image and the cap, after reading no more
// than the cap.
func TestBomb(t *testing.T) {
	data := layout(t, "localhost/bomb:1", layerTar(t, 100<<20))
	if len(data) > 1<<20 {
		t.Fatalf("the bomb is %d bytes; the test wants a small one", len(data))
	}
	_, err := imagetar.Check(bytes.NewReader(data), 64<<20)
	if !errors.Is(err, runtime.ErrTooLarge) || !strings.Contains(err.Error(), "localhost/bomb:1") || !strings.Contains(err.Error(), "67108864") {
		t.Errorf("err = %v, want runtime.ErrTooLarge naming the image and the cap", err)
	}
	if _, err := imagetar.Check(bytes.NewReader(data), 200<<20); err != nil {
		t.Errorf("within the cap: %v", err)
	}
}

// TestRefused: tarballs that name no image, an invalid reference, or miss a blob.
func TestRefused(t *testing.T) {
	good := layout(t, "localhost/x:1", layerTar(t, 10))
	withIndex := func(mutate func(idx map[string]any)) []byte {
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		tr := tar.NewReader(bytes.NewReader(good))
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(tr)
			if hdr.Name == "index.json" {
				var idx map[string]any
				if err := json.Unmarshal(b.Bytes(), &idx); err != nil {
					t.Fatal(err)
				}
				mutate(idx)
				nb, _ := json.Marshal(idx)
				b.Reset()
				b.Write(nb)
				hdr.Size = int64(b.Len())
			}
			_ = tw.WriteHeader(hdr)
			_, _ = tw.Write(b.Bytes())
		}
		_ = tw.Close()
		return out.Bytes()
	}
	first := func(idx map[string]any) map[string]any { return idx["manifests"].([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"invalid reference", `"Bad/Name:!"`, layout(t, "Bad/Name:!", layerTar(t, 10))},
		{"no name", "names no image", withIndex(func(idx map[string]any) { delete(first(idx), "annotations") })},
		{"short containerd name", "not a full image reference", withIndex(func(idx map[string]any) {
			first(idx)["annotations"] = map[string]any{"io.containerd.image.name": "busybox"}
		})},
		{"missing manifest", "is not in the tarball", withIndex(func(idx map[string]any) {
			first(idx)["digest"] = "sha256:" + strings.Repeat("0", 64)
		})},
		{"digest with a path", "is not ALGORITHM:HEX", withIndex(func(idx map[string]any) {
			first(idx)["digest"] = "sha256:../../index.json"
		})},
		{"not an image", "neither an OCI image layout", func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			_ = tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeReg})
			_ = tw.Close()
			return b.Bytes()
		}()},
		{"not a tarball", "image tarball", []byte("not a tarball at all, just some text that is long enough to fill a block of 512 bytes" + strings.Repeat(".", 600))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := imagetar.Check(bytes.NewReader(tc.data), 0)
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// TestReadCaps: Read refuses a tarball over MaxSize after reading just past the cap,
// and a bomb over MaxUnpacked; the file it returns is at its start.
func TestReadCaps(t *testing.T) {
	data := layout(t, "localhost/x:1", layerTar(t, 1<<20))
	r := &countingReader{r: bytes.NewReader(append(data, make([]byte, 1<<20)...))}
	if _, _, err := imagetar.Read(r, t.TempDir(), imagetar.Limits{MaxSize: 4096}); !errors.Is(err, runtime.ErrTooLarge) || !strings.Contains(err.Error(), "4096") {
		t.Errorf("over MaxSize: %v, want ErrTooLarge naming the cap", err)
	}
	if r.n > 4096+32<<10 {
		t.Errorf("read %d bytes of an upload over a cap of 4096", r.n)
	}
	if _, _, err := imagetar.Read(bytes.NewReader(data), t.TempDir(), imagetar.Limits{MaxUnpacked: 1 << 19}); !errors.Is(err, runtime.ErrTooLarge) {
		t.Errorf("over MaxUnpacked: %v, want ErrTooLarge", err)
	}
	dir := t.TempDir()
	f, rep, err := imagetar.Read(bytes.NewReader(data), dir, imagetar.Limits{MaxSize: int64(len(data)), MaxUnpacked: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var back bytes.Buffer
	if _, err := back.ReadFrom(f); err != nil || !bytes.Equal(back.Bytes(), data) || rep.Images[0] != "localhost/x:1" {
		t.Errorf("the file holds %d bytes (%v), want the %d of the tarball; report %+v", back.Len(), err, len(data), rep)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the spool directory holds %v", left)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
