package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
)

// calls records the API calls made through a rest.Config, as RBAC sees them: group,
// resource (with subresource) and verb.
type calls struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *calls) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if k, ok := callOf(req); ok {
				c.mu.Lock()
				c.seen[k] = true
				// A reflector lists by a streaming watch (sendInitialEvents) and falls
				// back to a plain list when the server cannot stream: it needs both.
				if strings.HasSuffix(k, ":watch") && req.URL.Query().Get("sendInitialEvents") == "true" {
					c.seen[strings.TrimSuffix(k, ":watch")+":list"] = true
				}
				// A server-side apply that creates its object is authorized as a
				// create as well as a patch.
				if strings.HasSuffix(k, ":patch") && err == nil && resp.StatusCode == http.StatusCreated {
					c.seen[strings.TrimSuffix(k, ":patch")+":create"] = true
				}
				c.mu.Unlock()
			}
			return resp, err
		})
	})
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// callOf names a request to a resource as group/resource:verb; discovery and other
// non-resource requests are not calls RBAC rules grant.
func callOf(req *http.Request) (string, bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return "", false
	}
	if parts[0] == "namespaces" && len(parts) >= 3 {
		parts = parts[2:]
	}
	resource, named := parts[0], len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	var verb string
	switch req.Method {
	case http.MethodGet:
		switch {
		case named:
			verb = "get"
		case req.URL.Query().Get("watch") == "true":
			verb = "watch"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	}
	return group + "/" + resource + ":" + verb, true
}

// granted lists what rules grant, as callOf names calls.
func granted(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, g+"/"+res+":"+v)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestRBACCoversCalls runs the operator, leader election on, through every path it has
// (a Segment; container, sandbox and VM Workloads; a status from a controller; the
// predictive scaler asking the metrics API, which the test API server does not serve, and
// warning; a deletion that takes the last user of a RuntimeClass away), records every API
// call it makes, and wants exactly the calls that Permissions and LeaderElectionPermissions
// grant.
func TestRBACCoversCalls(t *testing.T) {
	c := testClient(t)
	ns := env.Namespace(t)
	rec := &calls{seen: map[string]bool{}}
	stop := startOperator(t, rec.wrap(env.Config), ns, true)
	ctx := context.Background()

	seg := crd.SegmentFromDocument(&v1alpha1.Segment{Metadata: v1alpha1.ObjectMeta{Name: "shop"},
		Spec: v1alpha1.SegmentSpec{Egress: v1alpha1.EgressDeny}}, ns)
	if err := c.Create(ctx, seg); err != nil {
		t.Fatal(err)
	}
	scaling := &v1alpha1.Scaling{Min: 1, Max: 3, TargetCPUPercent: 70, Predictive: true}
	ws := []*crd.Workload{
		workload(ns, "web", v1alpha1.WorkloadSpec{Image: "registry.example/web:1", Segment: "shop", Scaling: scaling,
			Ports: []v1alpha1.Port{{Name: "http", Port: 8080, Publish: 18080}}}),
		workload(ns, "plugins", v1alpha1.WorkloadSpec{Image: "registry.example/plugins:1", Traits: v1alpha1.Traits{Trust: v1alpha1.TrustUntrusted}}),
		workload(ns, "edge", v1alpha1.WorkloadSpec{Isolation: v1alpha1.Isolation(v1alpha1.TierVM),
			VM: &v1alpha1.VMSource{ContainerDisk: "registry.example/disks/edge:1"}}),
		workload(ns, "db", v1alpha1.WorkloadSpec{Image: "registry.example/db:1", Ports: []v1alpha1.Port{{Name: "pg", Port: 5432}},
			Volumes: []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}}),
	}
	for _, w := range ws {
		if err := c.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	var d appsv1.Deployment
	eventually(t, "the Deployment of web", func() error {
		return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &d)
	})
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, ReadyReplicas: 1}
	if err := c.Status().Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web running", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ws[0]), ws[0]); err != nil {
			return err
		}
		if ws[0].Status == nil || ws[0].Status.Phase != v1alpha1.PhaseRunning {
			return errors.New("status " + statusString(ws[0].Status))
		}
		return nil
	})
	eventually(t, "the predictive scaler's warning on web", func() error {
		if len(workloadEvents(t, c, ns, "web", "MetricsUnavailable")) == 0 {
			return errors.New("no MetricsUnavailable event")
		}
		return nil
	})
	eventually(t, "db's StatefulSet", func() error {
		return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db"}, &appsv1.StatefulSet{})
	})
	// Deleting every Workload prunes every kind: HorizontalPodAutoscaler, NetworkPolicy
	// (web-published), Service, Deployment, StatefulSet, VirtualMachine and RuntimeClass.
	for _, w := range ws {
		if err := c.Delete(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range ws {
		eventually(t, w.Name+" released", func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(w), w); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%w)", err)
			}
			return nil
		})
	}
	stop()

	rec.mu.Lock()
	var made []string
	for k := range rec.seen {
		made = append(made, k)
	}
	rec.mu.Unlock()
	slices.Sort(made)
	want := granted(append(slices.Clone(Permissions), LeaderElectionPermissions...))
	for _, k := range made {
		if !slices.Contains(want, k) {
			t.Errorf("the operator called %s, which its permissions do not grant", k)
		}
	}
	for _, k := range want {
		if !slices.Contains(made, k) {
			t.Errorf("the permissions grant %s, which the operator never called", k)
		}
	}
}

// TestRBACManifest: deploy/operator/rbac.yaml grants exactly Permissions cluster-wide and
// LeaderElectionPermissions in the operator's namespace, to the operator's service account.
func TestRBACManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "operator", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var clusterRules, roleRules []rbacv1.PolicyRule
	var bound []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			clusterRules = r.Rules
		case "Role":
			var r rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			roleRules = r.Rules
		case "ClusterRoleBinding", "RoleBinding":
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			for _, s := range b.Subjects {
				bound = append(bound, head.Kind+" "+b.RoleRef.Name+" to "+s.Kind+" "+s.Namespace+"/"+s.Name)
			}
		}
	}
	if got, want := granted(clusterRules), granted(Permissions); !slices.Equal(got, want) {
		t.Errorf("ClusterRole grants\n%v\nPermissions are\n%v", got, want)
	}
	if got, want := granted(roleRules), granted(LeaderElectionPermissions); !slices.Equal(got, want) {
		t.Errorf("Role grants\n%v\nLeaderElectionPermissions are\n%v", got, want)
	}
	slices.Sort(bound)
	wantBound := []string{
		"ClusterRoleBinding strata-operator to ServiceAccount strata-system/strata-operator",
		"RoleBinding strata-operator-leader-election to ServiceAccount strata-system/strata-operator",
	}
	if !slices.Equal(bound, wantBound) {
		t.Errorf("bindings %v, want %v", bound, wantBound)
	}
}
