package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"strata.dev/strata/internal/testenv"
)

// needBusybox skips the test when the host has no static busybox.
func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := readBusybox(); errors.Is(err, ErrNoBusybox) {
		testenv.Skipf(t, "skipping: %v", err)
	}
}

// untar returns the regular files and symlinks of a tarball by name
// (symlinks as "-> target").
func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, Epoch)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s: %v", h.Name, err)
			}
			files[h.Name] = b
		case tar.TypeSymlink:
			files[h.Name] = []byte("-> " + h.Linkname)
		}
	}
}

type desc struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// blobOf returns the blob a descriptor points at, checking its digest and size.
func blobOf(t *testing.T, files map[string][]byte, d desc) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+d.Digest[len("sha256:"):]]
	if !ok {
		t.Fatalf("blob %s (%s) missing", d.Digest, d.MediaType)
	}
	if got := digestOf(b); got != d.Digest {
		t.Errorf("blob %s has digest %s", d.Digest, got)
	}
	if int64(len(b)) != d.Size {
		t.Errorf("blob %s: size %d, descriptor says %d", d.Digest, len(b), d.Size)
	}
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func decode(t *testing.T, what string, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Env        []string `json:"Env"`
		Cmd        []string `json:"Cmd"`
		Entrypoint []string `json:"Entrypoint"`
		User       string   `json:"User"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// checkLayer checks the layer holds busybox and every applet link.
func checkLayer(t *testing.T, layer []byte) {
	t.Helper()
	files := untar(t, layer)
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["bin/busybox"], bb) {
		t.Errorf("layer: bin/busybox differs from %s", Busybox)
	}
	for _, a := range Applets {
		if got := string(files["bin/"+a]); got != "-> busybox" {
			t.Errorf("layer: bin/%s is %q, want a symlink to busybox", a, got)
		}
	}
}

func checkConfig(t *testing.T, config []byte, layer []byte) {
	t.Helper()
	var c imageConfig
	decode(t, "config", config, &c)
	if c.OS != "linux" || c.Architecture == "" {
		t.Errorf("config: os %q architecture %q", c.OS, c.Architecture)
	}
	if !slices.Equal(c.Config.Cmd, DefaultCmd) {
		t.Errorf("config: Cmd %q, want %q", c.Config.Cmd, DefaultCmd)
	}
	if c.RootFS.Type != "layers" || !slices.Equal(c.RootFS.DiffIDs, []string{digestOf(layer)}) {
		t.Errorf("config: rootfs %+v, want the layer's digest %s", c.RootFS, digestOf(layer))
	}
}

func TestBuildLayout(t *testing.T) {
	needBusybox(t)
	const ref = "localhost/strata/test:1"
	var buf bytes.Buffer
	if err := Build(&buf, ref); err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())

	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	decode(t, "oci-layout", files["oci-layout"], &layout)
	if layout.Version != "1.0.0" {
		t.Errorf("oci-layout: imageLayoutVersion %q, want 1.0.0", layout.Version)
	}

	var index struct {
		SchemaVersion int    `json:"schemaVersion"`
		Manifests     []desc `json:"manifests"`
	}
	decode(t, "index.json", files["index.json"], &index)
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index.json: schemaVersion %d, %d manifests; want 2 and 1", index.SchemaVersion, len(index.Manifests))
	}
	m := index.Manifests[0]
	if got := m.Annotations["org.opencontainers.image.ref.name"]; got != ref {
		t.Errorf("index.json: ref.name %q, want %q", got, ref)
	}
	if m.MediaType != mediaTypeManifest {
		t.Errorf("index.json: manifest media type %q", m.MediaType)
	}

	var manifest struct {
		SchemaVersion int    `json:"schemaVersion"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}
	decode(t, "manifest", blobOf(t, files, m), &manifest)
	if manifest.SchemaVersion != 2 || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: schemaVersion %d, %d layers; want 2 and 1", manifest.SchemaVersion, len(manifest.Layers))
	}
	if manifest.Config.MediaType != mediaTypeConfig || manifest.Layers[0].MediaType != mediaTypeLayer {
		t.Errorf("manifest: media types %q, %q", manifest.Config.MediaType, manifest.Layers[0].MediaType)
	}
	layer := blobOf(t, files, manifest.Layers[0])
	checkConfig(t, blobOf(t, files, manifest.Config), layer)
	checkLayer(t, layer)
	if len(files) != 5 {
		t.Errorf("tarball holds %d files, want oci-layout, index.json and 3 blobs", len(files))
	}
}

func TestBuildDockerArchive(t *testing.T) {
	needBusybox(t)
	const tag = "localhost/strata/test:docker"
	var buf bytes.Buffer
	if err := BuildDockerArchive(&buf, tag); err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	var manifest []struct {
		Config   string   `json:"Config"`
		RepoTags []string `json:"RepoTags"`
		Layers   []string `json:"Layers"`
	}
	decode(t, "manifest.json", files["manifest.json"], &manifest)
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{tag}) || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json: %+v; want one image tagged %s with one layer", manifest, tag)
	}
	layer, ok := files[manifest[0].Layers[0]]
	if !ok {
		t.Fatalf("layer %s missing", manifest[0].Layers[0])
	}
	config, ok := files[manifest[0].Config]
	if !ok {
		t.Fatalf("config %s missing", manifest[0].Config)
	}
	checkConfig(t, config, layer)
	checkLayer(t, layer)
}

func TestDeterministic(t *testing.T) {
	needBusybox(t)
	tests := []struct {
		name  string
		build func(io.Writer, string) error
	}{
		{"oci", Build},
		{"docker", BuildDockerArchive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a, b, c bytes.Buffer
			if err := tt.build(&a, "localhost/strata/a:1"); err != nil {
				t.Fatal(err)
			}
			if err := tt.build(&b, "localhost/strata/a:1"); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Error("two builds of the same reference differ")
			}
			if err := tt.build(&c, "localhost/strata/b:1"); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a.Bytes(), c.Bytes()) {
				t.Error("builds of different references are identical; the name is not in the tarball")
			}
		})
	}
}

// TestUmociReadsLayout lets an independent implementation of the OCI image
// specification read the layout: umoci lists the tag and unpacks the image.
func TestUmociReadsLayout(t *testing.T) {
	needBusybox(t)
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		testenv.Skipf(t, "skipping: umoci not installed (make host-setup installs it)")
	}
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: umoci unpack needs root")
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := Build(&buf, "test"); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "layout")
	extract(t, buf.Bytes(), layout)
	out, err := exec.Command(umoci, "list", "--layout", layout).CombinedOutput()
	if err != nil || string(bytes.TrimSpace(out)) != "test" {
		t.Fatalf("umoci list: %v: %q, want the tag \"test\"", err, out)
	}
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command(umoci, "unpack", "--image", layout+":test", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v: %s", err, out)
	}
	target, err := os.Readlink(filepath.Join(bundle, "rootfs", "bin", "sh"))
	if err != nil || target != "busybox" {
		t.Errorf("unpacked rootfs: bin/sh -> %q (%v), want busybox", target, err)
	}
}

// extract writes a tarball's directories and regular files under dir.
func extract(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestBuildWithFiles checks that extra files land in the layer beside busybox.
func TestBuildWithFiles(t *testing.T) {
	needBusybox(t)
	var buf bytes.Buffer
	tool := []byte("#!/bin/sh\necho tool\n")
	if err := BuildWithFiles(&buf, "localhost/strata/tool:1", map[string][]byte{"bin/tool": tool}); err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	var index struct {
		Manifests []desc `json:"manifests"`
	}
	decode(t, "index.json", files["index.json"], &index)
	var manifest struct {
		Layers []desc `json:"layers"`
	}
	decode(t, "manifest", blobOf(t, files, index.Manifests[0]), &manifest)
	layer := blobOf(t, files, manifest.Layers[0])
	checkLayer(t, layer)
	if got := untar(t, layer)["bin/tool"]; !bytes.Equal(got, tool) {
		t.Errorf("layer: bin/tool is %q, want %q", got, tool)
	}
}

func TestBuildProgram(t *testing.T) {
	var buf bytes.Buffer
	program := []byte("\x7fELF not really a program")
	if err := BuildProgram(&buf, "localhost/strata/pause:1", "pause", program); err != nil {
		t.Fatal(err)
	}
	layer, c := programImage(t, buf.Bytes())
	if len(layer) != 1 || !bytes.Equal(layer["pause"], program) {
		t.Errorf("layer holds %d entries (want only pause), pause is %q", len(layer), layer["pause"])
	}
	if want := []string{"/pause"}; !slices.Equal(c.Config.Cmd, want) {
		t.Errorf("config: Cmd %q, want %q", c.Config.Cmd, want)
	}
	if c.Config.Entrypoint != nil || c.Config.User != "" {
		t.Errorf("config: Entrypoint %q, User %q, want neither", c.Config.Entrypoint, c.Config.User)
	}
	if err := BuildProgram(&buf, "localhost/strata/pause:1", "bin/pause", program); err == nil {
		t.Error("BuildProgram accepted a name with a slash")
	}
}

// An image run with arguments (deploy/operator's args) has its program as
// the entrypoint, no command that the arguments would replace, and its user.
func TestBuildEntrypoint(t *testing.T) {
	var buf bytes.Buffer
	program := []byte("\x7fELF not really a program")
	if err := BuildEntrypoint(&buf, "strata:dev", "strata", program, "65532:65532"); err != nil {
		t.Fatal(err)
	}
	layer, c := programImage(t, buf.Bytes())
	if len(layer) != 1 || !bytes.Equal(layer["strata"], program) {
		t.Errorf("layer holds %d entries (want only strata), strata is %q", len(layer), layer["strata"])
	}
	if want := []string{"/strata"}; !slices.Equal(c.Config.Entrypoint, want) || c.Config.Cmd != nil {
		t.Errorf("config: Entrypoint %q, Cmd %q, want %q and none", c.Config.Entrypoint, c.Config.Cmd, want)
	}
	if c.Config.User != "65532:65532" {
		t.Errorf("config: User %q, want 65532:65532", c.Config.User)
	}
}

// programImage reads the files of the only layer and the config of the one
// image in an OCI layout tarball.
func programImage(t *testing.T, tarball []byte) (map[string][]byte, imageConfig) {
	t.Helper()
	files := untar(t, tarball)
	var index struct {
		Manifests []desc `json:"manifests"`
	}
	decode(t, "index.json", files["index.json"], &index)
	var manifest struct {
		Config desc   `json:"config"`
		Layers []desc `json:"layers"`
	}
	decode(t, "manifest", blobOf(t, files, index.Manifests[0]), &manifest)
	layer := untar(t, blobOf(t, files, manifest.Layers[0]))
	var c imageConfig
	decode(t, "config", blobOf(t, files, manifest.Config), &c)
	return layer, c
}
