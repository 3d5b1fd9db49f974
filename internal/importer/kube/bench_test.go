package kube

import (
	"bytes"
	"fmt"
	"testing"

	"strata.dev/strata/internal/load"
)

// manifests is a stream of n generated Deployments, StatefulSets and Pods.
func manifests(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteString("---\n")
		}
		ns := fmt.Sprintf("team-%d", i%40)
		podSpec := fmt.Sprintf(`containers:
- name: app
  image: registry.example/%s/app-%d:1.%d
  args: ["--port", "8080"]
  env:
  - {name: MODE, value: prod}
  ports:
  - {name: http, containerPort: 8080}
  resources:
    requests: {cpu: %dm, memory: %dMi}
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    periodSeconds: 5
  securityContext:
    capabilities: {add: [NET_BIND_SERVICE]}
- name: sidecar
  image: registry.example/tools/proxy:2
  resources:
    limits: {cpu: 50m, memory: 64Mi}
`, ns, i, i%10, 100+i%900, 128+i%512)
		meta := fmt.Sprintf("metadata:\n  name: app-%d\n  namespace: %s\n  annotations: {strata.dev/data: confidential}\n", i, ns)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "apiVersion: apps/v1\nkind: Deployment\n%sspec:\n  replicas: %d\n  template:\n    spec:\n%s", meta, 1+i%5, indent(6, podSpec))
		case 1:
			fmt.Fprintf(&b, "apiVersion: apps/v1\nkind: StatefulSet\n%sspec:\n  replicas: 3\n  template:\n    spec:\n%s", meta,
				indent(6, podSpec+"  volumeMounts: [{name: data, mountPath: /data}]\n"))
			b.WriteString("  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {resources: {requests: {storage: 10Gi}}}\n")
		default:
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\n%sspec:\n%s", meta, indent(2, podSpec))
		}
	}
	return b.Bytes()
}

// BenchmarkImport5k splits and imports 5,000 workload documents in one stream.
func BenchmarkImport5k(b *testing.B) {
	data := manifests(5000)
	docs, errs := load.Documents("bench.yaml", data)
	if len(errs) > 0 || len(docs) != 5000 {
		b.Fatalf("%d documents, %v", len(docs), errs)
	}
	if set, errs := Import(docs); len(errs) > 0 || len(set.Items) != 5000 {
		b.Fatalf("%d workloads, %v", len(set.Items), errs)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		docs, _ := load.Documents("bench.yaml", data)
		if _, errs := Import(docs); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
