package v1alpha1

import (
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status

// Workload is something to run: one or more replicas of the same container, sandbox or VM.
type Workload struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     WorkloadSpec    `json:"spec"`
	Status   *WorkloadStatus `json:"status,omitempty"`
}

// WorkloadSpec is what the user wants.
type WorkloadSpec struct {
	// Isolation is auto (assessment decides) or an explicit tier.
	Isolation Isolation `json:"isolation,omitempty"`
	// Image is an OCI image reference, for the container and sandbox tiers and for image microVMs.
	Image string `json:"image,omitempty"`
	// Command overrides the image's entrypoint.
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// VM is the source of a VM-tier workload that is not booted from Image.
	VM *VMSource `json:"vm,omitempty"`
	// +optional
	Resources Resources    `json:"resources"`
	Replicas  *int32       `json:"replicas,omitempty"`
	Segment   string       `json:"segment,omitempty"`
	Ports     []Port       `json:"ports,omitempty"`
	Health    *HealthCheck `json:"health,omitempty"`
	// RestartPolicy is Always, OnFailure or Never.
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty"`
	Volumes       []Volume      `json:"volumes,omitempty"`
	// Traits are facts about the workload; they are the inputs of assessment.
	// +optional
	Traits    Traits    `json:"traits"`
	Placement Placement `json:"placement,omitempty"`
	// Backup configures snapshots and backups of the workload's data.
	Backup *BackupSpec `json:"backup,omitempty"`
	// Scaling lets strata change the number of replicas with demand; nil keeps spec.replicas.
	Scaling *Scaling `json:"scaling,omitempty"`
}

// ReplicaCount returns spec.replicas, or the default when it is unset.
func (s *WorkloadSpec) ReplicaCount() int32 {
	if s.Replicas == nil {
		return DefaultReplicas
	}
	return *s.Replicas
}

// VMSource says what a VM boots: a kernel and initrd, a disk, or a disk shipped as an OCI image.
type VMSource struct {
	Kernel        string     `json:"kernel,omitempty"`
	Initrd        string     `json:"initrd,omitempty"`
	Cmdline       string     `json:"cmdline,omitempty"`
	Disk          *Disk      `json:"disk,omitempty"`
	CloudInit     *CloudInit `json:"cloudInit,omitempty"`
	ContainerDisk string     `json:"containerDisk,omitempty"`
	// Firmware is what starts the guest: bios (the default) or uefi.
	Firmware Firmware `json:"firmware,omitempty"`
	// Network says how the VM's network device looks to the guest.
	Network *VMNetwork `json:"network,omitempty"`
}

// Disk is a VM disk image. strata writes to a copy-on-write overlay, never to Path.
type Disk struct {
	Path string `json:"path"`
	// Format is the image's format; unset, it follows Path's extension (.vmdk, .vhd,
	// .vhdx, .ova, .raw, .img), and is qcow2 otherwise. vmdk, vhd, vhdx and ova disks
	// are converted to qcow2 once, on the first start, and the original is left as it is.
	Format DiskFormat `json:"format,omitempty"`
	// Bus is how the disk is attached: virtio (the default), sata, scsi or ide.
	Bus DiskBus `json:"bus,omitempty"`
}

// DiskFormat is the format of a disk image file.
type DiskFormat string

// Disk formats.
const (
	DiskRaw   DiskFormat = "raw"
	DiskQCOW2 DiskFormat = "qcow2"
	DiskVMDK  DiskFormat = "vmdk"
	// DiskVHD is Microsoft's Virtual Hard Disk (qemu-img calls it vpc).
	DiskVHD  DiskFormat = "vhd"
	DiskVHDX DiskFormat = "vhdx"
	// DiskOVA is an Open Virtualization Appliance: a tar of an .ovf descriptor and the
	// VM's disks; the VM boots the first disk the descriptor names.
	DiskOVA DiskFormat = "ova"
)

// DiskFormats are the accepted values of Disk.Format.
var DiskFormats = []DiskFormat{DiskRaw, DiskQCOW2, DiskVMDK, DiskVHD, DiskVHDX, DiskOVA}

// DiskFormatOf returns the format a disk file's name suggests, and "" when its
// extension names none.
func DiskFormatOf(file string) DiskFormat {
	switch strings.ToLower(strings.TrimPrefix(path.Ext(file), ".")) {
	case "raw", "img":
		return DiskRaw
	case "qcow2":
		return DiskQCOW2
	case "vmdk":
		return DiskVMDK
	case "vhd", "vpc":
		return DiskVHD
	case "vhdx":
		return DiskVHDX
	case "ova":
		return DiskOVA
	}
	return ""
}

// DiskBus is how a disk is attached to the VM.
type DiskBus string

// Disk buses. A guest without virtio drivers (Windows as installed) boots from sata.
const (
	DiskBusVirtio DiskBus = "virtio"
	DiskBusSATA   DiskBus = "sata"
	DiskBusSCSI   DiskBus = "scsi"
	DiskBusIDE    DiskBus = "ide"
)

// Firmware is what starts a VM's guest.
type Firmware string

// Firmwares.
const (
	FirmwareBIOS Firmware = "bios"
	FirmwareUEFI Firmware = "uefi"
)

// VMNetwork is the VM's network device.
type VMNetwork struct {
	// Model is the device the guest sees: virtio (the default), e1000 or e1000e. A guest
	// without virtio drivers (Windows as installed) needs e1000 or e1000e.
	Model NICModel `json:"model,omitempty"`
}

// NICModel is a VM network device model.
type NICModel string

// NIC models.
const (
	NICVirtio NICModel = "virtio"
	NICE1000  NICModel = "e1000"
	NICE1000E NICModel = "e1000e"
)

// CloudInit is a NoCloud seed for the guest.
type CloudInit struct {
	UserData    string `json:"userData,omitempty"`
	NetworkData string `json:"networkData,omitempty"`
}

// Resources are what one replica may use.
type Resources struct {
	// +optional
	CPU resource.Quantity `json:"cpu"`
	// +optional
	Memory resource.Quantity  `json:"memory"`
	Disk   *resource.Quantity `json:"disk,omitempty"`
}

// Protocol is tcp or udp.
type Protocol string

// Protocols.
const (
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)

// Port is a port a workload listens on, optionally published on the host.
type Port struct {
	Name     string   `json:"name,omitempty"`
	Port     int32    `json:"port"`
	Protocol Protocol `json:"protocol,omitempty"`
	// Publish is a host port forwarded to Port; 0 publishes nothing.
	Publish int32 `json:"publish,omitempty"`
}

// HealthCheck probes an instance; FailureThreshold failures in a row make it unhealthy.
type HealthCheck struct {
	HTTP             *HTTPProbe `json:"http,omitempty"`
	TCP              *TCPProbe  `json:"tcp,omitempty"`
	Exec             *ExecProbe `json:"exec,omitempty"`
	IntervalSeconds  int32      `json:"intervalSeconds,omitempty"`
	FailureThreshold int32      `json:"failureThreshold,omitempty"`
}

// HTTPProbe succeeds on a 2xx or 3xx answer to GET Path.
type HTTPProbe struct {
	Path string `json:"path,omitempty"`
	Port int32  `json:"port"`
}

// TCPProbe succeeds when a connection to Port opens.
type TCPProbe struct {
	Port int32 `json:"port"`
}

// ExecProbe succeeds when Command exits 0 inside the instance.
type ExecProbe struct {
	Command []string `json:"command"`
}

// RestartPolicy says when an exited instance is started again.
type RestartPolicy string

// Restart policies.
const (
	RestartAlways    RestartPolicy = "Always"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartNever     RestartPolicy = "Never"
)

// Volume is persistent storage mounted into every replica.
type Volume struct {
	Name      string             `json:"name"`
	MountPath string             `json:"mountPath"`
	Size      *resource.Quantity `json:"size,omitempty"`
}

// Traits are facts about a workload, the inputs of assessment.
type Traits struct {
	OS           OSFamily     `json:"os,omitempty"`
	OSVersion    string       `json:"osVersion,omitempty"`
	Trust        Trust        `json:"trust,omitempty"`
	Data         DataClass    `json:"data,omitempty"`
	Tenancy      Tenancy      `json:"tenancy,omitempty"`
	Privileged   bool         `json:"privileged,omitempty"`
	Capabilities []string     `json:"capabilities,omitempty"`
	HostAccess   []HostAccess `json:"hostAccess,omitempty"`
	// HostPaths are the host files and directories the workload mounts where it came from (a
	// compose bind, a Kubernetes hostPath). The policy grades them: a sensitive or writable
	// path outside the project reaches into the host, a read-only file of the project does not.
	HostPaths []HostPath `json:"hostPaths,omitempty"`
	// Unconfined lists the protections between the workload and the kernel it runs on that
	// its source turns off (an unconfined seccomp or AppArmor profile, say).
	Unconfined []Unconfinement `json:"unconfined,omitempty"`
	Kernel     KernelNeeds     `json:"kernel,omitempty"`
	// ImageAvailable is false when only a VM image of the workload exists (lift and shift).
	ImageAvailable *bool `json:"imageAvailable,omitempty"`
}

// KernelNeeds lists what a workload needs from a kernel of its own.
type KernelNeeds struct {
	Modules []string `json:"modules,omitempty"`
	Sysctls []string `json:"sysctls,omitempty"`
}

// OSFamily is the guest operating system family.
type OSFamily string

// OS families.
const (
	OSLinux   OSFamily = "linux"
	OSWindows OSFamily = "windows"
	OSOther   OSFamily = "other"
)

// Trust is the provenance of a workload's code.
type Trust string

// Trust levels.
const (
	TrustTrusted   Trust = "trusted"
	TrustInternal  Trust = "internal"
	TrustUntrusted Trust = "untrusted"
)

// DataClass is the sensitivity of the data a workload handles.
type DataClass string

// Data classes.
const (
	DataPublic       DataClass = "public"
	DataInternal     DataClass = "internal"
	DataConfidential DataClass = "confidential"
	DataRegulated    DataClass = "regulated"
)

// Tenancy says whether a workload serves one tenant or many.
type Tenancy string

// Tenancies.
const (
	TenancySingle Tenancy = "single"
	TenancyMulti  Tenancy = "multi"
)

// HostAccess is a part of the host a workload reaches into.
type HostAccess string

// Kinds of host access.
const (
	HostNetwork HostAccess = "network"
	HostPID     HostAccess = "pid"
	HostIPC     HostAccess = "ipc"
	HostDevices HostAccess = "devices"
	HostPaths   HostAccess = "paths"
	// HostUser, HostUTS and HostCgroup: the host's user, UTS (host name) and cgroup namespaces.
	HostUser   HostAccess = "user"
	HostUTS    HostAccess = "uts"
	HostCgroup HostAccess = "cgroup"
)

// HostPath is a file or directory of the host that a workload mounts.
type HostPath struct {
	// Path is the host path as its source names it, cleaned: absolute, or relative to the
	// project's directory ("./nginx.conf") when InProject.
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// InProject is true for a path inside the directory of the project that ships the
	// workload (a compose file's ./config); such files travel with the project.
	InProject bool `json:"inProject,omitempty"`
}

// Unconfinement is a protection between a workload and its kernel that the workload turns off.
type Unconfinement string

// Unconfinements.
const (
	// UnconfinedSeccomp: no seccomp filter (seccomp: unconfined), the kernel's whole syscall surface.
	UnconfinedSeccomp Unconfinement = "seccomp"
	// UnconfinedAppArmor: no AppArmor profile.
	UnconfinedAppArmor Unconfinement = "apparmor"
	// UnconfinedPrivilegeEscalation: processes may gain privileges (setuid binaries, file
	// capabilities), asked for explicitly (allowPrivilegeEscalation: true, no-new-privileges:false).
	UnconfinedPrivilegeEscalation Unconfinement = "privilegeEscalation"
	// UnconfinedProcMount: /proc unmasked (procMount: Unmasked): the kernel's knobs under
	// /proc/sys and /proc/sysrq-trigger in reach.
	UnconfinedProcMount Unconfinement = "procMount"
)

// Spread is how replicas of one workload are spread over hosts.
type Spread string

// Spreads.
const (
	SpreadNone Spread = ""
	SpreadHost Spread = "host"
	SpreadZone Spread = "zone"
)

// Placement constrains where replicas go.
type Placement struct {
	Spread       Spread            `json:"spread,omitempty"`
	HostSelector map[string]string `json:"hostSelector,omitempty"`
	// IsolationClass overrides the default class <tenant>/<trust>/<data>; node VMs hold one class only.
	IsolationClass string `json:"isolationClass,omitempty"`
	// NodeVM says whether the workload's container and sandbox replicas run inside node VMs
	// (required) or on the host's kernel (never); empty leaves it to the policy's spec.nodeVM.
	NodeVM NodeVMMode `json:"nodeVM,omitempty"`
}

// NodeVMMode is a workload's own say on node VMs: required, never, or empty (the policy decides).
type NodeVMMode string

// Node VM modes.
const (
	NodeVMPolicy   NodeVMMode = ""
	NodeVMRequired NodeVMMode = "required"
	NodeVMNever    NodeVMMode = "never"
)

// Scaling bounds and steers how many replicas run. Reactive scaling follows the Kubernetes
// HPA formula on CPU utilization (usage over resources.cpu); predictive scaling also starts
// replicas ahead of forecast demand, early enough for the tier's start-up time.
type Scaling struct {
	// Min is the fewest replicas; 0 or unset means 1.
	Min int32 `json:"min,omitempty"`
	// Max is the most replicas.
	Max int32 `json:"max"`
	// TargetCPUPercent is the CPU utilization, in percent of resources.cpu, that scaling aims
	// for; 0 or unset means 70.
	TargetCPUPercent int32 `json:"targetCPUPercent,omitempty"`
	// Predictive starts replicas ahead of forecast demand, not only after demand has risen.
	Predictive bool `json:"predictive,omitempty"`
	// LeadSeconds is how far ahead predictive scaling provisions; 0 means the tier's start-up
	// time plus one decision interval.
	LeadSeconds int32 `json:"leadSeconds,omitempty"`
	// ScaleInCooldownSeconds is how long after scaling out no replica is removed; unset means 300.
	ScaleInCooldownSeconds *int32 `json:"scaleInCooldownSeconds,omitempty"`
}

// WorkloadStatus is what strata decided and observed.
type WorkloadStatus struct {
	Tier    Tier     `json:"tier,omitempty"`
	Phase   Phase    `json:"phase,omitempty"`
	Reasons []Reason `json:"reasons,omitempty"`
	// NodeVM is where the container and sandbox replicas run: node VMs or the host's kernel.
	NodeVM     *NodeVMDecision `json:"nodeVM,omitempty"`
	Instances  []Instance      `json:"instances,omitempty"`
	Conditions []Condition     `json:"conditions,omitempty"`
	// Scaling is what the daemon's scaler decided, for workloads with spec.scaling.
	Scaling *ScalingStatus `json:"scaling,omitempty"`
	// Replicas and ReadyReplicas are counted where Kubernetes runs the workload (strata apply
	// --kubeconfig, strata operator): the replicas its Deployment, StatefulSet or
	// VirtualMachines want, and how many of them are ready. The daemon reports Instances.
	Replicas      int32 `json:"replicas,omitempty"`
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Backup is what the daemon's backup schedule last did, for workloads with
	// spec.backup.schedule.
	Backup *BackupStatus `json:"backup,omitempty"`
}

// ScalingStatus is the scaler's part of a workload's status. The scaler never writes
// spec.replicas (that is the user's): with spec.scaling set, Replicas is the count the
// workload controller runs.
type ScalingStatus struct {
	// Replicas is how many replicas the scaler wants now.
	Replicas int32 `json:"replicas"`
	// LastDecision is the last evaluation that changed the count; nil before the first.
	LastDecision *ScalingDecision `json:"lastDecision,omitempty"`
}

// ScalingPolicy names what drove a scaling decision.
type ScalingPolicy string

// Scaling policies.
const (
	// ScalingReactive: the HPA formula on the measured utilization.
	ScalingReactive ScalingPolicy = "reactive"
	// ScalingPredictive: a forecast of demand over the lead time.
	ScalingPredictive ScalingPolicy = "predictive"
)

// ScalingDecision is one change of the replica count and why.
type ScalingDecision struct {
	Time time.Time `json:"time"`
	From int32     `json:"from"`
	To   int32     `json:"to"`
	// Reason says what was measured and forecast against what target, and what bounded it.
	Reason string `json:"reason"`
	// DemandCores is the CPU the workload's running instances used, in cores, averaged over
	// the last minute.
	DemandCores float64 `json:"demandCores"`
	// ForecastCores is the demand forecast LeadSeconds ahead (predictive scaling only).
	ForecastCores float64 `json:"forecastCores,omitempty"`
	LeadSeconds   int32   `json:"leadSeconds,omitempty"`
	// Policy is what decided: reactive or predictive.
	Policy ScalingPolicy `json:"policy"`
}

// DesiredReplicas is how many replicas of w should run. Without spec.scaling it is
// spec.replicas. With it, it is the scaler's count (status.scaling.replicas) held within
// [min, max]; before the scaler's first decision, spec.replicas within [min, max] (min when
// spec.replicas is unset).
func (w *Workload) DesiredReplicas() int32 {
	sc := w.Spec.Scaling
	if sc == nil {
		return w.Spec.ReplicaCount()
	}
	lo, hi := max(sc.Min, 1), sc.Max
	n := lo
	switch {
	case w.Status != nil && w.Status.Scaling != nil:
		n = w.Status.Scaling.Replicas
	case w.Spec.Replicas != nil:
		n = *w.Spec.Replicas
	}
	if hi >= lo {
		n = min(n, hi)
	}
	return max(n, lo)
}

// Phase summarizes a workload's instances.
type Phase string

// Phases.
const (
	PhasePending  Phase = "Pending"
	PhaseRunning  Phase = "Running"
	PhaseDegraded Phase = "Degraded"
	PhaseFailed   Phase = "Failed"
	PhaseStopped  Phase = "Stopped"
)

// Reason is one rule's contribution to an assessment.
type Reason struct {
	Rule    string `json:"rule"`
	Effect  Effect `json:"effect"`
	Tier    Tier   `json:"tier"`
	Message string `json:"message"`
}

// Instance is one replica slot of a workload.
type Instance struct {
	ID   string `json:"id"`
	Tier Tier   `json:"tier"`
	// Driver is the runtime driver that runs it: containerd or qemu on the host, nodevm
	// inside a node VM of the workload's class (status.nodeVM says why).
	Driver    string     `json:"driver,omitempty"`
	State     string     `json:"state"`
	IP        string     `json:"ip,omitempty"`
	PID       int        `json:"pid,omitempty"`
	Host      string     `json:"host,omitempty"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	Restarts  int32      `json:"restarts"`
	Message   string     `json:"message,omitempty"`
}

// Condition is one observed aspect of a workload, Kubernetes style.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Condition statuses.
const (
	ConditionTrue    = "True"
	ConditionFalse   = "False"
	ConditionUnknown = "Unknown"
)
