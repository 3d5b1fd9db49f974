package nodevm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
)

// benchReplicas is how many replicas BenchmarkMemory runs each way.
const benchReplicas = 20

// BenchmarkMemory measures the host memory that benchReplicas replicas of one
// class take, side by side: as containers in node VMs (nodevm: crun in the
// guest, one 1 GiB node VM holds them all), once with the runtimes on the
// tools disk (tools-disk, the driver's way) and once in the node VM's
// initramfs (initramfs, as before the tools disk), and as image VMs of 128
// MiB each (the qemu driver's vm tier). Each replica runs the same small
// serving command. It reports, summed over the QEMU processes, resident
// (RSS) and proportional (PSS: shared pages split between the processes)
// memory, and for node VMs their overhead beyond the replicas: the node
// VMs' RSS less the resident memory of the replicas' processes in the guest
// (VmRSS), the RSS of the node VM before it runs any replica, and the
// guest's own count of the memory it uses (MemTotal less MemAvailable). The
// replicas request memory but no CPU: a CPU request is a CFS quota, under
// which runc's init crawls under emulation (25m made each start take 30 s).
// Besides the two node VM variants of today's settings, others each change
// one setting, to measure it against today's in the same run: runc in place
// of crun (as node VMs ran their containers before), 32 root ports
// (the driver's default, where the tests' drivers have 4), an 8 MiB TCG
// cache, the guest agent with GOGC=50, QEMU with one malloc arena, and the
// virtio-serial device with QEMU's 31 ports (as node VMs had it before).
// Each reports the median time of a replica's Start too, and with -v it
// logs where the memory goes: QEMU's smaps by kind of mapping, and the
// guest's meminfo, slab caches and processes, with one replica and with
// all of them.
// Run it once: -bench Memory -benchtime 1x (-bench Memory/nodevm for the
// node VMs alone, -bench 'Memory/nodevm-(tools-disk|tcg8)$' for two).
func BenchmarkMemory(b *testing.B) {
	s := needNodeVMs(b)
	s.removeNodeVMs(b)
	dir := b.TempDir()
	serve := func(id string, tier v1alpha1.Tier) runtime.InstanceSpec {
		return runtime.InstanceSpec{
			ID: id, Workload: "mem", Tier: tier, Image: s.image, Command: script.Serve(3600),
			LogPath: filepath.Join(dir, id+".log"), MemoryBytes: 32 << 20,
		}
	}

	for _, variant := range []struct {
		name      string
		initramfs bool
		ports     int    // the node VMs' root ports (0: 4, as the tests' drivers)
		tcgMiB    int    // the node VMs' TCG cache (0: the qemu driver's default)
		cmdline   string // added to the node VMs' kernel command line
		// qemu, when set, is a shell script's lines that run before QEMU is
		// executed with the driver's arguments ("$@"), to try what the
		// driver cannot set.
		qemu string
		// runc runs the replicas under runc, as before crun (its tools disk
		// carries runc too).
		runc bool
	}{
		{name: "tools-disk"}, {name: "runc", runc: true}, {name: "initramfs", initramfs: true},
		{name: "ports32", ports: 32},
		{name: "tcg8", tcgMiB: 8},
		{name: "gogc50", cmdline: "GOGC=50"},
		{name: "arena1", qemu: "export GLIBC_TUNABLES=glibc.malloc.arena_max=1"},
		// Before the virtio-serial device of node VMs was sized for its ports.
		{name: "serial31", qemu: `for a in "$@"; do shift; [ "$a" = virtio-serial-pci,max_ports=3 ] && a=virtio-serial-pci; set -- "$@" "$a"; done`},
	} {
		b.Run("nodevm-"+variant.name, func(b *testing.B) {
			class := "mem-" + variant.name
			s := s
			if variant.tcgMiB != 0 || variant.qemu != "" {
				s.qemu = filepath.Join(filepath.Dir(s.qemu), "qemu-"+variant.name)
				s.q = s.qemuDriver(b, func(cfg *qemu.Config) {
					cfg.TCGCacheMiB = variant.tcgMiB
					if variant.qemu != "" {
						cfg.QEMU = qemuScript(b, variant.qemu)
					}
				})
				s.removeNodeVMs(b)
			}
			ports := variant.ports
			if ports == 0 {
				ports = 4
			}
			cfg := nodevm.Config{
				QEMU: s.q, StateDir: filepath.Join(s.state, variant.name), GuestCacheDir: guestCache, Tools: s.tools, Ports: ports,
				NodeShape: nodevm.Shape{CPUMilli: 2000, MemoryBytes: 1 << 30},
			}
			if variant.runc {
				cfg.Tools.Runc = "/usr/sbin/runc"
				if _, err := os.Stat(cfg.Tools.Runc); err != nil {
					b.Skipf("no runc to compare with: %v", err)
				}
				cfg.ContainerRuntime = guest.RuntimeRunc
			}
			d, err := nodevm.New(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			if variant.initramfs {
				nodevm.SetToolsInInitramfs(d)
			}
			nodevm.SetCmdline(d, variant.cmdline)
			spec := func(id string) runtime.InstanceSpec {
				sp := serve(id, v1alpha1.TierContainer)
				sp.Labels = map[string]string{nodevm.LabelIsolationClass: class}
				return sp
			}
			// The first replica boots the node VM; once it is gone, the VM is empty.
			first := spec("mem-boot-" + variant.name)
			began := time.Now()
			if _, err := d.Start(b.Context(), first); err != nil {
				b.Fatal(err)
			}
			boot := time.Since(began)
			waitServing(b, first.LogPath)
			time.Sleep(10 * time.Second) // let the guest settle
			vm := nodeVMID(b, s, class)
			logGuestMemory(b, "one replica", s.q, vm)
			if err := d.Stop(b.Context(), first.ID, 0); err != nil {
				b.Fatal(err)
			}
			if err := d.Remove(b.Context(), first.ID); err != nil {
				b.Fatal(err)
			}
			time.Sleep(10 * time.Second) // let the guest settle
			empty := sumMemory(b, nodeVMPIDs(b, s, class))
			logQEMUMemory(b, "empty", nodeVMPIDs(b, s, class)[0], 1<<30)

			var ids []string
			var starts []time.Duration
			for i := range benchReplicas {
				spec := spec(fmt.Sprintf("mem-%s-%02d", variant.name, i))
				began := time.Now()
				if _, err := d.Start(b.Context(), spec); err != nil {
					b.Fatal(err)
				}
				starts = append(starts, time.Since(began))
				ids = append(ids, spec.ID)
				defer func() { _ = d.Remove(b.Context(), spec.ID) }()
			}
			for _, id := range ids {
				waitServing(b, filepath.Join(dir, id+".log"))
			}
			time.Sleep(10 * time.Second)
			pids := nodeVMPIDs(b, s, class)
			m := sumMemory(b, pids)
			logQEMUMemory(b, "20 replicas", pids[0], 1<<30)
			logGuestMemory(b, "20 replicas", s.q, vm)
			// What the replicas' processes hold, as the guest counts it: VmRSS of every
			// process each container sees (its shell and sleep; the probe's own shell
			// is left out).
			var inside int64
			for _, id := range ids {
				var out bytes.Buffer
				code, err := d.Exec(b.Context(), id, []string{"sh", "-c", `for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] || cat "$p/status"; done`}, nil, &out, nil)
				if err != nil || code != 0 {
					b.Fatalf("read %s's processes' memory: code %d, %v", id, code, err)
				}
				for _, line := range strings.Split(out.String(), "\n") {
					f := strings.Fields(line)
					if len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
						n, err := strconv.ParseInt(f[1], 10, 64)
						if err != nil {
							b.Fatalf("%s: %q: %v", id, line, err)
						}
						inside += n << 10
					}
				}
			}
			// The guest's own count, from /proc/meminfo, which a container sees.
			var out bytes.Buffer
			if code, err := d.Exec(b.Context(), ids[0], []string{"cat", "/proc/meminfo"}, nil, &out, nil); err != nil || code != 0 {
				b.Fatalf("read the guest's meminfo: code %d, %v", code, err)
			}
			info := map[string]int64{}
			for _, line := range strings.Split(out.String(), "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[2] == "kB" {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					info[strings.TrimSuffix(f[0], ":")] = n << 10
				}
			}
			slices.Sort(starts)
			b.ReportMetric(boot.Seconds(), "s-first-start")
			b.ReportMetric(starts[len(starts)/2].Seconds(), "s-start-median")
			b.ReportMetric(float64(len(pids)), "node-VMs")
			b.ReportMetric(mib(m.rss), "MiB-RSS")
			b.ReportMetric(mib(m.pss), "MiB-PSS")
			b.ReportMetric(mib(inside), "MiB-in-replicas")
			b.ReportMetric(mib(m.rss-inside), "MiB-overhead")
			b.ReportMetric(mib(empty.rss), "MiB-RSS-empty-node-VM")
			b.ReportMetric(mib(info["MemTotal"]-info["MemAvailable"]), "MiB-guest-used")
			b.ReportMetric(mib(info["Shmem"]), "MiB-guest-shmem")
		})
	}

	b.Run("image-VMs", func(b *testing.B) {
		var ids []string
		for i := range benchReplicas {
			spec := serve(fmt.Sprintf("mem-v-%02d", i), v1alpha1.TierVM)
			spec.MemoryBytes = 128 << 20
			if _, err := s.q.Start(b.Context(), spec); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, spec.ID)
			defer func() { _ = s.q.Remove(b.Context(), spec.ID) }()
		}
		var pids []int
		for _, id := range ids {
			waitServing(b, filepath.Join(dir, id+".log"))
			st, err := s.q.Status(b.Context(), id)
			if err != nil || st.PID == 0 {
				b.Fatalf("status of %s: %+v, %v", id, st, err)
			}
			pids = append(pids, st.PID)
		}
		time.Sleep(10 * time.Second)
		m := sumMemory(b, pids)
		b.ReportMetric(mib(m.rss), "MiB-RSS")
		b.ReportMetric(mib(m.pss), "MiB-PSS")
	})
}

// nodeVMPIDs are the QEMU processes of the setup's running node VMs of class.
func nodeVMPIDs(b *testing.B, s setup, class string) []int {
	b.Helper()
	list, err := s.q.List(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for _, st := range list {
		if st.Labels[nodevm.LabelClass] == class && st.State == runtime.StateRunning && st.PID != 0 {
			pids = append(pids, st.PID)
		}
	}
	if len(pids) == 0 {
		b.Fatal("no node VM runs")
	}
	return pids
}

// qemuScript writes a shell script that runs lines, then QEMU with the
// script's arguments, and returns its path.
func qemuScript(b *testing.B, lines string) string {
	b.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "qemu")
	script := "#!/bin/sh\n" + lines + "\nexec " + bin + ` "$@"` + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return path
}

// nodeVMID is the ID of the setup's running node VM of class.
func nodeVMID(b *testing.B, s setup, class string) string {
	b.Helper()
	list, err := s.q.List(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range list {
		if st.Labels[nodevm.LabelClass] == class && st.State == runtime.StateRunning {
			return st.ID
		}
	}
	b.Fatal("no node VM runs")
	return ""
}

// memory is resident and proportional memory, in bytes.
type memory struct{ rss, pss int64 }

// sumMemory adds up the RSS and PSS of pids (/proc/PID/smaps_rollup).
func sumMemory(b *testing.B, pids []int) memory {
	b.Helper()
	var m memory
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 || fields[2] != "kB" {
				continue
			}
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				continue
			}
			switch fields[0] {
			case "Rss:":
				m.rss += n << 10
			case "Pss:":
				m.pss += n << 10
			}
		}
		_ = f.Close()
	}
	return m
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// waitServing waits until the log at path says the serving command runs.
func waitServing(b testing.TB, path string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte(script.ServeReady)) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("%s: no %q within 5 minutes", path, script.ServeReady)
}
