package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/imagetar"
)

// ImportImage implements runtime.ImageImporter. The tarball (OCI layout or docker
// archive) is copied to a file under the state directory and checked first
// (imagetar: at most Config.ImageLimits.MaxSize bytes, valid names, layers that
// unpack to at most Config.ImageLimits.MaxUnpacked), so a refused tarball puts
// nothing into containerd. Then client.Import stores it under the names it carries
// and each image is unpacked into the snapshotter unless it already is. When an
// unpack fails, the names this import created are removed and those it re-pointed
// get their old image back: a failed import leaves the image store as it was.
func (d *Driver) ImportImage(ctx context.Context, r io.Reader) (refs []string, err error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	f, rep, err := imagetar.Read(r, d.cfg.StateDir, d.cfg.ImageLimits)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	defer f.Close()
	is := d.client.ImageService()
	before := map[string]*images.Image{}
	for _, ref := range rep.Images {
		old, err := is.Get(ctx, ref)
		switch {
		case err == nil:
			before[ref] = &old
		case errdefs.IsNotFound(err):
			before[ref] = nil
		default:
			return nil, fmt.Errorf("import image %s: %w", ref, err)
		}
	}
	imgs, err := d.client.Import(ctx, f,
		ctr.WithImageRefTranslator(translateRef),
		ctr.WithSkipDigestRef(func(string) bool { return true }),
	)
	defer func() {
		if err != nil {
			err = errors.Join(err, d.undoImport(context.WithoutCancel(ctx), imgs, before))
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	refs = make([]string, 0, len(imgs))
	for _, i := range imgs {
		img := ctr.NewImage(d.client, i)
		if err := d.unpack(ctx, img); err != nil {
			return nil, fmt.Errorf("import image %s: %w", i.Name, err)
		}
		refs = append(refs, i.Name)
	}
	return refs, nil
}

// undoImport puts the names a failed import stored back as they were before it.
func (d *Driver) undoImport(ctx context.Context, imgs []images.Image, before map[string]*images.Image) error {
	is := d.client.ImageService()
	var errs []error
	for _, i := range imgs {
		old, known := before[i.Name]
		switch {
		case known && old != nil:
			if _, err := is.Update(ctx, *old, "target"); err != nil {
				errs = append(errs, fmt.Errorf("undo: restore image %s: %w", i.Name, err))
			}
		default:
			if err := is.Delete(ctx, i.Name); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("undo: remove image %s: %w", i.Name, err))
			}
		}
	}
	return errors.Join(errs...)
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
