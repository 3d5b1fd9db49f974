# shellcheck shell=bash
# lib.sh holds what the hack/ scripts that build binaries from the Go module
# proxy share. A script defines log and fail (with its own prefix) and then
# sources it: . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# find_go sets GO to the go command: $GO when set, else go on PATH, else
# /usr/local/go/bin/go.
find_go() {
	if [[ -n ${GO:-} ]]; then
		return
	fi
	if command -v go >/dev/null 2>&1; then
		GO=go
	elif [[ -x /usr/local/go/bin/go ]]; then
		GO=/usr/local/go/bin/go
	else
		fail "go not found on PATH nor at /usr/local/go/bin/go"
	fi
}

# build_pids are the build and its progress printer while one runs, for
# stop_build.
build_pids=""

# run_build NAME COMMAND... runs COMMAND (a go build or install) at low
# priority and prints "NAME: still building (N min)" every minute, so that a
# long build shows it is alive. It returns the command's status.
run_build() {
	local name=$1 start=$SECONDS rc=0 ticker builder
	shift
	(
		# Waiting on sleep in the background lets TERM end it at once.
		trap 'kill "$nap" 2>/dev/null; exit 0' TERM
		while :; do
			sleep 60 &
			nap=$!
			wait "$nap"
			log "$name: still building ($(((SECONDS - start) / 60)) min)"
		done
	) &
	ticker=$!
	nice -n 10 "$@" &
	builder=$!
	build_pids="$builder $ticker"
	wait "$builder" || rc=$?
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	build_pids=""
	return "$rc"
}

# stop_build ends a build that run_build left running (the script was
# interrupted); call it from the script's EXIT trap.
stop_build() {
	local pid
	for pid in $build_pids; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	build_pids=""
}
