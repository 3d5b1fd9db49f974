package rvtools

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/osrelease"
)

// os fills traits.os and traits.osVersion from the guest OS the VMware Tools report, or
// else from the one in the VM's configuration file.
func (r *row) os(w *v1alpha1.Workload) {
	text := r.cell(colOSTools)
	if text == "" {
		text = r.cell(colOSConfig)
	}
	if text == "" {
		return
	}
	rel, ok := r.im.oses[text]
	if !ok {
		rel = osrelease.Parse(text)
		r.im.oses[text] = rel
	}
	if rel.Version == "" {
		return // only a word size such as "(64-bit)"
	}
	w.Spec.Traits.OS = rel.Family
	w.Spec.Traits.OSVersion = rel.Version
}

// annotations records where the VM ran and its power state.
func (r *row) annotations(w *v1alpha1.Workload) {
	for _, a := range []struct {
		key string
		col column
	}{
		{AnnotationSourceCluster, colCluster},
		{AnnotationSourceHost, colHost},
		{AnnotationSourceDatacenter, colDatacenter},
		{AnnotationSourceIP, colPrimaryIP},
		{AnnotationPowerstate, colPowerstate},
	} {
		if v := r.cell(a.col); v != "" {
			if w.Metadata.Annotations == nil {
				w.Metadata.Annotations = map[string]string{}
			}
			w.Metadata.Annotations[a.key] = v
		}
	}
}

// traitToken finds strata.dev/KEY=VALUE and strata.dev/KEY: VALUE in free text. A value
// ends at white space, ',' or ';', or is quoted.
var traitToken = regexp.MustCompile(`(?i)\bstrata\.dev/([a-z0-9][a-z0-9._-]*)[ \t]*[=:][ \t]*("[^"]*"|'[^']*'|[^\s,;"']*)`)

// traitKeys are the keys the Annotation column may set, with their accepted values
// (nil: a label value).
var traitKeys = []struct {
	key    string
	values []string
}{
	{v1alpha1.AnnotationTrust, []string{string(v1alpha1.TrustTrusted), string(v1alpha1.TrustInternal), string(v1alpha1.TrustUntrusted)}},
	{v1alpha1.AnnotationData, []string{string(v1alpha1.DataPublic), string(v1alpha1.DataInternal), string(v1alpha1.DataConfidential), string(v1alpha1.DataRegulated)}},
	{v1alpha1.AnnotationTenancy, []string{string(v1alpha1.TenancySingle), string(v1alpha1.TenancyMulti)}},
	{v1alpha1.LabelTenant, nil},
}

// traits applies the strata.dev/ settings written in the Annotation column.
func (r *row) traits(w *v1alpha1.Workload) {
	text := r.cell(colAnnotation)
	if !strings.Contains(strings.ToLower(text), "strata.dev/") {
		return
	}
	seen := map[string]string{}
	for _, m := range traitToken.FindAllStringSubmatch(text, -1) {
		key := "strata.dev/" + strings.ToLower(m[1])
		value := strings.Trim(m[2], `"'`)
		value = strings.TrimRight(value, ".)")
		i := traitIndex(key)
		if i < 0 {
			r.fail(colAnnotation, fmt.Sprintf("%s is not a key strata reads", key),
				"use strata.dev/trust, strata.dev/data, strata.dev/tenancy or strata.dev/tenant, such as strata.dev/trust=untrusted")
			continue
		}
		if prev, ok := seen[key]; ok && prev != value {
			r.fail(colAnnotation, fmt.Sprintf("%s is given twice, as %q and %q", key, prev, value), "give it once")
			continue
		}
		seen[key] = value
		r.applyTrait(w, key, value, traitKeys[i].values)
	}
}

func traitIndex(key string) int {
	for i, k := range traitKeys {
		if k.key == key {
			return i
		}
	}
	return -1
}

func (r *row) applyTrait(w *v1alpha1.Workload, key, value string, accepted []string) {
	if accepted == nil {
		if value == "" || len(validation.IsValidLabelValue(value)) > 0 {
			r.fail(colAnnotation, fmt.Sprintf("%s: %q is not a tenant name", key, value),
				"use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, such as strata.dev/tenant=shop")
			return
		}
		if w.Metadata.Labels == nil {
			w.Metadata.Labels = map[string]string{}
		}
		w.Metadata.Labels[key] = value
		return
	}
	v := strings.ToLower(value)
	ok := false
	for _, a := range accepted {
		ok = ok || v == a
	}
	if !ok {
		r.fail(colAnnotation, fmt.Sprintf("%s: %q is not accepted", key, value),
			"accepted values: "+strings.Join(accepted, ", "))
		return
	}
	t := &w.Spec.Traits
	switch key {
	case v1alpha1.AnnotationTrust:
		t.Trust = v1alpha1.Trust(v)
	case v1alpha1.AnnotationData:
		t.Data = v1alpha1.DataClass(v)
	case v1alpha1.AnnotationTenancy:
		t.Tenancy = v1alpha1.Tenancy(v)
	}
}
