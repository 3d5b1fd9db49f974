package cli

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/importer/convert"
)

// inputFlags are the flags of every command that reads what users have: -f, -R, the segment
// grouping, compose's environment files and the VMware disk directory.
type inputFlags struct {
	files      []string
	recursive  bool
	segmentPer string
	envFiles   []string
	diskDir    string
}

func (f *inputFlags) register(cmd *cobra.Command, what string) {
	f.registerImporter(cmd, what)
	cmd.Flags().StringVar(&f.segmentPer, "segment-per", string(convert.SegmentPerSource),
		"segments for imported workloads: source (one per compose project and Kubernetes namespace; project and namespace are other names for it) or none (all in the default segment)")
	_ = cmd.RegisterFlagCompletionFunc("segment-per", cobra.FixedCompletions([]string{"source", "project", "namespace", "none"}, cobra.ShellCompDirectiveNoFileComp))
}

// registerImporter registers the flags that say how the importers read, for commands that
// assess workloads without writing documents (assess, plan).
func (f *inputFlags) registerImporter(cmd *cobra.Command, what string) {
	cmd.Flags().StringSliceVarP(&f.files, "filename", "f", nil, what+" (repeatable; - for standard input)")
	cmd.Flags().BoolVarP(&f.recursive, "recursive", "R", false, "read the directories given with -f and every directory below them")
	cmd.Flags().StringArrayVar(&f.envFiles, "env-file", nil, "compose environment file, instead of the .env beside each compose file (repeatable; later files win)")
	cmd.Flags().StringVar(&f.diskDir, "disk-dir", "", "local directory holding copies of VMware datastores: [ds1] web/web.vmdk is DIR/ds1/web/web.vmdk")
}

// importerOptions are the importers' options the flags give.
func (f *inputFlags) importerOptions() importer.Options {
	return importer.Options{Recursive: f.recursive, EnvFiles: f.envFiles, DiskDir: f.diskDir}
}

func (f *inputFlags) options() (convert.Options, error) {
	per := convert.SegmentPer(f.segmentPer)
	switch f.segmentPer {
	case "project", "namespace":
		// Other names for the same grouping: a compose project and a Kubernetes namespace
		// are each their source's unit.
		per = convert.SegmentPerSource
	}
	if !slices.Contains(convert.SegmentPers, per) {
		return convert.Options{}, fmt.Errorf("unknown --segment-per %q: use source (or its other names project, namespace) or none", f.segmentPer)
	}
	return convert.Options{Options: f.importerOptions(), SegmentPer: per}, nil
}

// read reads the inputs the flags name, as import writes them.
func (f *inputFlags) read(s Streams) (*convert.Result, diag.List, error) {
	if len(f.files) == 0 {
		return nil, nil, fmt.Errorf("give at least one input with -f")
	}
	opts, err := f.options()
	if err != nil {
		return nil, nil, err
	}
	r, errs := convert.Read(f.files, s.In, opts)
	return r, errs, nil
}

// assessAll adds each workload's assessment to it.
func assessAll(r *convert.Result, engine *assess.Engine) diag.List {
	var errs diag.List
	for _, o := range r.Objects {
		if o.Workload == nil {
			continue
		}
		d, err := engine.Assess(o.Workload)
		if err != nil {
			errs = append(errs, &diag.Error{File: o.Source.File, Line: o.Source.Line, Msg: "workload " + o.Name() + ": " + err.Error(),
				Hint: "fix the rule, or guard the fields it reads with has()"})
			continue
		}
		o.Assessment = &v1alpha1.AssessmentItem{Name: o.Name(), Source: o.Source, Tier: d.Tier, Requested: d.Requested,
			Reasons: d.Reasons, Violations: d.Violations}
	}
	return errs
}

// printImportNotes prints, for people, what did not carry over: notes, skipped objects and
// warnings. notes is false where the notes are already written beside the objects.
func printImportNotes(w io.Writer, r *convert.Result, notes bool) {
	if notes {
		for _, l := range r.NoteLines() {
			fmt.Fprintln(w, "note:", l)
		}
	}
	for _, sk := range r.Skipped {
		fmt.Fprintln(w, "skipped:", convert.SkippedText(sk))
	}
	for _, e := range r.Warnings {
		fmt.Fprintln(w, "warning:", e.Error())
	}
}

func newImport(s Streams) *cobra.Command {
	var (
		in     inputFlags
		output string
		policy string
	)
	cmd := &cobra.Command{
		Use:   "import -f INPUT... [-o yaml|json] [-R] [--segment-per source|none] [--env-file FILE]... [--disk-dir DIR]",
		Short: "Turn compose files, Kubernetes manifests and RVTools exports into strata documents",
		Long: `Import reads what you have and writes the strata documents that run it: a Workload for every
compose service, Kubernetes workload (Deployment, StatefulSet, Pod, Job, ...) and VMware VM
of an RVTools vInfo CSV export, and the Segments they need. Inputs are told apart by their
content; strata documents among them are passed through as they are.

Each document is preceded by comments: where it came from (# from compose.yaml:12, service
web), the tier assessment decides for it and the rules behind it (the built-in policy, or
--policy FILE), and a note for everything of the source that did not carry over or changed
(a build: without an image, an initContainer, a renamed object). Input objects that describe
no workload (a ConfigMap, a Service) and warnings are listed at the end and on stderr.
Nothing is dropped without a word.

Segments: with --segment-per source (the default) the services of one compose project share
a segment named after the project (its name:, else its directory), and the workloads of a
Kubernetes namespace one named after the namespace, so they reach each other by name as
they did before (project and namespace are other names for source); the default namespace
and VMware VMs stay in the default segment. With
--segment-per none every imported workload is in the default segment. Names that are not
DNS labels are made into ones, with a note.

The YAML output (-o yaml, the default) is what strata apply -f takes as it is; apply and
export kubernetes also read these inputs directly, the same way. -o json prints one
document: {"apiVersion": "strata.dev/v1alpha1", "kind": "List", "items": [...],
"sources": [...], "notes": [...], "skipped": [...], "warnings": [...]} (docs/import.md).

Exit status: 0 when every input was read, 2 when an input is invalid, empty or of a kind
strata does not read (a Helm template, say; every problem is listed as FILE:LINE:COL: field:
what is wrong (what to do), and what could be read is still written).`,
		Example: `  # A compose project: look at what it becomes, then run it
  strata import -f compose.yaml > shop.yaml
  strata apply -f shop.yaml

  # Everything below a directory of manifests, one segment per namespace
  strata import -R -f k8s/ -o json | jq '.notes[] | "\(.object): \(.message)"'

  # A VMware estate whose datastores are copied under /srv/datastores
  strata import -f vinfo.csv --disk-dir /srv/datastores

  # Compose with another environment file; everything in the default segment
  strata import -f docker-compose.yml --env-file prod.env --segment-per none`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if output != "yaml" && output != "json" {
				return fmt.Errorf("unknown output format %q: use yaml or json", output)
			}
			engine, errs := planEngine(policy, s)
			if len(errs) > 0 {
				return reportProblems(s.Err, errs)
			}
			r, errs, err := in.read(s)
			if err != nil {
				return err
			}
			for _, o := range r.Others {
				errs = append(errs, o.Errorf("kind", "give workloads, segments and what you have; a policy goes with --policy",
					"a %s is not imported", o.Doc.Kind))
			}
			errs = append(errs, assessAll(r, engine)...)
			if output == "json" {
				err = convert.WriteJSON(s.Out, r)
			} else {
				err = convert.WriteYAML(s.Out, r)
			}
			if err != nil {
				return failure(err)
			}
			printImportNotes(s.Err, r, false)
			return reportProblems(s.Err, errs)
		},
	}
	in.register(cmd, "input file or directory")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml (documents strata apply takes) or json (one List)")
	cmd.Flags().StringVar(&policy, "policy", "", "AssessmentPolicy file to assess with instead of the built-in policy")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
