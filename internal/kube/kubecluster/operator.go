package kubecluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// OperatorSelector selects the pods of deploy/operator's Deployment.
const OperatorSelector = "app.kubernetes.io/name=strata-operator"

// kustomization is what DeployOperator reads of deploy/operator's
// kustomization.yaml: the files, the namespace of their namespaced objects
// and the images' new names and tags.
type kustomization struct {
	Namespace string   `json:"namespace"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// DeployOperator runs strata's operator in the cluster the way its users do,
// `make operator-image` and `kubectl apply -k deploy/operator`: it builds
// strata (BuildStrata) and its image (hack/operator-image), imports that
// into the node's containerd under the name the Deployment gives it, creates
// every object of the kustomization's files in their order (namespaced ones
// in its namespace, images renamed as it says), and waits until all the
// Deployment's replicas are Ready. It returns the operator's namespace. The
// CRDs must be installed first (InstallCRDs).
func (c *Cluster) DeployOperator(ctx context.Context) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	dir := filepath.Join(root, "deploy", "operator")
	k, objs, err := readKustomization(dir)
	if err != nil {
		return "", err
	}
	var dep *appsv1.Deployment
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			dep = d
		}
	}
	if dep == nil || len(dep.Spec.Template.Spec.Containers) != 1 {
		return "", fmt.Errorf("%s: want one Deployment with one container", dir)
	}
	ref, err := reference.ParseNormalizedNamed(dep.Spec.Template.Spec.Containers[0].Image)
	if err != nil {
		return "", fmt.Errorf("%s: the operator's image: %w", dir, err)
	}

	// The image as `make operator-image` writes it.
	strata, err := c.BuildStrata(ctx)
	if err != nil {
		return "", err
	}
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	tarball := filepath.Join(c.Dir, "strata-image.tar")
	build := exec.CommandContext(ctx, goBin, "run", "./hack/operator-image", "-program", strata, "-o", tarball, ref.String())
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("hack/operator-image: %w: %s", err, out)
	}
	img, err := os.Open(tarball)
	if err != nil {
		return "", err
	}
	defer img.Close()
	client, err := ctr.New(containerdSocket(c.Dir), ctr.WithTimeout(5*time.Second))
	if err != nil {
		return "", err
	}
	defer client.Close()
	if err := importImage(ctx, client, img); err != nil {
		return "", err
	}

	for _, o := range objs {
		if err := c.create(ctx, o); err != nil {
			return "", fmt.Errorf("%s: %w", dir, err)
		}
	}
	want := 1
	if dep.Spec.Replicas != nil {
		want = int(*dep.Spec.Replicas)
	}
	if _, err := c.WaitReady(ctx, k.Namespace, OperatorSelector, want); err != nil {
		return "", fmt.Errorf("the operator's pods: %w", err)
	}
	return k.Namespace, nil
}

// readKustomization reads dir's kustomization.yaml and the objects of its
// resources, with the namespace and image changes it makes.
func readKustomization(dir string) (kustomization, []kruntime.Object, error) {
	var k kustomization
	kfile := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(kfile)
	if err != nil {
		return k, nil, err
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return k, nil, fmt.Errorf("%s: %w", kfile, err)
	}
	if k.Namespace == "" || len(k.Resources) == 0 {
		return k, nil, fmt.Errorf("%s: want a namespace and resources", kfile)
	}
	var objs []kruntime.Object
	for _, res := range k.Resources {
		path := filepath.Join(dir, res)
		f, err := os.Open(path)
		if err != nil {
			return k, nil, err
		}
		docs, err := readDocuments(f)
		_ = f.Close()
		if err != nil {
			return k, nil, fmt.Errorf("%s: %w", path, err)
		}
		for i, doc := range docs {
			o, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				return k, nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
			}
			if m, ok := o.(metav1.Object); ok && namespaced(o) {
				m.SetNamespace(k.Namespace)
			}
			if d, ok := o.(*appsv1.Deployment); ok {
				renameImages(&d.Spec.Template.Spec, k)
			}
			objs = append(objs, o)
		}
	}
	return k, objs, nil
}

// readDocuments splits a YAML stream into its non-empty documents.
func readDocuments(r io.Reader) ([][]byte, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

// stripComments drops the comment lines of a YAML document.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(append(out, line...), '\n')
		}
	}
	return out
}

// namespaced reports whether o is of a kind that lives in a namespace, of
// the kinds deploy/operator holds.
func namespaced(o kruntime.Object) bool {
	switch o.(type) {
	case *corev1.Namespace, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding:
		return false
	}
	return true
}

// renameImages gives each container's image the new name and tag the
// kustomization says for it.
func renameImages(spec *corev1.PodSpec, k kustomization) {
	for i := range spec.Containers {
		ctn := &spec.Containers[i]
		name, tag, _ := strings.Cut(ctn.Image, ":")
		for _, img := range k.Images {
			if img.Name != name {
				continue
			}
			if img.NewName != "" {
				name = img.NewName
			}
			if img.NewTag != "" {
				tag = img.NewTag
			}
			ctn.Image = name
			if tag != "" {
				ctn.Image += ":" + tag
			}
		}
	}
}

// create creates o, of the kinds deploy/operator holds.
func (c *Cluster) create(ctx context.Context, o kruntime.Object) error {
	cs := c.Client
	opts := metav1.CreateOptions{}
	var err error
	switch v := o.(type) {
	case *corev1.Namespace:
		_, err = cs.CoreV1().Namespaces().Create(ctx, v, opts)
	case *corev1.ServiceAccount:
		_, err = cs.CoreV1().ServiceAccounts(v.Namespace).Create(ctx, v, opts)
	case *rbacv1.ClusterRole:
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, v, opts)
	case *rbacv1.ClusterRoleBinding:
		_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, v, opts)
	case *rbacv1.Role:
		_, err = cs.RbacV1().Roles(v.Namespace).Create(ctx, v, opts)
	case *rbacv1.RoleBinding:
		_, err = cs.RbacV1().RoleBindings(v.Namespace).Create(ctx, v, opts)
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(v.Namespace).Create(ctx, v, opts)
	default:
		return fmt.Errorf("a %T: the harness creates no such object", o)
	}
	if err != nil {
		m, _ := o.(metav1.Object)
		return fmt.Errorf("create %T %s: %w", o, m.GetName(), err)
	}
	return nil
}

// OperatorLogs returns the logs of the operator's pods in ns, each headed
// by its pod's name, for a test that failed.
func (c *Cluster) OperatorLogs(ctx context.Context, ns string) string {
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: OperatorSelector})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		tail := int64(80)
		log, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		fmt.Fprintf(&b, "--- pod %s (%s):\n%s", p.Name, Describe(&p), log)
		if err != nil {
			fmt.Fprintf(&b, "(its log: %v)\n", err)
		}
	}
	return b.String()
}
