package kube

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
)

// lookup finds a strata.dev annotation (or label, when labels is set) on the pod template or
// on the object; the template's wins, and at one level an annotation wins over a label. It
// returns the value and where it is written.
func (b *builder) lookup(name string, labels bool) (string, path, bool) {
	type source struct {
		m  map[string]string
		at path
	}
	tmpl := b.p.tmplAt.to("metadata")
	obj := path{"metadata"}
	sources := []source{{b.p.template.Annotations, tmpl.to("annotations")}}
	if labels {
		sources = append(sources, source{b.p.template.Labels, tmpl.to("labels")})
	}
	sources = append(sources, source{b.p.meta.Annotations, obj.to("annotations")})
	if labels {
		sources = append(sources, source{b.p.meta.Labels, obj.to("labels")})
	}
	for _, s := range sources {
		if v, ok := s.m[name]; ok {
			return v, s.at.to(key(name)), true
		}
	}
	return "", nil, false
}

// enumAnnotation reads an annotation that must hold one of valid; a value outside them is
// an error at the annotation that names the accepted values.
func enumAnnotation[T ~string](b *builder, name string, valid []T) (T, bool) {
	raw, at, ok := b.lookup(name, false)
	if !ok {
		return "", false
	}
	v := T(strings.ToLower(strings.TrimSpace(raw)))
	if slices.Contains(valid, v) {
		return v, true
	}
	names := make([]string, len(valid))
	for i, ok := range valid {
		names[i] = string(ok)
	}
	b.errs = append(b.errs, b.o.errorf(at, "use one of "+strings.Join(names, ", "),
		"unsupported value %q for annotation %s", raw, name))
	return "", false
}

// annotations applies the strata.dev annotations: trust, data, tenancy, isolation and the
// tenant. The tenant defaults to the object's namespace.
func (b *builder) annotations(w *v1alpha1.Workload) {
	t := &w.Spec.Traits
	if v, ok := enumAnnotation(b, v1alpha1.AnnotationTrust,
		[]v1alpha1.Trust{v1alpha1.TrustTrusted, v1alpha1.TrustInternal, v1alpha1.TrustUntrusted}); ok {
		t.Trust = v
	}
	if v, ok := enumAnnotation(b, v1alpha1.AnnotationData,
		[]v1alpha1.DataClass{v1alpha1.DataPublic, v1alpha1.DataInternal, v1alpha1.DataConfidential, v1alpha1.DataRegulated}); ok {
		t.Data = v
	}
	if v, ok := enumAnnotation(b, v1alpha1.AnnotationTenancy,
		[]v1alpha1.Tenancy{v1alpha1.TenancySingle, v1alpha1.TenancyMulti}); ok {
		t.Tenancy = v
	}
	if v, ok := enumAnnotation(b, AnnotationIsolation, v1alpha1.Isolations); ok {
		w.Spec.Isolation = v
	}

	tenant := ""
	if raw, at, ok := b.lookup(v1alpha1.LabelTenant, true); ok && strings.TrimSpace(raw) != "" {
		tenant = strings.TrimSpace(raw)
		if msgs := validation.IsValidLabelValue(tenant); len(msgs) > 0 {
			b.errs = append(b.errs, b.o.errorf(at,
				"name the tenant with at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
				"invalid tenant %q", raw))
			tenant = ""
		}
	} else if ns := b.p.meta.Namespace; ns != "" && ns != "default" {
		// A namespace is the tenant boundary of Kubernetes: quotas, RBAC and network
		// policies are drawn per namespace, so objects of different namespaces are taken to
		// belong to different tenants unless strata.dev/tenant says otherwise.
		tenant = dnsLabel(ns)
	}
	if tenant != "" {
		w.Metadata.Labels = map[string]string{v1alpha1.LabelTenant: tenant}
	}
}
