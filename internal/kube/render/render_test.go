package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/golden"
	"strata.dev/strata/internal/load"
)

// readDocuments reads the Workloads and Segments of a file of strata documents.
func readDocuments(t testing.TB, file string) Documents {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, errs := load.File(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var docs Documents
	for _, o := range objs {
		switch v := o.Object.(type) {
		case *v1alpha1.Workload:
			docs.Workloads = append(docs.Workloads, *v)
		case *v1alpha1.Segment:
			docs.Segments = append(docs.Segments, *v)
		default:
			t.Fatalf("%s: unexpected %T", file, v)
		}
	}
	return docs
}

func renderEstate(t *testing.T) *Result {
	t.Helper()
	res, err := Render(readDocuments(t, filepath.Join("testdata", "estate.yaml")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestGolden renders the mixed estate as YAML and as a JSON List, with its notes.
func TestGolden(t *testing.T) {
	res := renderEstate(t)
	y, err := YAML(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "estate.golden.yaml"), y)
	j, err := JSON(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "estate.golden.json"), j)
	var notes strings.Builder
	for _, n := range res.Notes {
		notes.WriteString(n.String() + "\n")
	}
	golden.Compare(t, filepath.Join("testdata", "estate.notes.txt"), []byte(notes.String()))
}

// TestEstateShape checks what the golden files show, so that an -update cannot quietly
// accept a wrong mapping.
func TestEstateShape(t *testing.T) {
	res := renderEstate(t)
	kinds := map[string][]string{}
	for i, o := range res.Objects {
		k := o.GetObjectKind().GroupVersionKind().Kind
		kinds[k] = append(kinds[k], o.GetName())
		if i == 0 {
			continue
		}
		prev := res.Objects[i-1]
		pk := prev.GetObjectKind().GroupVersionKind().Kind
		if kindOrder[pk] > kindOrder[k] || (kindOrder[pk] == kindOrder[k] && prev.GetName() > o.GetName()) {
			t.Errorf("%s %s comes after %s %s", k, o.GetName(), pk, prev.GetName())
		}
	}
	want := map[string][]string{
		"RuntimeClass":   {"gvisor"},
		"NetworkPolicy":  {"segment-data", "segment-default", "segment-shop", "segment-web", "storefront-published"},
		"Service":        {"bastion", "catalog-db", "ledger", "netprobe", "plugin-runner", "router", "storefront"},
		"Deployment":     {"nightly-report", "plugin-runner", "storefront"},
		"StatefulSet":    {"catalog-db"},
		"VirtualMachine": {"bastion", "dc02", "ledger", "legacy-app", "netprobe-0", "netprobe-1", "router"},

		"HorizontalPodAutoscaler": {"storefront"},
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("objects by kind:\n got %v\nwant %v", kinds, want)
	}
	for _, o := range res.Objects {
		l := o.GetLabels()
		if l[LabelManagedBy] != ManagedBy || l[LabelName] == "" {
			t.Errorf("%s %s: labels %v lack the recommended ones", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), l)
		}
		switch v := o.(type) {
		case *appsv1.Deployment:
			checkTemplateLabels(t, v.Name, v.Spec.Template.Labels)
			if scaled := v.Name == "storefront"; scaled != (v.Spec.Replicas == nil) {
				t.Errorf("deployment %s: replicas %v; the count is left to the HPA exactly when the workload scales", v.Name, v.Spec.Replicas)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			s := v.Spec
			if s.ScaleTargetRef.Kind != "Deployment" || s.ScaleTargetRef.Name != "storefront" || *s.MinReplicas != 2 || s.MaxReplicas != 6 ||
				*s.Metrics[0].Resource.Target.AverageUtilization != 60 || *s.Behavior.ScaleDown.StabilizationWindowSeconds != 120 {
				t.Errorf("autoscaler %s: %+v, want storefront's Deployment between 2 and 6 at 60%% cpu, 120 s down window", v.Name, s)
			}
		case *appsv1.StatefulSet:
			checkTemplateLabels(t, v.Name, v.Spec.Template.Labels)
		case *kubevirtv1.VirtualMachine:
			checkTemplateLabels(t, v.Name, v.Spec.Template.ObjectMeta.Labels)
			checkVMDevices(t, v)
		}
	}
	var joined strings.Builder
	for _, n := range res.Notes {
		joined.WriteString(n.String() + "\n")
	}
	for _, s := range []string{
		"workload netprobe: runs as a VM from image registry.example/tools/netprobe:3 used as a containerDisk",
		"workload ledger: each VM boots a clone of claim ledger-disk",
		"workload nightly-report: restartPolicy OnFailure does not map",
		"workload catalog-db: volume scratch gives no size",
		"workload storefront: spec.scaling.predictive has no Kubernetes object",
		"workload legacy-app: spec.vm.disk.bus ide is rendered as sata",
		"workload legacy-app: spec.vm.disk /srv/appliances/legacy-app.ova is an OVA",
	} {
		if !strings.Contains(joined.String(), s) {
			t.Errorf("notes lack %q:\n%s", s, joined.String())
		}
	}
}

// checkVMDevices checks the firmware, root disk bus and NIC model of the estate's VMs:
// dc02 (a Windows guest from VMware: UEFI, SATA, e1000), legacy-app (BIOS, IDE as SATA)
// and the others (the defaults: no bootloader, virtio).
func checkVMDevices(t *testing.T, vm *kubevirtv1.VirtualMachine) {
	t.Helper()
	d := vm.Spec.Template.Spec.Domain
	var efi, bios bool
	if d.Firmware != nil && d.Firmware.Bootloader != nil {
		efi = d.Firmware.Bootloader.EFI != nil && d.Firmware.Bootloader.EFI.SecureBoot != nil && !*d.Firmware.Bootloader.EFI.SecureBoot
		bios = d.Firmware.Bootloader.BIOS != nil
	}
	var bus kubevirtv1.DiskBus
	for _, disk := range d.Devices.Disks {
		if disk.Name == rootDisk {
			bus = disk.Disk.Bus
		}
	}
	model := d.Devices.Interfaces[0].Model
	want, ok := map[string]struct {
		efi, bios bool
		bus       kubevirtv1.DiskBus
		model     string
	}{
		"dc02":       {efi: true, bus: kubevirtv1.DiskBusSATA, model: "e1000"},
		"legacy-app": {bios: true, bus: kubevirtv1.DiskBusSATA},
		"router":     {}, // a kernel without a root disk
	}[vm.Name]
	if !ok {
		want.bus = kubevirtv1.DiskBusVirtio
	}
	if efi != want.efi || bios != want.bios || bus != want.bus || model != want.model {
		t.Errorf("VM %s: efi %v, bios %v, root disk bus %q, NIC model %q; want %+v", vm.Name, efi, bios, bus, model, want)
	}
}

func checkTemplateLabels(t *testing.T, name string, l map[string]string) {
	t.Helper()
	for _, k := range []string{LabelSegment, LabelWorkload, LabelTier, LabelName, LabelManagedBy} {
		if l[k] == "" {
			t.Errorf("%s: pod template lacks label %s: %v", name, k, l)
		}
	}
}

// scheme knows every kind Render makes.
func scheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, autoscalingv2.AddToScheme, corev1.AddToScheme, networkingv1.AddToScheme, nodev1.AddToScheme, kubevirtv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestRoundTrip decodes every rendered object, from the YAML stream and from the JSON List,
// with the typed decoders in strict mode (an unknown or duplicated field fails), and wants
// back exactly what was rendered.
func TestRoundTrip(t *testing.T) {
	res := renderEstate(t)
	s := scheme(t)
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
	y, err := YAML(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(y), "\n---\n")
	if len(docs) != len(res.Objects) {
		t.Fatalf("the YAML stream has %d documents for %d objects", len(docs), len(res.Objects))
	}
	for i, doc := range docs {
		checkDecoded(t, strict, []byte(doc), res.Objects[i])
	}
	j, err := JSON(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(j, &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != len(res.Objects) {
		t.Fatalf("JSON: %s %s with %d items, want v1 List with %d", list.APIVersion, list.Kind, len(list.Items), len(res.Objects))
	}
	for i, item := range list.Items {
		checkDecoded(t, strict, item, res.Objects[i])
	}
}

func checkDecoded(t *testing.T, dec runtime.Decoder, data []byte, want Object) {
	t.Helper()
	got, gvk, err := dec.Decode(data, nil, nil)
	if err != nil {
		t.Errorf("%s %s does not decode strictly: %v", want.GetObjectKind().GroupVersionKind().Kind, want.GetName(), err)
		return
	}
	if reflect.TypeOf(got) != reflect.TypeOf(want) {
		t.Errorf("%s decodes as %T, want %T", gvk, got, want)
		return
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("%s %s changes in a round trip:\n%s", gvk.Kind, want.GetName(), data)
	}
}

// TestRenderLeavesInputAlone: Render defaults copies, not the caller's documents.
func TestRenderLeavesInputAlone(t *testing.T) {
	docs := Documents{Workloads: []v1alpha1.Workload{{
		Metadata: v1alpha1.ObjectMeta{Name: "web"},
		Spec:     v1alpha1.WorkloadSpec{Image: "nginx", Ports: []v1alpha1.Port{{Port: 80}}},
	}}}
	before, _ := json.Marshal(docs)
	if _, err := Render(docs, Options{}); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(docs)
	if !bytes.Equal(before, after) {
		t.Errorf("Render changed its input:\n%s\n%s", before, after)
	}
}

// TestOptions: namespace and runtime class reach every object that has them.
func TestOptions(t *testing.T) {
	docs := Documents{Workloads: []v1alpha1.Workload{{
		Metadata: v1alpha1.ObjectMeta{Name: "sb"},
		Spec:     v1alpha1.WorkloadSpec{Isolation: "sandbox", Image: "nginx"},
	}}}
	res, err := Render(docs, Options{Namespace: "prod", RuntimeClass: "kata"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		switch v := o.(type) {
		case *nodev1.RuntimeClass:
			if v.Name != "kata" || v.Handler != "kata" || v.Namespace != "" {
				t.Errorf("RuntimeClass %s handler %s namespace %q", v.Name, v.Handler, v.Namespace)
			}
			if v.Overhead == nil || v.Overhead.PodFixed.Memory().String() != SandboxMemoryOverhead {
				t.Errorf("RuntimeClass overhead %+v, want podFixed memory %s", v.Overhead, SandboxMemoryOverhead)
			}
		case *appsv1.Deployment:
			if v.Namespace != "prod" || v.Spec.Template.Spec.RuntimeClassName == nil || *v.Spec.Template.Spec.RuntimeClassName != "kata" {
				t.Errorf("Deployment namespace %q runtimeClassName %v", v.Namespace, v.Spec.Template.Spec.RuntimeClassName)
			}
		default:
			if o.GetNamespace() != "prod" {
				t.Errorf("%s in namespace %q", o.GetName(), o.GetNamespace())
			}
		}
	}
}

// TestErrors: what cannot be rendered is refused, naming the workload, the field and what
// to do; every problem is reported, and no objects come back.
func TestErrors(t *testing.T) {
	size := func(s string) *v1alpha1.Workload {
		return &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: s}}
	}
	tests := []struct {
		name string
		w    func() *v1alpha1.Workload
		want []string
	}{
		{"container without image", func() *v1alpha1.Workload {
			w := size("vmonly")
			w.Spec.Isolation = "container"
			return w
		}, []string{"workload vmonly: spec.image:", "set spec.image"}},
		{"kernel without image", func() *v1alpha1.Workload {
			w := size("k")
			w.Spec.Isolation = "vm"
			w.Spec.VM = &v1alpha1.VMSource{Kernel: "/boot/vmlinuz"}
			return w
		}, []string{"workload k: spec.vm.kernel:", "set spec.image to an image that holds the kernel at /boot/vmlinuz"}},
		{"disk without size", func() *v1alpha1.Workload {
			w := size("d")
			w.Spec.VM = &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: "d.qcow2"}}
			w.Spec.Isolation = "vm"
			return w
		}, []string{"workload d: spec.resources.disk:", "virtual size of d.qcow2"}},
		{"vm with volumes", func() *v1alpha1.Workload {
			w := size("v")
			w.Spec.Isolation = "vm"
			w.Spec.Image = "x"
			w.Spec.Volumes = []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}
			return w
		}, []string{"workload v: spec.volumes:"}},
		{"name not a service name", func() *v1alpha1.Workload {
			w := size("1web")
			w.Spec.Image = "x"
			return w
		}, []string{"workload 1web: metadata.name:", "start with a letter"}},
		{"publish on an own port", func() *v1alpha1.Workload {
			w := size("p")
			w.Spec.Image = "x"
			w.Spec.Ports = []v1alpha1.Port{{Port: 80, Publish: 81}, {Port: 81}}
			return w
		}, []string{"workload p: spec.ports[0].publish:", "host port 81"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "fine"}, Spec: v1alpha1.WorkloadSpec{Image: "x"}}
			res, err := Render(Documents{Workloads: []v1alpha1.Workload{ok, *tt.w()}}, Options{})
			if err == nil {
				t.Fatalf("no error; objects %d", len(res.Objects))
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Errorf("error %v is not an *Error", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}
