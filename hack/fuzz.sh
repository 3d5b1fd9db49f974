#!/usr/bin/env bash
# fuzz.sh runs every fuzz target in the module, one at a time, for FUZZTIME
# each, and fails when any target finds a failing input (which Go writes under
# that package's testdata/fuzz/).
#
# Go's fuzz coordinator before Go 1.27 can end a run that found nothing with a
# bare "context deadline exceeded" at the moment -fuzztime expires (a race
# between its deadline and its workers' shutdown). Such a run wrote no failing
# input and printed no failure of the target's own, so it is run once more;
# anything else that fails, fails.
#
# Usage: hack/fuzz.sh   (FUZZTIME=30s FUZZMINIMIZE=5s GO=go in the environment)
set -euo pipefail

log() { echo "fuzz: $*"; }
fail() { echo "fuzz: $*" >&2; exit 1; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
find_go

cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${FUZZTIME:-30s}
minimize=${FUZZMINIMIZE:-5s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# coordinator_race tells whether the output in $out is only the coordinator's
# end-of-time race: the target's one failure line is the deadline, and no
# failing input was written.
coordinator_race() {
	grep -q '^    context deadline exceeded$' "$out" &&
		! grep -q 'Failing input written to' "$out" &&
		! grep -qE '^panic:|^    [a-z_]+_test\.go:[0-9]+:' "$out"
}

# run_target DIR NAME fuzzes one target, its output both shown and kept in $out.
run_target() {
	"$GO" test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$1" \
		</dev/null 2>&1 | tee "$out"
	return "${PIPESTATUS[0]}"
}

ran=()
failed=()
while IFS=: read -r file name; do
	dir=./$(dirname "$file")
	log "== $name in $dir for $fuzztime"
	status="ok  "
	if ! run_target "$dir" "$name"; then
		status=FAIL
		if coordinator_race; then
			log "$name: only the coordinator's end-of-time deadline, nothing found; running it once more"
			if run_target "$dir" "$name"; then
				status="ok  "
			fi
		fi
	fi
	ran+=("$status $dir $name")
	if [[ $status == FAIL ]]; then
		failed+=("$dir $name")
	fi
done < <(grep -rEo --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git \
	'^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^\./||; s|:func |:|' | sort)

log "ran ${#ran[@]} target(s) for $fuzztime each"
for t in "${ran[@]}"; do
	echo "  $t"
done
if ((${#failed[@]} > 0)); then
	fail "${#failed[@]} target(s) failed; new failing inputs are under their package's testdata/fuzz/"
fi
