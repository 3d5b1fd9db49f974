package cli

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/place"
)

// clock reads the time for summary.elapsedMs; tests replace it.
var clock = time.Now

func newPlan(s Streams) *cobra.Command {
	var (
		in           inputFlags
		fleetFile    string
		policy       string
		output       string
		explain      string
		budget       int
		failUnplaced bool
		forecast     int
		traces       []string
		traceFormat  string
		host         bool
	)
	cmd := &cobra.Command{
		Use:   "plan (-f FILE... --fleet FILE [--policy FILE] [--explain WORKLOAD] | --host) [-o table|json|yaml]",
		Short: "Plan the node VMs a fleet needs and where every replica runs, and explain why (--host: the daemon's own)",
		Long: `Plan places workloads on a fleet of hosts. vm replicas run as VMs on hosts; container and
sandbox replicas run inside node VMs that the plan creates from the fleet's nodeShapes, and a
node VM only ever holds replicas of one isolation class (placement.isolationClass, else
<tenant>/<trust>/<data>), so sensitive or untrusted workloads never share one with others.

Each workload runs at the tier assessment decides (see strata assess; --policy replaces the
built-in policy); an explicit spec.isolation is honoured. Every hard constraint holds:
capacity of hosts and node VMs with every overhead of the fleet, one class per node VM,
placement.spread (host or zone) and placement.hostSelector. The plan uses as few hosts as it
can, then as few node VMs, then balances the load; it reports a lower bound on the hosts any
plan needs, and the gap to it. Replicas that cannot be placed are listed with the constraint
that stops them and by how much.

Inputs are read like strata assess reads them (strata documents, Kubernetes manifests,
compose files, RVTools exports). --fleet names a file holding one Fleet.

--forecast DAYS with --trace [WORKLOAD=]FILE plans for growth: a forecasting model chosen by
backtest on the trace (seasonal naive or Holt-Winters, daily and weekly seasons; see strata
simulate) forecasts the demand over the next DAYS, and the workload gets the replicas its
peak needs at spec.scaling.targetCPUPercent of resources.cpu (at least spec.scaling.min).
The plan says how each was sized (the "forecast" list in JSON).

--explain WORKLOAD tells, for each replica of the workload, how it was placed, what moved it
afterwards, and why the other hosts were not chosen.

--host shows instead what the daemon runs now, in the same table and the same JSON or YAML
(a PlacementPlan of one host): its node VMs (shape, class, and in JSON each one's
utilization, what its replicas request of its shape) with the replicas inside them, and the
replicas that run on the host itself without a node VM (the vm tier's VMs, and containers
and sandboxes on the host's kernel). Replicas the workloads want that run nowhere are
unplaced, with the daemon's reason. It reads the daemon's node VMs, workloads and Host
(like strata get nodes) and takes no -f, --fleet or other planning flag.

Exit status: 0 when the plan was made (even with unplaced replicas, unless --fail-unplaced),
1 with --fail-unplaced when a replica is unplaced, 2 when an input is invalid.`,
		Example: `  # Plan the estate on the example fleet
  strata plan -f examples/estate --fleet examples/fleet/fleet.yaml

  # Why did the replicas of payments go where they did?
  strata plan -f examples/estate --fleet examples/fleet/fleet.yaml --explain payments

  # Size the workloads with spec.scaling for the next 30 days of forecast demand
  strata plan -f shop.yaml --fleet dc1.yaml --forecast 30 --trace storefront=cpu.csv

  # The plan as JSON, failing when something does not fit
  strata plan -f k8s/ -f vinfo.csv --fleet dc1.yaml -o json --fail-unplaced | jq .summary

  # What the daemon runs now: its node VMs and the replicas in them, and the host's own
  strata plan --host
  strata plan --host -o json | jq '.placements[] | select(.node != null)'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if host {
				return planHost(c, s, output, failUnplaced)
			}
			switch {
			case len(in.files) == 0:
				return fmt.Errorf("give at least one input with -f, or --host for what the daemon runs now")
			case fleetFile == "":
				return fmt.Errorf("give the fleet to plan on with --fleet FILE")
			case fleetFile == "-" && slices.Contains(in.files, "-"):
				return fmt.Errorf("only one of -f and --fleet can read standard input")
			}
			if err := checkPlanOutput(output); err != nil {
				return err
			}
			engine, errs := planEngine(policy, s)
			if len(errs) > 0 {
				return reportProblems(s.Err, errs)
			}
			fleet, errs := readFleet(fleetFile, s)
			if len(errs) > 0 {
				return reportProblems(s.Err, errs)
			}
			set, errs := importer.FilesWith(in.files, s.In, in.importerOptions())
			items, aerrs := assessItems(engine, set)
			errs = append(errs, aerrs...)
			if explain != "" && !slices.ContainsFunc(items, func(it place.Item) bool { return it.Workload.Metadata.Name == explain }) {
				errs = append(errs, &diag.Error{Msg: fmt.Sprintf("--explain %s: no workload of that name in the inputs", explain),
					Hint: "use a name that strata assess lists: " + someNames(items)})
				return reportProblems(s.Err, errs)
			}
			var sizing []v1alpha1.ForecastSizing
			if forecast != 0 || len(traces) > 0 {
				var ferrs diag.List
				sizing, ferrs = sizeForForecast(items, parseTraceArgs(traces), forecast, traceFormat)
				if len(ferrs) > 0 {
					return reportProblems(s.Err, append(errs, ferrs...))
				}
			}
			start := clock()
			res := place.Plan(place.Input{Workloads: items, Fleet: fleet}, place.Options{Budget: budget, Explain: explain})
			res.Plan.Summary.ElapsedMs = clock().Sub(start).Milliseconds()
			res.Plan.Forecast = sizing
			if err := printPlan(s.Out, res, output, false); err != nil {
				return err
			}
			if err := reportProblems(s.Err, errs); err != nil {
				return err
			}
			if n := len(res.Plan.Unplaced); failUnplaced && n > 0 {
				return failure(fmt.Errorf("%d %s could not be placed", n, plural(n, "replica", "replicas")))
			}
			return nil
		},
	}
	in.registerImporter(cmd, "input file or directory")
	cmd.Flags().StringVar(&fleetFile, "fleet", "", "file holding the Fleet to plan on (- for standard input)")
	cmd.Flags().StringVar(&policy, "policy", "", "AssessmentPolicy file to use instead of the built-in policy")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().BoolVar(&host, "host", false, "show the daemon's own placement now: its node VMs and their replicas, and the host's (no -f or --fleet)")
	cmd.Flags().StringVar(&explain, "explain", "", "explain where each replica of this workload went, and why")
	cmd.Flags().IntVar(&budget, "budget", 0, fmt.Sprintf("improvement steps after the first pass (0: %d; negative: none)", place.DefaultBudget))
	cmd.Flags().BoolVar(&failUnplaced, "fail-unplaced", false, "exit 1 when any replica cannot be placed")
	cmd.Flags().IntVar(&forecast, "forecast", 0, "size workloads for the forecast peak of their demand over this many days (needs --trace)")
	cmd.Flags().StringArrayVar(&traces, "trace", nil, "demand trace, [WORKLOAD=]FILE (repeatable); a bare FILE is for every workload with spec.scaling")
	cmd.Flags().StringVar(&traceFormat, "trace-format", "", "trace layout: csv, azure or alibaba (default: told from the content)")
	cmd.MarkFlagsMutuallyExclusive("host", "fleet")
	cmd.MarkFlagsMutuallyExclusive("host", "filename")
	for _, f := range []string{"policy", "explain", "budget", "forecast", "trace", "trace-format"} {
		cmd.MarkFlagsMutuallyExclusive("host", f)
	}
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// planHost prints the daemon's own placement (strata plan --host) in output.
func planHost(c *cobra.Command, s Streams, output string, failUnplaced bool) error {
	if err := checkPlanOutput(output); err != nil {
		return err
	}
	res, err := readHostPlacement(c)
	if err != nil {
		return err
	}
	if err := printPlan(s.Out, res, output, true); err != nil {
		return err
	}
	if n := len(res.Plan.Unplaced); failUnplaced && n > 0 {
		return failure(fmt.Errorf("%d %s nowhere", n, plural(n, "replica runs", "replicas run")))
	}
	return nil
}

func checkPlanOutput(output string) error {
	switch output {
	case "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, json or yaml", output)
}

// printPlan prints res in output: the plan as JSON or YAML, or the table for people (live:
// the daemon's current placement, which took no planning time).
func printPlan(w io.Writer, res *place.Result, output string, live bool) error {
	switch output {
	case "json":
		return writeJSON(w, res.Plan)
	case "yaml":
		b, err := yaml.Marshal(res.Plan)
		if err != nil {
			return failure(fmt.Errorf("write YAML: %w", err))
		}
		_, err = w.Write(b)
		return err
	}
	return writePlan(w, res, live)
}

// planEngine is the built-in assessment engine, or the one of --policy.
func planEngine(policy string, s Streams) (*assess.Engine, diag.List) {
	if policy == "" {
		return assess.Default(), nil
	}
	data, err := load.ReadInput(policy, s.In)
	if err != nil {
		return nil, diag.List{{File: policy, Msg: err.Error(), Hint: "check the file name"}}
	}
	return assess.LoadPolicy(policy, data)
}

// readFleet reads the file of --fleet, which must hold exactly one Fleet that the planner
// can use.
func readFleet(file string, s Streams) (*v1alpha1.Fleet, diag.List) {
	objs, errs := load.ReadFile(file, s.In)
	if len(errs) > 0 {
		return nil, errs
	}
	fleet, errs := load.One(file, objs, v1alpha1.KindFleet, "a fleet file holds one Fleet; give workloads with -f")
	if len(errs) > 0 {
		return nil, errs
	}
	f := fleet.Object.(*v1alpha1.Fleet)
	return f, fleet.FieldErrors(place.CheckFleet(f))
}

// assessItems decides the tier of every workload: the assessed tier for isolation auto, the
// requested one otherwise (Assess honours it).
func assessItems(engine *assess.Engine, set inventory.Set) ([]place.Item, diag.List) {
	items := make([]place.Item, 0, len(set.Items))
	var errs diag.List
	for i := range set.Items {
		it := &set.Items[i]
		d, err := engine.Assess(&it.Workload)
		if err != nil {
			errs = append(errs, &diag.Error{File: it.Source.File, Line: it.Source.Line, Msg: "workload " + it.Workload.Metadata.Name + ": " + err.Error(),
				Hint: "fix the rule, or guard the fields it reads with has()"})
			continue
		}
		items = append(items, place.Item{Workload: &it.Workload, Tier: d.Tier})
	}
	return items, errs
}

// someNames lists the first few workload names, for a hint.
func someNames(items []place.Item) string {
	if len(items) == 0 {
		return "the inputs hold no workload"
	}
	var names []string
	for _, it := range items[:min(len(items), 8)] {
		names = append(names, it.Workload.Metadata.Name)
	}
	if len(items) > 8 {
		names = append(names, fmt.Sprintf("and %d more", len(items)-8))
	}
	return strings.Join(names, ", ")
}

// maxHostRows is how many used hosts the table lists one by one; past it, it sums them up.
const maxHostRows = 40

// writePlan prints a plan for people: the summary, node VMs per shape and class, the load of
// the used hosts, the unplaced replicas with their reasons, and any explanation. live is
// for the daemon's current placement: no planning time, and the replicas on the host's
// kernel counted.
func writePlan(w io.Writer, res *place.Result, live bool) error {
	p := &res.Plan
	s := p.Summary
	gap := ""
	if s.LowerBound > 0 {
		gap = fmt.Sprintf(", gap %s", percent(s.Gap))
	}
	fmt.Fprintf(w, "Hosts:   %d used of %d (lower bound %d%s)\n", s.HostsUsed, s.HostsAvailable, s.LowerBound, gap)
	vms := 0
	for _, h := range p.Hosts {
		vms += h.VMs
	}
	fmt.Fprintf(w, "Runs:    %d node %s, %d %s", s.Nodes, plural(s.Nodes, "VM", "VMs"), vms, plural(vms, "VM", "VMs"))
	if live {
		kernel := 0
		for _, pl := range p.Placements {
			if pl.Node == "" && pl.Tier != v1alpha1.TierVM {
				kernel++
			}
		}
		fmt.Fprintf(w, ", %d %s on the host's kernel", kernel, plural(kernel, "replica", "replicas"))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Load:    %s CPU, %s memory of the used hosts\n", percent(s.Utilization.CPU), percent(s.Utilization.Memory))
	fmt.Fprintf(w, "Placed:  %d of %d %s", s.Placed, s.Replicas, plural(s.Replicas, "replica", "replicas"))
	if s.UnplacedCount > 0 {
		fmt.Fprintf(w, " (%d unplaced)", s.UnplacedCount)
	}
	if !live {
		fmt.Fprintf(w, " in %d ms", s.ElapsedMs)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(p.Forecast) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "SIZED FOR	DAYS	MODEL	PEAK (CORES)	SO FAR	PER REPLICA	REPLICAS	NOTE")
		for _, f := range p.Forecast {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%.2f\t%.2f\t%d\t%s\n", f.Workload, f.Days, f.Model, f.PeakCores, f.HistoryPeakCores, f.ReplicaCores, f.Replicas, f.Note)
		}
		if err := tw.Flush(); err != nil {
			return failure(err)
		}
	}
	if len(res.Stats.Shapes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "SHAPE\tCLASS\tNODE VMS\tCPU USED\tMEMORY USED")
		for _, u := range res.Stats.Shapes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", u.Shape, u.Class, u.Nodes, percent(u.Utilization.CPU), percent(u.Utilization.Memory))
		}
		if err := tw.Flush(); err != nil {
			return failure(err)
		}
	}
	if len(p.Hosts) > 0 {
		fmt.Fprintln(w)
		if len(p.Hosts) <= maxHostRows {
			fmt.Fprintln(tw, "HOST\tCPU\tMEMORY\tNODE VMS\tVMS")
			for _, h := range p.Hosts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", h.Name, percent(h.CPU), percent(h.Memory), h.Nodes, h.VMs)
			}
			if err := tw.Flush(); err != nil {
				return failure(err)
			}
		} else {
			fmt.Fprintf(w, "Host load (the larger of CPU and memory): %s (-o json lists every host)\n", loadSpread(p.Hosts))
		}
	}
	if len(p.Unplaced) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "UNPLACED\tREPLICA\tREASON")
		for _, u := range p.Unplaced {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", u.Workload, u.Replica, u.Reason)
		}
		if err := tw.Flush(); err != nil {
			return failure(err)
		}
	}
	for _, x := range p.Explanations {
		writeExplanation(w, x)
	}
	return nil
}

func writeExplanation(w io.Writer, x v1alpha1.ReplicaExplanation) {
	where := "unplaced"
	switch {
	case x.Node != "":
		where = x.Node + " on " + x.Host
	case x.Host != "":
		where = x.Host
	}
	fmt.Fprintf(w, "\n%s/%d (%s): %s\n", x.Workload, x.Replica, x.Tier, where)
	fmt.Fprintf(w, "  %s\n", x.Decision)
	for _, s := range x.Steps {
		fmt.Fprintf(w, "  then %s\n", s)
	}
	if len(x.Rejected) == 0 {
		return
	}
	fmt.Fprintln(w, "  not chosen:")
	for _, r := range x.Rejected {
		fmt.Fprintf(w, "    %s: %s\n", r.Host, r.Reason)
	}
	total := 0
	var counts []string
	for _, c := range x.RejectedCounts {
		total += c.Hosts
		counts = append(counts, fmt.Sprintf("%d %s", c.Hosts, c.Reason))
	}
	if more := total - len(x.Rejected); more > 0 {
		fmt.Fprintf(w, "    ... %d more; all %d: %s\n", more, total, strings.Join(counts, "; "))
	}
}

// percent prints a share as "81.2%".
func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/10, 'f', -1, 64) + "%"
}

// loadSpread sums up the used hosts' loads: lowest, median and highest.
func loadSpread(hosts []v1alpha1.HostUsage) string {
	loads := make([]float64, len(hosts))
	for i, h := range hosts {
		loads[i] = max(h.CPU, h.Memory)
	}
	slices.Sort(loads)
	return fmt.Sprintf("lowest %s, median %s, highest %s", percent(loads[0]), percent(loads[len(loads)/2]), percent(loads[len(loads)-1]))
}
