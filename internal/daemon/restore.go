package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"strata.dev/strata/internal/store"
)

// restoreStore puts a copy of a store in place of the store at path: the copy is
// written next to it through a synced temporary file and checked (it must open as a
// store; from itself is never opened as one, so it stays as it is), then the current
// file is renamed aside with the time and the copy takes its place.
func restoreStore(from, path string, log *slog.Logger) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("--restore-store: %w", err)
	}
	defer src.Close()
	tmp := path + ".restoring"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("--restore-store: %w", err)
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("--restore-store: copy %s: %w", from, err)
	}
	check, err := store.Open(tmp, store.Options{})
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("--restore-store %s: not a usable store copy: %w", from, err)
	}
	rev := check.Revision()
	if err := check.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	aside := ""
	if _, err := os.Stat(path); err == nil {
		aside = fmt.Sprintf("%s.replaced-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, aside); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("--restore-store: keep the current store aside: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--restore-store: %w", err)
	}
	log.Info("store restored", "from", from, "revision", rev, "replacedKeptAt", aside, "dir", filepath.Dir(path))
	return nil
}
