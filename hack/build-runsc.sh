#!/usr/bin/env bash
# build-runsc.sh builds gVisor's runsc, strata's sandbox-tier runtime, from
# the Go module proxy into a stable path, once.
#
# Debian's runsc (2022) cannot network on current kernels, so strata builds a
# pinned current release instead. The script is idempotent: when the target
# exists and `runsc --version` runs, it does nothing. A cold build takes about
# 4.5 minutes on 2 cores and produces a ~100 MB static binary.
#
# Environment:
#   STRATA_RUNSC_DIR      directory to install into (default /opt/strata/bin)
#   STRATA_RUNSC_VERSION  gvisor.dev/gvisor module version to build
#   GO                    the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

RUNSC_DIR=${STRATA_RUNSC_DIR:-/opt/strata/bin}
RUNSC_VERSION=${STRATA_RUNSC_VERSION:-v0.0.0-20260905035102-160fafc42237}
RUNSC=$RUNSC_DIR/runsc

log() { printf 'build-runsc: %s\n' "$*"; }
fail() { printf 'build-runsc: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -x $RUNSC ]] && "$RUNSC" --version >/dev/null 2>&1; then
	log "$RUNSC present ($("$RUNSC" --version 2>/dev/null | head -n 1))"
	exit 0
fi

find_go

mkdir -p "$RUNSC_DIR" || fail "cannot create $RUNSC_DIR (run as root)"

# Build into a temporary directory next to the target and move the binary in
# place only when it works, so an interrupted build never leaves a broken
# runsc at the stable path.
tmp=$(mktemp -d "$RUNSC_DIR/.runsc-build.XXXXXX")
trap 'stop_build; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building gvisor.dev/gvisor/runsc@$RUNSC_VERSION into $RUNSC (takes a few minutes)"
start=$SECONDS
# The -X flag stamps the module version into `runsc --version`.
rc=0
run_build runsc env CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-buildvcs=false \
	"$GO" install -ldflags "-X gvisor.dev/gvisor/runsc/version.version=$RUNSC_VERSION" \
	"gvisor.dev/gvisor/runsc@$RUNSC_VERSION" || rc=$?
((rc == 0)) || fail "go install gvisor.dev/gvisor/runsc@$RUNSC_VERSION exited with status $rc (output above)"
"$tmp/runsc" --version >/dev/null 2>&1 || fail "the built runsc does not run (\`runsc --version\` failed)"
mv -f "$tmp/runsc" "$RUNSC"
log "$RUNSC built in $((SECONDS - start))s ($("$RUNSC" --version 2>/dev/null | head -n 1))"
