package qemu

import (
	"testing"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

// TestGuestKernelDefault: without Config.KernelDir the kernel node VMs boot
// (GuestKernel) is the one image VMs boot: strata's own where it is built,
// else Debian's cloud kernel, not an error about an empty directory.
func TestGuestKernelDefault(t *testing.T) {
	want, werr := guest.LocateKernel("")
	if werr != nil {
		testenv.Skipf(t, "skipping: no guest kernel on this host: %v", werr)
	}
	got, err := (&Driver{}).GuestKernel()
	if err != nil || got != want {
		t.Errorf("GuestKernel without KernelDir: %+v, %v; want %+v, as image VMs find it", got, err, want)
	}
}
