#!/usr/bin/env bash
# kube-binaries.sh builds the Kubernetes control plane that strata's tests run
# against (kube-apiserver and etcd) from the Go module proxy, once, into a
# cache directory keyed by the Kubernetes version. With STRATA_KUBE_CLUSTER=1
# it also builds the rest of a single-node cluster (kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy, the NetworkPolicy engine
# kube-network-policies, metrics-server, and gVisor's containerd shim for the runsc that
# hack/build-runsc.sh built) for internal/kube/kubecluster; the plain run,
# the one `make test` does, never builds those.
#
# Each binary is built from a small wrapper module of its own, kept next to
# this script, so that neither k8s.io/kubernetes nor etcd's server ever enters
# strata's go.mod:
#   hack/kube-apiserver/go.mod   requires k8s.io/kubernetes (the version built)
#   hack/etcd/go.mod             requires go.etcd.io/etcd/server/v3
#   hack/kube-controller-manager/go.mod, hack/kube-scheduler/go.mod,
#   hack/kubelet/go.mod, hack/kube-proxy/go.mod
#                                require the same k8s.io/kubernetes version
#   hack/kube-network-policies/go.mod
#                                requires sigs.k8s.io/kube-network-policies
#   hack/metrics-server/go.mod   requires sigs.k8s.io/metrics-server
# containerd-shim-runsc-v1 is built from gvisor.dev/gvisor at the version
# that `runsc --version` reports, so that shim and runsc always match.
# The versions are read from those files; change them there (and run
# `go mod tidy` in that directory) to move to another release. The cluster
# modules must require the same k8s.io/kubernetes version as kube-apiserver's.
#
# The script is idempotent: when the binaries are in the cache and report
# the expected versions, it prints one line and does nothing else. The first
# build of kube-apiserver takes 10-16 minutes on 2 cores (etcd: about 1.5);
# a rebuild with a warm Go build cache takes seconds. The cluster binaries
# share most packages with kube-apiserver, so after it they cost less (see
# docs/kubernetes-tests.md for measured times).
#
# Environment:
#   STRATA_KUBE_ASSETS   directory to build into (default
#                        /var/cache/strata/kube/<kubernetes version>);
#                        internal/kube/kubetest reads the same variable
#   STRATA_KUBE_CLUSTER  1: also build kube-controller-manager, kube-scheduler,
#                        kubelet, kube-proxy, kube-network-policies,
#                        metrics-server and
#                        containerd-shim-runsc-v1 (the last only when runsc
#                        is installed)
#   STRATA_RUNSC         the runsc the shim is built for (default
#                        /opt/strata/bin/runsc)
#   GO                   the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
APISERVER_MOD=$here/kube-apiserver
ETCD_MOD=$here/etcd

log() { printf 'kube-binaries: %s\n' "$*"; }
fail() { printf 'kube-binaries: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# module_version DIR MODULE prints the version of MODULE that DIR/go.mod requires.
module_version() {
	awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"
}

KUBE_VERSION=$(module_version "$APISERVER_MOD" k8s.io/kubernetes)
ETCD_VERSION=$(module_version "$ETCD_MOD" go.etcd.io/etcd/server/v3)
[[ -n $KUBE_VERSION ]] || fail "$APISERVER_MOD/go.mod requires no k8s.io/kubernetes version"
[[ -n $ETCD_VERSION ]] || fail "$ETCD_MOD/go.mod requires no go.etcd.io/etcd/server/v3 version"

ASSETS=${STRATA_KUBE_ASSETS:-/var/cache/strata/kube/$KUBE_VERSION}

# The node and controller binaries of a single-node cluster, each built from
# hack/<name>/ out of k8s.io/kubernetes/cmd/<name>.
CLUSTER_BINARIES=(kube-controller-manager kube-scheduler kubelet kube-proxy)
want_cluster=false
[[ ${STRATA_KUBE_CLUSTER:-} == 1 ]] && want_cluster=true
if $want_cluster; then
	for name in "${CLUSTER_BINARIES[@]}"; do
		v=$(module_version "$here/$name" k8s.io/kubernetes)
		[[ $v == "$KUBE_VERSION" ]] ||
			fail "$here/$name/go.mod requires k8s.io/kubernetes ${v:-(none)}, not $KUBE_VERSION like kube-apiserver's: make them agree"
	done
fi

KNP_MOD=$here/kube-network-policies
KNP_VERSION=$(module_version "$KNP_MOD" sigs.k8s.io/kube-network-policies)
[[ -n $KNP_VERSION ]] || fail "$KNP_MOD/go.mod requires no sigs.k8s.io/kube-network-policies version"
MS_MOD=$here/metrics-server
MS_VERSION=$(module_version "$MS_MOD" sigs.k8s.io/metrics-server)
[[ -n $MS_VERSION ]] || fail "$MS_MOD/go.mod requires no sigs.k8s.io/metrics-server version"
RUNSC=${STRATA_RUNSC:-/opt/strata/bin/runsc}
# runsc_version prints the gvisor.dev/gvisor version of $RUNSC ("" without one).
runsc_version() {
	[[ -x $RUNSC ]] || return 0
	"$RUNSC" --version 2>/dev/null | awk '$1 == "runsc" && $2 == "version" { print $3; exit }'
}

# apiserver_ok and etcd_ok report whether the cached binary runs and is the
# wanted version.
# kube_ok NAME reports whether the cached Kubernetes binary NAME runs and
# is the wanted version.
kube_ok() {
	[[ -x $ASSETS/$1 ]] &&
		[[ $("$ASSETS/$1" --version 2>/dev/null) == "Kubernetes $KUBE_VERSION" ]]
}
apiserver_ok() { kube_ok kube-apiserver; }
# cluster_ok reports whether every cluster binary is cached (true when they
# are not wanted).
cluster_ok() {
	$want_cluster || return 0
	local name
	for name in "${CLUSTER_BINARIES[@]}"; do
		kube_ok "$name" || return 1
	done
	knp_ok && ms_ok && shim_ok
}
# mod_version BINARY prints the version of the module whose main package
# BINARY is (from the build information Go embeds).
mod_version() {
	[[ -x $1 ]] || return 0
	find_go
	"$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}
knp_ok() { [[ $(mod_version "$ASSETS/kube-network-policies") == "$KNP_VERSION" ]]; }
ms_ok() { [[ $(mod_version "$ASSETS/metrics-server") == "$MS_VERSION" ]]; }
# shim_ok: the shim matches runsc, or there is no runsc to match.
shim_ok() {
	local v
	v=$(runsc_version)
	[[ -z $v ]] || [[ $(mod_version "$ASSETS/containerd-shim-runsc-v1") == "$v" ]]
}
etcd_ok() {
	[[ -x $ASSETS/etcd ]] || return 1
	local out
	out=$("$ASSETS/etcd" --version 2>/dev/null) || return 1
	[[ $'\n'$out$'\n' == *$'\n'"etcd Version: ${ETCD_VERSION#v}"$'\n'* ]]
}

if apiserver_ok && etcd_ok && cluster_ok; then
	if $want_cluster; then
		log "kube-apiserver, etcd $ETCD_VERSION and the cluster binaries ($KUBE_VERSION) present in $ASSETS"
	else
		log "kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION present in $ASSETS"
	fi
	exit 0
fi

find_go

mkdir -p "$ASSETS" || fail "cannot create $ASSETS (run as root, or set STRATA_KUBE_ASSETS to a writable directory)"

# One build at a time per cache directory: a second run waits, then finds the
# binaries present.
exec 9>"$ASSETS/.build.lock"
flock 9

# Builds go into a temporary directory next to the cache and a binary moves
# into place only once it runs, so an interrupted build never leaves a
# broken binary at the stable path.
tmp=$(mktemp -d "$ASSETS/.build.XXXXXX")
# On the way out (an interruption too): stop a running build, remove the
# temporary directory.
trap 'stop_build; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# build NAME MODDIR PACKAGE LDFLAGS [PROBE] compiles PACKAGE from the wrapper
# module in MODDIR into $tmp/NAME (run_build prints progress) and checks that
# `NAME PROBE` (default --version) runs. -buildvcs=false: the
# wrapper module lives inside strata's checkout, whose VCS state says nothing
# about the binary.
build() {
	local name=$1 dir=$2 pkg=$3 ldflags=$4 probe=${5:---version} start=$SECONDS rc=0
	run_build "$name" env CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" \
		"$GO" -C "$dir" build -ldflags "$ldflags" -o "$tmp/$name" "$pkg" || rc=$?
	((rc == 0)) || fail "go build $pkg (module $dir) exited with status $rc (output above)"
	"$tmp/$name" "$probe" >/dev/null 2>&1 || fail "the built $name does not run (\`$name $probe\` failed)"
	mv -f "$tmp/$name" "$ASSETS/$name"
	log "$name built in $((SECONDS - start))s: $("$ASSETS/$name" "$probe" 2>&1 | head -n 1)"
}

minor=${KUBE_VERSION#v1.}
minor=${minor%%.*}
# Kubernetes binaries carry their version in these variables (what
# `--version` prints; the kubelet also reports it in its Node status).
KUBE_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

if ! apiserver_ok; then
	log "building kube-apiserver $KUBE_VERSION into $ASSETS (the first build takes 10-16 minutes on 2 cores)"
	build kube-apiserver "$APISERVER_MOD" k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_LDFLAGS"
	apiserver_ok || fail "$ASSETS/kube-apiserver does not report version $KUBE_VERSION"
else
	log "kube-apiserver $KUBE_VERSION present"
fi

if ! etcd_ok; then
	log "building etcd $ETCD_VERSION into $ASSETS (about 1.5 minutes the first time)"
	build etcd "$ETCD_MOD" go.etcd.io/etcd/server/v3 "-s -w"
	etcd_ok || fail "$ASSETS/etcd does not report version $ETCD_VERSION"
else
	log "etcd $ETCD_VERSION present"
fi

if $want_cluster; then
	for name in "${CLUSTER_BINARIES[@]}"; do
		if kube_ok "$name"; then
			log "$name $KUBE_VERSION present"
			continue
		fi
		log "building $name $KUBE_VERSION into $ASSETS"
		build "$name" "$here/$name" "k8s.io/kubernetes/cmd/$name" "$KUBE_LDFLAGS"
		kube_ok "$name" || fail "$ASSETS/$name does not report version $KUBE_VERSION"
	done
	if knp_ok; then
		log "kube-network-policies $KNP_VERSION present"
	else
		log "building kube-network-policies $KNP_VERSION into $ASSETS (about 7 minutes the first time)"
		build kube-network-policies "$KNP_MOD" sigs.k8s.io/kube-network-policies/cmd "-s -w" --help
		knp_ok || fail "$ASSETS/kube-network-policies is not built from sigs.k8s.io/kube-network-policies $KNP_VERSION"
	fi
	if ms_ok; then
		log "metrics-server $MS_VERSION present"
	else
		log "building metrics-server $MS_VERSION into $ASSETS (about 10 minutes the first time)"
		build metrics-server "$MS_MOD" sigs.k8s.io/metrics-server/cmd/metrics-server "-s -w" --help
		ms_ok || fail "$ASSETS/metrics-server is not built from sigs.k8s.io/metrics-server $MS_VERSION"
	fi
	gvisor=$(runsc_version)
	if [[ -z $gvisor ]]; then
		log "no runsc at $RUNSC: containerd-shim-runsc-v1 not built (run hack/build-runsc.sh first for the cluster's gvisor RuntimeClass)"
	elif shim_ok; then
		log "containerd-shim-runsc-v1 $gvisor present"
	else
		log "building containerd-shim-runsc-v1 $gvisor into $ASSETS (about 2 minutes after runsc's build)"
		start=$SECONDS
		rc=0
		run_build containerd-shim-runsc-v1 env CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false" \
			"$GO" install -ldflags "-s -w" "gvisor.dev/gvisor/shim@$gvisor" || rc=$?
		((rc == 0)) || fail "go install gvisor.dev/gvisor/shim@$gvisor exited with status $rc (output above)"
		mv -f "$tmp/shim" "$ASSETS/containerd-shim-runsc-v1"
		shim_ok || fail "$ASSETS/containerd-shim-runsc-v1 is not built from gvisor.dev/gvisor $gvisor"
		log "containerd-shim-runsc-v1 built in $((SECONDS - start))s"
	fi
fi

log "control plane binaries ready in $ASSETS"
