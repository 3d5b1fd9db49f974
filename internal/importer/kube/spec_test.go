package kube

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
)

func TestImageCommandEnv(t *testing.T) {
	two := "initContainers:\n- name: init\n  image: init:1\n  command: [/init]\n" +
		"containers:\n- name: app\n  image: ' app:2 '\n  command: [/bin/app]\n  args: [--port, '8080']\n" +
		"  env:\n  - {name: A, value: one}\n  - name: SECRET\n    valueFrom: {secretKeyRef: {name: s, key: k}}\n  - {name: EMPTY}\n" +
		"- name: sidecar\n  image: side:1\n  env: [{name: B, value: two}]\n"
	runTraitCases(t, []traitCase{
		{"image of the first regular container", deployment(two), func(w *v1alpha1.Workload) any { return w.Spec.Image }, "app:2"},
		{"command and args", deployment(two), func(w *v1alpha1.Workload) any { return w.Spec.Command },
			[]string{"/bin/app", "--port", "8080"}},
		{"args only", deployment(container("args: [serve]")), func(w *v1alpha1.Workload) any { return w.Spec.Command }, []string{"serve"}},
		{"no command", deployment(container("")), func(w *v1alpha1.Workload) any { return w.Spec.Command }, []string(nil)},
		{"literal env only", deployment(two), func(w *v1alpha1.Workload) any { return w.Spec.Env },
			map[string]string{"A": "one", "EMPTY": ""}},
	})
}

func quantities(w *v1alpha1.Workload) any {
	out := []string{w.Spec.Resources.CPU.String(), w.Spec.Resources.Memory.String()}
	if w.Spec.Resources.Disk != nil {
		out = append(out, w.Spec.Resources.Disk.String())
	}
	return out
}

func TestResources(t *testing.T) {
	c := func(name, res string) string {
		return "- name: " + name + "\n  image: x:1\n  resources:\n" + indent(4, res)
	}
	runTraitCases(t, []traitCase{
		{"none gives the defaults", deployment(container("")), quantities, []string{"100m", "128Mi"}},
		{"requests", deployment("containers:\n" + c("a", "requests: {cpu: 250m, memory: 256Mi}\nlimits: {cpu: '2', memory: 1Gi}")),
			quantities, []string{"250m", "256Mi"}},
		{"limits stand in for requests", deployment("containers:\n" + c("a", "limits: {cpu: '2', memory: 1Gi}")),
			quantities, []string{"2", "1Gi"}},
		{"sum over containers, exact", deployment("containers:\n" + c("a", "requests: {cpu: 100m, memory: 100Mi}") +
			c("b", "requests: {cpu: '0.2'}\nlimits: {memory: 1Gi}") + c("c", "requests: {cpu: 1m}")),
			quantities, []string{"301m", "1124Mi"}},
		{"only memory given", deployment("containers:\n" + c("a", "requests: {memory: 64Mi}")), quantities, []string{"100m", "64Mi"}},
		{"ephemeral storage is disk", deployment("containers:\n" + c("a", "requests: {ephemeral-storage: 2Gi}")),
			quantities, []string{"100m", "128Mi", "2Gi"}},
		{"init containers do not count, sidecars do", deployment("initContainers:\n" + c("init", "requests: {cpu: '8'}") +
			c("side", "requests: {cpu: 50m}") + "  restartPolicy: Always\ncontainers:\n" + c("a", "requests: {cpu: 100m}")),
			quantities, []string{"150m", "128Mi"}},
		{"device resources are ignored", deployment("containers:\n" + c("a", "limits: {nvidia.com/gpu: 1, cpu: 500m}")),
			quantities, []string{"500m", "128Mi"}},
	})
}

func TestResourcesExact(t *testing.T) {
	w := importOne(t, deployment("containers:\n- name: a\n  image: x:1\n  resources: {requests: {memory: 1.5Gi}}\n"+
		"- name: b\n  image: x:1\n  resources: {requests: {memory: '1'}}\n"))
	want := resource.MustParse("1.5Gi")
	want.Add(resource.MustParse("1"))
	if w.Spec.Resources.Memory.Cmp(want) != 0 {
		t.Errorf("memory %s, want %s", w.Spec.Resources.Memory.String(), want.String())
	}
}

func replicasOf(w *v1alpha1.Workload) any { return *w.Spec.Replicas }
func restartOf(w *v1alpha1.Workload) any  { return w.Spec.RestartPolicy }

// kindDoc is an object of a kind with a pod template holding spec fields and the pod spec.
func kindDoc(apiVersion, kind, spec, podSpec string) string {
	head := "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: x}\n"
	switch kind {
	case kindPod:
		return head + "spec:\n" + indent(2, podSpec)
	case kindCronJob:
		return head + "spec:\n  schedule: '@hourly'\n" + indent(2, spec) + "  jobTemplate:\n    spec:\n      template:\n        spec:\n" + indent(10, podSpec)
	}
	return head + "spec:\n" + indent(2, spec) + "  template:\n    spec:\n" + indent(6, podSpec)
}

func TestReplicas(t *testing.T) {
	c := container("")
	runTraitCases(t, []traitCase{
		{"Deployment default", kindDoc("apps/v1", kindDeployment, "", c), replicasOf, int32(1)},
		{"Deployment", kindDoc("apps/v1", kindDeployment, "replicas: 5", c), replicasOf, int32(5)},
		{"Deployment zero", kindDoc("apps/v1", kindDeployment, "replicas: 0", c), replicasOf, int32(0)},
		{"StatefulSet", kindDoc("apps/v1", kindStatefulSet, "replicas: 3", c), replicasOf, int32(3)},
		{"StatefulSet default", kindDoc("apps/v1", kindStatefulSet, "", c), replicasOf, int32(1)},
		{"ReplicaSet", kindDoc("apps/v1", kindReplicaSet, "replicas: 2", c), replicasOf, int32(2)},
		{"DaemonSet", kindDoc("apps/v1", kindDaemonSet, "", c), replicasOf, int32(1)},
		{"DaemonSet per node", kindDoc("apps/v1", kindDaemonSet, "", c), annotations, map[string]string{AnnotationPerNode: "true"}},
		{"Job parallelism", kindDoc("batch/v1", kindJob, "parallelism: 4\ncompletions: 10", c), replicasOf, int32(4)},
		{"Job default", kindDoc("batch/v1", kindJob, "", c), replicasOf, int32(1)},
		{"CronJob", kindDoc("batch/v1", kindCronJob, "", c), replicasOf, int32(1)},
		{"Pod", kindDoc("v1", kindPod, "", c), replicasOf, int32(1)},
	})
}

func TestRestartPolicy(t *testing.T) {
	c := container("")
	never := "restartPolicy: Never\n" + c
	runTraitCases(t, []traitCase{
		{"Pod default", kindDoc("v1", kindPod, "", c), restartOf, v1alpha1.RestartAlways},
		{"Pod Never", kindDoc("v1", kindPod, "", never), restartOf, v1alpha1.RestartNever},
		{"Pod OnFailure", kindDoc("v1", kindPod, "", "restartPolicy: OnFailure\n"+c), restartOf, v1alpha1.RestartOnFailure},
		{"Deployment", kindDoc("apps/v1", kindDeployment, "", c), restartOf, v1alpha1.RestartAlways},
		{"Deployment ignores the template", kindDoc("apps/v1", kindDeployment, "", never), restartOf, v1alpha1.RestartAlways},
		{"StatefulSet", kindDoc("apps/v1", kindStatefulSet, "", c), restartOf, v1alpha1.RestartAlways},
		{"DaemonSet", kindDoc("apps/v1", kindDaemonSet, "", c), restartOf, v1alpha1.RestartAlways},
		{"ReplicaSet", kindDoc("apps/v1", kindReplicaSet, "", c), restartOf, v1alpha1.RestartAlways},
		{"Job default", kindDoc("batch/v1", kindJob, "", c), restartOf, v1alpha1.RestartOnFailure},
		{"Job Never", kindDoc("batch/v1", kindJob, "", never), restartOf, v1alpha1.RestartNever},
		{"CronJob default", kindDoc("batch/v1", kindCronJob, "", c), restartOf, v1alpha1.RestartOnFailure},
		{"CronJob Never", kindDoc("batch/v1", kindCronJob, "", never), restartOf, v1alpha1.RestartNever},
	})
}

func TestPorts(t *testing.T) {
	ports := func(w *v1alpha1.Workload) any { return w.Spec.Ports }
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), ports, []v1alpha1.Port(nil)},
		{"protocols lower case, default tcp", deployment(container("ports:\n- {containerPort: 53, protocol: UDP}\n- {containerPort: 53, protocol: TCP}\n- containerPort: 80")),
			ports, []v1alpha1.Port{{Port: 53, Protocol: "udp"}, {Port: 53, Protocol: "tcp"}, {Port: 80, Protocol: "tcp"}}},
		{"names kept when DNS labels", deployment(container("ports:\n- {name: http, containerPort: 80}\n- {name: Admin_Port, containerPort: 81}")),
			ports, []v1alpha1.Port{{Name: "http", Port: 80, Protocol: "tcp"}, {Port: 81, Protocol: "tcp"}}},
		{"all regular containers, once each", deployment(container("ports: [{name: http, containerPort: 80}]") +
			"- name: b\n  image: b:1\n  ports: [{name: http, containerPort: 80}, {name: http, containerPort: 81}, {containerPort: 82}]\n"),
			ports, []v1alpha1.Port{{Name: "http", Port: 80, Protocol: "tcp"}, {Port: 81, Protocol: "tcp"}, {Port: 82, Protocol: "tcp"}}},
		{"init containers' ports are left out", deployment(container("") + "initContainers:\n- name: i\n  image: i:1\n  ports: [{containerPort: 90}]\n"),
			ports, []v1alpha1.Port(nil)},
		{"hostPort publishes", deployment(container("ports: [{containerPort: 80, hostPort: 8080}]")),
			ports, []v1alpha1.Port{{Port: 80, Protocol: "tcp", Publish: 8080}}},
		{"SCTP is left out", deployment(container("ports: [{containerPort: 9, protocol: SCTP}, {containerPort: 10}]")),
			ports, []v1alpha1.Port{{Port: 10, Protocol: "tcp"}}},
	})
}

func TestProbes(t *testing.T) {
	health := func(w *v1alpha1.Workload) any { return w.Spec.Health }
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), health, (*v1alpha1.HealthCheck)(nil)},
		{"http with a named port", deployment(container("ports: [{name: web, containerPort: 8080}]\n" +
			"livenessProbe: {httpGet: {path: /healthz, port: web}, periodSeconds: 7, failureThreshold: 5}")),
			health, &v1alpha1.HealthCheck{HTTP: &v1alpha1.HTTPProbe{Path: "/healthz", Port: 8080}, IntervalSeconds: 7, FailureThreshold: 5}},
		{"http with a number, defaults", deployment(container("livenessProbe: {httpGet: {port: 9000}}")),
			health, &v1alpha1.HealthCheck{HTTP: &v1alpha1.HTTPProbe{Path: "/", Port: 9000}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"http path without a slash", deployment(container("livenessProbe: {httpGet: {path: ready, port: '9000'}}")),
			health, &v1alpha1.HealthCheck{HTTP: &v1alpha1.HTTPProbe{Path: "/ready", Port: 9000}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"readiness when no liveness", deployment(container("readinessProbe: {tcpSocket: {port: 5432}, periodSeconds: 2}")),
			health, &v1alpha1.HealthCheck{TCP: &v1alpha1.TCPProbe{Port: 5432}, IntervalSeconds: 2, FailureThreshold: 3}},
		{"liveness wins", deployment(container("readinessProbe: {tcpSocket: {port: 5432}}\nlivenessProbe: {exec: {command: [pg_isready]}}")),
			health, &v1alpha1.HealthCheck{Exec: &v1alpha1.ExecProbe{Command: []string{"pg_isready"}}, IntervalSeconds: 10, FailureThreshold: 3}},
		{"grpc is left out", deployment(container("livenessProbe: {grpc: {port: 9000}}")), health, (*v1alpha1.HealthCheck)(nil)},
		{"named tcp port", deployment(container("ports: [{name: pg, containerPort: 5432}]\nlivenessProbe: {tcpSocket: {port: pg}}")),
			health, &v1alpha1.HealthCheck{TCP: &v1alpha1.TCPProbe{Port: 5432}, IntervalSeconds: 10, FailureThreshold: 3}},
	})
}

func TestVolumes(t *testing.T) {
	vols := func(w *v1alpha1.Workload) any { return w.Spec.Volumes }
	size := resource.MustParse("10Gi")
	sts := "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  template:\n    spec:\n" +
		indent(6, container("volumeMounts: [{name: data, mountPath: /data}, {name: cache, mountPath: /cache}]")+
			"volumes:\n- name: cache\n  persistentVolumeClaim: {claimName: cache}\n") +
		"  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {resources: {requests: {storage: 10Gi}}}\n" +
		"  - metadata: {name: unused}\n    spec: {resources: {requests: {storage: 1Gi}}}\n"
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), vols, []v1alpha1.Volume(nil)},
		{"pvc volume", deployment(container("volumeMounts: [{name: data, mountPath: /srv/data}]") +
			"volumes:\n- name: data\n  persistentVolumeClaim: {claimName: data-pvc}\n- name: tmp\n  emptyDir: {}\n"),
			vols, []v1alpha1.Volume{{Name: "data", MountPath: "/srv/data"}}},
		{"mounted by a later container", deployment(container("") + "- name: b\n  image: b:1\n  volumeMounts: [{name: data, mountPath: /b}]\n" +
			"volumes:\n- name: data\n  persistentVolumeClaim: {claimName: x}\n"),
			vols, []v1alpha1.Volume{{Name: "data", MountPath: "/b"}}},
		{"not mounted is left out", deployment(container("") + "volumes:\n- name: data\n  persistentVolumeClaim: {claimName: x}\n"),
			vols, []v1alpha1.Volume(nil)},
		{"claim templates with their size", sts, vols,
			[]v1alpha1.Volume{{Name: "cache", MountPath: "/cache"}, {Name: "data", MountPath: "/data", Size: &size}}},
	})
}

func TestAPIVersions(t *testing.T) {
	c := container("")
	for _, tc := range []struct{ apiVersion, kind string }{
		{"v1", kindPod},
		{"apps/v1", kindDeployment}, {"apps/v1beta1", kindDeployment}, {"apps/v1beta2", kindDeployment}, {"extensions/v1beta1", kindDeployment},
		{"apps/v1", kindStatefulSet}, {"apps/v1beta1", kindStatefulSet},
		{"apps/v1", kindDaemonSet}, {"extensions/v1beta1", kindDaemonSet},
		{"apps/v1", kindReplicaSet}, {"extensions/v1beta1", kindReplicaSet},
		{"batch/v1", kindJob},
		{"batch/v1", kindCronJob}, {"batch/v1beta1", kindCronJob},
	} {
		t.Run(tc.apiVersion+" "+tc.kind, func(t *testing.T) {
			set, errs := importString(t, "k.yaml", kindDoc(tc.apiVersion, tc.kind, "", c))
			if len(errs) > 0 || len(set.Items) != 1 {
				t.Fatalf("got %d workloads and errors %v", len(set.Items), errs)
			}
			if got := set.Items[0].Source.Kind; got != tc.kind {
				t.Errorf("source kind %q, want %q", got, tc.kind)
			}
		})
	}
}

func TestSkipped(t *testing.T) {
	src := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n---\n" +
		"apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: custom}\n---\n" +
		"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n---\n" +
		"apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: own}\n"
	set, errs := importString(t, "s.yaml", src)
	if len(errs) > 0 || len(set.Items) > 0 {
		t.Fatalf("got %d workloads and errors %v", len(set.Items), errs)
	}
	want := []v1alpha1.SkippedObject{
		{Source: v1alpha1.Source{File: "s.yaml", Line: 1, Format: v1alpha1.FormatKubernetes, Kind: "Service", Name: "shop/web"},
			Reason: "kind Service describes no workload"},
		{Source: v1alpha1.Source{File: "s.yaml", Line: 5, Format: v1alpha1.FormatKubernetes, Kind: "Deployment", Name: "custom"},
			Reason: "kind Deployment of example.com/v1 describes no workload"},
		{Source: v1alpha1.Source{File: "s.yaml", Line: 9, Format: v1alpha1.FormatKubernetes, Kind: "CustomResourceDefinition", Name: "widgets.example.com"},
			Reason: "kind CustomResourceDefinition describes no workload"},
	}
	if !reflect.DeepEqual(set.Skipped, want) {
		t.Errorf("skipped:\n got %+v\nwant %+v", set.Skipped, want)
	}
}
