package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// SegmentNetwork is the host side of segments: bridges, and the rules and names that the
// segment controller computes from the objects.
type SegmentNetwork interface {
	// EnsureSegment sets up segment name's bridge, with the given subnet (the zero prefix =
	// one from the pool), and returns what the host has. It is idempotent.
	EnsureSegment(ctx context.Context, name string, subnet netip.Prefix) (netstate.Segment, error)
	// DeleteSegment removes the segment's bridge; it fails while instances are attached.
	DeleteSegment(ctx context.Context, name string) error
	// Segments lists the segments the host has.
	Segments() []netstate.Segment
	// Enforce makes the host enforce st: the flows between segments, egress, published
	// ports, and the names instances resolve. It replaces whatever was enforced before; a
	// state without segments leaves nothing of strata's on the host.
	Enforce(ctx context.Context, st netstate.State) error
}

// SegmentOptions configure the segment controller.
type SegmentOptions struct {
	Store   *store.Store
	Network SegmentNetwork
	Events  Recorder
	Logger  *slog.Logger
	Clock   func() time.Time
	// Resync is how often the whole state is recomputed without a change (default 5s).
	Resync time.Duration
}

// SegmentController keeps the host's segments, flows, published ports and names in line
// with the Segment objects and the workloads' running instances.
type SegmentController struct {
	o   SegmentOptions
	log *slog.Logger
	// failed remembers the last failure per segment, so each is logged once.
	failed map[string]string
	// applied is the rules part of the last policy enforced (see policyRules), so that
	// a PolicyApplied event is recorded when the rules change, not at every pass; nil
	// until the first policy is enforced.
	applied *string
}

// NewSegments returns a segment controller.
func NewSegments(o SegmentOptions) *SegmentController {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Resync <= 0 {
		o.Resync = 5 * time.Second
	}
	return &SegmentController{o: o, log: o.Logger, failed: map[string]string{}}
}

// Run syncs at start, after every change of a Segment or a Workload (a burst of changes
// is synced once), and on every resync, until ctx ends.
func (c *SegmentController) Run(ctx context.Context) error {
	rev := c.o.Store.Revision()
	segs, err := c.o.Store.Watch(ctx, v1alpha1.KindSegment, rev)
	if err != nil {
		return fmt.Errorf("watch segments: %w", err)
	}
	wls, err := c.o.Store.Watch(ctx, v1alpha1.KindWorkload, rev)
	if err != nil {
		return fmt.Errorf("watch workloads: %w", err)
	}
	resync := time.NewTicker(c.o.Resync)
	defer resync.Stop()
	const settle = 50 * time.Millisecond
	pending := time.NewTimer(0)
	defer pending.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-segs:
			if !ok {
				return ctx.Err()
			}
			pending.Reset(settle)
		case _, ok := <-wls:
			if !ok {
				return ctx.Err()
			}
			pending.Reset(settle)
		case <-resync.C:
			pending.Reset(0)
		case <-pending.C:
			if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("segments: sync", "err", err)
			}
		}
	}
}

// Sync makes the host's segments match the objects once: it sets up every declared
// segment and writes its status, removes segments nothing needs any more, and has the
// host enforce the flows, published ports and names.
func (c *SegmentController) Sync(ctx context.Context) error {
	segRecs, _, err := c.o.Store.List(ctx, v1alpha1.KindSegment)
	if err != nil {
		return err
	}
	wlRecs, _, err := c.o.Store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return err
	}
	declared := map[string]*v1alpha1.Segment{}
	for _, rec := range segRecs {
		sg, err := objects.Segment(rec)
		if err != nil {
			c.log.Warn("segments: unreadable record", "name", rec.Name, "err", err)
			continue
		}
		sg.Spec.SetDefaults()
		declared[sg.Metadata.Name] = sg
	}
	var workloads []*v1alpha1.Workload
	users := map[string]int{}
	for _, rec := range wlRecs {
		w, err := objects.Workload(rec)
		if err != nil {
			continue
		}
		workloads = append(workloads, w)
		users[segmentOf(w)]++
	}

	var errs []error
	for _, name := range sortedKeys(declared) {
		sg := declared[name]
		subnet, err := netstate.ParseSubnet(name, sg.Spec.Subnet)
		var info netstate.Segment
		if err == nil {
			info, err = c.o.Network.EnsureSegment(ctx, name, subnet)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("segment %s: %w", name, err))
			if c.failed[name] != err.Error() {
				c.failed[name] = err.Error()
				c.event(ctx, name, "Warning", "SetupFailed", err.Error())
			}
		} else {
			delete(c.failed, name)
		}
		if werr := c.writeStatus(ctx, name, info, users[name], err); werr != nil {
			errs = append(errs, werr)
		}
	}
	// Segments that workloads use without a Segment object are set up as they are (the
	// instances' attachments also set them up on demand).
	for _, name := range sortedKeys(users) {
		if _, ok := declared[name]; ok {
			continue
		}
		if _, err := c.o.Network.EnsureSegment(ctx, name, netip.Prefix{}); err != nil {
			errs = append(errs, fmt.Errorf("segment %s: %w", name, err))
		}
	}
	// Segments that nothing declares or uses go (the default one too: it comes back with
	// its first instance); one that still has instances attached (their workload just
	// moved away or is being deleted) goes on a later pass.
	for _, info := range c.o.Network.Segments() {
		if _, ok := declared[info.Name]; ok || users[info.Name] > 0 {
			continue
		}
		if err := c.o.Network.DeleteSegment(ctx, info.Name); err != nil {
			c.log.Debug("segments: not removed yet", "segment", info.Name, "err", err)
		}
	}
	state := c.state(declared, workloads)
	if err := c.o.Network.Enforce(ctx, state); err != nil {
		errs = append(errs, fmt.Errorf("enforce the network policy: %w", err))
		// Said once per distinct failure: the previous policy stays in force meanwhile.
		if c.failed[policyKey] != err.Error() {
			c.failed[policyKey] = err.Error()
			c.record(ctx, "Network/policy", "Warning", "PolicyFailed", "the network policy could not be applied; the previous one stays in force: "+err.Error())
		}
	} else {
		delete(c.failed, policyKey)
		if rules := policyRules(state); c.applied == nil || rules != *c.applied {
			// An empty policy at the first pass (a daemon with nothing to run yet) is no news.
			news := c.applied != nil || len(state.Segments) > 0
			c.applied = &rules
			if news {
				c.record(ctx, "Network/policy", "Normal", "PolicyApplied", policySummary(state))
			}
		}
	}
	return errors.Join(errs...)
}

// state computes what the host enforces.
func (c *SegmentController) state(declared map[string]*v1alpha1.Segment, workloads []*v1alpha1.Workload) netstate.State {
	st := netstate.State{Names: map[string]map[string][]netip.Addr{}}
	for _, info := range c.o.Network.Segments() {
		ss := netstate.SegmentState{Segment: info}
		ss.Spec.SetDefaults()
		if sg, ok := declared[info.Name]; ok {
			ss.Spec, ss.Declared = sg.Spec, true
		}
		st.Segments = append(st.Segments, ss)
	}
	for _, w := range workloads {
		if w.Status == nil {
			continue
		}
		seg := segmentOf(w)
		var ips []netip.Addr
		for _, in := range w.Status.Instances {
			if in.State != string(runtime.StateRunning) || in.IP == "" {
				continue
			}
			ip, err := netip.ParseAddr(in.IP)
			if err != nil {
				continue // not an address the network gave: nothing to resolve or forward to
			}
			ips = append(ips, ip)
			addName(st.Names, seg, in.ID, ip)
			addName(st.Names, seg, w.Metadata.Name, ip)
		}
		for _, p := range w.Spec.Ports {
			if p.Publish == 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = v1alpha1.ProtocolTCP
			}
			st.Publish = append(st.Publish, netstate.PublishedPort{
				Workload: w.Metadata.Name, Segment: seg, HostPort: p.Publish, Port: p.Port, Protocol: proto, IPs: slices.Clone(ips),
			})
		}
	}
	return st
}

func addName(names map[string]map[string][]netip.Addr, seg, name string, ip netip.Addr) {
	if names[seg] == nil {
		names[seg] = map[string][]netip.Addr{}
	}
	names[seg][name] = append(names[seg][name], ip)
}

// writeStatus records what the host has of a declared segment.
func (c *SegmentController) writeStatus(ctx context.Context, name string, info netstate.Segment, users int, setupErr error) error {
	return objects.UpdateSegmentStatus(ctx, c.o.Store, name, func(st *v1alpha1.SegmentStatus) {
		cond := v1alpha1.Condition{Type: "Ready", Status: v1alpha1.ConditionTrue, Reason: "BridgeUp",
			Message: fmt.Sprintf("bridge %s holds %s on %s", info.Bridge, info.Gateway, info.Subnet)}
		if setupErr != nil {
			cond = v1alpha1.Condition{Type: "Ready", Status: v1alpha1.ConditionFalse, Reason: "SetupFailed", Message: setupErr.Error()}
		} else {
			st.Subnet, st.Gateway, st.Bridge = info.Subnet.String(), info.Gateway.String(), info.Bridge
		}
		st.Workloads = users
		st.Conditions = setCondition(st.Conditions, cond, c.o.Clock())
	})
}

// policyKey is the failed entry of the network policy (segment names are DNS labels, so it
// cannot clash).
const policyKey = "(policy)"

func (c *SegmentController) event(ctx context.Context, segment, typ, reason, msg string) {
	c.record(ctx, "Segment/"+segment, typ, reason, msg)
}

func (c *SegmentController) record(ctx context.Context, object, typ, reason, msg string) {
	e := objects.Event{Type: typ, Reason: reason, Object: object, Message: msg}
	if c.o.Events != nil {
		c.o.Events.Record(ctx, e)
		return
	}
	c.log.Info("event", "type", typ, "reason", reason, "object", object, "message", msg)
}

// segmentOf is a workload's segment, defaulted.
func segmentOf(w *v1alpha1.Workload) string {
	if w.Spec.Segment == "" {
		return v1alpha1.DefaultSegment
	}
	return w.Spec.Segment
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// policyRules is what a user changes in a policy: each segment's egress and allowed
// flows, in a stable text. Addresses and names that come and go with instances are left
// out.
func policyRules(st netstate.State) string {
	var b strings.Builder
	for _, sg := range st.Segments {
		fmt.Fprintf(&b, "%s egress=%s", sg.Name, sg.Spec.Egress)
		for _, a := range sg.Spec.Allow {
			fmt.Fprintf(&b, " from=%s%v", a.From.Segment, a.Ports)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// policySummary says what the enforced policy holds, for the PolicyApplied event.
func policySummary(st netstate.State) string {
	flows, denied := 0, 0
	for _, sg := range st.Segments {
		flows += len(sg.Spec.Allow)
		if sg.Spec.Egress == v1alpha1.EgressDeny {
			denied++
		}
	}
	return fmt.Sprintf("network policy in force: %d segments, %d allowed flows between them, egress denied from %d", len(st.Segments), flows, denied)
}
