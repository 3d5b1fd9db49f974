package repo

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a repository key in bytes.
const KeySize = 32

// Key is a repository's secret: 32 random bytes from which the chunk-ID
// and encryption keys are derived. Whoever holds it can read and write the
// repository; without it nothing stored can be read back.
type Key [KeySize]byte

// newKey returns a random key.
func newKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generate repository key: %w", err)
	}
	return k, nil
}

// String hides the key so that it never lands in a log by accident.
func (k Key) String() string { return "repo.Key(hidden)" }

// GoString hides the key from %#v as well.
func (k Key) GoString() string { return k.String() }

// Hex returns the key in hexadecimal, the form of a key file.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// ParseKey reads a key in the hexadecimal form Hex returns.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeySize {
		return Key{}, fmt.Errorf("%w: a repository key is %d hexadecimal digits", ErrInvalid, 2*KeySize)
	}
	var k Key
	copy(k[:], b)
	return k, nil
}

// WriteKeyFile writes k to path with mode 0600 and syncs it. It refuses to
// overwrite an existing file (ErrExists): a key file replaced by mistake
// loses every backup of the repository it opened. comment (for example
// the repository's URL and ID) goes on a "#" line above the key.
func WriteKeyFile(path string, k Key, comment string) (err error) {
	var b bytes.Buffer
	for line := range strings.Lines(comment) {
		b.WriteString("# " + strings.TrimRight(line, "\n") + "\n")
	}
	b.WriteString(k.Hex() + "\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: key file %s: move it away or choose another path; it may be the only key of another repository", ErrExists, path)
	}
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
			err = fmt.Errorf("write key file %s: %w", path, err)
		}
	}()
	if _, err = f.Write(b.Bytes()); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// ReadKeyFile reads a key file written by WriteKeyFile: one line of
// hexadecimal digits, after any "#" comment lines.
func ReadKeyFile(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read key file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return Key{}, fmt.Errorf("key file %s: %w", path, err)
		}
		return k, nil
	}
	return Key{}, fmt.Errorf("%w: key file %s holds no key", ErrInvalid, path)
}
