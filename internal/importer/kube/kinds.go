package kube

import (
	pathpkg "path"
	"slices"
	"strings"

	"strata.dev/strata/internal/load"
)

// IsKubernetes reports whether a document looks like a Kubernetes object: it has an
// apiVersion and a kind, and the apiVersion is not one of strata's own (strata.dev/...).
func IsKubernetes(doc load.Document) bool {
	return doc.APIVersion != "" && doc.Kind != "" && !load.IsStrata(doc)
}

// Workload kinds.
const (
	kindPod         = "Pod"
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindReplicaSet  = "ReplicaSet"
	kindJob         = "Job"
	kindCronJob     = "CronJob"

	kindReplicationController = "ReplicationController"
)

// served lists, for each workload kind, the apiVersions Kubernetes serves it at, current
// first. The older beta versions are still found in manifests; their pod templates have the
// shape of the current ones, which is all strata reads.
var served = map[string][]string{
	kindPod:         {"v1"},
	kindDeployment:  {"apps/v1", "apps/v1beta2", "apps/v1beta1", "extensions/v1beta1"},
	kindStatefulSet: {"apps/v1", "apps/v1beta2", "apps/v1beta1"},
	kindDaemonSet:   {"apps/v1", "apps/v1beta2", "extensions/v1beta1"},
	kindReplicaSet:  {"apps/v1", "apps/v1beta2", "extensions/v1beta1"},
	kindJob:         {"batch/v1"},
	kindCronJob:     {"batch/v1", "batch/v1beta1", "batch/v2alpha1"},

	kindReplicationController: {"v1"},
}

// builtinGroups are the API groups of Kubernetes itself that serve workload kinds. A kind
// such as Deployment in another group is someone's custom resource, not a workload.
var builtinGroups = []string{"", "apps", "extensions", "batch"}

// group returns the API group of an apiVersion: "" for the core group (v1).
func group(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// isWorkloadKind reports whether kind is one strata imports, in a group of Kubernetes itself.
func isWorkloadKind(apiVersion, kind string) bool {
	_, ok := served[kind]
	return ok && slices.Contains(builtinGroups, group(apiVersion))
}

// isList reports whether an object is a list of objects (kind List, or a typed list such as
// PodList that holds items).
func isList(o *object) bool {
	if o.doc.Kind == "List" {
		return true
	}
	return strings.HasSuffix(o.doc.Kind, "List") && load.Field(resolve(o.doc.Node), "items") != nil
}

// kustomizeGroup is the API group of kustomize's own files.
const kustomizeGroup = "kustomize.config.k8s.io"

// KustomizationReason is why a Kustomization is skipped.
const KustomizationReason = "a Kustomization is a recipe: render it with kubectl kustomize first"

// IsKustomizationFile reports whether a file name is one kustomize reads as its recipe
// (kustomization.yaml, kustomization.yml or Kustomization), which need not say its kind.
func IsKustomizationFile(name string) bool {
	switch pathpkg.Base(strings.ReplaceAll(name, "\\", "/")) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// isKustomization reports whether an object is one of kustomize's (a Kustomization or a
// Component).
func isKustomization(apiVersion string) bool {
	return group(apiVersion) == kustomizeGroup
}
