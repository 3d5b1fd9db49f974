package policy

import (
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the random policies and packets (0: a new one, logged)")

// seed returns the seed of a random test and logs it, so a failure can be
// replayed with -seed.
func seed(t testing.TB) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", s, s)
	return s
}

// cases the property test must meet at least once each, so that it cannot
// pass by never reaching a part of the policy.
var wantCases = []string{
	"forward: reply", "forward: same segment", "forward: invalid", "forward: published port",
	"forward: allowed, every port", "forward: allowed port", "forward: port not allowed",
	"forward: pair not allowed", "forward: egress", "forward: egress denied",
	"forward: other strata interface", "forward: not strata's",
	"input: reply", "input: DNS", "input: from a segment", "input: not strata's",
	"prerouting: published port", "prerouting: not published", "prerouting: not to the host",
	"output: published port", "output: published port on loopback", "output: not published",
	"postrouting: egress", "postrouting: published port from its own segment", "postrouting: no translation",
}

// TestCompiledRulesMeanThePolicy runs random packets through the compiled
// rules of random policies and holds every verdict against the model.
func TestCompiledRulesMeanThePolicy(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 1))
	const policies, packets = 300, 300
	seen := make(map[string]int)
	for range policies {
		p := randPolicy(rng)
		checkPolicy(t, p, rng, packets, seen)
		if t.Failed() {
			return
		}
	}
	checkCoverage(t, seen)
}

// checkCoverage fails the test if a case of wantCases was never met.
func checkCoverage(t *testing.T, seen map[string]int) {
	t.Helper()
	total := 0
	for _, n := range seen {
		total += n
	}
	for _, c := range wantCases {
		if seen[c] == 0 {
			t.Errorf("no packet met case %q", c)
		}
	}
	t.Logf("%d packets: %v", total, seen)
}

// checkPolicy compiles p and checks n random packets against the model,
// counting the cases met in seen.
func checkPolicy(t *testing.T, p Policy, rng *rand.Rand, n int, seen map[string]int) {
	t.Helper()
	r, err := Compile(p)
	if err != nil {
		t.Fatalf("compile %+v: %v", p, err)
	}
	checkRuleset(t, r, p, rng, n, seen)
}

func checkRuleset(t *testing.T, r *Ruleset, p Policy, rng *rand.Rand, n int, seen map[string]int) {
	t.Helper()
	ev, err := newEvaluator(r)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(p)
	for range n {
		pk := randPacket(rng, p)
		got, err := ev.run(pk)
		if err != nil {
			t.Fatalf("evaluate %s: %v", pk, err)
		}
		w := m.decide(pk)
		seen[w.why]++
		if !w.matches(got) {
			t.Errorf("packet %s\n  rules: %s (rule %q)\n  model: %s\n  policy: %+v", pk, got, got.rule, w, p)
			return
		}
	}
}

// TestPublishRoundRobin checks that successive new connections to a
// published port reach every target in turn, from outside and from the
// host itself.
func TestPublishRoundRobin(t *testing.T) {
	p := samplePolicy()
	p.Publish = append(p.Publish, Publish{HostPort: 53, Protocol: "udp", Segment: "db", Targets: []netip.AddrPort{
		netip.MustParseAddrPort("10.213.3.9:5353"), netip.MustParseAddrPort("10.213.3.7:5353"), netip.MustParseAddrPort("10.213.3.8:53"),
	}})
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := newEvaluator(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, pub := range p.Publish {
		for _, hook := range []string{"prerouting", "output"} {
			pk := packet{saddr: outside, daddr: hostAddr, proto: protocols[pub.Protocol], dport: pub.HostPort, local: true}
			if hook == "prerouting" {
				pk.hook, pk.iif = hookPrerouting, "eth0"
			} else {
				pk.hook, pk.oif = hookOutput, "lo"
			}
			var got []netip.AddrPort
			for range 2 * len(pub.Targets) {
				o, err := ev.run(pk)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, o.dnat)
			}
			first := slices.Clone(got[:len(pub.Targets)])
			slices.SortFunc(first, netip.AddrPort.Compare)
			want := slices.Clone(pub.Targets)
			slices.SortFunc(want, netip.AddrPort.Compare)
			if !slices.Equal(first, want) || !slices.Equal(got[:len(pub.Targets)], got[len(pub.Targets):]) {
				t.Errorf("%s %s/%d: connections went to %v, want each of %v in turn", hook, pub.Protocol, pub.HostPort, got, pub.Targets)
			}
		}
	}
}

// TestNoTargetsNoDNAT: a published port without running instances is not
// translated, nor is one for a segment that does not exist (yet).
func TestNoTargetsNoDNAT(t *testing.T) {
	for name, edit := range map[string]func(*Publish){
		"no targets":      func(p *Publish) { p.Targets = nil },
		"unknown segment": func(p *Publish) { p.Segment = "later" },
	} {
		p := samplePolicy()
		edit(&p.Publish[0])
		r, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Summary().Chains; got[chainPrerouting] != 0 || got[chainOutput] != 0 {
			t.Errorf("%s: chains %v, want no DNAT rule", name, got)
		}
		if _, ok := r.Summary().Sets["publish_tcp_8080"]; ok {
			t.Errorf("%s: sets %v, want no map for the port", name, r.Summary().Sets)
		}
	}
}

// TestDigest: the Digest does not depend on the order of the policy's
// lists, and changes with any change of meaning.
func TestDigest(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 2))
	for range 50 {
		p := randPolicy(rng)
		a, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		q := shuffled(rng, p)
		b, err := Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		if a.Digest() != b.Digest() {
			t.Fatalf("digest changed with the order of the policy's lists:\n%+v\n%+v", p, q)
		}
		q.Segments[0].Egress = !q.Segments[0].Egress
		c, err := Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		if a.Digest() == c.Digest() {
			t.Fatalf("digest did not change with segment %s's egress", q.Segments[0].Name)
		}
	}
}

// shuffled is p with every list in another order.
func shuffled(rng *rand.Rand, p Policy) Policy {
	q := p
	q.Segments = slices.Clone(p.Segments)
	for i := range q.Segments {
		q.Segments[i].Allow = slices.Clone(q.Segments[i].Allow)
		rng.Shuffle(len(q.Segments[i].Allow), func(a, b int) {
			q.Segments[i].Allow[a], q.Segments[i].Allow[b] = q.Segments[i].Allow[b], q.Segments[i].Allow[a]
		})
	}
	rng.Shuffle(len(q.Segments), func(a, b int) { q.Segments[a], q.Segments[b] = q.Segments[b], q.Segments[a] })
	q.Publish = slices.Clone(p.Publish)
	for i := range q.Publish {
		q.Publish[i].Targets = slices.Clone(q.Publish[i].Targets)
		rng.Shuffle(len(q.Publish[i].Targets), func(a, b int) {
			q.Publish[i].Targets[a], q.Publish[i].Targets[b] = q.Publish[i].Targets[b], q.Publish[i].Targets[a]
		})
	}
	rng.Shuffle(len(q.Publish), func(a, b int) { q.Publish[a], q.Publish[b] = q.Publish[b], q.Publish[a] })
	return q
}

// TestUnknownFromAdmitsNothing: an allow from a segment that does not
// exist compiles, admits nothing, and starts admitting once the segment
// exists.
func TestUnknownFromAdmitsNothing(t *testing.T) {
	p := samplePolicy() // db allows "later"
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	pk := packet{hook: hookForward, iif: "st-later", oif: "st-db", saddr: netip.MustParseAddr("10.213.4.2"),
		daddr: netip.MustParseAddr("10.213.3.2"), proto: 6, dport: 5432}
	ev, _ := newEvaluator(r)
	if o, err := ev.run(pk); err != nil || !o.drop {
		t.Errorf("before segment later exists: %v %v, want drop", o, err)
	}
	p.Segments = append(p.Segments, Segment{Name: "later", Bridge: "st-later",
		Subnet: netip.MustParsePrefix("10.213.4.0/24"), Gateway: netip.MustParseAddr("10.213.4.1")})
	if r, err = Compile(p); err != nil {
		t.Fatal(err)
	}
	ev, _ = newEvaluator(r)
	if o, err := ev.run(pk); err != nil || o.drop {
		t.Errorf("once segment later exists: %v %v, want accept", o, err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Policy)
		want string // in the error
	}{
		{"duplicate host port", func(p *Policy) {
			p.Publish = append(p.Publish, Publish{HostPort: 8080, Protocol: "tcp", Segment: "app"})
		}, "publish[1] (tcp/8080): host port already published by publish[0]"},
		{"same port other protocol is fine", func(p *Policy) {
			p.Publish = append(p.Publish, Publish{HostPort: 8080, Protocol: "udp", Segment: "app"})
		}, ""},
		{"publish to unknown segment is fine", func(p *Policy) { p.Publish[0].Segment = "nope" }, ""},
		{"publish to unknown segment still conflicts", func(p *Policy) {
			p.Publish = append(p.Publish, Publish{HostPort: 8080, Protocol: "tcp", Segment: "nope"})
		}, "host port already published by publish[0]"},
		{"target outside subnet", func(p *Policy) {
			p.Publish[0].Targets[1] = netip.MustParseAddrPort("10.213.2.3:7007")
		}, `publish[0] (tcp/8080): targets[1]: 10.213.2.3:7007 is outside segment "web"'s subnet 10.213.1.0/24`},
		{"target without port", func(p *Policy) {
			p.Publish[0].Targets[0] = netip.MustParseAddrPort("10.213.1.2:0")
		}, "targets[0]: 10.213.1.2:0 is not an IPv4 address and a port"},
		{"duplicate target", func(p *Policy) { p.Publish[0].Targets[1] = p.Publish[0].Targets[0] },
			"targets[1]: 10.213.1.2:7007 is listed twice"},
		{"publish protocol", func(p *Policy) { p.Publish[0].Protocol = "sctp" },
			`publish[0] (sctp/8080): protocol "sctp" is not "tcp" or "udp"`},
		{"publish port 0", func(p *Policy) { p.Publish[0].HostPort = 0 }, "port 0 is not a port"},
		{"duplicate segment", func(p *Policy) { p.Segments[2].Name = "web" },
			`segments[2] ("web"): name already used by segments[0]`},
		{"duplicate bridge", func(p *Policy) { p.Segments[2].Bridge = "st-app" },
			`segments[2] ("db"): bridge "st-app" already used by segments[1]`},
		{"bad name", func(p *Policy) { p.Segments[1].Name = "App" }, `segments[1] ("App"): segment name is not a DNS label`},
		{"bridge without prefix", func(p *Policy) { p.Segments[1].Bridge = "br-app" },
			`segments[1] ("app"): bridge "br-app" does not start with the interface prefix "st-"`},
		{"bridge is only the prefix", func(p *Policy) { p.Segments[1].Bridge = "st-" }, "does not start with the interface prefix"},
		{"bridge too long", func(p *Policy) { p.Segments[1].Bridge = "st-abcdefghijklm" }, "longer than the 15 characters"},
		{"other prefix", func(p *Policy) {
			p.Prefix = "sx"
			for i := range p.Segments {
				p.Segments[i].Bridge = "sx" + p.Segments[i].Name
			}
		}, ""},
		{"IPv6 subnet", func(p *Policy) { p.Segments[0].Subnet = netip.MustParsePrefix("fd00::/64") },
			"subnet fd00::/64 is not an IPv4 prefix"},
		{"gateway outside", func(p *Policy) { p.Segments[0].Gateway = netip.MustParseAddr("10.213.9.1") },
			"gateway 10.213.9.1 is not an IPv4 address in subnet 10.213.1.0/24"},
		{"allow port protocol", func(p *Policy) { p.Segments[1].Allow[0].Ports[0].Protocol = "TCP" },
			`segments[1] ("app"): allow[0] (from "web"): ports[0]: protocol "TCP" is not "tcp" or "udp"`},
		{"allow port 0", func(p *Policy) { p.Segments[1].Allow[0].Ports[0].Port = 0 }, "ports[0]: port 0 is not a port"},
		{"allow without from", func(p *Policy) { p.Segments[1].Allow[0].From = "" }, "allow[0]: from names no segment"},
		{"unknown from is fine", func(p *Policy) { p.Segments[1].Allow[0].From = "nope" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePolicy()
			tt.edit(&p)
			_, err := Compile(p)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Compile: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Compile succeeded, want an error with %q", tt.want)
			case !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Compile: %v, want ErrInvalid with %q", err, tt.want)
			}
		})
	}
}
