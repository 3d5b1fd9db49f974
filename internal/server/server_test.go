package server_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// start runs a server over a fresh store on a unix socket and returns a client for it.
func start(t *testing.T) (*client.Client, *store.Store) {
	t.Helper()
	return startWith(t, func(*server.Options) {})
}

const web = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: localhost/web:1
  replicas: 2
  traits: {data: confidential}
`

func TestCreateGetUpdateDelete(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	var w v1alpha1.Workload
	if err := c.Create(ctx, "workloads", []byte(web), false, &w); err != nil {
		t.Fatal(err)
	}
	if w.Status == nil || w.Status.Tier != v1alpha1.TierSandbox || len(w.Status.Reasons) != 1 || w.Status.Reasons[0].Rule != "sensitive-data" {
		t.Fatalf("admission did not assess: %+v", w.Status)
	}
	if w.Metadata.ResourceVersion == "" || w.Metadata.Generation != 1 || w.Metadata.UID == "" || w.Metadata.CreationTimestamp == nil {
		t.Errorf("server-set metadata missing: %+v", w.Metadata)
	}
	if err := c.Create(ctx, "workloads", []byte(web), false, nil); client.Reason(err) != server.ReasonAlreadyExists {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}

	var got v1alpha1.Workload
	if err := c.Get(ctx, "workloads", "web", &got); err != nil || got.Spec.ReplicaCount() != 2 {
		t.Fatalf("get: %v %+v", err, got.Spec)
	}

	updated := strings.Replace(web, "replicas: 2", "replicas: 3", 1)
	var u v1alpha1.Workload
	if err := c.Update(ctx, "workloads", "web", []byte(updated), false, &u); err != nil {
		t.Fatal(err)
	}
	if u.Metadata.Generation != 2 || u.Spec.ReplicaCount() != 3 || u.Status.Tier != v1alpha1.TierSandbox {
		t.Errorf("update: generation %d replicas %d tier %s", u.Metadata.Generation, u.Spec.ReplicaCount(), u.Status.Tier)
	}
	stale := strings.Replace(updated, "metadata: {name: web}", "metadata: {name: web, resourceVersion: \""+w.Metadata.ResourceVersion+"\"}", 1)
	if err := c.Update(ctx, "workloads", "web", []byte(stale), false, nil); client.Reason(err) != server.ReasonConflict {
		t.Errorf("stale update: %v, want Conflict", err)
	}

	var list struct {
		Items []v1alpha1.Workload `json:"items"`
	}
	if err := c.List(ctx, "workloads", &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %d", err, len(list.Items))
	}
	// A delete marks the workload; the controller (not running here) removes it later.
	if err := c.Delete(ctx, "workloads", "web", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "workloads", "web", &got); err != nil || got.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested] == "" {
		t.Errorf("get after delete: %v, annotations %v", err, got.Metadata.Annotations)
	}
	if err := c.Delete(ctx, "workloads", "web", true); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "workloads", "web", &got); !client.IsNotFound(err) {
		t.Errorf("get after a forced delete: %v", err)
	}
	if err := c.Delete(ctx, "workloads", "web", false); !client.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
}

// TestAdmissionErrors: invalid objects are refused with every problem placed in the body.
func TestAdmissionErrors(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	bad := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec:\n  replicas: many\n  resources: {memory: 1GB}\n"
	err := c.Create(ctx, "workloads", []byte(bad), false, nil)
	if client.Reason(err) != server.ReasonInvalid {
		t.Fatalf("got %v, want Invalid", err)
	}
	want := "request:5:13: spec.replicas: expected an integer, got the string \"many\"\nrequest:6:23: spec.resources.memory: invalid quantity \"1GB\""
	if !strings.HasPrefix(err.Error(), want[:60]) || !strings.Contains(err.Error(), "request:6:23: spec.resources.memory") {
		t.Errorf("error:\n%v\nwant lines like:\n%s", err, want)
	}
	seg := "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: db}\n"
	if err := c.Create(ctx, "workloads", []byte(seg), false, nil); client.Reason(err) != server.ReasonInvalid || !strings.Contains(err.Error(), "does not belong under workloads") {
		t.Errorf("a segment posted as a workload: %v", err)
	}
	if err := c.Get(ctx, "gadgets", "x", nil); !client.IsNotFound(err) || !strings.Contains(err.Error(), "no resource") {
		t.Errorf("unknown resource: %v", err)
	}
}

// TestNodeVMInStatus: the daemon stores where a workload's replicas run; placement.nodeVM
// never on a class the policy sends into node VMs is admitted without --force, with its
// warning, and an update of the spec assesses again (tier and node VMs).
func TestNodeVMInStatus(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	doc := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: x, labels: {strata.dev/tenant: acme}}\n" +
		"spec: {image: i, traits: {tenancy: multi}, placement: {nodeVM: never}}\n"
	var w v1alpha1.Workload
	if err := c.Create(ctx, "workloads", []byte(doc), false, &w); err != nil {
		t.Fatal(err)
	}
	nv := w.Status.NodeVM
	if nv == nil || nv.Run || nv.Class != "acme/internal/internal" || nv.Reason != "placement.nodeVM never" ||
		!strings.Contains(nv.Warning, "the policy sends it into node VMs (policy: tenancy multi)") {
		t.Fatalf("create: status.nodeVM %+v, want the host with a warning", nv)
	}
	var u v1alpha1.Workload
	if err := c.Update(ctx, "workloads", "x", []byte(strings.Replace(doc, "{tenancy: multi}, placement: {nodeVM: never}", "{tenancy: multi, trust: untrusted}", 1)), false, &u); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.Workload
	if err := c.Get(ctx, "workloads", "x", &got); err != nil {
		t.Fatal(err)
	}
	if nv := got.Status.NodeVM; nv == nil || !nv.Run || nv.Class != "acme/untrusted/internal" || nv.Reason != "policy: tenancy multi" || nv.Warning != "" {
		t.Errorf("after update: status.nodeVM %+v, want node VMs by the policy", nv)
	}
	if got.Status.Tier != v1alpha1.TierSandbox || u.Status.Tier != v1alpha1.TierSandbox {
		t.Errorf("after update: tier %s (response %s), want sandbox for untrusted code", got.Status.Tier, u.Status.Tier)
	}
}

func TestViolationNeedsForce(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	doc := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {isolation: container, image: i, traits: {trust: untrusted}}\n"
	err := c.Create(ctx, "workloads", []byte(doc), false, nil)
	if client.Reason(err) != server.ReasonInvalid || !strings.Contains(err.Error(), "request:4:19: spec.isolation: isolation container is weaker than sandbox") {
		t.Fatalf("got %v", err)
	}
	var w v1alpha1.Workload
	if err := c.Create(ctx, "workloads", []byte(doc), true, &w); err != nil || w.Status.Tier != v1alpha1.TierContainer {
		t.Fatalf("forced create: %v, tier %v", err, w.Status)
	}
}

func TestWatch(t *testing.T) {
	c, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list struct {
		ResourceVersion string `json:"resourceVersion"`
	}
	if err := c.List(ctx, "workloads", &list); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, "workloads", []byte(web), false, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "workloads", "web", true); err != nil {
		t.Fatal(err)
	}
	var seen []string
	err := c.Watch(ctx, "workloads", list.ResourceVersion, func(typ string, obj json.RawMessage) error {
		var w v1alpha1.Workload
		if err := json.Unmarshal(obj, &w); err != nil {
			return err
		}
		seen = append(seen, typ+" "+w.Metadata.Name)
		if len(seen) == 2 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "ADDED web,DELETED web" {
		t.Errorf("watch saw %v", seen)
	}
}

func TestUnreachable(t *testing.T) {
	c := client.NewUnix(filepath.Join(t.TempDir(), "none.sock"))
	err := c.Get(context.Background(), "workloads", "x", nil)
	if err == nil || !strings.Contains(err.Error(), "is `strata serve` running?") {
		t.Errorf("got %v", err)
	}
}

func TestPortClash(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	a := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  image: i\n  ports: [{port: 80, publish: 18080}]\n"
	if err := c.Create(ctx, "workloads", []byte(a), false, nil); err != nil {
		t.Fatal(err)
	}
	b := strings.ReplaceAll(a, "name: a", "name: b")
	err := c.Create(ctx, "workloads", []byte(b), false, nil)
	if client.Reason(err) != server.ReasonInvalid || !strings.Contains(err.Error(), "request:6:31: spec.ports[0].publish: host port 18080/tcp is already published by workload a") {
		t.Fatalf("got %v", err)
	}
	// Updating a itself is no clash.
	if err := c.Update(ctx, "workloads", "a", []byte(a), false, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentRules(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	seg := func(name, subnet string) []byte {
		return []byte("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: " + name + "}\nspec: {subnet: " + subnet + "}\n")
	}
	if err := c.Create(ctx, "segments", seg("payments", "10.213.40.0/24"), false, nil); err != nil {
		t.Fatal(err)
	}
	err := c.Create(ctx, "segments", seg("web", "10.213.40.128/25"), false, nil)
	if err == nil || !strings.Contains(err.Error(), "spec.subnet") || !strings.Contains(err.Error(), "overlaps segment payments") {
		t.Errorf("overlapping subnet: %v", err)
	}
	// Re-applying the same segment with its own subnet is not an overlap.
	if err := c.Update(ctx, "segments", "payments", seg("payments", "10.213.40.0/24"), false, nil); err != nil {
		t.Errorf("update in place: %v", err)
	}
	for _, name := range []string{"ledger", "api"} {
		wl := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: " + name + "}\nspec: {image: localhost/x:1, segment: payments}\n"
		if err := c.Create(ctx, "workloads", []byte(wl), false, nil); err != nil {
			t.Fatal(err)
		}
	}
	err = c.Delete(ctx, "segments", "payments", false)
	if client.Reason(err) != server.ReasonConflict || !strings.Contains(err.Error(), "still has workloads: api, ledger") {
		t.Errorf("delete of a segment in use: %v", err)
	}
	for _, name := range []string{"ledger", "api"} {
		if err := c.Delete(ctx, "workloads", name, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, "segments", "payments", false); err != nil {
		t.Errorf("delete of an empty segment: %v", err)
	}
}

// fakeHost refuses host port 22 as in use, ports below 1024 as privileged, and subnet
// 192.168.1.0/24 as the uplink's.
type fakeHost struct{}

func (fakeHost) PublishRefusal(_ context.Context, protocol string, port int) (*server.Refusal, error) {
	switch {
	case port == 2222:
		return &server.Refusal{Reason: "host port 2222/" + protocol + " is in use on the host: sshd (pid 7) on 0.0.0.0:2222", Hint: "publish another"}, nil
	case port < 1024:
		return &server.Refusal{Reason: "privileged", Hint: "use --allow-privileged-ports"}, nil
	}
	return nil, nil
}

func (fakeHost) SubnetRefusal(_ context.Context, p netip.Prefix) (*server.Refusal, error) {
	if p.Overlaps(netip.MustParsePrefix("192.168.1.0/24")) {
		return &server.Refusal{Reason: "subnet " + p.String() + " overlaps the host's route 192.168.1.0/24 dev eth0", Hint: "choose another"}, nil
	}
	return nil, nil
}

// TestHostClaims checks that admission asks the host about published ports and given
// subnets, and reports its refusals at the field, with the hint.
func TestHostClaims(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sock := filepath.Join(dir, "s.sock")
	l, err := server.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(server.Options{Store: st, Host: fakeHost{}}).Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c := client.NewUnix(sock)

	wl := func(publish string) []byte {
		return []byte("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  image: i\n  ports: [{port: 80, publish: 18080}, {port: 81, publish: " + publish + "}]\n")
	}
	for _, tc := range []struct{ publish, want string }{
		{"2222", "request:6:59: spec.ports[1].publish: host port 2222/tcp is in use on the host: sshd (pid 7) on 0.0.0.0:2222 (publish another)"},
		{"80", "request:6:59: spec.ports[1].publish: privileged (use --allow-privileged-ports)"},
	} {
		err := c.Create(ctx, "workloads", wl(tc.publish), false, nil)
		if client.Reason(err) != server.ReasonInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("publish %s: %v, want %q", tc.publish, err, tc.want)
		}
	}
	if err := c.Create(ctx, "workloads", wl("18081"), false, nil); err != nil {
		t.Errorf("free ports: %v", err)
	}
	seg := func(subnet string) []byte {
		return []byte("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: s}\nspec: {subnet: " + subnet + "}\n")
	}
	err = c.Create(ctx, "segments", seg("192.168.0.0/16"), false, nil)
	if want := "spec.subnet: subnet 192.168.0.0/16 overlaps the host's route 192.168.1.0/24 dev eth0 (choose another)"; client.Reason(err) != server.ReasonInvalid || !strings.Contains(err.Error(), want) {
		t.Errorf("subnet over the uplink: %v, want %q", err, want)
	}
	if err := c.Create(ctx, "segments", seg("10.213.9.0/24"), false, nil); err != nil {
		t.Errorf("free subnet: %v", err)
	}
}
