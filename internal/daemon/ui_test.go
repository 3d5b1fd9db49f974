package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"strata.dev/strata/internal/client"
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
	t.Skip("chromium not found: the dashboard test needs Debian's chromium (make host-setup installs it)")
	return ""
}

// requests records the URLs the page asked for, and how many were documents.
type requests struct {
	mu        sync.Mutex
	urls      []string
	documents int
}

func (r *requests) add(ev any) {
	e, ok := ev.(*network.EventRequestWillBeSent)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.urls = append(r.urls, e.Request.URL)
	if e.Type == network.ResourceTypeDocument {
		r.documents++
	}
}

func (r *requests) snapshot() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.urls), r.documents
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
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/ui/#token="+token)); err != nil {
		t.Fatal(err)
	}

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

	// Without a token the API answers 401; the page itself needs none.
	if code := eval[int](t, ctx, `fetch('/apis/strata.dev/v1alpha1/workloads', {cache: 'no-store'}).then(r => r.status)`); code != 401 {
		t.Errorf("the API without a token answered %d, want 401", code)
	}
	if code := eval[int](t, ctx, `fetch('/apis/strata.dev/v1alpha1/workloads', {headers: {Authorization: 'Bearer `+strings.Repeat("0", 64)+`'}}).then(r => r.status)`); code != 401 {
		t.Errorf("the API with a wrong token answered %d, want 401", code)
	}

	urls, documents := rec.snapshot()
	if documents != 1 {
		t.Errorf("the page loaded %d documents, want 1 (no reload)", documents)
	}
	checkHosts(t, urls, "127.0.0.1:17443")

	// A tab without the token gets the page and a clear request for one.
	tab, closeTab := chromedp.NewContext(ctx)
	defer closeTab()
	if err := chromedp.Do(tab, chromedp.Navigate(origin+"/ui/")); err != nil {
		t.Fatal(err)
	}
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
	if err := chromedp.Do(viaProxy, chromedp.Navigate(proxyURL)); err != nil {
		t.Fatal(err)
	}
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
