// Package importer turns what users already have into strata Workloads: strata's own
// documents, Kubernetes manifests, compose files and VMware inventories exported as RVTools
// vInfo CSV. The kind of each input is told from its content, not its name. An empty input
// is an error, and a format strata recognises but does not read (a Helm chart template) is
// turned away with what to do instead. Package convert turns what the importers find into
// the documents strata import writes.
package importer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer/compose"
	"strata.dev/strata/internal/importer/kube"
	"strata.dev/strata/internal/importer/rvtools"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

// Options change how inputs are read. The zero value reads every input as it is.
type Options struct {
	// EnvFiles are compose environment files read in order, each overriding the one
	// before; none means the .env file beside each compose file, if there is one.
	EnvFiles []string
	// DiskDir is the local directory that VMware datastores are copied to: a VM whose
	// disk the inventory names as "[ds1] web/web.vmdk" boots from DiskDir/ds1/web/web.vmdk.
	DiskDir string
	// Recursive makes a directory stand for the inputs in it and in every directory below.
	Recursive bool
}

// File imports one input. It returns every workload it could read and every problem it found.
func File(name string, data []byte) (inventory.Set, diag.List) {
	return FileWith(name, data, Options{})
}

// FileWith imports one input as opts say. Its documents are read as a stream: each is
// imported and let go before the next is parsed, so memory follows what is imported, not
// the parsed input.
func FileWith(name string, data []byte, opts Options) (inventory.Set, diag.List) {
	if err := recognise(name, data); err != nil {
		return inventory.Set{}, diag.List{err}
	}
	if rvtools.Detect(data) {
		return rvtools.ImportWith(name, data, rvtools.Options{DiskDir: opts.DiskDir})
	}
	if kube.IsKustomizationFile(name) {
		// kustomize's recipe need not say its kind; what it makes is in other files.
		return inventory.Set{Skipped: []v1alpha1.SkippedObject{{
			Source: v1alpha1.Source{File: name, Line: 1, Format: v1alpha1.FormatKubernetes, Kind: "Kustomization"},
			Reason: kube.KustomizationReason}}}, nil
	}
	var (
		set  inventory.Set
		errs diag.List
		kimp kube.Importer
	)
	stream := load.NewStream(name, bytes.NewReader(data))
	for {
		doc, ok := stream.Next()
		if !ok {
			break
		}
		switch {
		case load.IsStrata(doc):
			obj, derrs := load.Decode(doc)
			errs = append(errs, derrs...)
			if obj == nil {
				continue
			}
			if w, ok := obj.Object.(*v1alpha1.Workload); ok {
				set.Items = append(set.Items, inventory.Item{Workload: *w, Source: v1alpha1.Source{
					File: name, Line: doc.Line, Format: v1alpha1.FormatStrata, Kind: v1alpha1.KindWorkload}})
			} else {
				set.Skipped = append(set.Skipped, v1alpha1.SkippedObject{
					Source: v1alpha1.Source{File: name, Line: doc.Line, Format: v1alpha1.FormatStrata, Kind: doc.Kind},
					Reason: "kind " + doc.Kind + " describes no workload"})
			}
		case kube.IsKubernetes(doc):
			kimp.Add(doc)
		case compose.Detect(doc):
			cs, cerrs := compose.Import(doc, compose.Options{Environ: os.Environ(), EnvFiles: opts.EnvFiles})
			set.Add(cs)
			errs = append(errs, cerrs...)
		default:
			errs = append(errs, (&diag.Error{File: name, Line: doc.Line, Col: doc.Col,
				Msg: "not a document strata reads"}).WithHint(
				"expected a strata object (apiVersion: %s), a Kubernetes object (apiVersion and kind), "+
					"a compose file (services:) or an RVTools vInfo CSV export (a VM column)", v1alpha1.GroupVersion))
		}
	}
	if err := stream.Err(); err != nil {
		errs = append(errs, err)
	}
	ks, kerrs := kimp.Finish()
	if len(set.Items) == 0 && len(set.Skipped) == 0 && len(set.Warnings) == 0 {
		set = ks // a file of Kubernetes objects alone: no copy
	} else {
		set.Add(ks)
	}
	errs = append(errs, kerrs...)
	unique(&set)
	return set, errs
}

// unique renames workloads whose names collide with an earlier item's, keeping the first
// name as it is, so that every workload of the inventory can be addressed by its name.
func unique(set *inventory.Set) {
	seen := make(map[string]bool, len(set.Items))
	for i := range set.Items {
		it := &set.Items[i]
		name := it.Workload.Metadata.Name
		if !seen[name] {
			seen[name] = true
			continue
		}
		for n := 2; ; n++ {
			suffix := fmt.Sprintf("-%d", n)
			cand := strings.TrimRight(name[:min(len(name), 63-len(suffix))], "-") + suffix
			if !seen[cand] {
				if it.Source.Name == "" {
					it.Source.Name = name
				}
				it.Workload.Metadata.Name = cand
				seen[cand] = true
				break
			}
		}
	}
}

// Inputs lists the files named by paths (see InputsWith) without recursing.
func Inputs(paths []string) ([]string, error) {
	return InputsWith(paths, Options{})
}

// InputsWith lists the files named by paths. A file is itself and "-" is standard input. A
// directory stands for the files directly in it whose names end in .yaml, .yml, .json or
// .csv, sorted by name; with opts.Recursive, also for those in every directory below it,
// except hidden ones (.git). A directory that holds a Helm chart (a Chart.yaml) stands for
// its Chart.yaml alone, which the importer turns away with a hint.
func InputsWith(paths []string, opts Options) ([]string, error) {
	var files []string
	for _, p := range paths {
		if p == "-" {
			files = append(files, p)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := inputsIn(p, opts.Recursive)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			if opts.Recursive {
				return nil, fmt.Errorf("%s: no .yaml, .yml, .json or .csv files in this directory or below it", p)
			}
			return nil, fmt.Errorf("%s: no .yaml, .yml, .json or .csv files in this directory (-R also reads the directories below it)", p)
		}
		files = append(files, found...)
	}
	return files, nil
}

// inputsIn lists the inputs in directory dir, sorted by name, and those in the directories
// below it when recursive.
func inputsIn(dir string, recursive bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found, subdirs []string
	for _, e := range entries {
		if e.IsDir() {
			if recursive && !strings.HasPrefix(e.Name(), ".") {
				subdirs = append(subdirs, filepath.Join(dir, e.Name()))
			}
			continue
		}
		if e.Name() == "Chart.yaml" {
			return []string{filepath.Join(dir, e.Name())}, nil
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json", ".csv":
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				found = append(found, filepath.Join(dir, e.Name()))
			}
		}
	}
	slices.Sort(found)
	for _, sub := range subdirs {
		more, err := inputsIn(sub, true)
		if err != nil {
			return nil, err
		}
		found = append(found, more...)
	}
	return found, nil
}

// Files imports every input named by paths (see Inputs), one after another; "-" reads stdin.
func Files(paths []string, stdin io.Reader) (inventory.Set, diag.List) {
	return FilesWith(paths, stdin, Options{})
}

// FilesWith imports every input named by paths as opts say.
func FilesWith(paths []string, stdin io.Reader, opts Options) (inventory.Set, diag.List) {
	files, err := InputsWith(paths, opts)
	if err != nil {
		return inventory.Set{}, diag.List{{Msg: err.Error(), Hint: "check the path"}}
	}
	var (
		all  inventory.Set
		errs diag.List
	)
	for _, f := range files {
		data, err := load.ReadInput(f, stdin)
		if err != nil {
			errs = append(errs, &diag.Error{File: f, Msg: err.Error(), Hint: "check the file name and its permissions"})
			continue
		}
		set, ferrs := FileWith(f, data, opts)
		all.Add(set)
		errs = append(errs, ferrs...)
	}
	unique(&all)
	return all, errs
}
