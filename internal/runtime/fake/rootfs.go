package fake

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

var _ runtime.RootfsSaver = (*Driver)(nil)

// SaveRootfs implements runtime.RootfsSaver: the layer holds the files the instance's
// scripts wrote outside its mounts (the model's root filesystem changes). As with
// containerd's containers, an exited instance's files can still be copied.
func (d *Driver) SaveRootfs(ctx context.Context, id string, w io.Writer) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	h := d.host
	h.mu.Lock()
	err := h.call(OpSaveRootfs, id)
	var in *instance
	if err == nil {
		in, err = d.lookup(id)
	}
	var files map[string][]byte
	if err == nil {
		if in.spec.Tier == v1alpha1.TierVM {
			err = fmt.Errorf("instance %q: %w: a VM has no root filesystem layer", id, runtime.ErrUnsupported)
		}
		files = copyFiles(in.files)
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := writeEntries(tw, files); err != nil {
		return err
	}
	return tw.Close()
}

// writeEntries writes files to tw as regular files, in the order of their names.
func writeEntries(tw *tar.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(n, "/"), Mode: 0o644, Size: int64(len(files[n]))}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	return nil
}

// readLayer reads a layer SaveRootfs wrote into the files of a new instance.
func readLayer(file string) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("root filesystem layer: %w", err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("root filesystem layer %s: %w", file, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("root filesystem layer %s: %w", file, err)
		}
		files[path.Clean("/"+hdr.Name)] = data
	}
}

func copyFiles(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
