package v1alpha1

import "k8s.io/apimachinery/pkg/api/resource"

// Defaults of DESIGN.md section 1.
const (
	DefaultReplicas int32 = 1
	// DefaultSegment is the segment of workloads that name none; it exists without a
	// Segment object while workloads use it (one may be applied to set its egress and
	// allowed flows).
	DefaultSegment                = "default"
	DefaultHealthInterval   int32 = 10
	DefaultHealthThreshold  int32 = 3
	DefaultCPU                    = "100m"
	DefaultMemory                 = "128Mi"
	DefaultIsolationClassOf       = "default"
)

// SetDefaults fills every unset field of w that has a default. It is idempotent.
func (w *Workload) SetDefaults() {
	if w.APIVersion == "" {
		w.APIVersion = GroupVersion
	}
	if w.Kind == "" {
		w.Kind = KindWorkload
	}
	s := &w.Spec
	if s.Isolation == "" {
		s.Isolation = IsolationAuto
	}
	if s.Replicas == nil {
		r := DefaultReplicas
		s.Replicas = &r
	}
	if s.Segment == "" {
		s.Segment = DefaultSegment
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartAlways
	}
	if s.Resources.CPU.IsZero() {
		s.Resources.CPU = resource.MustParse(DefaultCPU)
	}
	if s.Resources.Memory.IsZero() {
		s.Resources.Memory = resource.MustParse(DefaultMemory)
	}
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = ProtocolTCP
		}
	}
	if h := s.Health; h != nil {
		if h.IntervalSeconds == 0 {
			h.IntervalSeconds = DefaultHealthInterval
		}
		if h.FailureThreshold == 0 {
			h.FailureThreshold = DefaultHealthThreshold
		}
		if h.HTTP != nil && h.HTTP.Path == "" {
			h.HTTP.Path = "/"
		}
	}
	if s.Scaling != nil {
		s.Scaling.SetDefaults()
	}
	if b := s.Backup; b != nil && b.Schedule != "" && b.Keep == nil {
		b.Keep = &BackupKeep{Last: DefaultBackupKeepLast}
	}
	if s.VM != nil && s.VM.Disk != nil && s.VM.Disk.Format == "" {
		s.VM.Disk.Format = DiskFormatOf(s.VM.Disk.Path)
		if s.VM.Disk.Format == "" {
			s.VM.Disk.Format = DiskQCOW2
		}
	}
	t := &s.Traits
	if t.OS == "" {
		t.OS = OSLinux
	}
	if t.Trust == "" {
		t.Trust = TrustInternal
	}
	if t.Data == "" {
		t.Data = DataInternal
	}
	if t.Tenancy == "" {
		t.Tenancy = TenancySingle
	}
	if t.ImageAvailable == nil {
		yes := true
		t.ImageAvailable = &yes
	}
}

// Defaults of spec.scaling.
const (
	DefaultScalingMin             int32 = 1
	DefaultTargetCPUPercent       int32 = 70
	DefaultScaleInCooldownSeconds int32 = 300
	// DefaultLeadSeconds 0 stands for the tier's start-up time plus one decision interval.
	DefaultLeadSeconds int32 = 0
)

// SetDefaults fills the unset fields of spec.scaling. It is idempotent.
func (sc *Scaling) SetDefaults() {
	if sc.Min == 0 {
		sc.Min = DefaultScalingMin
	}
	if sc.TargetCPUPercent == 0 {
		sc.TargetCPUPercent = DefaultTargetCPUPercent
	}
	if sc.ScaleInCooldownSeconds == nil {
		c := DefaultScaleInCooldownSeconds
		sc.ScaleInCooldownSeconds = &c
	}
}

// IsolationClass is the class of node VM the workload's replicas may share:
// placement.isolationClass when set, else <tenant label or "default">/<trust>/<data>.
// Call it on a defaulted workload.
func (w *Workload) IsolationClass() string {
	if c := w.Spec.Placement.IsolationClass; c != "" {
		return c
	}
	return w.Tenant() + "/" + string(w.Spec.Traits.Trust) + "/" + string(w.Spec.Traits.Data)
}

// Tenant is the workload's tenant: its strata.dev/tenant label, or "default".
func (w *Workload) Tenant() string {
	if t := w.Metadata.Labels[LabelTenant]; t != "" {
		return t
	}
	return DefaultIsolationClassOf
}

// SetDefaults fills the segment's unset fields.
func (s *Segment) SetDefaults() {
	if s.APIVersion == "" {
		s.APIVersion = GroupVersion
	}
	if s.Kind == "" {
		s.Kind = KindSegment
	}
	s.Spec.SetDefaults()
}

// DefaultEgress is a segment's egress when its spec sets none, and the egress of a
// segment that workloads use without a Segment object.
const DefaultEgress = EgressAllow

// SetDefaults fills the spec's unset fields: egress, and the protocol of allowed ports.
// The zero spec, defaulted, is what a segment without a Segment object allows: egress,
// no flows in. It is idempotent.
func (s *SegmentSpec) SetDefaults() {
	if s.Egress == "" {
		s.Egress = DefaultEgress
	}
	for i := range s.Allow {
		for j := range s.Allow[i].Ports {
			if s.Allow[i].Ports[j].Protocol == "" {
				s.Allow[i].Ports[j].Protocol = ProtocolTCP
			}
		}
	}
}

// Default overheads of a fleet.
var (
	DefaultVMOverhead      = Capacity{CPU: resource.MustParse("100m"), Memory: resource.MustParse("256Mi")}
	DefaultSandboxOverhead = Capacity{CPU: resource.MustParse("50m"), Memory: resource.MustParse("64Mi")}
	DefaultNodeReserved    = Capacity{CPU: resource.MustParse("250m"), Memory: resource.MustParse("1Gi")}
)

// SetDefaults fills the fleet's unset overheads.
func (f *Fleet) SetDefaults() {
	if f.APIVersion == "" {
		f.APIVersion = GroupVersion
	}
	if f.Kind == "" {
		f.Kind = KindFleet
	}
	o := &f.Spec.Overheads
	if o.VM == nil {
		c := DefaultVMOverhead.DeepCopy()
		o.VM = &c
	}
	if o.Sandbox == nil {
		c := DefaultSandboxOverhead.DeepCopy()
		o.Sandbox = &c
	}
	if o.NodeReserved == nil {
		c := DefaultNodeReserved.DeepCopy()
		o.NodeReserved = &c
	}
}

// DeepCopy returns a copy of c that shares nothing with it.
func (c Capacity) DeepCopy() Capacity {
	return Capacity{CPU: c.CPU.DeepCopy(), Memory: c.Memory.DeepCopy()}
}

// SetDefaults fills the policy's unset fields.
func (p *AssessmentPolicy) SetDefaults() {
	if p.APIVersion == "" {
		p.APIVersion = GroupVersion
	}
	if p.Kind == "" {
		p.Kind = KindAssessmentPolicy
	}
}
