package containerd

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// TestWhiteoutsToOCI checks the conversion of a sandbox's overlay layer: a 0:0
// character device becomes a .wh. entry, an opaque directory gets .wh..wh..opq, overlay
// attributes are dropped, and everything else passes through unchanged.
func TestWhiteoutsToOCI(t *testing.T) {
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
	if err := whiteoutsToOCI(&out, &in); err != nil {
		t.Fatal(err)
	}
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
}

// TestWhiteoutsToOCIBroken checks that a damaged archive is an error, not a short layer.
func TestWhiteoutsToOCIBroken(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: 1000})
	_, _ = tw.Write(make([]byte, 10))
	if err := whiteoutsToOCI(io.Discard, bytes.NewReader(in.Bytes())); err == nil {
		t.Error("a truncated archive converted without error")
	}
}
