package v1alpha1

import "strings"

// DefaultCapabilities are the Linux capabilities that the processes of a container or a
// sandbox hold without asking, by their names without the CAP_ prefix, sorted;
// spec.traits.capabilities adds to them. They are the set container runtimes grant by
// default less two that a workload must ask for: NET_RAW (raw and packet sockets, with which
// a workload forges any packet on its segment, and a long record of kernel flaws) and MKNOD
// (device nodes; assessment counts it among the dangerous capabilities). A VM's guest has a
// kernel of its own: its processes hold what its init gives them.
var DefaultCapabilities = []string{
	"AUDIT_WRITE",
	"CHOWN",
	"DAC_OVERRIDE",
	"FOWNER",
	"FSETID",
	"KILL",
	"NET_BIND_SERVICE",
	"SETFCAP",
	"SETGID",
	"SETPCAP",
	"SETUID",
	"SYS_CHROOT",
}

// AllCapabilities is the name in spec.traits.capabilities that asks for every capability.
const AllCapabilities = "ALL"

// CapabilityName returns the kernel's name of capability c as traits write it: "NET_RAW",
// "CAP_NET_RAW" and "net_raw" are all "CAP_NET_RAW". AllCapabilities stays "ALL".
func CapabilityName(c string) string {
	c = strings.ToUpper(c)
	if c == AllCapabilities {
		return c
	}
	return "CAP_" + strings.TrimPrefix(c, "CAP_")
}

// isCapability accepts NAME or CAP_NAME in upper case letters, digits and underscores.
func isCapability(c string) bool {
	c = strings.TrimPrefix(c, "CAP_")
	if c == "" {
		return false
	}
	for _, r := range c {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}
