package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"web-0", true},
		{"a", true},
		{"payments.shop-12", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Web-0", false},
		{"-web", false},
		{"web-", false},
		{"web_0", false},
		{"web/0", false},
		{"we b", false},
	}
	for _, tt := range tests {
		if got := runtime.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func validSpec() runtime.InstanceSpec {
	return runtime.InstanceSpec{
		ID: "web-0", Workload: "web", Tier: v1alpha1.TierContainer, Image: "localhost/web:1",
		Env:     map[string]string{"A": "1"},
		Mounts:  []runtime.Mount{{HostPath: "/srv/web", Path: "/data"}},
		LogPath: "/var/log/strata/web-0.log",
		Labels:  map[string]string{"strata.dev/tenant": "shop"},
	}
}

func TestValidateSpec(t *testing.T) {
	tests := []struct {
		name   string
		change func(*runtime.InstanceSpec)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*runtime.InstanceSpec) {}, ""},
		{"vm image", func(s *runtime.InstanceSpec) { s.Tier = v1alpha1.TierVM }, ""},
		{"vm source", func(s *runtime.InstanceSpec) {
			s.Tier, s.Image, s.VM = v1alpha1.TierVM, "", &v1alpha1.VMSource{Kernel: "/boot/vmlinuz"}
		}, ""},
		{"vm without source", func(s *runtime.InstanceSpec) { s.Tier, s.Image = v1alpha1.TierVM, "" }, "vm: a VM boots"},
		{"vm source for a container", func(s *runtime.InstanceSpec) { s.VM = &v1alpha1.VMSource{Kernel: "/boot/vmlinuz"} }, "only the vm tier"},
		{"negative disk", func(s *runtime.InstanceSpec) { s.DiskBytes = -1 }, "diskBytes -1"},
		{"vm net without address", func(s *runtime.InstanceSpec) { s.Tier, s.VMNet = v1alpha1.TierVM, &runtime.VMNet{} }, "vmNet.address"},
		{"bad id", func(s *runtime.InstanceSpec) { s.ID = "Web" }, `id "Web"`},
		{"no workload", func(s *runtime.InstanceSpec) { s.Workload = "" }, "workload: empty"},
		{"negative slot", func(s *runtime.InstanceSpec) { s.Slot = -1 }, "slot -1"},
		{"bad tier", func(s *runtime.InstanceSpec) { s.Tier = "kvm" }, `tier "kvm"`},
		{"no image", func(s *runtime.InstanceSpec) { s.Image = "" }, "image: empty"},
		{"negative cpu", func(s *runtime.InstanceSpec) { s.CPUMilli = -5 }, "cpuMilli -5"},
		{"negative memory", func(s *runtime.InstanceSpec) { s.MemoryBytes = -1 }, "memoryBytes -1"},
		{"env name with =", func(s *runtime.InstanceSpec) { s.Env = map[string]string{"A=B": "x"} }, `env "A=B"`},
		{"relative host path", func(s *runtime.InstanceSpec) { s.Mounts[0].HostPath = "srv" }, "mounts[0].hostPath"},
		{"mount over root", func(s *runtime.InstanceSpec) { s.Mounts[0].Path = "/" }, "mounts[0].path"},
		{"capabilities", func(s *runtime.InstanceSpec) { s.Capabilities = []string{"NET_RAW", "CAP_SYS_NICE", "ALL"} }, ""},
		{"lower-case capability", func(s *runtime.InstanceSpec) { s.Capabilities = []string{"NET_RAW", "net_raw"} }, `capabilities[1] "net_raw"`},
		{"bare CAP_", func(s *runtime.InstanceSpec) { s.Capabilities = []string{"CAP_"} }, `capabilities[0] "CAP_"`},
		{"relative netns", func(s *runtime.InstanceSpec) { s.NetNS = "netns" }, `netns "netns"`},
		{"relative log", func(s *runtime.InstanceSpec) { s.LogPath = "web.log" }, `logPath "web.log"`},
		{"reserved label", func(s *runtime.InstanceSpec) { s.Labels = map[string]string{runtime.LabelSlot: "1"} }, "reserved"},
		{"driver label", func(s *runtime.InstanceSpec) { s.Labels = map[string]string{runtime.LabelDriverPrefix + "x": "1"} }, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.change(&s)
			err := runtime.ValidateSpec(s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateSpec: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateSpec: %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestValidateSpecReportsEveryProblem(t *testing.T) {
	err := runtime.ValidateSpec(runtime.InstanceSpec{ID: "X", Tier: "kvm", Slot: -1})
	for _, want := range []string{`id "X"`, "workload", "slot -1", `tier "kvm"`, "image"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1", "docker.io/library/busybox:1"},
		{"localhost/shop/payments:1.4", "localhost/shop/payments:1.4"},
		{"registry.example:5000/a/b:2", "registry.example:5000/a/b:2"},
		{"docker.io/library/busybox:1", "docker.io/library/busybox:1"},
	}
	for _, tt := range tests {
		got, err := runtime.NormalizeImage(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Busybox:1", "a b", "busybox@sha256:short"} {
		if _, err := runtime.NormalizeImage(bad); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("NormalizeImage(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

// stub is a Driver that serves the given tiers and does nothing else.
type stub struct {
	name   string
	tiers  []v1alpha1.Tier
	closed bool
	err    error
}

func (s *stub) Name() string { return s.name }
func (s *stub) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{Tiers: s.tiers}
}
func (s *stub) Start(context.Context, runtime.InstanceSpec) (runtime.Status, error) {
	return runtime.Status{}, runtime.ErrUnsupported
}
func (s *stub) Stop(context.Context, string, time.Duration) error { return runtime.ErrNotFound }
func (s *stub) Remove(context.Context, string) error              { return runtime.ErrNotFound }
func (s *stub) Status(context.Context, string) (runtime.Status, error) {
	return runtime.Status{}, runtime.ErrNotFound
}
func (s *stub) List(context.Context) ([]runtime.Status, error) { return nil, nil }
func (s *stub) Close() error                                   { s.closed = true; return s.err }

func TestRegistry(t *testing.T) {
	ctrd := &stub{name: "containerd", tiers: []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox}}
	qemu := &stub{name: "qemu", tiers: []v1alpha1.Tier{v1alpha1.TierVM}}
	r, err := runtime.NewRegistry(ctrd, qemu)
	if err != nil {
		t.Fatal(err)
	}
	for tier, want := range map[v1alpha1.Tier]string{
		v1alpha1.TierContainer: "containerd", v1alpha1.TierSandbox: "containerd", v1alpha1.TierVM: "qemu",
	} {
		d, err := r.ForTier(tier)
		if err != nil || d.Name() != want {
			t.Errorf("ForTier(%s) = %v, %v; want %s", tier, d, err, want)
		}
	}
	if got := r.Tiers(); len(got) != 3 {
		t.Errorf("Tiers() = %v, want all three", got)
	}
	if got := r.Drivers(); len(got) != 2 || got[0] != ctrd || got[1] != qemu {
		t.Errorf("Drivers() = %v", got)
	}
	if err := r.Close(); err != nil || !ctrd.closed || !qemu.closed {
		t.Errorf("Close: %v, closed %v %v", err, ctrd.closed, qemu.closed)
	}
}

func TestRegistryMissingTier(t *testing.T) {
	r, err := runtime.NewRegistry(&stub{name: "containerd", tiers: []v1alpha1.Tier{v1alpha1.TierContainer}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ForTier(v1alpha1.TierVM); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("ForTier(vm): %v, want ErrUnsupported", err)
	}
	empty, err := runtime.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.ForTier(v1alpha1.TierContainer); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("empty registry: %v, want ErrUnsupported", err)
	}
}

func TestRegistryConflicts(t *testing.T) {
	tests := []struct {
		name    string
		drivers []runtime.Driver
		want    string
	}{
		{"same tier", []runtime.Driver{
			&stub{name: "a", tiers: []v1alpha1.Tier{v1alpha1.TierContainer}},
			&stub{name: "b", tiers: []v1alpha1.Tier{v1alpha1.TierContainer}},
		}, `tier container is served by both "a" and "b"`},
		{"same name", []runtime.Driver{
			&stub{name: "a", tiers: []v1alpha1.Tier{v1alpha1.TierContainer}},
			&stub{name: "a", tiers: []v1alpha1.Tier{v1alpha1.TierVM}},
		}, `two drivers are named "a"`},
		{"empty name", []runtime.Driver{&stub{tiers: []v1alpha1.Tier{v1alpha1.TierVM}}}, "empty name"},
		{"unknown tier", []runtime.Driver{&stub{name: "a", tiers: []v1alpha1.Tier{"kvm"}}}, `unknown tier "kvm"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := runtime.NewRegistry(tt.drivers...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRegistry: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRegistryCloseJoinsErrors(t *testing.T) {
	boom := errors.New("boom")
	r, err := runtime.NewRegistry(&stub{name: "a", err: boom}, &stub{name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, boom) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Close: %v, want boom from driver a", err)
	}
}

func TestRegistryNodeVMs(t *testing.T) {
	ctrd := &stub{name: "containerd", tiers: []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox}}
	qemu := &stub{name: "qemu", tiers: []v1alpha1.Tier{v1alpha1.TierVM}}
	node := &stub{name: "nodevm", tiers: []v1alpha1.Tier{v1alpha1.TierContainer}}
	host, err := runtime.NewRegistry(ctrd, qemu)
	if err != nil {
		t.Fatal(err)
	}
	r, err := host.WithNodeVMs(node)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		tier     v1alpha1.Tier
		inNodeVM bool
		want     string // the driver's name, or part of the error
	}{
		{v1alpha1.TierContainer, false, "containerd"},
		{v1alpha1.TierContainer, true, "nodevm"},
		{v1alpha1.TierVM, true, "qemu"}, // a VM of its own already
		{v1alpha1.TierSandbox, false, "containerd"},
		{v1alpha1.TierSandbox, true, "runs tiers [container] only"},
	} {
		d, err := r.For(tt.tier, tt.inNodeVM)
		switch {
		case err != nil && (!errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("For(%s, %v): %v, want %q", tt.tier, tt.inNodeVM, err, tt.want)
		case err == nil && d.Name() != tt.want:
			t.Errorf("For(%s, %v) = %s, want %s", tt.tier, tt.inNodeVM, d.Name(), tt.want)
		}
	}
	if d, _ := r.ForTier(v1alpha1.TierContainer); d.Name() != "containerd" {
		t.Errorf("ForTier(container) = %s: the node VM driver serves no tier on the host", d.Name())
	}
	if d, ok := r.Named("nodevm"); !ok || d != node {
		t.Errorf("Named(nodevm) = %v, %v", d, ok)
	}
	if _, ok := host.Named("nodevm"); ok {
		t.Error("the registry without node VMs names a nodevm driver")
	}
	for _, tt := range []struct {
		tier           v1alpha1.Tier
		driver, want   string
		withoutNodeVMs string // the answer of the registry without node VMs
	}{
		{v1alpha1.TierContainer, "nodevm", "nodevm", "containerd"},
		{v1alpha1.TierContainer, "containerd", "containerd", "containerd"},
		{v1alpha1.TierContainer, "", "containerd", "containerd"}, // a status from before instances named drivers
		{v1alpha1.TierVM, "qemu", "qemu", "qemu"},
	} {
		if d, err := r.ForInstance(tt.tier, tt.driver); err != nil || d.Name() != tt.want {
			t.Errorf("ForInstance(%s, %q) = %v, %v; want %s", tt.tier, tt.driver, d, err, tt.want)
		}
		if d, err := host.ForInstance(tt.tier, tt.driver); err != nil || d.Name() != tt.withoutNodeVMs {
			t.Errorf("without node VMs, ForInstance(%s, %q) = %v, %v; want %s", tt.tier, tt.driver, d, err, tt.withoutNodeVMs)
		}
	}
	if n := len(r.Drivers()); n != 3 || len(host.Drivers()) != 2 {
		t.Errorf("drivers: %d with node VMs, %d without; want 3 and 2 (WithNodeVMs copies)", n, len(host.Drivers()))
	}

	off := host.WithoutNodeVMs("--node-vms=off")
	_, err = off.For(v1alpha1.TierContainer, true)
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "--node-vms=off") || !strings.Contains(err.Error(), "placement.nodeVM: never") {
		t.Errorf("For without node VMs: %v, want why and what to do", err)
	}
	if d, err := off.For(v1alpha1.TierContainer, false); err != nil || d.Name() != "containerd" {
		t.Errorf("For on the host without node VMs: %v %v", d, err)
	}

	if _, err := host.WithNodeVMs(&stub{name: "containerd", tiers: []v1alpha1.Tier{v1alpha1.TierContainer}}); err == nil {
		t.Error("a node VM driver named like another driver was accepted")
	}
	if _, err := host.WithNodeVMs(&stub{name: "vms", tiers: []v1alpha1.Tier{v1alpha1.TierVM}}); err == nil {
		t.Error("a node VM driver of the vm tier was accepted")
	}
}

// closeOrder records the order its drivers are closed in.
type closeOrder struct {
	stub
	order *[]string
}

func (c *closeOrder) Close() error { *c.order = append(*c.order, c.name); return nil }

// TestRegistryCloseOrder: the node VM driver, which boots its VMs through the qemu
// driver, is closed before it; every driver in the reverse of the order given.
func TestRegistryCloseOrder(t *testing.T) {
	var order []string
	mk := func(name string, tiers ...v1alpha1.Tier) *closeOrder {
		return &closeOrder{stub: stub{name: name, tiers: tiers}, order: &order}
	}
	host, err := runtime.NewRegistry(mk("containerd", v1alpha1.TierContainer), mk("qemu", v1alpha1.TierVM))
	if err != nil {
		t.Fatal(err)
	}
	r, err := host.WithNodeVMs(mk("nodevm", v1alpha1.TierContainer))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "nodevm qemu containerd" {
		t.Errorf("closed %s, want nodevm qemu containerd", got)
	}
}
