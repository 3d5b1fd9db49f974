package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/testimage"
)

// segmentApps are three segments and their workloads: web may reach payments on 8080 only;
// reporting is reachable by nobody; payments and reporting may not leave the host. Every
// server listens on 8080 and 9090, so a blocked port is told from a closed one.
const segmentApps = `apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: web}
spec: {egress: allow}
---
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: payments}
spec:
  egress: deny
  allow:
  - from: {segment: web}
    ports: [{port: 8080, protocol: tcp}]
---
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: reporting}
spec: {egress: deny}
---
` + segServer + `metadata: {name: shop}
spec:
  segment: web
` + segCommand + `---
` + segServer + `metadata: {name: ledger}
spec:
  segment: payments
  isolation: vm
  resources: {memory: 192Mi}
` + segCommand + `---
` + segServer + `metadata: {name: api}
spec:
  segment: payments
  ports: [{name: http, port: 8080, publish: 18080}]
` + segCommand + `---
` + segServer + `metadata: {name: books}
spec:
  segment: reporting
` + segCommand

const segServer = "apiVersion: strata.dev/v1alpha1\nkind: Workload\n"

const segCommand = `  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo $HOSTNAME > /www/index.html; httpd -f -p 8080 -h /www & httpd -f -p 9090 -h /www & wait"]
`

// outside is a network namespace beyond the host's segments, joined to the test's host
// namespace by a veth pair: a client of published ports and a server for egress.
const (
	outsideHostIP   = "172.31.255.1"
	outsideClientIP = "172.31.255.2"
)

// TestDaemonSegments checks the reachability matrix of three segments with containers and a
// VM, by name; a published port from outside the host; egress allowed and denied; that a
// crash and restart of the daemon leave the same rules and no duplicates; and that deleting
// everything leaves no bridge, veth, tap or rule of strata's.
func TestDaemonSegments(t *testing.T) { testSegments(t, false) }

// TestDaemonSegmentsNodeVMs runs TestDaemonSegments with the containers in node VMs: two
// tenants' classes (shop and books of acme, api of globex), each replica on its tap with
// its address, the same matrix, the same rules across a crash, a move to another segment
// and nothing left after the delete.
func TestDaemonSegmentsNodeVMs(t *testing.T) { testSegments(t, true) }

// inNodeVMs puts the container workloads of segmentApps into node VMs of two tenants.
func inNodeVMs(apps string) string {
	for name, tenant := range map[string]string{"shop": "acme", "books": "acme", "api": "globex"} {
		apps = strings.Replace(apps, "metadata: {name: "+name+"}\nspec:\n",
			"metadata: {name: "+name+", labels: {strata.dev/tenant: "+tenant+"}}\nspec:\n  placement: {nodeVM: required}\n", 1)
	}
	return apps
}

func testSegments(t *testing.T, nodeVMs bool) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	e.extraArgs = []string{"--guest-kernel-dir", kdir}
	outside := e.netns + "-out"
	if out, err := run("ip", "netns", "add", outside); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	t.Cleanup(func() { _, _ = run("ip", "netns", "del", outside) })
	for _, args := range [][]string{
		{"ip", "-n", e.netns, "link", "add", "ext0", "type", "veth", "peer", "name", "ext1", "netns", outside},
		{"ip", "-n", e.netns, "addr", "add", outsideHostIP + "/30", "dev", "ext0"},
		{"ip", "-n", e.netns, "link", "set", "ext0", "up"},
		{"ip", "-n", outside, "addr", "add", outsideClientIP + "/30", "dev", "ext1"},
		{"ip", "-n", outside, "link", "set", "ext1", "up"},
		{"ip", "-n", outside, "link", "set", "lo", "up"},
	} {
		if out, err := run(args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	// A server outside the host, for the egress checks.
	www := filepath.Join(e.dir, "outside-www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("nsenter", "--net=/run/netns/"+outside, "/bin/busybox", "httpd", "-f", "-p", "8000", "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })

	began := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	apps := segmentApps
	runFor := 180 * time.Second
	if nodeVMs {
		// Two node VMs and a VM boot under TCG on a shared machine: allow minutes.
		apps, runFor = inNodeVMs(apps), 6*time.Minute
	} else if _, err := os.Stat("/opt/strata/bin/runsc"); err == nil {
		// books runs in a gVisor sandbox, so that every tier is on a segment.
		apps = strings.Replace(apps, "  segment: reporting\n", "  segment: reporting\n  traits: {trust: untrusted}\n", 1)
	} else {
		t.Log("runsc not installed at /opt/strata/bin/runsc: no sandbox in the matrix (make host-setup builds it)")
	}
	appFile := filepath.Join(e.dir, "segments.yaml")
	if err := os.WriteFile(appFile, []byte(apps), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", appFile)
	e.eventually("every workload runs", runFor, func() error {
		for _, name := range []string{"shop", "ledger", "api", "books"} {
			if _, err := e.running(name, 1); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	if nodeVMs {
		for _, name := range []string{"shop", "api", "books"} {
			if in := e.workload(name).Status.Instances[0]; in.Driver != nodevm.Name {
				t.Errorf("%s runs on driver %q, want %s", name, in.Driver, nodevm.Name)
			}
		}
		if n := e.nodes(); len(n) != 2 {
			t.Errorf("get nodes lists %d node VMs, want 2 (acme's and globex's): %+v", len(n), n)
		}
	}

	phase("running")
	// fetch asks for a page from inside a workload with nc: "ok" when it came, "blocked" when
	// the connection timed out (a dropped packet), "refused" when nothing listens.
	fetch := func(from, hostPort string) string {
		host, port, _ := strings.Cut(hostPort, ":")
		out, err := e.strata("exec", from, "--", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "+host+" "+port)
		switch {
		case err == nil && strings.Contains(out, "200 OK"):
			return "ok"
		case err != nil && strings.Contains(err.Error(), "timed out"):
			return "blocked"
		case err != nil && strings.Contains(err.Error(), "refused"):
			return "refused"
		default:
			return fmt.Sprintf("error (%q, %v)", out, err)
		}
	}
	// Every tier names its segment's server and the segment as the search domain, whether
	// the host writes resolv.conf (a container) or the guest does (a VM, a node VM's replica).
	for name, segment := range map[string]string{"shop": "web", "api": "payments", "ledger": "payments", "books": "reporting"} {
		out, err := e.strata("exec", name, "--", "cat", "/etc/resolv.conf")
		if err != nil || !strings.Contains(out, "\nsearch "+segment+"\n") || !strings.Contains(out, "options ndots:1") {
			t.Errorf("%s's resolv.conf %q (%v): want search %s, options ndots:1", name, out, err, segment)
		}
	}
	// The name server answers once the instances' names are known; wait for the first flow.
	e.eventually("shop reaches ledger.payments by name", 60*time.Second, func() error {
		if got := fetch("shop", "ledger.payments:8080"); got != "ok" {
			return fmt.Errorf("%s", got)
		}
		return nil
	})
	matrix := []struct {
		from, url, want string
	}{
		{"shop", "ledger.payments:8080", "ok"},      // allowed flow, to a VM, by name
		{"shop", "api.payments:8080", "ok"},         // allowed flow, to a container
		{"shop", "ledger.payments:9090", "blocked"}, // allowed segment pair, other port
		{"shop", "books.reporting:8080", "blocked"}, // no flow into reporting
		{"api", "ledger:8080", "ok"},                // same segment, short name
		{"api", "ledger:9090", "ok"},                // same segment, any port
		{"ledger", "api:9090", "ok"},                // same segment, from the VM
		{"ledger", "shop.web:8080", "blocked"},      // no flow from payments into web
		{"books", "api.payments:8080", "blocked"},   // reporting may not reach payments
		{"books", "shop.web:8080", "blocked"},       // nor web
		{"shop", outsideClientIP + ":8000", "ok"},   // web may leave the host
		{"api", outsideClientIP + ":8000", "blocked"},
		{"ledger", outsideClientIP + ":8000", "blocked"},
	}
	phase("first flow")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range matrix {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := fetch(m.from, m.url)
			// An allowed flow may time out once when thirteen probes run at once
			// in emulated node VMs: it is tried again; a blocked one must never answer.
			for try := 1; m.want == "ok" && got == "blocked" && try < 3; try++ {
				got = fetch(m.from, m.url)
			}
			if got != m.want {
				mu.Lock()
				t.Errorf("%s -> %s: %s, want %s", m.from, m.url, got, m.want)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	phase("matrix")
	// The published port, from outside the host.
	e.eventually("api's published port answers from outside", 30*time.Second, func() error {
		out, err := run("nsenter", "--net=/run/netns/"+outside, "/bin/busybox", "wget", "-qO-", "http://"+outsideHostIP+":18080/")
		if err != nil || !strings.HasPrefix(out, "api-0") {
			return fmt.Errorf("%q: %w", out, err)
		}
		return nil
	})

	phase("published")
	// describe and get -o wide explain it.
	if out := e.must("describe", "segment", "payments"); !strings.Contains(out, "web") || !strings.Contains(out, "tcp/8080") || !strings.Contains(out, "tcp/18080 -> api:8080") {
		t.Errorf("describe segment payments:\n%s", out)
	}
	if out := e.must("get", "segments", "-o", "wide"); !strings.Contains(out, "Allowed flows") {
		t.Errorf("get segments -o wide:\n%s", out)
	}
	// A segment with workloads is not deleted.
	if _, err := e.strata("delete", "segment", "payments"); err == nil || !strings.Contains(err.Error(), "api, ledger") {
		t.Errorf("delete of a segment in use: %v", err)
	}

	phase("explained")
	// Crash and restart: the same rules, no duplicate bridge or address.
	before := nftRules(t, e.netns)
	bridges := links(t, e.netns, "bridge")
	e.kill9()
	e.start()
	time.Sleep(3 * time.Second)
	if after := nftRules(t, e.netns); after != before {
		t.Errorf("the rules changed across a crash:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := links(t, e.netns, "bridge"); after != bridges {
		t.Errorf("bridges before the crash %q, after %q", bridges, after)
	}
	if out, _ := run("ip", "-n", e.netns, "-4", "-o", "addr", "show"); strings.Count(out, "inet 10.213.") != 3 {
		t.Errorf("want one address on each of the three bridges:\n%s", out)
	}
	if got := fetch("shop", "ledger.payments:8080"); got != "ok" {
		t.Errorf("after the restart, shop -> ledger: %s", got)
	}

	phase("restarted")

	// Moving a workload to another segment re-attaches its instances there.
	moved := strings.Replace(apps, "  segment: reporting\n", "  segment: web\n", 1)
	if err := os.WriteFile(appFile, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", appFile)
	var web v1alpha1.Segment
	if err := json.Unmarshal([]byte(e.must("get", "segment", "web", "-o", "json")), &web); err != nil || web.Status == nil {
		t.Fatalf("segment web: %v %+v", err, web)
	}
	webNet := netip.MustParsePrefix(web.Status.Subnet)
	e.eventually("books moved to web", max(90*time.Second, runFor/2), func() error {
		w := e.workload("books")
		if _, err := e.running("books", 1); err != nil {
			return err
		}
		if ip, err := netip.ParseAddr(w.Status.Instances[0].IP); err != nil || !webNet.Contains(ip) {
			return fmt.Errorf("books-0 at %s, not on web's subnet %s", w.Status.Instances[0].IP, webNet)
		}
		if got := fetch("shop", "books:8080"); got != "ok" {
			return fmt.Errorf("shop -> books: %s", got)
		}
		return nil
	})
	phase("moved")
	// Delete everything: nothing of strata's stays on the host.
	e.must("delete", "-f", appFile)
	e.eventually("nothing of strata's left", 120*time.Second, func() error {
		for _, kind := range []string{"bridge", "veth", "tun"} {
			if l := links(t, e.netns, kind); strings.Contains(l, "st-") {
				return fmt.Errorf("%s links left: %s", kind, l)
			}
		}
		if r := nftRules(t, e.netns); r != "" {
			return fmt.Errorf("rules left:\n%s", r)
		}
		return nil
	})
	phase("deleted")
	e.stop()
}

// nftRules lists strata's nftables table in the test's namespace, without counters ("" when
// there is none).
func nftRules(t *testing.T, netns string) string {
	t.Helper()
	out, err := run("ip", "netns", "exec", netns, "nft", "--stateless", "list", "table", "inet", "strata")
	if err != nil {
		if strings.Contains(err.Error(), "No such file") {
			return ""
		}
		t.Fatalf("nft list: %v", err)
	}
	return out
}

// links lists the names of the links of a kind in the test's namespace.
func links(t *testing.T, netns, kind string) string {
	t.Helper()
	out, err := run("ip", "-n", netns, "-o", "link", "show", "type", kind)
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return strings.Join(names, " ")
}

// spoofApps put an attacker on segment lan beside a victim and the victim's peer, and a
// workload on another segment whose address the attacker forges. The attacker has NET_RAW
// (a packet socket) and runs the spoof tool (testdata/spoof); the peer records every
// datagram it receives in /tmp/got.
const spoofApps = `apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: lan}
spec: {egress: deny}
---
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: far}
spec: {egress: deny, allow: [{from: {segment: lan}}]}
---
` + segServer + `metadata: {name: victim}
spec:
  segment: lan
  image: localhost/spoof:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
---
` + segServer + `metadata: {name: peer}
spec:
  segment: lan
  image: localhost/spoof:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo peer > /www/index.html; httpd -f -p 8080 -h /www & spoof listen -port 5000 > /tmp/got & wait"]
---
` + segServer + `metadata: {name: spoofer}
spec:
  segment: lan
  image: localhost/spoof:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  isolation: container
  traits: {capabilities: [NET_RAW]}
---
` + segServer + `metadata: {name: faraway}
spec:
  segment: far
  image: localhost/spoof:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
`

// TestDaemonSegmentSpoofing runs an attacker container on a segment: it answers ARP for the
// gateway and for the victim's peer while the victim talks to both, and it sends the peer
// datagrams with the victim's and another segment's source address. The victim keeps the
// true MACs, none of its traffic reaches the attacker, and no forged datagram is delivered;
// the victim's own traffic and the attacker's honest datagram are.
func TestDaemonSegmentSpoofing(t *testing.T) {
	e := newE2E(t)
	spoof := filepath.Join(e.dir, "spoof")
	build := exec.Command("go", "build", "-trimpath", "-o", spoof, "./testdata/spoof")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the spoof tool: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(spoof)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(e.dir, "spoof.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.BuildWithFiles(f, "localhost/spoof:1", map[string][]byte{"bin/spoof": bin}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	e.start()
	e.must("image", "import", filepath.Join(e.dir, "spoof.tar"))

	// What the host uses is not given away: a port the daemon itself listens on, a
	// privileged port, an uplink's subnet.
	for _, args := range [][]string{
		{"ip", "-n", e.netns, "link", "add", "up0", "type", "veth", "peer", "name", "up1"},
		{"ip", "-n", e.netns, "addr", "add", "10.77.0.1/24", "dev", "up0"},
		{"ip", "-n", e.netns, "link", "set", "up0", "up"},
	} {
		mustRun(t, args[0], args[1:]...)
	}
	_, tlsPort, _ := strings.Cut(tlsAddr, ":")
	claims := filepath.Join(e.dir, "claims.yaml")
	for _, tc := range []struct{ doc, want string }{
		{segServer + "metadata: {name: thief}\nspec:\n  image: localhost/spoof:1\n  ports: [{port: 8080, publish: " + tlsPort + "}]\n",
			"spec.ports[0].publish: host port " + tlsPort + "/tcp is in use on the host: strata (pid"},
		{segServer + "metadata: {name: thief}\nspec:\n  image: localhost/spoof:1\n  ports: [{port: 8080, publish: 22}]\n",
			"spec.ports[0].publish: host port 22/tcp is a privileged port (below 1024), where the host's own services listen (publish a host port of 1024 or above, or start the daemon with --allow-privileged-ports)"},
		{"apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: uplink}\nspec: {subnet: 10.77.0.0/16}\n",
			"spec.subnet: subnet 10.77.0.0/16 overlaps the host's route 10.77.0.0/24 dev up0"},
	} {
		if err := os.WriteFile(claims, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := e.strata("apply", "-f", claims); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("apply of\n%s: %v\nwant an error with %q", tc.doc, err, tc.want)
		}
	}
	mustRun(t, "ip", "-n", e.netns, "link", "del", "up0")

	appFile := filepath.Join(e.dir, "spoof.yaml")
	if err := os.WriteFile(appFile, []byte(spoofApps), 0o600); err != nil {
		t.Fatal(err)
	}
	// NET_RAW asks for a VM; the attacker is forced into a container, where it does most harm.
	e.must("apply", "-f", appFile, "--force")
	ips := map[string]string{}
	e.eventually("every workload runs", 120*time.Second, func() error {
		for _, name := range []string{"victim", "peer", "spoofer", "faraway"} {
			if _, err := e.running(name, 1); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			ips[name] = e.workload(name).Status.Instances[0].IP
		}
		return nil
	})
	var lan v1alpha1.Segment
	if err := json.Unmarshal([]byte(e.must("get", "segment", "lan", "-o", "json")), &lan); err != nil || lan.Status == nil {
		t.Fatalf("segment lan: %v %+v", err, lan)
	}
	gw := lan.Status.Gateway
	inside := func(name string, cmd ...string) (string, error) {
		return e.strata(append([]string{"exec", name, "--"}, cmd...)...)
	}
	mustExec := func(name string, cmd ...string) string {
		t.Helper()
		out, err := inside(name, cmd...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The honest path first: the victim reaches its peer by name (through the name server
	// on the gateway), and a datagram of the victim's arrives as from the victim.
	e.eventually("victim reaches peer by name", 60*time.Second, func() error {
		out, err := inside("victim", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 peer 8080")
		if err != nil || !strings.Contains(out, "200 OK") {
			return fmt.Errorf("%q: %w", out, err)
		}
		return nil
	})

	// (a) The attacker answers ARP for the gateway and the peer for 6 s while the victim
	// sends the peer datagrams and asks the name server (on the gateway) for names.
	var wg sync.WaitGroup
	var arpOut string
	var arpErr error
	wg.Go(func() {
		arpOut, arpErr = inside("spoofer", "spoof", "arp", "-claim", gw+","+ips["peer"], "-victim", ips["victim"], "-for", "6s")
	})
	time.Sleep(1500 * time.Millisecond) // past the kernel's 1 s lock time on the victim's entries
	victimOut, victimErr := inside("victim", "sh", "-c",
		"for i in 1 2 3 4; do spoof send -dst "+ips["peer"]+":5000 -msg victim-$i; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 peer 8080 | head -1; sleep 1; done")
	wg.Wait()
	if arpErr != nil {
		t.Fatalf("spoof arp: %v", arpErr)
	}
	if strings.TrimSpace(arpOut) != "stolen 0" {
		t.Errorf("the victim's traffic reached the attacker: %s", arpOut)
	}
	if victimErr != nil || strings.Count(victimOut, "200 OK") != 4 {
		t.Errorf("the victim's requests to peer by name during the attack: %q, %v", victimOut, victimErr)
	}
	// The victim's neighbour table holds the true MACs.
	bridgeMAC := strings.TrimSpace(mustRun(t, "ip", "netns", "exec", e.netns, "cat", "/sys/class/net/"+lan.Status.Bridge+"/address"))
	peerMAC := strings.TrimSpace(mustExec("peer", "cat", "/sys/class/net/eth0/address"))
	spooferMAC := strings.TrimSpace(mustExec("spoofer", "cat", "/sys/class/net/eth0/address"))
	table := mustExec("victim", "cat", "/proc/net/arp")
	for ip, want := range map[string]string{gw: bridgeMAC, ips["peer"]: peerMAC} {
		if got := arpEntry(table, ip); got != want {
			t.Errorf("victim has %s at %q, want %s (the attacker is %s):\n%s", ip, got, want, spooferMAC, table)
		}
	}

	// (b) Forged datagrams to the peer, and the attacker's honest one.
	forged := map[string]string{
		"forged-victim":  ips["victim"],  // a neighbour's address
		"forged-faraway": ips["faraway"], // another segment's instance's address
		"forged-gateway": gw,
		"honest-spoofer": ips["spoofer"],
	}
	for msg, src := range forged {
		mustExec("spoofer", "spoof", "udp", "-src", src, "-dst", ips["peer"]+":5000", "-msg", msg)
	}
	time.Sleep(time.Second)
	got := mustExec("peer", "cat", "/tmp/got")
	for msg, src := range forged {
		delivered := strings.Contains(got, msg)
		if honest := src == ips["spoofer"]; honest && !strings.Contains(got, src+" "+msg) {
			t.Errorf("the attacker's honest datagram was not delivered (the tool does not work):\n%s", got)
		} else if !honest && delivered {
			t.Errorf("a datagram from %s forged by the attacker was delivered:\n%s", src, got)
		}
	}
	if !strings.Contains(got, ips["victim"]+" victim-") {
		t.Errorf("none of the victim's datagrams reached the peer:\n%s", got)
	}

	// Deleting the workloads removes the port bindings with the ports.
	e.must("delete", "-f", appFile)
	e.eventually("no port bindings left", 90*time.Second, func() error {
		out, err := run("ip", "netns", "exec", e.netns, "nft", "list", "tables")
		if err != nil {
			return err
		}
		if strings.Contains(out, "bridge strata") {
			return fmt.Errorf("table bridge strata is still there")
		}
		return nil
	})
	e.stop()
}

// arpEntry is the hardware address /proc/net/arp lists for ip, or "".
func arpEntry(table, ip string) string {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == ip {
			return f[3]
		}
	}
	return ""
}

func mustRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := run(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
