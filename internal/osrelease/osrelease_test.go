package osrelease

import (
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

const (
	linux   = v1alpha1.OSLinux
	windows = v1alpha1.OSWindows
	other   = v1alpha1.OSOther
)

// cases are the strings RVTools writes in its two OS columns, and those users write in
// strata documents, with what Parse and EndOfLife make of them.
var cases = []struct {
	in      string
	family  v1alpha1.OSFamily
	version string
	entry   string // "" when not end of life
}{
	// Windows, configuration file column.
	{"Microsoft Windows Server 2012 (64-bit)", windows, "Windows Server 2012", "Windows Server <= 2012 R2"},
	{"Microsoft Windows Server 2008 R2 (64-bit)", windows, "Windows Server 2008 R2", "Windows Server <= 2012 R2"},
	{"Microsoft Windows Server 2019 (64-bit)", windows, "Windows Server 2019", ""},
	{"Microsoft Windows Server 2016 or later (64-bit)", windows, "Windows Server 2016", ""},
	{"Microsoft Windows Server 2022 (64-bit)", windows, "Windows Server 2022", ""},
	{"Microsoft Windows Server 2003 Standard (32-bit)", windows, "Windows Server 2003", "Windows Server <= 2012 R2"},
	{"Microsoft Windows Server 2003, Standard Edition (32-bit)", windows, "Windows Server 2003", "Windows Server <= 2012 R2"},
	{"Microsoft Windows Server 2008 (32-bit)", windows, "Windows Server 2008", "Windows Server <= 2012 R2"},
	{"Microsoft Windows 10 (64-bit)", windows, "Windows 10", ""},
	{"Microsoft Windows 11 (64-bit)", windows, "Windows 11", ""},
	{"Microsoft Windows 7 (64-bit)", windows, "Windows 7", "Windows XP/Vista/7/8/8.1"},
	{"Microsoft Windows 8.x (64-bit)", windows, "Windows 8.x", "Windows XP/Vista/7/8/8.1"},
	{"Microsoft Windows XP Professional (32-bit)", windows, "Windows XP", "Windows XP/Vista/7/8/8.1"},
	{"Microsoft Windows Vista (32-bit)", windows, "Windows Vista", "Windows XP/Vista/7/8/8.1"},
	{"Microsoft Windows 2000 Server", windows, "Windows 2000", "Windows XP/Vista/7/8/8.1"},
	// Windows, VMware Tools column.
	{"Microsoft Windows Server 2012 R2 Standard", windows, "Windows Server 2012 R2", "Windows Server <= 2012 R2"},
	{"Microsoft Windows Server 2019 Datacenter", windows, "Windows Server 2019", ""},
	{"Microsoft Windows 10 Pro 10.0.19045", windows, "Windows 10", ""},
	{"Microsoft Windows 8.1 Enterprise", windows, "Windows 8.1", "Windows XP/Vista/7/8/8.1"},
	// Windows, short forms.
	{"Windows Server 2012 R2", windows, "Windows Server 2012 R2", "Windows Server <= 2012 R2"},
	{"Windows Server 2012R2", windows, "Windows Server 2012 R2", "Windows Server <= 2012 R2"},
	{"windows 2008 r2", windows, "Windows Server 2008 R2", "Windows Server <= 2012 R2"},
	{"Windows Server 2016", windows, "Windows Server 2016", ""},
	{"Windows Server", windows, "Windows Server", ""},
	{"Windows", windows, "Windows", ""},
	// CentOS.
	{"CentOS 7 (64-bit)", linux, "CentOS 7", "CentOS 5-8"},
	{"CentOS 6 (64-bit)", linux, "CentOS 6", "CentOS 5-8"},
	{"CentOS 8 (64-bit)", linux, "CentOS 8", "CentOS 5-8"},
	{"CentOS 4/5 or later (64-bit)", linux, "CentOS 4/5", "CentOS 5-8"},
	{"CentOS Linux release 7.9.2009 (Core)", linux, "CentOS 7", "CentOS 5-8"},
	{"CentOS 7", linux, "CentOS 7", "CentOS 5-8"},
	{"CentOS (64-bit)", linux, "CentOS", "CentOS 5-8"},
	{"CentOS Stream 8", linux, "CentOS Stream 8", "CentOS Stream 8"},
	{"CentOS Stream 9", linux, "CentOS Stream 9", ""},
	// Red Hat.
	{"Red Hat Enterprise Linux 6 (64-bit)", linux, "RHEL 6", "RHEL 5-6"},
	{"Red Hat Enterprise Linux 5 (32-bit)", linux, "RHEL 5", "RHEL 5-6"},
	{"Red Hat Enterprise Linux 4 (32-bit)", linux, "RHEL 4", "RHEL 5-6"},
	{"Red Hat Enterprise Linux 7 (64-bit)", linux, "RHEL 7", ""},
	{"Red Hat Enterprise Linux 8 (64-bit)", linux, "RHEL 8", ""},
	{"Red Hat Enterprise Linux 9 (64-bit)", linux, "RHEL 9", ""},
	{"Red Hat Enterprise Linux Server release 6.10 (Santiago)", linux, "RHEL 6", "RHEL 5-6"},
	{"Red Hat Enterprise Linux release 8.8 (Ootpa)", linux, "RHEL 8", ""},
	{"RHEL 6", linux, "RHEL 6", "RHEL 5-6"},
	{"rhel 9.3", linux, "RHEL 9", ""},
	{"RedHat 5", linux, "RHEL 5", "RHEL 5-6"},
	// Ubuntu.
	{"Ubuntu Linux (64-bit)", linux, "Ubuntu", ""},
	{"Ubuntu 22.04.3 LTS", linux, "Ubuntu 22.04", ""},
	{"Ubuntu 22.04", linux, "Ubuntu 22.04", ""},
	{"Ubuntu 20.04.6 LTS", linux, "Ubuntu 20.04", ""},
	{"Ubuntu 18.04", linux, "Ubuntu 18.04", ""},
	{"Ubuntu 17.04", linux, "Ubuntu 17.04", ""},
	{"Ubuntu 16.10", linux, "Ubuntu 16.10", "Ubuntu <= 16.04"},
	{"Ubuntu 16.04", linux, "Ubuntu 16.04", "Ubuntu <= 16.04"},
	{"Ubuntu 16.04.7 LTS", linux, "Ubuntu 16.04", "Ubuntu <= 16.04"},
	{"Ubuntu 14.04.6 LTS", linux, "Ubuntu 14.04", "Ubuntu <= 16.04"},
	{"Ubuntu 12.04", linux, "Ubuntu 12.04", "Ubuntu <= 16.04"},
	{"Ubuntu 9.10", linux, "Ubuntu 9.10", "Ubuntu <= 16.04"},
	// Debian.
	{"Debian GNU/Linux 9 (64-bit)", linux, "Debian 9", "Debian <= 9"},
	{"Debian GNU/Linux 12 (64-bit)", linux, "Debian 12", ""},
	{"Debian GNU/Linux 10 (buster)", linux, "Debian 10", ""},
	{"Debian GNU/Linux 8 (64-bit)", linux, "Debian 8", "Debian <= 9"},
	{"Debian GNU/Linux 11.7", linux, "Debian 11", ""},
	{"Debian 9", linux, "Debian 9", "Debian <= 9"},
	{"Debian 10", linux, "Debian 10", ""},
	{"Debian GNU/Linux (64-bit)", linux, "Debian", ""},
	// SUSE.
	{"SUSE Linux Enterprise 11 (64-bit)", linux, "SLES 11", "SLES 11"},
	{"SUSE Linux Enterprise 12 (64-bit)", linux, "SLES 12", ""},
	{"SUSE Linux Enterprise 15 (64-bit)", linux, "SLES 15", ""},
	{"SUSE Linux Enterprise Server 11 SP4", linux, "SLES 11", "SLES 11"},
	{"SUSE Linux Enterprise 8/9 (32-bit)", linux, "SLES 8/9", "SLES 11"},
	{"SUSE Linux Enterprise Desktop 11", linux, "SLED 11", "SLED 11"},
	{"SLES 11", linux, "SLES 11", "SLES 11"},
	{"SLES 15 SP5", linux, "SLES 15", ""},
	{"openSUSE Leap 15.5", linux, "openSUSE Leap 15.5", ""},
	{"SUSE Linux Enterprise Server for SAP Applications 11 SP4", linux, "SLES 11", "SLES 11"},
	{"SUSE Linux Enterprise Server for SAP Applications 15 SP4", linux, "SLES 15", ""},
	{"Photon OS x86_64", linux, "Photon OS", ""},
	// Other Linux.
	{"Rocky Linux 9.2", linux, "Rocky Linux 9", ""},
	{"Rocky Linux (64-bit)", linux, "Rocky Linux", ""},
	{"AlmaLinux 8 (64-bit)", linux, "AlmaLinux 8", ""},
	{"Oracle Linux 7 (64-bit)", linux, "Oracle Linux 7", ""},
	{"Oracle Linux 6 (64-bit)", linux, "Oracle Linux 6", "Oracle Linux 5-6"},
	{"Oracle Linux 4/5 or later (64-bit)", linux, "Oracle Linux 4/5", "Oracle Linux 5-6"},
	{"Oracle Linux Server 8.9", linux, "Oracle Linux 8", ""},
	{"Fedora (64-bit)", linux, "Fedora", ""},
	{"Fedora release 38 (Thirty Eight)", linux, "Fedora 38", "Fedora <= 38"},
	{"Fedora Linux 40", linux, "Fedora 40", ""},
	{"Red Hat Fedora (64-bit)", linux, "Fedora", ""},
	{"Amazon Linux 2", linux, "Amazon Linux 2", ""},
	{"VMware Photon OS (64-bit)", linux, "Photon OS", ""},
	{"Photon OS 3.0", linux, "Photon OS 3", "Photon OS <= 3"},
	{"Photon OS 5.0", linux, "Photon OS 5", ""},
	{"Other 3.x or later Linux (64-bit)", linux, "Other 3.x or later Linux", ""},
	{"Other 3.x Linux (64-bit)", linux, "Other 3.x Linux", ""},
	{"Other 2.6.x Linux (32-bit)", linux, "Other 2.6.x Linux", ""},
	{"Other Linux (64-bit)", linux, "Other Linux", ""},
	{"Debian GNU/Linux 9 (64 bit)", linux, "Debian 9", "Debian <= 9"},
	// Neither Linux nor Windows.
	{"FreeBSD 12 (64-bit)", other, "FreeBSD 12", "FreeBSD <= 12"},
	{"FreeBSD 13.2-RELEASE", other, "FreeBSD 13", ""},
	{"Oracle Solaris 11 (64-bit)", other, "Oracle Solaris 11", ""},
	{"Apple macOS 10.14 (64-bit)", other, "Apple macOS 10.14", ""},
	{"VMware ESXi 7.0 or later", other, "VMware ESXi 7.0 or later", ""},
	{"Other (64-bit)", other, "Other", ""},
	// Empty text and garbage.
	{"", other, "", ""},
	{"   ", other, "", ""},
	{"(64-bit)", other, "", ""},
	{"  CentOS   7  ", linux, "CentOS 7", "CentOS 5-8"},
	{"asdf;;;", other, "asdf;;;", ""},
	{"7", other, "7", ""},
	{"\xff\xfe", other, "\uFFFD", ""},
}

func TestParse(t *testing.T) {
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got := Parse(c.in)
			want := Release{Family: c.family, Version: c.version}
			if got != want {
				t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, want)
			}
			// A normalized version reads back as itself.
			if again := Parse(got.Version); again != got {
				t.Errorf("Parse(%q) = %+v, want %+v again", got.Version, again, got)
			}
		})
	}
}

func TestEndOfLife(t *testing.T) {
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			for _, in := range []string{c.in, Parse(c.in).Version} {
				entry, eol := EndOfLife(in)
				if entry != c.entry || eol != (c.entry != "") {
					t.Errorf("EndOfLife(%q) = %q, %v, want %q, %v", in, entry, eol, c.entry, c.entry != "")
				}
			}
		})
	}
}

func TestLookupNotes(t *testing.T) {
	e, ok := Lookup("CentOS 7")
	if !ok || e.Name != "CentOS 5-8" || e.Note == "" {
		t.Fatalf("Lookup(CentOS 7) = %+v, %v", e, ok)
	}
	if len(Entries()) == 0 {
		t.Fatal("Entries() is empty")
	}
}
