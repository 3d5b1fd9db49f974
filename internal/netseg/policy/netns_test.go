package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/testenv"
)

// newNetNS creates a network namespace for the test and closes it when the
// test ends. It is held only by the returned handle (and whatever sockets
// and interfaces the test makes in it), so it vanishes once they are gone:
// nothing is mounted, nothing is named. The test skips when the machine
// cannot do this.
func newNetNS(t testing.TB) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root: the test creates network namespaces and nftables tables")
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the new namespace
		ns, err := netns.New()
		c <- result{ns, err}
	}()
	r := <-c
	if r.err != nil {
		testenv.Skipf(t, "kernel cannot create a network namespace here: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	return r.ns
}

// inNS runs f on a fresh OS thread inside ns; the thread ends with f.
func inNS(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// conn is an nftables connection into ns, made as the daemon should make
// it (with LargeBatches, plus opts). It skips the test when the kernel has
// no nf_tables.
func conn(t testing.TB, ns netns.NsHandle, opts ...nftables.ConnOption) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(append([]nftables.ConnOption{nftables.WithNetNSFd(int(ns)), LargeBatches()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTables(); err != nil {
		testenv.Skipf(t, "kernel has no nf_tables here: %v", err)
	}
	return c
}

// nft runs the nft command inside ns and returns its standard output.
func nft(t testing.TB, ns netns.NsHandle, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("nft")
	if err != nil {
		testenv.Skipf(t, "needs the nft command (Debian package nftables) to list rulesets")
	}
	fd, err := unix.Dup(int(ns))
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "netns")
	defer f.Close()
	cmd := exec.Command("nsenter", append([]string{"--net=/proc/self/fd/3", path}, args...)...)
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nft %v: %v: %s", args, err, stderr.Bytes())
	}
	return out
}

// listing is `nft -j list table inet strata` inside ns, without handles
// (which change with every Apply), as JSON text.
func listing(t testing.TB, ns netns.NsHandle) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(nft(t, ns, "-j", "list", "table", "inet", Table), &v); err != nil {
		t.Fatalf("nft -j output: %v", err)
	}
	v = withoutHandles(v)
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutHandles drops "handle" fields and nft's "metainfo" object.
func withoutHandles(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "handle")
		delete(v, "metainfo")
		for k, x := range v {
			v[k] = withoutHandles(x)
		}
	case []any:
		out := v[:0]
		for _, x := range v {
			if m, ok := x.(map[string]any); ok && len(m) == 1 && m["metainfo"] != nil {
				continue
			}
			out = append(out, withoutHandles(x))
		}
		return out
	}
	return v
}

// tables lists "family name" of every table in ns.
func tables(t testing.TB, c *nftables.Conn) []string {
	t.Helper()
	ts, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tt := range ts {
		out = append(out, fmt.Sprintf("%s %s", familyName[tt.Family], tt.Name))
	}
	slices.Sort(out)
	return out
}

var familyName = map[nftables.TableFamily]string{
	nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6",
	nftables.TableFamilyARP: "arp", nftables.TableFamilyBridge: "bridge", nftables.TableFamilyNetdev: "netdev",
}

// mustApply compiles p and applies it.
func mustApply(t testing.TB, c *nftables.Conn, p Policy) *Ruleset {
	t.Helper()
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(c); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkCurrent checks that the kernel holds r: same Digest, same counts.
func checkCurrent(t testing.TB, c *nftables.Conn, r *Ruleset) *Ruleset {
	t.Helper()
	cur, err := Current(c)
	if err != nil {
		t.Fatal(err)
	}
	if cur == nil {
		t.Fatalf("table inet %s is missing", Table)
	}
	if cur.Digest() != r.Digest() {
		t.Errorf("kernel holds ruleset %s, want %s", cur.Digest(), r.Digest())
	}
	if got, want := cur.Summary().String(), r.Summary().String(); got != want {
		t.Errorf("kernel holds\n  %s\nwant\n  %s", got, want)
	}
	return cur
}

// otherPolicy differs from samplePolicy in every set: other segments,
// other flows, no egress, another published port.
func otherPolicy() Policy {
	return Policy{
		Segments: []Segment{
			{Name: "red", Bridge: "st-red", Subnet: netip.MustParsePrefix("10.213.7.0/24"), Gateway: netip.MustParseAddr("10.213.7.1"),
				Allow: []Allow{{From: "blue", Ports: []Port{{443, "tcp"}, {53, "udp"}}}}},
			{Name: "blue", Bridge: "st-blue", Subnet: netip.MustParsePrefix("10.213.8.0/24"), Gateway: netip.MustParseAddr("10.213.8.1")},
		},
		Publish: []Publish{{HostPort: 9443, Protocol: "tcp", Segment: "red", Targets: []netip.AddrPort{netip.MustParseAddrPort("10.213.7.5:443")}}},
	}
}

func TestApplyTwiceIsOneTable(t *testing.T) {
	ns := newNetNS(t)
	c := conn(t, ns)
	r := mustApply(t, c, samplePolicy())
	first := listing(t, ns)
	if err := r.Apply(c); err != nil {
		t.Fatal(err)
	}
	if got, want := tables(t, c), []string{"inet strata"}; !slices.Equal(got, want) {
		t.Errorf("tables %v, want %v", got, want)
	}
	if second := listing(t, ns); second != first {
		t.Errorf("second Apply changed the table:\n%s\nwant\n%s", second, first)
	}
	checkCurrent(t, c, r)
}

func TestApplyReplacesEverything(t *testing.T) {
	ns := newNetNS(t)
	c := conn(t, ns)
	mustApply(t, c, samplePolicy())
	r := mustApply(t, c, otherPolicy())
	replaced := listing(t, ns)
	checkCurrent(t, c, r)
	for _, gone := range []string{"st-web", "publish_tcp_8080", "10.213.1.0"} {
		if strings.Contains(replaced, gone) {
			t.Errorf("%q of the first policy is still in the table:\n%s", gone, replaced)
		}
	}
	// The same as applying the second policy to a table-less namespace.
	if err := Remove(c); err != nil {
		t.Fatal(err)
	}
	mustApply(t, c, otherPolicy())
	if fresh := listing(t, ns); fresh != replaced {
		t.Errorf("replaced table:\n%s\nwant, as applied from scratch:\n%s", replaced, fresh)
	}
}

// TestFailedApplyKeepsPrevious makes the kernel refuse a batch in its last
// message (a rule that looks up a set that does not exist): everything
// before it, the deletion of the table included, is undone.
func TestFailedApplyKeepsPrevious(t *testing.T) {
	ns := newNetNS(t)
	c := conn(t, ns)
	old := mustApply(t, c, samplePolicy())
	before := listing(t, ns)
	bad, err := Compile(otherPolicy())
	if err != nil {
		t.Fatal(err)
	}
	post := bad.chain(chainPostrouting)
	post.add("broken", one(loadIfname(expr.MetaKeyOIFNAME, 0), &expr.Lookup{SourceRegister: reg(0), SetName: "missing", SetID: 999}, accept()))
	err = bad.Apply(c)
	if err == nil {
		t.Fatal("Apply of a ruleset with a rule on a missing set succeeded")
	}
	t.Logf("Apply: %v", err)
	if after := listing(t, ns); after != before {
		t.Errorf("failed Apply changed the table:\n%s\nwant\n%s", after, before)
	}
	checkCurrent(t, c, old)
	// The connection is usable again.
	mustApply(t, c, otherPolicy())
}

func TestRemoveTouchesNothingElse(t *testing.T) {
	ns := newNetNS(t)
	c := conn(t, ns)
	// Tables strata does not own: another inet table, and a table named
	// strata of another family.
	policy := nftables.ChainPolicyAccept
	for _, tt := range []*nftables.Table{
		{Name: "other", Family: nftables.TableFamilyINet},
		{Name: Table, Family: nftables.TableFamilyIPv4},
	} {
		c.AddTable(tt)
		ch := c.AddChain(&nftables.Chain{Name: "forward", Table: tt, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
		c.AddRule(&nftables.Rule{Table: tt, Chain: ch, Exprs: []expr.Any{&expr.Counter{}}})
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	othersBefore := string(nft(t, ns, "-j", "list", "table", "inet", "other")) + string(nft(t, ns, "-j", "list", "table", "ip", Table))
	mustApply(t, c, samplePolicy())
	if got, want := tables(t, c), []string{"inet other", "inet strata", "ip strata"}; !slices.Equal(got, want) {
		t.Errorf("tables after Apply %v, want %v", got, want)
	}
	for range 2 { // the second Remove finds nothing to remove
		if err := Remove(c); err != nil {
			t.Fatal(err)
		}
		if got, want := tables(t, c), []string{"inet other", "ip strata"}; !slices.Equal(got, want) {
			t.Errorf("tables after Remove %v, want %v", got, want)
		}
	}
	othersAfter := string(nft(t, ns, "-j", "list", "table", "inet", "other")) + string(nft(t, ns, "-j", "list", "table", "ip", Table))
	if othersAfter != othersBefore {
		t.Errorf("other tables changed:\n%s\nwant\n%s", othersAfter, othersBefore)
	}
	if cur, err := Current(c); err != nil || cur != nil {
		t.Errorf("Current after Remove: %v, %v; want nothing", cur, err)
	}
}

// TestKernelRoundTrip applies random policies, reads them back, and runs
// the evaluator on what the kernel holds: its verdicts must be the
// model's too.
func TestKernelRoundTrip(t *testing.T) {
	ns := newNetNS(t)
	c := conn(t, ns)
	rng := rand.New(rand.NewPCG(seed(t), 3))
	seen := make(map[string]int)
	for range 20 {
		p := randPolicy(rng)
		r := mustApply(t, c, p)
		cur := checkCurrent(t, c, r)
		checkRuleset(t, cur, p, rng, 500, seen)
		if t.Failed() {
			return
		}
	}
	checkCoverage(t, seen)
}
