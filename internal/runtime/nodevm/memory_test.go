package nodevm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// TestNodeVMMemory: the runtimes of a node VM are not in its guest's memory
// (they are on the tools disk, read as used: the guest's Shmem, where an
// unpacked initramfs lives, stays small, where runc and runsc in the
// initramfs took 111 MiB), and memory that a container touched and freed
// goes back to the host (free page reporting): QEMU's resident memory rises
// while a container holds a 256 MiB buffer and falls by most of it after.
func TestNodeVMMemory(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	spec := runtime.InstanceSpec{
		ID: "mem", Workload: "mem", Tier: v1alpha1.TierContainer, Image: s.image, Command: script.Serve(3600),
		LogPath: filepath.Join(t.TempDir(), "mem.log"), MemoryBytes: 512 << 20,
	}
	st, err := d.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Remove(t.Context(), spec.ID) }()
	waitServing(t, spec.LogPath)
	exec := func(cmd string) string {
		var out bytes.Buffer
		code, err := d.Exec(t.Context(), spec.ID, []string{"sh", "-c", cmd}, nil, &out, &out)
		if err != nil || code != 0 {
			t.Fatalf("%s: code %d, %v: %s", cmd, code, err, out.String())
		}
		return out.String()
	}
	// A container sees the guest's /proc/meminfo.
	meminfo := exec("cat /proc/meminfo")
	shmem := -1
	for _, line := range strings.Split(meminfo, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "Shmem:" {
			shmem, _ = strconv.Atoi(f[1])
		}
	}
	if shmem < 0 || shmem > 32<<10 {
		t.Errorf("the guest's Shmem is %d kB; want at most 32 MiB, with the runtimes on the tools disk:\n%s", shmem, meminfo)
	}

	var mu sync.Mutex
	peak, low := 0, 0
	sample := func() int {
		rss := residentMiB(t, st.PID)
		mu.Lock()
		defer mu.Unlock()
		peak = max(peak, rss)
		if low == 0 || rss < low {
			low = rss
		}
		return rss
	}
	before := sample()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				sample()
			}
		}
	}()
	// dd holds its 256 MiB block while it copies it 8 times.
	exec("dd if=/dev/zero of=/dev/null bs=256M count=8 2>/dev/null")
	close(done)
	mu.Lock()
	top := peak
	low = top
	mu.Unlock()
	if top < before+128 {
		t.Fatalf("QEMU's resident memory rose from %d to %d MiB with a 256 MiB buffer in the guest; want at least 128 MiB more", before, top)
	}
	deadline := time.Now().Add(time.Minute)
	for sample() > top-128 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("QEMU's resident memory: %d MiB before, %d MiB with the buffer, %d MiB after it was freed", before, top, low)
	if low > top-128 {
		t.Errorf("QEMU's resident memory stayed at %d MiB (peak %d MiB) a minute after the guest freed 256 MiB; want it to fall by at least 128 MiB", low, top)
	}
}

// residentMiB is the resident memory of process pid (VmRSS), in MiB.
func residentMiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
