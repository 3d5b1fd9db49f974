package control

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/objects"
)

// fakeNet is a SegmentNetwork that keeps segments in memory and records what it was told
// to enforce.
type fakeNet struct {
	segs     map[string]netstate.Segment
	attached map[string]bool // segments with instances attached
	enforced netstate.State
	fail     map[string]error
}

func newFakeNet() *fakeNet {
	return &fakeNet{segs: map[string]netstate.Segment{}, attached: map[string]bool{}, fail: map[string]error{}}
}

func (f *fakeNet) EnsureSegment(_ context.Context, name string, subnet netip.Prefix) (netstate.Segment, error) {
	if err := f.fail[name]; err != nil {
		return netstate.Segment{}, err
	}
	if s, ok := f.segs[name]; ok {
		return s, nil
	}
	if !subnet.IsValid() {
		subnet = netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", len(f.segs)))
	}
	gw := subnet.Addr().Next()
	s := netstate.Segment{Name: name, Subnet: subnet, Gateway: gw, Bridge: "st-" + name}
	f.segs[name] = s
	return s, nil
}

func (f *fakeNet) DeleteSegment(_ context.Context, name string) error {
	if f.attached[name] {
		return errors.New("instances attached")
	}
	delete(f.segs, name)
	return nil
}

func (f *fakeNet) Segments() []netstate.Segment {
	var out []netstate.Segment
	for _, k := range sortedKeys(f.segs) {
		out = append(out, f.segs[k])
	}
	return out
}

func (f *fakeNet) Enforce(_ context.Context, st netstate.State) error {
	if err := f.fail[policyKey]; err != nil {
		return err
	}
	f.enforced = st
	return nil
}

func (e *env) applySegment(doc string) {
	e.t.Helper()
	objs, errs := load.File("s.yaml", []byte(doc))
	if len(errs) > 0 {
		e.t.Fatal(errs)
	}
	sg := objs[0].Object.(*v1alpha1.Segment)
	rec, err := objects.Record(v1alpha1.KindSegment, sg.Metadata, sg.Spec, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Create(context.Background(), rec); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) segmentStatus(name string) v1alpha1.SegmentStatus {
	e.t.Helper()
	rec, err := e.st.Get(context.Background(), v1alpha1.KindSegment, name)
	if err != nil {
		e.t.Fatal(err)
	}
	sg, err := objects.Segment(rec)
	if err != nil || sg.Status == nil {
		e.t.Fatalf("segment %s: %v, status %v", name, err, sg)
	}
	return *sg.Status
}

func TestSegmentSync(t *testing.T) {
	e := newEnv(t)
	net := newFakeNet()
	sc := NewSegments(SegmentOptions{Store: e.st, Network: net, Events: e.rec, Clock: e.clock.Now})
	e.applySegment("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: payments}\nspec:\n  subnet: 10.213.40.0/24\n  egress: deny\n  allow:\n  - from: {segment: default}\n    ports: [{port: 8080, protocol: tcp}]\n")
	e.applySegment("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: broken}\n")
	net.fail["broken"] = errors.New("no room in the pool")
	e.apply(workload("ledger", "2", []string{"serve"}, "Always")+"  segment: payments\n  ports: [{port: 8080, publish: 18080}]\n", v1alpha1.TierContainer)
	e.reconcile("ledger")
	net.segs["stale"] = netstate.Segment{Name: "stale", Subnet: netip.MustParsePrefix("10.213.9.0/24"), Gateway: netip.MustParseAddr("10.213.9.1"), Bridge: "st-stale"}

	err := sc.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "segment broken: no room in the pool") {
		t.Errorf("sync: %v, want the broken segment's error", err)
	}
	st := e.segmentStatus("payments")
	if st.Subnet != "10.213.40.0/24" || st.Gateway != "10.213.40.1" || st.Bridge != "st-payments" || st.Workloads != 1 ||
		len(st.Conditions) != 1 || st.Conditions[0].Status != v1alpha1.ConditionTrue {
		t.Errorf("payments status: %+v", st)
	}
	if b := e.segmentStatus("broken"); len(b.Conditions) != 1 || b.Conditions[0].Reason != "SetupFailed" || !strings.Contains(b.Conditions[0].Message, "no room") {
		t.Errorf("broken status: %+v", b)
	}
	if !strings.Contains(e.rec.reasons(), "SetupFailed") {
		t.Errorf("no SetupFailed event: %s", e.rec.reasons())
	}
	if _, ok := net.segs["stale"]; ok {
		t.Error("a segment nothing declares or uses was kept")
	}

	// What the host is told to enforce.
	var names []string
	for _, s := range net.enforced.Segments {
		names = append(names, fmt.Sprintf("%s:%s:%v", s.Name, s.Spec.Egress, s.Declared))
	}
	if got := strings.Join(names, " "); got != "payments:deny:true" {
		t.Errorf("enforced segments %q", got)
	}
	// A published port is enforced before any instance has an address (with no target yet).
	if len(net.enforced.Publish) != 1 || net.enforced.Publish[0].HostPort != 18080 || net.enforced.Publish[0].Segment != "payments" ||
		net.enforced.Publish[0].Protocol != v1alpha1.ProtocolTCP {
		t.Errorf("published ports %+v", net.enforced.Publish)
	}
}

func TestSegmentNames(t *testing.T) {
	e := newEnv(t)
	net := newFakeNet()
	sc := NewSegments(SegmentOptions{Store: e.st, Network: net, Clock: e.clock.Now})
	e.apply(workload("web", "2", []string{"serve"}, "Always")+"  ports: [{port: 80, publish: 8080}]\n", v1alpha1.TierContainer)
	e.reconcile("web")
	// Give the running instances addresses, as the network manager would have.
	rec, _ := e.st.Get(context.Background(), v1alpha1.KindWorkload, "web")
	w, _ := objects.Workload(rec)
	for i := range w.Status.Instances {
		w.Status.Instances[i].IP = fmt.Sprintf("10.213.0.%d", 10+i)
	}
	w.Status.Instances[1].State = "exited"
	next, _ := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, w.Status)
	next.ResourceVersion = rec.ResourceVersion
	if _, err := e.st.UpdateStatus(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := net.enforced.Names[v1alpha1.DefaultSegment]
	running := []netip.Addr{netip.MustParseAddr("10.213.0.10")}
	if !slices.Equal(names["web"], running) || !slices.Equal(names["web-0"], running) || names["web-1"] != nil {
		t.Errorf("names %v: want web and web-0 at the running instance only", names)
	}
	if p := net.enforced.Publish; len(p) != 1 || !slices.Equal(p[0].IPs, running) || p[0].Port != 80 {
		t.Errorf("publish %+v", p)
	}
}

// TestEmptyPolicyAtStartIsQuiet: a daemon that starts with nothing to run applies an
// empty policy without an event; the first segment is announced, and so is the return to
// an empty policy.
func TestEmptyPolicyAtStartIsQuiet(t *testing.T) {
	e := newEnv(t)
	net := newFakeNet()
	sc := NewSegments(SegmentOptions{Store: e.st, Network: net, Events: e.rec, Clock: e.clock.Now})
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.rec.reasons(); strings.Contains(got, "PolicyApplied") {
		t.Errorf("events after an empty start: %s, want no PolicyApplied", got)
	}
	e.applySegment("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: payments}\nspec:\n  subnet: 10.213.40.0/24\n")
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(e.rec.reasons(), "PolicyApplied"); got != 1 {
		t.Errorf("%d PolicyApplied events after the first segment, want 1: %s", got, e.rec.reasons())
	}
	if err := e.st.Delete(context.Background(), v1alpha1.KindSegment, "payments", 0); err != nil {
		t.Fatal(err)
	}
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(e.rec.reasons(), "PolicyApplied"); got != 2 {
		t.Errorf("%d PolicyApplied events after the last segment went, want 2: %s", got, e.rec.reasons())
	}
}

func TestPolicyFailureIsReported(t *testing.T) {
	e := newEnv(t)
	net := newFakeNet()
	sc := NewSegments(SegmentOptions{Store: e.st, Network: net, Events: e.rec, Clock: e.clock.Now})
	e.applySegment("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: orders}\nspec:\n  subnet: 10.213.30.0/24\n")
	net.fail[policyKey] = errors.New("netlink: message too long")
	for range 2 {
		if err := sc.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "message too long") {
			t.Fatalf("sync: %v, want the policy's error", err)
		}
	}
	if got := strings.Count(e.rec.reasons(), "PolicyFailed"); got != 1 {
		t.Errorf("%d PolicyFailed events for one failure, want 1: %s", got, e.rec.reasons())
	}
	delete(net.fail, policyKey)
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Once it applies, that is said once, and again only when the rules change.
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(e.rec.reasons(), "PolicyApplied"); got != 1 {
		t.Errorf("%d PolicyApplied events after two passes with the same rules, want 1: %s", got, e.rec.reasons())
	}
	e.applySegment("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: payments}\nspec:\n  subnet: 10.213.40.0/24\n  egress: deny\n")
	if err := sc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(e.rec.reasons(), "PolicyApplied"); got != 2 {
		t.Errorf("%d PolicyApplied events after a new segment, want 2: %s", got, e.rec.reasons())
	}
}
