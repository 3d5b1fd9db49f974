package netseg

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleState is a state with every kind of entry, deliberately unsorted.
func sampleState() state {
	pfx := netip.MustParsePrefix
	return state{
		Version: stateVersion,
		Segments: []segmentRecord{
			{Name: "payments", Subnet: pfx("10.213.4.0/24"), Gateway: mustAddr("10.213.4.1"), Bridge: "st-payments"},
			{Name: "default", Subnet: pfx("10.213.0.0/24"), Gateway: mustAddr("10.213.0.1"), Bridge: "st-default", Last: mustAddr("10.213.0.4")},
		},
		Attachments: []attachRecord{
			{Instance: "web-1", Segment: "default", Kind: KindVeth, IP: mustAddr("10.213.0.3"), HostVeth: vethName("st-", "web-1"), NetNS: "/run/strata/netns/web-1"},
			{Instance: "web-0", Segment: "default", Kind: KindVeth, IP: mustAddr("10.213.0.2"), HostVeth: vethName("st-", "web-0"), NetNS: "/run/strata/netns/web-0"},
			{Instance: "worker-0", Segment: "default", Kind: KindTap, IP: mustAddr("10.213.0.4"), Tap: tapName("st-", "worker-0")},
		},
	}
}

// TestStateGolden pins the format of network.json: a daemon must read what
// the previous version wrote.
func TestStateGolden(t *testing.T) {
	got, err := sampleState().encode()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "network.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoded state differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	back, err := decodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.encode()
	if err != nil || !bytes.Equal(again, want) {
		t.Errorf("decode+encode does not round-trip (%v):\n%s", err, again)
	}
}

// TestStateWithoutKind reads a file written before taps existed: its
// attachments have no kind and are veths.
func TestStateWithoutKind(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "network-without-kind.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(old, []byte(`"kind"`)) {
		t.Fatal("the old file has kinds")
	}
	st, err := decodeState(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Attachments) != 2 {
		t.Fatalf("attachments = %+v", st.Attachments)
	}
	for _, r := range st.Attachments {
		if r.Kind != KindVeth || r.HostVeth != vethName("st-", r.Instance) || r.Tap != "" {
			t.Errorf("old attachment read as %+v, want a veth", r)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFileName), old, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{StateDir: dir, NetNSDir: filepath.Join(dir, "netns")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Attachment("web-0")
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != KindVeth || a.NetNS != "/run/strata/netns/web-0" || a.Interface != "eth0" || a.Tap != "" {
		t.Errorf("old attachment = %+v, want a veth", a)
	}
	// The next save writes the kind.
	enc, err := st.encode()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(enc, []byte(`"kind": "veth"`)); n != 2 {
		t.Errorf("re-encoded file names the kind %d times, want 2:\n%s", n, enc)
	}
}

func TestEmptyStateEncodes(t *testing.T) {
	data, err := state{}.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"version\": 1,\n  \"segments\": [],\n  \"attachments\": []\n}\n"
	if string(data) != want {
		t.Errorf("empty state = %q, want %q", data, want)
	}
	if _, err := decodeState(data); err != nil {
		t.Error(err)
	}
}

func TestDecodeStateErrors(t *testing.T) {
	good, err := sampleState().encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"version", `"version": 1`, `"version": 2`, []string{"version 2, this strata reads version 1"}},
		{"unknown field", `"version": 1`, `"version": 1, "extra": 0`, []string{`unknown field "extra"`}},
		{"bad subnet text", `"10.213.4.0/24"`, `"10.213.4.0/33"`, []string{"10.213.4.0/33"}},
		{"host bits", `"subnet": "10.213.4.0/24"`, `"subnet": "10.213.4.9/24"`, []string{"segments[1].subnet", "did you mean 10.213.4.0/24"}},
		{"overlap", `"subnet": "10.213.4.0/24"`, `"subnet": "10.213.0.0/23"`,
			[]string{"segments[1].subnet", `overlaps segment "default" (10.213.0.0/24)`}},
		{"gateway", `"gateway": "10.213.4.1"`, `"gateway": "10.213.4.2"`, []string{"segments[1].gateway", "not the first address"}},
		{"duplicate bridge", `"bridge": "st-payments"`, `"bridge": "st-default"`, []string{"segments[1].bridge", `also the bridge of segment "default"`}},
		{"bad bridge", `"bridge": "st-payments"`, `"bridge": "st-payments-and-more"`, []string{"segments[1].bridge", "not an interface name"}},
		{"segment name", `"name": "payments"`, `"name": "Payments"`, []string{"segments[1].name", "DNS label"}},
		{"duplicate segment", `"name": "payments"`, `"name": "default"`, []string{"segments[1].name", "listed twice"}},
		{"last outside", `"last": "10.213.0.4"`, `"last": "10.213.4.3"`, []string{"segments[0].last"}},
		{"unknown segment", `"segment": "default",` + "\n      \"kind\": \"veth\",\n      \"ip\": \"10.213.0.2\"", `"segment": "other",` + "\n      \"kind\": \"veth\",\n      \"ip\": \"10.213.0.2\"",
			[]string{"attachments[0].segment", `no segment "other"`}},
		{"ip outside", `"ip": "10.213.0.2"`, `"ip": "10.213.4.2"`, []string{"attachments[0].ip", "not an instance address of subnet 10.213.0.0/24"}},
		{"ip gateway", `"ip": "10.213.0.2"`, `"ip": "10.213.0.1"`, []string{"attachments[0].ip"}},
		{"ip twice", `"ip": "10.213.0.2"`, `"ip": "10.213.0.3"`, []string{"attachments[1].ip", `held by instance "web-0"`}},
		{"instance twice", `"instance": "web-1"`, `"instance": "web-0"`, []string{"attachments[1].instance", "attached twice"}},
		{"bad instance", `"instance": "web-1"`, `"instance": "../web"`, []string{"attachments[1].instance"}},
		{"relative netns", `"/run/strata/netns/web-0"`, `"netns/web-0"`, []string{"attachments[0].netns", "not a clean absolute path"}},
		{"netns twice", `"/run/strata/netns/web-1"`, `"/run/strata/netns/web-0"`, []string{"attachments[1].netns", `also the namespace of instance "web-0"`}},
		{"veth twice", vethName("st-", "web-1"), vethName("st-", "web-0"), []string{"attachments[1].hostVeth", `also the veth or tap of instance "web-0"`}},
		{"veth is a bridge", vethName("st-", "web-1"), "st-default", []string{"attachments[1].hostVeth", `also the bridge of segment "default"`}},
		{"tap is a veth", tapName("st-", "worker-0"), vethName("st-", "web-0"), []string{"attachments[2].tap", `also the veth or tap of instance "web-0"`}},
		{"tap is a bridge", tapName("st-", "worker-0"), "st-payments", []string{"attachments[2].tap", `also the bridge of segment "payments"`}},
		{"bad tap", tapName("st-", "worker-0"), "st-tap/0", []string{"attachments[2].tap", "not an interface name"}},
		{"tap without a name", `"tap": "` + tapName("st-", "worker-0") + `"`, `"tap": ""`, []string{"attachments[2].tap", `"" is not an interface name`}},
		{"unknown kind", `"kind": "tap"`, `"kind": "macvtap"`, []string{"attachments[2].kind", `"macvtap" is neither "veth" nor "tap"`}},
		{"tap with a namespace", `"kind": "tap",`, `"kind": "tap", "netns": "/run/strata/netns/worker-0",`, []string{"attachments[2]: a tap attachment has no hostVeth or netns"}},
		{"tap recorded as veth", `"kind": "tap"`, `"kind": "veth"`, []string{"attachments[2].hostVeth", "attachments[2].netns", "attachments[2].tap"}},
		{"veth with a tap", `"netns": "/run/strata/netns/web-0"`, `"netns": "/run/strata/netns/web-0", "tap": "st-x"`, []string{"attachments[0].tap", "a veth attachment has no tap"}},
		{"trailing data", "}\n", "}\n{}", []string{"data after the JSON object"}},
		{"not json", "{", "[", []string{"line 2: invalid character"}},
		{"wrong type", `"version": 1`, `"version": "1"`, []string{"line 2: ", "version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(tt.old)) {
				t.Fatalf("golden state lacks %q", tt.old)
			}
			data := bytes.Replace(good, []byte(tt.old), []byte(tt.new), 1)
			if tt.name == "trailing data" {
				data = append(bytes.TrimSuffix(good, []byte("\n")), []byte("\n{}")...)
			}
			_, err := decodeState(data)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decodeState = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSaveAndLoadState(t *testing.T) {
	dir := t.TempDir()
	st, err := loadState(dir)
	if err != nil || len(st.Segments) != 0 || len(st.Attachments) != 0 {
		t.Fatalf("missing file: %+v, %v", st, err)
	}
	want := sampleState()
	for range 2 { // the second save replaces the first
		if err := saveState(dir, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Segments) != 2 || got.Segments[0].Name != "default" || !reflect.DeepEqual(got.Segments[1], want.Segments[0]) {
		t.Errorf("loaded %+v", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != stateFileName {
		t.Errorf("state dir holds %v, want only %s (no temporary files)", entries, stateFileName)
	}
}

func TestNewRefusesBadState(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, stateFileName)
	if err := os.WriteFile(file, []byte(`{"version": 1, "segments": [{"name": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{StateDir: dir, NetNSDir: filepath.Join(dir, "netns")})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "segments[0].subnet") {
		t.Errorf("New with a bad state file: %v", err)
	}
}

func TestNewLoadsState(t *testing.T) {
	dir := t.TempDir()
	if err := saveState(dir, sampleState()); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{StateDir: dir, NetNSDir: filepath.Join(dir, "netns")})
	if err != nil {
		t.Fatal(err)
	}
	segs := m.Segments()
	if len(segs) != 2 || segs[0].Name != "default" || segs[1].Bridge != "st-payments" {
		t.Errorf("segments = %+v", segs)
	}
	a, err := m.Attachment("web-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.IP != mustAddr("10.213.0.3") || a.Gateway != mustAddr("10.213.0.1") || a.Subnet.String() != "10.213.0.0/24" || a.MAC.String() != "0e:73:0a:d5:00:03" {
		t.Errorf("attachment = %+v", a)
	}
	// Allocation resumes after the recorded last address.
	if ip, _ := m.segments["default"].ipam.allocate("web-2"); ip != mustAddr("10.213.0.5") {
		t.Errorf("next address = %s, want 10.213.0.5", ip)
	}
	w, err := m.Attachment("worker-0")
	if err != nil {
		t.Fatal(err)
	}
	want := Attachment{
		Instance: "worker-0", Segment: "default", Kind: KindTap, IP: mustAddr("10.213.0.4"),
		Subnet: netip.MustParsePrefix("10.213.0.0/24"), Gateway: mustAddr("10.213.0.1"),
		MAC: macFor(mustAddr("10.213.0.4")), Tap: tapName("st-", "worker-0"),
	}
	if fmt.Sprint(w) != fmt.Sprint(want) {
		t.Errorf("tap attachment = %+v\nwant %+v", w, want)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string // substring of the error; "" for valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no state dir", func(o *Options) { o.StateDir = "" }, "StateDir is required"},
		{"relative netns dir", func(o *Options) { o.NetNSDir = "netns" }, "not an absolute path"},
		{"pool host bits", func(o *Options) { o.Pool = netip.MustParsePrefix("10.213.0.1/16") }, "pool 10.213.0.1/16"},
		{"pool too small", func(o *Options) { o.Pool = netip.MustParsePrefix("10.213.0.0/25") }, "between a /8 and a /24"},
		{"pool ipv6", func(o *Options) { o.Pool = netip.MustParsePrefix("fd00::/48") }, "not an IPv4"},
		{"long prefix", func(o *Options) { o.BridgePrefix = "strata-" }, "BridgePrefix"},
	}
	for _, tt := range tests {
		o := Options{StateDir: "/var/lib/strata/network"}
		tt.edit(&o)
		got, err := o.withDefaults()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err = %v, want ErrInvalid with %q", tt.name, err, tt.want)
		case tt.want == "" && (got.Pool != DefaultPool || got.NetNSDir != DefaultNetNSDir || got.BridgePrefix != "st-" || got.Host == nil || got.Logger == nil):
			t.Errorf("%s: defaults not filled in: %+v", tt.name, got)
		}
	}
}
