package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/kube/apply"
	"strata.dev/strata/internal/kube/render"
)

// kubeconfig is how a command reaches a Kubernetes cluster: a kubeconfig file and a namespace
// (the flag's, else the kubeconfig context's, else default).
func kubeconfig(path, namespace string) (*rest.Config, string, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w (check the file, or the current context in it)", path, err)
	}
	if namespace == "" {
		if namespace, _, err = loader.Namespace(); err != nil || namespace == "" {
			namespace = render.DefaultNamespace
		}
	}
	return cfg, namespace, nil
}

// kubeClient is a client of the cluster for unstructured objects, which is all that package
// apply uses.
func kubeClient(path, namespace string) (client.Client, string, error) {
	cfg, ns, err := kubeconfig(path, namespace)
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, "", fmt.Errorf("connect to the cluster of %s: %w", path, err)
	}
	return c, ns, nil
}

// violations are the workloads whose explicit isolation is weaker than the policy allows, as
// problems at their spec.isolation. The daemon refuses those without --force; so do export
// and apply to a cluster.
func (in exportInputs) violations(engine *assess.Engine) diag.List {
	var out diag.List
	for _, w := range in.docs.Workloads {
		def := w
		if err := copyJSON(&w, &def); err != nil {
			continue // render reports what cannot be read
		}
		def.SetDefaults()
		d, err := engine.Assess(&def)
		if err != nil {
			continue // render reports the rule that fails
		}
		o := in.sources[v1alpha1.KindWorkload+"/"+w.Metadata.Name]
		for _, v := range d.Violations {
			msg := fmt.Sprintf("workload %s: isolation %s is weaker than tier %s that rule %s requires: %s",
				w.Metadata.Name, def.Spec.Isolation, v.Tier, v.Rule, v.Message)
			hint := "remove spec.isolation, or give --force to run it as asked"
			if o == nil {
				out = append(out, &diag.Error{Path: "spec.isolation", Msg: msg, Hint: hint})
				continue
			}
			out = append(out, errorAt(o, "spec.isolation", hint, "%s", msg))
		}
	}
	return out
}

func copyJSON[T any](from, to *T) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	var c T
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	*to = c
	return nil
}

// kubeApplyFlags are the flags of strata apply that send documents to a cluster.
type kubeApplyFlags struct {
	kubeconfig, namespace, runtimeClass, set, policy string
	noPrune, wait, forceConflicts                    bool
	timeout                                          time.Duration
}

func (f *kubeApplyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "apply to the Kubernetes cluster of this kubeconfig file instead of the daemon")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "with --kubeconfig: namespace to apply to (default: the kubeconfig context's, else default)")
	fl.StringVar(&f.runtimeClass, "runtime-class", render.DefaultRuntimeClass, "with --kubeconfig: RuntimeClass (and handler) of sandbox-tier pods")
	fl.StringVar(&f.set, "set", "", "with --kubeconfig: name of the apply set that prune works within (default: the namespace)")
	fl.StringVar(&f.policy, "policy", "", "with --kubeconfig: AssessmentPolicy file to use instead of the built-in policy")
	fl.BoolVar(&f.noPrune, "no-prune", false, "with --kubeconfig: keep the set's objects that the documents no longer render")
	fl.BoolVar(&f.wait, "wait", false, "with --kubeconfig: wait until every workload is ready, showing progress on stderr")
	fl.BoolVar(&f.forceConflicts, "force-conflicts", false, "with --kubeconfig: take over fields that another field manager owns")
	fl.DurationVar(&f.timeout, "timeout", apply.DefaultTimeout, "with --kubeconfig --wait: how long to wait")
}

// onlyWithKubeconfig refuses the kube flags on the daemon path.
func (f *kubeApplyFlags) onlyWithKubeconfig(cmd *cobra.Command) error {
	for _, name := range []string{"namespace", "runtime-class", "set", "policy", "no-prune", "wait", "force-conflicts", "timeout"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s applies to a cluster: give --kubeconfig too", name)
		}
	}
	return nil
}

// applyToCluster renders the documents of files and applies them to the cluster of
// --kubeconfig: one line per object on stdout (created, configured, unchanged, pruned),
// render's notes and the wait's progress on stderr.
func applyToCluster(ctx context.Context, s Streams, files inputFlags, force bool, f kubeApplyFlags) error {
	engine, errs := planEngine(f.policy, s)
	if len(errs) > 0 {
		return reportProblems(s.Err, errs)
	}
	in, errs := readExportInputs(files, s)
	if len(errs) > 0 {
		return reportProblems(s.Err, errs)
	}
	if !force {
		if errs := in.violations(engine); len(errs) > 0 {
			return reportProblems(s.Err, errs)
		}
	}
	c, ns, err := kubeClient(f.kubeconfig, f.namespace)
	if err != nil {
		return failure(err)
	}
	res, err := render.Render(in.docs, render.Options{Namespace: ns, RuntimeClass: f.runtimeClass, Engine: engine})
	if err != nil {
		return reportProblems(s.Err, in.place(err))
	}
	for _, n := range res.Notes {
		fmt.Fprintln(s.Err, "note:", n)
	}
	out, err := apply.Apply(ctx, c, res.Objects, apply.Options{
		Namespace: ns, Set: f.set, Prune: !f.noPrune, ForceConflicts: f.forceConflicts,
		Wait: f.wait, Timeout: f.timeout, Progress: s.Err,
	})
	if out != nil {
		for _, ch := range out.Changes {
			fmt.Fprintln(s.Out, ch)
		}
	}
	if errors.Is(err, apply.ErrInvalid) {
		return err
	}
	if err != nil {
		return failure(err)
	}
	return nil
}

// getClusterWorkloads prints the workloads strata runs in a namespace of a cluster.
func getClusterWorkloads(ctx context.Context, s Streams, path, namespace, output string) error {
	if err := checkOutput(output); err != nil {
		return fmt.Errorf("with --kubeconfig: %w", err)
	}
	c, ns, err := kubeClient(path, namespace)
	if err != nil {
		return failure(err)
	}
	sts, err := apply.Status(ctx, c, ns)
	if err != nil {
		return failure(err)
	}
	items := make([]v1alpha1.Workload, len(sts))
	for i := range sts {
		items[i] = sts[i].Workload()
	}
	if output == "json" {
		return writeJSON(s.Out, map[string]any{"items": items})
	}
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTIER\tPHASE\tREADY\tKIND\tSTATUS\tAGE")
	for i, st := range sts {
		status := "-"
		if len(st.VMs) > 0 {
			var ps []string
			for _, vm := range st.VMs {
				ps = append(ps, dash(vm.PrintableStatus))
			}
			status = strings.Join(ps, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", st.Name, dash(string(st.Tier)), items[i].Status.Phase,
			st.ReadyReplicas, st.Replicas, st.Kind, status, age(items[i].Metadata.CreationTimestamp))
	}
	return tw.Flush()
}
