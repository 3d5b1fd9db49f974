package control

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Log rotation defaults: an instance's log is rotated past 10 MiB, keeping 3 old files
// (ID.log.1 the newest).
const (
	DefaultMaxLogBytes = 10 << 20
	DefaultLogFiles    = 3
)

// rotateLog rotates the log at path when it has grown past max bytes: ID.log.N-1 becomes
// ID.log.N (the oldest is dropped), the log is copied to ID.log.1, then truncated. The runtime
// keeps writing to the same file, which it opened for appending, so nothing needs restarting;
// what is written between the copy and the truncation is lost (a few lines at most).
func rotateLog(path string, max int64, keep int) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil || fi.Size() <= max {
		return false, err
	}
	for i := keep - 1; i >= 1; i-- {
		err := os.Rename(path+"."+strconv.Itoa(i), path+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	if err := copyFile(path, path+".1"); err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	return true, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// removeLogs deletes instance id's log and its rotated copies.
func (c *Controller) removeLogs(id string) error {
	if c.o.DataDir == "" {
		return nil
	}
	path := filepath.Join(c.o.DataDir, "logs", id+".log")
	var errs []error
	for i := 0; i <= c.o.LogFiles; i++ {
		p := path
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the log of %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
