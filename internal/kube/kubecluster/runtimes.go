package kubecluster

import (
	"context"
	"fmt"
	"path/filepath"
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
