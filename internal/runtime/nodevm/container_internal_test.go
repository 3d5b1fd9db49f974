package nodevm

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// The container tier runs with the driver's container runtime (crun unless
// runc is asked for, and runc only with a runc in the tools), the sandbox
// tier with runsc; any other runtime is refused, naming the choices.
func TestContainerRuntime(t *testing.T) {
	for _, tc := range []struct {
		cfg              string
		runc             bool
		tier             v1alpha1.Tier
		want, wantConfig string
	}{
		{cfg: "", tier: v1alpha1.TierContainer, want: guest.RuntimeCrun},
		{cfg: "crun", tier: v1alpha1.TierContainer, want: guest.RuntimeCrun},
		{cfg: "runc", runc: true, tier: v1alpha1.TierContainer, want: guest.RuntimeRunc},
		{cfg: "runc", runc: true, tier: v1alpha1.TierSandbox, want: guest.RuntimeRunsc},
		{cfg: "", tier: v1alpha1.TierSandbox, want: guest.RuntimeRunsc},
		{cfg: "runc", wantConfig: "the tools have no runc"},
		{cfg: "youki", wantConfig: `containerRuntime "youki": use crun or runc`},
	} {
		tools := guest.NodeTools{Crun: "/usr/bin/crun", Runsc: "/opt/strata/bin/runsc"}
		if tc.runc {
			tools.Runc = "/usr/sbin/runc"
		}
		rt, err := containerRuntime(Config{Tools: tools, ContainerRuntime: tc.cfg})
		if tc.wantConfig != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantConfig) {
				t.Errorf("containerRuntime %q: %v; want an error saying %q", tc.cfg, err, tc.wantConfig)
			}
			continue
		}
		if err != nil {
			t.Fatalf("containerRuntime %q: %v", tc.cfg, err)
		}
		spec := runtime.InstanceSpec{ID: "web-0", Tier: tc.tier, Command: []string{"sh"}}
		if got := container(spec, runtime.ImageInfo{}, "img-0", rt).Runtime; got != tc.want {
			t.Errorf("containerRuntime %q, tier %s: runtime %q, want %q", tc.cfg, tc.tier, got, tc.want)
		}
	}
}

// A container in a node VM holds the capabilities of one on the host: the defaults,
// without NET_RAW and MKNOD, and those asked for.
func TestContainerCapabilities(t *testing.T) {
	spec := runtime.InstanceSpec{ID: "web-0", Tier: v1alpha1.TierContainer, Command: []string{"sh"}, Capabilities: []string{"NET_ADMIN", "CAP_SYS_TIME"}}
	c := container(spec, runtime.ImageInfo{}, "img-0", guest.RuntimeCrun)
	for _, want := range []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_SYS_TIME"} {
		if !slices.Contains(c.Capabilities, want) {
			t.Errorf("capabilities %q lack %s", c.Capabilities, want)
		}
	}
	for _, not := range []string{"CAP_NET_RAW", "CAP_MKNOD"} {
		if slices.Contains(c.Capabilities, not) {
			t.Errorf("capabilities %q hold %s, which a container must ask for", c.Capabilities, not)
		}
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// The guest's network of a container is the tap's: its MAC, address, gateway and name
// servers; a spec the driver cannot network is refused, naming why.
func TestContainerNetwork(t *testing.T) {
	n := &runtime.VMNet{
		Address: netip.MustParsePrefix("10.78.5.7/24"), Gateway: netip.MustParseAddr("10.78.5.1"),
		MAC: net.HardwareAddr{2, 0, 10, 78, 5, 7}, DNS: []netip.Addr{netip.MustParseAddr("10.78.5.1")},
	}
	cn := containerNet(n, 30*time.Second)
	if cn.MAC != "02:00:0a:4e:05:07" || cn.Address != n.Address || cn.Gateway != n.Gateway || !slices.Equal(cn.DNS, n.DNS) || cn.WaitMillis != 30000 {
		t.Errorf("container network %+v, want the tap's", cn)
	}
	if id := NICID("a-workload-with-a-long-name-0"); len(id) > 20 || id == NICID("a-workload-with-a-long-name-1") {
		t.Errorf("NIC IDs %q: want at most 20 characters, one per instance", id)
	}
	spec := runtime.InstanceSpec{ID: "web-0", VMNet: n}
	for _, tc := range []struct {
		name string
		d    *Driver
		spec func(runtime.InstanceSpec) runtime.InstanceSpec
		want error
	}{
		{"no OpenTap", &Driver{}, func(s runtime.InstanceSpec) runtime.InstanceSpec { return s }, runtime.ErrUnsupported},
		{"no MAC", &Driver{cfg: Config{OpenTap: openNothing}}, func(s runtime.InstanceSpec) runtime.InstanceSpec {
			v := *s.VMNet
			v.MAC = nil
			s.VMNet = &v
			return s
		}, runtime.ErrInvalid},
		{"a host network namespace", &Driver{cfg: Config{OpenTap: openNothing}}, func(s runtime.InstanceSpec) runtime.InstanceSpec {
			s.VMNet, s.NetNS = nil, "/run/netns/x"
			return s
		}, runtime.ErrUnsupported},
		{"ALL", &Driver{cfg: Config{OpenTap: openNothing}}, func(s runtime.InstanceSpec) runtime.InstanceSpec {
			s.Capabilities = []string{"ALL"}
			return s
		}, runtime.ErrUnsupported},
		{"networked", &Driver{cfg: Config{OpenTap: openNothing}}, func(s runtime.InstanceSpec) runtime.InstanceSpec { return s }, nil},
	} {
		err := tc.d.unsupported(tc.spec(spec))
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if (&Driver{}).Capabilities().VMNet || !(&Driver{cfg: Config{OpenTap: openNothing}}).Capabilities().VMNet {
		t.Error("Capabilities.VMNet does not follow Config.OpenTap")
	}
}

func openNothing(string) (*os.File, error) { return nil, errors.New("no taps here") }
