package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/importer/convert"
)

func newApply(s Streams) *cobra.Command {
	var (
		inputs inputFlags
		force  bool
		kube   kubeApplyFlags
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE... [--kubeconfig PATH [--namespace NS] [--wait]]",
		Short: "Create or update workloads and segments in the daemon",
		Long: `Apply sends strata documents (Workload, Segment) to the daemon: an object that does not
exist is created, one that exists and differs is updated, one that is the same is left
alone. Each object is reported as created, configured or unchanged.

Every document is checked before anything is sent: if any is invalid, nothing is applied.
The daemon assesses each workload; an explicit spec.isolation weaker than the policy allows
is refused unless --force. It also checks that the host can hold the workload: its replicas'
CPU and memory requests, added to those of the workloads already admitted, must fit in the
host's CPUs and memory; --force overcommits (a warning event says so). A relative VM file
name (vm.kernel, vm.initrd, vm.disk.path) names a file in the daemon's images directory.

Apply also takes what strata import reads (compose files, Kubernetes manifests, RVTools vInfo
CSV exports, with the same -R, --segment-per, --env-file and --disk-dir): it applies exactly
the documents import would write for them, after printing import's notes, skipped objects
and warnings on stderr. docs/import.md says more.

With --kubeconfig the documents go to a Kubernetes cluster instead: they are rendered as
strata export kubernetes renders them and applied with server-side apply (field manager
strata). Objects are labelled with their apply set (--set, default the namespace); those of
the set that the documents no longer render are pruned, unless --no-prune. --wait waits until
the workloads are ready (progress on stderr) or --timeout passes. Each object is reported as
created, configured, unchanged or pruned. docs/kubernetes.md says more.`,
		Example: `  strata apply -f app.yaml
  strata apply -f deploy/ --force

  # A compose project, as strata import would write it
  strata apply -f compose.yaml

  # To a cluster, and wait until everything is ready
  strata apply -f app.yaml --kubeconfig ~/.kube/config --namespace shop --wait --timeout 10m`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if len(inputs.files) == 0 {
				return fmt.Errorf("give at least one file with -f")
			}
			if kube.kubeconfig != "" {
				return applyToCluster(c.Context(), s, inputs, force, kube)
			}
			if err := kube.onlyWithKubeconfig(c); err != nil {
				return err
			}
			r, errs, err := inputs.read(s)
			if err != nil {
				return err
			}
			printImportNotes(s.Err, r, true)
			for _, o := range r.Others {
				errs = append(errs, o.Errorf("kind", "apply Workloads and Segments; use strata plan or assess for the rest", "a %s is not applied to the daemon", o.Doc.Kind))
			}
			objs := r.Objects
			if err := reportProblems(s.Err, errs); err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			failed := 0
			for _, o := range objs {
				res, name, body := resourceOf(o)
				outcome, err := applyOne(c.Context(), cl, res, name, body, force)
				if err != nil {
					failed++
					fmt.Fprintf(s.Err, "%s/%s: %v\n", res, name, err)
					continue
				}
				fmt.Fprintf(s.Out, "%s/%s %s\n", singular(res), name, outcome)
			}
			if failed > 0 {
				return failure(fmt.Errorf("%d of %d objects not applied", failed, len(objs)))
			}
			return nil
		},
	}
	inputs.register(cmd, "file or directory to apply: strata documents, or inputs strata import reads")
	cmd.Flags().BoolVar(&force, "force", false, "apply workloads whose explicit isolation violates the assessment policy, or that overcommit the host's CPU or memory")
	kube.register(cmd)
	return cmd
}

func resourceOf(o *convert.Object) (plural, name string, body []byte) {
	if o.Segment != nil {
		obj := *o.Segment
		obj.Status = nil
		obj.Metadata.ResourceVersion = ""
		b, _ := json.Marshal(obj)
		return "segments", obj.Metadata.Name, b
	}
	obj := *o.Workload
	obj.Status = nil
	obj.Metadata.ResourceVersion = ""
	b, _ := json.Marshal(obj)
	return "workloads", obj.Metadata.Name, b
}

func singular(plural string) string { return plural[:len(plural)-1] }

// applyOne creates the object, or updates it when its spec, labels or annotations differ.
func applyOne(ctx context.Context, cl *client.Client, plural, name string, body []byte, force bool) (string, error) {
	var cur map[string]any
	err := cl.Get(ctx, plural, name, &cur)
	if client.IsNotFound(err) {
		if err := cl.Create(ctx, plural, body, force, nil); err != nil {
			return "", err
		}
		return "created", nil
	}
	if err != nil {
		return "", err
	}
	var want map[string]any
	if err := json.Unmarshal(body, &want); err != nil {
		return "", err
	}
	if sameIntent(cur, want) {
		return "unchanged", nil
	}
	if err := cl.Update(ctx, plural, name, body, force, nil); err != nil {
		return "", err
	}
	return "configured", nil
}

// sameIntent compares what a user controls: spec, labels and annotations. Both sides are
// defaulted, the stored object by the daemon and the wanted one by the loader.
func sameIntent(cur, want map[string]any) bool {
	return reflect.DeepEqual(cur["spec"], want["spec"]) &&
		reflect.DeepEqual(meta(cur, "labels"), meta(want, "labels")) &&
		reflect.DeepEqual(meta(cur, "annotations"), meta(want, "annotations"))
}

func meta(m map[string]any, key string) any {
	md, _ := m["metadata"].(map[string]any)
	return md[key]
}
