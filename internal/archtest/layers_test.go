package archtest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// apiModules are the modules outside strata that the API packages import:
// whatever speaks the API carries them.
var apiModules = []string{"github.com/distribution/reference", "k8s.io/apimachinery"}

// daemonDeps are the packages of the module that `strata serve` is made of:
// the daemon's closure holds these and nothing else.
var daemonDeps = []string{api, diag, load, inventory, osrelease, "internal/assess", "internal/place", "internal/scale",
	"internal/store", "internal/objects", "internal/events", "internal/server", "internal/control", "internal/scaler",
	"internal/runtime", "internal/runtime/containerd", "internal/runtime/imagetar", "internal/runtime/qemu/...", "internal/runtime/nodevm",
	"internal/guest/...",
	"internal/extract",
	"internal/netseg", "internal/netseg/dns", "internal/netseg/policy", "internal/netseg/netstate", "internal/netseg/hostnet",
	"internal/metrics", "internal/ui", "internal/backup/...", "internal/snapshot", "internal/version"}

// layers bound the dependency closures of the layers that matter: what each
// may reach at all, through any chain of imports. They are allow lists, so a
// package new to a closure has to be placed here on purpose. The direct
// import table (rules) stays for the packages these do not cover.
var layers = []layer{
	{scope: "api/...", deps: []string{api}, modules: apiModules,
		why: "every program that speaks the API carries the API packages and all they pull in"},
	{scope: "internal/client/...", deps: []string{api}, modules: apiModules,
		why: "the client speaks HTTP to the daemon and shares only the API's types, so a program that uses it carries none of the daemon"},
	{scope: "internal/store/...", deps: nothing,
		why: "the store sits below the controllers and the API: it keeps records and knows no objects, drivers or controllers"},
	{scope: "internal/runtime", deps: []string{api},
		why: "the driver contract is made of API types and interfaces"},
	{scope: "internal/extract/...", deps: nothing,
		why: "unpacking archives beneath a directory needs nothing of strata"},
	{scope: "internal/runtime/imagetar/...", deps: []string{api, "internal/runtime"},
		why: "checking an image tarball before any driver stores it is part of the driver layer, below every driver"},
	{scope: "internal/runtime/containerd/...", except: []string{"internal/runtime/containerd/ctrdtest"},
		deps: []string{api, "internal/runtime", "internal/runtime/imagetar", "internal/extract"},
		why:  "a driver implements the contract: it knows no controller, no store and no other driver (image checks and archive unpacking are helpers below every driver)"},
	{scope: "internal/runtime/qemu/...", deps: []string{api, "internal/runtime", "internal/guest/...", "internal/extract"},
		why: "a driver implements the contract: it knows no controller, no store and no other driver; the VM driver speaks the guest's protocol (and unpacks OVA archives with the helper below every driver)"},
	{scope: "internal/runtime/nodevm/...", deps: []string{api, "internal/runtime", "internal/runtime/qemu/...", "internal/guest/...", "internal/extract", "internal/place"},
		why: "the node VM driver implements the contract on top of the VM driver, whose node VMs carry its containers, and places instances into them with the planner's pure fit rules; it knows no controller, no store and no other driver"},
	{scope: "internal/runtime/fake/...", deps: []string{api, "internal/runtime", "internal/runtime/imagetar", "internal/runtime/drivertest/script"},
		why: "the fake is a driver like the others, scripted in the driver suite's language"},
	{scope: "internal/netseg/...", except: []string{"internal/netseg/hostnet"}, deps: []string{api, diag, "internal/runtime", "internal/netseg/..."},
		why: "the network manager sits beside the drivers, below the controllers: it knows the API types, the driver contract's network types and the host"},
	{scope: "internal/netseg/hostnet/...", deps: []string{api, diag, "internal/runtime", "internal/store", "internal/objects", "internal/netseg/..."},
		why: "the controllers' network turns the segment model and the stored segments into the host's rules and names; it knows no controller"},
	{scope: "internal/control/...", deps: []string{api, diag, "internal/store", "internal/objects", "internal/runtime", "internal/scale", "internal/scaler", "internal/netseg/netstate", "internal/version"},
		why: "controllers act on the store and on drivers through the driver contract, never on a concrete driver and never through the API"},
	{scope: "internal/server/...", deps: []string{api, diag, load, inventory, osrelease, "internal/assess", "internal/store", "internal/objects", "internal/runtime"},
		why: "the API serves the store and admits through the assessor; it knows drivers only by their contract and never the controllers"},
	{scope: "internal/daemon/...", deps: daemonDeps,
		why: "the daemon wires the store, drivers, network, controllers and server; no client, CLI, cluster code, fake or test harness runs in it"},
	{scope: "internal/cli/...", deps: append(slices.Clone(daemonDeps), "internal/daemon", "internal/client",
		importer, "internal/importer/...", "internal/place", "internal/kube/render", "internal/kube/apply", "internal/kube/crd", "internal/kube/operator"),
		why: "the CLI is the binary: every command, the daemon and the operator, but no fake driver and no test harness"},
}

// TestLayers checks the real module's dependency closures against layers.
func TestLayers(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	g, loadErrs, err := listGraph(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range loadErrs {
		t.Logf("go list: %s (closures checked as far as they could be read)", e)
	}
	// A listing that came back without the client or without its
	// dependencies would check nothing.
	client, ok := g[module+"/internal/client"]
	if !ok || len(client.Imports) == 0 || len(g) < 100 {
		t.Fatalf("go list -deps found %d packages, internal/client among them: %v; is the test running inside %s?", len(g), ok, module)
	}
	for _, v := range checkLayers(g, layers) {
		t.Error(v)
	}
	t.Logf("checked the closures of the module's packages (%d packages in all) against %d layers", len(g), len(layers))
}

// synth builds an import graph from short names: "internal/x" and "api/x"
// are the module's, names with a dot in their first element belong to the
// longest of knownModules they start with (or are their own module), the
// rest are the standard library.
func synth(imports map[string][]string) graph {
	knownModules := []string{"go.etcd.io/bbolt", "github.com/google/cel-go", "k8s.io/apimachinery",
		"github.com/distribution/reference", "github.com/containerd/containerd"}
	full := func(p string) (string, string) {
		first, _, _ := strings.Cut(p, "/")
		switch {
		case first == "api" || first == "internal" || first == "cmd":
			return module + "/" + p, module
		case strings.Contains(first, "."):
			for _, m := range knownModules {
				if p == m || strings.HasPrefix(p, m+"/") {
					return p, m
				}
			}
			return p, p
		}
		return p, ""
	}
	g := graph{}
	add := func(p string) string {
		path, mod := full(p)
		if _, ok := g[path]; !ok {
			g[path] = node{Module: mod}
		}
		return path
	}
	for from, tos := range imports {
		path := add(from)
		n := g[path]
		for _, to := range tos {
			n.Imports = append(n.Imports, add(to))
		}
		g[path] = n
	}
	return g
}

// TestLayerCheckerCatchesViolations plants a violation of each layer in a
// made-up import graph and checks that the closure check reports it, with
// the path of imports that leads there.
func TestLayerCheckerCatchesViolations(t *testing.T) {
	tests := []struct {
		name    string
		imports map[string][]string
		want    []string // substrings of the violations, in order; none for a clean graph
	}{
		{"api imports nothing of ours",
			map[string][]string{"api/wire": {"api/v1alpha1", "internal/diag"}},
			[]string{"api/wire imports strata.dev/strata/internal/diag: api/... may depend, directly or not, only on api/..."}},
		{"api pulls in no module beyond its own few",
			map[string][]string{"api/v1alpha1": {"k8s.io/apimachinery/pkg/api/resource", "github.com/google/cel-go/cel", "fmt"}},
			[]string{"api/v1alpha1 imports github.com/google/cel-go/cel: the closure of api/... may import, outside this module, only the standard library and github.com/distribution/reference, k8s.io/apimachinery; github.com/google/cel-go/cel is in module github.com/google/cel-go"}},
		{"the client with its dependencies as they were",
			map[string][]string{
				"internal/client": {"api/wire", "internal/server", "net/http"},
				"internal/server": {"api/v1alpha1", "internal/assess", "internal/store", "internal/runtime"},
				"internal/assess": {"internal/inventory", "github.com/google/cel-go/cel"},
				"internal/store":  {"go.etcd.io/bbolt"},
				"api/v1alpha1":    {"k8s.io/apimachinery/pkg/api/resource"},
			},
			[]string{
				"internal/client depends on strata.dev/strata/internal/assess through internal/server: internal/client/... may depend, directly or not, only on api/...",
				"internal/client depends on strata.dev/strata/internal/inventory through internal/server -> internal/assess:",
				"internal/client depends on strata.dev/strata/internal/runtime through internal/server:",
				"internal/client imports strata.dev/strata/internal/server:",
				"internal/client depends on strata.dev/strata/internal/store through internal/server:",
				"internal/client depends on github.com/google/cel-go/cel through internal/server -> internal/assess: the closure of internal/client/... may import, outside this module, only",
				"internal/client depends on go.etcd.io/bbolt through internal/server -> internal/store:",
			}},
		{"the client on the API alone",
			map[string][]string{
				"internal/client":      {"api/wire", "api/v1alpha1", "internal/client/auth", "crypto/tls"},
				"internal/client/auth": {"net/http"},
				"api/wire":             {"api/v1alpha1"},
				"api/v1alpha1":         {"k8s.io/apimachinery/pkg/api/resource", "github.com/distribution/reference"},
				// What an allowed module imports is its own business.
				"k8s.io/apimachinery/pkg/api/resource": {"gopkg.in/inf.v0"},
			}, nil},
		{"the store knows nothing above it",
			map[string][]string{"internal/store": {"internal/objects", "go.etcd.io/bbolt"}},
			[]string{"internal/store imports strata.dev/strata/internal/objects: internal/store/... may depend on no package of this module, directly or not"}},
		{"the driver contract knows no store",
			map[string][]string{"internal/runtime": {"internal/store"}},
			[]string{"internal/runtime imports strata.dev/strata/internal/store: internal/runtime may depend"}},
		{"a controller does not import a concrete driver",
			map[string][]string{"internal/control": {"internal/runtime", "internal/runtime/containerd"}},
			[]string{"internal/control imports strata.dev/strata/internal/runtime/containerd: internal/control/... may depend"}},
		{"nor reach one through another package",
			map[string][]string{"internal/control": {"internal/scale"}, "internal/scale": {"internal/runtime/qemu"}},
			[]string{"internal/control depends on strata.dev/strata/internal/runtime/qemu through internal/scale: internal/control/... may depend"}},
		{"a driver does not import a controller",
			map[string][]string{"internal/runtime/qemu": {"internal/runtime", "internal/guest", "internal/control"}},
			[]string{"internal/runtime/qemu imports strata.dev/strata/internal/control: internal/runtime/qemu/... may depend"}},
		{"nor another driver",
			map[string][]string{"internal/runtime/containerd": {"internal/runtime/qemu"}},
			[]string{"internal/runtime/containerd imports strata.dev/strata/internal/runtime/qemu: internal/runtime/containerd/... may depend"}},
		{"the containerd test harness is not the driver",
			map[string][]string{"internal/runtime/containerd/ctrdtest": {"internal/runtime/containerd", "internal/testmain", "internal/testimage"}}, nil},
		{"the fake driver knows no store",
			map[string][]string{"internal/runtime/fake": {"internal/runtime", "internal/runtime/drivertest/script", "internal/store"}},
			[]string{"internal/runtime/fake imports strata.dev/strata/internal/store: internal/runtime/fake/... may depend"}},
		{"the network manager knows no driver",
			map[string][]string{"internal/netseg/dns": {"internal/netseg"}, "internal/netseg": {"internal/runtime/containerd"}},
			[]string{
				"internal/netseg imports strata.dev/strata/internal/runtime/containerd: internal/netseg/... may depend",
				"internal/netseg/dns depends on strata.dev/strata/internal/runtime/containerd through internal/netseg:",
			}},
		{"the API server knows no controller",
			map[string][]string{"internal/server": {"internal/control"}},
			[]string{"internal/server imports strata.dev/strata/internal/control: internal/server/... may depend"}},
		{"the daemon runs no client and no fake",
			map[string][]string{"internal/daemon": {"internal/client", "internal/runtime/fake", "internal/server"}},
			[]string{
				"internal/daemon imports strata.dev/strata/internal/client: internal/daemon/... may depend",
				"internal/daemon imports strata.dev/strata/internal/runtime/fake:",
			}},
		{"no test harness reaches the binary",
			map[string][]string{"internal/cli": {"internal/daemon"}, "internal/daemon": {"internal/testmain"}},
			[]string{
				"internal/cli depends on strata.dev/strata/internal/testmain through internal/daemon: internal/cli/... may depend",
				"internal/daemon imports strata.dev/strata/internal/testmain:",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkLayers(synth(tt.imports), layers)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(got), len(tt.want), lines(got))
			}
			for i, v := range got {
				if !strings.Contains(v.String(), tt.want[i]) {
					t.Errorf("violation %d = %q, want it to contain %q", i, v, tt.want[i])
				}
			}
		})
	}
}

// TestLayerCheckerOnAModule runs the real listing on a small module under
// testdata whose client reaches a store and its storage module through the
// server, as strata's client did, and checks that the closure check names
// each step.
func TestLayerCheckerOnAModule(t *testing.T) {
	g, loadErrs, err := listGraph(filepath.Join("testdata", "leaky"))
	if err != nil {
		t.Fatal(err)
	}
	if len(loadErrs) > 0 {
		t.Fatalf("go list: %s", strings.Join(loadErrs, "\n"))
	}
	want := []string{
		"internal/client imports strata.dev/strata/internal/server: internal/client/... may depend, directly or not, only on api/...",
		"internal/client depends on strata.dev/strata/internal/store through internal/server: internal/client/... may depend, directly or not, only on api/...",
		"internal/client depends on example.com/kvstore through internal/server -> internal/store: the closure of internal/client/... may import, outside this module, only the standard library and",
	}
	got := checkLayers(g, layers)
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d:\n%s", len(got), len(want), lines(got))
	}
	for i, v := range got {
		if !strings.Contains(v.String(), want[i]) {
			t.Errorf("violation %d = %q, want it to contain %q", i, v, want[i])
		}
	}
}

// TestLayersAreWellFormed catches typos in the layers: every pattern names
// a top-level directory the module uses, and every layer says why.
func TestLayersAreWellFormed(t *testing.T) {
	roots := []string{"api", "cmd", "deploy", "internal"}
	valid := func(p string) bool {
		top, _, _ := strings.Cut(p, "/")
		return slices.Contains(roots, top) && !strings.HasSuffix(p, "/") && !strings.Contains(p, "//")
	}
	for _, l := range layers {
		for _, p := range append(append([]string{l.scope}, l.except...), l.deps...) {
			if !valid(p) {
				t.Errorf("layer %s: pattern %q does not name a package of the module", l.scope, p)
			}
		}
		for _, m := range l.modules {
			if first, _, _ := strings.Cut(m, "/"); !strings.Contains(first, ".") {
				t.Errorf("layer %s: %q is not a module path", l.scope, m)
			}
		}
		if l.deps == nil {
			t.Errorf("layer %s allows everything; use nothing for no package of the module", l.scope)
		}
		if l.why == "" {
			t.Errorf("layer %s says not why", l.scope)
		}
	}
}
