package guest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/internal/runtime/qemu/kvmprobe"
	"strata.dev/strata/internal/testenv"
)

// The boot tests run strata-guest for real: QEMU microvm under TCG (or KVM
// where a probe guest runs under it: a /dev/kvm that opens is no proof) with strata's guest kernel, a busybox root disk and
// the initramfs BuildInitramfs makes.

// guestInit is the strata-guest binary TestMain built, or why it could not.
var (
	guestInit    string
	guestInitErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "strata-guest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !testing.Short() {
		guestInit, guestInitErr = buildGuestInit(dir)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuestInit builds cmd/strata-guest as `make build` does.
func buildGuestInit(dir string) (string, error) {
	out := filepath.Join(dir, "strata-guest")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "strata.dev/strata/cmd/strata-guest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build strata-guest: %w: %s", err, b)
	}
	return out, nil
}

// kernelForTest finds the guest kernel: $STRATA_GUEST_KERNEL_DIR when set,
// else as the driver does (LocateKernel: strata's own where built).
func kernelForTest(t *testing.T) Kernel {
	t.Helper()
	k, err := LocateKernel(os.Getenv("STRATA_GUEST_KERNEL_DIR"))
	if err != nil {
		testenv.Skipf(t, "no guest kernel (%v); run `make host-setup` or set STRATA_GUEST_KERNEL_DIR", err)
	}
	return k
}

// bootEnv is what every boot test needs: QEMU, the kernel, the base
// initramfs and a busybox root tree, made once.
type bootEnv struct {
	qemu      string
	kernel    Kernel
	initramfs []byte
	rootfs    string
	// kvm: a probe guest ran under KVM, so the tests boot under it.
	kvm bool
}

var (
	bootOnce   sync.Once
	bootShared *bootEnv
	bootErr    error
)

func bootSetup(t *testing.T) *bootEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("boot tests are skipped with -short")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.Skipf(t, "qemu-system-x86_64 is not installed (make host-setup installs qemu-system-x86)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "busybox is not installed (make host-setup installs busybox-static)")
	}
	k := kernelForTest(t)
	if guestInitErr != nil {
		t.Fatal(guestInitErr)
	}
	bootOnce.Do(func() {
		env := &bootEnv{qemu: qemu, kernel: k}
		if _, err := kvmprobe.KVM(context.Background(), kvmprobe.Config{QEMU: qemu}); err == nil {
			env.kvm = true
		} else {
			t.Logf("booting under TCG: KVM unusable: %v", err)
		}
		var buf bytes.Buffer
		if bootErr = BuildInitramfs(&buf, k, guestInit); bootErr != nil {
			return
		}
		env.initramfs = buf.Bytes()
		t.Logf("base initramfs: %d bytes", buf.Len())
		env.rootfs, bootErr = busyboxRoot(filepath.Dir(guestInit), busybox)
		bootShared = env
	})
	if bootErr != nil {
		t.Fatal(bootErr)
	}
	return bootShared
}

// busyboxRoot makes a root tree with a static busybox as /bin/busybox and a
// symlink to it for each applet.
func busyboxRoot(dir, busybox string) (string, error) {
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		return "", err
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w (is it busybox-static?)", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("/bin/busybox", filepath.Join(root, "bin", applet)); err != nil {
			return "", err
		}
	}
	return root, nil
}

// testVM is one running QEMU.
type testVM struct {
	dir     string
	started time.Time
	done    chan struct{} // closed when QEMU has exited
	ended   time.Time
	cpu     time.Duration // QEMU's user and system time, once it has exited
	waitErr error
	stderr  bytes.Buffer
}

func (vm *testVM) path(name string) string { return filepath.Join(vm.dir, name) }

// boot starts a VM running cfg (its Root filled in) and kills it when the
// test ends, whatever happened.
func (env *bootEnv) boot(t *testing.T, cfg Config) *testVM {
	t.Helper()
	vm := &testVM{dir: t.TempDir(), done: make(chan struct{})}
	cfg.Root = RootFS{Device: "/dev/vda", FSType: "ext4"}
	extra, err := ConfigArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vm.path("initrd"), append(append([]byte{}, env.initramfs...), extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := MakeRootDisk(ctx, env.rootfs, vm.path("root.img"), 0); err != nil {
		t.Fatal(err)
	}
	kvm := env.kvm
	args := []string{
		"-M", "microvm", "-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-global", "virtio-mmio.force-legacy=false",
		"-chardev", "file,id=con,path=" + vm.path("console.log"), "-serial", "chardev:con",
		"-qmp", "unix:" + vm.path("qmp.sock") + ",server=on,wait=off",
		"-kernel", env.kernel.Vmlinuz, "-initrd", vm.path("initrd"),
		"-append", KernelCmdline(kvm),
		"-blockdev", "driver=file,filename=" + vm.path("root.img") + ",node-name=f0",
		"-blockdev", "driver=raw,file=f0,node-name=d0",
		"-device", "virtio-blk-device,drive=d0",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path=" + vm.path("agent.sock") + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + AgentPort,
		"-chardev", "file,id=exit,path=" + vm.path("exit.json"),
		"-device", "virtserialport,chardev=exit,name=" + ExitPort,
		"-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-device,netdev=n0",
	}
	env.start(t, vm, args)
	return vm
}

// start runs QEMU with args and the accelerator, and kills it when the test
// ends, whatever happened.
func (env *bootEnv) start(t *testing.T, vm *testVM, args []string) {
	t.Helper()
	if env.kvm {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "max")
	}
	cmd := exec.Command(env.qemu, args...)
	cmd.Stderr = &vm.stderr
	vm.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		vm.waitErr = cmd.Wait()
		vm.ended = time.Now()
		vm.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		close(vm.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-vm.done
		if t.Failed() || os.Getenv("STRATA_TEST_CONSOLE") != "" {
			console, _ := os.ReadFile(vm.path("console.log"))
			t.Logf("console log:\n%s\nqemu stderr:\n%s", console, vm.stderr.String())
		}
	})
}

// wait waits for QEMU to exit by itself.
func (vm *testVM) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-vm.done:
		if vm.waitErr != nil {
			t.Errorf("qemu: %v", vm.waitErr)
		}
	case <-time.After(timeout):
		t.Fatalf("the VM did not power off within %s", timeout)
	}
}

// waitConsole waits until the console log holds s and returns when it
// first saw it.
func (vm *testVM) waitConsole(t *testing.T, s string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(vm.path("console.log"))
		if bytes.Contains(b, []byte(s)) {
			return time.Now()
		}
		select {
		case <-vm.done:
			b, _ = os.ReadFile(vm.path("console.log"))
			if bytes.Contains(b, []byte(s)) {
				return vm.ended
			}
			t.Fatalf("the VM ended before %q appeared on its console", s)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("%q did not appear on the console within %s", s, timeout)
	return time.Time{}
}

func (vm *testVM) exitReport(t *testing.T) ExitReport {
	t.Helper()
	b, err := os.ReadFile(vm.path("exit.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep ExitReport
	if err := json.Unmarshal(b, &rep); err != nil || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("exit.json = %q: not one JSON line (%v)", b, err)
	}
	return rep
}

// TestBootEntrypointExit boots a VM whose entrypoint prints and exits 7.
func TestBootEntrypointExit(t *testing.T) {
	env := bootSetup(t)
	t.Parallel()
	vm := env.boot(t, Config{
		Hostname: "exit-test",
		Args:     []string{"sh", "-c", "echo hello from the entrypoint; exit 7"},
	})
	seen := vm.waitConsole(t, "hello from the entrypoint", time.Minute)
	vm.wait(t, time.Minute)
	t.Logf("QEMU start to entrypoint output %s, to QEMU exit %s; QEMU used %s of CPU",
		seen.Sub(vm.started).Round(time.Millisecond), vm.ended.Sub(vm.started).Round(time.Millisecond), vm.cpu.Round(time.Millisecond))
	if rep := vm.exitReport(t); rep != (ExitReport{ExitCode: 7}) {
		t.Errorf("exit report = %+v, want exit code 7", rep)
	}
	console, _ := os.ReadFile(vm.path("console.log"))
	if !bytes.Contains(console, []byte("strata-guest: exit code 7")) {
		t.Errorf("the console lacks the init's exit line:\n%s", console)
	}
}

// TestBootAgentNetworkStop boots one VM and checks the exec agent, the
// network configuration, and a graceful stop by the ACPI power button.
func TestBootAgentNetworkStop(t *testing.T) {
	env := bootSetup(t)
	t.Parallel()
	vm := env.boot(t, Config{
		Hostname: "agent-test",
		Args:     []string{"sh", "-c", `trap 'echo entrypoint got TERM; exit 42' TERM; echo entrypoint ready; sleep 1000 & wait`},
		Env:      []string{"GREETING=from the config"},
		Net: &NetConfig{
			Address: netip.MustParsePrefix("10.0.2.15/24"),
			Gateway: netip.MustParseAddr("10.0.2.2"),
			DNS:     []netip.Addr{netip.MustParseAddr("10.0.2.3")},
		},
		StopGraceSeconds: 5,
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	client := dialWhenUp(ctx, t, vm.path("agent.sock"))
	t.Logf("QEMU start to agent handshake %s", time.Since(vm.started).Round(time.Millisecond))
	defer client.Close()
	if err := client.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("exec", func(t *testing.T) {
		run(ctx, t, client, []string{"echo", "hi"}, nil, "", "hi\n", "", 0)
		run(ctx, t, client, []string{"cat"}, nil, "line one\nline two\n", "line one\nline two\n", "", 0)
		run(ctx, t, client, []string{"sh", "-c", "echo oops >&2; exit 3"}, nil, "", "", "oops\n", 3)
		run(ctx, t, client, []string{"sh", "-c", "echo $GREETING $EXTRA"}, []string{"EXTRA=and the exec"}, "", "from the config and the exec\n", "", 0)
		run(ctx, t, client, []string{"pwd"}, nil, "", "/\n", "", 0)
	})

	t.Run("missing program", func(t *testing.T) {
		code, err := client.Exec(ctx, []string{"no-such-program"}, nil, nil, nil, nil)
		var se *StartError
		if code != ExitNotFound || !errors.As(err, &se) || se.Code != ExitNotFound {
			t.Errorf("exec of a missing program = %d, %v; want %d and a StartError", code, err, ExitNotFound)
		}
		code, err = client.Exec(ctx, []string{"/etc/hosts"}, nil, nil, nil, nil)
		if code != ExitNotExecutable || !errors.As(err, &se) {
			t.Errorf("exec of a file that is not executable = %d, %v; want %d and a StartError", code, err, ExitNotExecutable)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, word := range []string{"first", "second", "third"} {
			wg.Go(func() {
				run(ctx, t, client, []string{"sh", "-c", "sleep 1; echo " + word}, nil, "", word+"\n", "", 0)
			})
		}
		wg.Wait()
	})

	t.Run("cancel kills the program", func(t *testing.T) {
		short, stop := context.WithTimeout(ctx, 500*time.Millisecond)
		defer stop()
		_, err := client.Exec(short, []string{"sleep", "313"}, nil, nil, nil, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("exec with a cancelled context = %v, want the deadline error", err)
		}
		for range 100 {
			var ps bytes.Buffer
			if _, err := client.Exec(ctx, []string{"ps"}, nil, nil, &ps, nil); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(ps.String(), "sleep 313") {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Error("the program of a cancelled exec is still running")
	})

	t.Run("network", func(t *testing.T) {
		var out bytes.Buffer
		if _, err := client.Exec(ctx, []string{"ip", "addr", "show"}, nil, nil, &out, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "inet 10.0.2.15/24") {
			t.Errorf("ip addr shows no 10.0.2.15/24:\n%s", out.String())
		}
		out.Reset()
		if _, err := client.Exec(ctx, []string{"cat", "/proc/net/route"}, nil, nil, &out, nil); err != nil {
			t.Fatal(err)
		}
		// The default route: destination 0, gateway 10.0.2.2 in host byte order.
		if !strings.Contains(out.String(), "\t00000000\t0202000A\t") {
			t.Errorf("no default route via 10.0.2.2:\n%s", out.String())
		}
		run(ctx, t, client, []string{"cat", "/etc/resolv.conf"}, nil, "", "nameserver 10.0.2.3\n", "", 0)
		run(ctx, t, client, []string{"hostname"}, nil, "", "agent-test\n", "", 0)
		run(ctx, t, client, []string{"grep", "agent-test", "/etc/hosts"}, nil, "", "10.0.2.15\tagent-test\n", "", 0)
	})

	t.Run("queue sizes", func(t *testing.T) {
		if !env.kernel.Builtin {
			testenv.Skipf(t, "skipping: kernel %s is not strata's own (`make host-setup` builds it); the queue sizes are parameters of its patches", env.kernel.Version)
		}
		for param, want := range map[string]int{
			"virtio_mmio/parameters/queue_size_max": MMIOQueueSizeMax,
			"virtio_console/parameters/rx_bufs":     ConsoleRxBufs,
		} {
			var out, errOut bytes.Buffer
			code, err := client.Exec(ctx, []string{"cat", "/sys/module/" + param}, nil, nil, &out, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 {
				t.Errorf("the guest has no /sys/module/%s (%s): kernel %s was built without hack/guest-kernel/patches; run make host-setup",
					param, strings.TrimSpace(errOut.String()), env.kernel.Vmlinuz)
				continue
			}
			if got := strings.TrimSpace(out.String()); got != strconv.Itoa(want) {
				t.Errorf("/sys/module/%s = %s, want %d (from the command line)", param, got, want)
			}
		}
	})

	// 32 MiB each way through the agent's port, whose receiving queue holds
	// ConsoleRxBufs pages.
	t.Run("large transfers", func(t *testing.T) {
		const size = 32 << 20
		data := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
		began := time.Now()
		var out bytes.Buffer
		if code, err := client.Exec(ctx, []string{"md5sum"}, nil, bytes.NewReader(data), &out, nil); err != nil || code != 0 {
			t.Fatalf("exec md5sum: %d %v", code, err)
		}
		took := time.Since(began)
		if want := fmt.Sprintf("%x  -\n", md5.Sum(data)); out.String() != want {
			t.Errorf("md5sum of 32 MiB sent to the guest = %q, want %q", out.String(), want)
		}
		t.Logf("host to guest: 32 MiB in %s (%.1f MiB/s)", took.Round(time.Millisecond), 32/took.Seconds())
		began = time.Now()
		out.Reset()
		if code, err := client.Exec(ctx, []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}, nil, nil, &out, nil); err != nil || code != 0 {
			t.Fatalf("exec head: %d %v", code, err)
		}
		took = time.Since(began)
		if out.Len() != size || bytes.Count(out.Bytes(), []byte{0}) != size {
			t.Errorf("the guest sent %d bytes, want %d zeros", out.Len(), size)
		}
		t.Logf("guest to host: 32 MiB in %s (%.1f MiB/s)", took.Round(time.Millisecond), 32/took.Seconds())
	})

	t.Run("reconnect", func(t *testing.T) {
		if err := client.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := DialAgent(ctx, vm.path("agent.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		run(ctx, t, again, []string{"echo", "back"}, nil, "", "back\n", "", 0)
	})

	// Graceful stop: the entrypoint traps TERM and exits 42.
	vm.waitConsole(t, "entrypoint ready", time.Minute)
	pressed := time.Now()
	if err := qmpPowerdown(vm.path("qmp.sock")); err != nil {
		t.Fatal(err)
	}
	vm.wait(t, time.Minute)
	t.Logf("power button to QEMU exit %s", vm.ended.Sub(pressed).Round(time.Millisecond))
	if rep := vm.exitReport(t); rep != (ExitReport{ExitCode: 42}) {
		t.Errorf("exit report = %+v, want exit code 42", rep)
	}
	vm.waitConsole(t, "entrypoint got TERM", time.Second)
}

// dialWhenUp dials the agent once QEMU has made its socket.
func dialWhenUp(ctx context.Context, t *testing.T, sock string) *AgentClient {
	t.Helper()
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("QEMU did not create the agent socket")
		case <-time.After(10 * time.Millisecond):
		}
	}
	c, err := DialAgent(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run execs args and checks its output and exit code.
func run(ctx context.Context, t *testing.T, c *AgentClient, args, env []string, stdin, wantOut, wantErr string, wantCode int) {
	t.Helper()
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	code, err := c.Exec(ctx, args, env, in, &stdout, &stderr)
	if err != nil {
		t.Errorf("exec %q: %v", args, err)
		return
	}
	if code != wantCode || stdout.String() != wantOut || stderr.String() != wantErr {
		t.Errorf("exec %q = %d, stdout %q, stderr %q; want %d, %q, %q", args, code, stdout.String(), stderr.String(), wantCode, wantOut, wantErr)
	}
}

// qmpPowerdown presses the VM's ACPI power button through QMP.
func qmpPowerdown(sock string) error {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", "system_powerdown"} {
		if _, err := fmt.Fprintf(conn, "{\"execute\":%q}\n", cmd); err != nil {
			return err
		}
		for {
			var msg map[string]any
			if err := dec.Decode(&msg); err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			if e, ok := msg["error"]; ok {
				return fmt.Errorf("qmp %s: %v", cmd, e)
			}
			if _, ok := msg["return"]; ok {
				break
			}
		}
	}
	return nil
}
