package kubecluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ctr "github.com/containerd/containerd"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/typeurl/v2"
)

// PodRuntimes returns the low-level runtime each pod's sandbox runs under,
// read from the cluster's containerd (not from the pod's spec): "runc" for
// runc's shim, "runsc" for gVisor's, keyed by "namespace/pod". A pod of
// several generations (a restarted sandbox) is reported once.
func (c *Cluster) PodRuntimes(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client, err := ctr.New(containerdSocket(c.Dir), ctr.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("pod runtimes: %w", err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "k8s.io")
	sandboxes, err := client.Containers(ctx, `labels."io.cri-containerd.kind"==sandbox`)
	if err != nil {
		return nil, fmt.Errorf("pod runtimes: %w", err)
	}
	out := map[string]string{}
	for _, sb := range sandboxes {
		info, err := sb.Info(ctx, ctr.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("pod runtimes: %w", err)
		}
		pod := info.Labels["io.kubernetes.pod.namespace"] + "/" + info.Labels["io.kubernetes.pod.name"]
		out[pod] = runtimeOf(info.Runtime.Name, info.Runtime.Options)
	}
	return out, nil
}

// runtimeOf names the runtime of a containerd shim and its options: "runc"
// for runc's shim, "runsc" for gVisor's shim or for runc's shim running
// runsc, else the shim's name.
func runtimeOf(shim string, options typeurl.Any) string {
	switch shim {
	case "io.containerd.runsc.v1":
		return "runsc"
	case "io.containerd.runc.v2":
		if options == nil {
			return "runc"
		}
		v, err := typeurl.UnmarshalAny(options)
		if o, ok := v.(*runcoptions.Options); err == nil && ok && o.BinaryName != "" {
			return filepath.Base(o.BinaryName)
		}
		return "runc"
	}
	return shim
}

// PodMemory returns the memory a pod's cgroup accounts now and its limit
// (cgroup v1's memory.usage_in_bytes and memory.limit_in_bytes), in bytes:
// with gVisor, the sandbox's own memory (Sentry, gofer) counts there too.
func (c *Cluster) PodMemory(uid string) (usage, limit int64, err error) {
	var dir string
	for _, h := range cgroupHierarchies() {
		if filepath.Base(h) != "memory" && !strings.Contains(filepath.Base(h), "memory") {
			continue
		}
		m, _ := filepath.Glob(filepath.Join(h, c.Name, "kubepods*", "pod"+uid))
		m2, _ := filepath.Glob(filepath.Join(h, c.Name, "kubepods*", "*", "pod"+uid))
		if m = append(m, m2...); len(m) > 0 {
			dir = m[0]
			break
		}
	}
	if dir == "" {
		return 0, 0, fmt.Errorf("no memory cgroup of pod %s under %s", uid, c.Name)
	}
	read := func(name string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if usage, err = read("memory.usage_in_bytes"); err != nil {
		return 0, 0, err
	}
	if limit, err = read("memory.limit_in_bytes"); err != nil {
		return 0, 0, err
	}
	return usage, limit, nil
}
