package qemu

import (
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/internal/runtime"
)

// TestTCGCacheSize: under TCG the accelerator argument sizes the translated-code
// cache as configured (default DefaultTCGCacheMiB); under KVM there is none; a
// negative size is refused.
func TestTCGCacheSize(t *testing.T) {
	accelArg := func(d *Driver) string {
		args := d.machine(runtime.InstanceSpec{ID: "a", MemoryBytes: 128 * mib}, "microvm")
		i := slices.Index(args, "-accel")
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("no -accel in %v", args)
		}
		return args[i+1]
	}
	for _, tc := range []struct {
		cfg  int
		want string
	}{{0, "tcg,tb-size=16"}, {64, "tcg,tb-size=64"}} {
		d, err := New(t.Context(), Config{StateDir: t.TempDir(), QEMU: "/bin/true", QEMUImg: "/bin/true", Accel: AccelTCG, TCGCacheMiB: tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		if got := accelArg(d); got != tc.want {
			t.Errorf("TCGCacheMiB %d: -accel %q, want %q", tc.cfg, got, tc.want)
		}
		_ = d.Close()
	}
	if got := accelArg(&Driver{accel: accelKVM, cfg: Config{TCGCacheMiB: 16}}); got != "kvm" {
		t.Errorf("under KVM: -accel %q, want kvm", got)
	}
	_, err := New(t.Context(), Config{StateDir: t.TempDir(), QEMU: "/bin/true", QEMUImg: "/bin/true", Accel: AccelTCG, TCGCacheMiB: -1})
	if err == nil || !strings.Contains(err.Error(), "-1 MiB") {
		t.Errorf("TCGCacheMiB -1: %v, want an error naming the size", err)
	}
}
