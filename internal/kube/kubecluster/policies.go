package kubecluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The NetworkPolicy engine is SIG Network's kube-network-policies
// (hack/kube-network-policies, built by hack/kube-binaries.sh), run the way
// its project installs it: a DaemonSet in kube-system on the host network,
// privileged (it programs nftables and takes connections' first packets
// from an nfqueue), with a service account that may list and watch pods,
// namespaces and NetworkPolicies. Its image is built here from the binary,
// like the pause image.
const (
	policyEngine      = "kube-network-policies"
	PolicyEngineImage = "strata.test/kube-network-policies:1"
)

// policyEngineBinary returns the engine's binary in the assets directory,
// or why there is none.
func policyEngineBinary(assets string) (path, why string) {
	p := filepath.Join(assets, policyEngine)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Sprintf("no %s: run `STRATA_KUBE_CLUSTER=1 hack/kube-binaries.sh` (it builds the NetworkPolicy engine)", p)
	}
	return p, ""
}

// probeQueue checks, in the cluster's network namespace, that the kernel
// has what the engine needs and the kernels of this host kind may lack:
// the nftables queue expression (CONFIG_NFT_QUEUE), through which the
// engine takes each new connection's first packet to decide on it. It
// returns why the engine cannot run, or "".
func (c *Cluster) probeQueue() string {
	const nft = "/usr/sbin/nft"
	if _, err := os.Stat(nft); err != nil {
		return "no " + nft + ": install Debian's nftables (make host-setup)"
	}
	const table = "strata-kc-probe"
	script := "add table inet " + table + "\n" +
		"add chain inet " + table + " c { type filter hook forward priority 0; }\n" +
		"add rule inet " + table + " c queue num 100 bypass\n"
	cmd := exec.Command("nsenter", "--net=/run/netns/"+c.Name, nft, "-f", "-") //nolint:gosec // G204: fixed arguments
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	_ = exec.Command("nsenter", "--net=/run/netns/"+c.Name, nft, "delete", "table", "inet", table).Run() //nolint:gosec // G204: fixed arguments
	if err != nil {
		return fmt.Sprintf("this kernel has no nftables queue expression (CONFIG_NFT_QUEUE; `nft add rule ... queue` fails: %s): "+
			"kube-network-policies decides on each new connection's first packet, which that expression hands it; "+
			"a kernel built with CONFIG_NFT_QUEUE lets it run", strings.Join(strings.Fields(string(out)), " "))
	}
	return ""
}

// EnforceNetworkPolicies deploys the NetworkPolicy engine and waits until
// its pod runs. Until it is called, NetworkPolicies are stored but nothing
// enforces them. It fails when the engine was not built
// (Cluster.NoPolicyEngine says why; a test skips with it).
func (c *Cluster) EnforceNetworkPolicies(ctx context.Context) error {
	if c.NoPolicyEngine != "" {
		return fmt.Errorf("no NetworkPolicy engine: %s", c.NoPolicyEngine)
	}
	const ns = "kube-system"
	cs := c.Client
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: policyEngine},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("policy engine: %w", err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: policyEngine},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
		},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("policy engine: %w", err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policyEngine},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: policyEngine},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: policyEngine, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("policy engine: %w", err)
	}
	labels := map[string]string{"k8s-app": policyEngine}
	privileged := true
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: policyEngine, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:        true,
					ServiceAccountName: policyEngine,
					Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{
						Name: policyEngine, Image: PolicyEngineImage, ImagePullPolicy: corev1.PullNever,
						Command: []string{"/" + policyEngine,
							"--hostname-override=" + nodeName,
							// containerd 1.6 has no NRI; the engine then learns
							// pods' addresses from the API server.
							"--disable-nri",
							// The conntrack race it works around is fixed in
							// kernels from 6.12 on; this host kind runs 6.18.
							"--netfilter-bug-1766-fix=false",
							"--metrics-bind-address=127.0.0.1:9080",
							"--v=2"},
						SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
					}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("policy engine: %w", err)
	}
	if _, err := c.WaitReady(ctx, ns, "k8s-app="+policyEngine, 1); err != nil {
		return fmt.Errorf("policy engine: %w", err)
	}
	return nil
}

// logPolicyEngine logs the end of the NetworkPolicy engine's log.
func (c *Cluster) logPolicyEngine(ctx context.Context, tb testing.TB) {
	pods, err := c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=" + policyEngine})
	if err != nil || len(pods.Items) == 0 {
		return
	}
	tail := int64(60)
	b, err := c.Client.CoreV1().Pods("kube-system").GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
	if err == nil {
		tb.Logf("the NetworkPolicy engine's log ends:\n%s", b)
	}
}
