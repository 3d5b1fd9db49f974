package kubecluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stop tears the cluster down and leaves nothing of it: it deletes the
// workloads and waits for their pods to go (the kubelet stops their
// sandboxes, which removes their network namespaces; those it had not
// removed yet are removed once the components have stopped), stops the
// components in reverse order, kills any process still naming the
// cluster directory (containerd's shims) or in the pods' cgroup, unmounts
// what is mounted under the directory, deletes the network namespace (and
// with it the bridge), the pods' cgroups and the directory. It reports
// what it could not clean; calling it again returns the same result.
func (c *Cluster) Stop() error {
	if c.stopped {
		return c.stopErr
	}
	c.stopped = true
	var problems []string
	if c.Client != nil && c.running("kubelet") {
		if err := c.drain(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	netns := c.podNetns()
	for _, p := range slices.Backward(c.procs) {
		if !p.stop(stopTimeout) {
			problems = append(problems, p.name+" did not stop on SIGTERM: killed")
		}
	}
	c.killContainers()
	problems = append(problems, removeNetns(netns)...)
	if c.netnsFD != nil {
		_ = c.netnsFD.Close()
	}
	problems = append(problems, clean(c.Dir, c.Name)...)
	if len(problems) > 0 {
		c.stopErr = errors.New("kubecluster: teardown: " + strings.Join(problems, "; "))
	}
	return c.stopErr
}

// clean removes what is left of the cluster with this directory and name
// once its components are stopped (or gone with the test process that
// started them): processes in the pods' cgroups or naming the directory,
// mounts under it, the network namespace, the cgroups and the directory.
// It returns what it could not clean.
func clean(dir, name string) []string {
	var problems []string
	killCgroup(name)
	for _, pid := range Leftovers(dir, name).Processes {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range mountsUnder(dir) {
		if err := unmountDetached(m); err != nil {
			problems = append(problems, fmt.Sprintf("unmount %s: %v", m, err))
		}
	}
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		del := exec.Command("ip", "netns", "del", name)
		if out, err := del.CombinedOutput(); err != nil {
			problems = append(problems, fmt.Sprintf("ip netns del %s: %v: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	if err := removeCgroups(name); err != nil {
		problems = append(problems, err.Error())
	}
	if err := os.RemoveAll(dir); err != nil {
		problems = append(problems, err.Error())
	}
	if l := Leftovers(dir, name); !l.Empty() {
		problems = append(problems, "left behind: "+l.String())
	}
	return problems
}

// ownerFile is the file in a cluster directory that holds the PID of the
// test process that made it.
const ownerFile = "owner.pid"

// reapOrphans removes the clusters of test processes that died without
// stopping theirs: for each cluster directory whose owner is gone, it
// cleans what the cluster left. A directory without an owner file is
// still being made.
func reapOrphans(tb testing.TB) {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	if err != nil {
		return
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || alive(pid) {
			continue
		}
		if problems := clean(dir, filepath.Base(dir)); len(problems) > 0 {
			tb.Logf("kubecluster: cleaning %s, left by test process %d that is gone: %s", dir, pid, strings.Join(problems, "; "))
			continue
		}
		tb.Logf("kubecluster: removed %s, left by test process %d that is gone", dir, pid)
	}
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (c *Cluster) running(name string) bool {
	for _, p := range c.procs {
		if p.name == name {
			select {
			case <-p.done:
				return false
			default:
				return true
			}
		}
	}
	return false
}

// drain deletes every Deployment, ReplicaSet, DaemonSet, StatefulSet, Job
// and Pod and waits until the kubelet has stopped the pods.
func (c *Cluster) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The controllers go with their pods orphaned, so that the pods are
	// deleted here, with a grace period of a second, rather than by the
	// garbage collector with their own (30 s by default). They are deleted
	// again each round: an operator running in the cluster (DeployOperator)
	// makes its workloads' Deployments anew until its own pod has gone.
	orphan := metav1.DeletePropagationOrphan
	grace := int64(1)
	opts := metav1.DeleteOptions{PropagationPolicy: &orphan}
	podOpts := metav1.DeleteOptions{GracePeriodSeconds: &grace}
	all := metav1.ListOptions{}
	for {
		if nss, err := c.Client.CoreV1().Namespaces().List(ctx, all); err == nil {
			for _, ns := range nss.Items {
				n := ns.Name
				apps := c.Client.AppsV1()
				_ = apps.Deployments(n).DeleteCollection(ctx, opts, all)
				_ = apps.ReplicaSets(n).DeleteCollection(ctx, opts, all)
				_ = apps.DaemonSets(n).DeleteCollection(ctx, opts, all)
				_ = apps.StatefulSets(n).DeleteCollection(ctx, opts, all)
				_ = c.Client.BatchV1().Jobs(n).DeleteCollection(ctx, opts, all)
			}
		}
		pods, err := c.Client.CoreV1().Pods("").List(ctx, all)
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		if err == nil {
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds > grace {
					_ = c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, podOpts)
				}
			}
		}
		select {
		case <-ctx.Done():
			n := -1
			if pods != nil {
				n = len(pods.Items)
			}
			return fmt.Errorf("drain: %d pods still there: %w", n, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// killContainers kills and deletes the tasks left in containerd's k8s.io
// namespace (the kubelet, once stopped, no longer does), when containerd
// still answers; killCgroup catches the rest.
func (c *Cluster) killContainers() {
	c.eachContainer(func(ctx context.Context, ct ctr.Container) {
		if t, err := ct.Task(ctx, nil); err == nil {
			_ = t.Kill(ctx, syscall.SIGKILL)
			_, _ = t.Delete(ctx, ctr.WithProcessKill)
		}
	})
}

// eachContainer calls fn for each container in containerd's k8s.io
// namespace, when containerd answers.
func (c *Cluster) eachContainer(fn func(context.Context, ctr.Container)) {
	sock := containerdSocket(c.Dir)
	if _, err := os.Stat(sock); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := ctr.New(sock, ctr.WithTimeout(2*time.Second))
	if err != nil {
		return
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "k8s.io")
	cs, err := client.Containers(ctx)
	if err != nil {
		return
	}
	for _, ct := range cs {
		fn(ctx, ct)
	}
}

// podNetns returns the network namespaces containerd made for the pods'
// sandboxes that are still there. The kubelet removes one when it stops
// its sandbox, which it may not have done yet when the pod's object went
// (drain): Stop removes what is left once every component has stopped.
func (c *Cluster) podNetns() []string {
	var paths []string
	c.eachContainer(func(ctx context.Context, ct ctr.Container) {
		spec, err := ct.Spec(ctx)
		if err != nil || spec.Linux == nil {
			return
		}
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace && isPodNetns(ns.Path) && !slices.Contains(paths, ns.Path) {
				paths = append(paths, ns.Path)
			}
		}
	})
	return paths
}

// removeNetns removes the network namespaces at paths (bind mounts of
// nsfs files), as `ip netns del` does.
func removeNetns(paths []string) []string {
	var problems []string
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			problems = append(problems, fmt.Sprintf("unmount %s: %v", path, err))
			continue
		}
		if err := os.Remove(path); err != nil {
			problems = append(problems, fmt.Sprintf("remove %s: %v", path, err))
		}
	}
	return problems
}

// isPodNetns reports whether path is a network namespace containerd made
// for a pod's sandbox (/run/netns/cni-<uuid>), which outlives the cluster
// unless it is removed.
func isPodNetns(path string) bool {
	dir, name := filepath.Split(filepath.Clean(path))
	return (dir == "/run/netns/" || dir == "/var/run/netns/") && strings.HasPrefix(name, "cni-")
}

// killCgroup kills every process in the pods' cgroup tree.
func killCgroup(name string) {
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, name)
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path) //nolint:gosec // G122: cgroupfs has no symlinks
			for f := range strings.FieldsSeq(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}

// removeCgroups removes the pods' cgroup tree in every hierarchy, deepest
// first (a cgroup is removed with rmdir once it has no processes).
func removeCgroups(name string) error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, name)
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			var err error
			for range 20 { // processes just killed take a moment to leave
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder returns the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4]+"/", prefix) {
			out = append(out, f[4])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

func unmountDetached(path string) error {
	err := syscall.Unmount(path, syscall.MNT_DETACH)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
		return nil // already gone (a parent's detach took it)
	}
	return err
}

// Residue is what a cluster left on the host.
type Residue struct {
	Processes []int    // processes whose command line names the directory
	Mounts    []string // mount points under the directory
	Netns     bool     // the network namespace still exists
	Cgroups   []string // the pods' cgroup directories still there
}

// Leftovers returns what a cluster with this directory and name left.
func Leftovers(dir, name string) Residue {
	var r Residue
	inside := []byte(filepath.Clean(dir) + "/")
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, inside) {
			r.Processes = append(r.Processes, pid)
		}
	}
	r.Mounts = mountsUnder(dir)
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		r.Netns = true
	}
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, name)); err == nil {
			r.Cgroups = append(r.Cgroups, filepath.Join(h, name))
		}
	}
	return r
}

// Empty reports whether nothing was left.
func (r Residue) Empty() bool {
	return len(r.Processes) == 0 && len(r.Mounts) == 0 && !r.Netns && len(r.Cgroups) == 0
}

func (r Residue) String() string {
	var parts []string
	if len(r.Processes) > 0 {
		parts = append(parts, fmt.Sprintf("processes %v", r.Processes))
	}
	if len(r.Mounts) > 0 {
		parts = append(parts, fmt.Sprintf("mounts %v", r.Mounts))
	}
	if r.Netns {
		parts = append(parts, "the network namespace")
	}
	if len(r.Cgroups) > 0 {
		parts = append(parts, fmt.Sprintf("cgroups %v", r.Cgroups))
	}
	return strings.Join(parts, ", ")
}
