package osrelease

import (
	"strings"

	"strata.dev/strata/api/v1alpha1"
)

// distro is an operating system distribution osrelease recognizes.
type distro struct {
	id     string // used in eol.yaml: match.distribution
	name   string // shown in a normalized Version; one of aliases
	family v1alpha1.OSFamily
	// aliases are the names the distribution goes by, as lower-case token sequences.
	aliases [][]string
	// parts is how many dot-separated parts of a version are kept: 1 for "CentOS 7"
	// (7.9.2009 is still CentOS 7), 2 for "Ubuntu 22.04".
	parts int
}

// Distribution ids. Windows desktop and server releases are told apart by their versions.
const (
	idWindows       = "windows"
	idWindowsServer = "windows-server"
)

var distros = []*distro{
	{id: "centos", name: "CentOS", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("centos", "cent os")},
	{id: "centos-stream", name: "CentOS Stream", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("centos stream")},
	{id: "rhel", name: "RHEL", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("rhel", "red hat enterprise linux", "redhat enterprise linux", "redhat")},
	{id: "oracle-linux", name: "Oracle Linux", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("oracle linux", "oracle enterprise linux", "oel")},
	{id: "rocky", name: "Rocky Linux", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("rocky linux", "rocky")},
	{id: "alma", name: "AlmaLinux", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("almalinux", "alma linux")},
	{id: "fedora", name: "Fedora", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("fedora")},
	{id: "ubuntu", name: "Ubuntu", family: v1alpha1.OSLinux, parts: 2,
		aliases: words("ubuntu")},
	{id: "debian", name: "Debian", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("debian")},
	{id: "sles", name: "SLES", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("sles", "suse linux enterprise", "suse linux enterprise server", "suse enterprise linux")},
	{id: "sled", name: "SLED", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("sled", "suse linux enterprise desktop")},
	{id: "opensuse-leap", name: "openSUSE Leap", family: v1alpha1.OSLinux, parts: 2,
		aliases: words("opensuse leap")},
	{id: "opensuse", name: "openSUSE", family: v1alpha1.OSLinux, parts: 2,
		aliases: words("opensuse")},
	{id: "amazon-linux", name: "Amazon Linux", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("amazon linux")},
	{id: "alpine", name: "Alpine Linux", family: v1alpha1.OSLinux, parts: 2,
		aliases: words("alpine linux", "alpine")},
	{id: "photon", name: "Photon OS", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("photon os", "photon")},
	{id: "arch", name: "Arch Linux", family: v1alpha1.OSLinux, parts: 1,
		aliases: words("arch linux")},
	{id: "freebsd", name: "FreeBSD", family: v1alpha1.OSOther, parts: 1,
		aliases: words("freebsd")},
	{id: idWindowsServer, name: "Windows Server", family: v1alpha1.OSWindows, parts: 1,
		aliases: words("windows server")},
	{id: idWindows, name: "Windows", family: v1alpha1.OSWindows, parts: 2,
		aliases: words("windows")},
}

// words splits each name into its tokens.
func words(names ...string) [][]string {
	out := make([][]string, len(names))
	for i, n := range names {
		out[i] = tokens(n)
	}
	return out
}

func distroByID(id string) *distro {
	for _, d := range distros {
		if d.id == id {
			return d
		}
	}
	return nil
}

// findDistro finds the first token where a distribution's name starts (the longest name
// when several start there) and returns it with the index of the token after the name.
func findDistro(toks []string) (*distro, int) {
	for i := range toks {
		var best *distro
		bestLen := 0
		for _, d := range distros {
			for _, a := range d.aliases {
				if len(a) > bestLen && hasPrefix(toks[i:], a) {
					best, bestLen = d, len(a)
				}
			}
		}
		if best != nil {
			return best, i + bestLen
		}
	}
	return nil, 0
}

func hasPrefix(toks, prefix []string) bool {
	if len(prefix) > len(toks) {
		return false
	}
	for i, p := range prefix {
		if toks[i] != p {
			return false
		}
	}
	return true
}

// filler are words that may stand between a distribution's name and its version
// ("CentOS Linux release 7.9", "Debian GNU/Linux 9", "Red Hat Enterprise Linux Server 6").
var filler = map[string]bool{
	"linux": true, "gnu/linux": true, "gnu": true, "release": true, "server": true,
	"enterprise": true, "os": true, "version": true, "core": true,
}

// version reads the version after a distribution's name, from rest (the tokens that follow
// the name). It returns the distribution too, because "Windows 2012 R2" is a server release.
func (d *distro) version(rest []string) (*distro, string) {
	for len(rest) > 0 && filler[rest[0]] {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return d, ""
	}
	switch d.id {
	case idWindowsServer:
		if v, ok := serverYear(rest); ok {
			return d, v
		}
		return d, ""
	case idWindows:
		return windowsVersion(d, rest)
	}
	// The version may follow a few more words: "SUSE Linux Enterprise Server for SAP
	// Applications 15 SP4".
	for _, t := range rest[:min(len(rest), maxWordsBeforeVersion+1)] {
		if v := numericVersion(t, d.parts); v != "" {
			return d, v
		}
	}
	return d, ""
}

// maxWordsBeforeVersion bounds how far after a distribution's name its version is looked for.
const maxWordsBeforeVersion = 3

// windowsVersion reads a desktop release (XP, Vista, 7, 8.1, 10) or, for "Windows 2012 R2",
// a server one.
func windowsVersion(d *distro, rest []string) (*distro, string) {
	switch rest[0] {
	case "xp":
		return d, "XP"
	case "vista":
		return d, "Vista"
	case "me", "millennium":
		return d, "Me"
	case "nt":
		return d, "NT"
	}
	if v, ok := serverYear(rest); ok && v >= "2003" {
		return distroByID(idWindowsServer), v
	}
	// 10.0.19045 is Windows 10, not 10.0.
	v := strings.TrimSuffix(numericVersion(rest[0], d.parts), ".0")
	if len(v) == 4 && allDigits(v) && v >= "2003" {
		return distroByID(idWindowsServer), v
	}
	return d, v
}

// serverYear reads a Windows Server release: a four-digit year, then R2 in the same token
// or the next one ("2012 R2", "2012R2").
func serverYear(rest []string) (string, bool) {
	t := rest[0]
	r2 := false
	if y, ok := strings.CutSuffix(t, "r2"); ok {
		t, r2 = y, true
	} else if len(rest) > 1 && rest[1] == "r2" {
		r2 = true
	}
	if len(t) != 4 || !allDigits(t) {
		return "", false
	}
	if r2 {
		return t + " R2", true
	}
	return t, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
