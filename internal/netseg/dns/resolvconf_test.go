package dns

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolvConf(t *testing.T) {
	got := string(ResolvConf(netip.MustParseAddr("10.213.4.1"), "back"))
	want := "# Written by strata: the DNS server of segment back, on its gateway.\n" +
		"nameserver 10.213.4.1\n" +
		"search back\n" +
		"options ndots:1\n"
	if got != want {
		t.Errorf("ResolvConf:\n%s\nwant:\n%s", got, want)
	}
}

func TestHostUpstreams(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want []string
	}{
		{"one", "nameserver 10.255.255.53\n", []string{"10.255.255.53:53"}},
		{"order kept, comments and options ignored",
			"# comment\n; other comment\nsearch example.org\noptions edns0\nnameserver 10.1.1.1\nnameserver   10.2.2.2  # trailing\n",
			[]string{"10.1.1.1:53", "10.2.2.2:53"}},
		{"loopback stub left out when others exist",
			"nameserver 127.0.0.53\nnameserver 10.1.1.1\n", []string{"10.1.1.1:53"}},
		{"loopback stub kept when alone",
			"nameserver 127.0.0.53\n", []string{"127.0.0.53:53"}},
		{"IPv6 loopback kept when alone", "nameserver ::1\n", []string{"[::1]:53"}},
		{"IPv6 with zone", "nameserver fe80::1%eth0\nnameserver 2001:db8::53\n",
			[]string{"[fe80::1%eth0]:53", "[2001:db8::53]:53"}},
		{"bad lines skipped",
			"nameserver\nnameserver not-an-address\nnameserver 0.0.0.0\nnameservers 10.3.3.3\nnameserver 10.1.1.1\n",
			[]string{"10.1.1.1:53"}},
		{"only the first three, as the C library",
			"nameserver 10.1.1.1\nnameserver 10.2.2.2\nnameserver 10.3.3.3\nnameserver 10.4.4.4\n",
			[]string{"10.1.1.1:53", "10.2.2.2:53", "10.3.3.3:53"}},
		{"IPv4-mapped", "nameserver ::ffff:10.1.1.1\n", []string{"10.1.1.1:53"}},
		{"none means localhost", "search example.org\n", []string{"127.0.0.1:53"}},
		{"empty", "", []string{"127.0.0.1:53"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			ups, err := HostUpstreams(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range ups {
				got = append(got, u.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("HostUpstreams(%q) = %v, want %v", tt.conf, got, tt.want)
			}
		})
	}
}

func TestHostUpstreamsMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	if _, err := HostUpstreams(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("HostUpstreams of a missing file: %v, want a not-exist error", err)
	}
}

// FuzzParseResolvConf: any content gives 1-3 upstreams on port 53 with
// valid addresses, without panicking.
func FuzzParseResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 10.1.1.1\nnameserver 127.0.0.53\n"))
	f.Add([]byte("nameserver fe80::1%eth0\n"))
	f.Add([]byte("nameserver\n#nameserver 1.2.3.4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ups := parseResolvConf(b)
		if len(ups) == 0 || len(ups) > maxNameservers {
			t.Fatalf("%d upstreams", len(ups))
		}
		for _, u := range ups {
			if !u.Addr().IsValid() || u.Port() != Port || u.Addr().Is4In6() {
				t.Fatalf("bad upstream %v", u)
			}
		}
	})
}
