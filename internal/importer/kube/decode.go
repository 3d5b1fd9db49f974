package kube

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
}

// decodeWorkload decodes an object of a workload kind into the Kubernetes API type of its kind.
func decodeWorkload(o *object) (*podObject, diag.List) {
	tmpl := path{"spec", "template"}
	switch o.doc.Kind {
	case kindPod:
		var v corev1.Pod
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: corev1.PodTemplateSpec{ObjectMeta: v.ObjectMeta, Spec: v.Spec}}, nil
	case kindDeployment:
		var v appsv1.Deployment
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Replicas, replicasAt: path{"spec", "replicas"}, controller: true}, nil
	case kindStatefulSet:
		var v appsv1.StatefulSet
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Replicas, replicasAt: path{"spec", "replicas"}, controller: true,
			claims: v.Spec.VolumeClaimTemplates}, nil
	case kindDaemonSet:
		var v appsv1.DaemonSet
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl, controller: true, perNode: true}, nil
	case kindReplicaSet:
		var v appsv1.ReplicaSet
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Replicas, replicasAt: path{"spec", "replicas"}, controller: true}, nil
	case kindJob:
		var v batchv1.Job
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: v.Spec.Template, tmplAt: tmpl,
			replicas: v.Spec.Parallelism, replicasAt: path{"spec", "parallelism"}, job: true}, nil
	case kindCronJob:
		// batch/v1beta1 and batch/v2alpha1 CronJobs have the shape of batch/v1's.
		var v batchv1.CronJob
		if errs := decode(o, &v); errs != nil {
			return nil, errs
		}
		return &podObject{meta: v.ObjectMeta, template: v.Spec.JobTemplate.Spec.Template,
			tmplAt: path{"spec", "jobTemplate", "spec", "template"}, job: true}, nil
	}
	return nil, diag.List{o.errorf(path{"kind"}, "", "kind %s describes no workload", o.doc.Kind)}
}

// decode decodes the object leniently into out, a Kubernetes API type, and rewrites what
// the JSON decoder says into what to fix.
func decode(o *object, out any) diag.List {
	errs := load.Loose(o.doc, out)
	for _, e := range errs {
		if !strings.HasPrefix(e.Hint, "check the field types") {
			// A problem with the document's YAML itself, already placed at its node.
			e.Path = o.at.to(pathOf(e.Path)...).String()
			continue
		}
		msg, where, want := explain(e.Msg)
		if quantityError.MatchString(e.Msg) {
			if at, v, ok := badQuantity(o.doc.Node, nil, 0); ok {
				where, msg = at.String(), fmt.Sprintf("invalid quantity %q", v)
			}
		}
		e.Path = o.at.to(pathOf(where)...).String()
		e.Msg = fmt.Sprintf("not a valid %s: %s", o.doc.Kind, msg)
		e.Hint = fmt.Sprintf("make it %s, as a Kubernetes %s %s requires; the object is not imported",
			want, o.doc.APIVersion, o.doc.Kind)
	}
	return errs
}

// quantityFields are the fields of the API types that hold maps of quantities.
var quantityFields = map[string]bool{"requests": true, "limits": true, "overhead": true, "capacity": true}

// badQuantity finds the first value of a map of quantities (resources.requests, ...) that
// is not a quantity, for an error that names it.
func badQuantity(n *yaml.Node, at path, depth int) (path, string, bool) {
	n = resolve(n)
	if n == nil || depth > maxQuantityDepth {
		return nil, "", false
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, resolve(n.Content[i+1])
			if quantityFields[k] && v != nil && v.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(v.Content); j += 2 {
					q := resolve(v.Content[j+1])
					if q == nil || q.Kind != yaml.ScalarNode {
						continue
					}
					if _, err := resource.ParseQuantity(q.Value); err != nil {
						return at.to(k, key(v.Content[j].Value)), q.Value, true
					}
				}
				continue
			}
			if p, val, ok := badQuantity(v, at.to(k), depth+1); ok {
				return p, val, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p, val, ok := badQuantity(c, at.to(i), depth+1); ok {
				return p, val, true
			}
		}
	}
	return nil, "", false
}

// maxQuantityDepth bounds the search: quantities sit a few levels deep in a workload.
const maxQuantityDepth = 16

// pathOf turns a printed path back into steps, only for reprinting it after a prefix.
func pathOf(s string) path {
	if s == "" {
		return nil
	}
	return path{s}
}

var (
	// The messages of encoding/json and of the API types' own decoders.
	typeError     = regexp.MustCompile(`^json: cannot unmarshal (.+) into Go struct field (\S+) of type (\S+)$`)
	valueError    = regexp.MustCompile(`^json: cannot unmarshal (.+) into Go value of type (\S+)$`)
	quantityError = regexp.MustCompile(`^quantities must match`)
	timeError     = regexp.MustCompile(`^parsing time `)
)

// explain turns a decoding error into what is wrong, the field (a path such as
// spec.replicas, or ""), and what the value should be.
func explain(msg string) (what, field, want string) {
	if m := typeError.FindStringSubmatch(msg); m != nil {
		want = describeGoType(m[3])
		return fmt.Sprintf("expected %s, got %s", want, describeJSON(m[1])), fieldPath(m[2]), want
	}
	if m := valueError.FindStringSubmatch(msg); m != nil {
		want = describeGoType(m[2])
		return fmt.Sprintf("expected %s, got %s", want, describeJSON(m[1])), "", want
	}
	if quantityError.MatchString(msg) {
		return "a resource quantity is not valid", "", "a quantity such as 500m, 1.5 or 2Gi"
	}
	if timeError.MatchString(msg) {
		return "a time is not valid", "", "an RFC 3339 time such as 2026-01-02T15:04:05Z"
	}
	return strings.TrimPrefix(msg, "json: "), "", "a value of the right type"
}

// fieldPath turns encoding/json's Type.field.Embedded.field into field.field: the first
// step names a Go type, and steps in upper case are embedded Go structs, not fields.
func fieldPath(s string) string {
	steps := strings.Split(s, ".")
	var out []string
	for i, st := range steps {
		if i == 0 || st == "" || (st[0] >= 'A' && st[0] <= 'Z') {
			continue
		}
		out = append(out, st)
	}
	return strings.Join(out, ".")
}

func describeGoType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.Contains(t, "."):
		return "a mapping of fields"
	}
	return "a " + t
}

func describeJSON(kind string) string {
	k, v, _ := strings.Cut(kind, " ")
	switch k {
	case "string":
		return "a string"
	case "number":
		if v != "" {
			return "the number " + v
		}
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "a list"
	case "object":
		return "a mapping"
	}
	return kind
}
