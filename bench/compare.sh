#!/usr/bin/env bash
# bench/compare.sh: etcd and raft-node side by side on this machine, driven by one tool
# (`raftctl bench`, with `--target etcd` for etcd). Issue 14.
#
# Starts a 3-member etcd and then a 3-node raft-node cluster on loopback, one after the other,
# with the same fsync policy (both fsync every write) and the same timings (heartbeat 30 ms,
# election timeout 150 ms for etcd, 150-300 ms for raft-node), runs each workload on each,
# and prints one table with both systems, the ratio and the resident memory of each node.
# Leaves nothing running. Failover trials are not measured yet (issue 14 keeps them open).
#
#   bench/compare.sh              # the default sizes
#   TOTAL=20000 bench/compare.sh  # fewer requests per workload
#
# Needs etcd, etcdctl and protoc (installed from the distribution's packages when missing
# and running as root), python3, and builds raft-node and raftctl (release, `--features etcd`).
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${TOTAL:-30000}
SEQUENTIAL_TOTAL=${SEQUENTIAL_TOTAL:-3000}
CLIENTS=${CLIENTS:-64}

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null || ! command -v protoc >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client protobuf-compiler >/dev/null
    else
        echo "compare.sh: needs etcd, etcdctl and protoc (Debian: etcd-server etcd-client protobuf-compiler)" >&2
        exit 2
    fi
fi
command -v python3 >/dev/null || { echo "compare.sh: needs python3" >&2; exit 2; }

echo "== building raft-node and raftctl (release, --features etcd)" >&2
cargo build --release -q -p node-bin --features etcd --bin raft-node --bin raftctl
RAFT_NODE=$PWD/target/release/raft-node
RAFTCTL=$PWD/target/release/raftctl

WORK=$(mktemp -d -t raft-compare-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    sleep 0.2
    rm -rf "$WORK"
}
trap cleanup EXIT

# Ports: etcd clients 127.0.0.1:2379{1,2,3}, peers 2380{1,2,3}; raft-node clients
# 127.0.0.1:1800{1,2,3}, peers 1700{1,2,3}.
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# One bench run; prints "requests_per_second p50_ms p99_ms errors" (errors -1: no summary).
run_bench() {
    local endpoints=$1 target=$2 workload=$3 clients=$4 total=$5 summary
    # raftctl exits 3 when any request failed; the summary says how many, so keep it.
    summary=$("$RAFTCTL" --endpoints "$endpoints" bench --target "$target" --workload "$workload" \
        --clients "$clients" --total "$total" --key-space 10000 --key-bytes 16 \
        --value-bytes 64 -w json 2>/dev/null || true)
    python3 -c '
import json, sys
try:
    s = json.loads(sys.argv[1])
except ValueError:
    print("0 0 0 -1")
    sys.exit(0)
errors = sum(s["errors"].values())
print("%.0f %.3f %.3f %d" % (s["requests_per_second"], s["latency_ms"]["p50"], s["latency_ms"]["p99"], errors))
' "$summary"
}

declare -A RESULT
measure() {
    local system=$1 endpoints=$2 target=$3
    # Keys exist for the reads.
    run_bench "$endpoints" "$target" put 16 10000 >/dev/null
    RESULT[$system,put64]=$(run_bench "$endpoints" "$target" put "$CLIENTS" "$TOTAL")
    RESULT[$system,put1]=$(run_bench "$endpoints" "$target" put 1 "$SEQUENTIAL_TOTAL")
    RESULT[$system,get64]=$(run_bench "$endpoints" "$target" get "$CLIENTS" "$TOTAL")
}

echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members" >&2
CLUSTER="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
ETCD_PIDS=()
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
        --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
        --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new \
        --heartbeat-interval 30 --election-timeout 150 >"$WORK/etcd-$i.log" 2>&1 &
    PIDS+=($!)
    ETCD_PIDS+=($!)
    disown  # killed on purpose later: no "Killed" report from the shell
done
etcd_leader=""
for _ in $(seq 1 100); do
    etcd_leader=$(ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793 \
        endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for member in json.load(sys.stdin):
    if member["Status"]["leader"] == member["Status"]["header"]["member_id"]:
        print(member["Endpoint"])
' 2>/dev/null || true)
    [ -n "$etcd_leader" ] && break
    sleep 0.1
done
[ -n "$etcd_leader" ] || { echo "compare.sh: etcd elected no leader" >&2; exit 3; }
measure etcd "http://$etcd_leader" etcd
ETCD_RSS=""
for pid in "${ETCD_PIDS[@]}"; do ETCD_RSS="$ETCD_RSS $(( $(rss_kib "$pid") / 1024 ))"; done
for pid in "${ETCD_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done

echo "== raft-node: 3 nodes" >&2
RAFT_PIDS=()
for i in 1 2 3; do
    {
        echo "id = $i"
        echo "cluster_id = \"compare\""
        echo "data_dir = \"$WORK/raft-$i\""
        echo "peer_addr = \"127.0.0.1:1700$i\""
        echo "client_addr = \"127.0.0.1:1800$i\""
        echo "[raft]"
        echo "heartbeat_interval_ms = 30"
        echo "election_timeout_min_ms = 150"
        echo "election_timeout_max_ms = 300"
        for j in 1 2 3; do
            echo "[[members]]"
            echo "id = $j"
            echo "peer_addr = \"127.0.0.1:1700$j\""
            echo "client_addr = \"127.0.0.1:1800$j\""
        done
    } >"$WORK/raft-$i.toml"
    "$RAFT_NODE" --config "$WORK/raft-$i.toml" >"$WORK/raft-$i.log" 2>&1 &
    PIDS+=($!)
    RAFT_PIDS+=($!)
    disown
done
RAFT_ENDPOINTS=http://127.0.0.1:18001,http://127.0.0.1:18002,http://127.0.0.1:18003
for _ in $(seq 1 100); do
    "$RAFTCTL" --endpoints "$RAFT_ENDPOINTS" put compare/ready 1 >/dev/null 2>&1 && break
    sleep 0.1
done
measure raft "$RAFT_ENDPOINTS" leader
RAFT_RSS=""
for pid in "${RAFT_PIDS[@]}"; do RAFT_RSS="$RAFT_RSS $(( $(rss_kib "$pid") / 1024 ))"; done

python3 - "$CLIENTS" "${RESULT[etcd,put64]}" "${RESULT[raft,put64]}" "${RESULT[etcd,put1]}" \
    "${RESULT[raft,put1]}" "${RESULT[etcd,get64]}" "${RESULT[raft,get64]}" "$ETCD_RSS" "$RAFT_RSS" <<'EOF'
import sys
clients = sys.argv[1]
e_put, r_put, e_put1, r_put1, e_get, r_get = [list(map(float, a.split())) for a in sys.argv[2:8]]
etcd_rss, raft_rss = sys.argv[8].split(), sys.argv[9].split()
def ratio(ours, theirs, higher_is_better=True):
    if ours <= 0 or theirs <= 0:
        return "n/a"
    return "%.2f x" % ((ours / theirs) if higher_is_better else (theirs / ours))
rows = [
    ("put, %s clients (ops/s)" % clients, e_put[0], r_put[0], True),
    ("put, 1 client, p50 (ms)", e_put1[1], r_put1[1], False),
    ("put, 1 client, p99 (ms)", e_put1[2], r_put1[2], False),
    ("linearizable get, %s clients (ops/s)" % clients, e_get[0], r_get[0], True),
]
print("| workload | etcd | raft-node | ratio |")
print("| --- | --- | --- | --- |")
for name, theirs, ours, higher in rows:
    print("| %s | %s | %s | %s |" % (name, "%g" % theirs, "%g" % ours, ratio(ours, theirs, higher)))
print("| errors (put64, put1, get64) | %d, %d, %d | %d, %d, %d | |" % (e_put[3], e_put1[3], e_get[3], r_put[3], r_put1[3], r_get[3]))
print("| resident memory per node (MiB) | %s | %s | |" % (" / ".join(etcd_rss), " / ".join(raft_rss)))
print("| failover after kill -9 of the leader | not measured yet | not measured yet | |")
EOF
