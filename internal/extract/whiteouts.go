package extract

import (
	"archive/tar"
	"errors"
	"io"
	"path"
	"strings"
)

// WhiteoutsToLayer copies a tar archive of an overlay's upper layer as an
// overlay writes it (`runsc tar rootfs-upper` writes a sandbox's so) into
// the layer format Extract with Options.Whiteouts reads: a removed entry,
// which the overlay records as a character device 0:0, becomes a
// .wh.NAME entry; a directory marked opaque (the trusted.overlay.opaque
// attribute "y") gets a .wh..wh..opq entry after it; the overlay's own
// attributes are dropped; names lose their leading "/" and the archive's
// root entry is left out. Everything else passes through unchanged. A
// damaged archive is an error, not a shorter layer.
func WhiteoutsToLayer(w io.Writer, r io.Reader) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue // the root itself
		}
		if h.Typeflag == tar.TypeChar && h.Devmajor == 0 && h.Devminor == 0 {
			wh := &tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(name), ".wh."+path.Base(name)),
				Mode: 0o600, ModTime: h.ModTime, Format: tar.FormatPAX}
			if err := tw.WriteHeader(wh); err != nil {
				return err
			}
			continue
		}
		h.Name = name
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		h.Xattrs = nil //nolint:staticcheck // the reader fills both Xattrs and PAXRecords; the writer takes PAXRecords alone
		opaque := false
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.trusted.overlay.") {
				opaque = opaque || (k == "SCHILY.xattr."+XattrOpaque && v == "y")
				delete(h.PAXRecords, k)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil { //nolint:gosec // tar to tar, nothing is decompressed
			return err
		}
		if opaque {
			oh := &tar.Header{Typeflag: tar.TypeReg, Name: path.Join(name, ".wh..wh..opq"), Mode: 0o600,
				ModTime: h.ModTime, Format: tar.FormatPAX}
			if err := tw.WriteHeader(oh); err != nil {
				return err
			}
		}
	}
}
