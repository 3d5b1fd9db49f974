package kubecluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProvideVolume makes the storage a claim asks for, as a cluster's
// administrator does where no provisioner runs (the test cluster has
// none): a hostPath PersistentVolume of size, a directory under the
// cluster's own, reserved for the claim ns/claim (its claimRef), so the
// controller manager binds that claim to it and no other. It returns the
// directory, where a test can see what the pods wrote.
func (c *Cluster) ProvideVolume(ctx context.Context, ns, claim, size string) (string, error) {
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return "", fmt.Errorf("volume for claim %s/%s: size %q: %w", ns, claim, size, err)
	}
	dir := filepath.Join(c.Dir, "volumes", ns, claim)
	// Every user of the pods may write it, as an empty claim's volume:
	// a workload's user is any uid.
	if err := os.MkdirAll(dir, 0o777); err != nil { //nolint:gosec // G301: see above
		return "", err
	}
	if err := os.Chmod(dir, 0o777); err != nil { //nolint:gosec // G302: the umask must not narrow it
		return "", err
	}
	dirType := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + claim},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: q},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType}},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: claim},
		},
	}
	if _, err := c.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("volume for claim %s/%s: %w", ns, claim, err)
	}
	return dir, nil
}
