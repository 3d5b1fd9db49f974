// Package fake is an in-memory runtime.Driver for tests of the code above the
// drivers (controllers, the API). It runs no processes: it simulates a host
// whose instances follow a model of their commands, on an injectable Clock,
// and it passes the same shared suite (package drivertest) as the real
// drivers.
//
// # What it models
//
// A Host is the simulated machine: its instances, its image store, its
// clock and the failures a test injects. Driver values are views of a Host,
// the way a containerd driver is a view of a containerd: a new Driver on the
// same Host re-adopts the instances an earlier one started (List, Status,
// Stop, Remove).
//
// An instance's behaviour comes from its command. Commands of the driver
// suite's vocabulary (package drivertest/script: sleep, serve, ignore-term,
// exit, echo, print-env, output, cat, read-file, write-file, allocate) behave
// as busybox would: their output goes to the real LogPath file, their files
// are read from and written to the real host directories of the spec's
// mounts (read-only mounts refuse writes; paths outside every mount live in
// the instance's own in-memory file system), "allocate" beyond MemoryBytes is
// OOM-killed (exit 137, OOMKilled), and a process that does not end on
// SIGTERM (sleep, as under runc, and ignore-term) runs on until Stop's grace
// ends and it is killed (exit 137). Any other command, the image's default command
// included, is modelled as a server: it runs until stopped and exits with 143
// on SIGTERM. Exec interprets the same vocabulary; other commands exit 127.
//
// Pause freezes an instance's script: the time it stays paused does not count
// towards a sleep nor its CPU time, SIGTERM waits (Stop kills it when the
// grace ends) and, as with containerd, an exec fails with ErrNotRunning;
// Status says "paused". A VM's disk is the set of
// files its scripts wrote outside its mounts: SnapshotDisk writes it to a file
// (a tar archive of the fake's own, not a qcow2), SaveState writes it with the
// main process's place in its script (memory.state: the time it has left, how
// it ends), and RestoreState puts both back, so the instance goes on from the
// saved moment. A VM that boots vm.disk with a DiskDir keeps its disk there
// (disk.qcow2 and base, as the qemu driver names them), used again by the next
// start; RestoreSlotDisk replaces it while no instance of the host uses it.
// Containers and sandboxes have no disk (ErrUnsupported), nor do kernel-only VMs.
//
// Images must be present before Start (except for a VM that boots vm.disk or
// a kernel): ImportImage reads the names from OCI
// layout and docker-archive tarballs (without unpacking anything), and
// Options.Images preloads names. PIDs are invented (Capabilities.HostPID is
// false).
//
// # Injected failures
//
// Host.FailStart makes the next Start of an ID fail; Host.Exit ends a running
// instance with an exit code; Host.OOMKill ends it as the kernel's OOM killer
// would; Host.Fail makes the next call of one operation (pause, resume, exec,
// save-rootfs, snapshot-disk, save-state, restore-state, restore-slot-disk)
// fail before it has any effect. Host.Calls lists those operations in the order
// they were called, and Host.OnCall tells a test of each as it begins, so that
// tests of the code that drives them (snapshots, backups) can check the order
// and the state of the world at each step. With a ManualClock, time passes only through ManualClock.Advance.
package fake
