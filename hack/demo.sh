#!/usr/bin/env bash
# demo.sh starts strata's daemon (with a private containerd) if it is not running, imports a
# busybox image, applies the hybrid example and two tenants' services (which run inside node
# VMs) and shows them running. The daemon keeps running afterwards; `hack/demo.sh stop` deletes
# the examples and stops the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."

STRATA=bin/strata
DATA_DIR=${STRATA_DATA_DIR:-/var/lib/strata}
export STRATA_SOCKET=${STRATA_SOCKET:-/run/strata/strata.sock}
LOG=$DATA_DIR/serve.log
# The TLS listener also serves the dashboard (https://LISTEN/ui/); empty: socket only.
LISTEN=${STRATA_LISTEN-127.0.0.1:7443}
APP=examples/hybrid/app.yaml
TENANTS=examples/tenants/app.yaml

say() { printf '\n== %s\n' "$*"; }

if [[ ${1:-} == stop ]]; then
	say "strata delete -f $TENANTS -f $APP"
	$STRATA delete -f "$TENANTS" -f "$APP" || true
	# Deleting a workload removes it at once; the daemon then stops its instances. Wait
	# for their network namespaces and VMs (node VMs too: the demo's daemon removes an
	# empty one after --node-vm-grace) to go before stopping the daemon.
	for _ in $(seq 90); do
		[[ -z $(ls /run/strata/netns 2>/dev/null) ]] && ! pgrep -f "$DATA_DIR/vm/" >/dev/null && break
		sleep 1
	done
	pkill -TERM -f "$STRATA serve" || true
	for _ in $(seq 30); do
		pgrep -f "$STRATA serve" >/dev/null || break
		sleep 1
	done
	# gVisor keeps a namespace handle mounted in its state directory; nothing uses it now.
	{ grep -o "$DATA_DIR/runtime/runsc/[^ ]*" /proc/self/mounts 2>/dev/null || true; } | while read -r m; do
		umount "$m" || true
	done
	echo "daemon stopped"
	exit 0
fi

[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (the daemon drives containerd and network namespaces)"; exit 1; }
mkdir -p "$DATA_DIR"
if ! $STRATA get workloads >/dev/null 2>&1; then
	say "starting the daemon: $STRATA serve --start-containerd --node-vm-grace 10s ${LISTEN:+--listen $LISTEN }--log-file $LOG"
	# The log names workloads, clients and paths: root's alone. What the daemon prints
	# before its log opens (a bad flag) goes to the same file.
	(umask 077 && : >>"$LOG") && chmod 600 "$LOG"
	setsid $STRATA serve --data-dir "$DATA_DIR" --start-containerd --node-vm-grace 10s ${LISTEN:+--listen "$LISTEN"} --log-file "$LOG" >>"$LOG" 2>&1 < /dev/null &
	for _ in $(seq 60); do
		$STRATA get workloads >/dev/null 2>&1 && break
		sleep 0.5
	done
	$STRATA get workloads >/dev/null || { tail -n 20 "$LOG"; exit 1; }
fi

say "strata get hosts -o wide   (the tiers this host runs, and how it runs VMs)"
$STRATA get hosts -o wide
$STRATA describe host "$(hostname | tr '[:upper:]' '[:lower:]')" 2>/dev/null | sed -n '/^Drivers:/,$p' || true

say "building and importing a busybox image"
go run ./hack/busybox-image -o "$DATA_DIR/busybox.tar" localhost/busybox:1
$STRATA image import "$DATA_DIR/busybox.tar"

say "strata assess -f $APP"
$STRATA assess -f "$APP"

say "strata apply -f $APP"
$STRATA apply -f "$APP"

say "strata assess -f $TENANTS   (two tenants' services: the policy puts them into node VMs)"
$STRATA assess -f "$TENANTS"

say "strata apply -f $TENANTS"
$STRATA apply -f "$TENANTS"

say "waiting for every instance to run (node VMs boot first: a minute or two under emulation)"
for _ in $(seq 240); do
	out=$($STRATA get workloads)
	if ! grep -qvE '^NAME|Running' <<<"$out"; then break; fi
	sleep 1
done

# fail_tiers prints, for every workload that is not Running, its tier and why, and
# exits non-zero: the demo passes only when every tier runs.
fail_tiers() {
	local bad=0 name tier phase
	while read -r name tier phase _; do
		[[ $name == NAME || $phase == Running ]] && continue
		bad=1
		printf '\ndemo: FAILED: %s (tier %s) is %s:\n' "$name" "$tier" "$phase" >&2
		$STRATA describe workload "$name" 2>&1 | sed -n '/^Instances:/,$p' | head -n 20 >&2
	done < <($STRATA get workloads)
	if ((bad)); then
		printf '\ndemo: the daemon says which tier it runs VMs with: strata get hosts -o wide; log: %s\n' "$LOG" >&2
		exit 1
	fi
}
fail_tiers

# A VM runs once QEMU does; its command starts after the guest boots (seconds here).
for _ in $(seq 90); do
	$STRATA logs ledger 2>/dev/null | grep -q 'ledger up' && break
	sleep 1
done
if ! $STRATA logs ledger 2>/dev/null | grep -q 'ledger up'; then
	printf '\ndemo: FAILED: the vm tier: ledger did not print "ledger up" within 90 s; its console:\n' >&2
	$STRATA logs ledger 2>&1 | tail -n 20 >&2
	exit 1
fi

say "strata get workloads -o wide"
$STRATA get workloads -o wide

say "strata logs plugin-runner   (a gVisor sandbox)"
$STRATA logs plugin-runner

say "strata logs ledger   (a VM: its serial console, its own kernel)"
$STRATA logs ledger | grep -v '^\[' || true

# probe asks for page /$4 of $2:$3 from inside workload $1: the page's last line, or why not.
probe() {
	$STRATA exec "$1" -- sh -c "printf 'GET /${4:-} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $2 $3 | tail -n 1" 2>&1 |
		sed -e 's/.*timed out.*/blocked (no flow allows it)/' -e 's/.*refused.*/refused (nothing listens)/'
}

say "every tier serves, by name, where a flow allows it: strata exec storefront -- nc NAME.SEGMENT PORT"
for target in catalog.shop:9000/items.json ledger.shop:7000 plugin-runner.plugins:8081; do
	host=${target%%:*} rest=${target#*:}
	port=${rest%%/*} page=${rest#"$port"}
	printf '%-40s %s\n' "storefront -> $target" "$(probe storefront "$host" "$port" "${page#/}")"
done
say "and nothing else crosses a segment"
printf '%-40s %s\n' "catalog -> storefront.web:8080" "$(probe catalog storefront.web 8080)"
printf '%-40s %s\n' "plugin-runner -> catalog.shop:9000" "$(probe plugin-runner catalog.shop 9000 items.json)"

say "strata get nodes   (node VMs, one per isolation class: acme's and globex's containers, each tenant in a VM of its own)"
$STRATA get nodes -o wide

say "each tenant's replica serves on its own segment address from inside its node VM; flows hold as for the host's containers"
printf '%-40s %s\n' "host kernel" "$(uname -r)"
for target in acme-api.acme:8080 globex-api.globex:8080; do
	printf '%-40s %s\n' "storefront -> $target" "$(probe storefront "${target%%:*}" "${target#*:}")"
done
printf '%-40s %s\n' "acme-api -> globex-api.globex:8080" "$(probe acme-api globex-api.globex 8080)"

say "strata get segments -o wide"
$STRATA get segments -o wide

say "strata exec ledger -- cat /proc/version   (through strata's guest agent)"
$STRATA exec ledger -- cat /proc/version

say "strata events | tail -n 12"
$STRATA events | tail -n 12

if [[ -n $LISTEN ]] && url=$($STRATA dashboard --server "https://$LISTEN" --data-dir "$DATA_DIR" 2>/dev/null); then
	say "the dashboard: $STRATA dashboard --server https://$LISTEN"
	printf '%s\n' "$url"
	printf 'Open it in a browser on this host; it trusts the daemon once %s is imported as a CA\n' "$DATA_DIR/tls/ca.crt"
	printf '(or accept the certificate). The part after #token= is the admin token of %s.\n' "$DATA_DIR/tls/tokens"
else
	say "the dashboard"
	printf 'The daemon has no TLS listener at %s: restart it with --listen, or run\n' "${LISTEN:-(none)}"
	printf '  %s dashboard --listen 127.0.0.1:8080\nand open the address it prints.\n' "$STRATA"
fi

printf '\nThe daemon keeps running (socket %s). Try `%s describe workload storefront`.\n' "$STRATA_SOCKET" "$STRATA"
printf 'Stop it with: hack/demo.sh stop\n'
