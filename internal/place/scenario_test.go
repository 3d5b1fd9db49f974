package place_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/place"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the want sections of the scenario files")

// A scenario file (testdata/scenarios/*.txt) holds a small planning problem and what the
// planner makes of it, in sections that start with a line "-- name --":
//
//	-- fleet --       a Fleet document
//	-- workloads --   Workload documents, each with an explicit spec.isolation
//	-- optimum --     worked out by hand: "hosts: N" and optionally "nodes: N"; the plan must
//	                  reach it and the lower bound must not pass it. "hosts: N, planner M"
//	                  records a known gap: the planner uses M.
//	-- explain --     optional: a workload to explain
//	-- want --        the plan, one line per used host, then unplaced replicas with their
//	                  reasons (rewritten by go test -rewrite)
//
// Text before the first section describes the scenario.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			head, secs := sections(string(data))
			in := scenarioInput(t, file, secs)
			res := place.Plan(in, place.Options{Explain: strings.TrimSpace(secs["explain"])})
			for _, e := range check(in, &res.Plan) {
				t.Error(e)
			}
			got := describe(&res.Plan)
			if opt := strings.TrimSpace(secs["optimum"]); opt != "" {
				checkOptimum(t, opt, &res.Plan)
			}
			if *rewrite {
				if err := os.WriteFile(file, []byte(assemble(head, secs, got)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := secs["want"]; got != want {
				t.Errorf("the plan differs (go test ./internal/place -run TestScenarios -rewrite, then review the diff)\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

var order = []string{"fleet", "workloads", "optimum", "explain", "want"}

func sections(s string) (head string, secs map[string]string) {
	secs = map[string]string{}
	cur := ""
	var b strings.Builder
	flush := func() {
		if cur == "" {
			head = b.String()
		} else {
			secs[cur] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(t, "-- "), " --")
			continue
		}
		b.WriteString(line)
	}
	flush()
	return head, secs
}

func assemble(head string, secs map[string]string, want string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, name := range order {
		body, ok := secs[name]
		if name == "want" {
			body, ok = want, true
		}
		if ok {
			b.WriteString("-- " + name + " --\n" + body)
		}
	}
	return b.String()
}

func scenarioInput(t *testing.T, file string, secs map[string]string) place.Input {
	t.Helper()
	var in place.Input
	objs, errs := load.File(file+"#fleet", []byte(secs["fleet"]))
	wobjs, werrs := load.File(file+"#workloads", []byte(secs["workloads"]))
	if errs = append(errs, werrs...); len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, o := range append(objs, wobjs...) {
		switch v := o.Object.(type) {
		case *v1alpha1.Fleet:
			in.Fleet = v
		case *v1alpha1.Workload:
			tier, ok := v.Spec.Isolation.Tier()
			if !ok {
				t.Fatalf("workload %s: give spec.isolation a tier", v.Metadata.Name)
			}
			in.Workloads = append(in.Workloads, place.Item{Workload: v, Tier: tier})
		}
	}
	if in.Fleet == nil {
		t.Fatal("no Fleet in the fleet section")
	}
	if errs := place.CheckFleet(in.Fleet); len(errs) > 0 {
		t.Fatal(errs)
	}
	return in
}

// describe prints a plan compactly: a summary line, a line per used host (its VMs, and its
// node VMs with their replicas), the unplaced replicas and any explanations.
func describe(plan *v1alpha1.PlacementPlan) string {
	var b bytes.Buffer
	s := plan.Summary
	fmt.Fprintf(&b, "hosts %d (lower bound %d), node VMs %d, placed %d of %d\n", s.HostsUsed, s.LowerBound, s.Nodes, s.Placed, s.Replicas)
	type nodeLine struct {
		n    v1alpha1.PlannedNode
		reps []string
	}
	nodes := map[string]*nodeLine{}
	var hostOrder []string
	perHost := map[string][]string{}
	for _, h := range plan.Hosts {
		hostOrder = append(hostOrder, h.Name)
	}
	for _, n := range plan.Nodes {
		nodes[n.Name] = &nodeLine{n: n}
	}
	for _, pl := range plan.Placements {
		name := pl.Workload + "/" + strconv.Itoa(int(pl.Replica))
		if pl.Node != "" {
			nodes[pl.Node].reps = append(nodes[pl.Node].reps, name)
			continue
		}
		perHost[pl.Host] = append(perHost[pl.Host], "vm "+name)
	}
	for _, n := range plan.Nodes {
		nl := nodes[n.Name]
		perHost[n.Host] = append(perHost[n.Host], fmt.Sprintf("%s %s [%s] {%s}", n.Name, n.Shape, n.Class, strings.Join(nl.reps, " ")))
	}
	for _, h := range hostOrder {
		slices.Sort(perHost[h])
		fmt.Fprintf(&b, "%s: %s\n", h, strings.Join(perHost[h], "; "))
	}
	for _, u := range plan.Unplaced {
		fmt.Fprintf(&b, "unplaced %s/%d: %s\n", u.Workload, u.Replica, u.Reason)
	}
	for _, x := range plan.Explanations {
		fmt.Fprintf(&b, "explain %s/%d: %s\n", x.Workload, x.Replica, x.Decision)
		for _, s := range x.Steps {
			fmt.Fprintf(&b, "  then %s\n", s)
		}
		for _, r := range x.Rejected {
			fmt.Fprintf(&b, "  not %s: %s\n", r.Host, r.Reason)
		}
	}
	return b.String()
}

func checkOptimum(t *testing.T, spec string, plan *v1alpha1.PlacementPlan) {
	t.Helper()
	for _, line := range strings.Split(spec, "\n") {
		key, val, _ := strings.Cut(line, ":")
		val, planner, gap := strings.Cut(strings.TrimSpace(val), ", planner ")
		want, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil {
			t.Fatalf("optimum line %q: %v", line, err)
		}
		switch strings.TrimSpace(key) {
		case "hosts":
			if plan.Summary.LowerBound > want {
				t.Errorf("lower bound %d is above the optimum %d hosts", plan.Summary.LowerBound, want)
			}
			if gap {
				m, _ := strconv.Atoi(planner)
				if plan.Summary.HostsUsed != m {
					t.Errorf("the planner used %d hosts; the scenario records %d (optimum %d)", plan.Summary.HostsUsed, m, want)
				}
			} else if plan.Summary.HostsUsed != want {
				t.Errorf("the plan uses %d hosts, the optimum is %d", plan.Summary.HostsUsed, want)
			}
		case "nodes":
			if plan.Summary.Nodes != want {
				t.Errorf("the plan has %d node VMs, the optimum is %d", plan.Summary.Nodes, want)
			}
		default:
			t.Fatalf("optimum line %q: use hosts: or nodes:", line)
		}
	}
}
