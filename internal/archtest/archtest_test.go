package archtest

import (
	"slices"
	"strings"
	"testing"
)

// Shorthands for the table below.
var (
	api        = "api/..."
	diag       = "internal/diag"
	load       = "internal/load"
	inventory  = "internal/inventory"
	osrelease  = "internal/osrelease"
	importer   = "internal/importer"
	cli        = "internal/cli/..."
	control    = "internal/control/..."
	server     = "internal/server/..."
	runtimePkg = "internal/runtime/..."
)

// rules is strata's import table, top of ARCHITECTURE.md's "What may import
// what" in code. Imports point down: API types import nothing of ours, the
// pure cores import only what describes their inputs, drivers never import
// controllers, and only cmd/... reaches the CLI. A package may always import
// its own subpackages. Test files are not checked. Packages that do not
// exist yet simply match nothing.
var rules = []rule{
	{scope: "api/...", only: []string{api},
		why: "API types are the bottom layer"},
	{scope: "internal/diag/...", only: nothing,
		why: "diagnostics are a leaf everyone uses"},
	{scope: "internal/load/...", only: []string{api, diag},
		why: "decoding knows the API types and how to report errors, nothing else"},
	{scope: "internal/inventory/...", only: []string{api, diag},
		why: "an inventory is API types with their sources, notes and warnings"},
	{scope: "internal/assess/...", only: []string{api, diag, inventory, load, osrelease, "internal/assess/..."},
		std: []string{"os/exec", "net", "net/http", "math/rand"},
		why: "the assessor is a pure function of its inputs"},
	{scope: "internal/place/...", only: []string{api, diag, inventory, load, osrelease, "internal/place/..."},
		std: []string{"os/exec", "net", "net/http", "math/rand"},
		why: "the planner is a pure function of its inputs"},
	{scope: "internal/scale/...", only: []string{api, diag},
		std: []string{"os/exec", "net", "net/http"},
		why: "forecasts and the simulator are pure functions of their inputs (seeded randomness included)"},
	{scope: "internal/scaler/...", only: []string{api, "internal/scale"},
		why: "the scaling loop is shared by the daemon and the operator: it knows the decision, and its hosts only by their interface"},
	{scope: "internal/kube/render/...", only: []string{api, "internal/assess"},
		why: "rendering is a pure function of the documents and the assessment"},
	{scope: "internal/kube/apply/...", only: []string{api, "internal/kube/render"},
		why: "applying to a cluster knows the rendered objects and the cluster, not the single host"},
	{scope: "internal/kube/crd/...", only: []string{api},
		why: "the custom resources wrap the API types and nothing else"},
	{scope: "internal/kube/operator/...", only: []string{api, "internal/assess", "internal/kube/apply", "internal/kube/crd", "internal/kube/render", "internal/scale", "internal/scaler"},
		why: "the operator runs in a cluster: it renders, applies and scales with the shared decision code, and knows nothing of the single-host daemon"},
	{scope: "internal/kube/netpol/...", only: nothing,
		why: "the NetworkPolicy evaluator knows Kubernetes' types only"},
	{scope: "internal/backup/repo/...", only: nothing,
		why: "the backup repository is a storage library: it knows files and objects, not workloads"},
	{scope: "internal/extract/...", only: nothing,
		why: "unpacking archives beneath a directory is a library: it knows files, not workloads"},
	{scope: "internal/kube/kubetest/...", only: []string{"deploy/crds", "internal/testmain"},
		why: "the test control plane installs the CRDs and knows nothing else of strata"},
	{scope: "internal/testmain/...", only: nothing,
		why: "running a test binary around a harness knows no strata package"},
	{scope: "deploy/...", only: nothing,
		why: "deploy holds manifests; its Go files only embed them"},
	{scope: "internal/snapshot/...", deny: []string{control, server, cli, "internal/client", "internal/daemon"},
		why: "snapshots work on the store and the drivers; the API calls them"},
	{scope: "internal/backup", deny: []string{control, server, cli, "internal/client", "internal/daemon"},
		why: "backups work on snapshots, the store and the repository; the API calls them"},
	{scope: "internal/importer", only: []string{api, diag, load, inventory, osrelease, "internal/importer/..."},
		why: "importers turn files into inventories and know nothing of what runs them"},
	{scope: "internal/importer/...", except: []string{importer},
		only: []string{api, diag, load, inventory, osrelease, importer},
		why:  "one importer does not reach into another; shared code lives in internal/importer"},
	{scope: "internal/runtime/...", deny: []string{control, server, cli},
		why: "drivers sit below the controllers"},
	{scope: "internal/guest/...", only: []string{"internal/guest/...", "internal/extract"},
		why: "the guest side runs inside VMs and shares only its own protocol with the host (and the archive unpacker, which needs nothing of strata, to put a saved layer into a container in a node VM)"},
	{scope: "internal/netseg/...", deny: []string{control, server, cli},
		why: "the network manager sits below the controllers"},
	{scope: "internal/store/...", deny: []string{control, runtimePkg, server, cli},
		why: "the store sits above controllers and drivers and knows neither"},
	{scope: "internal/osrelease/...", only: []string{api},
		why: "OS release knowledge is data about the API's traits"},
	{scope: "internal/objects/...", only: []string{api, "internal/store"},
		why: "objects only converts between API types and store records"},
	{scope: "internal/events/...", only: []string{api, "internal/objects", "internal/store"},
		why: "the recorder writes events to the store and knows nothing else"},
	{scope: "internal/control/...", deny: []string{server, "internal/client", "internal/daemon"},
		why: "controllers act on the store and the drivers, never through the API"},
	{scope: "internal/server/...", deny: []string{control, "internal/client", "internal/daemon", "internal/runtime/containerd", "internal/runtime/fake", "internal/runtime/qemu", "internal/runtime/nodevm"},
		why: "the API serves the store; it knows drivers only by their interface"},
	{scope: "internal/ui/...", only: []string{"internal/ui/..."},
		why: "the dashboard's page reads the API like any other client"},
	{scope: "internal/metrics/...", deny: []string{control, server, cli, "internal/client", "internal/daemon"},
		why: "metrics read the store and the drivers; the daemon wires them into the API and the controller"},
	{scope: "internal/client/...", only: []string{api},
		why: "the client speaks HTTP to the API and shares only its types"},
	{scope: "...", except: []string{"cmd/...", cli}, deny: []string{cli},
		why: "only cmd/... wires the CLI"},
}

// cmdLimit keeps cmd/... to wiring: package main, at most this many lines of
// code per package.
var cmdLimit = cmdRule{scope: "cmd/...", maxLOC: 60}

// TestImports checks the real module against the table.
func TestImports(t *testing.T) {
	pkgs, loadErrs, err := listPackages()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range loadErrs {
		t.Logf("go list: %s (imports checked as far as they could be read)", e)
	}
	// Guard against a listing that silently came back empty or from the
	// wrong place: the API package is always there.
	if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.Path == "api/v1alpha1" }) {
		t.Fatalf("go list found %d packages and not api/v1alpha1; is the test running inside %s?", len(pkgs), module)
	}
	for _, v := range check(pkgs, rules, cmdLimit) {
		t.Error(v)
	}
	t.Logf("checked %d packages against %d rules", len(pkgs), len(rules))
}

// TestCheckerCatchesViolations feeds the checker a made-up module so the
// real check cannot pass by checking nothing.
func TestCheckerCatchesViolations(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name string
		pkg  pkg
		want []string // substrings of the violations, in order; none for a clean package
	}{
		{"api imports nothing of ours",
			pkg{Path: "api/v1alpha1", Name: "v1alpha1", Imports: []string{"fmt", m("internal/diag")}},
			[]string{"api/v1alpha1 imports strata.dev/strata/internal/diag: api/... may import only api/..."}},
		{"api may import api",
			pkg{Path: "api/v1alpha1", Name: "v1alpha1", Imports: []string{m("api/v1alpha1/meta")}}, nil},
		{"diag is a leaf",
			pkg{Path: "internal/diag", Name: "diag", Imports: []string{m("api/v1alpha1")}},
			[]string{"internal/diag imports strata.dev/strata/api/v1alpha1: internal/diag/... may import no package"}},
		{"load uses api and diag",
			pkg{Path: "internal/load", Name: "load", Imports: []string{m("api/v1alpha1"), m("internal/diag"), "go.yaml.in/yaml/v3"}}, nil},
		{"load must not use inventory",
			pkg{Path: "internal/load", Name: "load", Imports: []string{m("internal/inventory")}},
			[]string{"internal/load imports strata.dev/strata/internal/inventory"}},
		{"inventory only api",
			pkg{Path: "internal/inventory", Name: "inventory", Imports: []string{m("internal/load")}},
			[]string{"internal/inventory imports strata.dev/strata/internal/load"}},
		{"assess stays pure",
			pkg{Path: "internal/assess", Name: "assess", Imports: []string{"os/exec", "net/http", "math/rand/v2", m("internal/osrelease"), m("internal/store")}},
			[]string{"imports os/exec", "imports net/http", "imports strata.dev/strata/internal/store"}},
		{"place must not import math/rand or the importers",
			pkg{Path: "internal/place/score", Name: "score", Imports: []string{"math/rand", m("internal/importer")}},
			[]string{"internal/place/score imports math/rand", "internal/place/score imports strata.dev/strata/internal/importer"}},
		{"importer parent dispatches to its subpackages",
			pkg{Path: "internal/importer", Name: "importer", Imports: []string{m("internal/importer/kube"), m("internal/inventory")}}, nil},
		{"importer subpackages do not import each other",
			pkg{Path: "internal/importer/kube", Name: "kube", Imports: []string{m("internal/importer/compose"), m("internal/importer"), m("internal/importer/kube/pods")}},
			[]string{"internal/importer/kube imports strata.dev/strata/internal/importer/compose"}},
		{"importers do not use assess",
			pkg{Path: "internal/importer/rvtools", Name: "rvtools", Imports: []string{m("internal/assess")}},
			[]string{"internal/importer/rvtools imports strata.dev/strata/internal/assess"}},
		{"drivers do not import controllers",
			pkg{Path: "internal/runtime/qemu", Name: "qemu", Imports: []string{m("internal/control"), m("internal/store")}},
			[]string{"internal/runtime/qemu imports strata.dev/strata/internal/control: internal/runtime/... must not import internal/control/..."}},
		{"network manager does not import the server",
			pkg{Path: "internal/netseg", Name: "netseg", Imports: []string{m("internal/server/auth")}},
			[]string{"internal/netseg imports strata.dev/strata/internal/server/auth"}},
		{"store does not import drivers",
			pkg{Path: "internal/store", Name: "store", Imports: []string{m("internal/runtime/fake"), m("api/v1alpha1")}},
			[]string{"internal/store imports strata.dev/strata/internal/runtime/fake"}},
		{"nobody but cmd imports the CLI",
			pkg{Path: "internal/server", Name: "server", Imports: []string{m("internal/cli")}},
			[]string{"internal/server imports strata.dev/strata/internal/cli: ... must not import internal/cli/..."}},
		{"cmd wires the CLI",
			pkg{Path: "cmd/strata", Name: "main", Imports: []string{m("internal/cli"), "os"}, LOC: 12}, nil},
		{"cmd is package main",
			pkg{Path: "cmd/strata", Name: "strata"},
			[]string{"cmd/strata: is package strata"}},
		{"cmd holds no logic",
			pkg{Path: "cmd/stratad", Name: "main", LOC: 61},
			[]string{"cmd/stratad: has 61 lines of code, more than 60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := check([]pkg{tt.pkg}, rules, cmdLimit)
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

// TestCheckerNamesPackageAndImport pins the shape of a report line, since
// that line is all a reader of a failing CI run sees.
func TestCheckerNamesPackageAndImport(t *testing.T) {
	got := check([]pkg{{Path: "internal/diag", Name: "diag", Imports: []string{module + "/internal/load"}}}, rules, cmdLimit)
	want := "internal/diag imports strata.dev/strata/internal/load: internal/diag/... may import no package of this module (diagnostics are a leaf everyone uses)"
	if len(got) != 1 || got[0].String() != want {
		t.Fatalf("got %q\nwant %q", lines(got), want)
	}
}

// TestMatch covers the pattern syntax the table uses.
func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"internal/diag", "internal/diag", true},
		{"internal/diag", "internal/diagx", false},
		{"internal/diag", "internal/diag/sub", false},
		{"internal/runtime/...", "internal/runtime", true},
		{"internal/runtime/...", "internal/runtime/qemu", true},
		{"internal/runtime/...", "internal/runtimes", false},
		{"...", "cmd/strata", true},
		{"api/...", "apis/v1", false},
	}
	for _, tt := range tests {
		if got := match(tt.pattern, tt.path); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

// TestRulesAreWellFormed catches typos in the table: every pattern names a
// top-level directory the module uses, and every rule restricts something.
func TestRulesAreWellFormed(t *testing.T) {
	roots := []string{"api", "cmd", "deploy", "internal"}
	valid := func(p string) bool {
		if p == "..." {
			return true
		}
		top, _, _ := strings.Cut(p, "/")
		return slices.Contains(roots, top) && !strings.HasSuffix(p, "/") && !strings.Contains(p, "//")
	}
	for _, r := range rules {
		pats := append(append(append([]string{r.scope}, r.except...), r.only...), r.deny...)
		for _, p := range pats {
			if !valid(p) {
				t.Errorf("rule for %s: pattern %q does not name a package of the module", r.scope, p)
			}
		}
		if r.only == nil && len(r.deny) == 0 && len(r.std) == 0 {
			t.Errorf("rule for %s restricts nothing", r.scope)
		}
		if r.why == "" {
			t.Errorf("rule for %s says not why", r.scope)
		}
	}
}

func lines(vs []violation) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.String())
		b.WriteByte('\n')
	}
	return b.String()
}
