package nodevm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/nstest"
	"strata.dev/strata/internal/netseg/segtest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// segNet is a segment of strata's network manager in a network namespace
// the test created: the host side of the replicas' taps.
type segNet struct {
	m    *netseg.Manager
	seg  netseg.Segment
	ns   netns.NsHandle
	taps map[string]string // instance ID -> its tap's name
}

func newSegNet(t *testing.T) segNet {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: needs root (taps, bridges and network namespaces)")
	}
	n := segtest.New(t, "strata-nvnet", "replicas", netip.MustParsePrefix("10.78.5.0/24"))
	return segNet{m: n.M, seg: n.Seg, ns: n.NS, taps: map[string]string{}}
}

// in runs f in the segment's namespace.
func (n segNet) in(f func() error) error { return netseg.NamespaceHost(n.ns).Do(f) }

// attach makes instance id's tap and returns its place on the segment, as
// the daemon's network gives it to a VM.
func (n segNet) attach(t *testing.T, id string) *runtime.VMNet {
	t.Helper()
	a, err := n.m.AttachTap(t.Context(), n.seg.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	n.taps[id] = a.Tap
	return &runtime.VMNet{Address: netip.PrefixFrom(a.IP, a.Subnet.Bits()), Gateway: a.Gateway, MAC: a.MAC, DNS: []netip.Addr{a.Gateway}, Search: []string{n.seg.Name}}
}

// links lists the names of the interfaces in the segment's namespace.
func (n segNet) links(t *testing.T) []string {
	t.Helper()
	h, err := netlink.NewHandleAt(n.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// get asks http://addr:port/ from the host side of the segment and returns
// the body, or the error.
func (n segNet) get(addr netip.Addr, port uint16) (string, error) {
	var c net.Conn
	if err := n.in(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(addr, port).String(), 3*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !strings.HasPrefix(string(b), "HTTP/1.") || !ok {
		return "", fmt.Errorf("not an HTTP answer: %q", b)
	}
	return body, nil
}

// waitGet asks until the answer holds want, at most timeout.
func (n segNet) waitGet(t *testing.T, addr netip.Addr, port uint16, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		body, err := n.get(addr, port)
		if err == nil && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("http://%s:%d/ from the host side of the segment: %q, %v; want %q within %v", addr, port, body, err, want, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpServe is a replica's command: httpd on port 8080 serving its
// hostname (its instance ID).
var httpServe = []string{"sh", "-c", "busybox mkdir -p /www && busybox hostname > /www/index.html && exec httpd -f -p 8080 -h /www"}

// TestReplicaNetwork: replicas in a node VM are on their segment with the
// addresses the network manager gave them. Two containers in one node VM
// serve HTTP on their own addresses to the host side of the segment and
// reach its gateway, from their own addresses; a replica with NET_ADMIN
// that takes another address is cut off by its tap's port guard; a replica
// removed and started again on its tap gets its NIC back; a sandbox (runsc)
// serves on its address too. Remove unplugs each replica's NIC,
// and detaching leaves no tap behind.
func TestReplicaNetwork(t *testing.T) {
	s := needNodeVMs(t)
	n := newSegNet(t)
	s.removeNodeVMs(t)
	d, err := nodevm.New(t.Context(), nodevm.Config{
		QEMU: s.q, StateDir: s.state, GuestCacheDir: guestCache, Tools: s.tools, Ports: 8, OpenTap: n.m.OpenTap,
		NodeShape: nodevm.Shape{CPUMilli: 2000, MemoryBytes: 1 << 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if !d.Capabilities().VMNet || d.Capabilities().NetNS {
		t.Fatalf("capabilities %+v: want VMNet, not NetNS, with OpenTap", d.Capabilities())
	}
	// The host side: a server on the gateway that answers with the
	// address a connection came from.
	gw := n.seg.Gateway
	nstest.ServeTCP(t, n.in, netip.AddrPortFrom(gw, 9000), nstest.RemoteIP)

	nets := map[string]*runtime.VMNet{}
	start := func(id string, tier v1alpha1.Tier, caps ...string) {
		t.Helper()
		if nets[id] == nil {
			nets[id] = n.attach(t, id)
		}
		spec := runtime.InstanceSpec{
			ID: id, Workload: id, Tier: tier, Image: s.image, Command: httpServe,
			Capabilities: caps, VMNet: nets[id],
		}
		t.Cleanup(func() {
			_ = d.Stop(context.Background(), id, 0)
			_ = d.Remove(context.Background(), id)
		})
		began := time.Now()
		if _, err := d.Start(t.Context(), spec); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Logf("%s (%s) started on %s in %v", id, tier, nets[id].Address, time.Since(began).Round(time.Millisecond))
	}
	sh := func(id, script string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		code, err := d.Exec(t.Context(), id, []string{"sh", "-c", script}, nil, &out, &out)
		if err != nil {
			t.Fatalf("exec in %s: %v", id, err)
		}
		return strings.TrimSpace(out.String()), code
	}
	// fromGateway is the address the host side saw replica id come from.
	fromGateway := func(id string) (string, int) {
		t.Helper()
		return sh(id, fmt.Sprintf("nc -w 5 %s 9000 </dev/null", gw))
	}

	start("web1", v1alpha1.TierContainer)
	start("web2", v1alpha1.TierContainer, "NET_ADMIN")
	vm := nodevm.VMID(nodevm.DefaultClass)
	for _, id := range []string{"web1", "web2"} {
		n.waitGet(t, nets[id].Address.Addr(), 8080, id, time.Minute)
		if out, code := fromGateway(id); code != 0 || out != nets[id].Address.Addr().String() {
			t.Errorf("%s to the gateway's server: %q (exit %d); want it answered, from %s", id, out, code, nets[id].Address.Addr())
		}
		if out, _ := sh(id, "cat /etc/resolv.conf"); !strings.Contains(out, "nameserver "+gw.String()) || !strings.Contains(out, "search "+n.seg.Name+"\n") {
			t.Errorf("%s: resolv.conf %q names no nameserver %s or no search domain %s", id, out, gw, n.seg.Name)
		}
	}
	devs, err := s.q.NodeDevices(vm)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"web1", "web2"} {
		if !slices.ContainsFunc(devs, func(dv qemu.NodeDevice) bool { return dv.ID == nodevm.NICID(id) }) {
			t.Errorf("node VM %s: devices %+v, no NIC %s of %s", vm, devs, nodevm.NICID(id), id)
		}
	}

	// Spoofing: web2 takes another address on its NIC. The port guard on
	// its tap drops what it sends from there; web1 is not affected.
	spoofed := nets["web2"].Address.Addr().Next().Next().Next().Next()
	if out, code := sh("web2", fmt.Sprintf("busybox ip addr flush dev eth0 && busybox ip addr add %s/%d dev eth0 && busybox ip route add default via %s",
		spoofed, nets["web2"].Address.Bits(), gw)); code != 0 {
		t.Fatalf("web2: change its address to %s: exit %d: %s", spoofed, code, out)
	}
	if out, code := fromGateway("web2"); code == 0 && out != "" {
		t.Errorf("web2 reached the gateway's server from the spoofed address %s: %q", spoofed, out)
	}
	if _, err := n.get(spoofed, 8080); err == nil {
		t.Errorf("web2 answered on the spoofed address %s", spoofed)
	}
	n.waitGet(t, nets["web1"].Address.Addr(), 8080, "web1", 30*time.Second)

	// web1 restarts as the controller restarts a replica: removed, and started again
	// on the tap it keeps. Its NIC goes, and comes back.
	if err := d.Stop(t.Context(), "web1", 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(t.Context(), "web1"); err != nil {
		t.Fatal(err)
	}
	if devs, err := s.q.NodeDevices(vm); err != nil || slices.ContainsFunc(devs, func(dv qemu.NodeDevice) bool { return dv.ID == nodevm.NICID("web1") }) {
		t.Errorf("node VM %s after web1's Remove: devices %+v, %v; want no NIC of web1", vm, devs, err)
	}
	start("web1", v1alpha1.TierContainer)
	n.waitGet(t, nets["web1"].Address.Addr(), 8080, "web1", time.Minute)

	// A sandbox: gVisor's network stack takes over its NIC's address.
	if s.tools.Runsc != "" {
		start("sbx", v1alpha1.TierSandbox)
		n.waitGet(t, nets["sbx"].Address.Addr(), 8080, "sbx", 2*time.Minute)
		if out, code := fromGateway("sbx"); code != 0 || out != nets["sbx"].Address.Addr().String() {
			t.Errorf("sbx to the gateway's server: %q (exit %d); want it answered, from %s", out, code, nets["sbx"].Address.Addr())
		}
	} else {
		t.Log("no runsc: the sandbox's part is left out")
	}

	// Remove unplugs each replica's NIC; detaching then removes its tap.
	for id := range nets {
		if err := d.Stop(t.Context(), id, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if err := n.m.Detach(t.Context(), n.seg.Name, id); err != nil {
			t.Fatal(err)
		}
	}
	if devs, err := s.q.NodeDevices(vm); err != nil || slices.ContainsFunc(devs, func(dv qemu.NodeDevice) bool { return strings.HasPrefix(dv.ID, "nic-") }) {
		t.Errorf("node VM %s after Remove: devices %+v, %v; want no NIC", vm, devs, err)
	}
	links := n.links(t)
	for id, tap := range n.taps {
		if slices.Contains(links, tap) {
			t.Errorf("segment namespace after detaching: links %q; %s's tap %s is still there", links, id, tap)
		}
	}
}
