package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

// AnnotationDrill marks the workloads and segment a drill made; its value is the
// drill's segment.
const AnnotationDrill = "strata.dev/drill"

// DrillTimeout bounds how long a drill waits for the restored workloads to be healthy.
const DrillTimeout = 5 * time.Minute

// Drill restores the latest backup of a group or workload into a scratch segment under
// scratch names, waits until every restored workload runs all its replicas and is Ready
// (its health checks pass), measures RTO and RPO, and removes everything it made. A
// drill that restores but does not get healthy is a result (failed), not an error; the
// error is for drills that could not be run at all.
func (m *Manager) Drill(ctx context.Context, req v1alpha1.DrillRequest) (*v1alpha1.DrillResult, error) {
	m.drill.Lock()
	defer m.drill.Unlock()
	begin := m.o.Clock()
	b, err := m.latest(ctx, req.Repo, req.Target)
	if err != nil {
		return nil, err
	}
	seg := "drill-" + randomHex(2)
	res := &v1alpha1.DrillResult{Backup: b.ID, RPOSeconds: begin.Sub(b.Time).Seconds(), Segment: seg, Workloads: []string{}}
	if err := m.createScratchSegment(ctx, seg); err != nil {
		return nil, err
	}
	restored := []string{}
	defer func() {
		if terr := m.teardown(context.WithoutCancel(ctx), seg, restored); terr != nil {
			m.o.Logger.Error("drill: tear down", "segment", seg, "err", terr)
			res.Result = v1alpha1.DrillFailed
			res.Message = strings.TrimSpace(res.Message + "; tear down: " + terr.Error())
		}
		m.drillEvent(ctx, req.Target, b.Workloads, res)
	}()
	as := seg
	if len(b.Workloads) == 1 {
		as = b.Workloads[0] + "-" + seg
	}
	rr, err := m.Restore(ctx, b.ID, v1alpha1.RestoreRequest{Repo: req.Repo, As: as, Segment: seg,
		Annotations: map[string]string{AnnotationDrill: seg}})
	if err != nil {
		res.Result, res.Message = v1alpha1.DrillFailed, "restore: "+err.Error()
		return res, nil
	}
	for _, w := range rr.Workloads {
		restored = append(restored, w.Name)
	}
	res.Workloads = restored
	wctx, cancel := context.WithTimeout(ctx, DrillTimeout)
	defer cancel()
	if err := m.waitHealthy(wctx, restored); err != nil {
		res.Result, res.Message = v1alpha1.DrillFailed, err.Error()
		res.RTOSeconds = m.o.Clock().Sub(begin).Seconds()
		return res, nil
	}
	res.RTOSeconds = m.o.Clock().Sub(begin).Seconds()
	res.Result = v1alpha1.DrillSucceeded
	res.Message = fmt.Sprintf("%d workloads restored from backup %s ran all their replicas and were Ready", len(restored), b.ID)
	return res, nil
}

// createScratchSegment makes the drill's segment: its own bridge and subnet, no egress,
// and no flows in from other segments.
func (m *Manager) createScratchSegment(ctx context.Context, name string) error {
	rec, err := objects.Record(v1alpha1.KindSegment, v1alpha1.ObjectMeta{Name: name, Annotations: map[string]string{AnnotationDrill: name}},
		v1alpha1.SegmentSpec{Egress: v1alpha1.EgressDeny}, nil)
	if err != nil {
		return err
	}
	if _, err := m.o.Store.Create(ctx, rec); err != nil {
		return fmt.Errorf("create the drill's segment %s: %w", name, err)
	}
	return nil
}

// waitHealthy waits until every workload runs all its replicas and is Ready.
func (m *Manager) waitHealthy(ctx context.Context, names []string) error {
	last := ""
	for {
		pending := ""
		for _, name := range names {
			rec, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
			if err != nil {
				return err
			}
			w, err := objects.Workload(rec)
			if err != nil {
				return err
			}
			if msg := unhealthy(w); msg != "" {
				pending = name + ": " + msg
				break
			}
		}
		if pending == "" {
			return nil
		}
		last = pending
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy within %s: %s", DrillTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unhealthy says why a workload is not yet running and Ready ("" when it is).
func unhealthy(w *v1alpha1.Workload) string {
	if w.Status == nil || w.Status.Phase != v1alpha1.PhaseRunning {
		phase := v1alpha1.Phase("unknown")
		if w.Status != nil {
			phase = w.Status.Phase
		}
		return "phase " + string(phase)
	}
	for _, c := range w.Status.Conditions {
		if c.Type == "Ready" && c.Status != v1alpha1.ConditionTrue {
			return "not Ready: " + c.Message
		}
	}
	return ""
}

// teardown deletes the drill's workloads (and waits until the controller removed
// their instances), their volumes and slot disks, and the segment.
func (m *Manager) teardown(ctx context.Context, seg string, workloads []string) error {
	var errs []error
	for _, name := range workloads {
		if err := m.markDeleted(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete workload %s: %w", name, err))
		}
	}
	deadline := m.o.Clock().Add(2 * time.Minute)
	for _, name := range workloads {
		for {
			_, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if m.o.Clock().After(deadline) {
				errs = append(errs, fmt.Errorf("workload %s was not removed within 2 minutes", name))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, d := range []string{"volumes", "disks", "rootfs"} {
			if err := os.RemoveAll(filepath.Join(m.o.DataDir, d, name)); err != nil {
				errs = append(errs, err)
			}
		}
		logs, _ := filepath.Glob(filepath.Join(m.o.DataDir, "logs", name+"-*.log"))
		for _, l := range logs {
			_ = os.Remove(l)
		}
	}
	if err := m.o.Store.Delete(ctx, v1alpha1.KindSegment, seg, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		errs = append(errs, fmt.Errorf("delete segment %s: %w", seg, err))
	}
	return errors.Join(errs...)
}

// markDeleted asks the controller to stop the workload's instances and remove it.
func (m *Manager) markDeleted(ctx context.Context, name string) error {
	for attempt := 0; ; attempt++ {
		rec, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
		if err != nil {
			return err
		}
		if rec.Annotations == nil {
			rec.Annotations = map[string]string{}
		}
		rec.Annotations[v1alpha1.AnnotationDeletionRequested] = m.o.Clock().UTC().Format(time.RFC3339)
		_, err = m.o.Store.Update(ctx, rec)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		return err
	}
}

// drillEvent records the drill's result on the backed-up workloads that still exist
// (else on the target's name).
func (m *Manager) drillEvent(ctx context.Context, target string, workloads []string, res *v1alpha1.DrillResult) {
	reason, typ := "DrillSucceeded", "Normal"
	if res.Result != v1alpha1.DrillSucceeded {
		reason, typ = "DrillFailed", "Warning"
	}
	msg := fmt.Sprintf("drill of %s from backup %s: RTO %s, RPO %s", target, res.Backup,
		time.Duration(res.RTOSeconds*float64(time.Second)).Round(time.Millisecond), time.Duration(res.RPOSeconds*float64(time.Second)).Round(time.Second))
	if res.Result != v1alpha1.DrillSucceeded {
		msg += ": " + res.Message
	}
	recorded := false
	for _, w := range workloads {
		if _, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, w); err == nil {
			m.event(ctx, w, typ, reason, msg)
			recorded = true
		}
	}
	if !recorded {
		m.event(ctx, target, typ, reason, msg)
	}
}
