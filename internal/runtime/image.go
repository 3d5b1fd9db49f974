package runtime

import (
	"fmt"

	"github.com/distribution/reference"
)

// NormalizeImage returns the canonical form of an image reference, the form
// image stores keep names in: Docker-style normalisation adds the default
// registry and tag ("busybox" becomes "docker.io/library/busybox:latest";
// "localhost/shop/web:1" stays as it is). The error wraps ErrInvalid.
func NormalizeImage(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w: image reference %q: %w", ErrInvalid, ref, err)
	}
	return named.String(), nil
}
