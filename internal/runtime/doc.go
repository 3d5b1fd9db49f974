// Package runtime defines how strata runs instances: the Driver interface
// that every runtime (containerd with runc, containerd with runsc, QEMU)
// implements, the optional abilities a driver may add, the errors drivers
// return, and the Registry that maps each isolation tier to its driver (and,
// on a host that runs node VMs, the replicas that go into them to the driver
// that runs them there).
//
// # Terms
//
//   - Instance: one running copy of a workload, the unit a driver starts and
//     stops. For the container and sandbox tiers it is a container and its
//     main process; for the vm tier a virtual machine. An instance is named by
//     its ID and belongs to exactly one driver.
//   - ID: the instance's name, unique within a driver: by strata's convention
//     "<workload>-<slot>". IDs are 1-63 characters of lower-case letters,
//     digits, '-' and '.', starting with a letter or digit (ValidID).
//   - Workload and Slot: which Workload (by name) and which replica slot
//     (0-based) the instance serves. Drivers store both with the instance so
//     that a restarted daemon can tell what is running (re-adoption).
//   - Tier: the isolation tier the instance runs at (v1alpha1.Tier). A driver
//     serves one or more tiers, listed in its Capabilities.
//   - Image: an OCI image reference ("localhost/shop/web:1"), resolved by the
//     driver in its own image store; images enter the store through
//     ImageImporter. Reference names are compared after Docker-style
//     normalisation ("busybox:1" and "docker.io/library/busybox:1" are the
//     same image).
//   - Main process: the process the instance was started with (the image's
//     entrypoint and command, or InstanceSpec.Command). Its end is the
//     instance's end: the instance is then exited, with the main process's
//     exit code (128+N when signal N ended it).
//   - Grace: how long Stop waits after asking the main process to end
//     (SIGTERM, or an ACPI power-off for a VM) before it forces the end
//     (SIGKILL to every process of the instance, or killing the VM).
//   - OOM kill: a kernel killed a process of the instance because the
//     instance's memory limit was reached: the host's kernel for runc, and
//     for runsc too (the limit covers the whole sandbox, which is what it
//     kills), the guest's for a VM. Status.OOMKilled reports it once the
//     instance has exited.
//   - Owned: an instance a driver created, recognised by the driver's own
//     marks on it (for containerd, labels in strata's namespace). A driver
//     lists, stops and removes only instances it owns.
//   - Re-adoption: instances outlive the process that started them. A new
//     Driver value on the same host (after strata restarted or crashed) sees
//     every owned instance through List, with the workload, slot, tier and
//     labels it was started with, and can stop and remove it.
//
// # Contract
//
// Every method takes a context first and honours its cancellation. Methods
// are safe for concurrent use. Errors are classified with the sentinels in
// this package (test with errors.Is) and carry the instance ID as context.
// Drivers never print: they return errors and, where they run in the
// background, log through the *slog.Logger they were given.
//
// Optional abilities are separate interfaces discovered by type assertion
// (Execer, ImageImporter, EventSource); Capabilities states what a driver
// enforces that the type system cannot show (limits, mounts, host PIDs).
//
// Every implementation, the fake included, passes the shared suite in
// package strata.dev/strata/internal/runtime/drivertest.
package runtime
