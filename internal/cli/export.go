package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer/convert"
	"strata.dev/strata/internal/kube/render"
)

func newExport(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export kubernetes -f FILE... [-o yaml|json]",
		Short: "Render strata documents for another platform",
		Long: `Export renders strata documents as the objects another platform runs them with.
Today the platform is Kubernetes (with KubeVirt for VMs): see strata export kubernetes --help.`,
		Example: `  strata export kubernetes -f app.yaml | kubectl apply -f -`,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newExportKubernetes(s))
	return cmd
}

func newExportKubernetes(s Streams) *cobra.Command {
	var (
		inputs       inputFlags
		output       string
		namespace    string
		runtimeClass string
		policy       string
		force        bool
	)
	cmd := &cobra.Command{
		Use:     "kubernetes -f FILE... [-o yaml|json] [--namespace NS] [--runtime-class NAME] [--policy FILE]",
		Aliases: []string{"k8s"},
		Short:   "Render Workloads and Segments as Kubernetes and KubeVirt objects",
		Long: `Export kubernetes renders strata Workloads and Segments as the objects that run the same
estate on a Kubernetes cluster with KubeVirt. Each workload is assessed first (the built-in
policy, or --policy FILE) and rendered at the tier assessment decides:

  container   Deployment (StatefulSet when it has volumes) + Service for its ports
  sandbox     the same with runtimeClassName (--runtime-class, default gvisor) + RuntimeClass
  vm          VirtualMachine per replica (KubeVirt) + Service selecting the VMs' pods
  Segment     NetworkPolicy: in, only its own segment and its allow flows; out, everything
              (egress allow) or only its own segment, its flows and the cluster DNS (deny)

The inputs are strata documents, or anything strata import reads (compose files, Kubernetes
manifests, RVTools vInfo CSV exports, with the same -R, --segment-per, --env-file and
--disk-dir): those are rendered as the documents import would write for them, and import's
notes, skipped objects and warnings go to stderr.

A workload raised to vm that only names an image boots that image as a containerDisk (a
disk in /disk of an OCI image), which you must build; a note on stderr says so. Notes about
what you must provide go to stderr; the objects go to stdout, in apply order: -o yaml (the
default) prints a YAML stream, documents separated by ---; -o json prints one v1 List.
docs/kubernetes.md has the full mapping.

A workload whose explicit spec.isolation is weaker than the policy requires is refused, as
the daemon refuses it, unless --force: then it is rendered as asked, with a note.

Exit status: 0 when everything was rendered, 2 when an input is invalid, violates the policy
without --force, or cannot be rendered (every problem is listed as
FILE:LINE:COL: field: what is wrong (what to do)).`,
		Example: `  # Render the example shop and apply it
  strata export kubernetes -f examples/hybrid/app.yaml | kubectl apply -f -

  # A compose project, straight to a cluster
  strata export kubernetes -f compose.yaml | kubectl apply -f -

  # Into namespace shop, sandboxes under Kata Containers
  strata export kubernetes -f deploy/ --namespace shop --runtime-class kata

  # As one JSON List: which VirtualMachines would be made?
  strata export kubernetes -f app.yaml -o json | jq -r '.items[] | select(.kind == "VirtualMachine") | .metadata.name'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if len(inputs.files) == 0 {
				return fmt.Errorf("give at least one file with -f")
			}
			if output != "yaml" && output != "json" {
				return fmt.Errorf("unknown output format %q: use yaml or json", output)
			}
			engine, errs := planEngine(policy, s)
			if len(errs) > 0 {
				return reportProblems(s.Err, errs)
			}
			in, errs := readExportInputs(inputs, s)
			if len(errs) > 0 {
				return reportProblems(s.Err, errs)
			}
			if !force {
				if errs := in.violations(engine); len(errs) > 0 {
					return reportProblems(s.Err, errs)
				}
			}
			res, err := render.Render(in.docs, render.Options{Namespace: namespace, RuntimeClass: runtimeClass, Engine: engine})
			if err != nil {
				return reportProblems(s.Err, in.place(err))
			}
			if err := writeObjects(s.Out, res.Objects, output); err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintln(s.Err, "note:", n)
			}
			return nil
		},
	}
	inputs.register(cmd, "file or directory of strata documents, or of inputs strata import reads")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml (a stream of documents) or json (one v1 List)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", render.DefaultNamespace, "namespace of the rendered objects")
	cmd.Flags().StringVar(&runtimeClass, "runtime-class", render.DefaultRuntimeClass, "RuntimeClass (and handler) of sandbox-tier pods")
	cmd.Flags().StringVar(&policy, "policy", "", "AssessmentPolicy file to use instead of the built-in policy")
	cmd.Flags().BoolVar(&force, "force", false, "render workloads whose explicit isolation violates the assessment policy (as asked, with a note)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// exportInputs are the documents to render and where each came from.
type exportInputs struct {
	docs    render.Documents
	sources map[string]*convert.Object // by kind/name
}

// readExportInputs reads every Workload and Segment of the inputs, strata documents as they
// are and everything else as import converts it, and prints the import's notes on stderr.
// Other kinds of strata document, and two objects of one kind and name, are errors.
func readExportInputs(flags inputFlags, s Streams) (exportInputs, diag.List) {
	in := exportInputs{sources: map[string]*convert.Object{}}
	r, errs, err := flags.read(s)
	if err != nil {
		return in, diag.List{{Msg: err.Error()}}
	}
	printImportNotes(s.Err, r, true)
	for _, o := range r.Others {
		hint := "leave it out: export renders Workloads and Segments"
		if o.Doc.Kind == v1alpha1.KindAssessmentPolicy {
			hint = "give the policy with --policy"
		}
		errs = append(errs, o.Errorf("kind", hint, "a %s cannot be exported", o.Doc.Kind))
	}
	for _, o := range r.Objects {
		key := o.Ref()
		if first, dup := in.sources[key]; dup {
			where := errorAt(first, "metadata.name", "", "")
			errs = append(errs, errorAt(o, "metadata.name", "give each a name of its own",
				"%s %s is also defined at %s:%d", o.Kind(), o.Name(), where.File, where.Line))
			continue
		}
		in.sources[key] = o
		if o.Workload != nil {
			in.docs.Workloads = append(in.docs.Workloads, *o.Workload)
		} else {
			in.docs.Segments = append(in.docs.Segments, *o.Segment)
		}
	}
	return in, errs
}

// errorAt makes an error about a field of an object: at the field of a strata document, at
// the source's line for an imported object.
func errorAt(o *convert.Object, path, hint, format string, args ...any) *diag.Error {
	if o.Doc != nil {
		return o.Doc.Errorf(path, hint, format, args...)
	}
	return &diag.Error{File: o.Source.File, Line: o.Source.Line, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// place turns the errors of render.Render into problems at their documents' fields.
func (in exportInputs) place(err error) diag.List {
	list := []error{err}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		list = joined.Unwrap()
	}
	var out diag.List
	for _, e := range list {
		var re *render.Error
		if !errors.As(e, &re) {
			out = append(out, &diag.Error{Msg: e.Error()})
			continue
		}
		if o, ok := in.sources[re.Kind+"/"+re.Name]; ok {
			out = append(out, errorAt(o, re.Field, re.Hint, "%s %s: %s", lowerKind(re.Kind), re.Name, re.Problem))
			continue
		}
		out = append(out, &diag.Error{Path: re.Field, Msg: re.Error()})
	}
	return out
}

func lowerKind(kind string) string {
	if kind == v1alpha1.KindSegment {
		return "segment"
	}
	return "workload"
}

// writeObjects prints the objects as a YAML stream or one JSON List.
func writeObjects(w io.Writer, objs []render.Object, output string) error {
	encode := render.YAML
	if output == "json" {
		encode = render.JSON
	}
	b, err := encode(objs)
	if err != nil {
		return failure(err)
	}
	if _, err := w.Write(b); err != nil {
		return failure(fmt.Errorf("write the objects: %w", err))
	}
	return nil
}
