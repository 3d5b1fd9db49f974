// Package containerd is strata's runtime driver for the container and sandbox
// tiers. It drives a containerd daemon (Debian's containerd 1.6 or later)
// through containerd's Go client:
//
//   - container tier: runc, through containerd's runc v2 shim;
//   - sandbox tier: gVisor's runsc, through the same runc v2 shim with the
//     shim's BinaryName option pointing at runsc (gVisor's own shim does not
//     work with containerd 1.6). The tier exists only when Config.Runsc is set.
//
// Everything the driver makes lives in its own containerd namespace
// (Config.Namespace, "strata" by default): images, containers (one per
// instance, named by the instance ID), their tasks and their snapshots. Each
// container carries labels: strata.dev/workload, strata.dev/slot and
// strata.dev/tier, the caller's labels, and the driver's own bookkeeping
// under strata.dev/runtime.* (ownership mark, log path, start time, OOM
// record). The shims hold the tasks, so instances keep running while strata
// is stopped or after it crashed; a new Driver re-adopts them from these
// labels and containerd's task state alone. runc and runsc keep their own
// state under Config.StateDir, which must therefore stay the same across
// restarts: runc in StateDir/runc, each sandbox in a root of its own,
// StateDir/runsc/<id>, because runsc finds a container by ID prefix and
// would take "web-1" beside "web-10" for ambiguous (sandboxes started before
// that share StateDir/runsc and keep it).
//
// Images enter by ImportImage (OCI layout or docker-archive tarballs) and are
// unpacked once into the snapshotter (overlayfs); each instance gets its own
// writable snapshot on top, removed with the instance. The main process's
// stdout and stderr go straight from the shim to InstanceSpec.LogPath.
// CPUMilli becomes a CFS quota (and shares), MemoryBytes a memory limit with
// no swap beyond it, both on the instance's cgroup /<namespace>/<id>. Under
// runc the host kernel OOM-kills the process that exceeds the limit. Under
// runsc the cgroup holds the whole sandbox (gVisor's kernel and the
// workload's memory), so the host kernel kills the sandbox itself and the
// instance exits with 137. Either way the driver reads the kill back from
// the cgroup's OOM counter (memory.oom_control on cgroup v1, memory.events
// on v2), which lasts until the task is deleted, and from containerd's
// /tasks/oom events, which it records as a label.
//
// Every instance is confined the same way in both tiers: its processes hold
// v1alpha1.DefaultCapabilities and the capabilities the spec asks for, no
// others, under containerd's default seccomp profile for that set (no user
// namespaces, mounts or other CAP_SYS_ADMIN calls without CAP_SYS_ADMIN).
// runsc applies the profile inside the sandbox when the spec's annotation
// asks it to, and the driver does; NET_RAW cannot be granted in a sandbox
// (runsc drops it) and is refused there.
//
// Other drivers boot from the same images through runtime.ImageSource:
// ResolveImage reads an image's digest, chain ID and run configuration, and
// WithImageRoot mounts a read-only view of its root filesystem (a View
// snapshot of the image's chain ID, held by a lease of the same key,
// "strata-view_" and random hex) under StateDir/views for as long as the
// caller needs it. A lock file beside the mount tells a view in use from one
// a crashed process left; New removes the latter.
package containerd
