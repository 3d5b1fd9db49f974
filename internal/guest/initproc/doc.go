// Package initproc is strata-guest, the init program (PID 1) of strata's
// image microVMs and node VMs; cmd/strata-guest only calls Main. Package guest holds the
// contract it serves (Config, ExitReport, the ports, the exec protocol).
//
// # Boot
//
// The kernel unpacks the initramfs (the base archive and the config archive
// appended to it) and runs /init. Main then
//
//  1. mounts /proc, /sys, /dev (devtmpfs) and /run (tmpfs);
//  2. reads the Config at guest.ConfigPath; in node mode it moves the root
//     off the initramfs (see Node mode);
//  3. loads guest.Modules (and guest.NodeModules in node mode) from
//     /lib/modules/<uname -r>/ with finit_module, and opens the ExitPort;
//  4. waits (up to RootWait) for the root device, mounts it at /newroot, and
//     mounts proc, sys, dev, dev/pts, dev/shm and, when the image's /tmp is
//     empty, a tmpfs at /tmp inside it;
//  5. writes /etc/resolv.conf (when the Config names DNS servers) and
//     /etc/hosts (when the image has none), and sets the hostname;
//  6. brings up lo and, with a Net config, eth0 with its address and
//     default route;
//  7. starts the power-button watch and the exec agent, then the entrypoint;
//  8. when the entrypoint ends, writes the ExitReport, kills what is left,
//     syncs, and powers the VM off.
//
// A failure in any step before the entrypoint runs ends in step 8 too, with
// the report's Error set. The init never exits: PID 1 exiting would panic the
// kernel. Its messages are lines starting with "strata-guest: " on the
// console: one when it starts, one per failure, one with the exit code.
//
// # Processes
//
// Every program (the entrypoint and each exec) runs chrooted into /newroot,
// in a session of its own, as the Config's user. The init is every orphan's
// parent, so one reaper collects all exit statuses and hands those of the
// programs it started to whoever waits for them.
//
// # Node mode
//
// With guest.ModeNode the guest is a container host and steps 4 to 8 are
// replaced. The init bind-mounts the initramfs on /newroot and moves that
// mount over / (the kernel refuses pivot_root away from the initramfs
// itself, and the runtimes pivot_root into every container), mounts cgroup2,
// /dev/pts, /dev/shm and /tmp, hands the cpu, memory, pids and io
// controllers down, sets the hostname and the network, and serves the
// agent with the node operations (node.go): each container gets the image
// device mounted read-only (once per device), an overlayfs with its upper
// directory on /run, an OCI bundle, and crun (or runsc for a sandbox) from
// the tools disk (or the initramfs), started as the init's child with its output in a log file. The power
// button stops every container (SIGTERM, SIGKILL after the Config's grace)
// and powers off with exit code 0.
package initproc
