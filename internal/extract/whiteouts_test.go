package extract

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWhiteoutsToLayer checks the conversion of a sandbox's overlay layer (as
// runsc writes it): a 0:0 character device becomes a .wh. entry, an opaque
// directory gets .wh..wh..opq, overlay attributes are dropped, and everything
// else passes through unchanged; Extract with whiteouts then removes what the
// layer removed and hides what the opaque directory hid.
func TestWhiteoutsToLayer(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	write := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Typeflag: tar.TypeDir, Name: "/", Mode: 0o755}, "")
	write(&tar.Header{Typeflag: tar.TypeDir, Name: "/srv", Mode: 0o755, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.keep": "1"}}, "")
	write(&tar.Header{Typeflag: tar.TypeReg, Name: "/srv/a.txt", Mode: 0o644}, "data")
	write(&tar.Header{Typeflag: tar.TypeChar, Name: "/bin/wget", Mode: 0o600}, "")
	write(&tar.Header{Typeflag: tar.TypeChar, Name: "/dev/null2", Mode: 0o666, Devmajor: 1, Devminor: 3}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := WhiteoutsToLayer(&out, &in); err != nil {
		t.Fatal(err)
	}
	layer := bytes.Clone(out.Bytes())
	var got []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		entry := h.Name + " " + string(h.Typeflag) + " " + string(body)
		for k, v := range h.PAXRecords {
			entry += " " + k + "=" + v
		}
		got = append(got, entry)
	}
	want := []string{
		"srv/ 5  SCHILY.xattr.user.keep=1",
		"srv/.wh..wh..opq 0 ",
		"srv/a.txt 0 data",
		"bin/.wh.wget 0 ",
		"dev/null2 3 ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("converted layer:\n%q\nwant\n%q", got, want)
	}

	// The image the sandbox ran on: the layer goes on top of it.
	dir := t.TempDir()
	for _, f := range []string{"bin/wget", "bin/sh", "srv/old.txt"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := Extract(bytes.NewReader(layer), root, Options{Whiteouts: true}); err != nil {
		t.Fatalf("Extract of the converted layer: %v", err)
	}
	for f, want := range map[string]bool{"bin/wget": false, "bin/sh": true, "srv/old.txt": false, "srv/a.txt": true, "dev/null2": false} {
		if _, err := os.Lstat(filepath.Join(dir, f)); (err == nil) != want {
			t.Errorf("after Extract: %s exists: %v, want %v", f, err == nil, want)
		}
	}
}

// TestWhiteoutsToLayerBroken checks that a damaged archive is an error, not a short layer.
func TestWhiteoutsToLayerBroken(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: 1000})
	_, _ = tw.Write(make([]byte, 10))
	if err := WhiteoutsToLayer(io.Discard, bytes.NewReader(in.Bytes())); err == nil {
		t.Error("a truncated archive converted without error")
	}
}
