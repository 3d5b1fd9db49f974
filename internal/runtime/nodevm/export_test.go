package nodevm

// SetToolsInInitramfs makes d boot its node VMs with the runtimes (runsc
// too, whatever tiers d serves) in their initramfs, as before the tools
// disk: for benchmarks to compare the two, and for a guest too small to
// boot.
// Call it before d's first Start.
func SetToolsInInitramfs(d *Driver) { d.toolsInInitramfs = true }

// SetCmdline adds cmdline to the kernel command line of the node VMs d
// boots (the guest init gets its NAME=value words as its environment): for
// benchmarks to compare the guest agent's settings.
// Call it before d's first Start.
func SetCmdline(d *Driver, cmdline string) { d.cmdline = cmdline }
