#!/usr/bin/env bash
# Benchmarks for `make bench` (which runs `make build` first): prints figures,
# never pass/fail. Every figure is a median over repeated runs, printed per
# section and again in one summary table at the end.
#
#   Supervisor   kill -9 -> ready (macronode vs runit's runsv), kill -> 503,
#                a steady load across kill -9 (failed/refused, p50/p99; vs runsv),
#                cold start, idle RSS/CPU, log lines/s through the parent
#   Storage      PUT/GET MB/s direct and via the gateway, vs BLAKE3 and write+fsync
#   Small blobs  4 KiB PUT ops/s at 1 and 16 clients vs temp+fsync+rename+dir fsync
#   Gateway      4 KiB GET req/s (wrk, 1 and 16 conns): direct vs gateway vs nginx
#   Mailbox      durable send+receive+ack msgs/s, vs Redis (AOF, fsync always)
#   DHT sim      1,000 kad-dht nodes on libp2p's mocknet in one process, 10%
#                churn: lookup success, hops, latency, RSS (pkg/planes/dht/dhtsim)
#   Go           the microbenchmarks under ./pkg/... (and benchstat if it runs)
#   Events       fault -> ready through the API, events/s to 100 SSE clients,
#                the parent's CPU with 1,000 idle SSE clients
#
# Environment:
#   BENCH_QUICK=1     shorter everything (the dhtsim section keeps its 5-minute budget)
#   BENCH_ONLY="..."  run only these sections: restart healload exit503 coldstart idle
#                     loglines storage smallput gateway mailbox faultready
#                     eventsfanout ssecpu dhtsim cluster micro (space separated);
#                     mailboxlong runs only when named here or with BENCH_LONG=1
#   BENCH_LONG=1      also run mailboxlong (10 minutes of steady mailbox load)
#   BENCH_KEEP=1      keep the temp dir (logs, results.tsv) for inspection
#
# Everything listens on 127.0.0.1 only, is bounded in time, and every process
# started here (macronode, svc-*, runsv, redis-server, mnbench) is stopped on
# exit: each one carries this run's unique temp dir on its command line.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="$ROOT/bin"
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-}
T0=$(date +%s)

export PATH="$PATH:/usr/sbin:/sbin" # runsv and redis-server may live there
BENCH_TMP=$(mktemp -d /tmp/mnbench.XXXXXX)
RESULTS="$BENCH_TMP/results.tsv"
MNBENCH="$BENCH_TMP/mnbench"
: >"$RESULTS"

# --- cleanup: every process whose command line names BENCH_TMP is ours, and
# so is the process group of the `timeout` running now (timeout makes its own
# group: `go test` and its test binaries live there).
CUR_GROUP=""
our_pids() { pgrep -f -- "$BENCH_TMP" 2>/dev/null | grep -vx "$$" || true; }
cleanup() {
	local rc=$? pids i
	trap - EXIT INT TERM
	if [ -n "$CUR_GROUP" ]; then
		kill -TERM -- "-$CUR_GROUP" 2>/dev/null || kill -TERM "$CUR_GROUP" 2>/dev/null
	fi
	pids=$(our_pids)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null
		for i in $(seq 1 50); do
			pids=$(our_pids)
			[ -z "$pids" ] && break
			sleep 0.2
		done
		# shellcheck disable=SC2086
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "kept: $BENCH_TMP"
	else
		rm -rf "$BENCH_TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench: interrupted"; exit 130' INT TERM

say() { printf '%s\n' "$*"; }
skip() { say "skipped: $*"; }
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# --- tools: install what is missing, or degrade with "skipped: <why>" --------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
fi
apt_install() { # package...
	command -v apt-get >/dev/null 2>&1 || return 1
	local env=(env DEBIAN_FRONTEND=noninteractive)
	# shellcheck disable=SC2086
	$SUDO "${env[@]}" apt-get install -y -qq --no-install-recommends "$@" >"$BENCH_TMP/apt.log" 2>&1 && return 0
	# shellcheck disable=SC2086
	$SUDO "${env[@]}" apt-get update -qq >>"$BENCH_TMP/apt.log" 2>&1 || return 1
	# shellcheck disable=SC2086
	$SUDO "${env[@]}" apt-get install -y -qq --no-install-recommends "$@" >>"$BENCH_TMP/apt.log" 2>&1
}
# ensure CMD PACKAGE [DAEMON]: install PACKAGE if CMD is missing. A package's
# install script may start its system daemon (redis-server, runsvdir): any
# such process that did not exist before is ours, and is stopped again.
ensure() {
	local cmd=$1 pkg=$2 daemon=${3:-} before after p
	command -v "$cmd" >/dev/null 2>&1 && return 0
	say "installing $pkg (for $cmd) with apt-get ..."
	[ -n "$daemon" ] && before=$(pgrep -x "$daemon" || true)
	if ! apt_install "$pkg"; then
		say "  apt-get install $pkg failed (log: $BENCH_TMP/apt.log)"
		return 1
	fi
	if [ -n "$daemon" ]; then
		after=$(pgrep -x "$daemon" || true)
		for p in $after; do
			if ! grep -qx "$p" <<<"$before"; then
				say "  stopping the $daemon (pid $p) that installing $pkg started"
				$SUDO kill -TERM "$p" 2>/dev/null || true
			fi
		done
	fi
	command -v "$cmd" >/dev/null 2>&1
}

say "== macronode benchmarks ($([ "$QUICK" = 1 ] && echo "quick" || echo "full"); figures only, never pass/fail) =="
say "host: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3), temp dir $BENCH_TMP"

for b in macronode svc-storage svc-index svc-mailbox svc-gateway svc-overlay svc-dht; do
	[ -x "$BIN/$b" ] || say "warning: $BIN/$b is missing (run make build); figures that need it are skipped"
done

say "building mnbench ..."
if ! (cd "$ROOT/e2e" && go build -o "$MNBENCH" ./cmd/mnbench); then
	skip "every mnbench figure: mnbench does not build"
	MNBENCH=""
fi

RUNSV_FLAG=()
if wanted restart || wanted healload; then
	ensure runsv runit runsvdir || { skip "runsv comparison: runit could not be installed"; RUNSV_FLAG=(-no-runsv); }
fi
if wanted gateway; then
	ensure wrk wrk || skip "gateway rows: wrk could not be installed"
	ensure nginx nginx-light nginx || skip "gateway nginx row: nginx-light could not be installed"
fi
if wanted loglines; then # the svlogd comparison skips itself without runit
	ensure svlogd runit runsvdir || skip "svlogd comparison: runit could not be installed"
fi
REDIS_FLAG=()
if wanted mailbox; then
	ensure redis-server redis-server redis-server || { skip "Redis comparison: redis-server could not be installed"; REDIS_FLAG=(-redis ""); }
fi

# bench NAME LIMIT_SECONDS [flags...]: one mnbench subcommand, bounded by
# `timeout`, run in the background so that Ctrl-C reaches the trap at once.
bench() {
	local name=$1 limit=$2 pid rc
	shift 2
	wanted "$name" || return 0
	[ -n "$MNBENCH" ] || return 0
	mkdir -p "$BENCH_TMP/$name"
	timeout -k 20 "$limit" "$MNBENCH" "$name" -bin "$BIN" -root "$ROOT" -results "$RESULTS" \
		-tmp "$BENCH_TMP/$name" -timeout "$((limit - 10))s" "$@" 2>&1 &
	pid=$!
	CUR_GROUP=$pid
	wait "$pid"
	rc=$?
	CUR_GROUP=""
	case $rc in
	0) ;;
	124 | 137) say "skipped: rest of $name: over its ${limit}s time limit" ;;
	*) say "note: mnbench $name exited with status $rc (its figures so far are kept)" ;;
	esac
	rm -rf "${BENCH_TMP:?}/$name"
}

if [ "$QUICK" = 1 ]; then
	bench restart 150 "${RUNSV_FLAG[@]}"
	bench healload 120 "${RUNSV_FLAG[@]}"
	bench exit503 90
	bench coldstart 90
	bench idle 60 -idle 10s
	bench loglines 90 # macronode, then runit's svlogd on the same flood
	bench storage 200
	bench smallput 90
	bench gateway 120
	bench mailbox 180 "${REDIS_FLAG[@]}"
else
	bench restart 240 "${RUNSV_FLAG[@]}"
	bench healload 200 "${RUNSV_FLAG[@]}"
	bench exit503 150
	bench coldstart 150
	bench idle 120 -idle 60s
	bench loglines 180 # macronode, then runit's svlogd on the same flood
	bench storage 420
	bench smallput 150
	bench gateway 200
	bench mailbox 300 "${REDIS_FLAG[@]}"
fi
# The mailbox log's disk bound under steady load (10 min; 30 s when quick).
if [ "${BENCH_LONG:-0}" = 1 ] || [[ " $ONLY " == *" mailboxlong "* ]]; then
	if [ "$QUICK" = 1 ]; then bench mailboxlong 150; else bench mailboxlong 780; fi
fi

# --- Events: the live view (GET /api/v1/events, POST .../fault) ----------------
if [ "$QUICK" = 1 ]; then
	bench faultready 120
	bench eventsfanout 120
	bench ssecpu 120 # 30 s window (after about 20 s of connecting)
else
	bench faultready 180
	bench eventsfanout 150
	bench ssecpu 150 # 60 s window
fi

# --- DHT simulation: 1,000 kad-dht nodes on mocknet, in-process, no sockets --
# Its own 5-minute budget: the program stops itself at -timeout, 30s early
# to leave time for closing 1,000 nodes, and prints what it measured;
# `timeout` is the backstop. Quick mode keeps the 1,000 nodes and runs
# fewer lookups.
if wanted dhtsim; then
	say ""
	say "== dhtsim: in-process kad-dht network on libp2p's mocknet, with churn =="
	DHTSIM="$BENCH_TMP/dhtsim"
	if ! go build -o "$DHTSIM" ./pkg/planes/dht/dhtsim; then
		skip "dhtsim: it does not build"
	else
		if [ "$QUICK" = 1 ]; then DS_ARGS=(-lookups 150 -keys 100); else DS_ARGS=(-lookups 300 -keys 200); fi
		timeout -k 20 300 "$DHTSIM" -nodes 1000 -timeout 270s -results "$RESULTS" "${DS_ARGS[@]}" 2>&1 &
		CUR_GROUP=$!
		wait "$CUR_GROUP"
		case $? in
		0) ;;
		124 | 137) say "skipped: rest of dhtsim: over its 300s time limit" ;;
		*) say "note: dhtsim exited with an error (its figures so far are kept)" ;;
		esac
		CUR_GROUP=""
	fi
fi

# --- Go microbenchmarks ------------------------------------------------------
if wanted micro; then
	if [ "$QUICK" = 1 ]; then MB_ARGS=(-count 1 -benchtime 100ms); else MB_ARGS=(-count 6 -benchtime 300ms); fi
	say ""
	say "== Go microbenchmarks: go test -run '^\$' -bench . ${MB_ARGS[*]} ./pkg/... =="
	timeout -k 20 "$([ "$QUICK" = 1 ] && echo 240 || echo 600)" \
		go test -run '^$' -bench . "${MB_ARGS[@]}" ./pkg/... >"$BENCH_TMP/micro.txt" 2>&1 &
	CUR_GROUP=$!
	wait "$CUR_GROUP" || say "note: some packages' benchmarks failed, did not build or ran out of time (see below)"
	CUR_GROUP=""
	grep -E '^(Benchmark|ok |FAIL|---|pkg:|\?)' "$BENCH_TMP/micro.txt" | grep -v 'no test files'
	if [ "$QUICK" = 1 ]; then
		skip "benchstat: BENCH_QUICK=1 runs each benchmark once, too few samples for a spread"
	elif grep -q '^Benchmark' "$BENCH_TMP/micro.txt"; then
		say ""
		say "== benchstat (median ± spread over the runs) =="
		timeout -k 10 180 go run golang.org/x/perf/cmd/benchstat@latest "$BENCH_TMP/micro.txt" \
			2>"$BENCH_TMP/benchstat.err" &
		CUR_GROUP=$!
		wait "$CUR_GROUP" || skip "benchstat: $(tail -n1 "$BENCH_TMP/benchstat.err")"
		CUR_GROUP=
	fi
fi

# --- cluster: 20 full nodes on loopback (issue 10) ---------------------------
# BENCH_ONLY=cluster runs only this. Nodes 2..20 bootstrap from node 1; every
# overlay and DHT listens on its own fixed 127.0.0.1 TCP port. Convergence,
# provide and find-providers latency (median, p99), a 64 MiB blob fetched by
# node 20 from node 1 beside a local GET on node 1, RSS of the overlay and
# DHT children. Budget: 3 minutes (stopping the nodes included), 8 GiB RSS.
bench cluster 180

# --- summary -----------------------------------------------------------------
if [ -n "$MNBENCH" ] && [ -s "$RESULTS" ]; then
	"$MNBENCH" summary -results "$RESULTS"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then say "machine-readable figures: $RESULTS"; fi
fi
say ""
say "bench: done in $(($(date +%s) - T0))s"
