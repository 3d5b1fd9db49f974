package crds_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/deploy/crds"
)

// TestStrataSchemasCoverTypes walks the Go types of Workload and Segment and
// checks that the CRD schema has every field they encode: a field added to
// api/v1alpha1 without `make generate` would be pruned by the API server.
func TestStrataSchemasCoverTypes(t *testing.T) {
	all, err := crds.Decode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		crd string
		typ reflect.Type
	}{
		{"workloads.strata.dev", reflect.TypeFor[v1alpha1.Workload]()},
		{"segments.strata.dev", reflect.TypeFor[v1alpha1.Segment]()},
	}
	for _, tt := range tests {
		t.Run(tt.crd, func(t *testing.T) {
			for _, c := range all {
				if c.Name == tt.crd {
					top := c.Spec.Versions[0].Schema.OpenAPIV3Schema
					for _, part := range []string{"spec", "status"} {
						f, _ := tt.typ.FieldByName(strings.ToUpper(part[:1]) + part[1:])
						coverType(t, part, f.Type, top.Properties[part])
					}
					return
				}
			}
			t.Fatalf("no CRD %s", tt.crd)
		})
	}
}

// leaves are types whose schema is not built from their fields.
var leaves = map[reflect.Type]bool{
	reflect.TypeFor[resource.Quantity](): true,
	reflect.TypeFor[time.Time]():         true,
}

// coverType checks that schema s, at path, describes every field of typ.
func coverType(t *testing.T, path string, typ reflect.Type, s apiextensionsv1.JSONSchemaProps) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if leaves[typ] {
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		if s.Items == nil || s.Items.Schema == nil {
			t.Errorf("%s: the CRD has no item schema for %s; run `make generate`", path, typ)
			return
		}
		coverType(t, path+"[]", typ.Elem(), *s.Items.Schema)
	case reflect.Map:
		if s.AdditionalProperties == nil || s.AdditionalProperties.Schema == nil {
			t.Errorf("%s: the CRD has no value schema for %s; run `make generate`", path, typ)
			return
		}
		coverType(t, path+"{}", typ.Elem(), *s.AdditionalProperties.Schema)
	case reflect.Struct:
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && strings.Contains(opts, "inline") {
				coverType(t, path, f.Type, s)
				continue
			}
			if name == "" {
				name = f.Name
			}
			prop, ok := s.Properties[name]
			if !ok {
				t.Errorf("%s.%s: not in the CRD's schema; run `make generate`", path, name)
				continue
			}
			coverType(t, path+"."+name, f.Type, prop)
		}
	}
}
