package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
)

// overcommit checks that the host can hold what the workloads admitted so far request
// (their replicas times their CPU and memory) plus what w requests. It returns the
// problem in words, or "" when the workload fits or no capacity was configured.
func (s *Server) overcommit(ctx context.Context, w *v1alpha1.Workload) (string, error) {
	if s.capacity == nil {
		return "", nil
	}
	recs, _, err := s.store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return "", fmt.Errorf("check the host's capacity: %w", err)
	}
	var cpuMilli, mem int64
	for _, rec := range recs {
		if rec.Name == w.Metadata.Name {
			continue // replaced by this write
		}
		other, err := objects.Workload(rec)
		if err != nil {
			continue
		}
		if _, deleting := other.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]; deleting {
			continue
		}
		n := int64(other.DesiredReplicas())
		cpuMilli += n * other.Spec.Resources.CPU.MilliValue()
		mem += n * other.Spec.Resources.Memory.Value()
	}
	n := int64(w.DesiredReplicas())
	wantCPU, wantMem := n*w.Spec.Resources.CPU.MilliValue(), n*w.Spec.Resources.Memory.Value()
	capCPU, capMem := s.capacity.CPU.MilliValue(), s.capacity.Memory.Value()
	var short []string
	if capCPU > 0 && cpuMilli+wantCPU > capCPU {
		short = append(short, fmt.Sprintf("CPU: %s requested, %s admitted already, the host has %s",
			milli(wantCPU), milli(cpuMilli), milli(capCPU)))
	}
	if capMem > 0 && mem+wantMem > capMem {
		short = append(short, fmt.Sprintf("memory: %s requested, %s admitted already, the host has %s",
			bytesQ(wantMem), bytesQ(mem), bytesQ(capMem)))
	}
	if len(short) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d replicas do not fit on this host (%s)", n, strings.Join(short, "; ")), nil
}

// milli prints CPU millicores as a quantity: whole CPUs as a number, else in m.
func milli(v int64) string {
	if v%1000 == 0 {
		return fmt.Sprint(v / 1000)
	}
	return fmt.Sprintf("%dm", v)
}

// bytesQ prints bytes as a quantity (Mi, Gi, ...).
func bytesQ(v int64) string { return resource.NewQuantity(v, resource.BinarySI).String() }

// vmFiles refuses VM files (kernel, initrd, disk) outside the directories the daemon
// allows: a relative name is resolved under the images directory, and the file, if it
// exists, must not lead out of the allowed directories by a symbolic link either.
func (s *Server) vmFiles(o *load.Object, w *v1alpha1.Workload) diag.List {
	vm := w.Spec.VM
	if vm == nil || len(s.vmDirs) == 0 {
		return nil
	}
	files := []struct{ path, name string }{{"spec.vm.kernel", vm.Kernel}, {"spec.vm.initrd", vm.Initrd}}
	if vm.Disk != nil {
		files = append(files, struct{ path, name string }{"spec.vm.disk.path", vm.Disk.Path})
	}
	hint := fmt.Sprintf("put the file in %s and name it relative to that directory (or in another directory the daemon allows with --vm-image-dir)",
		s.vmDirs[0])
	var errs diag.List
	for _, f := range files {
		if f.name == "" {
			continue
		}
		p := runtime.ResolveVMFile(s.vmDirs[0], f.name)
		if !s.allowedVMFile(p) {
			errs = append(errs, o.Errorf(f.path, hint, "%s is outside the directories VMs may boot files from (%s)",
				f.name, strings.Join(s.vmDirs, ", ")))
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // missing: the driver reports it when it starts the VM
		}
		if !s.allowedVMFile(real) {
			errs = append(errs, o.Errorf(f.path, hint, "%s leads by a symbolic link to %s, outside the directories VMs may boot files from", f.name, real))
			continue
		}
		if fi, err := os.Stat(real); err == nil && !fi.Mode().IsRegular() {
			errs = append(errs, o.Errorf(f.path, hint, "%s is not a regular file (%s)", f.name, fi.Mode().Type()))
		}
	}
	return errs
}

// allowedVMFile reports whether p lies beneath one of the allowed directories.
func (s *Server) allowedVMFile(p string) bool {
	p = filepath.Clean(p)
	for _, d := range s.vmDirs {
		if rel, err := filepath.Rel(d, p); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}
