package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// benchSpec is about the size of a real Workload spec.
const benchSpec = `{"isolation":"auto","image":"localhost/shop/payments:1.4","command":["/bin/payments"],` +
	`"env":{"LOG_LEVEL":"info"},"resources":{"cpu":"1","memory":"512Mi","disk":"2Gi"},"replicas":2,` +
	`"segment":"payments","ports":[{"name":"http","port":8080,"protocol":"tcp","publish":18080}],` +
	`"health":{"http":{"path":"/healthz","port":8080},"intervalSeconds":5,"failureThreshold":3},` +
	`"restartPolicy":"Always","traits":{"os":"linux","osVersion":"Ubuntu 22.04"}}`

const benchObjects = 1000

// filled returns a store holding benchObjects Workloads.
func filled(b *testing.B) (*Store, []Object) {
	b.Helper()
	s := openTemp(b, Options{})
	objs := make([]Object, benchObjects)
	for i := range objs {
		objs[i] = mustCreate(b, s, object("Workload", fmt.Sprintf("w%04d", i), benchSpec))
	}
	return s, objs
}

// BenchmarkCreate measures one acknowledged (fsynced) create.
func BenchmarkCreate(b *testing.B) {
	s := openTemp(b, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Create(ctx, object("Workload", fmt.Sprintf("w%07d", i), benchSpec)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGet reads objects of a store of 1,000.
func BenchmarkGet(b *testing.B) {
	s, objs := filled(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, "Workload", objs[i%len(objs)].Name); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkUpdate changes the spec of objects of a store of 1,000; each
// update is acknowledged (fsynced).
func BenchmarkUpdate(b *testing.B) {
	s, objs := filled(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o := &objs[i%len(objs)]
		o.Spec = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		got, err := s.Update(ctx, *o)
		if err != nil {
			b.Fatal(err)
		}
		*o = got
		i++
	}
}

// BenchmarkList lists all 1,000 objects of a kind.
func BenchmarkList(b *testing.B) {
	s, _ := filled(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		objs, _, err := s.List(ctx, "Workload")
		if err != nil || len(objs) != benchObjects {
			b.Fatal(len(objs), err)
		}
	}
}
