package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/testenv"
)

// The dashboard test opens the real daemon's dashboard in a headless Chromium that runs
// in the test's network namespace, next to the daemon's TLS listener, and checks what a
// user sees: the workloads with their tiers, the segments and the flow between them, and
// a restart that shows up without a reload. It also checks that the page asks nothing of
// any other host, and that the API refuses a request without a token.

const uiApp = `apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: front}
spec: {}
---
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: back}
spec:
  egress: deny
  allow:
  - from: {segment: front}
    ports: [{port: 8080, protocol: tcp}]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: localhost/busybox:1
  segment: front
  command: ["sh", "-c", "trap 'exit 0' TERM; echo web $HOSTNAME up; mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www & wait"]
  resources: {cpu: 100m, memory: 32Mi}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: api}
spec:
  image: localhost/busybox:1
  segment: back
  command: ["sh", "-c", "trap 'exit 0' TERM; echo api up; sleep 100000 & wait"]
  resources: {cpu: 100m, memory: 32Mi}
`

const uiSandbox = `---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: vault}
spec:
  image: localhost/busybox:1
  segment: back
  command: ["sh", "-c", "trap 'exit 0' TERM; echo vault up; sleep 100000 & wait"]
  resources: {cpu: 100m, memory: 64Mi}
  traits: {trust: untrusted}
`

// chromiumBinary is the browser itself, not Debian's launcher script (which may stay
// between the test and the browser as a shell that outlives a kill).
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/chromium/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	testenv.Skipf(t, "chromium not found: the dashboard test needs Debian's chromium (make host-setup installs it)")
	return ""
}

// requests records the URLs the page asked for, with which methods,
// and the media type of each watch's answer.
type requests struct {
	mu      sync.Mutex
	urls    []string
	methods map[string]int
	watches map[string]string // URL of a watch -> the media type of its answer
}

func (r *requests) add(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.urls = append(r.urls, e.Request.URL)
		if r.methods == nil {
			r.methods = map[string]int{}
		}
		r.methods[e.Request.Method]++
	case *network.EventResponseReceived:
		if e.Response == nil || !strings.Contains(e.Response.URL, "watch=1") {
			return
		}
		if r.watches == nil {
			r.watches = map[string]string{}
		}
		r.watches[e.Response.URL] = e.Response.MimeType
	}
}

func (r *requests) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.urls)
}

// watchTypes returns the media type of each watch's answer so far, by URL.
func (r *requests) watchTypes() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.watches)
}

// methodCounts returns how many requests the page made with each method.
func (r *requests) methodCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.methods)
}

func TestDashboardInBrowser(t *testing.T) {
	chromium := chromiumBinary(t)
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	app, want := uiApp, map[string]string{"web": "container", "api": "container"}
	if _, err := os.Stat("/opt/strata/bin/runsc"); err == nil {
		app += uiSandbox
		want["vault"] = "sandbox"
	} else {
		t.Log("no /opt/strata/bin/runsc: the sandbox workload is left out")
	}
	appFile := filepath.Join(e.dir, "ui-app.yaml")
	if err := os.WriteFile(appFile, []byte(app), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", appFile)
	for name := range want {
		e.eventually(name+" runs", 90*time.Second, func() error {
			_, err := e.running(name, 1)
			return err
		})
	}
	webRan := time.Now()
	token, err := client.ReadTokenFile(filepath.Join(e.dir, "data", "tls", "tokens"))
	if err != nil {
		t.Fatal(err)
	}

	artifacts := os.Getenv("STRATA_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o750); err != nil {
		t.Fatal(err)
	}
	ctx, rec := startBrowser(t, chromium, e.netns)
	origin := "https://" + tlsAddr
	began := time.Now()
	navigate(t, ctx, origin+"/ui/#token="+token)

	// The workloads are listed with their tiers.
	waitFor(t, ctx, "every workload listed", fmt.Sprintf(`document.querySelectorAll('#wl-list tr[data-workload]').length === %d`, len(want)))
	t.Logf("the page showed %d workloads %s after navigating", len(want), time.Since(began).Round(time.Millisecond))
	// Workloads, segments and events are listed independently: the declared segments (and
	// their flow) may come a moment after the workloads.
	waitFor(t, ctx, "the page live, with the flow", `document.getElementById('conn').dataset.state === 'live' && !!document.querySelector('#topology [data-flow]')`)
	if eval[bool](t, ctx, `getComputedStyle(document.getElementById('auth')).display !== 'none'`) {
		t.Error("the page asks for a token although it was given one")
	}
	if h := eval[float64](t, ctx, `document.getElementById('topology').getBoundingClientRect().height`); h < 200 {
		t.Errorf("the topology is %.0f pixels high: not shown", h)
	}
	tiers := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#wl-list tr[data-workload]')].map(r => [r.dataset.workload, r.dataset.tier]))`)
	cards := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#topology .wcard')].map(c => [c.dataset.workload, c.dataset.tier]))`)
	for name, tier := range want {
		if tiers[name] != tier || cards[name] != tier {
			t.Errorf("%s: tier %q in the list, %q in the topology, want %q", name, tiers[name], cards[name], tier)
		}
	}
	if _, ok := want["vault"]; ok {
		if n := eval[int](t, ctx, `document.querySelectorAll('#topology .wcard.tier-sandbox [data-instance]').length`); n != 1 {
			t.Errorf("the sandbox card shows %d instance dots, want 1", n)
		}
	}

	// The topology shows the segments, each workload in its own, and the flow with its port.
	segs := eval[map[string][]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#topology [data-segment]')].map(z => [z.dataset.segment, [...z.querySelectorAll('[data-workload]')].map(c => c.dataset.workload).sort()]))`)
	wantSegs := map[string][]string{"front": {"web"}, "back": {"api"}}
	if _, ok := want["vault"]; ok {
		wantSegs["back"] = []string{"api", "vault"}
	}
	for seg, wls := range wantSegs {
		if !slices.Equal(segs[seg], wls) {
			t.Errorf("segment %s holds %v in the topology, want %v (all: %v)", seg, segs[seg], wls, segs)
		}
	}
	if flow := eval[string](t, ctx, `(document.querySelector('#topology [data-flow="front->back"]') || {}).textContent || ''`); !strings.Contains(flow, "tcp/8080") {
		t.Errorf("the flow front->back reads %q, want its port tcp/8080", flow)
	}
	if eval[bool](t, ctx, `!!document.querySelector('#topology [data-flow="back->front"]')`) {
		t.Error("the topology shows a flow back->front that no rule allows")
	}
	if egress := eval[[]string](t, ctx, `[...document.querySelectorAll('#topology [data-egress]')].map(p => p.dataset.egress)`); !slices.Equal(egress, []string{"front"}) {
		t.Errorf("egress drawn from %v, want [front] (back denies egress)", egress)
	}
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-topology.png"))

	checkEventStreams(t, ctx, rec)
	checkHostCard(t, ctx, artifacts)

	// The workload's panel: its instance, its events and its log.
	eval[bool](t, ctx, `document.querySelector('#topology [data-workload="web"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))`)
	waitFor(t, ctx, "the panel of web with its log", `!!document.querySelector('#panel #inst-table [data-instance="web-0"]') && (document.getElementById('logs') || {}).textContent.includes('web web-0 up')`)

	// An instance killed from outside restarts, and the page shows it without a reload.
	pid := e.workload("web").Status.Instances[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, ctx, "web-0 shown restarted", `(() => {
		const dot = document.querySelector('#topology [data-workload="web"] [data-instance="web-0"]');
		const row = document.querySelector('#panel #inst-table [data-instance="web-0"]');
		return !!dot && dot.dataset.restarts === '1' && dot.dataset.state === 'running' && !!row && row.dataset.restarts === '1';
	})()`)
	t.Logf("the page showed the restart %s after the kill", time.Since(killed).Round(time.Millisecond))
	waitFor(t, ctx, "the restart in web's events", `[...document.querySelectorAll('#panel .events li')].some(li => /Restart|Exit/.test(li.textContent))`)
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-restarted.png"))

	// The panel charts each instance's CPU and memory from the usage history, once the
	// workload has run for a few of the history's 10 s intervals.
	waitFor(t, ctx, "web-0's CPU and memory charts with 2 points or more", `(() => {
		const cpu = document.querySelector('#panel [data-chart="cpu"][data-instance="web-0"]');
		const mem = document.querySelector('#panel [data-chart="memory"][data-instance="web-0"]');
		return !!cpu && !!mem && Number(cpu.dataset.points) >= 2 && Number(mem.dataset.points) >= 2;
	})()`)
	t.Logf("web-0's charts had 2 points %s after web ran", time.Since(webRan).Round(time.Second))
	if label := eval[string](t, ctx, `document.querySelector('#panel [data-chart="memory"][data-instance="web-0"]').getAttribute('aria-label')`); !strings.Contains(label, "MiB now") {
		t.Errorf("the memory chart's label %q does not give the latest value", label)
	}
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-charts.png"))

	// The sandbox's panel says which rule asked for its tier.
	if _, ok := want["vault"]; ok {
		eval[bool](t, ctx, `document.querySelector('#wl-list tr[data-workload="vault"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))`)
		waitFor(t, ctx, "vault's reasons", `(() => {
			const r = document.querySelector('#panel .reasons [data-rule="untrusted-code"]');
			return !!r && /sandbox/.test(r.textContent) && r.textContent.length > 40;
		})()`)
	}

	// Without a token the API answers 401; the page itself needs none.
	if code := eval[int](t, ctx, `fetch('/apis/strata.dev/v1alpha1/workloads', {cache: 'no-store'}).then(r => r.status)`); code != 401 {
		t.Errorf("the API without a token answered %d, want 401", code)
	}
	if code := eval[int](t, ctx, `fetch('/apis/strata.dev/v1alpha1/workloads', {headers: {Authorization: 'Bearer `+strings.Repeat("0", 64)+`'}}).then(r => r.status)`); code != 401 {
		t.Errorf("the API with a wrong token answered %d, want 401", code)
	}

	checkPlanView(t, ctx, e, rec, artifacts)

	if reloaded(t, ctx) {
		t.Error("the page was loaded again: every change must show without a reload")
	}
	urls := rec.snapshot()
	checkHosts(t, urls, "127.0.0.1:17443")

	// A tab without the token gets the page and a clear request for one.
	tab, closeTab := chromedp.NewContext(ctx)
	defer closeTab()
	navigate(t, tab, origin+"/ui/")
	waitFor(t, tab, "the token request", `getComputedStyle(document.getElementById('auth')).display !== 'none' && document.getElementById('conn').dataset.state === 'auth'`)
	if msg := eval[string](t, tab, `document.getElementById('auth').textContent`); !strings.Contains(msg, "Token needed") || !strings.Contains(msg, "bearer token") {
		t.Errorf("the token request reads %q", msg)
	}
	screenshot(t, tab, filepath.Join(artifacts, "dashboard-token-needed.png"))

	// strata dashboard --listen serves the same page from the daemon's socket, to the
	// holder of the token it prints.
	proxyURL := startDashboardProxy(t, e, "127.0.0.1:18080")
	viaProxy, closeProxyTab := chromedp.NewContext(ctx)
	defer closeProxyTab()
	navigate(t, viaProxy, proxyURL)
	waitFor(t, viaProxy, "the page live through the proxy", fmt.Sprintf(`document.getElementById('conn').dataset.state === 'live' && document.querySelectorAll('#wl-list tr[data-workload]').length === %d && document.querySelector('#wl-list tr[data-workload="web"]').dataset.restarts === '1'`, len(want)))
	if code := eval[int](t, viaProxy, `fetch('/apis/strata.dev/v1alpha1/workloads').then(r => r.status)`); code != 401 {
		t.Errorf("the proxy without a token answered %d, want 401", code)
	}

	// The three tiers look different: drawn from made-up objects (no VM runs here), with
	// the page's own module and stylesheet.
	tiersDrawn := eval[map[string]map[string]string](t, tab, `import('/ui/topology.js').then(({render}) => {
		const inst = (id, state, restarts) => ({id, state, restarts});
		const wl = (name, tier, insts) => ({metadata: {name}, spec: {segment: 'lab'}, status: {tier, phase: 'Running', instances: insts}});
		const views = [{name: 'lab', declared: true, subnet: '10.213.9.0/24', gateway: '10.213.9.1', egress: 'deny', allow: [], workloads: [
			wl('box', 'container', [inst('box-0', 'running', 0), inst('box-1', 'exited', 0)]),
			wl('jail', 'sandbox', [inst('jail-0', 'creating', 0)]),
			wl('ledger', 'vm', [inst('ledger-0', 'failed', 3)])]}];
		const svg = document.getElementById('topology');
		svg.removeAttribute('hidden');
		document.getElementById('topo-empty').hidden = true;
		render(svg, views, null, () => {});
		const out = {};
		for (const g of svg.querySelectorAll('.wcard')) {
			const box = getComputedStyle(g.querySelector('.wbox'));
			out[g.dataset.workload] = {dash: box.strokeDasharray, width: box.strokeWidth, stroke: box.stroke,
				badge: g.querySelector('.badge-vm') ? 'VM' : '', shield: g.querySelector('.shield') ? 'yes' : '', inner: g.querySelector('.wbox-inner') ? 'yes' : '',
				dots: [...g.querySelectorAll('[data-state]')].map(d => getComputedStyle(d).fill).join(' ')};
		}
		return out;
	})`)
	box, jail, ledger := tiersDrawn["box"], tiersDrawn["jail"], tiersDrawn["ledger"]
	switch {
	case box["dash"] != "none" || box["badge"] != "" || box["shield"] != "":
		t.Errorf("the container card is not a plain box: %v", box)
	case jail["dash"] == "none" || jail["shield"] != "yes":
		t.Errorf("the sandbox card has no dashed shield border: %v", jail)
	case ledger["badge"] != "VM" || ledger["inner"] != "yes" || ledger["width"] == box["width"]:
		t.Errorf("the VM card has no thick double border and VM badge: %v", ledger)
	case box["stroke"] == jail["stroke"] || jail["stroke"] == ledger["stroke"]:
		t.Errorf("the tiers share a color: %v", tiersDrawn)
	}
	if dots := strings.Fields(strings.ReplaceAll(box["dots"]+" "+jail["dots"]+" "+ledger["dots"], ", ", ",")); len(slices.Compact(slices.Sorted(slices.Values(dots)))) != 4 {
		t.Errorf("the four states are not four colors: %v", dots)
	}
	screenshot(t, tab, filepath.Join(artifacts, "dashboard-tiers.png"))

	// A host whose heartbeat is older than 30 s is shown stale, and not ready.
	beats := eval[map[string]string](t, tab, `import('/ui/hosts.js').then(({hostCard}) => {
		const now = Date.parse('2026-11-26T10:01:00Z');
		const host = (name, beat) => ({metadata: {name}, status: {ready: true, lastHeartbeatTime: beat,
			capacity: {cpu: '2', memory: '4Gi'}, allocated: {cpu: '500m', memory: '1Gi'}, drivers: [{name: 'containerd', ready: true}]}});
		const out = {};
		for (const [name, beat] of [['fresh', '2026-11-26T10:00:55Z'], ['stale', '2026-11-26T10:00:15Z']]) {
			const c = hostCard(host(name, beat), now);
			out[name] = [c.dataset.stale, c.dataset.ready, c.querySelector('.heartbeat').textContent].join(' | ');
		}
		return out;
	})`)
	if beats["fresh"] != "false | true | heartbeat 5 s ago" || beats["stale"] != "true | false | heartbeat 45 s ago (stale)" {
		t.Errorf("heartbeats drawn as %q", beats)
	}
}

// startDashboardProxy runs strata dashboard --listen addr in the test's network namespace
// and returns the address it prints; the proxy ends with the test.
func startDashboardProxy(t *testing.T, e *e2e, addr string) string {
	t.Helper()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+e.netns, e.bin, "dashboard", "--listen", addr, "--socket", e.socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // nsenter execs strata: the PID is the proxy's
		if err := cmd.Wait(); err != nil {
			t.Errorf("strata dashboard --listen: %v\n%s", err, stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("strata dashboard --listen printed no address: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(line, "http://"+addr+"/ui/#token=") {
		t.Fatalf("strata dashboard --listen printed %q", line)
	}
	return strings.TrimSpace(line)
}

// startBrowser runs a headless Chromium in the network namespace netns, with its profile
// in a temporary directory, and returns a tab that records the requests of its pages. The
// browser ends with the test; a process left behind fails it.
// navigate loads url in the browser's tab. The browser runs in the test's network
// namespace, where the daemon adds and removes veths and taps as workloads start and
// stop; Chromium abandons a load that such a change interrupts (net::ERR_NETWORK_CHANGED),
// so that load is tried again, a few times.
// navigate loads url in the tab, trying again while the test's network namespace changes
// under the browser, and marks the loaded page so that reloaded can tell a later reload.
// (Counting document requests cannot: a navigation tried again is a second request.)
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	var err error
	for range 5 {
		if err = chromedp.Do(ctx, chromedp.Navigate(url)); err == nil || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	eval[bool](t, ctx, `window.strataTestLoaded = true`)
}

// reloaded reports whether the page navigate loaded has been replaced since.
func reloaded(t *testing.T, ctx context.Context) bool {
	t.Helper()
	return !eval[bool](t, ctx, `window.strataTestLoaded === true`)
}

func startBrowser(t *testing.T, chromium, netns string) (context.Context, *requests) {
	t.Helper()
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "chromium-in-netns")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter --net=/run/netns/%s %s \"$@\"\n", netns, chromium)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(dir, "profile")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(wrapper),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // root
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors", true), // the daemon's test CA
		chromedp.Flag("disable-gpu", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	rec := &requests{}
	ctx, cancelTab := chromedp.NewContext(alloc, chromedp.WithListener(rec.add))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		for _, pid := range processesUnder(profile) {
			t.Errorf("a browser process outlived the test: %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, rec
}

// waitFor waits until the JavaScript expression cond is true in the tab.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('conn-text').textContent + ' | ' + document.querySelector('main').innerText.slice(0, 2000)`))
		t.Fatalf("%s: %v\nthe page: %s", what, err, state)
	}
}

// eval evaluates the JavaScript expression in the tab, awaiting a promise.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// checkHosts fails the test for every request to a host other than host; data: URLs
// stay in the page.
func checkHosts(t *testing.T, urls []string, host string) {
	t.Helper()
	if len(urls) == 0 {
		t.Error("no request recorded")
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to %q: %v", raw, err)
			continue
		}
		if u.Scheme == "data" {
			continue
		}
		if u.Host != host {
			t.Errorf("the page asked another host: %s", raw)
		}
	}
}

// checkEventStreams checks that the page reads every watch (hosts, workloads, segments,
// events) as server-sent events: the browser saw each answer as text/event-stream.
func checkEventStreams(t *testing.T, ctx context.Context, rec *requests) {
	t.Helper()
	waitFor(t, ctx, "the watches read as server-sent events", `document.getElementById('conn').dataset.streams === 'sse'`)
	want := []string{"events", "hosts", "segments", "workloads"}
	var got map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = map[string]string{}
		for raw, mime := range rec.watchTypes() {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("watch URL %q: %v", raw, err)
			}
			got[path.Base(u.Path)] = mime
		}
		if len(got) >= len(want) {
			break
		}
	}
	for _, res := range want {
		if got[res] != "text/event-stream" {
			t.Errorf("the watch of %s was answered as %q, want text/event-stream (all: %v)", res, got[res], got)
		}
	}
}

// checkHostCard checks the host strip against the daemon's Host: its name (also on the
// topology's frame), its accelerator, each driver with its readiness and message, and a
// heartbeat age that moves on.
func checkHostCard(t *testing.T, ctx context.Context, artifacts string) {
	t.Helper()
	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	hosts := eval[struct {
		Items []v1alpha1.HostObject `json:"items"`
	}](t, ctx, `fetch('/apis/strata.dev/v1alpha1/hosts', {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('strata.token')}}).then(r => r.json())`)
	if len(hosts.Items) != 1 || hosts.Items[0].Metadata.Name != name || hosts.Items[0].Status == nil {
		t.Fatalf("the daemon lists hosts %+v, want one named %s with a status", hosts.Items, name)
	}
	st := hosts.Items[0].Status
	if len(st.Drivers) == 0 {
		t.Fatal("the host reports no driver")
	}
	var drivers []string
	for _, d := range st.Drivers {
		drivers = append(drivers, fmt.Sprintf("%s=%t:%s", d.Name, d.Ready, d.Message))
	}
	wantDrivers, err := json.Marshal(strings.Join(drivers, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	card := fmt.Sprintf(`document.querySelector('#hosts [data-host=%q]')`, name)
	waitFor(t, ctx, "the host card with every driver", fmt.Sprintf(`(() => {
		const card = %s;
		if (!card) return false;
		const drivers = [...card.querySelectorAll('[data-driver]')].map(d => d.dataset.driver + '=' + d.dataset.ready + ':' + ((d.querySelector('.driver-msg') || {}).textContent || ''));
		return drivers.join('\n') === %s;
	})()`, card, wantDrivers))
	if got := eval[string](t, ctx, card+`.querySelector('[data-accelerator]').dataset.accelerator`); got != strings.ToLower(st.Accelerator) {
		t.Errorf("the card shows accelerator %q, the host reports %q", got, st.Accelerator)
	}
	if n := eval[int](t, ctx, card+`.querySelectorAll('[role="meter"][aria-valuetext]').length`); n != 2 {
		t.Errorf("the card has %d capacity bars, want 2 (cpu, memory)", n)
	}
	if frame := eval[string](t, ctx, `(document.querySelector('#topology [data-host-frame]') || {dataset: {}}).dataset.hostFrame || ''`); frame != name {
		t.Errorf("the topology's host frame is labelled %q, want %q", frame, name)
	}
	age := eval[string](t, ctx, card+`.querySelector('.heartbeat').textContent`)
	if !regexp.MustCompile(`^heartbeat \d+ s ago$`).MatchString(age) || eval[string](t, ctx, card+`.dataset.stale`) != "false" {
		t.Errorf("the heartbeat reads %q (stale %s), want a fresh age in seconds", age, eval[string](t, ctx, card+`.dataset.stale`))
	}
	waitFor(t, ctx, "the heartbeat's age to change", fmt.Sprintf(`%s.querySelector('.heartbeat').textContent !== %q`, card, age))
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-hosts.png"))
}

// checkPlanView loads a plan of the example fleet into the Plan tab through its file input
// and checks what it draws against the plan: the hosts, the node VMs on each, the VMs on
// each host, the unplaced replicas and the summary. It checks as well that the page sent
// nothing: every request it ever made was a GET.
func checkPlanView(t *testing.T, ctx context.Context, e *e2e, rec *requests, artifacts string) {
	t.Helper()
	out, err := run(e.bin, "plan", "-f", "../../examples/fleet/workloads.yaml", "--fleet", "../../examples/fleet/fleet.yaml", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var plan v1alpha1.PlacementPlan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Hosts) == 0 || len(plan.Nodes) == 0 || len(plan.Unplaced) == 0 {
		t.Fatalf("the example plan has %d hosts, %d nodes, %d unplaced: the check needs some of each", len(plan.Hosts), len(plan.Nodes), len(plan.Unplaced))
	}
	dir := t.TempDir()
	planFile := filepath.Join(dir, "fleet-plan.json")
	notPlan := filepath.Join(dir, "fleet.yaml")
	fleet, err := os.ReadFile("../../examples/fleet/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPlan, fleet, 0o600); err != nil {
		t.Fatal(err)
	}

	eval[bool](t, ctx, `document.getElementById('tab-plan').dispatchEvent(new MouseEvent('click', {bubbles: true}))`)
	waitFor(t, ctx, "the Plan tab", `!document.getElementById('view-plan').hidden && document.getElementById('view-host').hidden && document.getElementById('tab-plan').getAttribute('aria-selected') === 'true'`)

	// A file that is not a plan is refused with a reason.
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#plan-file"), []string{notPlan})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the error for a file that is not a plan", `!document.getElementById('plan-error').hidden && /fleet\.yaml: this file is not JSON/.test(document.getElementById('plan-error').textContent)`)

	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#plan-file"), []string{planFile})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the plan drawn", fmt.Sprintf(`document.querySelectorAll('#plan [data-plan-host]').length === %d && document.getElementById('plan-error').hidden`, len(plan.Hosts)))

	var wantHosts []string
	for _, h := range plan.Hosts {
		wantHosts = append(wantHosts, h.Name)
	}
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#plan [data-plan-host]')].map(h => h.dataset.planHost)`); !slices.Equal(got, wantHosts) {
		t.Errorf("the plan view shows hosts %v, want %v", got, wantHosts)
	}
	wantNodes := map[string]string{}
	for _, n := range plan.Nodes {
		wantNodes[n.Name] = n.Host + " " + n.Shape + " " + n.Class
	}
	gotNodes := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#plan [data-plan-node]')].map(n => [n.dataset.planNode, n.closest('[data-plan-host]').dataset.planHost + ' ' + n.dataset.shape + ' ' + n.dataset.class]))`)
	if !maps.Equal(gotNodes, wantNodes) {
		t.Errorf("the plan view shows node VMs %v, want %v", gotNodes, wantNodes)
	}
	wantReplicas := map[string]int{} // "host" (VMs on it) or "host/node" -> replicas
	for _, p := range plan.Placements {
		key := p.Host
		if p.Node != "" {
			key += "/" + p.Node
		}
		wantReplicas[key]++
	}
	gotReplicas := eval[map[string]int](t, ctx, `(() => {
		const out = {};
		for (const r of document.querySelectorAll('#plan [data-plan-host] [data-replicas]')) {
			const node = r.closest('[data-plan-node]');
			const key = r.closest('[data-plan-host]').dataset.planHost + (node ? '/' + node.dataset.planNode : '');
			out[key] = (out[key] || 0) + Number(r.dataset.replicas);
		}
		return out;
	})()`)
	if !maps.Equal(gotReplicas, wantReplicas) {
		t.Errorf("the plan view shows replicas %v, want %v", gotReplicas, wantReplicas)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#plan [data-plan-host] [data-resource="cpu"] [role="meter"]').length`); n != len(plan.Hosts) {
		t.Errorf("%d hosts have a cpu utilization bar, want %d", n, len(plan.Hosts))
	}
	var wantUnplaced []string
	for _, u := range plan.Unplaced {
		wantUnplaced = append(wantUnplaced, fmt.Sprintf("%s/%d %s", u.Workload, u.Replica, u.Reason))
	}
	slices.Sort(wantUnplaced)
	gotUnplaced := eval[[]string](t, ctx, `[...document.querySelectorAll('#plan [data-unplaced]')].map(u => u.dataset.unplaced + ' ' + u.textContent.replace(/^\S+ #\d+ /, ''))`)
	slices.Sort(gotUnplaced)
	if !slices.Equal(gotUnplaced, wantUnplaced) {
		t.Errorf("the plan view lists unplaced %q, want %q", gotUnplaced, wantUnplaced)
	}
	summary := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#plan [data-summary]')].map(d => [d.dataset.summary, d.textContent]))`)
	wantSummary := map[string]string{
		"hosts used":  fmt.Sprintf("%d of %d", plan.Summary.HostsUsed, plan.Summary.HostsAvailable),
		"node VMs":    strconv.Itoa(plan.Summary.Nodes),
		"lower bound": strconv.Itoa(plan.Summary.LowerBound),
		"gap":         fmt.Sprintf("%d%%", int(math.Round(plan.Summary.Gap*100))),
	}
	for k, v := range wantSummary {
		if summary[k] != v {
			t.Errorf("the plan's summary gives %s %q, want %q", k, summary[k], v)
		}
	}
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-plan.png"))

	if methods := rec.methodCounts(); len(methods) != 1 || methods["GET"] == 0 {
		t.Errorf("the page made requests %v: it should only read (GET), and send no file anywhere", methods)
	}
	eval[bool](t, ctx, `document.getElementById('tab-host').dispatchEvent(new MouseEvent('click', {bubbles: true}))`)
	waitFor(t, ctx, "the Host tab again", `!document.getElementById('view-host').hidden && document.getElementById('view-plan').hidden`)
}

// uiDemo is the network of examples/hybrid/app.yaml (the demo's three segments, their
// flows and egress) with busybox containers in them; the ledger runs as a container here
// (booting its VM is slow) and the plugin runner is sandboxed only when runsc is there.
const uiDemo = `apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: web}
spec: {egress: allow}
---
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: shop}
spec:
  egress: deny
  allow:
  - from: {segment: web}
    ports: [{port: 9000, protocol: tcp}, {port: 7000, protocol: tcp}]
---
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: plugins}
spec:
  egress: deny
  allow:
  - from: {segment: web}
    ports: [{port: 8081, protocol: tcp}]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: storefront}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo storefront > /www/index.html; httpd -f -p 8080 -h /www & wait"]
  replicas: 2
  segment: web
  resources: {cpu: 100m, memory: 32Mi}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: catalog}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /data; echo '[]' > /data/items.json; httpd -f -p 9000 -h /data & wait"]
  segment: shop
  resources: {cpu: 100m, memory: 32Mi}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: ledger}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo ledger ok > /www/index.html; httpd -f -p 7000 -h /www & wait"]
  segment: shop
  resources: {cpu: 100m, memory: 32Mi}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: plugin-runner}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo plugins ok > /www/index.html; httpd -f -p 8081 -h /www & wait"]
  segment: plugins
  resources: {cpu: 100m, memory: 64Mi}
`

// TestDashboardDemoSegments draws the demo's network: exactly its three segments, the two
// flows from web with their ports, and egress from web alone.
func TestDashboardDemoSegments(t *testing.T) {
	chromium := chromiumBinary(t)
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	app := uiDemo
	if _, err := os.Stat("/opt/strata/bin/runsc"); err == nil {
		app += "  traits: {trust: untrusted}\n"
	}
	appFile := filepath.Join(e.dir, "demo.yaml")
	if err := os.WriteFile(appFile, []byte(app), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", appFile)
	want := map[string]int{"storefront": 2, "catalog": 1, "ledger": 1, "plugin-runner": 1}
	for name, n := range want {
		e.eventually(name+" runs", 90*time.Second, func() error {
			_, err := e.running(name, n)
			return err
		})
	}
	token, err := client.ReadTokenFile(filepath.Join(e.dir, "data", "tls", "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	artifacts := os.Getenv("STRATA_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o750); err != nil {
		t.Fatal(err)
	}
	ctx, rec := startBrowser(t, chromium, e.netns)
	navigate(t, ctx, "https://"+tlsAddr+"/ui/#token="+token)
	waitFor(t, ctx, "the demo drawn, live", `document.getElementById('conn').dataset.state === 'live' &&
		document.querySelectorAll('#topology [data-segment]').length === 3 &&
		document.querySelectorAll('#topology [data-flow]').length >= 2 &&
		document.querySelectorAll('#topology .wcard [data-state="running"]').length === 5`)

	segs := eval[map[string][]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#topology [data-segment]')].map(z => [z.dataset.segment, [...z.querySelectorAll('[data-workload]')].map(c => c.dataset.workload).sort()]))`)
	wantSegs := map[string][]string{"web": {"storefront"}, "shop": {"catalog", "ledger"}, "plugins": {"plugin-runner"}}
	if !maps.EqualFunc(segs, wantSegs, slices.Equal) {
		t.Errorf("the topology shows zones %v, want %v", segs, wantSegs)
	}
	flows := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#topology [data-flow]')].map(f => [f.dataset.flow, f.querySelector('.flow-label').textContent]))`)
	if len(flows) != 2 {
		t.Errorf("the topology shows flows %v, want web->shop and web->plugins only", flows)
	}
	for flow, ports := range map[string][]string{"web->shop": {"tcp/9000", "tcp/7000"}, "web->plugins": {"tcp/8081"}} {
		label, ok := flows[flow]
		if !ok {
			t.Errorf("no flow %s drawn (flows: %v)", flow, flows)
			continue
		}
		for _, p := range ports {
			if !strings.Contains(label, p) {
				t.Errorf("the flow %s reads %q, want %s in it", flow, label, strings.Join(ports, " and "))
			}
		}
		if n := len(strings.Split(label, ",")); n != len(ports) {
			t.Errorf("the flow %s reads %q: %d ports, want %d", flow, label, n, len(ports))
		}
	}
	if egress := eval[[]string](t, ctx, `[...document.querySelectorAll('#topology [data-egress]')].map(p => p.dataset.egress)`); !slices.Equal(egress, []string{"web"}) {
		t.Errorf("egress drawn from %v, want [web] (shop and plugins deny it)", egress)
	}
	denied := eval[[]string](t, ctx, `[...document.querySelectorAll('#topology [data-segment]')].filter(z => /egress denied/.test(z.textContent)).map(z => z.dataset.segment).sort()`)
	if !slices.Equal(denied, []string{"plugins", "shop"}) {
		t.Errorf("segments marked egress denied: %v, want [plugins shop]", denied)
	}
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-demo-segments.png"))
	urls := rec.snapshot()
	checkHosts(t, urls, tlsAddr)
}

// TestDashboardNodeVMs: the Host view draws the daemon's real node VMs, booted under QEMU
// (TCG here), as boxes inside the host, each with its class, shape, usage and replicas, and
// the replicas on the host's kernel beside them; a deleted workload leaves its node VM's box
// without a reload.
func TestDashboardNodeVMs(t *testing.T) {
	chromium := chromiumBinary(t)
	e := newE2E(t)
	kdir := vmEnv(t, e)
	e.extraArgs = []string{"--guest-kernel-dir", kdir}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "tenants.yaml")
	if err := os.WriteFile(file, []byte(tenants), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	e.eventually("every workload runs", 5*time.Minute, func() error {
		for _, name := range []string{"shop-a", "shop-b", "cache", "web"} {
			if _, err := e.running(name, 1); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if n := e.nodes(); len(n) != 2 || len(n[0].Replicas) != 1 || len(n[1].Replicas) != 1 {
			return fmt.Errorf("node VMs %+v, want two with a replica each", n)
		}
		return nil
	})
	nodes := e.nodes()
	token, err := client.ReadTokenFile(filepath.Join(e.dir, "data", "tls", "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	artifacts := os.Getenv("STRATA_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o750); err != nil {
		t.Fatal(err)
	}
	ctx, rec := startBrowser(t, chromium, e.netns)
	navigate(t, ctx, "https://"+tlsAddr+"/ui/#token="+token)
	waitFor(t, ctx, "two node VM boxes with a replica each", `document.querySelectorAll('#placement [data-plan-node] [data-workload]').length === 2`)

	// Each node VM is a box inside the host's box, with its class, shape, usage bars and replica.
	type box struct {
		Host, Class, Shape string
		Workloads          []string
		Meters             int
	}
	got := eval[map[string]box](t, ctx, `Object.fromEntries([...document.querySelectorAll('#placement [data-plan-node]')].map(n => [n.dataset.planNode, {
		Host: n.closest('[data-plan-host]').dataset.planHost, Class: n.dataset.class, Shape: n.dataset.shape,
		Workloads: [...n.querySelectorAll('[data-workload]')].map(c => c.dataset.workload).sort(),
		Meters: n.querySelectorAll('[role="meter"]').length}]))`)
	host := eval[string](t, ctx, `document.querySelector('#hosts [data-host]') ? document.querySelector('#hosts [data-host]').dataset.host : ''`)
	want := map[string]box{}
	for _, n := range nodes {
		shape := n.Shape.CPU.String() + " CPU, " + n.Shape.Memory.String()
		if n.ShapeName != "" {
			shape = n.ShapeName + " (" + shape + ")"
		}
		want[n.Name] = box{Host: host, Class: n.Class, Shape: shape,
			Workloads: []string{n.Replicas[0].Workload}, Meters: 2}
	}
	if host == "" || !maps.EqualFunc(got, want, func(a, b box) bool {
		return a.Host == b.Host && a.Class == b.Class && a.Shape == b.Shape && slices.Equal(a.Workloads, b.Workloads) && a.Meters == b.Meters
	}) {
		t.Errorf("the Host view shows node VMs %+v, want %+v", got, want)
	}
	// The shops' requests of their node VM's shape: 50m and 100m of one CPU.
	cpu := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#placement [data-plan-node]')].map(n => [n.dataset.class, n.querySelector('[data-resource="cpu"] .util-num').textContent]))`)
	wantCPU := map[string]string{}
	for _, n := range nodes {
		wantCPU[n.Class] = fmt.Sprintf("%d%%", int(math.Round(100*float64(n.Usage.CPU.MilliValue())/float64(n.Shape.CPU.MilliValue()))))
	}
	if !maps.Equal(cpu, wantCPU) {
		t.Errorf("node VM CPU usage %v, want %v", cpu, wantCPU)
	}
	onHost := eval[[]string](t, ctx, `[...document.querySelectorAll('#placement [data-plan-host] > .plan-onhost [data-plan-vm]')].map(c => c.dataset.planVm).sort()`)
	if !slices.Equal(onHost, []string{"cache", "web"}) {
		t.Errorf("on the host's kernel the view shows %v, want [cache web]", onHost)
	}
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-node-vms.png"))
	checkPlanHost(t, ctx, e, host, want)

	// Live: shop-b deleted, its node VM stays, empty, without a reload.
	e.must("delete", "workload", "shop-b")
	waitFor(t, ctx, "globex's node VM empty", `(() => {
		const n = document.querySelector('#placement [data-plan-node][data-class="globex/internal/internal"]');
		return !!n && n.querySelectorAll('[data-workload]').length === 0 && /no replicas/.test(n.textContent) &&
			document.querySelectorAll('#placement [data-plan-node] [data-workload="shop-a"]').length === 1;
	})()`)
	screenshot(t, ctx, filepath.Join(artifacts, "dashboard-node-vms-deleted.png"))
	if reloaded(t, ctx) {
		t.Error("the page was loaded again: the change must show without a reload")
	}
	urls := rec.snapshot()
	checkHosts(t, urls, tlsAddr)
}

// checkPlanHost: strata plan --host prints the daemon's node VMs and replicas as a plan
// (the table and the JSON), and the Plan tab draws that JSON with the same node VM boxes as
// the Host view (want, by node VM name); then it goes back to the Host tab.
func checkPlanHost[B any](t *testing.T, ctx context.Context, e *e2e, host string, want map[string]B) {
	t.Helper()
	table := e.must("plan", "--host")
	t.Logf("strata plan --host:\n%s", table)
	for _, w := range []string{"Runs:    2 node VMs, 0 VMs, 2 replicas on the host's kernel", "Placed:  4 of 4 replicas", "acme/internal/internal", "globex/internal/internal", host} {
		if !strings.Contains(table, w) {
			t.Errorf("plan --host lacks %q", w)
		}
	}
	out := e.must("plan", "--host", "-o", "json")
	var plan v1alpha1.PlacementPlan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan --host -o json: %v\n%s", err, out)
	}
	where := map[string]string{}
	for _, p := range plan.Placements {
		where[p.Workload] = p.Host + "/" + p.Node
	}
	for _, n := range plan.Nodes {
		if _, ok := want[n.Name]; !ok || n.Host != host || n.Utilization == nil || n.Utilization.CPU <= 0 {
			t.Errorf("plan --host: node %+v, want one of %v on %s with its utilization", n, slices.Collect(maps.Keys(want)), host)
		}
	}
	if len(plan.Nodes) != len(want) || where["cache"] != host+"/" || where["web"] != host+"/" ||
		!strings.HasPrefix(where["shop-a"], host+"/nodevm-") || !strings.HasPrefix(where["shop-b"], host+"/nodevm-") || where["shop-a"] == where["shop-b"] {
		t.Errorf("plan --host places %v with nodes %+v: want the shops in two node VMs, cache and web on %s", where, plan.Nodes, host)
	}
	file := filepath.Join(t.TempDir(), "host-plan.json")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	eval[bool](t, ctx, `document.getElementById('tab-plan').dispatchEvent(new MouseEvent('click', {bubbles: true}))`)
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#plan-file"), []string{file})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the host's plan drawn", `document.querySelectorAll('#plan [data-plan-node]').length === 2`)
	drawn := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#plan [data-plan-node]')].map(n => [n.dataset.planNode,
		n.dataset.shape + ' ' + n.querySelectorAll('[role="meter"]').length + ' ' + [...n.querySelectorAll('[data-workload]')].map(c => c.dataset.workload).join(',')]))`)
	live := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#placement [data-plan-node]')].map(n => [n.dataset.planNode,
		n.dataset.shape + ' ' + n.querySelectorAll('[role="meter"]').length + ' ' + [...n.querySelectorAll('[data-workload]')].map(c => c.dataset.workload).join(',')]))`)
	if !maps.Equal(drawn, live) {
		t.Errorf("the Plan tab draws plan --host's node VMs as %v, the Host view as %v: want the same", drawn, live)
	}
	eval[bool](t, ctx, `document.getElementById('tab-host').dispatchEvent(new MouseEvent('click', {bubbles: true}))`)
	waitFor(t, ctx, "the Host tab again", `!document.getElementById('view-host').hidden`)
}
