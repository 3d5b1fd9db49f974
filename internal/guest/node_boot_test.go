package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/testenv"
)

// virtiofsd is the one QEMU's Debian package ships.
const virtiofsd = "/usr/lib/qemu/virtiofsd"

// TestNodeContainers boots a node VM (strata-guest in node mode, crun and
// runsc in its initramfs), attaches a busybox image as a read-only disk, and
// runs containers in it through the agent: one that prints and exits 3, one
// that serves and is exec'd into and stopped with SIGTERM, and the same
// under runsc.
func TestNodeContainers(t *testing.T) {
	env := bootSetup(t)
	tools := DefaultNodeTools()
	if _, err := os.Stat(tools.Crun); err != nil {
		testenv.Skipf(t, "no crun on the host (%v); make host-setup installs it", err)
	}
	if tools.Runsc == "" {
		testenv.Skipf(t, "no runsc at /opt/strata/bin/runsc; make host-setup builds it")
	}
	vm := &testVM{dir: t.TempDir(), done: make(chan struct{})}
	built := time.Now()
	initrd, err := NodeInitramfs(filepath.Join(filepath.Dir(guestInit), "node-cache"), env.kernel, guestInit, tools)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(initrd)
	t.Logf("node initramfs: %d bytes, built in %s", st.Size(), time.Since(built).Round(time.Millisecond))
	base, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := ConfigArchive(Config{Mode: ModeNode, Hostname: "node-test", StopGraceSeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vm.path("initrd"), append(base, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := MakeRootDisk(ctx, env.rootfs, vm.path("busybox.img"), 0); err != nil {
		t.Fatal(err)
	}
	// Share the busybox tree with virtiofs too, where QEMU's virtiofsd is.
	var virtiofs []string
	if _, err := os.Stat(virtiofsd); err == nil && os.Geteuid() == 0 {
		sock := vm.path("vfs.sock")
		cmd := exec.Command(virtiofsd, "--socket-path="+sock, "-o", "source="+env.rootfs, "-o", "cache=auto", "-o", "sandbox=chroot")
		var vfsLog bytes.Buffer
		cmd.Stdout, cmd.Stderr = &vfsLog, &vfsLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("virtiofsd:\n%s", vfsLog.String())
			}
		})
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("virtiofsd made no socket within 10 s:\n%s", vfsLog.String())
			}
		}
		virtiofs = []string{
			"-object", "memory-backend-memfd,id=mem,size=1024M,share=on",
			"-chardev", "socket,id=vfs,path=" + sock,
			"-device", "vhost-user-fs-device,chardev=vfs,tag=busybox",
		}
	}
	machine := "microvm"
	if virtiofs != nil {
		machine += ",memory-backend=mem"
	}
	env.start(t, vm, append(virtiofs,
		"-M", machine, "-m", "1024", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-global", "virtio-mmio.force-legacy=false",
		"-chardev", "file,id=con,path="+vm.path("console.log"), "-serial", "chardev:con",
		"-qmp", "unix:"+vm.path("qmp.sock")+",server=on,wait=off",
		"-kernel", env.kernel.Vmlinuz, "-initrd", vm.path("initrd"),
		"-append", KernelCmdline(env.kvm),
		"-blockdev", "driver=file,filename="+vm.path("busybox.img")+",node-name=f0,read-only=on",
		"-blockdev", "driver=raw,file=f0,node-name=d0,read-only=on",
		"-device", "virtio-blk-device,drive=d0",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path="+vm.path("agent.sock")+",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name="+AgentPort,
		"-chardev", "file,id=exit,path="+vm.path("exit.json"),
		"-device", "virtserialport,chardev=exit,name="+ExitPort,
	))
	vm.waitConsole(t, "node agent ready", 3*time.Minute)
	t.Logf("QEMU start to node agent ready: %s", time.Since(vm.started).Round(time.Millisecond))
	client := dialWhenUp(ctx, t, vm.path("agent.sock"))
	defer client.Close()

	node := func(req NodeRequest) NodeReply {
		t.Helper()
		rep, err := client.Node(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	logs := func(id string) string {
		t.Helper()
		var all []byte
		for off := int64(0); ; {
			rep := node(NodeRequest{Op: NodeLogs, ID: id, Offset: off})
			all = append(all, rep.Log...)
			if len(rep.Log) == 0 {
				return string(all)
			}
			off = rep.NextOffset
		}
	}
	waitLog := func(id, s string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if strings.Contains(logs(id), s) {
				return
			}
		}
		t.Fatalf("container %s: %q not in its log within a minute; log:\n%s", id, s, logs(id))
	}
	exitOf := func(rep NodeReply) int {
		t.Helper()
		if rep.ExitCode == nil {
			t.Fatalf("reply %+v has no exit code", rep)
		}
		return *rep.ExitCode
	}

	for _, runtime := range []string{RuntimeCrun, RuntimeRunsc} {
		t.Run(runtime, func(t *testing.T) {
			// A container that prints a line and exits 3.
			once := runtime + "-once"
			started := time.Now()
			node(NodeRequest{Op: NodeCreate, ID: once, Container: &ContainerSpec{
				Image: "/dev/vda", Runtime: runtime,
				Args:        []string{"sh", "-c", "echo hello from $HOSTNAME as $(id -u); exit 3"},
				User:        "1000:1000",
				MemoryBytes: 64 << 20, Pids: 64,
			}})
			created := time.Since(started)
			node(NodeRequest{Op: NodeStart, ID: once})
			startedIn := time.Since(started)
			rep := node(NodeRequest{Op: NodeWait, ID: once})
			t.Logf("%s: create %s, create+start %s, create to exit (the line in the log) %s",
				runtime, created.Round(time.Millisecond), startedIn.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
			if code := exitOf(rep); code != 3 || rep.State != StateExited {
				t.Errorf("%s: exit code %d, state %s; want 3, exited", once, code, rep.State)
			}
			if out := logs(once); !strings.Contains(out, "hello from "+once+" as 1000\n") {
				t.Errorf("%s: log %q lacks its line", once, out)
			}
			node(NodeRequest{Op: NodeRemove, ID: once})
			// The start of a container in the running node VM: create,
			// start and wait for `true`, a few times over.
			var times []time.Duration
			for i := range 3 {
				id := fmt.Sprintf("%s-true-%d", runtime, i)
				began := time.Now()
				node(NodeRequest{Op: NodeCreate, ID: id, Container: &ContainerSpec{Image: "/dev/vda", Runtime: runtime, Args: []string{"true"}}})
				node(NodeRequest{Op: NodeStart, ID: id})
				if code := exitOf(node(NodeRequest{Op: NodeWait, ID: id})); code != 0 {
					t.Errorf("%s: exit code %d, want 0; log:\n%s", id, code, logs(id))
				}
				times = append(times, time.Since(began).Round(time.Millisecond))
				node(NodeRequest{Op: NodeRemove, ID: id})
			}
			t.Logf("%s: create, start and exit of `true`: %v", runtime, times)
			if _, err := client.Node(ctx, NodeRequest{Op: NodeState, ID: once}); err == nil || !strings.Contains(err.Error(), "no container") {
				t.Errorf("state of a removed container: %v, want no container", err)
			}

			if runtime == RuntimeCrun {
				// The memory limit holds: a 64 MiB buffer in a 16 MiB
				// container is killed by the guest's OOM killer.
				node(NodeRequest{Op: NodeCreate, ID: "greedy", Container: &ContainerSpec{
					Image: "/dev/vda", MemoryBytes: 16 << 20,
					Args: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"},
				}})
				node(NodeRequest{Op: NodeStart, ID: "greedy"})
				if code := exitOf(node(NodeRequest{Op: NodeWait, ID: "greedy"})); code != 137 {
					t.Errorf("greedy: exit code %d, want 137 (killed for memory); log:\n%s", code, logs("greedy"))
				}
				node(NodeRequest{Op: NodeRemove, ID: "greedy"})
			}

			// A serving container: exec into it, then stop it with SIGTERM.
			web := runtime + "-web"
			node(NodeRequest{Op: NodeCreate, ID: web, Container: &ContainerSpec{
				Image: "/dev/vda", Runtime: runtime,
				Args: []string{"sh", "-c", `trap 'echo got TERM; exit 143' TERM
mkdir -p /tmp/www && echo served from $HOSTNAME > /tmp/www/index.html
httpd -f -p 127.0.0.1:8080 -h /tmp/www & echo serving; wait`},
			}})
			node(NodeRequest{Op: NodeStart, ID: web})
			waitLog(web, "serving")
			var stdout, stderr bytes.Buffer
			code, err := client.ExecIn(ctx, web, []string{"sh", "-c", "sleep 1; wget -qO- http://127.0.0.1:8080/index.html; dmesg 2>/dev/null | head -n 3"}, nil, nil, &stdout, &stderr)
			if err != nil || code != 0 {
				t.Errorf("exec in %s: code %d, %v; stderr %q", web, code, err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "served from "+web) {
				t.Errorf("exec in %s: stdout %q lacks the served page", web, stdout.String())
			}
			// The sandbox's kernel is gVisor's own.
			if gvisor := strings.Contains(stdout.String(), "gVisor"); gvisor != (runtime == RuntimeRunsc) {
				t.Errorf("exec in %s: dmesg says gVisor: %t; stdout %q", web, gvisor, stdout.String())
			}
			if runtime == RuntimeCrun {
				// The guest's memory with one serving container (the container
				// sees the VM's /proc/meminfo).
				var mem bytes.Buffer
				if code, err := client.ExecIn(ctx, web, []string{"grep", "-E", "^(MemTotal|MemAvailable|Shmem):", "/proc/meminfo"}, nil, nil, &mem, nil); err != nil || code != 0 {
					t.Errorf("exec grep in %s: code %d, %v", web, code, err)
				}
				t.Logf("guest memory with one container:\n%s", mem.String())
			}
			if st := node(NodeRequest{Op: NodeState, ID: web}); st.State != StateRunning {
				t.Errorf("%s: state %s, want running", web, st.State)
			}
			stopped := time.Now()
			rep = node(NodeRequest{Op: NodeStop, ID: web, GraceSeconds: 20})
			t.Logf("%s: stop took %s", web, time.Since(stopped).Round(time.Millisecond))
			if code := exitOf(rep); code != 143 {
				t.Errorf("%s: stopped with exit code %d, want 143; log:\n%s", web, code, logs(web))
			}
			waitLog(web, "got TERM")
			node(NodeRequest{Op: NodeRemove, ID: web})
		})
	}
	t.Run("virtiofs", func(t *testing.T) {
		if virtiofs == nil {
			testenv.Skipf(t, "no %s, or not root", virtiofsd)
		}
		began := time.Now()
		node(NodeRequest{Op: NodeCreate, ID: "shared", Container: &ContainerSpec{
			Image: VirtiofsPrefix + "busybox",
			Args:  []string{"sh", "-c", "echo hello from a shared tree; touch /bin/new && echo written; exit 3"},
		}})
		node(NodeRequest{Op: NodeStart, ID: "shared"})
		rep := node(NodeRequest{Op: NodeWait, ID: "shared"})
		t.Logf("virtiofs image: create to exit %s", time.Since(began).Round(time.Millisecond))
		if code := exitOf(rep); code != 3 {
			t.Errorf("exit code %d, want 3; log:\n%s", code, logs("shared"))
		}
		if out := logs("shared"); !strings.Contains(out, "hello from a shared tree\nwritten\n") {
			t.Errorf("log %q lacks its lines", out)
		}
		// The write went to the container's upper directory, not the host's tree.
		if _, err := os.Stat(filepath.Join(env.rootfs, "bin", "new")); err == nil {
			t.Error("the container's write reached the host's shared tree")
		}
		node(NodeRequest{Op: NodeRemove, ID: "shared"})
	})
	// Bad requests are answered, not fatal to the agent.
	if _, err := client.Node(ctx, NodeRequest{Op: NodeStart, ID: "missing"}); err == nil || !strings.Contains(err.Error(), `no container "missing"`) {
		t.Errorf("start of a missing container: %v", err)
	}
	if _, err := client.Node(ctx, NodeRequest{Op: NodeCreate, ID: "bad", Container: &ContainerSpec{Image: "/dev/vdz", Args: []string{"true"}}}); err == nil || !strings.Contains(err.Error(), "did not appear") {
		t.Errorf("create on a missing image device: %v", err)
	}

	// The power button stops the containers still running and powers off.
	node(NodeRequest{Op: NodeCreate, ID: "last", Container: &ContainerSpec{Image: "/dev/vda",
		Args: []string{"sh", "-c", "trap 'exit 0' TERM; echo ready; sleep 1000 & wait"}}})
	node(NodeRequest{Op: NodeStart, ID: "last"})
	waitLog("last", "ready")
	pressed := time.Now()
	if err := qmpPowerdown(vm.path("qmp.sock")); err != nil {
		t.Fatal(err)
	}
	vm.wait(t, time.Minute)
	t.Logf("power button to QEMU exit %s", vm.ended.Sub(pressed).Round(time.Millisecond))
	if rep := vm.exitReport(t); rep != (ExitReport{}) {
		t.Errorf("exit report = %+v, want exit code 0", rep)
	}
	vm.waitConsole(t, "power button: stopping the containers", time.Second)
}
