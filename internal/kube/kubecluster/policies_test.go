package kubecluster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/kube/netpol"
)

// TestNetworkPolicyMatrix applies the hybrid example with the NetworkPolicy
// engine running and checks, from pods of each segment and from a pod of
// none, which connections to the example's servers open: exactly the flows
// the example's Segments declare (within a segment; web to shop on 9000 and
// 7000; web to plugins on 8081; nothing else, not even to a port of shop
// that no flow lists). The matrix is printed in the test log, and the
// expected one is also checked against internal/kube/netpol, the evaluator
// of NetworkPolicy semantics, over the policies as the API server stored
// them.
func TestNetworkPolicyMatrix(t *testing.T) {
	c := Start(t)
	if c.NoPolicyEngine != "" {
		t.Skip("skipping: " + c.NoPolicyEngine)
	}
	needRunsc(t, c, "the example has a sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := c.EnforceNetworkPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	strata, err := c.BuildStrata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	example, err := filepath.Abs("../../../examples/hybrid/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out, notes, err := c.Exec(ctx, strata, "apply", "-f", example, "--kubeconfig", c.Kubeconfig()); err != nil {
		t.Fatalf("strata apply: %v\n%s%s", err, out, notes)
	}
	// A second server in shop, on a port no flow lists.
	extra := sleeper("shop-extra", map[string]string{"strata.dev/segment": "shop", "strata.dev/workload": "shop-extra"},
		"mkdir -p /www; echo extra > /www/index.html; exec httpd -f -p 9001 -h /www")
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, extra, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	type target struct {
		workload, segment string
		port              int32
		ip                string
	}
	targets := []*target{
		{"storefront", "web", 8080, ""}, {"catalog", "shop", 9000, ""},
		{"shop-extra", "shop", 9001, ""}, {"plugin-runner", "plugins", 8081, ""},
	}
	for _, tg := range targets {
		want := 1
		if tg.workload == "storefront" {
			want = 2
		}
		pods, err := c.WaitReady(ctx, "default", "strata.dev/workload="+tg.workload, want)
		if err != nil {
			t.Fatal(err)
		}
		tg.ip = pods[0].Status.PodIP
	}

	// What the Segments declare.
	declared := func(from, to string, port int32) bool {
		switch {
		case from == to:
			return true
		case from == "web" && to == "shop":
			return port == 9000 || port == 7000
		case from == "web" && to == "plugins":
			return port == 8081
		}
		return false
	}
	// The same, by the NetworkPolicies the API server holds.
	list, err := c.Client.NetworkingV1().NetworkPolicies("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	endpoint := func(segment string) netpol.Endpoint {
		labels := map[string]string{}
		if segment != "" {
			labels["strata.dev/segment"] = segment
		}
		return netpol.Endpoint{Pod: &netpol.Pod{Namespace: "default", Labels: labels}}
	}

	sources := []string{"web", "shop", "plugins", ""}
	type probe struct {
		from string
		log  string
		err  error
	}
	results := make(chan probe, len(sources))
	for _, from := range sources {
		var script strings.Builder
		for _, tg := range targets {
			fmt.Fprintf(&script, "if nc -w 3 %s %d </dev/null >/dev/null 2>&1; then echo '%s open'; else echo '%s closed'; fi\n",
				tg.ip, tg.port, tg.workload, tg.workload)
		}
		s := Script{Name: "from-" + name(from), Namespace: "default", Script: script.String(), Labels: map[string]string{}}
		if from != "" {
			s.Labels["strata.dev/segment"] = from
		}
		go func() {
			log, err := c.RunScript(ctx, s)
			results <- probe{from, log, err}
		}()
	}
	observed := map[string]string{}
	for range sources {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		observed[r.from] = r.log
	}

	var matrix strings.Builder
	fmt.Fprintf(&matrix, "%-10s", "from \\ to")
	for _, tg := range targets {
		fmt.Fprintf(&matrix, " %-22s", fmt.Sprintf("%s:%d (%s)", tg.workload, tg.port, tg.segment))
	}
	matrix.WriteString("\n")
	for _, from := range sources {
		fmt.Fprintf(&matrix, "%-10s", name(from))
		for _, tg := range targets {
			want := from != "" && declared(from, tg.segment, tg.port)
			byPolicy, err := netpol.Allowed(list.Items, netpol.Connection{
				From: endpoint(from), To: endpoint(tg.segment), Port: tg.port, Protocol: corev1.ProtocolTCP,
			})
			if err != nil {
				t.Fatal(err)
			}
			if byPolicy != want {
				t.Errorf("%s -> %s:%d: the stored NetworkPolicies allow it: %v; the Segments declare: %v", name(from), tg.workload, tg.port, byPolicy, want)
			}
			got := slices.Contains(strings.Split(observed[from], "\n"), tg.workload+" open")
			cell := map[bool]string{true: "open", false: "closed"}[got]
			if got != want {
				cell += " (WRONG)"
				t.Errorf("%s -> %s:%d: the connection is %s; the Segments declare it %s", name(from), tg.workload, tg.port,
					map[bool]string{true: "open", false: "closed"}[got], map[bool]string{true: "allowed", false: "denied"}[want])
			}
			fmt.Fprintf(&matrix, " %-22s", cell)
		}
		matrix.WriteString("\n")
	}
	t.Logf("reachability from pods (rows: the source pod's segment; none: a pod of no segment):\n%s", matrix.String())
	if t.Failed() {
		c.logPolicyEngine(ctx, t)
	}
}

// name names a source segment, "none" for a pod of no segment.
func name(segment string) string {
	if segment == "" {
		return "none"
	}
	return segment
}
