package nodevm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"strata.dev/strata/internal/runtime/qemu"
)

// Where a node VM's memory goes, logged by BenchmarkMemory (-v shows it):
// QEMU's resident memory by kind of mapping, and the guest's own count.

// mapping is one region of /proc/PID/smaps.
type mapping struct {
	name       string // the path, [heap], or "" for anonymous memory
	perms      string
	size, rss  int64 // bytes
	anonymous  bool
	categoryOf string
}

// readSmaps parses /proc/pid/smaps.
func readSmaps(pid int) ([]mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 {
			// The header of a mapping: range perms offset dev inode [name].
			lo, hi, _ := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			m := mapping{perms: fields[1], size: int64(end - start)}
			if len(fields) > 5 {
				m.name = strings.Join(fields[5:], " ")
			}
			m.anonymous = fields[4] == "0" && !strings.HasPrefix(m.name, "/")
			maps = append(maps, m)
			continue
		}
		if fields[0] == "Rss:" && len(fields) == 3 && len(maps) > 0 {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			maps[len(maps)-1].rss = n << 10
		}
	}
	return maps, sc.Err()
}

// category names what a QEMU mapping holds: the guest's RAM (a memfd, or
// the largest anonymous mapping), TCG's translated code (anonymous,
// writable and executable), QEMU's heap, other anonymous memory (thread
// arenas and stacks, QEMU's copies of ROMs, kernel and initrd), and files
// (QEMU's binary and libraries).
func category(m mapping, ramBytes int64) string {
	switch {
	case strings.HasPrefix(m.name, "/memfd:"):
		return "guest RAM"
	case m.anonymous && m.size >= ramBytes:
		return "guest RAM"
	case m.name == "[heap]":
		return "heap"
	case m.anonymous && strings.Contains(m.perms, "x"):
		return "TCG code"
	case m.anonymous || strings.HasPrefix(m.name, "["):
		return "other anonymous"
	default:
		return "files"
	}
}

// logQEMUMemory logs QEMU pid's resident memory by category and its
// largest anonymous mappings.
func logQEMUMemory(b *testing.B, label string, pid int, ramBytes int64) {
	b.Helper()
	maps, err := readSmaps(pid)
	if err != nil {
		b.Logf("%s: QEMU's smaps: %v", label, err)
		return
	}
	sums := map[string]int64{}
	var total int64
	for i := range maps {
		maps[i].categoryOf = category(maps[i], ramBytes)
		sums[maps[i].categoryOf] += maps[i].rss
		total += maps[i].rss
	}
	var line strings.Builder
	fmt.Fprintf(&line, "%s: QEMU RSS %.1f MiB:", label, mib(total))
	for _, c := range []string{"guest RAM", "TCG code", "heap", "other anonymous", "files"} {
		fmt.Fprintf(&line, " %s %.1f;", c, mib(sums[c]))
	}
	b.Log(line.String())
	slices.SortFunc(maps, func(x, y mapping) int { return int(y.rss - x.rss) })
	line.Reset()
	fmt.Fprintf(&line, "%s: QEMU's largest anonymous mappings (resident/size MiB):", label)
	n := 0
	for _, m := range maps {
		if m.categoryOf == "files" || m.rss < 512<<10 || n == 12 {
			continue
		}
		n++
		fmt.Fprintf(&line, " %s%s %.1f/%.1f;", m.perms, strings.TrimPrefix(" "+m.name, " "), mib(m.rss), mib(m.size))
	}
	b.Log(line.String())
}

// guestReport is a shell script, run by busybox in the node VM's root,
// that prints the guest's meminfo, its largest slab caches, the resident
// memory of every process, and the number of cgroups and mounts.
const guestReport = `B=%[1]s
$B echo "--- boot"; $B dmesg | $B grep -E 'Memory:|Freeing'
$B echo "--- meminfo"; $B cat /proc/meminfo
$B echo "--- slab (KiB: objects x size)"
$B awk 'NR>2 {printf "%%d %%s\n", $3*$4/1024, $1}' /proc/slabinfo | $B sort -rn | $B head -15
$B echo "--- processes (VmRSS kB, name)"
for p in /proc/[0-9]*; do
	n=$($B awk '/^Name:/ {print $2}' $p/status 2>/dev/null)
	r=$($B awk '/^VmRSS:/ {print $2}' $p/status 2>/dev/null)
	[ -n "$r" ] && $B echo "$r $n"
done | $B sort -rn | $B head -8
$B echo "--- agent (PID 1)"; $B grep -E '^(Rss|Anonymous|Pss_File)' /proc/1/smaps_rollup
$B echo "--- cgroups $($B find /sys/fs/cgroup -type d | $B wc -l), mounts $($B wc -l < /proc/mounts)"
$B echo "--- root memory.stat"; $B grep -E '^(anon|file|kernel|kernel_stack|pagetables|percpu|sock|shmem|slab|slab_reclaimable|slab_unreclaimable) ' /sys/fs/cgroup/memory.stat
`

// logGuestMemory logs node VM vm's own account of its memory: it runs the
// busybox of an image mounted in the guest (the node's root has no shell).
func logGuestMemory(b *testing.B, label string, q *qemu.Driver, vm string) {
	b.Helper()
	devices, err := q.NodeDevices(vm)
	if err != nil {
		b.Logf("%s: devices of %s: %v", label, vm, err)
		return
	}
	for _, dev := range devices {
		if dev.Kind != "disk" {
			continue
		}
		busybox := filepath.Join("/run/strata/images", "disk_by-id_virtio-"+dev.ID, "bin", "busybox")
		var out bytes.Buffer
		code, err := q.Exec(b.Context(), vm, []string{busybox, "sh", "-c", fmt.Sprintf(guestReport, busybox)}, nil, &out, &out)
		if err != nil || code != 0 {
			b.Logf("%s: the guest's memory report: code %d, %v: %s", label, code, err, out.String())
			continue
		}
		b.Logf("%s: the guest's memory:\n%s", label, out.String())
		return
	}
	b.Logf("%s: no image mounted in %s to take a shell from", label, vm)
}
