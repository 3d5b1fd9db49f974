package fake

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"strata.dev/strata/internal/runtime"
)

// maxMetadata bounds the size of index.json and manifest.json read from a
// tarball.
const maxMetadata = 4 << 20

// ImportImage implements runtime.ImageImporter: it records the names an OCI
// layout (annotations of index.json, each manifest's blob must be present)
// or a docker archive (RepoTags of manifest.json) gives its images.
func (d *Driver) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	var index, manifest []byte
	blobs := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("import image: read tarball: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		switch {
		case name == "index.json":
			index, err = io.ReadAll(io.LimitReader(tr, maxMetadata))
		case name == "manifest.json":
			manifest, err = io.ReadAll(io.LimitReader(tr, maxMetadata))
		case strings.HasPrefix(name, "blobs/"):
			blobs[strings.TrimPrefix(name, "blobs/")] = true
		}
		if err != nil {
			return nil, fmt.Errorf("import image: read %s: %w", name, err)
		}
	}
	var names []string
	switch {
	case index != nil:
		var idx struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(index, &idx); err != nil {
			return nil, fmt.Errorf("import image: index.json: %w", err)
		}
		for _, m := range idx.Manifests {
			if !blobs[strings.Replace(m.Digest, ":", "/", 1)] {
				return nil, fmt.Errorf("import image: index.json: manifest %s is not in the tarball", m.Digest)
			}
			name := m.Annotations["io.containerd.image.name"]
			if name == "" {
				name = m.Annotations["org.opencontainers.image.ref.name"]
			}
			names = append(names, name)
		}
	case manifest != nil:
		var ms []struct {
			RepoTags []string `json:"RepoTags"`
		}
		if err := json.Unmarshal(manifest, &ms); err != nil {
			return nil, fmt.Errorf("import image: manifest.json: %w", err)
		}
		for _, m := range ms {
			names = append(names, m.RepoTags...)
		}
	default:
		return nil, fmt.Errorf("import image: %w: neither an OCI layout (index.json) nor a docker archive (manifest.json)", runtime.ErrInvalid)
	}
	var refs []string
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	for _, name := range names {
		ref, err := runtime.NormalizeImage(name)
		if name == "" || err != nil {
			continue // an image without a usable name is not stored under one
		}
		d.host.images[ref] = true
		refs = append(refs, ref)
	}
	return refs, nil
}
