#!/usr/bin/env bash
# s3-server.sh builds the S3-compatible server that strata's backup
# repository tests run against: versitygw (github.com/versity/versitygw,
# Apache-2.0) with its posix backend, which serves a directory as buckets.
#
# It is built with `go install module/cmd@version`, which resolves the
# server's own go.mod in isolation, so none of its modules enter strata's
# go.mod. The binary goes into a cache directory keyed by version:
#   /var/cache/strata/s3/versitygw-<version>/versitygw
# internal/backup/repo's tests look for it there (STRATA_S3_SERVER names
# another binary).
#
# The script is idempotent: when the binary is present and reports the
# expected version it prints one line and does nothing else. The first
# build takes about 5-10 minutes on 2 cores.
#
# Environment:
#   STRATA_S3_CACHE   directory to build into (default
#                     /var/cache/strata/s3/versitygw-<version>)
#   GO                the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

VERSION=v1.8.0
PKG=github.com/versity/versitygw/cmd/versitygw
DIR=${STRATA_S3_CACHE:-/var/cache/strata/s3/versitygw-$VERSION}
BIN=$DIR/versitygw

log() { printf 's3-server: %s\n' "$*"; }
fail() { printf 's3-server: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# binary_ok reports whether the cached binary runs and is the wanted version.
binary_ok() {
	[[ -x $BIN ]] && "$BIN" --version 2>/dev/null | grep -q "^Version *: *$VERSION\$"
}

if binary_ok; then
	log "versitygw $VERSION present in $DIR"
	exit 0
fi

find_go

mkdir -p "$DIR" || fail "cannot create $DIR (run as root, or set STRATA_S3_CACHE to a writable directory)"

# One build at a time per cache directory: a second run waits, then finds
# the binary present.
exec 9>"$DIR/.build.lock"
flock 9
if binary_ok; then
	log "versitygw $VERSION present in $DIR"
	exit 0
fi

# The build goes into a temporary directory and the binary moves into place
# only once it runs, so an interrupted build never leaves a broken binary.
tmp=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'stop_build; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building versitygw $VERSION into $DIR (the first build takes 5-10 minutes on 2 cores)"
start=$SECONDS
rc=0
run_build versitygw env CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false" \
	"$GO" install -ldflags "-s -w -X=main.Version=$VERSION" "$PKG@$VERSION" || rc=$?
((rc == 0)) || fail "go install $PKG@$VERSION exited with status $rc (output above)"
"$tmp/versitygw" --version >/dev/null 2>&1 || fail "the built versitygw does not run (\`versitygw --version\` failed)"
mv -f "$tmp/versitygw" "$BIN"
binary_ok || fail "$BIN does not report version $VERSION"
log "versitygw $VERSION built in $((SECONDS - start))s: $BIN"
