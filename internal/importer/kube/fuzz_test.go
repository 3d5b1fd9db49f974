package kube

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/load"
)

// FuzzImport feeds raw bytes through load.Documents and Import. Whatever the input, Import
// must not panic, every workload must be valid and uniquely named, every item, skipped
// object, note and error must name the file and a line, and importing twice gives the same.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, file := range append(files, more...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		deployment(container("ports: [{name: http, containerPort: 80}]\nlivenessProbe: {httpGet: {port: http}}")),
		pod("hostPID: true\n" + container("securityContext: {privileged: true, capabilities: {add: [cap_sys_admin]}}")),
		"apiVersion: v1\nkind: List\nitems:\n- &p {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: a, image: a:1}]}}\n- *p\n",
		"apiVersion: v1\nkind: PodList\nitems: [{metadata: {name: x.y}, spec: {containers: [{image: i}]}}]\n",
		"{\"apiVersion\": \"apps/v1\", \"kind\": \"StatefulSet\", \"metadata\": {\"name\": \"db\"}, \"spec\": {\"replicas\": 2}}",
		"apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: c}]}}}}}\n",
		"apiVersion: v1\nkind: Pod\n",
		"- not a mapping\n",
		"apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec: {replicas: 2, template: {spec: {hostNetwork: true, " +
			"containers: [{name: a, image: a, securityContext: {privileged: true}}]}}}\n",
		"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {replicas: 3, strategy: {canary: {}}, " +
			"template: {spec: {containers: [{name: a, image: a}], volumes: [{name: h, hostPath: {path: /var//run/}}]}}}\n",
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
		"base: &b {name: a, image: a:1}\napiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec: {containers: [{<<: *b, name: c}]}\n",
		pod("securityContext: {sysctls: [{name: net.core.somaxconn, value: '1024'}], seccompProfile: {type: Unconfined}}\n" +
			container("ports: [{containerPort: web}]\nresources: {limits: {memory: 1 GB}}")),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz.yaml"
		docs, _ := load.Documents(file, data)
		set, errs := Import(docs)

		names := map[string]bool{}
		for _, it := range set.Items {
			w := it.Workload
			if ferrs := v1alpha1.ValidateWorkload(&w); len(ferrs) > 0 {
				t.Fatalf("workload %q is not valid: %v", w.Metadata.Name, ferrs.ToAggregate())
			}
			if names[w.Metadata.Name] {
				t.Fatalf("two workloads are named %q", w.Metadata.Name)
			}
			names[w.Metadata.Name] = true
			if w.APIVersion != v1alpha1.GroupVersion || w.Kind != v1alpha1.KindWorkload {
				t.Fatalf("workload %q has apiVersion %q and kind %q", w.Metadata.Name, w.APIVersion, w.Kind)
			}
			if s := it.Source; s.File != file || s.Line < 1 || s.Format != v1alpha1.FormatKubernetes || s.Kind == "" {
				t.Fatalf("workload %q has source %+v", w.Metadata.Name, s)
			}
			for _, n := range it.Notes {
				if n.Line < 1 || n.Message == "" {
					t.Fatalf("workload %q has note %+v without its line or message", w.Metadata.Name, n)
				}
			}
		}
		for _, s := range set.Skipped {
			if s.Source.File != file || s.Source.Line < 1 || s.Reason == "" {
				t.Fatalf("skipped object %+v lacks its place or reason", s)
			}
		}
		for _, e := range errs {
			if e.File != file || e.Line < 1 || e.Msg == "" {
				t.Fatalf("error %q lacks its file, line or message", e.Error())
			}
		}

		again, errsAgain := Import(docs)
		if !reflect.DeepEqual(set, again) || !reflect.DeepEqual(errs, errsAgain) {
			t.Fatalf("importing twice gives different results")
		}
	})
}
