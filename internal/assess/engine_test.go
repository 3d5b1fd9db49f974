package assess

import (
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

func TestDefaultPolicyCompiles(t *testing.T) {
	want := []string{"guest-os", "own-kernel", "host-privileges", "host-paths", "host-paths-read-only", "host-namespaces", "unconfined", "extra-capabilities", "legacy", "vm-source", "sensitive-multitenant", "untrusted-code", "sensitive-data"}
	if got := Default().Rules(); !slices.Equal(got, want) {
		t.Fatalf("rules = %v, want %v", got, want)
	}
}

// workload builds a defaulted workload and lets a test change its spec.
func workload(change func(s *v1alpha1.WorkloadSpec)) *v1alpha1.Workload {
	w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "w"}, Spec: v1alpha1.WorkloadSpec{Image: "img"}}
	if change != nil {
		change(&w.Spec)
	}
	w.SetDefaults()
	return w
}

func no() *bool { b := false; return &b }

// TestDefaultRules checks every rule of the default policy alone, then in combination.
func TestDefaultRules(t *testing.T) {
	tests := []struct {
		name  string
		spec  func(s *v1alpha1.WorkloadSpec)
		tier  v1alpha1.Tier
		rules []string
	}{
		{"nothing special", nil, v1alpha1.TierContainer, nil},
		{"harmless capability", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"NET_BIND_SERVICE", "CHOWN"} }, v1alpha1.TierContainer, nil},
		{"public data, trusted", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "public"; s.Traits.Trust = "trusted" }, v1alpha1.TierContainer, nil},
		{"current osVersion", func(s *v1alpha1.WorkloadSpec) { s.Traits.OSVersion = "Ubuntu 22.04" }, v1alpha1.TierContainer, nil},

		{"guest-os windows", func(s *v1alpha1.WorkloadSpec) { s.Traits.OS = "windows" }, v1alpha1.TierVM, []string{"guest-os"}},
		{"guest-os other", func(s *v1alpha1.WorkloadSpec) { s.Traits.OS = "other" }, v1alpha1.TierVM, []string{"guest-os"}},
		{"own-kernel modules", func(s *v1alpha1.WorkloadSpec) { s.Traits.Kernel.Modules = []string{"wireguard"} }, v1alpha1.TierVM, []string{"own-kernel"}},
		{"own-kernel sysctls", func(s *v1alpha1.WorkloadSpec) { s.Traits.Kernel.Sysctls = []string{"vm.swappiness"} }, v1alpha1.TierVM, []string{"own-kernel"}},
		{"privileged", func(s *v1alpha1.WorkloadSpec) { s.Traits.Privileged = true }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"host network", func(s *v1alpha1.WorkloadSpec) { s.Traits.HostAccess = []v1alpha1.HostAccess{"network"} }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"host paths", func(s *v1alpha1.WorkloadSpec) { s.Traits.HostAccess = []v1alpha1.HostAccess{"paths"} }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"SYS_ADMIN", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"SYS_ADMIN"} }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"CAP_NET_ADMIN, lower case", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"CHOWN", "CAP_NET_ADMIN"} }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"ALL capabilities", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"ALL"} }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"NET_RAW", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"NET_RAW"} }, v1alpha1.TierVM, []string{"host-privileges"}},
		{"extra capability", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"CHOWN", "SYS_NICE"} }, v1alpha1.TierSandbox, []string{"extra-capabilities"}},
		{"extra and dangerous capabilities", func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{"CAP_IPC_LOCK", "NET_RAW"} },
			v1alpha1.TierVM, []string{"host-privileges", "extra-capabilities"}},
		{"no image", func(s *v1alpha1.WorkloadSpec) { s.Traits.ImageAvailable = no() }, v1alpha1.TierVM, []string{"legacy"}},
		{"CentOS 7", func(s *v1alpha1.WorkloadSpec) { s.Traits.OSVersion = "CentOS 7" }, v1alpha1.TierVM, []string{"legacy"}},
		{"Ubuntu 16.04", func(s *v1alpha1.WorkloadSpec) { s.Traits.OSVersion = "Ubuntu 16.04" }, v1alpha1.TierVM, []string{"legacy"}},
		{"regulated multi-tenant", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "regulated"; s.Traits.Tenancy = "multi" }, v1alpha1.TierVM, []string{"sensitive-multitenant", "sensitive-data"}},
		{"untrusted", func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted" }, v1alpha1.TierSandbox, []string{"untrusted-code"}},
		{"confidential", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "confidential" }, v1alpha1.TierSandbox, []string{"sensitive-data"}},
		{"regulated single tenant", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "regulated" }, v1alpha1.TierSandbox, []string{"sensitive-data"}},
		{"confidential multi-tenant is no VM", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "confidential"; s.Traits.Tenancy = "multi" }, v1alpha1.TierSandbox, []string{"sensitive-data"}},

		{"vm disk, no image", func(s *v1alpha1.WorkloadSpec) {
			s.Image = ""
			s.VM = &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: "/srv/legacy.qcow2"}}
		}, v1alpha1.TierVM, []string{"vm-source"}},
		{"vm kernel, no image", func(s *v1alpha1.WorkloadSpec) {
			s.Image = ""
			s.VM = &v1alpha1.VMSource{Kernel: "/srv/vmlinuz"}
		}, v1alpha1.TierVM, []string{"vm-source"}},
		{"vm source beside an image is the image's choice", func(s *v1alpha1.WorkloadSpec) {
			s.VM = &v1alpha1.VMSource{Kernel: "/srv/vmlinuz"}
		}, v1alpha1.TierContainer, nil},

		{"untrusted and confidential", func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted"; s.Traits.Data = "confidential" },
			v1alpha1.TierSandbox, []string{"untrusted-code", "sensitive-data"}},
		{"untrusted and regulated", func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted"; s.Traits.Data = "regulated" },
			v1alpha1.TierVM, []string{"sensitive-multitenant", "untrusted-code", "sensitive-data"}},
		{"windows 2008 without image", func(s *v1alpha1.WorkloadSpec) {
			s.Traits.OS = "windows"
			s.Traits.OSVersion = "Windows Server 2008 R2"
			s.Traits.ImageAvailable = no()
		}, v1alpha1.TierVM, []string{"guest-os", "legacy"}},
		{"everything", func(s *v1alpha1.WorkloadSpec) {
			s.Traits = v1alpha1.Traits{OS: "windows", Privileged: true, Kernel: v1alpha1.KernelNeeds{Modules: []string{"x"}},
				ImageAvailable: no(), Data: "regulated", Tenancy: "multi", Trust: "untrusted"}
		}, v1alpha1.TierVM, []string{"guest-os", "own-kernel", "host-privileges", "legacy", "sensitive-multitenant", "untrusted-code", "sensitive-data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Default().Assess(workload(tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			var rules []string
			for _, r := range d.Reasons {
				rules = append(rules, r.Rule)
				if r.Message == "" || !r.Tier.Valid() {
					t.Errorf("reason %+v lacks a message or a tier", r)
				}
			}
			if d.Tier != tt.tier || !slices.Equal(rules, tt.rules) {
				t.Errorf("tier %s by %v, want %s by %v", d.Tier, rules, tt.tier, tt.rules)
			}
			if len(d.Violations) != 0 {
				t.Errorf("unexpected violations %+v", d.Violations)
			}
		})
	}
}

func TestExplicitIsolation(t *testing.T) {
	tests := []struct {
		name       string
		isolation  v1alpha1.Isolation
		spec       func(s *v1alpha1.WorkloadSpec)
		tier       v1alpha1.Tier
		violations []string
	}{
		{"stronger than needed is fine", "vm", nil, v1alpha1.TierVM, nil},
		{"sandbox for untrusted code", "sandbox", func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted" }, v1alpha1.TierSandbox, nil},
		{"container for untrusted code", "container", func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted" }, v1alpha1.TierContainer, []string{"untrusted-code"}},
		{"sandbox for a privileged one", "sandbox", func(s *v1alpha1.WorkloadSpec) { s.Traits.Privileged = true; s.Traits.Data = "confidential" },
			v1alpha1.TierSandbox, []string{"host-privileges"}},
		{"container for windows", "container", func(s *v1alpha1.WorkloadSpec) { s.Traits.OS = "windows" }, v1alpha1.TierContainer, []string{"guest-os"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := workload(func(s *v1alpha1.WorkloadSpec) {
				s.Isolation = tt.isolation
				if tt.spec != nil {
					tt.spec(s)
				}
			})
			d, err := Default().Assess(w)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range d.Violations {
				got = append(got, v.Rule)
				if !strings.Contains(v.Message, "weaker than") && !strings.Contains(v.Message, "requires exactly") {
					t.Errorf("violation message %q does not say what is wrong", v.Message)
				}
			}
			if d.Tier != tt.tier || d.Requested != tt.isolation || !slices.Equal(got, tt.violations) {
				t.Errorf("tier %s requested %s violations %v, want %s %s %v", d.Tier, d.Requested, got, tt.tier, tt.isolation, tt.violations)
			}
		})
	}
}

// TestViolationNamesTheCause: a violation says what in the workload set the floor, as the
// reason does (which capability, which data class).
func TestViolationNamesTheCause(t *testing.T) {
	w := workload(func(s *v1alpha1.WorkloadSpec) {
		s.Isolation = "container"
		s.Traits.Capabilities = []string{"CHOWN", "NET_RAW"}
	})
	d, err := Default().Assess(w)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Violations) != 1 || !strings.HasSuffix(d.Violations[0].Message, "a VM contains them (NET_RAW)") {
		t.Errorf("violations %+v, want one that names NET_RAW", d.Violations)
	}
}

// TestRequireConflict: a rule that requires exactly a tier conflicts with a stronger floor.
func TestRequireConflict(t *testing.T) {
	src := policyHead + `
  - name: web-is-container
    when: workload.metadata.name == 'w'
    effect: require
    tier: container
    message: web front ends run as plain containers
  - name: untrusted
    when: workload.spec.traits.trust == 'untrusted'
    effect: atLeast
    tier: sandbox
    message: untrusted code
`
	e, errs := LoadPolicy("p.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	d, err := e.Assess(workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted" }))
	if err != nil {
		t.Fatal(err)
	}
	if d.Tier != v1alpha1.TierSandbox || len(d.Violations) != 1 || d.Violations[0].Rule != "web-is-container" ||
		!strings.Contains(d.Violations[0].Message, "a stronger floor (untrusted)") {
		t.Errorf("got %s %+v, want sandbox with a violation of web-is-container", d.Tier, d.Violations)
	}
	d, _ = e.Assess(workload(nil))
	if d.Tier != v1alpha1.TierContainer || len(d.Violations) != 0 {
		t.Errorf("got %s %+v, want container without violations", d.Tier, d.Violations)
	}
}

const policyHead = `apiVersion: strata.dev/v1alpha1
kind: AssessmentPolicy
metadata: {name: p}
spec:
  rules:`

// TestPolicyErrors: a policy's problems are reported at their place, CEL errors inside the expression.
func TestPolicyErrors(t *testing.T) {
	tests := []struct {
		name, rules string
		want        []string
	}{
		{"syntax in a plain scalar", `
  - {name: a, when: "workload.spec.traits.os ==", effect: atLeast, tier: vm, message: m}`,
			[]string{`p.yaml:6:48: spec.rules[0].when: rule a: Syntax error: mismatched input '<EOF>' expecting`}},
		{"unknown function", `
  - name: a
    when: workload.spec.traits.os.startWith('win')
    effect: atLeast
    tier: vm
    message: m`,
			[]string{`p.yaml:7:44: spec.rules[0].when: rule a: undeclared reference to 'startWith'`}},
		{"in a folded block", `
  - name: a
    when: >-
      workload.spec.traits.privileged ||
      size(workload.spec.traits.hostAccess) > 0 &&& true
    effect: atLeast
    tier: vm
    message: m`,
			[]string{`p.yaml:9:51: spec.rules[0].when: rule a: Syntax error`}},
		{"not a bool", `
  - {name: a, when: "size(workload.spec.traits.capabilities)", effect: atLeast, tier: vm, message: m}`,
			[]string{`p.yaml:6:22: spec.rules[0].when: rule a: the expression gives a value of type int, not bool (write a condition`}},
		{"wrong field path", `
  - {name: a, when: "workload.spec.trait.os == 'linux'", effect: atLeast, tier: vm, message: m}`,
			[]string{`p.yaml:6:21: spec.rules[0].when: rule a: does not evaluate on a workload with defaults: no such key: trait (check the field path`}},
		{"bad effect and tier", `
  - {name: a, when: "true", effect: must, tier: kvm, message: m}`,
			[]string{
				`p.yaml:6:37: spec.rules[0].effect: unsupported value "must" (use one of "require", "atLeast")`,
				`p.yaml:6:49: spec.rules[0].tier: unsupported value "kvm" (use one of "container", "sandbox", "vm")`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, errs := LoadPolicy("p.yaml", []byte(policyHead+tt.rules+"\n"))
			if e != nil {
				t.Error("an invalid policy gave an engine")
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			for i, want := range tt.want {
				if got := errs[i].Error(); !strings.HasPrefix(got, want) {
					t.Errorf("error:\n%s\nwant it to start with:\n%s", got, want)
				}
			}
		})
	}
}

func TestNoPolicyInFile(t *testing.T) {
	_, errs := LoadPolicy("p.yaml", []byte("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: a}\n"))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "expected an AssessmentPolicy, found a Segment") {
		t.Fatalf("got %v", errs)
	}
}

// linuxCapabilities are the capabilities of Linux 5.9 and later, without the CAP_ prefix.
var linuxCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// TestCapabilityTiers judges every Linux capability asked for alone: those of
// v1alpha1.DefaultCapabilities, which every container holds, need nothing; the dangerous
// ones, NET_RAW among them, need a VM; every other one a sandbox. Each reason names the
// capability, however the trait spells it.
func TestCapabilityTiers(t *testing.T) {
	dangerous := []string{"SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "SYS_BOOT", "NET_ADMIN",
		"NET_RAW", "BPF", "PERFMON", "SYS_TIME", "MKNOD", "DAC_READ_SEARCH"}
	for _, c := range linuxCapabilities {
		tier, rule := v1alpha1.TierSandbox, "extra-capabilities"
		switch {
		case slices.Contains(v1alpha1.DefaultCapabilities, c):
			tier, rule = v1alpha1.TierContainer, ""
		case slices.Contains(dangerous, c):
			tier, rule = v1alpha1.TierVM, "host-privileges"
		}
		for _, spelled := range []string{c, "CAP_" + c, strings.ToLower(c)} {
			d, err := Default().Assess(workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Capabilities = []string{spelled} }))
			if err != nil {
				t.Fatal(err)
			}
			var rules []string
			for _, r := range d.Reasons {
				rules = append(rules, r.Rule)
				if !strings.Contains(r.Message, spelled) {
					t.Errorf("%s: reason %q does not name the capability", spelled, r.Message)
				}
			}
			want := []string{rule}
			if rule == "" {
				want = nil
			}
			if d.Tier != tier || !slices.Equal(rules, want) {
				t.Errorf("capability %s: tier %s by %v, want %s by %v", spelled, d.Tier, rules, tier, want)
			}
		}
	}
}
