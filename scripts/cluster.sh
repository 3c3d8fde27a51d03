#!/usr/bin/env bash
# make cluster N=3: start N macronode nodes on loopback, each with its own
# data dir and ports; nodes 2..N bootstrap from node 1. Prints a table of
# admin and gateway URLs and node ids, then waits; Ctrl-C stops them all.
#
# Ports of node i (1-based): BASE + 100*i + { admin 80, gateway 90,
# storage 30, index 40, mailbox 50, overlay 10 (p2p 11), dht 20 (p2p 21) }.
# BASE defaults to 20000. Everything binds 127.0.0.1 only.
#
# Environment: N (default 3), BASE (20000), CLUSTER_DIR (default a new temp
# dir, kept after exit so you can read the logs: node<i>/node.log).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(pwd)/bin"
N=${N:-3}
BASE=${BASE:-20000}
DIR=${CLUSTER_DIR:-$(mktemp -d /tmp/mncluster.XXXXXX)}
mkdir -p "$DIR"

if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 50 ]; then
  echo "cluster: N must be 1..50, got $N" >&2
  exit 2
fi

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping ${#pids[@]} nodes..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "stopped; logs in $DIR/node<i>/node.log"
}
trap stop_all INT TERM EXIT

port() { echo $((BASE + 100 * $1 + $2)); }

# node_env i: the environment of node i, one VAR=value per line.
node_env() {
  local i=$1
  cat <<ENV
RON_HTTP_ADDR=127.0.0.1:$(port "$i" 80)
RON_GATEWAY_ADDR=127.0.0.1:$(port "$i" 90)
RON_STORAGE_ADDR=127.0.0.1:$(port "$i" 30)
RON_INDEX_ADDR=127.0.0.1:$(port "$i" 40)
RON_MAILBOX_ADDR=127.0.0.1:$(port "$i" 50)
RON_OVERLAY_ADDR=127.0.0.1:$(port "$i" 10)
RON_DHT_ADDR=127.0.0.1:$(port "$i" 20)
RON_OVERLAY_P2P_ADDR=/ip4/127.0.0.1/tcp/$(port "$i" 11)
RON_DHT_P2P_ADDR=/ip4/127.0.0.1/tcp/$(port "$i" 21)
RON_DATA_DIR=$DIR/node$i/data
RON_LOG_FORMAT=json
ENV
}

wait_ready() { # wait_ready i: poll the node's /readyz for up to 60s
  local i=$1 url="http://127.0.0.1:$(port "$1" 80)/readyz"
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      echo "cluster: node $i exited; see $DIR/node$i/node.log" >&2
      tail -5 "$DIR/node$i/node.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "cluster: node $i not ready after 60s; see $DIR/node$i/node.log" >&2
  return 1
}

node_id() { # node_id i
  env $(node_env "$1" | xargs) "$BIN/macronode" id
}

start_node() { # start_node i [bootstrap]
  local i=$1 boot=${2:-}
  mkdir -p "$DIR/node$i"
  (
    # shellcheck disable=SC2046
    exec env $(node_env "$i" | xargs) ${boot:+RON_BOOTSTRAP=$boot} "$BIN/macronode" run
  ) >"$DIR/node$i/node.log" 2>&1 &
  pids+=($!)
}

start_node 1
wait_ready 1
ID1=$(node_id 1)
BOOT="/ip4/127.0.0.1/tcp/$(port 1 11)/p2p/$ID1"
for i in $(seq 2 "$N"); do start_node "$i" "$BOOT"; done
for i in $(seq 2 "$N"); do wait_ready "$i"; done

printf '\n%-5s %-28s %-28s %s\n' NODE ADMIN GATEWAY "NODE ID"
for i in $(seq 1 "$N"); do
  printf '%-5s %-28s %-28s %s\n' "$i" "http://127.0.0.1:$(port "$i" 80)" "http://127.0.0.1:$(port "$i" 90)" "$(node_id "$i")"
done
cat <<MSG

Bootstrap: $BOOT
Try:  addr=\$(curl -s --data-binary @README.md http://127.0.0.1:$(port 1 90)/o | sed 's/.*"address":"\([^"]*\)".*/\1/')
      curl -si http://127.0.0.1:$(port "$N" 90)/o/\$addr | grep -i x-macronode-source
      RON_HTTP_ADDR=127.0.0.1:$(port "$N" 80) bin/macronode peers
Logs: $DIR/node<i>/node.log.   Ctrl-C stops every node.
MSG
wait
