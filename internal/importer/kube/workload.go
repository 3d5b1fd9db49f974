package kube

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
)

// builder turns one decoded object into a workload, collecting every problem it finds.
type builder struct {
	o     *object
	p     *podObject
	spec  path // where the pod spec is in the object
	errs  diag.List
	notes []inventory.Note
}

// build makes the workload of a decoded object, with notes on what does not carry over.
// Its name is the object's name as a DNS label; the importer makes names unique
// afterwards. The workload is defaulted and valid when no errors are returned.
func build(o *object, p *podObject) (*v1alpha1.Workload, []inventory.Note, diag.List) {
	b := &builder{o: o, p: p, spec: p.tmplAt.to("spec")}
	ps := &p.template.Spec
	if len(ps.Containers) == 0 {
		return nil, nil, diag.List{o.errorf(b.spec.to("containers"), "give the pod template a container with an image",
			"the %s runs no containers", o.doc.Kind)}
	}
	main := &ps.Containers[0]
	if strings.TrimSpace(main.Image) == "" {
		b.errs = append(b.errs, o.errorf(b.spec.to("containers", 0, "image"), "give the container an image",
			"container %q has no image", main.Name))
	}

	w := &v1alpha1.Workload{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindWorkload},
		Metadata: v1alpha1.ObjectMeta{Name: baseName(o.doc.Kind, &p.meta)},
	}
	s := &w.Spec
	s.Image = strings.TrimSpace(main.Image)
	if n := len(main.Command) + len(main.Args); n > 0 {
		s.Command = make([]string, 0, n)
		s.Command = append(append(s.Command, main.Command...), main.Args...)
	}
	s.Env = literalEnv(main.Env)
	s.Replicas = b.replicas()
	s.RestartPolicy = b.restartPolicy()
	s.Resources = b.resources()
	s.Ports = b.ports()
	s.Health = b.health(main)
	s.Volumes = b.volumes()

	if rc := ps.RuntimeClassName; rc != nil && *rc != "" {
		if iso := isolationOf(*rc); iso != "" {
			s.Isolation = iso
		} else {
			annotate(w, AnnotationRuntimeClass, *rc)
		}
	}
	if p.perNode {
		annotate(w, AnnotationPerNode, "true")
	}
	b.traits(&s.Traits)
	b.annotations(w)
	if len(b.errs) > 0 {
		return nil, nil, b.errs
	}
	b.explainLoss()
	slices.SortStableFunc(b.notes, func(a, c inventory.Note) int { return a.Line - c.Line })

	w.SetDefaults()
	if ferrs := v1alpha1.ValidateWorkload(w); len(ferrs) > 0 {
		// The rules above only build valid workloads; this reports what they missed
		// rather than handing on something strata cannot run.
		var errs diag.List
		for _, fe := range ferrs {
			errs = append(errs, o.errorf(nil, "change the manifest so that this field has a value strata accepts",
				"the imported workload is not valid: %s", fe.Error()))
		}
		return nil, nil, errs
	}
	return w, b.notes, nil
}

// baseName is the object's name as a DNS label; an object without a usable name is named
// after its generateName or its kind.
func baseName(kind string, meta *metav1.ObjectMeta) string {
	for _, n := range []string{meta.Name, meta.GenerateName, kind} {
		if l := dnsLabel(n); l != "" {
			return l
		}
	}
	return "workload"
}

func annotate(w *v1alpha1.Workload, k, v string) {
	if w.Metadata.Annotations == nil {
		w.Metadata.Annotations = map[string]string{}
	}
	w.Metadata.Annotations[k] = v
}

// literalEnv keeps the variables with literal values; those taken from secrets, config maps
// or fields (valueFrom) have no value strata could know.
func literalEnv(env []corev1.EnvVar) map[string]string {
	var out map[string]string
	for _, e := range env {
		if e.ValueFrom != nil || e.Name == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[e.Name] = e.Value
	}
	return out
}

// replicas is the kind's replica count: spec.replicas of Deployments, StatefulSets and
// ReplicaSets and spec.parallelism of Jobs (1 when unset), 1 for the rest.
func (b *builder) replicas() *int32 {
	r := v1alpha1.DefaultReplicas
	if b.p.replicas != nil {
		r = *b.p.replicas
		if r < 0 || r > v1alpha1.MaxReplicas {
			b.errs = append(b.errs, b.o.errorf(b.p.replicasAt, fmt.Sprintf("use a count between 0 and %d", v1alpha1.MaxReplicas),
				"%d replicas is out of range", r))
			r = v1alpha1.DefaultReplicas
		}
	}
	return &r
}

// restartPolicy is the pod's for Pods and Jobs (Jobs default to OnFailure); controllers
// (Deployment, StatefulSet, DaemonSet, ReplicaSet) always restart their pods.
func (b *builder) restartPolicy() v1alpha1.RestartPolicy {
	if b.p.controller {
		return v1alpha1.RestartAlways
	}
	rp := v1alpha1.RestartPolicy(b.p.template.Spec.RestartPolicy)
	switch rp {
	case "":
		if b.p.job {
			return v1alpha1.RestartOnFailure
		}
		return v1alpha1.RestartAlways
	case v1alpha1.RestartAlways, v1alpha1.RestartOnFailure, v1alpha1.RestartNever:
		return rp
	}
	b.errs = append(b.errs, b.o.errorf(b.spec.to("restartPolicy"), "use one of Always, OnFailure, Never",
		"unsupported restartPolicy %q", string(rp)))
	return ""
}
