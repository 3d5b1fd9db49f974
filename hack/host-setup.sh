#!/usr/bin/env bash
# host-setup.sh prepares a Debian 12 host to build, test and run strata.
#
# Usage: host-setup.sh [all|demo]. "all" (the default, for `make test` and CI)
# prepares everything; "demo" (for `make demo`) only what the daemon runs: the
# runtime packages, runsc and the guest kernel, not the test control plane, the
# S3 server or the browser the tests use.
#
# It runs as root and is idempotent: every step first checks whether its work
# is already done, so a second run changes nothing and returns in well under
# two seconds. Each step is a function named step_<name>, listed in STEPS in
# the order they run; add a step by writing its function and naming it there.
#
# Environment:
#   STRATA_SKIP_PACKAGES=1   leave apt alone (no package check or install)
#   STRATA_SKIP_KUBE=1       do not build the test control plane (kube-apiserver, etcd) and test cluster
#   STRATA_KUBE_ASSETS       where to build it (default /var/cache/strata/kube/<version>)
#   STRATA_SKIP_KERNEL_BUILD=1  do not build strata's own guest kernel (VMs boot the cloud kernel)
#   STRATA_KERNEL_CACHE      where to build it (default /var/cache/strata/guest-kernel)
#   STRATA_KERNEL_DIR        where to install it (default /opt/strata/guest/kernel-strata)
#   GO_MIN_VERSION           oldest acceptable Go toolchain (default 1.26)
set -euo pipefail

GO_MIN_VERSION=${GO_MIN_VERSION:-1.26}

# strata's guest kernel for image microVMs: Debian's cloud kernel, laid out
# as boot/vmlinuz-<version> and lib/modules/<version>/ (guest.DefaultKernelDir).
GUEST_KERNEL_DIR=/opt/strata/guest/kernel
GUEST_KERNEL_META=linux-image-cloud-amd64

# strata's own guest kernel, built from Debian's kernel source (the same 6.1
# line as the cloud kernel) with hack/guest-kernel/strata.config and the
# patches in hack/guest-kernel/patches/: everything built in, no modules.
# Built once per configuration, patch set and source version into
# STRATA_KERNEL_CACHE/<key>/, installed as boot/vmlinuz-<release> and
# boot/config-<release> in STRATA_KERNEL_DIR (guest.StrataKernelDir), which
# the driver prefers to GUEST_KERNEL_DIR.
STRATA_KERNEL_DIR=${STRATA_KERNEL_DIR:-/opt/strata/guest/kernel-strata}
STRATA_KERNEL_CACHE=${STRATA_KERNEL_CACHE:-/var/cache/strata/guest-kernel}
STRATA_KERNEL_CONFIG=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/guest-kernel/strata.config
STRATA_KERNEL_PATCHES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/guest-kernel/patches
STRATA_KERNEL_SOURCE=linux-source-6.1

# What building that kernel needs (all mode only: `make demo` keeps the
# cloud kernel).
KERNEL_BUILD_PACKAGES=(
	"$STRATA_KERNEL_SOURCE"
	gcc
	make
	bc
	flex
	bison
	libelf-dev
	xz-utils
	patch
)

# Debian packages strata's runtime drives: containerd and runc for
# containers, crun for containers inside node VMs, the CNI plugins, iproute2 and nftables for segments, umoci for
# unpacking OCI images, QEMU for the vm tier, OVMF for VMs that boot with
# UEFI, a static busybox for test images and genisoimage for VMs' cloud-init
# seeds.
PACKAGES=(
	containerd
	runc
	crun
	containernetworking-plugins
	iproute2
	nftables
	umoci
	qemu-system-x86
	qemu-utils
	ovmf
	busybox-static
	genisoimage
)

# Packages only the tests need: chromium and nodejs run the dashboard's
# browser and script tests; dosfstools, mtools and syslinux make the
# bootable disk of the VMware import test; restic is the side-by-side of
# internal/backup's BenchmarkVolumeBackup.
TEST_PACKAGES=(
	chromium
	nodejs
	dosfstools
	mtools
	syslinux
	restic
)

STEPS=(
	go
	packages
	runsc
	guest_kernel
	strata_kernel
	kube_binaries
	s3_server
)

# What `make demo` needs: no test control plane, S3 server or test packages.
DEMO_STEPS=(
	go
	packages
	runsc
	guest_kernel
)

current_step=""

log() { printf 'host-setup: %s\n' "$*"; }

fail() {
	printf 'host-setup: step %s: %s\n' "${current_step:-?}" "$*" >&2
	exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# version_at_least A B reports whether dotted version A >= B.
version_at_least() {
	[[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}

# step_go checks that a new enough Go toolchain is on PATH (or in
# /usr/local/go/bin, which is added to PATH for the later steps).
step_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		export PATH=$PATH:/usr/local/go/bin
	fi
	command -v go >/dev/null 2>&1 ||
		fail "go is not on PATH nor in /usr/local/go/bin; install Go >= $GO_MIN_VERSION from the official tarball"
	local v
	v=$(go env GOVERSION) || fail "\`go env GOVERSION\` did not run"
	v=${v#go}
	version_at_least "$v" "$GO_MIN_VERSION" ||
		fail "go $v at $(command -v go) is older than $GO_MIN_VERSION; install a newer Go"
	log "go $v ok"
}

# missing_packages prints the packages of PACKAGES that are not fully
# installed, one per line. One dpkg-query call for all of them keeps a run
# with nothing to do fast.
missing_packages() {
	local -A ok=()
	local pkg status
	while IFS=' ' read -r pkg status; do
		if [[ $status == "install ok installed" ]]; then
			ok[${pkg%%:*}]=1
		fi
	done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
	for pkg in "${PACKAGES[@]}"; do
		[[ -n ${ok[$pkg]:-} ]] || echo "$pkg"
	done
}

# step_packages installs the Debian packages strata's runtime needs, running
# `apt-get update` only when something is missing.
step_packages() {
	if [[ ${STRATA_SKIP_PACKAGES:-} == 1 ]]; then
		log "packages skipped (STRATA_SKIP_PACKAGES=1)"
		return
	fi
	command -v dpkg-query >/dev/null 2>&1 ||
		fail "dpkg-query not found: this script expects Debian 12 (set STRATA_SKIP_PACKAGES=1 to skip)"
	local missing
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)); then
		log "packages ok (${#PACKAGES[@]} installed)"
		return
	fi
	if ! is_root; then
		fail "would install: ${missing[*]}; run as root (sudo make host-setup) or set STRATA_SKIP_PACKAGES=1"
	fi
	log "packages: installing ${missing[*]} (a few minutes on a new machine)"
	local out
	out=$(mktemp)
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get -q update &&
			DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
				-o Dpkg::Options::=--force-confold "${missing[@]}"
	} >"$out" 2>&1 || rc=$?
	if ((rc != 0)); then
		tail -n 30 "$out" >&2
		rm -f "$out"
		fail "apt-get exited with status $rc (output above)"
	fi
	rm -f "$out"
	mapfile -t missing < <(missing_packages)
	((${#missing[@]} == 0)) || fail "still not installed after apt-get: ${missing[*]}"
	log "packages ok (${#PACKAGES[@]} installed)"
}

# step_runsc builds gVisor's runsc for the sandbox tier once, into
# /opt/strata/bin/runsc (about 5 minutes the first time; nothing after).
step_runsc() {
	if [[ ${STRATA_SKIP_RUNSC:-} == 1 ]]; then
		log "runsc skipped (STRATA_SKIP_RUNSC=1)"
		return
	fi
	is_root || fail "building runsc into /opt/strata/bin needs root (sudo make host-setup)"
	"$(dirname "$0")/build-runsc.sh" || fail "hack/build-runsc.sh failed (output above)"
}

# guest_kernel_installed reports whether GUEST_KERNEL_DIR holds a kernel
# image together with its modules directory.
guest_kernel_installed() {
	local img
	for img in "$GUEST_KERNEL_DIR"/boot/vmlinuz-*; do
		[[ -f $img && -d $GUEST_KERNEL_DIR/lib/modules/${img##*/vmlinuz-} ]] && return 0
	done
	return 1
}

# guest_kernel_package prints the versioned kernel package the cloud
# metapackage depends on (linux-image-<ABI>-cloud-amd64).
guest_kernel_package() {
	apt-cache depends "$GUEST_KERNEL_META" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# step_guest_kernel extracts Debian's cloud kernel image and its modules into
# GUEST_KERNEL_DIR. The package is downloaded and unpacked, never installed:
# the host keeps its own kernel. STRATA_SKIP_PACKAGES does not skip it, since
# image microVMs cannot boot without it.
step_guest_kernel() {
	if guest_kernel_installed; then
		log "guest kernel ok ($GUEST_KERNEL_DIR)"
		return
	fi
	is_root || fail "installing the guest kernel into $GUEST_KERNEL_DIR needs root (sudo make host-setup)"
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
		fail "apt-get and dpkg-deb not found: this step expects Debian 12"
	fi
	local pkg
	pkg=$(guest_kernel_package)
	if [[ -z $pkg ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null 2>&1 ||
			fail "apt-get update failed; a Debian mirror must be reachable to fetch $GUEST_KERNEL_META"
		pkg=$(guest_kernel_package)
	fi
	[[ -n $pkg ]] || fail "apt-cache knows no kernel package that $GUEST_KERNEL_META depends on"
	log "guest kernel: extracting $pkg into $GUEST_KERNEL_DIR"
	install_guest_kernel "$pkg"
	guest_kernel_installed || fail "$GUEST_KERNEL_DIR has no kernel after extracting $pkg"
	log "guest kernel ok ($GUEST_KERNEL_DIR)"
}

# install_guest_kernel PKG downloads PKG into a temporary directory, unpacks
# it there, and moves its kernel image and modules into GUEST_KERNEL_DIR in
# one rename. It runs in a subshell so its temporary files always go.
install_guest_kernel() (
	local pkg=$1 tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp" "$GUEST_KERNEL_DIR.new"' EXIT
	chmod 755 "$tmp" # apt's download sandbox user must be able to write it
	(cd "$tmp" && apt-get -q download "$pkg") >"$tmp/download.log" 2>&1 || {
		tail -n 20 "$tmp/download.log" >&2
		fail "apt-get download $pkg failed (output above); a Debian mirror must be reachable"
	}
	local deb
	deb=$(compgen -G "$tmp/*.deb" | head -n 1) || fail "apt-get download $pkg left no .deb"
	dpkg-deb -x "$deb" "$tmp/x" || fail "dpkg-deb -x $deb failed"
	local img version modules
	img=$(compgen -G "$tmp/x/boot/vmlinuz-*" | head -n 1) || fail "$pkg has no boot/vmlinuz-*"
	version=${img##*/vmlinuz-}
	for modules in "$tmp/x/lib/modules/$version" "$tmp/x/usr/lib/modules/$version" ""; do
		[[ -d $modules ]] && break
	done
	[[ -n $modules ]] || fail "$pkg has no lib/modules/$version"
	local new=$GUEST_KERNEL_DIR.new
	rm -rf "$new"
	mkdir -p "$new/boot" "$new/lib/modules"
	cp -a "$img" "$new/boot/"
	cp -a "$modules" "$new/lib/modules/"
	rm -rf "$GUEST_KERNEL_DIR"
	mv "$new" "$GUEST_KERNEL_DIR"
)

# step_strata_kernel builds strata's own guest kernel once (10-25 minutes on
# two cores, at the lowest CPU priority) and installs it into
# STRATA_KERNEL_DIR. A failed build is reported and leaves the cloud kernel
# in GUEST_KERNEL_DIR as what VMs boot; setup goes on.
step_strata_kernel() {
	if [[ ${STRATA_SKIP_KERNEL_BUILD:-} == 1 ]]; then
		log "strata guest kernel skipped (STRATA_SKIP_KERNEL_BUILD=1); VMs boot $GUEST_KERNEL_DIR"
		return
	fi
	[[ -f $STRATA_KERNEL_CONFIG ]] || fail "$STRATA_KERNEL_CONFIG is missing"
	local tarball=/usr/src/$STRATA_KERNEL_SOURCE.tar.xz version key
	version=$(dpkg-query -W -f='${Version}' "$STRATA_KERNEL_SOURCE" 2>/dev/null) || version=""
	if [[ -z $version || ! -f $tarball ]]; then
		log "strata guest kernel NOT built: $STRATA_KERNEL_SOURCE is not installed (apt-get install $STRATA_KERNEL_SOURCE); VMs boot Debian's cloud kernel ($GUEST_KERNEL_DIR)"
		return
	fi
	key=$(strata_kernel_key "$version")
	if [[ $(cat "$STRATA_KERNEL_DIR/boot/strata-kernel.key" 2>/dev/null) == "$key" ]]; then
		log "strata guest kernel ok ($STRATA_KERNEL_DIR, $STRATA_KERNEL_SOURCE $version, key $key)"
		return
	fi
	is_root || fail "building the guest kernel into $STRATA_KERNEL_CACHE needs root (sudo make host-setup)"
	local out=$STRATA_KERNEL_CACHE/$key began=$SECONDS
	if [[ ! -f $out/key ]]; then
		log "strata guest kernel: building from $STRATA_KERNEL_SOURCE $version with $STRATA_KERNEL_CONFIG (key $key; 10-25 minutes on 2 cores, at nice 19)"
		if ! build_strata_kernel "$version" "$tarball" "$out" "$key"; then
			log "strata guest kernel build FAILED after $((SECONDS - began)) s (log: $STRATA_KERNEL_CACHE/build/make.log); VMs keep booting Debian's cloud kernel ($GUEST_KERNEL_DIR)"
			return
		fi
		log "strata guest kernel built in $((SECONDS - began)) s"
	fi
	install_strata_kernel "$out"
	log "strata guest kernel ok ($STRATA_KERNEL_DIR, $(cd "$STRATA_KERNEL_DIR/boot" && echo vmlinuz-*))"
}

# strata_kernel_key VERSION prints the cache key of the kernel built from
# source package VERSION with STRATA_KERNEL_CONFIG and the patches of
# STRATA_KERNEL_PATCHES. Without patches the key is what it was before there
# were any, so that a kernel built then is not rebuilt for nothing.
strata_kernel_key() {
	{
		printf '%s %s\n' "$STRATA_KERNEL_SOURCE" "$1"
		cat "$STRATA_KERNEL_CONFIG"
		local p patches
		mapfile -t patches < <(strata_kernel_patches)
		for p in "${patches[@]}"; do
			printf 'patch %s\n' "${p##*/}"
			cat "$p"
		done
	} | sha256sum | cut -c 1-16
}

# strata_kernel_patches prints the paths of the patches of
# STRATA_KERNEL_PATCHES, in the order they apply.
strata_kernel_patches() {
	local p
	for p in "$STRATA_KERNEL_PATCHES"/*.patch; do
		[[ -f $p ]] && echo "$p"
	done
	return 0
}

# patch_strata_kernel SRC brings the source tree SRC to the patches of
# STRATA_KERNEL_PATCHES. The patches applied last are kept in
# SRC/.strata-patches/: when they differ, they are reverted (newest first)
# and the current ones applied, which touches only the files they change, so
# the next build recompiles only those. A patch that does not revert or
# apply removes SRC, which is unpacked afresh by the next run.
patch_strata_kernel() {
	local src=$1 applied=$1/.strata-patches p want have patches
	mapfile -t patches < <(strata_kernel_patches)
	want=$(for p in "${patches[@]}"; do printf '%s ' "${p##*/}"; sha256sum <"$p"; done)
	have=$(for p in "$applied"/*.patch; do if [[ -f $p ]]; then
		printf '%s ' "${p##*/}"
		sha256sum <"$p"
	fi; done)
	[[ $want == "$have" ]] && return 0
	local -a old=()
	mapfile -t old < <(ls -r "$applied"/*.patch 2>/dev/null)
	for p in "${old[@]}"; do
		log "strata guest kernel: reverting ${p##*/}"
		patch -s -R -p1 -d "$src" <"$p" || {
			log "strata guest kernel: ${p##*/} does not revert; removing $src to unpack it again"
			rm -rf "$src"
			return 1
		}
		rm "$p"
	done
	mkdir -p "$applied"
	for p in "${patches[@]}"; do
		log "strata guest kernel: applying ${p##*/}"
		patch -s -p1 -d "$src" <"$p" || {
			log "strata guest kernel: ${p##*/} does not apply to $STRATA_KERNEL_SOURCE; removing $src to unpack it again"
			rm -rf "$src"
			return 1
		}
		cp "$p" "$applied/"
	done
}

# build_strata_kernel VERSION TARBALL OUT KEY unpacks the source once (into
# STRATA_KERNEL_CACHE/src-VERSION), configures it as allnoconfig with
# STRATA_KERNEL_CONFIG on top, checks that every option of it took, builds
# bzImage in STRATA_KERNEL_CACHE/build (kept, so a changed configuration
# rebuilds only what changed) and puts the image and its .config into OUT.
# It prints a progress line every minute.
build_strata_kernel() (
	local version=$1 tarball=$2 out=$3 key=$4
	local src=$STRATA_KERNEL_CACHE/src-$version obj=$STRATA_KERNEL_CACHE/build
	mkdir -p "$STRATA_KERNEL_CACHE" "$obj"
	if [[ ! -f $src/Makefile ]]; then
		log "strata guest kernel: unpacking $tarball"
		rm -rf "$src.tmp"
		mkdir -p "$src.tmp"
		tar -xJf "$tarball" -C "$src.tmp" || exit 1
		mv "$src.tmp"/linux-source-* "$src" || exit 1
		rm -rf "$src.tmp"
		# The files keep the tarball's times, older than objects built
		# from a patched tree: build everything again.
		rm -rf "$obj"
		mkdir -p "$obj"
	fi
	patch_strata_kernel "$src" || exit 1
	local log=$obj/make.log
	make -s -C "$src" O="$obj" allnoconfig KCONFIG_ALLCONFIG="$STRATA_KERNEL_CONFIG" >"$log" 2>&1 || {
		tail -n 20 "$log" >&2
		exit 1
	}
	local line missing=0
	while IFS= read -r line; do
		[[ $line =~ ^CONFIG_ ]] || continue
		if ! grep -qxF -- "$line" "$obj/.config"; then
			printf 'host-setup: strata.config: %s did not take (a dependency is missing); .config has: %s\n' \
				"$line" "$(grep -E "^${line%%=*}=|^# ${line%%=*} is not set" "$obj/.config" || echo nothing)" >&2
			missing=1
		fi
	done <"$STRATA_KERNEL_CONFIG"
	((missing == 0)) || exit 1
	nice -n 19 make -C "$src" O="$obj" -j"$(nproc)" bzImage >>"$log" 2>&1 &
	local pid=$! began=$SECONDS rc=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		if (((SECONDS - began) % 60 < 5)); then
			log "strata guest kernel: $((SECONDS - began)) s, $(grep -c '^  CC ' "$log") files compiled"
		fi
	done
	wait "$pid" || rc=$?
	if ((rc != 0)); then
		grep -E 'error|Error' "$log" | tail -n 20 >&2
		exit 1
	fi
	local release
	release=$(make -s -C "$src" O="$obj" kernelrelease) || exit 1
	rm -rf "$out.tmp"
	mkdir -p "$out.tmp"
	cp "$obj/arch/x86/boot/bzImage" "$out.tmp/vmlinuz-$release"
	cp "$obj/.config" "$out.tmp/config-$release"
	echo "$key" >"$out.tmp/key"
	rm -rf "$out"
	mv "$out.tmp" "$out"
)

# install_strata_kernel OUT puts the kernel built into OUT into
# STRATA_KERNEL_DIR in one rename.
install_strata_kernel() {
	local out=$1 new=$STRATA_KERNEL_DIR.new
	rm -rf "$new"
	mkdir -p "$new/boot"
	cp "$out"/vmlinuz-* "$out"/config-* "$new/boot/"
	cp "$out/key" "$new/boot/strata-kernel.key"
	rm -rf "$STRATA_KERNEL_DIR"
	mv "$new" "$STRATA_KERNEL_DIR"
}

# step_kube_binaries builds the Kubernetes control plane that strata's tests
# run against (kube-apiserver and etcd, see internal/kube/kubetest) and the
# single-node cluster's binaries (internal/kube/kubecluster: the controller
# manager, scheduler, kubelet, kube-proxy, the NetworkPolicy engine,
# metrics-server, gVisor's containerd shim) once, into a cache keyed by
# version: the better part of an hour the first time on 2 cores, nothing after.
step_kube_binaries() {
	if [[ ${STRATA_SKIP_KUBE:-} == 1 ]]; then
		log "kube binaries skipped (STRATA_SKIP_KUBE=1)"
		return
	fi
	if ! is_root && [[ -z ${STRATA_KUBE_ASSETS:-} ]]; then
		fail "building kube-apiserver into /var/cache/strata needs root (sudo make host-setup), or set STRATA_KUBE_ASSETS"
	fi
	STRATA_KUBE_CLUSTER=1 "$(dirname "$0")/kube-binaries.sh" || fail "hack/kube-binaries.sh failed (output above)"
}

# step_s3_server builds the S3 server the backup repository tests run
# against (versitygw, see hack/s3-server.sh) once, into /var/cache/strata/s3.
step_s3_server() {
	"$(dirname "$0")/s3-server.sh" || fail "hack/s3-server.sh failed (output above)"
}

main() {
	local mode=${1:-all} step began
	local -a steps
	case $mode in
	all)
		steps=("${STEPS[@]}")
		PACKAGES+=("${TEST_PACKAGES[@]}" "${KERNEL_BUILD_PACKAGES[@]}")
		;;
	demo) steps=("${DEMO_STEPS[@]}") ;;
	*) fail "unknown mode \"$mode\": want all (tests) or demo" ;;
	esac
	for step in "${steps[@]}"; do
		current_step=$step
		began=$SECONDS
		"step_$step"
		if ((SECONDS - began >= 5)); then
			log "$step took $((SECONDS - began)) s"
		fi
	done
	current_step=""
}

# Sourced (as internal/guest's tests do), the script only defines its steps.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
