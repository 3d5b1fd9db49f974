package guest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Names of the virtio-serial ports that connect the host and the guest init.
const (
	// AgentPort carries the exec agent: a yamux session, the host the client.
	AgentPort = "org.strata.agent"
	// ExitPort receives one ExitReport, as a JSON line, when the entrypoint ends.
	// The host backs it with a file, so the report survives the daemon.
	ExitPort = "org.strata.exit"
)

// ConfigPath is where the guest init reads its Config: a file in the
// initramfs, added by a second archive appended to the base one (ConfigArchive).
const ConfigPath = "/strata/config.json"

// Config is everything strata's guest init needs to run an image's
// entrypoint inside a microVM.
type Config struct {
	// Hostname is set in the guest (the instance ID).
	Hostname string `json:"hostname"`
	// Args is the program and its arguments: the image's entrypoint and cmd,
	// or the workload's command. Args[0] without a '/' is looked up in the PATH
	// of Env (or the default PATH) inside the root filesystem.
	Args []string `json:"args"`
	// Env is the entrypoint's environment, "KEY=VALUE" entries.
	Env []string `json:"env,omitempty"`
	// WorkingDir is the entrypoint's working directory ("/" when empty).
	WorkingDir string `json:"workingDir,omitempty"`
	// User is "UID" or "UID:GID"; empty means root. Names from the image's
	// /etc/passwd and /etc/group work too. Without a GID the user's primary
	// group in /etc/passwd is used, or 0.
	User string `json:"user,omitempty"`
	// Root is the block device holding the image's root filesystem.
	Root RootFS `json:"root"`
	// Net configures eth0; nil leaves the guest with loopback only.
	Net *NetConfig `json:"net,omitempty"`
	// StopGraceSeconds is how long the entrypoint has between SIGTERM (sent
	// when the VM's ACPI power button is pressed) and SIGKILL; 0 means
	// DefaultStopGrace.
	StopGraceSeconds int `json:"stopGraceSeconds,omitempty"`
	// Mode is ModeImage (empty) or ModeNode. A node guest has no Args and
	// no Root: it serves the node operations until it is powered off.
	Mode string `json:"mode,omitempty"`
	// ToolsDisk, in ModeNode, is the serial of the read-only disk that
	// holds the container runtimes (NodeToolsDisk): the guest mounts it at
	// ToolsMount before it serves the node operations. Empty: they are in
	// the initramfs (NodeInitramfs).
	ToolsDisk string `json:"toolsDisk,omitempty"`
}

// DefaultStopGrace is the entrypoint's time to stop when Config names none.
const DefaultStopGrace = 10 * time.Second

// StopGrace is the time between SIGTERM and SIGKILL on a graceful stop.
func (c Config) StopGrace() time.Duration {
	if c.StopGraceSeconds <= 0 {
		return DefaultStopGrace
	}
	return time.Duration(c.StopGraceSeconds) * time.Second
}

// RootFS names the guest's root filesystem.
type RootFS struct {
	Device string `json:"device"` // "/dev/vda"
	FSType string `json:"fsType"` // "ext4"
}

// NetConfig is the guest's one network interface.
type NetConfig struct {
	Address netip.Prefix `json:"address"`          // the instance's address and the segment's prefix length
	Gateway netip.Addr   `json:"gateway,omitzero"` // the default route's next hop
	DNS     []netip.Addr `json:"dns,omitempty"`    // written to /etc/resolv.conf when set
	// Search are the resolv.conf search domains (the segment's name), so that a
	// short name resolves in the guest as it does in a container on the segment.
	Search []string `json:"search,omitempty"`
}

// validate reports the first problem of n's search domains, which the guest
// writes into resolv.conf as they are: what names a field, like "net".
func (n NetConfig) validate(what string) error {
	if len(n.Search) > maxSearch {
		return fmt.Errorf("%s.search has %d domains; give at most %d", what, len(n.Search), maxSearch)
	}
	for i, d := range n.Search {
		if !searchDomain.MatchString(d) || len(d) > 253 {
			return fmt.Errorf("%s.search[%d] %q: give a DNS domain name (letters, digits, '-' and '.'), like back", what, i, d)
		}
	}
	return nil
}

// maxSearch is how many search domains the C library's resolver reads.
const maxSearch = 6

var searchDomain = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// ExitReport is what the guest init writes to ExitPort when the entrypoint
// has ended, or when it could not be started.
type ExitReport struct {
	// ExitCode is the entrypoint's exit status, 128+N when signal N ended it.
	ExitCode int `json:"exitCode"`
	// Error, when set, says why the entrypoint could not run (ExitCode is then
	// 127 for a program not found, 126 for one that cannot be executed, 1
	// otherwise).
	Error string `json:"error,omitempty"`
}

// Validate reports the first problem that would stop the guest init.
func (c Config) Validate() error {
	switch {
	case c.Mode != ModeImage && c.Mode != ModeNode:
		return fmt.Errorf("guest config: mode %q is not \"\" (an image VM) or %q", c.Mode, ModeNode)
	case c.Mode == ModeNode:
		// no entrypoint and no root disk
	case len(c.Args) == 0 || c.Args[0] == "":
		return fmt.Errorf("guest config: no program to run (the image has no entrypoint or cmd, and the workload no command)")
	case c.Root.Device == "" || c.Root.FSType == "":
		return fmt.Errorf("guest config: root device and filesystem type are required")
	}
	switch {
	case c.Net != nil && !c.Net.Address.IsValid():
		return fmt.Errorf("guest config: net.address is not a valid prefix")
	case c.Net != nil && c.Net.validate("net") != nil:
		return fmt.Errorf("guest config: %w", c.Net.validate("net"))
	case c.StopGraceSeconds < 0:
		return fmt.Errorf("guest config: stopGraceSeconds is %d; give 0 for the default or a positive number", c.StopGraceSeconds)
	case c.ToolsDisk != "" && c.Mode != ModeNode:
		return fmt.Errorf("guest config: toolsDisk %q is for node guests (mode %q); an image VM runs no container runtime", c.ToolsDisk, ModeNode)
	}
	return nil
}

// Marshal encodes c as the guest reads it.
func (c Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(c, "", "  ")
}
