package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/guest"
)

// vmBenchApp is the image VM the boot benchmark applies: busybox httpd in a microVM.
const vmBenchApp = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: %s}
spec:
  isolation: vm
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; echo entrypoint-up; mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www & wait"]
  resources: {memory: 128Mi}
`

// vmBenchKeeper is a container that keeps the default segment (and its bridge) up while
// QEMU runs by hand, after the last strata VM is gone.
const vmBenchKeeper = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: keeper}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`

// benchTap is the tap the hand-started QEMU uses, a port of the default segment's bridge.
const benchTap = "stbench0"

// BenchmarkVMBoot measures an image VM (128 MiB) from `strata apply` to Running (QEMU's monitor
// answers, the guest runs), to its entrypoint's first line in the log, and to the first byte
// its HTTP server sends on the VM's address; against QEMU started by hand with the very same
// command line, kernel, initrd, root disk and address (on a tap of the same bridge), from its
// start to the same two points. It also reports the resident memory of an idle microVM's
// QEMU process. The daemon runs as in the end-to-end test; removing the VM between
// iterations is not timed.
//
// It runs up to four times, each with its own daemon: setup=before as strata booted VMs before
// it had a kernel of its own (Debian's cloud kernel with its modules, a 64 MiB TCG cache),
// setup=cache8 with the daemon's defaults but an 8 MiB TCG cache, setup=fullqueues with the
// daemon's defaults but strata's kernel as built before its queue-size patches (the directory
// $STRATA_VMBENCH_FULLQUEUES_KERNEL_DIR, laid out as guest.StrataKernelDir; skipped when
// unset), which ignores the queue sizes on the command line, and setup=after with the daemon's
// defaults (strata's own kernel where it is built, a 16 MiB cache).
func BenchmarkVMBoot(b *testing.B) {
	for _, c := range []struct {
		name, kernelDir string
		args            []string
	}{
		{"setup=before", guest.DefaultKernelDir, []string{"--vm-tcg-cache-mib", "64"}},
		{"setup=cache8", "", []string{"--vm-tcg-cache-mib", "8"}},
		{"setup=fullqueues", os.Getenv("STRATA_VMBENCH_FULLQUEUES_KERNEL_DIR"), nil},
		{"setup=after", "", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.name == "setup=fullqueues" && c.kernelDir == "" {
				b.Skip("skipping: set STRATA_VMBENCH_FULLQUEUES_KERNEL_DIR to a directory with strata's kernel built without hack/guest-kernel/patches")
			}
			benchVMBoot(b, c.kernelDir, c.args)
		})
	}
}

func benchVMBoot(b *testing.B, kernelDir string, args []string) {
	e := newE2E(b)
	kdir := vmEnv(b, e)
	if kernelDir != "" {
		if _, err := guest.FindKernel(kernelDir); err != nil {
			b.Skipf("skipping: %v", err)
		}
		kdir = kernelDir
	}
	e.extraArgs = append([]string{"--guest-kernel-dir", kdir}, args...)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	c := client.NewUnix(e.socket)
	d := &benchDaemon{e}
	var bare []string // the last strata VM's QEMU command line, rewritten for a run by hand
	var bareIP string // its address
	iteration := 0
	b.Run("strata", func(b *testing.B) {
		var toRunning, toLine, toByte time.Duration
		rss := 0.0
		for range b.N {
			b.StopTimer()
			iteration++
			name := fmt.Sprintf("vmbench-%d", iteration)
			file := filepath.Join(e.dir, name+".yaml")
			if err := os.WriteFile(file, []byte(fmt.Sprintf(vmBenchApp, name)), 0o600); err != nil {
				b.Fatal(err)
			}
			w := d.watchRunning(c, name)
			b.StartTimer()
			t0 := time.Now()
			e.must("apply", "-f", file)
			if err := <-w.done; err != nil {
				b.Fatal(err)
			}
			toRunning += time.Since(t0)
			w.cancel()
			waitLine(b, filepath.Join(e.dir, "data", "logs", name+"-0.log"), time.Minute)
			toLine += time.Since(t0)
			ip := e.workload(name).Status.Instances[0].IP
			firstByte(b, e.netns, "http://"+ip+":8080/", time.Minute)
			toByte += time.Since(t0)
			b.StopTimer()
			pid := e.workload(name).Status.Instances[0].PID
			if rss == 0 {
				time.Sleep(5 * time.Second) // idle: the guest reports freed pages 2 s after it freed them
				rss = vmRSS(b, pid)
				b.Logf("QEMU resident %.1f MiB; mappings over 1 MiB (resident/size): %s", rss, bigMappings(pid))
			}
			bare, bareIP = bareCommand(b, e, name+"-0"), ip
			e.must("delete", "workload", name)
			e.eventually("the VM is removed", 60*time.Second, func() error {
				if n := len(qemus(e)); n > 0 {
					return fmt.Errorf("%d QEMU processes left", n)
				}
				return nil
			})
			b.StartTimer()
		}
		b.ReportMetric(float64(toRunning)/float64(time.Millisecond)/float64(b.N), "running-ms/op")
		b.ReportMetric(float64(toLine)/float64(time.Millisecond)/float64(b.N), "entrypoint-ms/op")
		b.ReportMetric(float64(toByte)/float64(time.Millisecond)/float64(b.N), "firstbyte-ms/op")
		b.ReportMetric(rss, "qemu-rss-MiB")
	})
	b.Run("qemu", func(b *testing.B) {
		if bare == nil {
			b.Skip("the strata run did not leave a command line to compare with")
		}
		keeper := filepath.Join(e.dir, "keeper.yaml")
		if err := os.WriteFile(keeper, []byte(vmBenchKeeper), 0o600); err != nil {
			b.Fatal(err)
		}
		e.must("apply", "-f", keeper)
		e.eventually("the default segment's bridge is up", 60*time.Second, func() error {
			_, err := run("ip", "-n", e.netns, "link", "show", "st-default")
			return err
		})
		defer func() {
			e.must("delete", "workload", "keeper")
			e.eventually("the keeper is removed", 60*time.Second, func() error {
				if _, err := os.Stat(filepath.Join(e.dir, "netns", "keeper-0")); err == nil {
					return errors.New("its network namespace is still there")
				}
				return nil
			})
		}()
		if out, err := run("ip", "-n", e.netns, "tuntap", "add", "dev", benchTap, "mode", "tap", "vnet_hdr"); err != nil {
			b.Fatalf("tap: %v %s", err, out)
		}
		defer func() { _, _ = run("ip", "-n", e.netns, "link", "del", benchTap) }()
		if out, err := run("ip", "-n", e.netns, "link", "set", benchTap, "master", "st-default", "up"); err != nil {
			b.Fatalf("tap: %v %s", err, out)
		}
		var toLine, toByte time.Duration
		for range b.N {
			b.StopTimer()
			console := filepath.Join(e.dir, "bare", "console.log")
			_ = os.Remove(console)
			overlay := filepath.Join(e.dir, "bare", "disk.qcow2")
			_ = os.Remove(overlay)
			if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", bareBase(b, e), overlay).CombinedOutput(); err != nil {
				b.Fatalf("qemu-img: %v %s", err, out)
			}
			b.StartTimer()
			t0 := time.Now()
			cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + e.netns, "qemu-system-x86_64"}, bare...)...)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			waitLine(b, console, time.Minute)
			toLine += time.Since(t0)
			firstByte(b, e.netns, "http://"+bareIP+":8080/", time.Minute)
			toByte += time.Since(t0)
			b.StopTimer()
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			b.StartTimer()
		}
		b.ReportMetric(float64(toLine)/float64(time.Millisecond)/float64(b.N), "entrypoint-ms/op")
		b.ReportMetric(float64(toByte)/float64(time.Millisecond)/float64(b.N), "firstbyte-ms/op")
	})
	e.stop()
}

// waitLine waits until the log at path shows the benchmark's entrypoint running.
func waitLine(tb testing.TB, path string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), "entrypoint-up") {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: no entrypoint line within %v", path, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstByte polls url from inside the test's network namespace until it answers.
func firstByte(tb testing.TB, netns, url string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+netns, "/bin/busybox", "wget", "-qO-", url).Output()
		if err == nil && len(out) > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not answer within %v", url, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// vmRSS reads the resident memory of process pid in MiB.
func vmRSS(tb testing.TB, pid int) float64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// bigMappings lists the mappings of process pid that hold more than 1 MiB resident, as
// "name resident/size MiB" (anonymous ones are "anon": the guest's RAM is the one of its
// size, TCG's code cache the one of the cache's).
func bigMappings(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err.Error()
	}
	var out []string
	name, size := "", 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			name, size = "anon", 0
			if len(f) >= 6 {
				name = filepath.Base(f[5])
			}
		case len(f) == 3 && f[0] == "Size:":
			size, _ = strconv.Atoi(f[1])
		case len(f) == 3 && f[0] == "Rss:":
			if kb, _ := strconv.Atoi(f[1]); kb > 1024 {
				out = append(out, fmt.Sprintf("%s %d/%d", name, kb/1024, size/1024))
			}
		}
	}
	return strings.Join(out, ", ")
}

// bareBase is the root disk the daemon made for the busybox image.
func bareBase(tb testing.TB, e *e2e) string {
	tb.Helper()
	disks, _ := filepath.Glob(filepath.Join(e.dir, "data", "vm", "images", "*.ext4"))
	if len(disks) != 1 {
		tb.Fatalf("want one cached root disk, found %v", disks)
	}
	return disks[0]
}

// bareCommand copies instance id's initrd and rewrites its QEMU command line to run by hand:
// files in a directory of the benchmark's, the console to a file, and benchTap instead of
// the tap the daemon passes as a file descriptor.
func bareCommand(tb testing.TB, e *e2e, id string) []string {
	tb.Helper()
	inst := filepath.Join(e.dir, "data", "vm", id)
	dir := filepath.Join(e.dir, "bare")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(inst, "instance.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var rec struct {
		Args []string `json:"args"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		tb.Fatal(err)
	}
	initrd, err := os.ReadFile(filepath.Join(inst, "initrd.img"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "initrd.img"), initrd, 0o600); err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, a := range rec.Args {
		a = strings.ReplaceAll(a, inst, dir)
		if strings.HasPrefix(a, "tap,") {
			a = "tap,id=net0,ifname=" + benchTap + ",script=no,downscript=no,vhost=off"
		}
		if i := strings.Index(a, ",logfile="); i >= 0 {
			a = a[:i] + ",logfile=" + filepath.Join(dir, "console.log")
		}
		out = append(out, a)
	}
	return out
}
