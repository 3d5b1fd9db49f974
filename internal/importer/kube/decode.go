package kube

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/load"
)

// podObject is what strata reads from an object of any workload kind: its metadata, its pod
// template and the facts that depend on the kind.
type podObject struct {
	meta     metav1.ObjectMeta
	template corev1.PodTemplateSpec
	// tmplAt is where the template is in the object; empty for a Pod, its own template.
	tmplAt path
	// replicas is nil when the kind's default applies; replicasAt is where it is written.
	replicas   *int32
	replicasAt path
	// controller kinds restart their pods always; jobs default to OnFailure.
	controller, job bool
	// perNode marks a DaemonSet: one replica on every node.
	perNode bool
	// claims are a StatefulSet's volumeClaimTemplates.
	claims []corev1.PersistentVolumeClaim
	// schedule is a CronJob's; completions a Job's.
	schedule    string
	completions *int32
	// other marks a kind strata knows only by its pod template (an Argo Rollout, an
	// OpenShift DeploymentConfig, any custom resource shaped so).
	other bool
}

// templated is any object with a pod template at spec.template, read for that alone.
type templated struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Template corev1.PodTemplateSpec `json:"template"`
	} `json:"spec"`
}

// hasPodTemplate reports whether an object has a pod template at spec.template.spec.
func hasPodTemplate(o *object) bool {
	n := nodeAt(o.doc.Node, "spec", "template", "spec")
	return n != nil && n.Kind == yaml.MappingNode
}

// nodeAt returns the node at the fields under n, or nil when one of them is missing.
func nodeAt(n *yaml.Node, fields ...string) *yaml.Node {
	n = resolve(n)
	for _, f := range fields {
		if n = resolve(load.Field(n, f)); n == nil {
			return nil
		}
	}
	return n
}

// decodeWorkload decodes an object of a workload kind into the Kubernetes API type of its
// kind, or an object of another kind for its pod template. Values that do not fit are
// reported and left out; the rest is decoded.
func decodeWorkload(o *object) (*podObject, diag.List) {
	tmpl := path{"spec", "template"}
	replicasAt := path{"spec", "replicas"}
	if !isWorkloadKind(o.doc.APIVersion, o.doc.Kind) {
		var v templated
		errs := decode(o, &v)
		p := &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl, other: true}
		// A custom resource's replicas may mean anything; a plain count is taken as one.
		if n := nodeAt(o.doc.Node, "spec", "replicas"); n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
			if r, err := strconv.ParseInt(n.Value, 10, 32); err == nil {
				r32 := int32(r)
				p.replicas, p.replicasAt = &r32, replicasAt
			}
		}
		return p, errs
	}
	switch o.doc.Kind {
	case kindPod:
		var v corev1.Pod
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: corev1.PodTemplateSpec{ObjectMeta: v.ObjectMeta, Spec: v.Spec}}, errs
	case kindDeployment:
		var v appsv1.Deployment
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Replicas, replicasAt: replicasAt, controller: true}, errs
	case kindStatefulSet:
		var v appsv1.StatefulSet
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Replicas, replicasAt: replicasAt, controller: true,
			claims: v.Spec.VolumeClaimTemplates}, errs
	case kindDaemonSet:
		var v appsv1.DaemonSet
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl, controller: true, perNode: true}, errs
	case kindReplicaSet:
		var v appsv1.ReplicaSet
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Replicas, replicasAt: replicasAt, controller: true}, errs
	case kindReplicationController:
		var v corev1.ReplicationController
		errs := decode(o, &v)
		p := &podObject{meta: v.ObjectMeta, tmplAt: tmpl, replicas: v.Spec.Replicas, replicasAt: replicasAt, controller: true}
		if v.Spec.Template != nil {
			p.template = *v.Spec.Template
		}
		return p, errs
	case kindJob:
		var v batchv1.Job
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Parallelism, replicasAt: path{"spec", "parallelism"}, job: true,
			completions: v.Spec.Completions}, errs
	case kindCronJob:
		// batch/v1beta1 and batch/v2alpha1 CronJobs have the shape of batch/v1's.
		var v batchv1.CronJob
		errs := decode(o, &v)
		return &podObject{meta: v.ObjectMeta, template: v.Spec.JobTemplate.Spec.Template,
			tmplAt: path{"spec", "jobTemplate", "spec", "template"}, job: true,
			schedule: v.Spec.Schedule, completions: v.Spec.JobTemplate.Spec.Completions}, errs
	}
	return nil, diag.List{o.errorf(path{"kind"}, "", "kind %s describes no workload", o.doc.Kind)}
}

// decode decodes the object leniently into out, a Kubernetes API type. Every value that does
// not fit the type is reported at its own position with its path, and left out of out.
func decode(o *object, out any) diag.List {
	errs := load.Loose(o.doc, out)
	for _, e := range errs {
		e.Path = o.at.to(pathOf(e.Path)...).String()
		hint := e.Hint
		if want, ok := expected(e.Msg); ok && (hint == "" || strings.HasPrefix(hint, "check the field types")) {
			hint = fmt.Sprintf("make it %s, as a Kubernetes %s %s requires", want, o.doc.APIVersion, o.doc.Kind)
		}
		if hint == "" {
			hint = "fix the value"
		}
		e.Msg = fmt.Sprintf("not a valid %s: %s", o.doc.Kind, e.Msg)
		e.Hint = hint + "; the object is not imported"
	}
	return errs
}

// expected picks what a value should be out of a decoder's "expected X, got Y".
func expected(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "expected ")
	if !ok {
		return "", false
	}
	want, _, ok := strings.Cut(rest, ", got ")
	return want, ok
}

// pathOf turns a printed path back into steps, only for reprinting it after a prefix.
func pathOf(s string) path {
	if s == "" {
		return nil
	}
	return path{s}
}
