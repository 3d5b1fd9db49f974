package guest

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Hostname: "web-0",
		Args:     []string{"/bin/httpd", "-f"},
		Env:      []string{"PATH=/bin"},
		Root:     RootFS{Device: "/dev/vda", FSType: "ext4"},
		Net: &NetConfig{
			Address: netip.MustParsePrefix("10.213.0.5/24"),
			Gateway: netip.MustParseAddr("10.213.0.1"),
			DNS:     []netip.Addr{netip.MustParseAddr("10.213.0.1")},
			Search:  []string{"back", "tenant-a.example"},
		},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no net", func(c *Config) { c.Net = nil }, ""},
		{"no args", func(c *Config) { c.Args = nil }, "no program"},
		{"empty program", func(c *Config) { c.Args = []string{""} }, "no program"},
		{"no root device", func(c *Config) { c.Root.Device = "" }, "root device"},
		{"no fs type", func(c *Config) { c.Root.FSType = "" }, "root device"},
		{"no address", func(c *Config) { c.Net.Address = netip.Prefix{} }, "net.address"},
		{"search domain with a newline", func(c *Config) { c.Net.Search = []string{"back\nnameserver 203.0.113.9"} }, "net.search[0]"},
		{"search domain with a space", func(c *Config) { c.Net.Search = []string{"back", "a b"} }, "net.search[1]"},
		{"empty search domain", func(c *Config) { c.Net.Search = []string{""} }, "net.search[0]"},
		{"search domain label too long", func(c *Config) { c.Net.Search = []string{strings.Repeat("a", 64)} }, "net.search[0]"},
		{"too many search domains", func(c *Config) { c.Net.Search = []string{"a", "b", "c", "d", "e", "f", "g"} }, "at most 6"},
		{"negative grace", func(c *Config) { c.StopGraceSeconds = -1 }, "stopGraceSeconds"},
		{"tools disk of an image VM", func(c *Config) { c.ToolsDisk = ToolsDiskSerial }, "toolsDisk"},
		{"tools disk of a node guest", func(c *Config) { *c = Config{Mode: ModeNode, ToolsDisk: ToolsDiskSerial} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
			if _, merr := c.Marshal(); (merr == nil) != (err == nil) {
				t.Errorf("Marshal error %v disagrees with Validate's %v", merr, err)
			}
		})
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := validConfig()
	c.StopGraceSeconds = 3
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip = %+v, want %+v", back, c)
	}
	// The wire names the guest reads.
	for _, key := range []string{`"hostname"`, `"args"`, `"root"`, `"device"`, `"fsType"`, `"net"`, `"address"`, `"gateway"`, `"dns"`, `"search"`, `"stopGraceSeconds"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("marshalled config lacks %s:\n%s", key, b)
		}
	}
}

func TestStopGrace(t *testing.T) {
	if g := (Config{}).StopGrace(); g != DefaultStopGrace {
		t.Errorf("default grace = %s, want %s", g, DefaultStopGrace)
	}
	if g := (Config{StopGraceSeconds: 2}).StopGrace(); g != 2*time.Second {
		t.Errorf("grace = %s, want 2s", g)
	}
}
