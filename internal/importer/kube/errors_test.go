package kube

import (
	"os"
	"reflect"
	"testing"
)

func errorStrings(t *testing.T, file, src string) ([]string, int) {
	t.Helper()
	set, errs := importString(t, file, src)
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out, len(set.Items)
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"replicas of the wrong type, at its value",
			"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n" +
				"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: three\n",
			[]string{`e.yaml:9:3: spec.template.spec.containers: the Deployment runs no containers (give the pod template a container with an image)`,
				`e.yaml:9:13: spec.replicas: not a valid Deployment: expected an integer, got the string "three" ` +
					`(make it an integer, as a Kubernetes apps/v1 Deployment requires; the object is not imported)`}},
		{"a list where a mapping belongs",
			"apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: [1, 2]\n",
			[]string{`e.yaml:4:7: spec: not a valid Job: expected a mapping of fields, got a list ` +
				`(make it a mapping of fields, as a Kubernetes batch/v1 Job requires; the object is not imported)`}},
		{"a bad quantity is named",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: a:1\n    resources:\n      limits: {memory: 1GB}\n",
			[]string{`e.yaml:9:24: spec.containers[0].resources.limits[memory]: not a valid Pod: invalid quantity "1GB" ` +
				`(write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi; the object is not imported)`}},
		{"invalid trust annotation at its value",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  annotations:\n    strata.dev/trust: maybe\n" +
				"spec:\n  template:\n    spec:\n      containers: [{name: a, image: a:1}]\n",
			[]string{`e.yaml:6:23: metadata.annotations[strata.dev/trust]: unsupported value "maybe" for annotation strata.dev/trust ` +
				`(use one of trusted, internal, untrusted)`}},
		{"invalid isolation annotation on the template",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    metadata:\n      annotations: {strata.dev/isolation: kvm}\n" +
				"    spec:\n      containers: [{name: a, image: a:1}]\n",
			[]string{`e.yaml:7:43: spec.template.metadata.annotations[strata.dev/isolation]: unsupported value "kvm" for annotation strata.dev/isolation ` +
				`(use one of auto, container, sandbox, vm)`}},
		{"Deployment at the core apiVersion",
			"apiVersion: v1\nkind: Deployment\nmetadata: {name: d}\n",
			[]string{`e.yaml:1:13: apiVersion: Kubernetes serves Deployment at apps/v1, apps/v1beta2, apps/v1beta1, extensions/v1beta1, not at v1 ` +
				`(use apiVersion: apps/v1)`}},
		{"no containers",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
			[]string{`e.yaml:4:7: spec.containers: the Pod runs no containers (give the pod template a container with an image)`}},
		{"restart policy",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: Sometimes\n  containers: [{name: a, image: a:1}]\n",
			[]string{`e.yaml:5:18: spec.restartPolicy: unsupported restartPolicy "Sometimes" (use one of Always, OnFailure, Never)`}},
		{"probe on a named port the container lacks",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: a:1\n    readinessProbe:\n      tcpSocket: {port: db}\n",
			[]string{`e.yaml:9:25: spec.containers[0].readinessProbe.tcpSocket.port: probe port "db" names no port of container "a" ` +
				`(name one of the container's ports, or give the port number)`}},
		{"a list item that fails to decode, at the field's line",
			"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: ok}\n  spec: {containers: [{name: a, image: a:1}]}\n" +
				"- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: bad}\n  spec: {replicas: many}\n",
			[]string{`e.yaml:11:9: items[1].spec.template.spec.containers: the Deployment runs no containers (give the pod template a container with an image)`,
				`e.yaml:11:20: items[1].spec.replicas: not a valid Deployment: expected an integer, got the string "many" ` +
					`(make it an integer, as a Kubernetes apps/v1 Deployment requires; the object is not imported)`}},
		{"items that are not a list",
			"apiVersion: v1\nkind: List\nitems: {a: b}\n",
			[]string{`e.yaml:3:8: items: the items of a List must be a list (write the items as a YAML list, one per '- ')`}},
		{"a strata object in a List",
			"apiVersion: v1\nkind: List\nitems:\n- apiVersion: strata.dev/v1alpha1\n  kind: Workload\n",
			[]string{`e.yaml:4:15: items[0].apiVersion: a List holds Kubernetes objects, not strata's (put strata's objects in documents of their own)`}},
		{"a List whose aliases expand too far",
			"apiVersion: v1\nkind: List\nx: [&a [1, 1, 1, 1, 1, 1, 1, 1], &b [*a, *a, *a, *a, *a, *a, *a, *a], &c [*b, *b, *b, *b, *b, *b, *b, *b]," +
				" &d [*c, *c, *c, *c, *c, *c, *c, *c], &e [*d, *d, *d, *d, *d, *d, *d, *d]]\nitems: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
			[]string{`e.yaml:4:8: items: the List expands to more than 262144 values (write the objects out instead of repeating aliases)`}},
		{"a document without kind",
			"apiVersion: v1\nmetadata: {name: x}\n",
			[]string{`e.yaml:1:1: not a Kubernetes object: it has no apiVersion or kind ` +
				`(give the object its apiVersion and kind, such as apiVersion: apps/v1 and kind: Deployment)`}},
		{"a document that is not a mapping",
			"- a\n- b\n",
			[]string{`e.yaml:1:1: a Kubernetes object must be a mapping of fields (start each object with apiVersion: and kind:)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := errorStrings(t, "e.yaml", tc.src)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestErrorsOfAFile checks that every problem of a file is reported, in order, and that
// the objects without problems still import.
func TestErrorsOfAFile(t *testing.T) {
	data, err := os.ReadFile("testdata/errors/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, items := errorStrings(t, "mixed.yaml", string(data))
	want := []string{
		`mixed.yaml:6:13: spec.replicas: not a valid Deployment: expected an integer, got the string "three" (make it an integer, as a Kubernetes apps/v1 Deployment requires; the object is not imported)`,
		`mixed.yaml:16:23: metadata.annotations[strata.dev/trust]: unsupported value "bogus" for annotation strata.dev/trust (use one of trusted, internal, untrusted)`,
		`mixed.yaml:21:26: spec.template.metadata.annotations[strata.dev/data]: unsupported value "secret" for annotation strata.dev/data (use one of public, internal, confidential, regulated)`,
		`mixed.yaml:22:29: spec.template.metadata.annotations[strata.dev/tenancy]: unsupported value "shared" for annotation strata.dev/tenancy (use one of single, multi)`,
		`mixed.yaml:29:30: spec.template.spec.containers[0].securityContext.capabilities.add[1]: invalid capability "net admin" (write a Linux capability name such as NET_ADMIN or CAP_NET_ADMIN)`,
		`mixed.yaml:31:27: spec.template.spec.containers[0].livenessProbe.httpGet.port: probe port "web" names no port of container "a" (name one of the container's ports, or give the port number)`,
		`mixed.yaml:33:13: apiVersion: Kubernetes serves Deployment at apps/v1, apps/v1beta2, apps/v1beta1, extensions/v1beta1, not at v1 (use apiVersion: apps/v1)`,
		`mixed.yaml:53:35: items[0].spec.containers[0].resources.requests[cpu]: not a valid Pod: invalid quantity "lots" (write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi; the object is not imported)`,
		`mixed.yaml:54:3: items[1]: a Kubernetes object must be a mapping of fields (start each object with apiVersion: and kind:)`,
		`mixed.yaml:55:3: items[2]: not a Kubernetes object: it has no apiVersion or kind (give the object its apiVersion and kind, such as apiVersion: apps/v1 and kind: Deployment)`,
		`mixed.yaml:63:19: spec.template.spec.containers: the Job runs no containers (give the pod template a container with an image)`,
		`mixed.yaml:65:1: not a Kubernetes object: it has no apiVersion or kind (give the object its apiVersion and kind, such as apiVersion: apps/v1 and kind: Deployment)`,
		`mixed.yaml:70:56: metadata.annotations[strata.dev/tenant]: invalid tenant "no tenant!" (name the tenant with at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`,
		`mixed.yaml:72:13: spec.replicas: 20000 replicas is out of range (use a count between 0 and 10000)`,
		`mixed.yaml:78:16: spec.template.spec.containers[0].image: container "a" has no image (give the container an image)`,
		`mixed.yaml:79:33: spec.template.spec.containers[0].ports[0].containerPort: containerPort 70000 is out of range (use a port between 1 and 65535)`,
		`mixed.yaml:79:71: spec.template.spec.containers[0].ports[1].protocol: unsupported protocol "ICMP" (use TCP or UDP)`,
		`mixed.yaml:80:40: spec.template.spec.containers[0].resources.requests[memory]: negative memory request -1Gi (use a positive quantity such as 500m or 256Mi)`,
		`mixed.yaml:82:26: spec.template.spec.securityContext.sysctls[0].name: invalid sysctl name "bad name" (write a sysctl name such as net.core.somaxconn)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	if items != 1 {
		t.Errorf("imported %d workloads, want the 1 without problems", items)
	}
}

// TestEveryErrorOfAnObject checks that each object's problems are all reported, each at its
// own line and column, with the full path and list indexes.
func TestEveryErrorOfAnObject(t *testing.T) {
	data, err := os.ReadFile("testdata/errors/nested.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, items := errorStrings(t, "nested.yaml", string(data))
	want := []string{
		`nested.yaml:19:23: spec.template.spec.initContainers[0].securityContext.privileged: not a valid Deployment: expected true or false, got the string "yes" (make it true or false, as a Kubernetes apps/v1 Deployment requires; the object is not imported)`,
		`nested.yaml:24:36: spec.template.spec.containers[0].resources.limits[memory]: not a valid Deployment: invalid quantity "4 GiB" (write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi; the object is not imported)`,
		`nested.yaml:30:26: spec.template.spec.containers[1].ports[0].containerPort: not a valid Deployment: expected an integer, got the string "metrics" (make it an integer, as a Kubernetes apps/v1 Deployment requires; the object is not imported)`,
		`nested.yaml:37:16: spec.template.spec.volumes[1].fc.lun: not a valid Deployment: expected an integer, got the string "first" (make it an integer, as a Kubernetes apps/v1 Deployment requires; the object is not imported)`,
		`nested.yaml:45:13: spec.replicas: not a valid StatefulSet: expected an integer, got a list (make it an integer, as a Kubernetes apps/v1 StatefulSet requires; the object is not imported)`,
		`nested.yaml:54:18: spec.template.spec.containers[0].env[0].value: not a valid StatefulSet: expected a string, got a mapping (make it a string, as a Kubernetes apps/v1 StatefulSet requires; the object is not imported)`,
		`nested.yaml:60:29: spec.volumeClaimTemplates[0].spec.resources.requests[storage]: not a valid StatefulSet: invalid quantity "lots" (write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi; the object is not imported)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	if items != 0 {
		t.Errorf("imported %d workloads, want none", items)
	}
}
