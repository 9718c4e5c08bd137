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

# Ports: node i (1..3) listens on 127.0.0.1:$((CLIENT_PORT + i)) for clients and
# $((PEER_PORT + i)) for peers (bases 18100 and 17100, not compare.sh's; overridable). Every
# port must be free: a busy one would have the benchmark measure whatever listens there.
CLIENT_PORT=${CLIENT_PORT:-18100}
PEER_PORT=${PEER_PORT:-17100}
python3 - $(for i in 1 2 3; do echo $((CLIENT_PORT + i)) $((PEER_PORT + i)); done) <<'PORTS' || exit 2
import socket, sys
busy = []
for port in map(int, sys.argv[1:]):
    probe = socket.socket()
    # As the servers do: connections of an earlier run in TIME_WAIT do not make a port busy,
    # a listener does.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        busy.append(port)
    finally:
        probe.close()
if busy:
    sys.exit("sustained.sh: ports in use on 127.0.0.1: %s (set CLIENT_PORT / PEER_PORT)" % busy)
PORTS
for i in 1 2 3; do
    {
        echo "id = $i"
        echo "cluster_id = \"sustained\""
        echo "data_dir = \"$WORK/raft-$i\""
        echo "peer_addr = \"127.0.0.1:$((PEER_PORT + i))\""
        echo "client_addr = \"127.0.0.1:$((CLIENT_PORT + i))\""
        echo "[raft]"
        echo "heartbeat_interval_ms = 30"
        echo "election_timeout_min_ms = 150"
        echo "election_timeout_max_ms = 300"
        for j in 1 2 3; do
            echo "[[members]]"
            echo "id = $j"
            echo "peer_addr = \"127.0.0.1:$((PEER_PORT + j))\""
            echo "client_addr = \"127.0.0.1:$((CLIENT_PORT + j))\""
        done
    } >"$WORK/raft-$i.toml"
    "$RAFT_NODE" --config "$WORK/raft-$i.toml" >"$WORK/raft-$i.log" 2>&1 &
    PIDS+=($!)
    disown  # killed by the cleanup: no "Killed" report from the shell
done
ENDPOINTS=$(for i in 1 2 3; do echo "http://127.0.0.1:$((CLIENT_PORT + i))"; done | paste -sd,)
ready=""
for _ in $(seq 1 100); do
    if "$RAFTCTL" --endpoints "$ENDPOINTS" put sustained/ready 1 >/dev/null 2>&1; then
        ready=yes
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || { echo "sustained.sh: the cluster took no write" >&2; exit 3; }
for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "sustained.sh: a node is not running (see $WORK/raft-*.log)" >&2; exit 3; }
done

echo "== $TOTAL puts, $CLIENTS clients, windows of $WINDOW" >&2
# raftctl exits 3 when any request failed; its summary says how many: keep the run's output.
status=0
"$RAFTCTL" --endpoints "$ENDPOINTS" -w "$OUTPUT" bench --workload put --target leader \
    --clients "$CLIENTS" --total "$TOTAL" --key-space "$KEY_SPACE" --key-bytes 16 \
    --value-bytes 64 --window "$WINDOW" || status=$?
echo "== data dir sizes (KiB): $(du -sk "$WORK"/raft-[123] | awk '{print $1}' | tr '\n' ' ')" >&2
exit "$status"
