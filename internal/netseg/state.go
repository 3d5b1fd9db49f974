package netseg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// stateFileName is the manager's record under Options.StateDir.
const stateFileName = "network.json"

// stateVersion is the format of network.json; a file of another version is
// refused rather than guessed at.
const stateVersion = 1

// state is what network.json holds: every segment and every attachment.
// Lists are sorted by name so the file is stable.
type state struct {
	Version     int             `json:"version"`
	Segments    []segmentRecord `json:"segments"`
	Attachments []attachRecord  `json:"attachments"`
}

type segmentRecord struct {
	Name    string       `json:"name"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	Bridge  string       `json:"bridge"`
	// Last is the address given out most recently; allocation continues
	// after it.
	Last netip.Addr `json:"last,omitzero"`
}

// attachRecord is one attachment. A veth record has HostVeth and NetNS, a
// tap record has Tap. Files written before taps existed have no kind: their
// records are veths.
type attachRecord struct {
	Instance string     `json:"instance"`
	Segment  string     `json:"segment"`
	Kind     Kind       `json:"kind"`
	IP       netip.Addr `json:"ip"`
	HostVeth string     `json:"hostVeth,omitempty"`
	NetNS    string     `json:"netns,omitempty"`
	Tap      string     `json:"tap,omitempty"`
}

// decodeState parses and checks network.json. The errors name the JSON
// path of the bad entry; the caller adds the file name.
func decodeState(data []byte) (state, error) {
	var s state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return state{}, fmt.Errorf("%w: %s%w", ErrInvalid, jsonLine(data, err), err)
	}
	if dec.More() {
		return state{}, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	for i := range s.Attachments {
		if s.Attachments[i].Kind == "" {
			s.Attachments[i].Kind = KindVeth
		}
	}
	if err := s.check(); err != nil {
		return state{}, err
	}
	return s, nil
}

// jsonLine is "line N: " for a JSON error that knows its byte offset.
func jsonLine(data []byte, err error) string {
	var off int64
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	default:
		return ""
	}
	off = min(max(off, 0), int64(len(data)))
	return fmt.Sprintf("line %d: ", 1+bytes.Count(data[:off], []byte("\n")))
}

// check verifies what the manager relies on: known version, valid names
// and subnets, no overlaps, every attachment on a known segment with a
// usable, unique address.
func (s state) check() error {
	if s.Version != stateVersion {
		return fmt.Errorf("%w: version %d, this strata reads version %d", ErrInvalid, s.Version, stateVersion)
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, path, fmt.Sprintf(format, args...)))
	}
	segs := map[string]*ipam{}
	bridges := map[string]string{}
	for i, r := range s.Segments {
		path := fmt.Sprintf("segments[%d]", i)
		if err := checkSegmentName(r.Name); err != nil {
			bad(path+".name", "%s", detail(err))
			continue
		}
		if _, dup := segs[r.Name]; dup {
			bad(path+".name", "segment %q is listed twice", r.Name)
			continue
		}
		if err := checkSubnet(r.Subnet); err != nil {
			bad(path+".subnet", "%s", detail(err))
			continue
		}
		if r.Gateway != gatewayOf(r.Subnet) {
			bad(path+".gateway", "%s is not the first address of %s", r.Gateway, r.Subnet)
		}
		if r.Bridge == "" || len(r.Bridge) > maxIfName || strings.ContainsAny(r.Bridge, "/: \t\n") {
			bad(path+".bridge", "%q is not an interface name", r.Bridge)
		} else if other, dup := bridges[r.Bridge]; dup {
			bad(path+".bridge", "%s is also the bridge of segment %q", r.Bridge, other)
		}
		bridges[r.Bridge] = r.Name
		for name, p := range segs {
			if p.subnet.Overlaps(r.Subnet) {
				bad(path+".subnet", "%s overlaps segment %q (%s)", r.Subnet, name, p.subnet)
			}
		}
		p := newIPAM(r.Subnet)
		if r.Last.IsValid() && !p.usable(r.Last) {
			bad(path+".last", "%s is not an instance address of %s", r.Last, r.Subnet)
		}
		p.last = r.Last
		segs[r.Name] = p
	}
	instances := map[string]bool{}
	links := map[string]string{} // host veth or tap -> instance
	netnsPaths := map[string]string{}
	for i, r := range s.Attachments {
		path := fmt.Sprintf("attachments[%d]", i)
		if err := checkInstanceID(r.Instance); err != nil {
			bad(path+".instance", "%s", detail(err))
			continue
		}
		if instances[r.Instance] {
			bad(path+".instance", "instance %q is attached twice", r.Instance)
			continue
		}
		instances[r.Instance] = true
		p, ok := segs[r.Segment]
		if !ok {
			bad(path+".segment", "no segment %q", r.Segment)
			continue
		}
		if err := p.reserve(r.IP, r.Instance); err != nil {
			bad(path+".ip", "%s", detail(err))
		}
		// hostLink checks the name of a link on the host: well formed and
		// nobody else's.
		hostLink := func(field, name string) {
			if name == "" || len(name) > maxIfName || strings.ContainsAny(name, "/: \t\n") {
				bad(path+"."+field, "%q is not an interface name", name)
			} else if other, dup := links[name]; dup {
				bad(path+"."+field, "%s is also the veth or tap of instance %q", name, other)
			} else if seg, isBridge := bridges[name]; isBridge {
				bad(path+"."+field, "%s is also the bridge of segment %q", name, seg)
			}
			links[name] = r.Instance
		}
		switch r.Kind {
		case KindVeth:
			hostLink("hostVeth", r.HostVeth)
			if !filepath.IsAbs(r.NetNS) || filepath.Clean(r.NetNS) != r.NetNS {
				bad(path+".netns", "%q is not a clean absolute path", r.NetNS)
			} else if other, dup := netnsPaths[r.NetNS]; dup {
				bad(path+".netns", "%s is also the namespace of instance %q", r.NetNS, other)
			}
			netnsPaths[r.NetNS] = r.Instance
			if r.Tap != "" {
				bad(path+".tap", "a veth attachment has no tap")
			}
		case KindTap:
			hostLink("tap", r.Tap)
			if r.HostVeth != "" || r.NetNS != "" {
				bad(path, "a tap attachment has no hostVeth or netns")
			}
		default:
			bad(path+".kind", "%q is neither %q nor %q", r.Kind, KindVeth, KindTap)
		}
	}
	return errors.Join(errs...)
}

// encode renders s as network.json: sorted, indented, newline-terminated.
func (s state) encode() ([]byte, error) {
	s.Version = stateVersion
	s.Segments = slices.Clone(s.Segments)
	s.Attachments = slices.Clone(s.Attachments)
	slices.SortFunc(s.Segments, func(a, b segmentRecord) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Attachments, func(a, b attachRecord) int { return strings.Compare(a.Instance, b.Instance) })
	if s.Segments == nil {
		s.Segments = []segmentRecord{}
	}
	if s.Attachments == nil {
		s.Attachments = []attachRecord{}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// loadState reads dir/network.json; a missing file is an empty state.
func loadState(dir string) (state, error) {
	file := filepath.Join(dir, stateFileName)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return state{Version: stateVersion}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("network state: %w", err)
	}
	s, err := decodeState(data)
	if err != nil {
		return state{}, fmt.Errorf("network state %s: %w (fix or move the file; moving it forgets every address)", file, err)
	}
	return s, nil
}

// saveState writes s to dir/network.json atomically: a temporary file in
// the same directory, fsync, rename over the old file, fsync the directory.
// A crash leaves either the old or the new file, never a mix.
func saveState(dir string, s state) error {
	data, err := s.encode()
	if err != nil {
		return fmt.Errorf("network state: encode: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+stateFileName+".*")
	if err != nil {
		return fmt.Errorf("network state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("network state: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("network state: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("network state: close %s: %w", tmp.Name(), err)
	}
	file := filepath.Join(dir, stateFileName)
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("network state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("network state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("network state: sync %s: %w", dir, err)
	}
	return nil
}
