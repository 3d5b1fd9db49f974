package kube

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/inventory"
)

// TestReplicationController imports the core group's oldest controller with its replicas
// and its pod template's privileges.
func TestReplicationController(t *testing.T) {
	src := `apiVersion: v1
kind: ReplicationController
metadata:
  name: kube-proxy-legacy
  namespace: kube-system
spec:
  replicas: 3
  selector: {k8s-app: kube-proxy-legacy}
  template:
    metadata:
      labels: {k8s-app: kube-proxy-legacy}
    spec:
      hostNetwork: true
      containers:
      - name: proxy
        image: registry.example/kube-proxy:v1.9.11
        command: [/usr/local/bin/kube-proxy, --proxy-mode=iptables]
        securityContext: {privileged: true}
`
	w := importOne(t, src)
	if *w.Spec.Replicas != 3 || !w.Spec.Traits.Privileged || !slices.Contains(w.Spec.Traits.HostAccess, v1alpha1.HostNetwork) {
		t.Errorf("replicas %d, privileged %v, host access %v; want 3, true and network",
			*w.Spec.Replicas, w.Spec.Traits.Privileged, w.Spec.Traits.HostAccess)
	}
	if w.Spec.RestartPolicy != v1alpha1.RestartAlways {
		t.Errorf("restart policy %q, want Always as for every controller", w.Spec.RestartPolicy)
	}
}

// TestPodTemplateKinds imports any object with a pod template at spec.template.spec, with a
// note that names its kind, and skips objects of other shapes.
func TestPodTemplateKinds(t *testing.T) {
	src := `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: checkout}
spec:
  replicas: 5
  strategy:
    canary:
      steps: [{setWeight: 20}, {pause: {duration: 10m}}]
  template:
    spec:
      containers:
      - {name: checkout, image: registry.example/shop/checkout:4.2}
---
apiVersion: apps.openshift.io/v1
kind: DeploymentConfig
metadata: {name: legacy-billing}
spec:
  replicas: 2
  triggers: [{type: ConfigChange}]
  template:
    spec:
      containers:
      - {name: billing, image: registry.example/billing:9}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: odd}
spec:
  replicas: many
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: w, image: registry.example/widget:1}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: no-template}
spec: {template: {name: not-a-pod}}
`
	set, errs := importString(t, "crd.yaml", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, it := range set.Items {
		got = append(got, it.Source.Kind+" "+it.Workload.Metadata.Name+" x"+
			strings.TrimSpace(strings.Repeat("I", int(*it.Workload.Spec.Replicas)))+" "+string(it.Workload.Spec.RestartPolicy))
	}
	want := []string{"Rollout checkout xIIIII Always", "DeploymentConfig legacy-billing xII Always", "Widget odd xI Never"}
	if !slices.Equal(got, want) {
		t.Errorf("imported %q, want %q", got, want)
	}
	for _, it := range set.Items {
		if !slices.ContainsFunc(it.Notes, func(n inventory.Note) bool {
			return strings.Contains(n.Message, "imported from its pod template") && strings.Contains(n.Message, it.Source.Kind)
		}) {
			t.Errorf("%s: no note naming its kind among %+v", it.Source.Kind, it.Notes)
		}
	}
	if len(set.Skipped) != 1 || set.Skipped[0].Source.Kind != "Gadget" {
		t.Errorf("skipped %+v, want the Gadget", set.Skipped)
	}
}

// TestKustomizationSkipped skips kustomize's recipes with what to do, without failing the
// objects beside them.
func TestKustomizationSkipped(t *testing.T) {
	src := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources: [deployment.yaml, service.yaml]
images:
- {name: web, newTag: "2.1"}
---
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches: [{path: replicas.yaml}]
---
` + deployment(container(""))
	set, errs := importString(t, "all.yaml", src)
	if len(errs) > 0 || len(set.Items) != 1 {
		t.Fatalf("%d workloads and errors %v, want the Deployment alone", len(set.Items), errs)
	}
	if len(set.Skipped) != 2 {
		t.Fatalf("skipped %+v, want the Kustomization and the Component", set.Skipped)
	}
	for _, s := range set.Skipped {
		if s.Reason != KustomizationReason {
			t.Errorf("%s skipped for %q, want %q", s.Source.Kind, s.Reason, KustomizationReason)
		}
	}
	for _, name := range []string{"kustomization.yaml", "overlays/prod/kustomization.yml", "base/Kustomization"} {
		if !IsKustomizationFile(name) {
			t.Errorf("%s is not taken for a kustomization file", name)
		}
	}
	if IsKustomizationFile("kustomization-notes.yaml") {
		t.Error("kustomization-notes.yaml is taken for a kustomization file")
	}
}

// TestNotes checks that what a workload does not carry over is noted at its line and path,
// and that an object without such parts gets no note.
func TestNotes(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, errs := importString(t, "legacy.yaml", string(data))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := map[string][]string{}
	for _, it := range set.Items {
		for _, n := range it.Notes {
			if n.Line < 1 || n.Message == "" {
				t.Errorf("%s: note %+v lacks its line or message", it.Workload.Metadata.Name, n)
			}
			got[it.Workload.Metadata.Name] = append(got[it.Workload.Metadata.Name], fmt.Sprintf("%d %s", n.Line, n.Path))
		}
	}
	spec := "spec.template.spec."
	want := map[string][]string{
		"storefront": {"33 ", "56 " + spec + "initContainers[0]", "59 " + spec + "initContainers[1]",
			"68 " + spec + "containers[0].env[0]", "71 " + spec + "containers[0].env[1]", "75 " + spec + "containers[0].envFrom[0]",
			"79 " + spec + "containers[0].readinessProbe", "81 " + spec + "containers[0].startupProbe",
			"85 " + spec + "containers[0].lifecycle.preStop", "94 " + spec + "containers[1]",
			"97 " + spec + "nodeSelector", "100 " + spec + "tolerations",
			"102 " + spec + "volumes[0]", "104 " + spec + "volumes[1]", "106 " + spec + "volumes[2]",
			"108 " + spec + "volumes[3]", "110 " + spec + "volumes[4]"},
		"billing":        {"113 ", "126 " + spec + "securityContext.sysctls[0]"},
		"nightly-export": {"141 spec.schedule", "144 spec.jobTemplate.spec.completions"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notes:\n got %q\nwant %q", got, want)
	}
}

// TestProbeNotes notes the probes the health check cannot carry.
func TestProbeNotes(t *testing.T) {
	for _, tc := range []struct{ name, fields, path, says string }{
		{"gRPC", "livenessProbe: {grpc: {port: 9090}}", "spec.template.spec.containers[0].livenessProbe.grpc", "gRPC"},
		{"HTTPS", "livenessProbe: {httpGet: {port: 8443, scheme: HTTPS}}", "spec.template.spec.containers[0].livenessProbe.httpGet.scheme", "HTTPS"},
		{"startup beside readiness", "readinessProbe: {tcpSocket: {port: 80}}\nstartupProbe: {tcpSocket: {port: 80}}",
			"spec.template.spec.containers[0].startupProbe", "readinessProbe alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, errs := importString(t, "p.yaml", deployment(container(tc.fields)))
			if len(errs) > 0 || len(set.Items) != 1 {
				t.Fatalf("%d workloads, errors %v", len(set.Items), errs)
			}
			notes := set.Items[0].Notes
			if len(notes) != 1 || notes[0].Path != tc.path || !strings.Contains(notes[0].Message, tc.says) || notes[0].Line < 1 {
				t.Errorf("notes %+v, want one at %s saying %q", notes, tc.path, tc.says)
			}
		})
	}
}

// TestSecurityAndCredentialNotes notes who the process runs as, what it drops, and the
// credentials and host names the pod is given.
func TestSecurityAndCredentialNotes(t *testing.T) {
	src := deployment(`serviceAccountName: storefront
imagePullSecrets: [{name: registry-example}]
hostAliases: [{ip: 10.1.2.3, hostnames: [legacy-db]}]
securityContext: {runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001}
containers:
- name: app
  image: app:1
  securityContext:
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
`)
	set, errs := importString(t, "s.yaml", src)
	if len(errs) > 0 || len(set.Items) != 1 {
		t.Fatalf("%d workloads, errors %v", len(set.Items), errs)
	}
	var got []string
	for _, n := range set.Items[0].Notes {
		got = append(got, fmt.Sprintf("%d %s: %s", n.Line, n.Path, strings.SplitN(n.Message, ":", 2)[0]))
	}
	spec := "spec.template.spec."
	want := []string{
		"8 " + spec + "serviceAccountName: service account \"storefront\" is not carried over",
		"9 " + spec + "imagePullSecrets: imagePullSecrets are not carried over",
		"10 " + spec + "hostAliases: hostAliases are not carried over",
		"11 " + spec + "securityContext: runAsUser, runAsNonRoot, fsGroup are not carried over",
		"16 " + spec + "containers[0].securityContext: readOnlyRootFilesystem, capabilities.drop are not carried over",
	}
	if !slices.Equal(got, want) {
		t.Errorf("notes:\n got %q\nwant %q", got, want)
	}
	set, _ = importString(t, "s.yaml", deployment("serviceAccountName: default\nsecurityContext: {}\n"+
		container("securityContext: {readOnlyRootFilesystem: false, capabilities: {drop: []}}")))
	if n := set.Items[0].Notes; len(n) != 0 {
		t.Errorf("notes %+v for a pod that sets nothing of the kind", n)
	}
}
