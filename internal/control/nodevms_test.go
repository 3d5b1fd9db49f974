package control

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
)

// noNetDriver is a node VM driver that, like the nodevm driver for now, cannot join an
// instance to a network namespace.
type noNetDriver struct{ *fake.Driver }

func (d noNetDriver) Capabilities() runtime.Capabilities {
	c := d.Driver.Capabilities()
	c.NetNS = false
	return c
}

// nodeVMEnv is a controller over two fake drivers on one simulated host: "fake" runs
// replicas on the host's kernel, "nodevm" inside node VMs; nodeVMs false builds the
// registry of a host without node VMs. net, when set, records attachments.
func (e *env) nodeVMController(nodeVMs, netNS bool, net Network) *Controller {
	e.t.Helper()
	if !nodeVMs {
		return e.nodeVMControllerWith(nil, net)
	}
	return e.nodeVMControllerWith(func(nd *fake.Driver) runtime.Driver {
		if !netNS {
			return noNetDriver{nd}
		}
		return nd
	}, net)
}

// nodeVMControllerWith is nodeVMController whose node VM driver is the fake driver
// "nodevm" as wrap returns it; nil wrap builds the registry of a host without node VMs.
func (e *env) nodeVMControllerWith(wrap func(*fake.Driver) runtime.Driver, net Network) *Controller {
	e.t.Helper()
	nodeVMs := wrap != nil
	host, err := fake.New(fake.Options{Host: e.host, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox, v1alpha1.TierVM}, Images: []string{image}})
	if err != nil {
		e.t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(host)
	if err != nil {
		e.t.Fatal(err)
	}
	if nodeVMs {
		nd, err := fake.New(fake.Options{Host: e.host, Name: "nodevm", Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Images: []string{image}})
		if err != nil {
			e.t.Fatal(err)
		}
		if reg, err = reg.WithNodeVMs(wrap(nd)); err != nil {
			e.t.Fatal(err)
		}
	} else {
		reg = reg.WithoutNodeVMs("node VMs are off (--node-vms=off)")
	}
	return New(Options{Store: e.st, Drivers: reg, Events: e.rec, Clock: e.clock.Now, DataDir: e.t.TempDir(), Network: net})
}

// applyPlaced stores a workload with its tier and the node VM decision admission made.
func (e *env) applyPlaced(doc string, tier v1alpha1.Tier, nv v1alpha1.NodeVMDecision) {
	e.t.Helper()
	objs, errs := load.File("w.yaml", []byte(doc))
	if len(errs) > 0 {
		e.t.Fatal(errs)
	}
	w := objs[0].Object.(*v1alpha1.Workload)
	st := v1alpha1.WorkloadStatus{Tier: tier, NodeVM: &nv}
	rec, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, st)
	if err != nil {
		e.t.Fatal(err)
	}
	if cur, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, w.Metadata.Name); err == nil {
		// A new decision is a status write, as admission's on an update.
		rec.ResourceVersion = cur.ResourceVersion
		if _, err := e.st.Update(context.Background(), rec); err != nil {
			e.t.Fatal(err)
		}
		if cur, err = e.st.Get(context.Background(), v1alpha1.KindWorkload, w.Metadata.Name); err != nil {
			e.t.Fatal(err)
		}
		rec.ResourceVersion = cur.ResourceVersion
		if _, err := e.st.UpdateStatus(context.Background(), rec); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	if _, err := e.st.Create(context.Background(), rec); err != nil {
		e.t.Fatal(err)
	}
}

// byDriver lists the instances each driver reports, as driver:id[class].
func (e *env) byDriver() string {
	e.t.Helper()
	var out []string
	for _, d := range e.c.o.Drivers.Drivers() {
		l, err := d.List(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, st := range l {
			s := d.Name() + ":" + st.ID
			if c := st.Labels[runtime.LabelIsolationClass]; c != "" {
				s += "[" + c + "]"
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

var (
	inNodeVMs = v1alpha1.NodeVMDecision{Run: true, Class: "acme/internal/internal", Reason: "policy: tenancy multi"}
	onHost    = v1alpha1.NodeVMDecision{Class: "shop/internal/internal", Reason: "policy: spec.nodeVM.when is false"}
)

// TestNodeVMDriverChoice: each workload's replicas run on the driver its node VM
// decision names, with their class; a restarted controller adopts them where they run;
// a changed decision moves them.
func TestNodeVMDriverChoice(t *testing.T) {
	e := newEnv(t)
	e.c = e.nodeVMController(true, true, nil)
	e.applyPlaced(workload("acme", "2", sleepForever, "Always"), v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("shop", "1", sleepForever, "Always"), v1alpha1.TierContainer, onHost)
	e.applyPlaced(workload("vmw", "1", sleepForever, "Always"), v1alpha1.TierVM, v1alpha1.NodeVMDecision{Reason: "tier vm"})
	for _, n := range []string{"acme", "shop", "vmw"} {
		e.reconcile(n)
	}
	want := "fake:shop-0 fake:vmw-0 nodevm:acme-0[acme/internal/internal] nodevm:acme-1[acme/internal/internal]"
	if got := e.byDriver(); got != want {
		t.Fatalf("instances %s, want %s", got, want)
	}
	for n, drv := range map[string]string{"acme": "nodevm", "shop": "fake", "vmw": "fake"} {
		for _, in := range e.status(n).Instances {
			if in.Driver != drv || in.State != "running" {
				t.Errorf("%s: instance %+v, want running on driver %s", n, in, drv)
			}
		}
	}
	if ev := e.rec.events; len(ev) == 0 || !strings.Contains(eventMessage(e.rec, "acme-0", "Started"), "in node VMs of class acme/internal/internal (policy: tenancy multi)") {
		t.Errorf("acme-0's Started event %q says not where it runs and why", eventMessage(e.rec, "acme-0", "Started"))
	}

	// A restarted daemon: the same instances, on the same drivers, nothing started twice.
	e.c = e.nodeVMController(true, true, nil)
	for _, n := range []string{"acme", "shop", "vmw"} {
		e.reconcile(n)
	}
	if got := e.byDriver(); got != want {
		t.Fatalf("after a restart: %s, want %s", got, want)
	}
	if n := strings.Count(e.rec.reasons(), "Started"); n != 4 || strings.Contains(e.rec.reasons(), "Replaced") {
		t.Errorf("after a restart: events %s, want 4 starts and no replacement", e.rec.reasons())
	}

	// The policy now keeps acme on the host: its replicas move there.
	e.applyPlaced(workload("acme", "2", sleepForever, "Always"), v1alpha1.TierContainer, v1alpha1.NodeVMDecision{Class: inNodeVMs.Class, Reason: "placement.nodeVM never"})
	e.reconcile("acme")
	if got, want := e.byDriver(), "fake:acme-0 fake:acme-1 fake:shop-0 fake:vmw-0"; got != want {
		t.Errorf("after the decision changed: %s, want %s", got, want)
	}
}

func eventMessage(r *memRecorder, instance, reason string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Instance == instance && e.Reason == reason {
			return e.Message
		}
	}
	return ""
}

// TestNodeVMRequiredWithoutNodeVMs: a replica that must run in a node VM on a host
// without node VMs never runs on the host's kernel; the status says why and what to do.
func TestNodeVMRequiredWithoutNodeVMs(t *testing.T) {
	e := newEnv(t)
	e.c = e.nodeVMController(false, true, nil)
	e.applyPlaced(workload("acme", "1", sleepForever, "Always"), v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("shop", "1", sleepForever, "Always"), v1alpha1.TierContainer, onHost)
	e.reconcile("acme")
	e.reconcile("shop")
	if got := e.byDriver(); got != "fake:shop-0" {
		t.Fatalf("instances %s, want shop's alone", got)
	}
	st := e.status("acme")
	ready := st.Conditions[0]
	if st.Phase != v1alpha1.PhaseFailed || ready.Reason != "NoNodeVMs" {
		t.Fatalf("acme: phase %s, ready %+v; want Failed, NoNodeVMs", st.Phase, ready)
	}
	for _, want := range []string{"node VMs of class acme/internal/internal (policy: tenancy multi)", "--node-vms=off", "placement.nodeVM: never"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("acme's message %q lacks %q", ready.Message, want)
		}
	}
	e.reconcile("acme") // the event is recorded once, not on every reconcile
	if n := strings.Count(e.rec.reasons(), "NoNodeVMs"); n != 1 {
		t.Errorf("%d NoNodeVMs events, want 1: %s", n, e.rec.reasons())
	}
}

// TestNodeVMNoNetwork: a node VM driver that cannot attach replicas to segments runs a
// replica that needs none beyond loopback (default segment, no ports) without attaching
// it, and refuses one on a named segment or with ports, saying so.
func TestNodeVMNoNetwork(t *testing.T) {
	e := newEnv(t)
	net := &recordingNetwork{attached: map[string]bool{}}
	e.c = e.nodeVMController(true, false, net)
	e.applyPlaced(workload("acme", "1", sleepForever, "Always"), v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("api", "1", sleepForever, "Always")+"  segment: backend\n", v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("web", "1", sleepForever, "Always")+"  ports: [{port: 8080}]\n", v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("shop", "1", sleepForever, "Always")+"  segment: backend\n", v1alpha1.TierContainer, onHost)
	for _, n := range []string{"acme", "api", "web", "shop"} {
		e.reconcile(n)
	}
	if got, want := e.byDriver(), "fake:shop-0 nodevm:acme-0[acme/internal/internal]"; got != want {
		t.Fatalf("instances %s, want %s", got, want)
	}
	if got := strings.Join(net.left(), " "); got != "shop-0" {
		t.Errorf("attached %q, want shop-0 alone (a node VM replica gets no attachment)", got)
	}
	if msg := eventMessage(e.rec, "acme-0", "Started"); !strings.Contains(msg, "loopback only") {
		t.Errorf("acme-0's Started event %q does not say it has loopback only", msg)
	}
	for n, want := range map[string]string{"api": "segment backend", "web": "segment default and its published ports"} {
		st := e.status(n)
		ready := st.Conditions[0]
		if st.Phase != v1alpha1.PhaseFailed || ready.Reason != "NodeVMNoNetwork" || !strings.Contains(ready.Message, want) ||
			!strings.Contains(ready.Message, "placement.nodeVM: never") {
			t.Errorf("%s: phase %s, ready %+v; want Failed, NodeVMNoNetwork naming %q and what to do", n, st.Phase, ready, want)
		}
	}
}

// tapDriver is a node VM driver like the nodevm driver with taps: it takes a tap for a
// container (Capabilities.VMNet) and no network namespace, and keeps the specs it got.
type tapDriver struct {
	*fake.Driver
	mu    sync.Mutex
	specs map[string]runtime.InstanceSpec
}

func (d *tapDriver) Capabilities() runtime.Capabilities {
	c := d.Driver.Capabilities()
	c.NetNS, c.VMNet = false, true
	return c
}

func (d *tapDriver) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Status, error) {
	d.mu.Lock()
	d.specs[spec.ID] = spec
	d.mu.Unlock()
	return d.Driver.Start(ctx, spec)
}

func (d *tapDriver) spec(id string) runtime.InstanceSpec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.specs[id]
}

// tapNetwork is a recordingNetwork that also records which attachments were taps, and
// gives those a VMNet as the daemon's network does.
type tapNetwork struct {
	recordingNetwork
	taps   map[string]bool
	resolv string // the resolv.conf of a network namespace's attachment
}

func (n *tapNetwork) Attach(ctx context.Context, seg, id string, vm bool) (netstate.Attachment, error) {
	a, err := n.recordingNetwork.Attach(ctx, seg, id, vm)
	if err != nil {
		return a, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.taps[id] = vm
	if vm {
		a.VMNet = &runtime.VMNet{Address: netip.PrefixFrom(a.IP, 24), Gateway: netip.MustParseAddr("10.213.0.1"), MAC: net.HardwareAddr{2, 0, 10, 213, 0, 9}}
	} else {
		a.NetNS, a.ResolvConf = "/run/strata-test/netns/"+id, n.resolv
	}
	return a, nil
}

// TestNodeVMNetwork: a node VM driver that takes taps (Capabilities.VMNet) runs every
// replica in node VMs, also those on a named segment or with published ports: each is
// attached with a tap, as a VM is, and started with it (VMNet, no network namespace, no
// resolv.conf mount: the guest writes its own); a replica on the host's kernel still
// joins a network namespace. A restarted replica keeps its attachment and gets its tap
// again; a deleted one is detached.
func TestNodeVMNetwork(t *testing.T) {
	e := newEnv(t)
	nw := &tapNetwork{recordingNetwork: recordingNetwork{attached: map[string]bool{}}, taps: map[string]bool{}, resolv: filepath.Join(t.TempDir(), "resolv.conf")}
	if err := os.WriteFile(nw.resolv, []byte("nameserver 10.213.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var td *tapDriver
	e.c = e.nodeVMControllerWith(func(nd *fake.Driver) runtime.Driver {
		td = &tapDriver{Driver: nd, specs: map[string]runtime.InstanceSpec{}}
		return td
	}, nw)
	e.applyPlaced(workload("api", "1", sleepForever, "Always")+"  segment: backend\n", v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("web", "1", sleepForever, "Always")+"  ports: [{port: 8080}]\n", v1alpha1.TierContainer, inNodeVMs)
	e.applyPlaced(workload("shop", "1", sleepForever, "Always")+"  segment: backend\n", v1alpha1.TierContainer, onHost)
	for _, n := range []string{"api", "web", "shop"} {
		e.reconcile(n)
	}
	if got, want := e.byDriver(), "fake:shop-0 nodevm:api-0[acme/internal/internal] nodevm:web-0[acme/internal/internal]"; got != want {
		t.Fatalf("instances %s, want %s", got, want)
	}
	for _, n := range []string{"api", "web"} {
		if st := e.status(n); st.Phase == v1alpha1.PhaseFailed || len(st.Instances) != 1 || st.Instances[0].IP != "10.213.0.9" {
			t.Errorf("%s: phase %s, instances %+v; want it running with its address", n, st.Phase, st.Instances)
		}
	}
	nw.mu.Lock()
	taps := maps.Clone(nw.taps)
	nw.mu.Unlock()
	if want := map[string]bool{"api-0": true, "web-0": true, "shop-0": false}; !maps.Equal(taps, want) {
		t.Errorf("attached as taps: %v, want %v", taps, want)
	}
	spec := td.spec("api-0")
	if spec.VMNet == nil || spec.VMNet.Address.String() != "10.213.0.9/24" || spec.NetNS != "" || len(spec.Mounts) != 0 {
		t.Errorf("api-0's spec: vmNet %+v, netNS %q, mounts %+v; want the tap's network alone", spec.VMNet, spec.NetNS, spec.Mounts)
	}
	if msg := eventMessage(e.rec, "api-0", "Started"); !strings.Contains(msg, "on segment backend at 10.213.0.9") || strings.Contains(msg, "loopback only") {
		t.Errorf("api-0's Started event %q does not say where on its segment it is", msg)
	}

	// The replica ends and restarts: the same attachment, its tap again.
	if err := td.Stop(context.Background(), "api-0", 0); err != nil {
		t.Fatal(err)
	}
	td.mu.Lock()
	delete(td.specs, "api-0")
	td.mu.Unlock()
	e.clock.Advance(time.Minute)
	e.reconcile("api")
	if spec := td.spec("api-0"); spec.VMNet == nil || spec.VMNet.MAC.String() != "02:00:0a:d5:00:09" {
		t.Errorf("restarted api-0's spec: vmNet %+v; want its tap again", spec.VMNet)
	}
	if !slices.Contains(nw.left(), "api-0") {
		t.Errorf("attached %q after the restart; want api-0 still attached", nw.left())
	}
}
