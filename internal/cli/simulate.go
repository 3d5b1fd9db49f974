package cli

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/scale"
)

func newSimulate(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "simulate (scaling|trace)",
		Short: "Replay demand traces through scaling policies, or make synthetic traces",
		Long: `Simulate compares ways of scaling a workload on a demand trace (simulate scaling), and
makes realistic synthetic traces to try them on (simulate trace). See docs/scaling.md.`,
		Example: `  strata simulate trace --days 14 --seed 1 -o demand.csv
  strata simulate scaling -f web.yaml --trace demand.csv --plot scaling.svg`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newSimulateScaling(s), newSimulateTrace(s))
	return cmd
}

type scalingFlags struct {
	file, traceFile, format, output, plot, policy, workload, selectID string
	cores                                                             float64
	startup                                                           map[string]string
}

func newSimulateScaling(s Streams) *cobra.Command {
	var f scalingFlags
	cmd := &cobra.Command{
		Use:   "scaling -f WORKLOAD.yaml --trace FILE [--format csv|azure|alibaba] [-o table|json] [--plot FILE.svg]",
		Short: "Replay a demand trace through reactive, predictive and oracle scaling",
		Long: `Scaling replays a CPU demand trace (cores per interval) through three policies and reports,
for each, the slack (ready capacity demand did not need, in percent of the capacity), the
shortage (the share of time demand exceeded the ready capacity) and the replica-hours used:

  reactive    the Kubernetes HPA algorithm on CPU utilization (10% tolerance, 300 s
              scale-down stabilization)
  predictive  a seasonal forecast of demand (chosen each day among seasonal naive and
              Holt-Winters models by backtest), provisioning ahead by the tier's lead time,
              with a reactive floor
  oracle      knows the future: exactly the replicas each interval needs, started early

One replica's capacity is its CPU request (spec.resources.cpu) at spec.scaling's
targetCPUPercent (70 by default); spec.scaling's min and max bound the replicas (1 and
10000 without spec.scaling). The workload's tier is decided by assessment, as strata assess
decides it (--policy replaces the built-in policy), and sets how long a new replica takes
to become ready: measured start-up plus a 10 s readiness delay (--startup overrides it).

Trace formats (--format, told from the number of columns when not given):
  csv      timestamp,cpu   RFC 3339 or unix seconds, cores; a header line is optional
  azure    Azure Public Dataset vm_cpu_readings: timestamp,vmid,min_cpu,max_cpu,avg_cpu
           (percent of a VM: give the VM's cores with --cores)
  alibaba  Alibaba cluster trace machine_usage: machine_id,time_stamp,cpu_util_percent,...
           (percent of a machine: give its cores with --cores)
Several VMs or machines in one file are summed; --select keeps one.

Exit status: 0 when the simulation ran, 2 when an input is invalid, 1 when writing fails.`,
		Example: `  # Make two weeks of demand and replay it for a workload
  strata simulate trace --days 14 --seed 1 -o demand.csv
  strata simulate scaling -f web.yaml --trace demand.csv

  # As JSON, with a plot of demand and each policy's capacity
  strata simulate scaling -f web.yaml --trace demand.csv -o json --plot scaling.svg

  # One VM of the Azure dataset, 4 cores
  strata simulate scaling -f legacy.yaml --trace vm_cpu_readings-file-1-of-195.csv \
      --format azure --cores 4 --select <vmid>`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runSimulateScaling(s, &f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "filename", "f", "", "file holding the workload (- for standard input)")
	fl.StringVar(&f.workload, "workload", "", "the workload to simulate when the file holds several")
	fl.StringVar(&f.traceFile, "trace", "", "demand trace file (- for standard input)")
	fl.StringVar(&f.format, "format", "", "trace format: csv, azure or alibaba (default: told from the columns)")
	fl.Float64Var(&f.cores, "cores", 0, "cores of one VM (azure) or machine (alibaba), to turn percent into cores")
	fl.StringVar(&f.selectID, "select", "", "keep one VM (azure vmid) or machine (alibaba machine_id) of the trace")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fl.StringVar(&f.plot, "plot", "", "write an SVG plot of demand and each policy's capacity to this file")
	fl.StringVar(&f.policy, "policy", "", "AssessmentPolicy file to use instead of the built-in policy")
	fl.StringToStringVar(&f.startup, "startup", nil, "start-up time of a tier, such as vm=45s (repeatable)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"csv", "azure", "alibaba"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runSimulateScaling(s Streams, f *scalingFlags) error {
	switch {
	case f.file == "":
		return fmt.Errorf("give the workload with -f FILE")
	case f.traceFile == "":
		return fmt.Errorf("give the demand trace with --trace FILE")
	case f.file == "-" && f.traceFile == "-":
		return fmt.Errorf("only one of -f and --trace can read standard input")
	case f.output != "table" && f.output != "json":
		return fmt.Errorf("unknown output format %q: use table or json", f.output)
	}
	format := scale.Format(f.format)
	if format != scale.FormatAuto && !containsFormat(format) {
		return fmt.Errorf("unknown trace format %q: use csv, azure or alibaba", f.format)
	}
	startup, err := parseStartup(f.startup)
	if err != nil {
		return err
	}
	item, errs := simulatedWorkload(s, f)
	if len(errs) > 0 {
		return reportProblems(s.Err, errs)
	}
	data, err := load.ReadInput(f.traceFile, s.In)
	if err != nil {
		return reportProblems(s.Err, diag.List{{File: f.traceFile, Msg: err.Error(), Hint: "check the file name"}})
	}
	tr, errs := scale.ReadTrace(f.traceFile, bytes.NewReader(data), scale.ReadOptions{Format: format, Cores: f.cores, Select: f.selectID})
	if len(errs) > 0 {
		return reportProblems(s.Err, errs)
	}
	w := item.Workload
	policy := scale.PolicyFor(w.Spec.Scaling)
	rep, err := scale.Simulate(scale.SimInput{Trace: tr, Policy: policy, Tier: item.Tier, Startup: startup,
		ReplicaCPU: w.Spec.Resources.CPU.AsApproximateFloat64()})
	if err != nil {
		return failure(fmt.Errorf("simulate %s: %w", w.Metadata.Name, err))
	}
	if f.plot != "" {
		if err := writePlot(f.plot, tr, rep); err != nil {
			return err
		}
	}
	if f.output == "json" {
		return writeJSON(s.Out, struct {
			Policies []scale.Result `json:"policies"`
		}{rep.Policies})
	}
	return writeSimulation(s.Out, w, item.Tier, policy, tr, rep)
}

func containsFormat(f scale.Format) bool {
	for _, ok := range scale.Formats {
		if f == ok {
			return true
		}
	}
	return false
}

// parseStartup reads --startup tier=duration pairs.
func parseStartup(flags map[string]string) (map[v1alpha1.Tier]time.Duration, error) {
	out := map[v1alpha1.Tier]time.Duration{}
	for tier, v := range flags {
		if !v1alpha1.Tier(tier).Valid() {
			return nil, fmt.Errorf("--startup %s=%s: unknown tier %q: use container, sandbox or vm", tier, v, tier)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--startup %s=%s: give a duration such as 45s", tier, v)
		}
		out[v1alpha1.Tier(tier)] = d
	}
	return out, nil
}

// simulatedWorkload reads the workload file and assesses the one workload to simulate.
func simulatedWorkload(s Streams, f *scalingFlags) (place.Item, diag.List) {
	engine, errs := planEngine(f.policy, s)
	if len(errs) > 0 {
		return place.Item{}, errs
	}
	set, errs := importer.Files([]string{f.file}, s.In)
	if len(errs) > 0 {
		return place.Item{}, errs
	}
	items, errs := assessItems(engine, set)
	if len(errs) > 0 {
		return place.Item{}, errs
	}
	switch {
	case len(items) == 0:
		return place.Item{}, diag.List{{File: f.file, Msg: "no workload found", Hint: "give a file holding a Workload (or a manifest strata assess reads)"}}
	case f.workload != "":
		for _, it := range items {
			if it.Workload.Metadata.Name == f.workload {
				return it, nil
			}
		}
		return place.Item{}, diag.List{{File: f.file, Msg: fmt.Sprintf("--workload %s: no workload of that name", f.workload), Hint: "use one of " + someNames(items)}}
	case len(items) > 1:
		return place.Item{}, diag.List{{File: f.file, Msg: fmt.Sprintf("%d workloads found", len(items)), Hint: "choose one with --workload: " + someNames(items)}}
	}
	return items[0], nil
}

func writePlot(file string, tr *scale.Trace, rep *scale.Report) error {
	var buf bytes.Buffer
	if err := scale.PlotSVG(&buf, tr, rep.Policies); err != nil {
		return failure(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil { //nolint:gosec // a plot for people to open, not a secret
		return failure(fmt.Errorf("write the plot: %w", err))
	}
	return nil
}

// writeSimulation prints the simulation for people: what was simulated, then a line per policy.
func writeSimulation(w io.Writer, wl *v1alpha1.Workload, tier v1alpha1.Tier, p scale.Policy, tr *scale.Trace, rep *scale.Report) error {
	fmt.Fprintf(w, "Workload: %s (%s tier: a replica is ready %s after it starts; predictive lead %s)\n",
		wl.Metadata.Name, tier, rep.Startup, rep.Lead)
	bounds := fmt.Sprintf("%d..%d replicas", p.Min, p.Max)
	if wl.Spec.Scaling == nil {
		bounds += " (no spec.scaling: defaults)"
	}
	fmt.Fprintf(w, "Replica:  %s CPU at %d%% = %s cores; %s\n", wl.Spec.Resources.CPU.String(), p.TargetCPUPercent, trimNumber(rep.PerReplica), bounds)
	fmt.Fprintf(w, "Trace:    %d intervals of %s from %s (%s)\n\n", len(tr.CPU), tr.Step, tr.Start.UTC().Format(time.RFC3339), days(tr.Duration()))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tSLACK\tSHORTAGE\tREPLICA-HOURS\tMODEL")
	for _, r := range rep.Policies {
		fmt.Fprintf(tw, "%s\t%s%%\t%s%%\t%s\t%s\n", r.Name, fixed(r.SlackPercent, 1), fixed(r.ShortagePercent, 2), fixed(r.ReplicaHours, 1), r.Model)
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}
	return nil
}

func fixed(v float64, digits int) string { return fmt.Sprintf("%.*f", digits, v) }

func trimNumber(v float64) string { return fmt.Sprint(math.Round(v*1000) / 1000) }

// days prints a duration in days when it is whole days.
func days(d time.Duration) string {
	if d%scale.Day == 0 {
		n := int(d / scale.Day)
		return fmt.Sprintf("%d %s", n, plural(n, "day", "days"))
	}
	return d.String()
}

func newSimulateTrace(s Streams) *cobra.Command {
	var (
		nDays  int
		seed   int64
		step   time.Duration
		output string
		base   float64
	)
	cmd := &cobra.Command{
		Use:   "trace --days N --seed S [--step 5m] [-o FILE]",
		Short: "Make a realistic synthetic demand trace (CSV)",
		Long: `Trace makes a synthetic CPU demand trace in the csv format (timestamp,cpu in cores): a daily
cycle peaking in the afternoon, quieter weekends, autocorrelated noise, a few unannounced
bursts a week and slow growth, starting on Monday 2024-01-01 00:00 UTC. The same seed
always gives the same trace.`,
		Example: `  strata simulate trace --days 14 --seed 1 > demand.csv
  strata simulate trace --days 28 --seed 7 --step 1m --base 120 -o busy.csv`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch {
			case nDays < 1 || nDays > 3660:
				return fmt.Errorf("--days %d: give between 1 and 3660 days", nDays)
			case step < time.Second || step > scale.Day:
				return fmt.Errorf("--step %v: give a step between 1s and 24h, such as 5m", step)
			case !(base > 0):
				return fmt.Errorf("--base %v: give the mean demand in cores, such as 20", base)
			}
			tr := scale.Synthetic(nDays, step, seed, scale.SynthOptions{Base: base})
			if output == "" || output == "-" {
				if err := tr.WriteCSV(s.Out); err != nil {
					return failure(err)
				}
				return nil
			}
			var buf bytes.Buffer
			if err := tr.WriteCSV(&buf); err != nil {
				return failure(err)
			}
			if err := os.WriteFile(output, buf.Bytes(), 0o644); err != nil { //nolint:gosec // a trace for people and tools to read
				return failure(fmt.Errorf("write the trace: %w", err))
			}
			fmt.Fprintf(s.Err, "wrote %d intervals of %s to %s\n", len(tr.CPU), strings.TrimSuffix(step.String(), "0s"), output)
			return nil
		},
	}
	cmd.Flags().IntVar(&nDays, "days", 14, "days of demand")
	cmd.Flags().Int64Var(&seed, "seed", 1, "random seed: the same seed gives the same trace")
	cmd.Flags().DurationVar(&step, "step", 5*time.Minute, "interval between points")
	cmd.Flags().Float64Var(&base, "base", 20, "mean weekday demand, in cores")
	cmd.Flags().StringVarP(&output, "output", "o", "-", "file to write (- for standard output)")
	return cmd
}
