package kvmprobe

import (
	"os/exec"
	"testing"

	"strata.dev/strata/internal/testenv"
)

// The probe firmware must run wherever QEMU does: under TCG it reports its value,
// so a probe that fails under KVM fails because of KVM, not because of the firmware.
func TestFirmwareRunsUnderTCG(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.Skipf(t, "skipping: no qemu-system-x86_64 (make host-setup installs it)")
	}
	took, err := Run(t.Context(), Config{QEMU: qemu}, "tcg", "max")
	if err != nil {
		t.Fatalf("the probe guest under TCG: %v", err)
	}
	t.Logf("the probe guest ran under TCG in %s", took)
}

func TestFirstError(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed.\n",
			"failed to set MSR 0x10a to 0x69"},
		{"qemu-system-x86_64: CPU model 'host' requires KVM or HVF\n", "CPU model 'host' requires KVM or HVF"},
		{"\n\n", ""},
		{"something odd happened\n", "something odd happened"},
	} {
		if got := firstError(tc.out); got != tc.want {
			t.Errorf("firstError(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}
