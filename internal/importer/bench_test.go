package importer

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// manifest generates a multi-document Kubernetes manifest of about size bytes, shaped as a
// cluster dump is: for each application a ConfigMap, a Deployment and a Service.
func manifest(size int) ([]byte, int) {
	var b bytes.Buffer
	workloads := 0
	for i := 0; b.Len() < size; i++ {
		ns := fmt.Sprintf("team-%d", i%40)
		app := fmt.Sprintf("app-%d", i)
		fmt.Fprintf(&b, `apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
  namespace: %[2]s
  labels: {app.kubernetes.io/name: %[1]s, app.kubernetes.io/part-of: shop}
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "checkout-v2,search-ranking,%[1]s"
  application.properties: |
    server.port=8080
    spring.datasource.url=jdbc:postgresql://db.%[2]s.svc:5432/%[1]s
    management.endpoints.web.exposure.include=health,info,prometheus
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
  labels: {app.kubernetes.io/name: %[1]s, app.kubernetes.io/part-of: shop}
  annotations:
    deployment.kubernetes.io/revision: "%[3]d"
    strata.dev/data: internal
spec:
  replicas: %[4]d
  revisionHistoryLimit: 5
  selector:
    matchLabels: {app.kubernetes.io/name: %[1]s}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%%, maxUnavailable: 0}
  template:
    metadata:
      labels: {app.kubernetes.io/name: %[1]s, app.kubernetes.io/part-of: shop}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090"}
    spec:
      serviceAccountName: %[1]s
      securityContext: {runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001}
      containers:
      - name: app
        image: registry.example/%[2]s/%[1]s:1.%[3]d.0
        imagePullPolicy: IfNotPresent
        args: ["--config", "/etc/app/application.properties", "--port", "8080"]
        env:
        - {name: JAVA_OPTS, value: "-XX:MaxRAMPercentage=75"}
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: %[1]s-db, key: password}}
        envFrom:
        - configMapRef: {name: %[1]s-config}
        ports:
        - {name: http, containerPort: 8080}
        - {name: metrics, containerPort: 9090}
        resources:
          requests: {cpu: %[5]dm, memory: %[6]dMi}
          limits: {memory: %[6]dMi}
        livenessProbe:
          httpGet: {path: /actuator/health/liveness, port: http}
          initialDelaySeconds: 20
          periodSeconds: 10
        readinessProbe:
          httpGet: {path: /actuator/health/readiness, port: http}
          periodSeconds: 5
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts:
        - {name: config, mountPath: /etc/app, readOnly: true}
        - {name: tmp, mountPath: /tmp}
      volumes:
      - name: config
        configMap: {name: %[1]s-config}
      - name: tmp
        emptyDir: {medium: Memory, sizeLimit: 64Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
  labels: {app.kubernetes.io/name: %[1]s}
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: %[1]s}
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP}
  - {name: metrics, port: 9090, targetPort: metrics}
---
`, app, ns, i%50, 1+i%5, 100+i%900, 128+i%512)
		workloads++
	}
	return b.Bytes(), workloads
}

// peakHeap samples the bytes of live and not yet swept heap objects until stopped and
// returns the highest figure above the level when it started.
type peakHeap struct {
	stop chan struct{}
	done sync.WaitGroup
	base uint64
	peak uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	p := &peakHeap{stop: make(chan struct{}), base: heapNow()}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapNow(); h > p.peak {
				p.peak = h
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) end() uint64 {
	close(p.stop)
	p.done.Wait()
	if p.peak < p.base {
		return 0
	}
	return p.peak - p.base
}

// BenchmarkImportManifest50MB imports a generated 50 MB manifest of Deployments, Services
// and ConfigMaps, as `strata import -f` reads one file. Beside time and allocations it
// reports the peak heap above the level before the import (peak-heap-B) and that peak as a
// multiple of the input's size (peak-x-input).
func BenchmarkImportManifest50MB(b *testing.B) {
	data, workloads := manifest(50 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		p := startPeakHeap()
		set, errs := File("cluster.yaml", data)
		peak = max(peak, p.end())
		if len(errs) > 0 || len(set.Items) != workloads {
			b.Fatalf("%d workloads of %d, errors: %v", len(set.Items), workloads, errs[:min(len(errs), 3)])
		}
	}
	b.ReportMetric(float64(peak), "peak-heap-B")
	b.ReportMetric(float64(peak)/float64(len(data)), "peak-x-input")
}
