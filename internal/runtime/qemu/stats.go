package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.StatsReader = (*Driver)(nil)

// userHZ is the unit of the CPU times in /proc/PID/stat: the kernel reports
// them in USER_HZ ticks, 100 a second on every Linux architecture strata
// runs on.
const userHZ = 100

// Stats implements runtime.StatsReader: the CPU time of the QEMU process
// (user and system, all its threads: the guest's vCPUs and QEMU's own work)
// and its resident memory (VmRSS), which includes the guest memory the guest
// has touched.
func (d *Driver) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	if err := d.check(); err != nil {
		return runtime.Stats{}, err
	}
	if !runtime.ValidID(id) {
		return runtime.Stats{}, fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	// The record is replaced atomically, so it is read without the
	// instance's lock: a scrape does not wait for a Start or SaveState.
	r, err := d.readRecord(id)
	if err != nil {
		return runtime.Stats{}, err
	}
	if r.Finished || !d.alive(r) {
		return runtime.Stats{}, fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	}
	cpu, err := procCPUSeconds(r.PID)
	if err != nil {
		return runtime.Stats{}, fmt.Errorf("instance %q: %w", id, err)
	}
	rss, err := procRSSBytes(r.PID)
	if err != nil {
		return runtime.Stats{}, fmt.Errorf("instance %q: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return runtime.Stats{}, err
	}
	return runtime.Stats{CPUSeconds: cpu, MemoryBytes: rss}, nil
}

// procCPUSeconds returns utime+stime of process pid (fields 14 and 15 of
// /proc/PID/stat) in seconds.
func procCPUSeconds(pid int) (float64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read QEMU's CPU time: %w", err)
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime and stime from the content of /proc/PID/stat.
func parseStatCPU(data []byte) (float64, error) {
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat %q: no command name", data)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state), so field N is f[N-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat %q: %d fields, want at least 15", data, len(f)+2)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: CPU time %q: %w", s, err)
		}
		ticks += n
	}
	return float64(ticks) / userHZ, nil
}

// procRSSBytes returns the VmRSS of process pid from /proc/PID/status.
func procRSSBytes(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read QEMU's memory use: %w", err)
	}
	return parseStatusRSS(data)
}

// parseStatusRSS finds "VmRSS: N kB" in the content of /proc/PID/status.
func parseStatusRSS(data []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "VmRSS:" || f[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/status: VmRSS %q: %w", f[1], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/PID/status: no VmRSS line (a kernel thread or a zombie)")
}
