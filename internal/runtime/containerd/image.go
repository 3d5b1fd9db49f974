package containerd

import (
	"context"
	"fmt"
	"io"
	"sync"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"

	"strata.dev/strata/internal/runtime"
)

// ImportImage implements runtime.ImageImporter: client.Import reads the
// tarball (OCI layout or docker archive) into containerd's content store
// under the names it carries, then each image is unpacked into the
// snapshotter unless it already is.
func (d *Driver) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	imgs, err := d.client.Import(ctx, r,
		ctr.WithImageRefTranslator(translateRef),
		ctr.WithSkipDigestRef(func(string) bool { return true }),
	)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	refs := make([]string, 0, len(imgs))
	for _, i := range imgs {
		img := ctr.NewImage(d.client, i)
		if err := d.unpack(ctx, img); err != nil {
			return nil, fmt.Errorf("import image %s: %w", i.Name, err)
		}
		refs = append(refs, i.Name)
	}
	return refs, nil
}

// translateRef turns the org.opencontainers.image.ref.name annotation of an
// OCI layout into the image's name: the normalised reference, or "" (no
// name) when it is not a valid reference.
func translateRef(name string) string {
	ref, err := runtime.NormalizeImage(name)
	if err != nil {
		return ""
	}
	return ref
}

// image returns the named image, unpacked; the error wraps
// runtime.ErrImageNotFound when the store has no such image.
func (d *Driver) image(ctx context.Context, ref string) (ctr.Image, error) {
	name, err := runtime.NormalizeImage(ref)
	if err != nil {
		return nil, err
	}
	img, err := d.client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s: %w (import it with `strata image import`)", ref, runtime.ErrImageNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if err := d.unpack(ctx, img); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, nil
}

// unpack unpacks img into the snapshotter unless it already is; one unpack
// per image at a time.
func (d *Driver) unpack(ctx context.Context, img ctr.Image) error {
	m, _ := d.imageLocks.LoadOrStore(img.Name(), &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	ok, err := img.IsUnpacked(ctx, d.cfg.Snapshotter)
	if err != nil {
		return fmt.Errorf("check unpacked: %w", err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, d.cfg.Snapshotter); err != nil {
		return fmt.Errorf("unpack into %s: %w", d.cfg.Snapshotter, err)
	}
	return nil
}
