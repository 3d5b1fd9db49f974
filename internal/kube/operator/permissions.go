package operator

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// Permissions are every API call the controller makes, cluster-wide, as RBAC rules; the
// ClusterRole in deploy/operator/rbac.yaml grants exactly these:
//
//   - its own resources: watched through the cache (list, watch); Workloads updated for the
//     finalizer, and their status subresource written;
//   - what render makes: read before applying (get), applied (patch; a server-side apply
//     that creates its object is authorized as a create too, so create), listed and deleted
//     by prune and by Status; Deployments, StatefulSets and VirtualMachines also watched, to
//     write the status when their controllers report;
//   - RuntimeClasses: cluster-scoped, so the role is a ClusterRole even when the operator
//     watches one namespace; Deployments and StatefulSets are listed in every namespace to
//     know whether a RuntimeClass is still in use;
//   - the predictive scaler: the metrics API's PodMetrics listed (by label selector) for
//     demand, pods listed (by label) for their start-up times, which make the lead time, and
//     events created on Workloads (Scaled, MetricsUnavailable). It writes its
//     floor to status.scaling (workloads/status update); the reconcile applies it as the
//     HorizontalPodAutoscaler's minReplicas (horizontalpodautoscalers patch).
var Permissions = []rbacv1.PolicyRule{
	{APIGroups: []string{"strata.dev"}, Resources: []string{"segments"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"strata.dev"}, Resources: []string{"workloads"}, Verbs: []string{"list", "update", "watch"}},
	{APIGroups: []string{"strata.dev"}, Resources: []string{"workloads/status"}, Verbs: []string{"update"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"create", "delete", "get", "list", "patch", "watch"}},
	{APIGroups: []string{"kubevirt.io"}, Resources: []string{"virtualmachines"}, Verbs: []string{"create", "delete", "get", "list", "patch", "watch"}},
	{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"create", "delete", "get", "list", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"create", "delete", "get", "list", "patch"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"create", "delete", "get", "list", "patch"}},
	{APIGroups: []string{"node.k8s.io"}, Resources: []string{"runtimeclasses"}, Verbs: []string{"create", "delete", "get", "list", "patch"}},
	{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods"}, Verbs: []string{"list"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
}

// LeaderElectionPermissions are the calls of leader election (--leader-elect), in the
// operator's own namespace only: the Role in deploy/operator/rbac.yaml grants exactly these.
var LeaderElectionPermissions = []rbacv1.PolicyRule{
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create", "get", "update"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
}
