package qemu_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// BenchmarkSaveRestore boots one image VM (a 256 MiB guest) and then saves its whole state and restores it, each
// iteration: save-ms is SaveState (pause, start the disk backup job, write memory and devices,
// resume, wait for the disk copy); restore-ms is RestoreState (replace QEMU,
// load the state, resume).
func BenchmarkSaveRestore(b *testing.B) {
	e := needImageVMs(b)
	dir := b.TempDir()
	d := e.driver(b, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "bench", Workload: "bench", Tier: v1alpha1.TierVM, Image: e.image, MemoryBytes: 256 << 20,
		Command: []string{"sh", "-c", "i=0; while true; do i=$((i+1)); sleep 1; done"},
		LogPath: filepath.Join(dir, "bench.log"),
	}
	removeAll(b, d, spec.ID)
	if _, err := d.Start(b.Context(), spec); err != nil {
		b.Fatal(err)
	}
	time.Sleep(3 * time.Second) // booted
	var save, restore time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		s, err := d.SaveState(b.Context(), spec.ID, filepath.Join(dir, "saved-"+strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		save += time.Since(t0)
		t0 = time.Now()
		if err := d.RestoreState(b.Context(), spec.ID, s); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(t0)
	}
	b.ReportMetric(float64(save)/float64(time.Millisecond)/float64(b.N), "save-ms/op")
	b.ReportMetric(float64(restore)/float64(time.Millisecond)/float64(b.N), "restore-ms/op")
}
