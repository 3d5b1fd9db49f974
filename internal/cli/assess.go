package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/load"
)

func newAssess(s Streams) *cobra.Command {
	var (
		in     inputFlags
		policy string
		output string
	)
	cmd := &cobra.Command{
		Use:   "assess -f FILE... [--policy FILE] [-o table|json|yaml]",
		Short: "Decide each workload's isolation tier, and explain why",
		Long: `Assess reads workloads from what you have and decides, for each one, the isolation tier
it needs: container < sandbox (gVisor) < vm. Every rule of the policy that matches a
workload sets a floor; the decision is the strongest floor, and each matching rule is
given as a reason. An explicit spec.isolation weaker than a floor is a violation.

Inputs, told apart by their content:
  strata documents     kind: Workload (apiVersion strata.dev/v1alpha1)
  Kubernetes manifests Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob
                       (other kinds are skipped and counted)
  compose files        a services: mapping
  RVTools exports      the vInfo sheet saved as CSV (one VM per row)

A directory stands for the .yaml, .yml, .json and .csv files in it; -R also reads the
directories below it. An empty input, and a Helm chart template (render it with helm
template first), are errors.

The built-in policy is printed by --show-policy; --policy FILE replaces it.

Exit status: 0 when every input was read, 2 when any input or the policy is invalid
(the readable part is still assessed and printed).`,
		Example: `  strata assess -f k8s/ -f docker-compose.yaml -f vinfo.csv
  strata assess -f app.yaml -o json | jq '.items[] | {name, tier}'
  strata assess -f app.yaml --policy strict-policy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if show, _ := c.Flags().GetBool("show-policy"); show {
				_, err := s.Out.Write(assess.DefaultPolicy())
				return err
			}
			if len(in.files) == 0 {
				return fmt.Errorf("give at least one input with -f")
			}
			switch output {
			case "table", "json", "yaml":
			default:
				return fmt.Errorf("unknown output format %q: use table, json or yaml", output)
			}
			engine := assess.Default()
			if policy != "" {
				data, err := load.ReadInput(policy, s.In)
				if err != nil {
					return reportProblems(s.Err, diag.List{{File: policy, Msg: err.Error(), Hint: "check the file name"}})
				}
				var errs diag.List
				if engine, errs = assess.LoadPolicy(policy, data); len(errs) > 0 {
					return reportProblems(s.Err, errs)
				}
			}
			set, errs := importer.FilesWith(in.files, s.In, in.importerOptions())
			report, aerrs := engine.Report(set)
			errs = append(errs, aerrs...)
			if err := printReport(s.Out, report, output); err != nil {
				return err
			}
			for _, w := range set.Warnings {
				fmt.Fprintln(s.Err, "warning:", w.Error())
			}
			return reportProblems(s.Err, errs)
		},
	}
	in.registerImporter(cmd, "input file or directory")
	cmd.Flags().StringVar(&policy, "policy", "", "AssessmentPolicy file to use instead of the built-in policy")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().Bool("show-policy", false, "print the built-in policy and exit")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func printReport(w io.Writer, r *v1alpha1.AssessmentReport, output string) error {
	switch output {
	case "json":
		return writeJSON(w, r)
	case "yaml":
		b, err := yaml.Marshal(r)
		if err != nil {
			return failure(fmt.Errorf("write YAML: %w", err))
		}
		_, err = w.Write(b)
		return err
	}
	return writeTable(w, r)
}

// writeTable prints one line per workload: the deciding reasons (those whose floor is the
// decided tier) and any violation, then a summary line.
func writeTable(w io.Writer, r *v1alpha1.AssessmentReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tTIER\tREQUESTED\tRUNS ON\tWHY")
	violations, inNodeVMs := 0, 0
	var warnings []string
	for _, it := range r.Items {
		why := deciding(it)
		if len(it.Violations) > 0 {
			violations += len(it.Violations)
			why = "VIOLATION: " + it.Violations[0].Message
		}
		if nv := it.NodeVM; nv != nil {
			if nv.Run {
				inNodeVMs++
			}
			if nv.Warning != "" {
				warnings = append(warnings, it.Name+": "+nv.Warning)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Name, sourceLabel(it.Source), it.Tier, it.Requested, runsOn(it), why)
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w)
	}
	for _, wn := range warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	fmt.Fprintf(w, "\n%d %s: %d container, %d sandbox, %d vm",
		len(r.Items), plural(len(r.Items), "workload", "workloads"), r.Summary.Container, r.Summary.Sandbox, r.Summary.VM)
	fmt.Fprintf(w, "; %d in node VMs", inNodeVMs)
	if n := len(r.Skipped); n > 0 {
		fmt.Fprintf(w, "; %d skipped (%s)", n, skippedKinds(r.Skipped))
	}
	if violations > 0 {
		fmt.Fprintf(w, "; %d %s", violations, plural(violations, "violation", "violations"))
	}
	fmt.Fprintln(w)
	return nil
}

// runsOn is the RUNS ON column: "node VM" (with why), "host", or "own VM" for the vm tier.
func runsOn(it v1alpha1.AssessmentItem) string {
	switch nv := it.NodeVM; {
	case nv == nil:
		return "-"
	case nv.Run:
		return "node VM"
	case nv.Class == "":
		return "own VM"
	}
	return "host"
}

func deciding(it v1alpha1.AssessmentItem) string {
	var rules []string
	msg := ""
	for _, r := range it.Reasons {
		if r.Tier == it.Tier {
			rules = append(rules, r.Rule)
			if msg == "" {
				msg = r.Message
			}
		}
	}
	if len(rules) == 0 {
		if it.Requested != v1alpha1.IsolationAuto {
			return "requested"
		}
		return "no rule asks for more"
	}
	return strings.Join(rules, ", ") + ": " + msg
}

func sourceLabel(src v1alpha1.Source) string {
	kind := string(src.Format)
	if src.Kind != "" {
		kind += " " + src.Kind
	}
	return fmt.Sprintf("%s:%d (%s)", src.File, src.Line, kind)
}

func skippedKinds(skipped []v1alpha1.SkippedObject) string {
	counts := map[string]int{}
	var order []string
	for _, s := range skipped {
		if counts[s.Source.Kind] == 0 {
			order = append(order, s.Source.Kind)
		}
		counts[s.Source.Kind]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return strings.Join(parts, ", ")
}
