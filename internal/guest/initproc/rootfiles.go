package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// prepareRoot writes the files the Config asks for into root's /etc and
// sets the hostname. It replaces /etc/resolv.conf only when the Config names
// DNS servers, and writes /etc/hosts only when the image has none.
func prepareRoot(root string, c guest.Config) error {
	if c.Hostname != "" {
		if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", c.Hostname, err)
		}
	}
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil { //nolint:gosec // G301: /etc is world-readable
		return err
	}
	if c.Net != nil && len(c.Net.DNS) > 0 {
		if err := replaceFile(filepath.Join(etc, "resolv.conf"), resolvConf(c.Net)); err != nil {
			return err
		}
	}
	hosts := filepath.Join(etc, "hosts")
	if _, err := os.Lstat(hosts); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(hosts, hostsFile(c), 0o644); err != nil { //nolint:gosec // G306: /etc/hosts is world-readable
			return err
		}
	}
	return nil
}

func resolvConf(n *guest.NetConfig) []byte {
	var b strings.Builder
	for _, a := range n.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(n.Search) > 0 {
		// As on the host's segments: a name with a dot is tried as it is first.
		fmt.Fprintf(&b, "search %s\noptions ndots:1\n", strings.Join(n.Search, " "))
	}
	return []byte(b.String())
}

func hostsFile(c guest.Config) []byte {
	b := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if c.Hostname != "" {
		addr := "127.0.1.1"
		if c.Net != nil {
			addr = c.Net.Address.Addr().String()
		}
		b += addr + "\t" + c.Hostname + "\n"
	}
	return []byte(b)
}

// replaceFile writes data to path as a new regular file. A symlink there
// (many images point /etc/resolv.conf at a resolver's runtime file) is
// replaced rather than followed, which could lead out of the root.
func replaceFile(path string, data []byte) error {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	return os.WriteFile(path, data, 0o644) //nolint:gosec // G306: resolv.conf is world-readable
}
