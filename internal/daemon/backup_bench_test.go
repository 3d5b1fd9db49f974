package daemon_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// BenchmarkDrillRTO measures a restore drill of a container workload with a 3 MiB volume
// backed up into a file repository: each iteration restores the backup into a scratch
// segment, waits until it runs and is Ready, and tears it down. It reports the drill's
// RTO (start to healthy, as the daemon measures it) besides the whole drill's time.
func BenchmarkDrillRTO(b *testing.B) {
	e := newE2E(b)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	e.applyDoc("ledger", ledger)
	e.eventually("ledger runs and wrote its data", 60*time.Second, func() error {
		if _, err := e.running("ledger", 1); err != nil {
			return err
		}
		_, err := e.strata("exec", "ledger", "--", "cat", "/data/state")
		return err
	})
	e.must("repo", "init", "file://"+filepath.Join(e.dir, "repo"))
	e.must("backup", "create", "ledger")
	var rto float64
	b.ResetTimer()
	for b.Loop() {
		var d v1alpha1.DrillResult
		if err := json.Unmarshal([]byte(e.must("drill", "ledger", "-o", "json")), &d); err != nil {
			b.Fatal(err)
		}
		if d.Result != v1alpha1.DrillSucceeded {
			b.Fatalf("drill %+v", d)
		}
		rto += d.RTOSeconds
	}
	b.ReportMetric(rto/float64(b.N), "rto-s/op")
}
