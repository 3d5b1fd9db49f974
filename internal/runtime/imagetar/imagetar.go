// Package imagetar reads an image tarball (an OCI image layout or a docker archive)
// before any of it is stored: the names it gives its images, checked, and the size
// its layers unpack to, counted up to a bound. Drivers check a tarball with it first,
// so that a tarball with a bad name or layers that unpack to too much is refused
// whole and leaves nothing behind.
package imagetar

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/containerd/containerd/archive/compression"
	"github.com/distribution/reference"

	"strata.dev/strata/internal/runtime"
)

// Annotations that name an image in an OCI layout's index.json.
const (
	annotationRefName   = "org.opencontainers.image.ref.name"
	annotationImageName = "io.containerd.image.name"
)

const (
	// maxSmall is the size up to which a file of the tarball is kept in memory in
	// case it is a manifest, an index or a configuration.
	maxSmall = 1 << 20
	// maxKept bounds the small files kept in memory altogether.
	maxKept = 64 << 20
	// maxDepth bounds how deeply indexes may nest.
	maxDepth = 4
)

// Limits are the caps on an image tarball.
type Limits struct {
	// MaxSize bounds the tarball itself, in bytes; 0 is no bound.
	MaxSize int64
	// MaxUnpacked bounds what its layers unpack to, in bytes; 0 is no bound.
	MaxUnpacked int64
}

// Defaults of Limits for the daemon: large enough for big real images, small enough
// that one upload cannot fill the host.
const (
	DefaultMaxSize     = 4 << 30
	DefaultMaxUnpacked = 16 << 30
)

// Report is what Check found.
type Report struct {
	// Images are the normalised references the tarball names, in its order.
	Images []string
	// Layers is the number of distinct layers.
	Layers int
	// Unpacked is the size the layers unpack to, in bytes.
	Unpacked int64
}

// Check reads the tarball from r twice (it seeks back to the start): once for its
// names and manifests, once to count what its layers unpack to. It fails, with an
// error wrapping runtime.ErrInvalid, when the tarball is neither an OCI layout nor a
// docker archive, names no image or an invalid reference, or misses a blob its
// manifests need; and with an error wrapping runtime.ErrTooLarge when its layers
// unpack to more than maxUnpacked bytes (0: no bound).
func Check(r io.ReadSeeker, maxUnpacked int64) (Report, error) {
	t, err := scan(r)
	if err != nil {
		return Report{}, err
	}
	var (
		rep    Report
		layers []string
	)
	switch {
	case t.small["oci-layout"] != nil || t.small["index.json"] != nil:
		rep.Images, layers, err = t.oci()
	case t.small["manifest.json"] != nil:
		rep.Images, layers, err = t.docker()
	default:
		err = errors.New("neither an OCI image layout (index.json) nor a docker archive (manifest.json)")
	}
	if err != nil {
		return Report{}, fmt.Errorf("%w: image tarball: %w", runtime.ErrInvalid, err)
	}
	if len(rep.Images) == 0 {
		return Report{}, fmt.Errorf("%w: image tarball: it names no image; name it with the %s annotation in index.json (OCI layout) or RepoTags in manifest.json (docker archive)",
			runtime.ErrInvalid, annotationRefName)
	}
	rep.Layers = len(layers)
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return Report{}, err
	}
	rep.Unpacked, err = unpackedSize(r, layers, maxUnpacked)
	if errors.Is(err, runtime.ErrTooLarge) {
		return Report{}, fmt.Errorf("image %s: %w: its layers unpack to more than %d bytes, the cap", strings.Join(rep.Images, ", "), runtime.ErrTooLarge, maxUnpacked)
	}
	if err != nil {
		return Report{}, fmt.Errorf("image %s: %w", strings.Join(rep.Images, ", "), err)
	}
	return rep, nil
}

// Read copies an image tarball from r into a file under dir (the file has no name:
// it goes when it is closed) and checks it (Check). It returns the file, at its
// start, for the caller to import and close. A tarball larger than lim.MaxSize is
// refused once that much has been read, with an error wrapping runtime.ErrTooLarge.
func Read(r io.Reader, dir string, lim Limits) (*os.File, Report, error) {
	f, err := os.CreateTemp(dir, ".image-*.tar")
	if err != nil {
		return nil, Report{}, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, Report{}, err
	}
	rep, err := read(f, r, lim)
	if err != nil {
		f.Close()
		return nil, Report{}, err
	}
	return f, rep, nil
}

func read(f *os.File, r io.Reader, lim Limits) (Report, error) {
	src := r
	if lim.MaxSize > 0 {
		src = io.LimitReader(r, lim.MaxSize+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		return Report{}, fmt.Errorf("image tarball: read: %w", err)
	}
	if lim.MaxSize > 0 && n > lim.MaxSize {
		return Report{}, fmt.Errorf("%w: image tarball: larger than %d bytes, the cap", runtime.ErrTooLarge, lim.MaxSize)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Report{}, err
	}
	rep, err := Check(f, lim.MaxUnpacked)
	if err != nil {
		return Report{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// tarball is what the first reading keeps: every file's size, its symbolic links,
// and the contents of its small files.
type tarball struct {
	files    map[string]int64
	symlinks map[string]string
	small    map[string][]byte
}

func scan(r io.Reader) (*tarball, error) {
	t := &tarball{files: map[string]int64{}, symlinks: map[string]string{}, small: map[string][]byte{}}
	kept := 0
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: image tarball: %w", runtime.ErrInvalid, err)
		}
		name := path.Clean(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			// A name within the tarball, kept in memory to find blobs by; nothing is written.
			t.symlinks[name] = path.Join(path.Dir(name), hdr.Linkname) //nolint:gosec // G305: nothing is extracted here
		case tar.TypeReg:
			t.files[name] = hdr.Size
			if hdr.Size > maxSmall {
				continue
			}
			if kept += int(hdr.Size); kept > maxKept {
				return nil, fmt.Errorf("%w: image tarball: more than %d bytes of manifests and small files", runtime.ErrInvalid, maxKept)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%w: image tarball: %s: %w", runtime.ErrInvalid, name, err)
			}
			t.small[name] = b
		}
	}
}

// descriptor is the part of an OCI descriptor Check needs.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

// manifest is an OCI or docker image manifest or index: an index lists manifests, a
// manifest lists layers.
type manifest struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Layers    []descriptor `json:"layers"`
}

// oci reads an OCI layout: the names index.json gives and every layer reachable.
func (t *tarball) oci() (names, layers []string, err error) {
	var idx manifest
	if err := json.Unmarshal(t.small["index.json"], &idx); err != nil {
		return nil, nil, fmt.Errorf("index.json: %w", err)
	}
	seen := map[string]bool{}
	for i, d := range idx.Manifests {
		if name, ok := d.Annotations[annotationImageName]; ok {
			ref, err := runtime.NormalizeImage(name)
			if err != nil || ref != name {
				return nil, nil, fmt.Errorf("index.json: manifests[%d]: annotation %s %q is not a full image reference (like %s)",
					i, annotationImageName, name, "docker.io/library/busybox:1.36")
			}
			names = append(names, ref)
		} else if name, ok := d.Annotations[annotationRefName]; ok {
			ref, err := normalize(name)
			if err != nil {
				return nil, nil, fmt.Errorf("index.json: manifests[%d]: reference name %q (annotation %s) is not a valid image reference: %w", i, name, annotationRefName, err)
			}
			names = append(names, ref)
		}
		if err := t.walk(d, 0, seen, &layers); err != nil {
			return nil, nil, fmt.Errorf("index.json: manifests[%d]: %w", i, err)
		}
	}
	return names, layers, nil
}

// walk adds the layers under descriptor d to layers.
func (t *tarball) walk(d descriptor, depth int, seen map[string]bool, layers *[]string) error {
	if depth > maxDepth {
		return fmt.Errorf("indexes nest more than %d deep", maxDepth)
	}
	blob, err := blobName(d.Digest)
	if err != nil {
		return err
	}
	b, ok := t.small[blob]
	if !ok {
		if _, ok := t.files[blob]; ok {
			return fmt.Errorf("manifest %s is larger than %d bytes", d.Digest, maxSmall)
		}
		return fmt.Errorf("manifest %s is not in the tarball", d.Digest)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	for _, c := range m.Manifests {
		if err := t.walk(c, depth+1, seen, layers); err != nil {
			return err
		}
	}
	for _, l := range m.Layers {
		name, err := blobName(l.Digest)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		if _, ok := t.files[name]; !ok {
			return fmt.Errorf("manifest %s: layer %s is not in the tarball", d.Digest, l.Digest)
		}
		if !seen[name] {
			seen[name] = true
			*layers = append(*layers, name)
		}
	}
	return nil
}

// normalize is runtime.NormalizeImage with the parser's own error, for messages
// that already say the input is invalid.
func normalize(name string) (string, error) {
	named, err := reference.ParseDockerRef(name)
	if err != nil {
		return "", err
	}
	return named.String(), nil
}

// blobName is where an OCI layout keeps the blob of digest ("sha256:HEX").
func blobName(digest string) (string, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || alg == "" || hex == "" || strings.ContainsAny(digest, "/.") {
		return "", fmt.Errorf("digest %q is not ALGORITHM:HEX", digest)
	}
	return path.Join("blobs", alg, hex), nil
}

// docker reads a docker archive's manifest.json: its RepoTags and layer files.
func (t *tarball) docker() (names, layers []string, err error) {
	var ms []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(t.small["manifest.json"], &ms); err != nil {
		return nil, nil, fmt.Errorf("manifest.json: %w", err)
	}
	seen := map[string]bool{}
	for i, m := range ms {
		for j, tag := range m.RepoTags {
			ref, err := normalize(tag)
			if err != nil {
				return nil, nil, fmt.Errorf("manifest.json: [%d].RepoTags[%d]: %q is not a valid image reference: %w", i, j, tag, err)
			}
			names = append(names, ref)
		}
		for j, l := range m.Layers {
			name := path.Clean(l)
			for hops := 0; hops < 8; hops++ {
				target, ok := t.symlinks[name]
				if !ok {
					break
				}
				name = target
			}
			if _, ok := t.files[name]; !ok {
				return nil, nil, fmt.Errorf("manifest.json: [%d].Layers[%d]: %q is not in the tarball", i, j, l)
			}
			if !seen[name] {
				seen[name] = true
				layers = append(layers, name)
			}
		}
	}
	return names, layers, nil
}

// unpackedSize reads the tarball again and adds up what each of layers decompresses
// to, stopping past max.
func unpackedSize(r io.Reader, layers []string, max int64) (int64, error) {
	want := map[string]bool{}
	for _, l := range layers {
		want[l] = true
	}
	var total int64
	tr := tar.NewReader(r)
	for len(want) > 0 {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !want[name] {
			continue
		}
		delete(want, name)
		ds, err := compression.DecompressStream(tr)
		if err != nil {
			return total, fmt.Errorf("layer %s: %w", name, err)
		}
		var src io.Reader = ds
		if max > 0 {
			src = io.LimitReader(ds, max-total+1)
		}
		n, err := io.Copy(io.Discard, src)
		ds.Close()
		total += n
		if err != nil {
			return total, fmt.Errorf("%w: layer %s: %w", runtime.ErrInvalid, name, err)
		}
		if max > 0 && total > max {
			return total, runtime.ErrTooLarge
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for l := range want {
			missing = append(missing, l)
		}
		sort.Strings(missing)
		return total, fmt.Errorf("%w: layers %v are not in the tarball", runtime.ErrInvalid, missing)
	}
	return total, nil
}
