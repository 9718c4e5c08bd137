#!/usr/bin/env bash
# bench/sustained.sh: does raft-node's put rate hold over a long run? Issue 14's acceptance:
# "over 1,000,000 puts with 64 clients, the rate of the last 100,000 is at least 80% of the
# first 100,000".
#
# Starts a 3-node raft-node cluster on loopback (the timings of bench/compare.sh: heartbeat
# 30 ms, election timeout 150-300 ms; every write fsynced), runs TOTAL puts from CLIENTS
# clients to the leader (16-byte keys, 64-byte values, KEY_SPACE distinct keys) with
# `raftctl bench --window WINDOW`, which prints the rate of each consecutive window of WINDOW
# successful puts and "last/first = X %". Leaves nothing running.
#
#   bench/sustained.sh                          # 1,000,000 puts, windows of 100,000
#   TOTAL=200000 WINDOW=20000 bench/sustained.sh
#   OUTPUT=json bench/sustained.sh              # raftctl's JSON summary instead of the table
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${TOTAL:-1000000}
WINDOW=${WINDOW:-100000}
CLIENTS=${CLIENTS:-64}
KEY_SPACE=${KEY_SPACE:-100000}
OUTPUT=${OUTPUT:-table}

echo "== building raft-node and raftctl (release)" >&2
cargo build --release -q -p node-bin --bin raft-node --bin raftctl
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RAFT_NODE=$TARGET_DIR/release/raft-node
RAFTCTL=$TARGET_DIR/release/raftctl

WORK=$(mktemp -d -t raft-sustained-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    sleep 0.2
    rm -rf "$WORK"
}
trap cleanup EXIT

# Ports: clients 127.0.0.1:1810{1,2,3}, peers 1710{1,2,3} (not compare.sh's, so both can run).
for i in 1 2 3; do
    {
        echo "id = $i"
        echo "cluster_id = \"sustained\""
        echo "data_dir = \"$WORK/raft-$i\""
        echo "peer_addr = \"127.0.0.1:1710$i\""
        echo "client_addr = \"127.0.0.1:1810$i\""
        echo "[raft]"
        echo "heartbeat_interval_ms = 30"
        echo "election_timeout_min_ms = 150"
        echo "election_timeout_max_ms = 300"
        for j in 1 2 3; do
            echo "[[members]]"
            echo "id = $j"
            echo "peer_addr = \"127.0.0.1:1710$j\""
            echo "client_addr = \"127.0.0.1:1810$j\""
        done
    } >"$WORK/raft-$i.toml"
    "$RAFT_NODE" --config "$WORK/raft-$i.toml" >"$WORK/raft-$i.log" 2>&1 &
    PIDS+=($!)
done
ENDPOINTS=http://127.0.0.1:18101,http://127.0.0.1:18102,http://127.0.0.1:18103
ready=""
for _ in $(seq 1 100); do
    if "$RAFTCTL" --endpoints "$ENDPOINTS" put sustained/ready 1 >/dev/null 2>&1; then
        ready=yes
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || { echo "sustained.sh: the cluster took no write" >&2; exit 3; }

echo "== $TOTAL puts, $CLIENTS clients, windows of $WINDOW" >&2
# raftctl exits 3 when any request failed; its summary says how many: keep the run's output.
status=0
"$RAFTCTL" --endpoints "$ENDPOINTS" -w "$OUTPUT" bench --workload put --target leader \
    --clients "$CLIENTS" --total "$TOTAL" --key-space "$KEY_SPACE" --key-bytes 16 \
    --value-bytes 64 --window "$WINDOW" || status=$?
echo "== data dir sizes (KiB): $(du -sk "$WORK"/raft-* | awk '{print $1}' | tr '\n' ' ')" >&2
exit "$status"
