package kubecmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"strata.dev/strata/internal/cli"
)

const importCompose = `name: storefront
services:
  web:
    image: registry.example/storefront/web:3.2
    ports: ["8080:80"]
    depends_on: [cart]
  cart:
    image: registry.example/storefront/cart:1.9
    environment:
      REDIS_URL: redis://cache:6379
    labels:
      strata.dev/data: confidential
  cache:
    image: redis:7.2
    volumes: ["cache-data:/data"]
volumes:
  cache-data: {}
`

const importManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: payments
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger
  namespace: payments
  annotations:
    strata.dev/trust: untrusted
spec:
  replicas: 2
  selector:
    matchLabels: {app: ledger}
  template:
    metadata:
      labels: {app: ledger}
    spec:
      containers:
      - name: ledger
        image: registry.example/payments/ledger:5.1
        ports:
        - containerPort: 8443
        resources:
          requests: {cpu: 250m, memory: 256Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: ledger
  namespace: payments
spec:
  selector: {app: ledger}
  ports:
  - port: 8443
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: settle
  namespace: payments
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: settle
            image: registry.example/payments/settle:5.1
`

const importVInfo = `VM,Powerstate,Template,CPUs,Memory,OS according to the configuration file,OS according to the VMware Tools,Annotation,Cluster,Host
billing01,poweredOn,False,2,4096,Red Hat Enterprise Linux 8 (64-bit),Red Hat Enterprise Linux 8.9 (Ootpa),,prod,esx01.example
`

// TestImportExportKubernetes: what strata import makes of a compose project, a multi-document
// manifest and a vInfo export is rendered by export kubernetes and accepted, every object of
// it, by a real API server (server-side apply through apply --kubeconfig).
func TestImportExportKubernetes(t *testing.T) {
	dir := t.TempDir()
	inputs := map[string]string{"compose.yaml": importCompose, "k8s.yaml": importManifest, "vinfo.csv": importVInfo}
	var args []string
	for name, text := range inputs {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", p)
	}
	code, stdout, stderr := run(t, append([]string{"import", "-o", "json"}, args...)...)
	if code != cli.ExitOK {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	var list struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Items      []map[string]any `json:"items"`
		Sources    []struct {
			Object string `json:"object"`
			Source struct {
				Format string `json:"format"`
			} `json:"source"`
			Tier string `json:"tier"`
		} `json:"sources"`
		Skipped []any `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("import -o json: %v\n%s", err, stdout)
	}
	if list.Kind != "List" || len(list.Sources) != len(list.Items) || len(list.Skipped) != 2 {
		t.Fatalf("import -o json: kind %s, %d items, %d sources, %d skipped (want the Namespace and the Service)",
			list.Kind, len(list.Items), len(list.Sources), len(list.Skipped))
	}
	tiers := map[string]string{}
	formats := map[string]bool{}
	for _, s := range list.Sources {
		tiers[s.Object] = s.Tier
		formats[s.Source.Format] = true
	}
	for obj, tier := range map[string]string{"Workload/web": "container", "Workload/cart": "sandbox",
		"Workload/ledger": "sandbox", "Workload/billing01": "vm", "Segment/storefront": "", "Segment/payments": ""} {
		if got, ok := tiers[obj]; !ok || got != tier {
			t.Errorf("%s: tier %q (listed %v), want %q", obj, got, ok, tier)
		}
	}
	if len(formats) != 3 {
		t.Errorf("sources come from formats %v, want compose, kubernetes and rvtools", formats)
	}

	// A VMware VM that the importer found no disk for needs a boot source: give it one, as
	// render's hint says (spec.vm.containerDisk), and keep everything else as import wrote it.
	var docs []string
	for _, it := range list.Items {
		spec, _ := it["spec"].(map[string]any)
		traits, _ := spec["traits"].(map[string]any)
		if it["kind"] == "Workload" && traits["imageAvailable"] == false && spec["vm"] == nil {
			name := it["metadata"].(map[string]any)["name"].(string)
			spec["vm"] = map[string]any{"containerDisk": "registry.example/vm/" + name + ":1"}
		}
		b, err := yaml.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	estate := writeFile(t, "estate.yaml", strings.Join(docs, "---\n"))

	code, stdout, stderr = run(t, "export", "kubernetes", "-f", estate, "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	var rendered struct {
		Items []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &rendered); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, it := range rendered.Items {
		kinds[it.Kind]++
	}
	for _, k := range []string{"NetworkPolicy", "Deployment", "StatefulSet", "VirtualMachine", "RuntimeClass"} {
		if kinds[k] == 0 {
			t.Errorf("export renders no %s: %v", k, kinds)
		}
	}

	kc, ns := writeKubeconfig(t), env.Namespace(t)
	code, stdout, stderr = run(t, "apply", "--kubeconfig", kc, "--namespace", ns, "-f", estate)
	if code != cli.ExitOK {
		t.Fatalf("apply --kubeconfig: exit %d\n%s\n%s", code, stdout, stderr)
	}
	created := 0
	for _, l := range lines(stdout) {
		if strings.HasSuffix(l, " created") {
			created++
		} else {
			t.Errorf("apply: %q, want created", l)
		}
	}
	if created != len(rendered.Items) {
		t.Errorf("the API server took %d objects, export renders %d:\n%s", created, len(rendered.Items), stdout)
	}

	// apply and export read the inputs themselves the same way import does: without the VM
	// (which needs the boot source given above), the compose file and manifest render the
	// same objects as import's documents of them.
	code, direct, stderr := run(t, "export", "kubernetes", "-f", filepath.Join(dir, "compose.yaml"), "-f", filepath.Join(dir, "k8s.yaml"), "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("export of the inputs: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "skipped: "+filepath.Join(dir, "k8s.yaml")+":29, Service payments/ledger") {
		t.Errorf("export does not say what it skipped:\n%s", stderr)
	}
	var viaInputs struct{ Items []any }
	if err := json.Unmarshal([]byte(direct), &viaInputs); err != nil {
		t.Fatal(err)
	}
	if want := len(rendered.Items) - kinds["VirtualMachine"] - 1; len(viaInputs.Items) != want { // and the VM's Service
		t.Errorf("export of the inputs renders %d objects, want %d", len(viaInputs.Items), want)
	}
}
