package containerd

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// cgroupLayout says where the host's memory cgroups are.
type cgroupLayout struct {
	memoryRoot string // mount point of the memory hierarchy; "" if unknown
	v2         bool   // the memory hierarchy is cgroup v2 (unified)
	swapLimit  bool   // memory+swap can be limited (v1 memsw files, or v2)
}

// detectCgroups finds the memory hierarchy: cgroup v1 (also on hybrid
// hosts) at /sys/fs/cgroup/memory, else v2 at /sys/fs/cgroup.
func detectCgroups() cgroupLayout {
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "memory", "memory.limit_in_bytes")); err == nil {
		_, err := os.Stat(filepath.Join(root, "memory", "memory.memsw.limit_in_bytes"))
		return cgroupLayout{memoryRoot: filepath.Join(root, "memory"), swapLimit: err == nil}
	}
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil && bytes.Contains(b, []byte("memory")) {
		return cgroupLayout{memoryRoot: root, v2: true, swapLimit: true}
	}
	return cgroupLayout{}
}

// oomKills returns how many processes the kernel's OOM killer has killed in
// instance id's memory cgroup (0 when the cgroup is gone or unreadable). The
// cgroup exists from task creation until the task is deleted, so it still
// tells after the main process has exited.
func (d *Driver) oomKills(id string) uint64 {
	if d.cgroup.memoryRoot == "" {
		return 0
	}
	file, key := "memory.oom_control", "oom_kill"
	if d.cgroup.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(d.cgroup.memoryRoot, d.cgroupsPath(id), file))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 2 && string(f[0]) == key {
			n, _ := strconv.ParseUint(string(f[1]), 10, 64)
			return n
		}
	}
	return 0
}
