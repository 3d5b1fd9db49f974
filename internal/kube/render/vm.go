package render

import (
	"cmp"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"strata.dev/strata/api/v1alpha1"
)

// Names of the VM's devices and network.
const (
	rootDisk      = "rootdisk"
	cloudInitDisk = "cloudinitdisk"
	podNetwork    = "default"
)

// vm renders a vm-tier workload: one VirtualMachine per replica (one, Halted, for none), and
// the Service of its ports selecting the VMs' pods.
func (r *renderer) vm(w *v1alpha1.Workload) {
	name := w.Metadata.Name
	if len(w.Spec.Volumes) > 0 {
		r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: name, Field: "spec.volumes",
			Problem: "volumes cannot be mounted into a VM (on one host either)",
			Hint:    "keep the data on the VM's disk, or run the workload at the container or sandbox tier"})
		return
	}
	src, ok := r.vmSource(w)
	if !ok {
		return
	}
	if len(w.Spec.Command) > 0 || len(w.Spec.Env) > 0 {
		r.note(w, "spec.command and spec.env do not reach a VM's guest; pass them with spec.vm.cloudInit")
	}
	if h := w.Spec.Health; h != nil && h.Exec != nil {
		r.note(w, "the exec health check runs through the QEMU guest agent, which the guest must run")
	}
	if !r.expose(w, v1alpha1.TierVM) {
		return
	}
	if w.Spec.Scaling != nil {
		r.note(w, "spec.scaling is not rendered for VMs: each replica is a VirtualMachine of its own, spec.replicas of them")
	}
	replicas := w.Spec.ReplicaCount()
	names := []string{name}
	if replicas > 1 {
		names = names[:0]
		for i := range replicas {
			names = append(names, fmt.Sprintf("%s-%d", name, i)) // strata's instance IDs
		}
	}
	for _, n := range names {
		r.add(r.virtualMachine(w, n, src, replicas))
	}
}

// vmSource is what a VM boots, common to every replica.
type vmSource struct {
	disk       kubevirtv1.VolumeSource // the root disk; a DataVolume's name is filled per VM
	dataVolume *cdiv1.DataVolumeSpec   // the root disk is a clone of an uploaded disk
	kernelBoot *kubevirtv1.KernelBoot
	bus        kubevirtv1.DiskBus // the root disk's bus
	bootloader *kubevirtv1.Bootloader
	nicModel   string
}

// vmSource picks the VM source: spec.vm.containerDisk, then spec.vm's kernel and disk, then
// the workload's image used as a containerDisk.
func (r *renderer) vmSource(w *v1alpha1.Workload) (vmSource, bool) {
	vm, name := w.Spec.VM, w.Metadata.Name
	var src vmSource
	if vm != nil {
		r.devices(w, &src)
	}
	switch {
	case vm != nil && vm.ContainerDisk != "":
		src.disk.ContainerDisk = &kubevirtv1.ContainerDiskSource{Image: vm.ContainerDisk}
		return src, true
	case vm == nil || (vm.Kernel == "" && vm.Disk == nil):
		if w.Spec.Image == "" {
			r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: name, Field: "spec.vm",
				Problem: "a VM needs something to boot, and the workload gives neither spec.vm nor spec.image",
				Hint:    "set spec.vm.containerDisk, spec.vm.disk or spec.vm.kernel"})
			return src, false
		}
		src.disk.ContainerDisk = &kubevirtv1.ContainerDiskSource{Image: w.Spec.Image}
		r.note(w, "runs as a VM from image %s used as a containerDisk: it must be a containerDisk image "+
			"(a bootable disk in /disk of an OCI image), which is yours to build; or set spec.vm.containerDisk", w.Spec.Image)
		return src, true
	}
	ok := true
	if vm.Kernel != "" {
		if w.Spec.Image == "" {
			r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: name, Field: "spec.vm.kernel",
				Problem: "KubeVirt boots a kernel from a container image, and the workload names none",
				Hint:    fmt.Sprintf("set spec.image to an image that holds the kernel at %s, and the initrd at its path", vm.Kernel)})
			ok = false
		} else {
			src.kernelBoot = &kubevirtv1.KernelBoot{
				KernelArgs: vm.Cmdline,
				Container:  &kubevirtv1.KernelBootContainer{Image: w.Spec.Image, KernelPath: vm.Kernel, InitrdPath: vm.Initrd},
			}
			r.note(w, "boots the kernel %s from image %s: the image must hold the kernel (and initrd) at the paths of spec.vm", vm.Kernel, w.Spec.Image)
		}
	}
	if vm.Disk != nil {
		if !r.diskSource(w, &src) {
			ok = false
		}
	}
	return src, ok
}

// devices maps spec.vm's firmware, disk bus and network device model.
func (r *renderer) devices(w *v1alpha1.Workload, src *vmSource) {
	vm := w.Spec.VM
	src.bus = kubevirtv1.DiskBusVirtio
	if vm.Disk != nil {
		switch vm.Disk.Bus {
		case v1alpha1.DiskBusSATA:
			src.bus = kubevirtv1.DiskBusSATA
		case v1alpha1.DiskBusSCSI:
			src.bus = kubevirtv1.DiskBusSCSI
		case v1alpha1.DiskBusIDE:
			src.bus = kubevirtv1.DiskBusSATA
			r.note(w, "spec.vm.disk.bus ide is rendered as sata: KubeVirt has no IDE bus, and a guest that boots from IDE boots from SATA (AHCI) too")
		}
	}
	switch vm.Firmware {
	case v1alpha1.FirmwareUEFI:
		secure := false
		src.bootloader = &kubevirtv1.Bootloader{EFI: &kubevirtv1.EFI{SecureBoot: &secure}}
	case v1alpha1.FirmwareBIOS:
		src.bootloader = &kubevirtv1.Bootloader{BIOS: &kubevirtv1.BIOS{}}
	}
	if vm.Network != nil && vm.Network.Model != "" {
		src.nicModel = string(vm.Network.Model)
	}
}

// diskSource makes each VM's root disk a DataVolume cloned from one uploaded claim,
// "<workload>-disk", as strata boots each instance from a copy-on-write overlay and never
// writes to the disk image itself.
func (r *renderer) diskSource(w *v1alpha1.Workload, src *vmSource) bool {
	size := w.Spec.Resources.Disk
	if size == nil {
		r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: w.Metadata.Name, Field: "spec.resources.disk",
			Problem: "a disk VM on Kubernetes boots a clone of its disk, and the clone needs a size",
			Hint:    "set spec.resources.disk to at least the virtual size of " + w.Spec.VM.Disk.Path})
		return false
	}
	base := w.Metadata.Name + "-disk"
	src.dataVolume = &cdiv1.DataVolumeSpec{
		Source: &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: r.opts.Namespace, Name: base}},
		Storage: &cdiv1.StorageSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()}},
		},
	}
	image := w.Spec.VM.Disk.Path
	if w.Spec.VM.Disk.Format == v1alpha1.DiskOVA {
		image = "DISK.vmdk"
		r.note(w, "spec.vm.disk %s is an OVA, which the Containerized Data Importer does not read: unpack it with tar -xf, "+
			"and upload the .vmdk its .ovf descriptor names first (DISK.vmdk below)", w.Spec.VM.Disk.Path)
	}
	r.note(w, "each VM boots a clone of claim %s: upload the disk once with "+
		"virtctl image-upload pvc %s --namespace %s --size %s --image-path %s (needs the Containerized Data Importer)",
		base, base, r.opts.Namespace, size.String(), image)
	return true
}

// virtualMachine is the VirtualMachine called name, one of w's replicas.
func (r *renderer) virtualMachine(w *v1alpha1.Workload, name string, src vmSource, replicas int32) *kubevirtv1.VirtualMachine {
	labels := workloadLabels(w, v1alpha1.TierVM)
	run := runStrategy(w.Spec.RestartPolicy, replicas)
	cores := uint32(max(1, (w.Spec.Resources.CPU.MilliValue()+999)/1000))
	spec := kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{
			CPU: &kubevirtv1.CPU{Cores: cores},
			Resources: kubevirtv1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: w.Spec.Resources.CPU.DeepCopy(), corev1.ResourceMemory: w.Spec.Resources.Memory.DeepCopy(),
			}},
			Devices: kubevirtv1.Devices{
				Interfaces: []kubevirtv1.Interface{{Name: podNetwork, Model: src.nicModel,
					InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}}}},
			},
		},
		Networks:                  []kubevirtv1.Network{{Name: podNetwork, NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}},
		NodeSelector:              w.Spec.Placement.HostSelector,
		TopologySpreadConstraints: spread(w),
	}
	if src.kernelBoot != nil || src.bootloader != nil {
		spec.Domain.Firmware = &kubevirtv1.Firmware{KernelBoot: src.kernelBoot.DeepCopy(), Bootloader: src.bootloader.DeepCopy()}
	}
	vm := &kubevirtv1.VirtualMachine{
		TypeMeta:   typeMeta("kubevirt.io/v1", "VirtualMachine"),
		ObjectMeta: objectMeta(name, r.opts.Namespace, labels),
		Spec:       kubevirtv1.VirtualMachineSpec{RunStrategy: &run},
	}
	disk := src.disk.DeepCopy()
	if src.dataVolume != nil {
		dv := name + "-disk"
		disk.DataVolume = &kubevirtv1.DataVolumeSource{Name: dv}
		vm.Spec.DataVolumeTemplates = []kubevirtv1.DataVolumeTemplateSpec{{
			ObjectMeta: metav1.ObjectMeta{Name: dv, Labels: labels},
			Spec:       *src.dataVolume.DeepCopy(),
		}}
	}
	if disk.ContainerDisk != nil || disk.DataVolume != nil {
		addDisk(&spec, rootDisk, cmp.Or(src.bus, kubevirtv1.DiskBusVirtio), *disk)
	}
	if ci := w.Spec.VM; ci != nil && ci.CloudInit != nil {
		addDisk(&spec, cloudInitDisk, kubevirtv1.DiskBusVirtio, kubevirtv1.VolumeSource{CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{
			UserData: ci.CloudInit.UserData, NetworkData: ci.CloudInit.NetworkData,
		}})
	}
	if h := w.Spec.Health; h != nil {
		spec.ReadinessProbe = &kubevirtv1.Probe{Handler: vmProbeHandler(h), PeriodSeconds: h.IntervalSeconds, FailureThreshold: h.FailureThreshold}
		spec.LivenessProbe = spec.ReadinessProbe.DeepCopy()
	}
	vm.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       spec,
	}
	return vm
}

// addDisk attaches a volume as a disk on bus.
func addDisk(spec *kubevirtv1.VirtualMachineInstanceSpec, name string, bus kubevirtv1.DiskBus, src kubevirtv1.VolumeSource) {
	spec.Domain.Devices.Disks = append(spec.Domain.Devices.Disks, kubevirtv1.Disk{
		Name: name, DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: bus}},
	})
	spec.Volumes = append(spec.Volumes, kubevirtv1.Volume{Name: name, VolumeSource: src})
}

// runStrategy maps the restart policy: Always runs the VM always, OnFailure reruns it when it
// fails, Never runs it once. No replicas keeps it halted.
func runStrategy(p v1alpha1.RestartPolicy, replicas int32) kubevirtv1.VirtualMachineRunStrategy {
	switch {
	case replicas == 0:
		return kubevirtv1.RunStrategyHalted
	case p == v1alpha1.RestartOnFailure:
		return kubevirtv1.RunStrategyRerunOnFailure
	case p == v1alpha1.RestartNever:
		return kubevirtv1.RunStrategyOnce
	}
	return kubevirtv1.RunStrategyAlways
}

// vmProbeHandler probes the guest: http and tcp reach its address; exec runs through the
// guest agent, which the guest must run.
func vmProbeHandler(h *v1alpha1.HealthCheck) kubevirtv1.Handler {
	p := probeHandler(h)
	return kubevirtv1.Handler{HTTPGet: p.HTTPGet, TCPSocket: p.TCPSocket, Exec: p.Exec}
}
