// Package testimage builds small OCI images for strata's tests from the
// host's static busybox (Debian's busybox-static, /bin/busybox).
//
// An image has one layer: /bin/busybox, a symlink /bin/NAME -> busybox for
// each of Applets, and the empty directories a container runtime expects
// (/dev, /etc, /proc, /sys, /tmp). Its config sets PATH and the default
// command ["sh"]. The output is deterministic: every file has the mtime
// Epoch and the tar headers carry no owner names, so the same busybox binary
// and reference always give the same bytes (and digests).
//
// Build writes an OCI image layout as a tar stream; BuildDockerArchive writes
// the same image as a docker-archive (the format of `docker save`).
package testimage

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"time"
)

// Busybox is where the static busybox binary is read from.
const Busybox = "/bin/busybox"

// Applets are the busybox applets linked into /bin.
var Applets = []string{
	"sh", "sleep", "echo", "cat", "env", "head", "dd", "httpd", "wget", "nc", "true", "false",
}

// DefaultCmd is the image config's default command.
var DefaultCmd = []string{"sh"}

// Epoch is the modification time of every file in the image and the
// image's creation time.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrNoBusybox reports that /bin/busybox is missing or not statically linked.
var ErrNoBusybox = errors.New("no static busybox at " + Busybox + " (install Debian's busybox-static: make host-setup)")

// Media types of the OCI image specification.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	annotationRefName = "org.opencontainers.image.ref.name"
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blob is one piece of content and its digest.
type blob struct {
	data   []byte
	digest string // "sha256:<hex>"
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{data: data, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

func (b blob) hex() string { return b.digest[len("sha256:"):] }

func (b blob) descriptor(mediaType string) descriptor {
	return descriptor{MediaType: mediaType, Digest: b.digest, Size: int64(len(b.data))}
}

// image is a built image: its layer, config and manifest blobs.
type image struct {
	layer, config, manifest blob
}

// readBusybox returns the busybox binary, checking that it is a static ELF
// executable (a dynamic one would not run in the image).
func readBusybox() ([]byte, error) {
	data, err := os.ReadFile(Busybox)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoBusybox, err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an ELF executable: %w", ErrNoBusybox, Busybox, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%w: %s is dynamically linked", ErrNoBusybox, Busybox)
		}
	}
	return data, nil
}

// arch returns the OCI architecture name of the host, which is the
// busybox binary's.
func arch() string { return goruntime.GOARCH }
