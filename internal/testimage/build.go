package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
)

// Build writes an OCI image layout tarball holding one image named ref (the
// org.opencontainers.image.ref.name annotation of its index entry).
func Build(w io.Writer, ref string) error {
	return BuildWithFiles(w, ref, nil)
}

// BuildWithFiles is Build with extra executable files in the layer: extra
// maps a path in the image ("bin/spoof") to its content (a static binary a
// test built). The paths' directories must be ones the image has (bin/,
// etc/, tmp/).
func BuildWithFiles(w io.Writer, ref string, extra map[string][]byte) error {
	img, err := build(extra)
	if err != nil {
		return err
	}
	return writeLayout(w, ref, img)
}

// BuildFromLayer writes an OCI image layout tarball like Build's whose image's only
// layer is the tar stream layer instead of busybox, gzip-compressed when gz is set:
// for tests of layers an importer must refuse (too large, hostile entries). It needs
// no busybox.
func BuildFromLayer(w io.Writer, ref string, layer []byte, gz bool) error {
	img, err := newImage(layer, gz, runConfig{Cmd: DefaultCmd})
	if err != nil {
		return err
	}
	return writeLayout(w, ref, img)
}

// BuildProgram writes an OCI image layout tarball like Build's whose image
// holds only one executable, /name with the content program (a static
// binary), and runs it: the config's command is ["/name"]. It needs no
// busybox. A test cluster's pause image is one.
func BuildProgram(w io.Writer, ref, name string, program []byte) error {
	return buildProgram(w, ref, name, program, runConfig{Cmd: []string{"/" + name}})
}

// BuildEntrypoint is BuildProgram for a program that is given its arguments
// when it runs (a container's args, `docker run IMAGE ARGS`): the config
// names it as the entrypoint, ["/name"], with no command, and the image runs
// as user ("UID:GID"; "" is root). strata's own image, which
// deploy/operator runs, is one: `make operator-image` writes it.
func BuildEntrypoint(w io.Writer, ref, name string, program []byte, user string) error {
	return buildProgram(w, ref, name, program, runConfig{Entrypoint: []string{"/" + name}, User: user})
}

func buildProgram(w io.Writer, ref, name string, program []byte, run runConfig) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("program name %q: want a file name without a slash", name)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeFile(tw, name, 0o755, program); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	img, err := newImage(buf.Bytes(), false, run)
	if err != nil {
		return err
	}
	return writeLayout(w, ref, img)
}

// writeLayout writes img as an OCI image layout tarball, named ref.
func writeLayout(w io.Writer, ref string, img image) error {
	m := img.manifest.descriptor(mediaTypeManifest)
	m.Annotations = map[string]string{annotationRefName: ref}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeIndex,
		"manifests":     []descriptor{m},
	})
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"blobs/sha256/" + img.config.hex(), img.config.data},
		{"blobs/sha256/" + img.layer.hex(), img.layer.data},
		{"blobs/sha256/" + img.manifest.hex(), img.manifest.data},
	}
	dirs := []string{"blobs/", "blobs/sha256/"}
	for _, d := range dirs {
		if err := writeDir(tw, d, 0o755); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write image tarball: %w", err)
	}
	return nil
}

// BuildDockerArchive writes the same image as a docker-archive tarball (the
// format of `docker save`) tagged repoTag ("localhost/strata/test:1").
func BuildDockerArchive(w io.Writer, repoTag string) error {
	img, err := build(nil)
	if err != nil {
		return err
	}
	configName := img.config.hex() + ".json"
	layerName := img.layer.hex() + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{repoTag},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return fmt.Errorf("encode manifest.json: %w", err)
	}
	tw := tar.NewWriter(w)
	if err := writeDir(tw, path.Dir(layerName)+"/", 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{layerName, img.layer.data},
		{configName, img.config.data},
		{"manifest.json", manifest},
	} {
		if err := writeFile(tw, f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write docker archive: %w", err)
	}
	return nil
}

// build makes the layer, config and manifest blobs.
func build(extra map[string][]byte) (image, error) {
	bb, err := readBusybox()
	if err != nil {
		return image{}, err
	}
	layer, err := buildLayer(bb, extra)
	if err != nil {
		return image{}, err
	}
	return newImage(layer, false, runConfig{Cmd: DefaultCmd})
}

// runConfig is what an image's config says of how its container runs.
type runConfig struct {
	Cmd, Entrypoint []string
	User            string
}

// newImage makes the blobs of an image of one layer, the tar stream layer, stored
// gzip-compressed when gz is set, whose config runs as run says.
func newImage(layer []byte, gz bool, run runConfig) (image, error) {
	diffID := newBlob(layer).digest
	img := image{layer: newBlob(layer)}
	layerType := mediaTypeLayer
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(layer); err != nil {
			return image{}, err
		}
		if err := zw.Close(); err != nil {
			return image{}, err
		}
		img.layer, layerType = newBlob(buf.Bytes()), mediaTypeLayer+"+gzip"
	}
	config, err := json.Marshal(map[string]any{
		"created":      Epoch,
		"architecture": arch(),
		"os":           "linux",
		"config":       configOf(run),
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{diffID},
		},
	})
	if err != nil {
		return image{}, fmt.Errorf("encode image config: %w", err)
	}
	img.config = newBlob(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        img.config.descriptor(mediaTypeConfig),
		"layers":        []descriptor{img.layer.descriptor(layerType)},
	})
	if err != nil {
		return image{}, fmt.Errorf("encode image manifest: %w", err)
	}
	img.manifest = newBlob(manifest)
	return img, nil
}

// configOf is the config object of an image config ("config") for run.
func configOf(run runConfig) map[string]any {
	c := map[string]any{
		"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		"WorkingDir": "/",
	}
	if run.Cmd != nil {
		c["Cmd"] = run.Cmd
	}
	if run.Entrypoint != nil {
		c["Entrypoint"] = run.Entrypoint
	}
	if run.User != "" {
		c["User"] = run.User
	}
	return c
}

// buildLayer returns the uncompressed layer tar: the directories, busybox and
// its applet links, and the extra files in name order.
func buildLayer(busybox []byte, extra map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"bin/", 0o755}, {"dev/", 0o755}, {"etc/", 0o755}, {"proc/", 0o555},
		{"sys/", 0o555}, {"tmp/", 0o1777},
	} {
		if err := writeDir(tw, d.name, d.mode); err != nil {
			return nil, err
		}
	}
	if err := writeFile(tw, "bin/busybox", 0o755, busybox); err != nil {
		return nil, err
	}
	for _, a := range Applets {
		h := header("bin/"+a, 0o777)
		h.Typeflag = tar.TypeSymlink
		h.Linkname = "busybox"
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write layer entry %s: %w", h.Name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if err := writeFile(tw, name, 0o755, extra[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	return buf.Bytes(), nil
}

func header(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Mode: mode, ModTime: Epoch, Format: tar.FormatUSTAR}
}

func writeDir(tw *tar.Writer, name string, mode int64) error {
	h := header(name, mode)
	h.Typeflag = tar.TypeDir
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write tar entry %s: %w", name, err)
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	h := header(name, mode)
	h.Typeflag = tar.TypeReg
	h.Size = int64(len(data))
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write tar entry %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write tar entry %s: %w", name, err)
	}
	return nil
}
