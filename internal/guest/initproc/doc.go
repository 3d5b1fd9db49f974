// Package initproc is strata-guest, the init program (PID 1) of strata's
// image microVMs; cmd/strata-guest only calls Main. Package guest holds the
// contract it serves (Config, ExitReport, the ports, the exec protocol).
//
// # Boot
//
// The kernel unpacks the initramfs (the base archive and the config archive
// appended to it) and runs /init. Main then
//
//  1. mounts /proc, /sys, /dev (devtmpfs) and /run (tmpfs);
//  2. loads guest.Modules from /lib/modules/<uname -r>/ with finit_module;
//  3. reads the Config at guest.ConfigPath and opens the ExitPort;
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
package initproc
