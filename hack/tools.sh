#!/usr/bin/env bash
# tools.sh installs the development tools strata's Makefile uses into ./bin.
#
# Usage: hack/tools.sh NAME PACKAGE VERSION [FALLBACK]
#
# NAME is the binary name in ./bin, PACKAGE the Go package path to install,
# VERSION the pinned module version. When FALLBACK is "latest" and the pinned
# version does not build, the newest version the module proxy serves is
# installed instead, and that version is remembered in bin/.NAME.version so a
# later run does not try the pinned version again.
#
# A tool is skipped when bin/NAME already is the wanted version (read from the
# binary's own build information with `go version -m`).
set -euo pipefail

name=$1
pkg=$2
want=$3
fallback=${4:-}

root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${GOBIN:-$root/bin}
bin=$bindir/$name
marker=$bindir/.$name.version

# installed prints the module version bin/NAME was built from, or nothing.
installed() {
	[[ -x $bin ]] || return 0
	go version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

have=$(installed)
if [[ -n $have ]]; then
	if [[ $have == "$want" ]] || { [[ -f $marker ]] && [[ $have == "$(cat "$marker")" ]]; }; then
		echo "tools: $name $have already installed"
		exit 0
	fi
fi

mkdir -p "$bindir"
echo "tools: installing $name $want (this compiles it; it can take minutes)"
if GOBIN=$bindir go install "$pkg@$want"; then
	rm -f "$marker"
	exit 0
fi

if [[ $fallback != latest ]]; then
	echo "tools: $name $want did not build" >&2
	exit 1
fi
echo "tools: $name $want did not build; trying the newest version" >&2
GOBIN=$bindir go install "$pkg@latest"
have=$(installed)
echo "$have" >"$marker"
echo "tools: installed $name $have instead of $want" >&2
