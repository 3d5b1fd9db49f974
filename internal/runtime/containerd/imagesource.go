package containerd

import (
	"context"
	"errors"
	"fmt"

	ctr "github.com/containerd/containerd"
	layers "github.com/opencontainers/image-spec/identity"

	"strata.dev/strata/internal/runtime"
)

// ResolveImage implements runtime.ImageSource: it reads the image's manifest
// digest, the chain ID of its layers and its run configuration for the host
// platform, unpacking the image first if it is not yet.
func (d *Driver) ResolveImage(ctx context.Context, ref string) (runtime.ImageInfo, error) {
	if err := d.check(ctx); err != nil {
		return runtime.ImageInfo{}, err
	}
	img, err := d.image(ctx, ref)
	if err != nil {
		return runtime.ImageInfo{}, err
	}
	info, err := imageInfo(ctx, img)
	if err != nil {
		return runtime.ImageInfo{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return info, nil
}

// imageInfo reads img's identity and run configuration.
func imageInfo(ctx context.Context, img ctr.Image) (runtime.ImageInfo, error) {
	spec, err := img.Spec(ctx)
	if err != nil {
		return runtime.ImageInfo{}, fmt.Errorf("read config: %w", err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return runtime.ImageInfo{}, fmt.Errorf("read layers: %w", err)
	}
	if len(diffIDs) == 0 {
		return runtime.ImageInfo{}, errors.New("the image has no layers")
	}
	return runtime.ImageInfo{
		Ref:        img.Name(),
		Digest:     img.Target().Digest.String(),
		ChainID:    layers.ChainID(diffIDs).String(),
		Entrypoint: spec.Config.Entrypoint,
		Cmd:        spec.Config.Cmd,
		Env:        spec.Config.Env,
		WorkingDir: spec.Config.WorkingDir,
		User:       spec.Config.User,
	}, nil
}

// WithImageRoot implements runtime.ImageSource: it mounts a read-only view
// of the image's unpacked root filesystem (see view) under
// Config.StateDir/views, calls fn with its path, then unmounts and removes
// the view, also when fn fails or panics. Each call has its own view, so
// calls for the same image may run at once. fn's error is returned as it is;
// a failure to clean up is joined to it.
func (d *Driver) WithImageRoot(ctx context.Context, ref string, fn func(root string) error) (err error) {
	if err := d.check(ctx); err != nil {
		return err
	}
	img, err := d.image(ctx, ref)
	if err != nil {
		return err
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return fmt.Errorf("image %s: read layers: %w", ref, err)
	}
	if len(diffIDs) == 0 {
		return fmt.Errorf("image %s: the image has no layers", ref)
	}
	v, err := d.openView(ctx, layers.ChainID(diffIDs).String(), img.Name())
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := v.close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("image %s: %w", ref, cerr))
		}
	}()
	return fn(v.root)
}
