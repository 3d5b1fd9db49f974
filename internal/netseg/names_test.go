package netseg

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBridgeName(t *testing.T) {
	tests := []struct {
		prefix, segment, want string
	}{
		{"st-", "default", "st-default"},
		{"st-", "payments", "st-payments"},
		{"st-", "abcdefghijkl", "st-abcdefghijkl"}, // exactly 15
		{"st-", "abcdefghijklm", "st-abcde-" + hashHex("abcdefghijklm")[:6]},
		{"st-", "payments-production-eu", "st-payme-" + hashHex("payments-production-eu")[:6]},
		{"strata", "web", "strataweb"},
		{"strata", "a-long-segment-name", "strataa--" + hashHex("a-long-segment-name")[:6]},
	}
	for _, tt := range tests {
		got := bridgeName(tt.prefix, tt.segment)
		if got != tt.want {
			t.Errorf("bridgeName(%q, %q) = %q, want %q", tt.prefix, tt.segment, got, tt.want)
		}
		if len(got) > maxIfName {
			t.Errorf("bridgeName(%q, %q) = %q: %d characters, more than %d", tt.prefix, tt.segment, got, len(got), maxIfName)
		}
	}
}

// TestNamesProperties checks, over many random names with a fixed seed,
// that interface names fit, are deterministic and do not collide.
func TestNamesProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
	bridges := map[string]string{}
	links := map[string]string{} // host veths and taps -> what they are
	seen := map[string]bool{}
	for range 5000 {
		n := 1 + r.IntN(63)
		var b strings.Builder
		b.WriteByte(alphabet[r.IntN(36)])
		for i := 1; i < n; i++ {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		name := b.String()
		if seen[name] {
			continue
		}
		seen[name] = true
		for _, prefix := range []string{"st-", "s", "strata"} {
			br, v, tap := bridgeName(prefix, name), vethName(prefix, name), tapName(prefix, name)
			for _, got := range []string{br, v, tap} {
				if len(got) > maxIfName || !strings.HasPrefix(got, prefix) {
					t.Fatalf("prefix %q name %q: interface name %q", prefix, name, got)
				}
			}
			if bridgeName(prefix, name) != br || vethName(prefix, name) != v || tapName(prefix, name) != tap {
				t.Fatalf("names of %q are not deterministic", name)
			}
			key := prefix + "|" + br
			if other, dup := bridges[key]; dup && other != name {
				t.Errorf("segments %q and %q share bridge %s", other, name, br)
			}
			bridges[key] = name
			for _, l := range []struct{ what, name string }{{"veth", v}, {"tap", tap}} {
				key = prefix + "|" + l.name
				what := fmt.Sprintf("the %s of %q", l.what, name)
				if other, dup := links[key]; dup {
					t.Errorf("%s and %s are both %s", other, what, l.name)
				}
				links[key] = what
			}
		}
	}
}

func TestVethName(t *testing.T) {
	got := vethName("st-", "web-0")
	if want := "st-" + hashHex("web-0")[:12]; got != want {
		t.Errorf("vethName = %q, want %q", got, want)
	}
}

func TestTapName(t *testing.T) {
	got := tapName("st-", "vm-0")
	if want := "st-" + hashHex("tap/vm-0")[:12]; got != want {
		t.Errorf("tapName = %q, want %q", got, want)
	}
	if got == vethName("st-", "vm-0") {
		t.Errorf("the tap and the veth of vm-0 are both %s", got)
	}
}

func TestCheckNames(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		check func(string) error
		kind  string
		in    string
		ok    bool
	}{
		{checkSegmentName, "segment", "default", true},
		{checkSegmentName, "segment", "web-2", true},
		{checkSegmentName, "segment", "0", true},
		{checkSegmentName, "segment", long[:63], true},
		{checkSegmentName, "segment", "", false},
		{checkSegmentName, "segment", long, false},
		{checkSegmentName, "segment", "-web", false},
		{checkSegmentName, "segment", "web-", false},
		{checkSegmentName, "segment", "Web", false},
		{checkSegmentName, "segment", "web.eu", false},
		{checkSegmentName, "segment", "we b", false},
		{checkInstanceID, "instance", "web-0", true},
		{checkInstanceID, "instance", "web.eu-10", true},
		{checkInstanceID, "instance", "0web", true},
		{checkInstanceID, "instance", "", false},
		{checkInstanceID, "instance", long, false},
		{checkInstanceID, "instance", ".hidden", false},
		{checkInstanceID, "instance", "-x", false},
		{checkInstanceID, "instance", "..", false},
		{checkInstanceID, "instance", "a/b", false},
		{checkInstanceID, "instance", "Web-0", false},
		{checkInstanceID, "instance", "web_0", false},
	}
	for _, tt := range tests {
		err := tt.check(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%s %q: err = %v, want ok %v", tt.kind, tt.in, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in))) {
			t.Errorf("%s %q: error %q is not ErrInvalid naming the input", tt.kind, tt.in, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for in, want := range map[string]bool{
		"st-": true, "s": true, "strata": true, "": false, "strata-": false, "St-": false, "s/": false, "s t": false,
	} {
		if got := validPrefix(in); got != want {
			t.Errorf("validPrefix(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMacFor(t *testing.T) {
	got := macFor(mustAddr("10.213.0.2")).String()
	if got != "0e:73:0a:d5:00:02" {
		t.Errorf("macFor = %s", got)
	}
	mac := macFor(mustAddr("10.213.255.254"))
	if mac[0]&1 != 0 || mac[0]&2 == 0 {
		t.Errorf("%s is not a locally administered unicast address", mac)
	}
}
