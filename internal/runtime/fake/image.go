package fake

import (
	"context"
	"fmt"
	"io"

	"strata.dev/strata/internal/runtime/imagetar"
)

// ImportImage implements runtime.ImageImporter: it checks the tarball as the
// containerd driver does (imagetar: an OCI layout or a docker archive, valid names,
// layers within the default caps) and records the names it gives its images. A
// refused tarball records nothing.
func (d *Driver) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	f, rep, err := imagetar.Read(r, "", imagetar.Limits{MaxSize: imagetar.DefaultMaxSize, MaxUnpacked: imagetar.DefaultMaxUnpacked})
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	f.Close()
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	for _, ref := range rep.Images {
		d.host.images[ref] = true
	}
	return rep.Images, nil
}
