package netseg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeState feeds network.json parsing arbitrary bytes. Whatever it
// accepts must be a state the manager can run on: it restores without
// error, re-encodes to a fixed point, has no overlapping subnets, and
// every segment hands out only addresses that no attachment holds, and
// every attachment is a whole veth or a whole tap with host link names of
// its own.
func FuzzDecodeState(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "network.golden.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"version":1,"segments":[],"attachments":[]}`))
	f.Add([]byte(`{"version":1,"segments":[{"name":"t","subnet":"10.213.9.0/30","gateway":"10.213.9.1","bridge":"st-t","last":"10.213.9.2"}],` +
		`"attachments":[{"instance":"a-0","segment":"t","ip":"10.213.9.2","hostVeth":"st-x","netns":"/n/a-0"}]}`))
	f.Add([]byte(`{"version":1,"segments":[{"name":"a","subnet":"10.213.0.0/16","gateway":"10.213.0.1","bridge":"st-a"},` +
		`{"name":"b","subnet":"10.213.4.0/24","gateway":"10.213.4.1","bridge":"st-b"}],"attachments":[]}`))
	f.Add([]byte(`{"version":1,"segments":[{"name":"t","subnet":"10.213.9.0/29","gateway":"10.213.9.1","bridge":"st-t"}],` +
		`"attachments":[{"instance":"a-0","segment":"t","kind":"tap","ip":"10.213.9.2","tap":"st-x"},` +
		`{"instance":"b-0","segment":"t","ip":"10.213.9.3","hostVeth":"st-y","netns":"/n/b-0"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"segments":null,"attachments":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || err.Error() == "" {
				t.Fatalf("rejection is not ErrInvalid: %v", err)
			}
			return
		}
		m := &Manager{}
		if err := m.restore(st); err != nil {
			t.Fatalf("accepted state does not restore: %v", err)
		}
		enc, err := st.encode()
		if err != nil {
			t.Fatalf("accepted state does not encode: %v", err)
		}
		st2, err := decodeState(enc)
		if err != nil {
			t.Fatalf("encoded state is refused: %v\n%s", err, enc)
		}
		enc2, err := st2.encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point (%v):\n%s\n%s", err, enc, enc2)
		}
		segs := m.sortedSegments()
		for i, a := range segs {
			if a.Gateway != gatewayOf(a.Subnet) || len(a.Bridge) > maxIfName {
				t.Fatalf("segment %+v", a.Segment)
			}
			for _, b := range segs[i+1:] {
				if a.Subnet.Overlaps(b.Subnet) {
					t.Fatalf("segments %s and %s overlap", a.Name, b.Name)
				}
			}
		}
		netnsPaths := map[string]bool{}
		links := map[string]bool{}
		for _, s := range segs {
			links[s.Bridge] = true
		}
		for _, r := range m.attachments {
			if s := m.segments[r.Segment]; !s.ipam.usable(r.IP) || s.ipam.used[r.IP] != r.Instance {
				t.Fatalf("attachment %+v is not held in its segment", r)
			}
			link := r.HostVeth
			switch r.Kind {
			case KindVeth:
				if r.NetNS == "" || r.HostVeth == "" || r.Tap != "" || netnsPaths[r.NetNS] {
					t.Fatalf("veth attachment %+v is not whole or shares its namespace", r)
				}
				netnsPaths[r.NetNS] = true
			case KindTap:
				if r.Tap == "" || r.HostVeth != "" || r.NetNS != "" {
					t.Fatalf("tap attachment %+v is not whole", r)
				}
				link = r.Tap
			default:
				t.Fatalf("attachment %+v has kind %q", r, r.Kind)
			}
			if links[link] {
				t.Fatalf("attachment %+v shares its link %s", r, link)
			}
			links[link] = true
		}
		for _, s := range segs {
			ip, err := s.ipam.allocate("fuzz-new")
			if errors.Is(err, ErrExhausted) {
				if len(s.ipam.used) != s.ipam.size() {
					t.Fatalf("segment %s exhausted with %d of %d used", s.Name, len(s.ipam.used), s.ipam.size())
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range m.attachments {
				if r.Segment == s.Name && r.IP == ip {
					t.Fatalf("segment %s gave %s, held by %s", s.Name, ip, r.Instance)
				}
			}
		}
	})
}
