package netstate

import (
	"net/netip"
	"testing"
)

func TestParseSubnet(t *testing.T) {
	for _, tc := range []struct {
		subnet  string
		want    netip.Prefix
		wantErr string
	}{
		{"", netip.Prefix{}, ""},
		{"10.213.40.0/24", netip.MustParsePrefix("10.213.40.0/24"), ""},
		{"10.213.40.0", netip.Prefix{}, `segment payments: subnet "10.213.40.0": netip.ParsePrefix("10.213.40.0"): no '/'`},
	} {
		got, err := ParseSubnet("payments", tc.subnet)
		if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
			t.Errorf("ParseSubnet(%q) = %v, %v; want %v, %q", tc.subnet, got, err, tc.want, tc.wantErr)
		}
	}
}
