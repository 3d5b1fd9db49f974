package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// loadModules loads names (guest.Modules, and guest.NodeModules in a node guest), in order, from dir (the initramfs's
// /lib/modules/<release>). Modules that are not there (built in, or the
// kernel lacks them) are skipped; one already loaded is fine; no dir at all
// is a kernel with everything built in. It returns one error per module that
// failed and goes on past them.
func loadModules(dir string, names []string) []error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := guest.ModuleName(p); ok && !d.IsDir() {
			files[name] = p
		}
		return nil
	})
	if err != nil {
		return []error{fmt.Errorf("kernel modules: %w", err)}
	}
	var errs []error
	for _, name := range names {
		p, ok := files[name]
		if !ok {
			continue
		}
		if err := loadModule(p); err != nil {
			errs = append(errs, fmt.Errorf("load module %s: %w", name, err))
		}
	}
	return errs
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(path, ".ko") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
