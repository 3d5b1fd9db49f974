package daemon_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

// vmApps is a container and an image VM that serve HTTP on the default segment.
const vmApps = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo container ok > /www/index.html; httpd -f -p 8080 -h /www & wait"]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: vmweb}
spec:
  isolation: vm
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; echo vm $HOSTNAME up; mkdir -p /www; echo vm ok > /www/index.html; httpd -f -p 8080 -h /www & wait"]
  resources: {memory: 192Mi}
`

// brokenVM names a disk that does not exist (in the daemon's images directory).
const brokenVM = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: broken}
spec:
  vm: {disk: {path: nonexistent/legacy.qcow2}}
`

// vmEnv finds the guest kernel for VM tests (newE2E put strata-guest next to the strata
// binary); it skips when the host lacks QEMU or the kernel.
func vmEnv(t testing.TB, e *e2e) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.Skipf(t, "skipping: qemu-system-x86_64 not found (make host-setup)")
	}
	kdir := os.Getenv("STRATA_GUEST_KERNEL_DIR")
	if kdir == "" {
		// As the daemon by default: strata's own kernel where it is built.
		kdir = guest.DefaultKernelDir
		if _, err := guest.FindKernel(guest.StrataKernelDir); err == nil {
			kdir = guest.StrataKernelDir
		}
	}
	if _, err := guest.FindKernel(kdir); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	return kdir // newE2E built strata-guest
}

// qemus lists the QEMU processes of the harness's daemon.
func qemus(e *e2e) []int {
	var out []int
	for _, pid := range processesUnder(e.dir) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && strings.Contains(exe, "qemu-system") {
			out = append(out, pid)
		}
	}
	return out
}

// TestDaemonVMs runs an image VM beside a container through the real daemon: they reach
// each other on one segment, the VM serves HTTP on its address, its console is its log,
// exec works, a killed QEMU is restarted, the VM survives a daemon crash and is re-adopted,
// a broken VM source fails clearly, and delete leaves no process, tap or file.
func TestDaemonVMs(t *testing.T) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	e.extraArgs = []string{"--guest-kernel-dir", kdir}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	appFile := filepath.Join(e.dir, "vm-apps.yaml")
	if err := os.WriteFile(appFile, []byte(vmApps), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", appFile)
	var vmPID int
	e.eventually("the VM and the container run", 120*time.Second, func() error {
		if _, err := e.running("web", 1); err != nil {
			return fmt.Errorf("web: %w", err)
		}
		pids, err := e.running("vmweb", 1)
		vmPID = pids["vmweb-0"]
		return err
	})
	vm := e.workload("vmweb").Status
	if vm.Tier != v1alpha1.TierVM || vm.Instances[0].IP == "" || !strings.Contains(vm.Instances[0].Message, "running under") {
		t.Errorf("vmweb status: tier %s, instance %+v", vm.Tier, vm.Instances[0])
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", vmPID)); !strings.Contains(exe, "qemu-system") {
		t.Errorf("vmweb's pid %d is %q, not QEMU", vmPID, exe)
	}
	vmIP, webIP := vm.Instances[0].IP, e.workload("web").Status.Instances[0].IP

	// The VM serves on its address: to the host side of the segment, and to the container.
	e.eventually("the VM serves HTTP on "+vmIP, 90*time.Second, func() error {
		out, err := run("nsenter", "--net=/run/netns/"+e.netns, "/bin/busybox", "wget", "-qO-", "http://"+vmIP+":8080/")
		if err != nil || out != "vm ok\n" {
			return fmt.Errorf("%q, %w", out, err)
		}
		return nil
	})
	if out, err := e.strata("exec", "web", "--", "wget", "-qO-", "http://"+vmIP+":8080/"); err != nil || out != "vm ok\n" {
		t.Errorf("container -> VM: %q, %v", out, err)
	}
	// exec goes through strata's guest agent; the VM reaches the container too.
	if out, err := e.strata("exec", "vmweb", "--", "wget", "-qO-", "http://"+webIP+":8080/"); err != nil || out != "container ok\n" {
		t.Errorf("VM -> container: %q, %v", out, err)
	}
	k, err := guest.FindKernel(kdir)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.strata("exec", "vmweb", "--", "cat", "/proc/sys/kernel/osrelease"); err != nil || strings.TrimSpace(out) != k.Version {
		t.Errorf("the VM's own kernel: %q, %v; want the guest kernel %s", out, err, k.Version)
	}
	if logs := e.must("logs", "vmweb"); !strings.Contains(logs, "vm vmweb-0 up") {
		t.Errorf("the VM's console is not in its log: %q", logs)
	}

	// Kill QEMU: the instance is restarted, on the same address, and the restart counted.
	if err := syscall.Kill(vmPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.eventually("vmweb-0 restarted", 120*time.Second, func() error {
		in := e.workload("vmweb").Status.Instances[0]
		if in.Restarts != 1 || in.State != "running" || in.PID == vmPID || in.IP != vmIP {
			return fmt.Errorf("vmweb-0: %+v", in)
		}
		return nil
	})
	e.eventually("the restarted VM serves", 90*time.Second, func() error {
		out, err := e.strata("exec", "web", "--", "wget", "-qO-", "http://"+vmIP+":8080/")
		if err != nil || out != "vm ok\n" {
			return fmt.Errorf("%q, %w", out, err)
		}
		return nil
	})

	// Kill -9 the daemon: the VM keeps running and is re-adopted, never duplicated.
	before := e.workload("vmweb").Status.Instances[0].PID
	e.kill9()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", before)); err != nil {
		t.Fatalf("the VM died with the daemon")
	}
	e.start()
	time.Sleep(3 * time.Second) // a few reconcile rounds
	if pids, err := e.running("vmweb", 1); err != nil || pids["vmweb-0"] != before {
		t.Errorf("after the daemon's restart: %v %v; want vmweb-0 at pid %d", pids, err, before)
	}
	if n := len(qemus(e)); n != 1 {
		t.Errorf("%d QEMU processes after re-adoption, want 1", n)
	}
	if out, err := e.strata("exec", "vmweb", "--", "cat", "/www/index.html"); err != nil || out != "vm ok\n" {
		t.Errorf("exec after re-adoption: %q, %v", out, err)
	}

	// A VM source that cannot boot fails with a clear message; the daemon keeps serving.
	brokenFile := filepath.Join(e.dir, "broken.yaml")
	if err := os.WriteFile(brokenFile, []byte(brokenVM), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", brokenFile)
	e.eventually("the broken VM reports why", 60*time.Second, func() error {
		out := e.must("describe", "workload", "broken")
		if !strings.Contains(out, "images/nonexistent/legacy.qcow2") {
			return fmt.Errorf("describe does not name the missing disk:\n%s", out)
		}
		return nil
	})
	e.must("delete", "workload", "broken")

	// Delete: no QEMU, tap or instance directory is left.
	e.must("delete", "-f", appFile)
	e.eventually("nothing of the VM left", 90*time.Second, func() error {
		if n := len(qemus(e)); n > 0 {
			return fmt.Errorf("%d QEMU processes left", n)
		}
		entries, _ := os.ReadDir(filepath.Join(e.dir, "data", "vm"))
		for _, en := range entries {
			if en.Name() != "images" && en.Name() != "guest" {
				return fmt.Errorf("instance state left: %s", en.Name())
			}
		}
		links, _ := run("ip", "-n", e.netns, "-o", "link", "show", "type", "tun")
		if strings.TrimSpace(links) != "" {
			return fmt.Errorf("taps left: %s", links)
		}
		return nil
	})
	e.stop()
}
