package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// target is one workload of a restore: what the backup holds and the name it gets.
type target struct {
	saved savedWorkload
	name  string
}

// Restore recreates the workloads of a backup from their saved specs and puts their
// data in place: each is created held (annotation strata.dev/hold), so that nothing
// starts, then its disks and volumes are written, then the hold is removed. A name in
// use is refused before anything is done. When it fails midway, the workloads it
// created are deleted again.
func (m *Manager) Restore(ctx context.Context, id string, req v1alpha1.RestoreRequest) (res *v1alpha1.RestoreResult, err error) {
	begin := m.o.Clock()
	r, repoName, man, err := m.manifest(ctx, req.Repo, id)
	if err != nil {
		return nil, err
	}
	var sv saved
	if man.Meta.Kind != metaKind || json.Unmarshal(man.Meta.Spec, &sv) != nil || len(sv.Workloads) == 0 {
		return nil, invalid(fmt.Errorf("backup %s in %s holds no workloads strata can restore", man.ID, repoName))
	}
	targets, err := m.targets(ctx, man.ID, sv, req)
	if err != nil {
		return nil, err
	}
	if req.Segment != "" {
		if msgs := validation.IsDNS1123Label(req.Segment); len(msgs) > 0 {
			return nil, invalid(fmt.Errorf("segment %q: use a DNS label", req.Segment))
		}
	}
	tmp, err := os.MkdirTemp(m.scratchDir(), "restore-"+man.ID+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, t := range targets {
		if err := m.download(ctx, r, man, t.saved, filepath.Join(tmp, t.saved.Name)); err != nil {
			return nil, err
		}
	}
	var created []string
	defer func() {
		if err == nil {
			return
		}
		for _, name := range created {
			if derr := m.o.Store.Delete(context.WithoutCancel(ctx), v1alpha1.KindWorkload, name, 0); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete the half-restored workload %s: %w", name, derr))
			}
		}
	}()
	why := fmt.Sprintf("restoring backup %s", man.ID)
	for _, t := range targets {
		if err := m.createHeld(ctx, t, req, why); err != nil {
			return nil, err
		}
		created = append(created, t.name)
	}
	res = &v1alpha1.RestoreResult{Backup: man.ID, Time: man.Time}
	for _, t := range targets {
		if err := m.putData(ctx, t, filepath.Join(tmp, t.saved.Name)); err != nil {
			return nil, fmt.Errorf("restore %s (from %s in backup %s): %w", t.name, t.saved.Name, man.ID, err)
		}
		res.Workloads = append(res.Workloads, v1alpha1.RestoredWorkload{From: t.saved.Name, Name: t.name, Tier: t.saved.Tier})
	}
	for _, t := range targets {
		if err := m.o.Snapshots.SetHold(ctx, t.name, ""); err != nil {
			return nil, fmt.Errorf("release the hold on %s (remove annotation %s): %w", t.name, v1alpha1.AnnotationHold, err)
		}
		m.event(ctx, t.name, "Normal", "Restored", fmt.Sprintf("restored from backup %s in %s (%s of %s)",
			man.ID, repoName, t.saved.Name, man.Time.Format("2006-01-02T15:04:05Z07:00")))
	}
	res.Seconds = m.o.Clock().Sub(begin).Seconds()
	m.o.Logger.Info("backup restored", "id", man.ID, "repo", repoName, "workloads", len(targets), "seconds", res.Seconds)
	return res, nil
}

// targets picks the workloads to restore and their names, and refuses names in use.
func (m *Manager) targets(ctx context.Context, id string, sv saved, req v1alpha1.RestoreRequest) ([]target, error) {
	var picked []savedWorkload
	for _, w := range req.Workloads {
		i := slices.IndexFunc(sv.Workloads, func(s savedWorkload) bool { return s.Name == w })
		if i < 0 {
			return nil, invalid(fmt.Errorf("backup %s holds no workload %s (it holds %s)", id, w, names(sv.Workloads)))
		}
		picked = append(picked, sv.Workloads[i])
	}
	if len(picked) == 0 {
		picked = sv.Workloads
	}
	var out []target
	for _, w := range picked {
		if err := snapshot.CheckSlotFiles(w.Slots); err != nil {
			return nil, invalid(fmt.Errorf("backup %s: workload %s: %w", id, w.Name, err))
		}
		t := target{saved: w, name: w.Name}
		switch {
		case req.As != "" && len(picked) == 1:
			t.name = req.As
		case req.As != "":
			t.name = w.Name + "-" + req.As
		}
		if msgs := validation.IsDNS1123Label(t.name); len(msgs) > 0 {
			return nil, invalid(fmt.Errorf("workload name %q: use a DNS label (with several workloads --as is a suffix: NAME-AS)", t.name))
		}
		_, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, t.name)
		if err == nil {
			hint := "--as NEWNAME"
			if len(picked) > 1 {
				hint = "--as SUFFIX (each workload is restored as NAME-SUFFIX)"
			}
			return nil, kindError{store.ErrAlreadyExists, fmt.Errorf("workload %s already exists: a restore never replaces a workload; restore backup %s under another name with %s, or delete %s first",
				t.name, id, hint, t.name)}
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func names(ws []savedWorkload) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return fmt.Sprint(out)
}

// scratchDir is where restores download to: inside the data directory, so that
// files move into place without crossing file systems.
func (m *Manager) scratchDir() string {
	d := filepath.Join(m.dir(), "tmp")
	_ = os.MkdirAll(d, 0o700)
	return d
}

// download writes the saved workload's files from the backup under dir.
func (m *Manager) download(ctx context.Context, r *repo.Repo, man repo.Manifest, w savedWorkload, dir string) error {
	for _, s := range w.Slots {
		for _, f := range s.Files {
			dst := filepath.Join(dir, filepath.FromSlash(f))
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			if err := r.Restore(ctx, man, path.Join(w.Name, filepath.ToSlash(f)), dst); err != nil {
				return fmt.Errorf("restore %s from backup %s: %w", w.Name, man.ID, err)
			}
		}
	}
	return nil
}

// createHeld stores the workload from its saved spec, held.
func (m *Manager) createHeld(ctx context.Context, t target, req v1alpha1.RestoreRequest, why string) error {
	spec := t.saved.Spec
	if req.Segment != "" {
		spec.Segment = req.Segment
	}
	ann := maps.Clone(req.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.AnnotationHold] = why
	meta := v1alpha1.ObjectMeta{Name: t.name, Labels: t.saved.Labels, Annotations: ann}
	status := &v1alpha1.WorkloadStatus{Tier: t.saved.Tier, Phase: v1alpha1.PhasePending}
	rec, err := objects.Record(v1alpha1.KindWorkload, meta, spec, status)
	if err != nil {
		return err
	}
	if _, err := m.o.Store.Create(ctx, rec); err != nil {
		return fmt.Errorf("create workload %s: %w", t.name, err)
	}
	return nil
}

// putData writes the workload's downloaded disks and volumes into its slots.
func (m *Manager) putData(ctx context.Context, t target, dir string) error {
	var restorer runtime.DiskRestorer
	if t.saved.Tier == v1alpha1.TierVM {
		driver, err := m.o.Drivers.ForTier(t.saved.Tier)
		if err != nil {
			return err
		}
		var ok bool
		if restorer, ok = driver.(runtime.DiskRestorer); !ok {
			return fmt.Errorf("%w: driver %s cannot restore disks", runtime.ErrUnsupported, driver.Name())
		}
	}
	return snapshot.PutData(ctx, m.o.DataDir, t.name, t.saved.Spec.VM, restorer, t.saved.Slots, dir)
}
