package netseg

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"strata.dev/strata/internal/netseg/netstate"
)

// Segment is a layer-2 network for instances: one bridge on the host. It is the
// segment model that the controllers share (package netstate).
type Segment = netstate.Segment

// Kind is how an instance is attached to its segment.
type Kind string

const (
	// KindVeth is a network namespace with a veth pair (Attach), for
	// containers.
	KindVeth Kind = "veth"
	// KindTap is a tap device on the host (AttachTap), for VMs.
	KindTap Kind = "tap"
)

// Attachment is an instance's place on a segment. NetNS, Interface and
// HostVeth are set for KindVeth, Tap for KindTap; the rest for both.
type Attachment struct {
	Instance string
	Segment  string
	Kind     Kind
	// NetNS is the path of the instance's network namespace, for the
	// runtime to join (runtime.InstanceSpec.NetNS).
	NetNS     string
	Interface string       // the instance's interface inside NetNS: "eth0"
	IP        netip.Addr   // the instance's address (on Interface, or the VM's NIC)
	Subnet    netip.Prefix // the segment's subnet; IP's prefix length
	Gateway   netip.Addr   // the default route's next hop
	// MAC is the instance's hardware address: eth0's, or the one to give
	// the VM's NIC.
	MAC      net.HardwareAddr
	HostVeth string // the host end of the veth pair, a port of the bridge
	// Tap is the tap device on the host, a port of the bridge; OpenTap
	// opens it for the VM.
	Tap string
}

// instanceIf is the name of the instance's interface inside its namespace.
const instanceIf = "eth0"

// Manager creates segments and attaches instances to them. Its methods are
// safe for concurrent use; they run one at a time.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu          sync.Mutex
	segments    map[string]*segment
	attachments map[string]attachRecord // by instance ID
	forwarding  bool                    // ip_forward has been set

	// failAt, when set (by tests), runs before each host step and fails
	// the step by returning an error.
	failAt func(step string) error
}

// segment is a Segment and the allocator of its addresses.
type segment struct {
	Segment
	ipam *ipam
}

// New returns a Manager for opts. It creates StateDir and NetNSDir if
// needed and reads the record of segments and attachments an earlier
// Manager left; it does not change the host network (EnsureSegment and
// Attach re-create whatever is missing).
func New(opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("network state dir: %w", err)
	}
	if err := os.MkdirAll(opts.NetNSDir, 0o750); err != nil {
		return nil, fmt.Errorf("network namespace dir: %w", err)
	}
	st, err := loadState(opts.StateDir)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, log: opts.Logger}
	if err := m.restore(st); err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	return m, nil
}

// restore fills the manager's tables from a decoded state.
func (m *Manager) restore(st state) error {
	m.segments = map[string]*segment{}
	m.attachments = map[string]attachRecord{}
	for _, r := range st.Segments {
		s := &segment{Segment{Name: r.Name, Subnet: r.Subnet, Gateway: r.Gateway, Bridge: r.Bridge}, newIPAM(r.Subnet)}
		s.ipam.last = r.Last
		m.segments[r.Name] = s
	}
	for _, r := range st.Attachments {
		s, ok := m.segments[r.Segment]
		if !ok {
			return fmt.Errorf("%w: instance %q: no segment %q", ErrInvalid, r.Instance, r.Segment)
		}
		if err := s.ipam.reserve(r.IP, r.Instance); err != nil {
			return fmt.Errorf("instance %q: %w", r.Instance, err)
		}
		m.attachments[r.Instance] = r
	}
	return nil
}

// Segments returns every segment, sorted by name.
func (m *Manager) Segments() []Segment {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Segment, 0, len(m.segments))
	for _, s := range m.segments {
		out = append(out, s.Segment)
	}
	slices.SortFunc(out, func(a, b Segment) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Segment returns the segment called name, or ErrNotFound.
func (m *Manager) Segment(name string) (Segment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.segments[name]
	if !ok {
		return Segment{}, fmt.Errorf("%w: segment %q", ErrNotFound, name)
	}
	return s.Segment, nil
}

// Attachments returns every attachment, sorted by instance ID.
func (m *Manager) Attachments() []Attachment {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Attachment, 0, len(m.attachments))
	for _, r := range m.attachments {
		out = append(out, m.attachment(r))
	}
	slices.SortFunc(out, func(a, b Attachment) int { return strings.Compare(a.Instance, b.Instance) })
	return out
}

// Attachment returns the attachment of instance id, or ErrNotFound. It
// reports what is recorded; Attach also checks the host.
func (m *Manager) Attachment(id string) (Attachment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.attachments[id]
	if !ok {
		return Attachment{}, fmt.Errorf("%w: no attachment of instance %q", ErrNotFound, id)
	}
	return m.attachment(r), nil
}

// attachment is the Attachment of record r; m.mu is held.
func (m *Manager) attachment(r attachRecord) Attachment {
	s := m.segments[r.Segment]
	a := Attachment{
		Instance: r.Instance,
		Segment:  r.Segment,
		Kind:     r.Kind,
		IP:       r.IP,
		Subnet:   s.Subnet,
		Gateway:  s.Gateway,
		MAC:      macFor(r.IP),
	}
	if r.Kind == KindTap {
		a.Tap = r.Tap
	} else {
		a.NetNS, a.Interface, a.HostVeth = r.NetNS, instanceIf, r.HostVeth
	}
	return a
}

// save writes the current record to network.json; m.mu is held.
func (m *Manager) save() error {
	st := state{Version: stateVersion}
	for _, s := range m.segments {
		st.Segments = append(st.Segments, segmentRecord{
			Name: s.Name, Subnet: s.Subnet, Gateway: s.Gateway, Bridge: s.Bridge, Last: s.ipam.last,
		})
	}
	for _, r := range m.attachments {
		st.Attachments = append(st.Attachments, r)
	}
	return saveState(m.opts.StateDir, st)
}

// commit saves a change already made in memory. If saving fails, it calls
// undoMem (the file still holds the old record) and returns the error; if
// it succeeds, it records in rv how to undo the change in memory and on
// disk.
func (m *Manager) commit(rv *revert, what string, undoMem func()) error {
	if err := m.save(); err != nil {
		undoMem()
		return err
	}
	rv.add(what, func() error {
		undoMem()
		return m.save()
	})
	return nil
}

// step runs the test hook before a host step.
func (m *Manager) step(name string) error {
	if m.failAt == nil {
		return nil
	}
	return m.failAt(name)
}
