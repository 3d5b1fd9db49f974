package compose

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
)

// LabelIsolation is the compose label that sets spec.isolation.
const LabelIsolation = "strata.dev/isolation"

// labelPrefix starts the labels strata reads.
const labelPrefix = "strata.dev/"

// strataLabels are the labels of strata's own prefix that a service may carry.
var strataLabels = []string{
	v1alpha1.AnnotationTrust, v1alpha1.AnnotationData, v1alpha1.AnnotationTenancy,
	v1alpha1.LabelTenant, LabelIsolation,
}

// labels reads the strata.dev/ labels of labels and deploy.labels; other labels are not
// copied. A label given in both with different values is an error.
func (b *builder) labels() {
	seen := map[string]string{}
	n, p := b.get("labels")
	b.labelPairs(b.r.pairs(n, p), p, seen)
	dp := b.p.Child("deploy", "labels")
	b.labelPairs(b.r.pairs(b.dep.get("labels"), dp), dp, seen)
}

func (b *builder) labelPairs(pairs []pair, p *field.Path, seen map[string]string) {
	for _, kv := range pairs {
		if !strings.HasPrefix(kv.key, labelPrefix) {
			continue
		}
		lp := p.Key(kv.key)
		if !slices.Contains(strataLabels, kv.key) {
			b.r.errorf(kv.node, lp, "strata reads "+strings.Join(strataLabels, ", "), "unknown strata label %q", kv.key)
			continue
		}
		value := strings.TrimSpace(kv.value)
		if prev, ok := seen[kv.key]; ok {
			if prev != value {
				b.r.errorf(kv.node, lp, "give the label one value", "%s is %q here and %q in another list", kv.key, value, prev)
			}
			continue
		}
		seen[kv.key] = value
		b.label(kv.key, value, kv, lp)
	}
}

// label applies one strata label.
func (b *builder) label(key, value string, kv pair, p *field.Path) {
	t := &b.w.Spec.Traits
	bad := func(accepted []string) {
		b.r.errorf(kv.node, p, "use one of "+strings.Join(accepted, ", "), "unsupported value %q for %s", value, key)
	}
	switch key {
	case v1alpha1.AnnotationTrust:
		if v, ok := oneOf(value, v1alpha1.TrustTrusted, v1alpha1.TrustInternal, v1alpha1.TrustUntrusted); ok {
			t.Trust = v
		} else {
			bad(names(v1alpha1.TrustTrusted, v1alpha1.TrustInternal, v1alpha1.TrustUntrusted))
		}
	case v1alpha1.AnnotationData:
		if v, ok := oneOf(value, v1alpha1.DataPublic, v1alpha1.DataInternal, v1alpha1.DataConfidential, v1alpha1.DataRegulated); ok {
			t.Data = v
		} else {
			bad(names(v1alpha1.DataPublic, v1alpha1.DataInternal, v1alpha1.DataConfidential, v1alpha1.DataRegulated))
		}
	case v1alpha1.AnnotationTenancy:
		if v, ok := oneOf(value, v1alpha1.TenancySingle, v1alpha1.TenancyMulti); ok {
			t.Tenancy = v
		} else {
			bad(names(v1alpha1.TenancySingle, v1alpha1.TenancyMulti))
		}
	case LabelIsolation:
		if v, ok := oneOf(value, v1alpha1.Isolations...); ok {
			b.w.Spec.Isolation = v
			b.from("spec.isolation", kv.node, p)
		} else {
			bad(names(v1alpha1.Isolations...))
		}
	case v1alpha1.LabelTenant:
		if msgs := validation.IsValidLabelValue(value); len(msgs) > 0 || value == "" {
			b.r.errorf(kv.node, p, "name the tenant with at most 63 letters, digits, '-', '_' and '.', such as shop",
				"invalid tenant %q", value)
			return
		}
		if b.w.Metadata.Labels == nil {
			b.w.Metadata.Labels = map[string]string{}
		}
		b.w.Metadata.Labels[v1alpha1.LabelTenant] = value
		b.from("metadata.labels", kv.node, p)
	}
}

// oneOf returns value as a T when it is one of valid.
func oneOf[T ~string](value string, valid ...T) (T, bool) {
	for _, v := range valid {
		if string(v) == value {
			return v, true
		}
	}
	return "", false
}

func names[T ~string](values ...T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
