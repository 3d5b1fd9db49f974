package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

// admitted is an object admission accepted: the record to store and, for a workload
// applied with force, what it was forced past.
type admitted struct {
	rec        store.Object
	violations []string // of the assessment policy
	overcommit string   // the host's capacity
}

// admit decodes, defaults and validates a request body holding one object of the
// resource's kind, and assesses workloads and checks that they fit on the host.
func (s *Server) admit(ctx context.Context, r *http.Request, res objects.Resource) (admitted, error) {
	body, err := readBody(r)
	if err != nil {
		return admitted{}, err
	}
	objs, errs := load.File("request", body)
	if len(errs) > 0 {
		return admitted{}, errs
	}
	if len(objs) != 1 {
		return admitted{}, fmt.Errorf("%w: the body must hold exactly one object, it holds %d", errBadRequest, len(objs))
	}
	o := objs[0]
	if o.Doc.Kind != res.Kind {
		return admitted{}, diag.List{o.Errorf("kind", "send it to "+Prefix+pluralOf(o.Doc.Kind), "a %s does not belong under %s", o.Doc.Kind, res.Plural)}
	}
	switch obj := o.Object.(type) {
	case *v1alpha1.Workload:
		d, err := s.engine.Assess(obj)
		if err != nil {
			return admitted{}, fmt.Errorf("assess workload %s: %w", obj.Metadata.Name, err)
		}
		var violations []string
		for _, v := range d.Violations {
			violations = append(violations, v.Message)
		}
		if len(violations) > 0 && !forced(r) {
			var errs diag.List
			for _, v := range violations {
				errs = append(errs, o.Errorf("spec.isolation", "raise spec.isolation, change the traits, or apply with --force", "%s", v))
			}
			return admitted{}, errs
		}
		if errs := s.portClashes(ctx, o, obj); len(errs) > 0 {
			return admitted{}, errs
		}
		if errs := s.vmFiles(o, obj); len(errs) > 0 {
			return admitted{}, errs
		}
		over, err := s.overcommit(ctx, obj)
		if err != nil {
			return admitted{}, err
		}
		if over != "" && !forced(r) {
			return admitted{}, diag.List{o.Errorf("spec.replicas",
				"lower spec.replicas or spec.resources, delete workloads you no longer need, or apply with --force to overcommit the host", "%s", over)}
		}
		if errs := s.hostPorts(ctx, o, obj); len(errs) > 0 {
			return admitted{}, errs
		}
		// Where the replicas run is stored, not enforced: placement.nodeVM never on a class
		// the policy sends into node VMs is honoured, and its warning shows in the status.
		status := &v1alpha1.WorkloadStatus{Tier: d.Tier, Reasons: d.Reasons, NodeVM: &d.NodeVM, Phase: v1alpha1.PhasePending}
		rec, err := objects.Record(res.Kind, obj.Metadata, obj.Spec, status)
		return admitted{rec: rec, violations: violations, overcommit: over}, err
	case *v1alpha1.Segment:
		if errs := s.subnetOverlaps(ctx, o, obj); len(errs) > 0 {
			return admitted{}, errs
		}
		if errs := s.hostSubnet(ctx, o, obj); len(errs) > 0 {
			return admitted{}, errs
		}
		rec, err := objects.Record(res.Kind, obj.Metadata, obj.Spec, nil)
		return admitted{rec: rec}, err
	}
	return admitted{}, fmt.Errorf("%w: kind %s cannot be written", errBadRequest, o.Doc.Kind)
}

func forced(r *http.Request) bool {
	v := r.URL.Query().Get("force")
	return v == "true" || v == "1"
}

func pluralOf(kind string) string {
	if res, ok := objects.ResourceFor(kind); ok {
		return res.Plural
	}
	return strings.ToLower(kind) + "s"
}

// admitWrite resolves the resource of a write request and admits its body; false means an
// error answer was written.
func (s *Server) admitWrite(w http.ResponseWriter, r *http.Request) (admitted, bool) {
	res, ok := s.resource(w, r)
	if !ok {
		return admitted{}, false
	}
	if res.Recorded {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", res.Plural+" are recorded by the daemon")
		return admitted{}, false
	}
	if r.Method == http.MethodPut {
		if _, ok := s.pathName(w, r, res); !ok {
			return admitted{}, false
		}
	}
	a, err := s.admit(r.Context(), r, res)
	if err != nil {
		s.writeError(w, r, err)
		return admitted{}, false
	}
	return a, true
}

// noteForced records that a workload was stored despite the assessment policy or the
// host's capacity.
func (s *Server) noteForced(ctx context.Context, name string, a admitted) {
	if s.rec == nil {
		return
	}
	if len(a.violations) > 0 {
		s.rec.Record(ctx, objects.Event{Type: "Warning", Reason: "PolicyViolation", Object: "Workload/" + name,
			Message: "applied with --force despite the assessment policy: " + strings.Join(a.violations, "; ")})
	}
	if a.overcommit != "" {
		s.rec.Record(ctx, objects.Event{Type: "Warning", Reason: "Overcommitted", Object: "Workload/" + name,
			Message: "applied with --force although " + a.overcommit})
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	a, ok := s.admitWrite(w, r)
	if !ok {
		return
	}
	rec := a.rec
	rec.ResourceVersion = 0
	created, err := s.store.Create(r.Context(), rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.noteForced(r.Context(), rec.Name, a)
	s.respond(w, r, http.StatusCreated, created)
}

// update replaces an object's metadata and spec. Without metadata.resourceVersion in the body
// it overwrites whatever is stored (apply); with it, a stale version is a conflict.
func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	a, ok := s.admitWrite(w, r)
	if !ok {
		return
	}
	rec := a.rec
	if rec.Name != r.PathValue("name") {
		writeStatus(w, http.StatusBadRequest, ReasonBadRequest,
			fmt.Sprintf("the body names %q but the path names %q", rec.Name, r.PathValue("name")))
		return
	}
	conditional := rec.ResourceVersion != 0
	for attempt := 0; ; attempt++ {
		cur, err := s.store.Get(r.Context(), rec.Kind, rec.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next := rec
		if !conditional {
			next.ResourceVersion = cur.ResourceVersion
		}
		next.Status = mergeStatus(rec.Kind, cur.Status, rec.Status)
		updated, err := s.store.Update(r.Context(), next)
		if errors.Is(err, store.ErrConflict) && !conditional && attempt < 5 {
			continue // a controller wrote the status meanwhile: read and retry
		}
		if err == nil {
			updated, err = s.storeAssessment(r.Context(), updated, rec.Status)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.noteForced(r.Context(), rec.Name, a)
		s.respond(w, r, http.StatusOK, updated)
		return
	}
}

// storeAssessment writes admission's assessment (tier, reasons, node VMs) into the status of
// an updated workload: Update writes the spec only. A controller may write the status
// meanwhile, so it merges with the stored status and tries again on a conflict.
func (s *Server) storeAssessment(ctx context.Context, obj store.Object, admitted []byte) (store.Object, error) {
	if obj.Kind != v1alpha1.KindWorkload || len(admitted) == 0 {
		return obj, nil
	}
	for attempt := 0; ; attempt++ {
		merged := mergeStatus(obj.Kind, obj.Status, admitted)
		if bytes.Equal(merged, obj.Status) {
			return obj, nil
		}
		obj.Status = merged
		out, err := s.store.UpdateStatus(ctx, obj)
		if !errors.Is(err, store.ErrConflict) || attempt >= 5 {
			return out, err
		}
		if obj, err = s.store.Get(ctx, obj.Kind, obj.Name); err != nil {
			return obj, err
		}
	}
}

// mergeStatus keeps what controllers observed (instances, conditions, phase) and takes the
// new assessment (tier, reasons) from admission.
func mergeStatus(kind string, cur, admitted []byte) []byte {
	if kind != v1alpha1.KindWorkload || len(cur) == 0 {
		if len(admitted) == 0 {
			return cur
		}
		return admitted
	}
	return objects.MergeWorkloadStatus(cur, admitted)
}

func (s *Server) respond(w http.ResponseWriter, r *http.Request, code int, rec store.Object) {
	obj, err := objects.Decode(rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, code, obj)
}

// portClashes reports host ports the workload publishes that another workload already does.
func (s *Server) portClashes(ctx context.Context, o *load.Object, w *v1alpha1.Workload) diag.List {
	mine := map[string]int{}
	for i, p := range w.Spec.Ports {
		if p.Publish != 0 {
			mine[fmt.Sprintf("%d/%s", p.Publish, p.Protocol)] = i
		}
	}
	if len(mine) == 0 {
		return nil
	}
	recs, _, err := s.store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return diag.List{{File: o.Doc.File, Msg: "check published ports: " + err.Error()}}
	}
	var errs diag.List
	for _, rec := range recs {
		if rec.Name == w.Metadata.Name {
			continue
		}
		other, err := objects.Workload(rec)
		if err != nil {
			continue
		}
		for _, p := range other.Spec.Ports {
			key := fmt.Sprintf("%d/%s", p.Publish, p.Protocol)
			if i, clash := mine[key]; clash && p.Publish != 0 {
				errs = append(errs, o.Errorf(fmt.Sprintf("spec.ports[%d].publish", i), "choose another host port, or change "+other.Metadata.Name+"'s",
					"host port %s is already published by workload %s", key, other.Metadata.Name))
			}
		}
	}
	return errs
}

// hostPorts asks the host about every port the workload publishes.
func (s *Server) hostPorts(ctx context.Context, o *load.Object, w *v1alpha1.Workload) diag.List {
	if s.host == nil {
		return nil
	}
	var errs diag.List
	for i, p := range w.Spec.Ports {
		if p.Publish == 0 {
			continue
		}
		path := fmt.Sprintf("spec.ports[%d].publish", i)
		r, err := s.host.PublishRefusal(ctx, string(p.Protocol), int(p.Publish))
		switch {
		case err != nil:
			errs = append(errs, o.Errorf(path, "try again; the daemon's log may say more", "cannot check host port %d/%s: %v", p.Publish, p.Protocol, err))
		case r != nil:
			errs = append(errs, o.Errorf(path, r.Hint, "%s", r.Reason))
		}
	}
	return errs
}

// hostSubnet asks the host about a segment's given subnet.
func (s *Server) hostSubnet(ctx context.Context, o *load.Object, sg *v1alpha1.Segment) diag.List {
	if s.host == nil || sg.Spec.Subnet == "" {
		return nil
	}
	p, err := netip.ParsePrefix(sg.Spec.Subnet)
	if err != nil {
		return nil // validation reports it
	}
	r, err := s.host.SubnetRefusal(ctx, p)
	switch {
	case err != nil:
		return diag.List{o.Errorf("spec.subnet", "try again; the daemon's log may say more", "cannot check subnet %s against the host's: %v", p, err)}
	case r != nil:
		return diag.List{o.Errorf("spec.subnet", r.Hint, "%s", r.Reason)}
	}
	return nil
}

// subnetOverlaps refuses a segment whose subnet overlaps another segment's, given or
// allocated.
func (s *Server) subnetOverlaps(ctx context.Context, o *load.Object, sg *v1alpha1.Segment) diag.List {
	if sg.Spec.Subnet == "" {
		return nil
	}
	mine, err := netip.ParsePrefix(sg.Spec.Subnet)
	if err != nil {
		return nil // validation reports it
	}
	recs, _, err := s.store.List(ctx, v1alpha1.KindSegment)
	if err != nil {
		return diag.List{{File: o.Doc.File, Msg: "check the subnet: " + err.Error()}}
	}
	var errs diag.List
	for _, rec := range recs {
		other, err := objects.Segment(rec)
		if err != nil || other.Metadata.Name == sg.Metadata.Name {
			continue
		}
		for _, sub := range []string{other.Spec.Subnet, statusSubnet(other)} {
			p, err := netip.ParsePrefix(sub)
			if err == nil && p.Overlaps(mine) {
				errs = append(errs, o.Errorf("spec.subnet", "choose a subnet that no other segment uses, or leave it empty to get one from the pool",
					"%s overlaps segment %s's %s", mine, other.Metadata.Name, p))
				break
			}
		}
	}
	return errs
}

func statusSubnet(sg *v1alpha1.Segment) string {
	if sg.Status == nil {
		return ""
	}
	return sg.Status.Subnet
}

// segmentUsers lists the workloads on segment name, sorted; workloads being deleted do not
// count (their instances go on their own, and the segment's bridge with the last of them).
func (s *Server) segmentUsers(ctx context.Context, name string) ([]string, error) {
	recs, _, err := s.store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil || w.Spec.Segment != name {
			continue
		}
		if _, deleting := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]; !deleting {
			users = append(users, w.Metadata.Name)
		}
	}
	slices.Sort(users)
	return users, nil
}
