#!/usr/bin/env bash
# bench/compare.sh: etcd and raft-node side by side on this machine, driven by one tool
# (`raftctl bench`, with `--target etcd` for etcd). Issue 14.
#
# Starts a 3-member etcd and then a 3-node raft-node cluster on loopback, one after the other,
# with the same fsync policy (both fsync every write) and the same timings (heartbeat 30 ms,
# election timeout 150 ms for etcd, 150-300 ms for raft-node), runs each workload on each,
# and prints one table with both systems, the ratio and the resident memory of each node.
# Then FAILOVER_TRIALS (5) failover trials per system: under a put load from 16 clients spread
# over every member (`raftctl bench --kill-leader`), the leader is killed with kill -9 and the
# time to the first successful write sent after the kill is measured; the killed member is
# restarted with its data dir and the cluster is waited for (3 members answering, a leader,
# a write taken) before the next trial. The table gives the median and all the trials, once
# per per-request timeout in FAILOVER_TIMEOUTS_MS ("1000 200"): a request that reached a
# member just before it noticed the leader's death may wait for that timeout (etcd holds a
# proposal forwarded to a dead leader until the client gives up), so the timeout is part of
# what is measured, and both systems are measured with the same ones.
# Leaves nothing running.
#
#   bench/compare.sh                       # the default sizes
#   TOTAL=20000 bench/compare.sh           # fewer requests per workload
#   FAILOVER_TRIALS=0 bench/compare.sh     # no failover trials
#   RAFT_CLIENT_PORT=18300 RAFT_PEER_PORT=17300 bench/compare.sh   # other ports (see below)
#
# How each is driven: both by CLIENTS tasks of one 2-thread runtime. For raft-node each task has
# a keep-alive HTTP/1.1 connection of its own (raftctl's own small client; HTTP/1.1 answers one
# request at a time); for etcd the tasks share ETCD_CONNECTIONS (4) gRPC connections, as etcd's
# benchmark tool shares --conns. Both ways cost the load generator little CPU, which it shares
# with the cluster.
#
# Needs etcd, etcdctl and protoc (installed from the distribution's packages when missing
# and running as root), python3, and builds raft-node and raftctl (release, `--features etcd`).
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${TOTAL:-100000}
SEQUENTIAL_TOTAL=${SEQUENTIAL_TOTAL:-3000}
CLIENTS=${CLIENTS:-64}
ETCD_CONNECTIONS=${ETCD_CONNECTIONS:-4}
FAILOVER_TRIALS=${FAILOVER_TRIALS:-5}
FAILOVER_CLIENTS=${FAILOVER_CLIENTS:-16}
FAILOVER_TIMEOUTS_MS=${FAILOVER_TIMEOUTS_MS:-1000 200}

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
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RAFT_NODE=$TARGET_DIR/release/raft-node
RAFTCTL=$TARGET_DIR/release/raftctl

WORK=$(mktemp -d -t raft-compare-XXXXXX)
# Each running member's pid is in $WORK/pid/<name> (rewritten when a member is restarted,
# removed when it is stopped on purpose), so the cleanup kills exactly what still runs.
mkdir -p "$WORK/pid"
cleanup() {
    for file in "$WORK"/pid/*; do
        [ -f "$file" ] && kill -9 "$(cat "$file")" 2>/dev/null || true
    done
    sleep 0.2
    rm -rf "$WORK"
}
trap cleanup EXIT

# Ports: member i (1..3) listens on 127.0.0.1:$((BASE + i)), with the bases below (overridable,
# e.g. when another cluster is running here): etcd clients 23790, peers 23800; raft-node
# clients 18000, peers 17000. Every port must be free: a busy one would have the benchmark
# measure whatever already listens there.
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-23790}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-23800}
RAFT_CLIENT_PORT=${RAFT_CLIENT_PORT:-18000}
RAFT_PEER_PORT=${RAFT_PEER_PORT:-17000}
require_free_ports() {
    python3 - "$@" <<'PORTS' || exit 2
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
    sys.exit("compare.sh: ports in use on 127.0.0.1: %s (set *_PORT to other bases)" % busy)
PORTS
}
require_free_ports $(for i in 1 2 3; do
    echo $((ETCD_CLIENT_PORT + i)) $((ETCD_PEER_PORT + i)) $((RAFT_CLIENT_PORT + i)) $((RAFT_PEER_PORT + i))
done)
# Fails when a member started on purpose is not running (it could not bind, or crashed).
require_running() {
    local file
    for file in "$@"; do
        kill -0 "$(cat "$file")" 2>/dev/null || {
            echo "compare.sh: $(basename "$file") is not running; its log: $WORK/$(basename "$file").log" >&2
            exit 3
        }
    done
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# One bench run; prints "requests_per_second p50_ms p99_ms errors" (errors -1: no summary).
run_bench() {
    local endpoints=$1 target=$2 workload=$3 clients=$4 total=$5 summary
    # raftctl exits 3 when any request failed; the summary says how many, so keep it.
    # etcd's clients are tasks sharing ETCD_CONNECTIONS gRPC connections (as etcd's benchmark
    # --conns); raft-node's are tasks with a keep-alive HTTP/1.1 connection each.
    summary=$("$RAFTCTL" --endpoints "$endpoints" bench --target "$target" --workload "$workload" \
        --clients "$clients" --total "$total" --key-space 10000 --key-bytes 16 \
        --value-bytes 64 --etcd-connections "$ETCD_CONNECTIONS" -w json 2>/dev/null || true)
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

# Failover trials: FAILOVER_TRIALS times, kill -9 the leader under load (raftctl names it by
# its 1-based position in the endpoints: $LEADER_INDEX), restart it with its data dir
# (`restart_<system> INDEX`) and wait until `healthy_<system>` holds, with per-request timeout
# TIMEOUT_MS. Sets FAILOVER[system,TIMEOUT_MS] to "median all-trials-comma-separated" (n/a for
# a trial without a time).
declare -A FAILOVER
failover_trials() {
    local system=$1 endpoints=$2 target=$3 timeout_ms=$4 trials="" trial report leader milliseconds
    for trial in $(seq 1 "$FAILOVER_TRIALS"); do
        report=$("$RAFTCTL" --endpoints "$endpoints" bench --target "$target" \
            --kill-leader "kill -9 \$(cat $WORK/pid/$system-\$LEADER_INDEX)" \
            --request-timeout-ms "$timeout_ms" \
            --clients "$FAILOVER_CLIENTS" --key-bytes 16 --value-bytes 64 -w json 2>"$WORK/failover.err" || true)
        read -r leader milliseconds < <(python3 -c '
import json, sys
try:
    report = json.loads(sys.argv[1])
except ValueError:
    print("0 n/a")
    sys.exit(0)
ms = report.get("failover_ms")
print(report.get("leader_index", 0), "n/a" if ms is None else "%.1f" % ms)
' "$report")
        echo "   $system failover trial $trial (${timeout_ms} ms request timeout): leader $leader killed, $milliseconds ms" >&2
        trials="$trials${trials:+,}$milliseconds"
        if [ "$leader" = 0 ]; then
            echo "compare.sh: $system failover trial $trial failed: $(cat "$WORK/failover.err")" >&2
            break
        fi
        "restart_$system" "$leader"
        "healthy_$system" || { echo "compare.sh: $system did not recover after trial $trial" >&2; exit 3; }
        require_running "$WORK/pid/$system-$leader"
    done
    FAILOVER[$system,$timeout_ms]=$(python3 -c '
import statistics, sys
trials = [float(t) for t in sys.argv[1].split(",") if t not in ("", "n/a")]
print(("%.1f" % statistics.median(trials)) if trials else "n/a", sys.argv[1] or "none")
' "$trials")
}

echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members" >&2
CLUSTER=$(for i in 1 2 3; do echo "e$i=http://127.0.0.1:$((ETCD_PEER_PORT + i))"; done | paste -sd,)
ETCD_ENDPOINTS=$(for i in 1 2 3; do echo "http://127.0.0.1:$((ETCD_CLIENT_PORT + i))"; done | paste -sd,)
start_etcd() {
    local i=$1
    # On a restart the data dir is there and the --initial-* flags are ignored.
    etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
        --listen-client-urls "http://127.0.0.1:$((ETCD_CLIENT_PORT + i))" \
        --advertise-client-urls "http://127.0.0.1:$((ETCD_CLIENT_PORT + i))" \
        --listen-peer-urls "http://127.0.0.1:$((ETCD_PEER_PORT + i))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PEER_PORT + i))" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new \
        --heartbeat-interval 30 --election-timeout 150 >>"$WORK/etcd-$i.log" 2>&1 &
    echo $! >"$WORK/pid/etcd-$i"
    disown  # killed on purpose later: no "Killed" report from the shell
}
restart_etcd() { start_etcd "$1"; }
# The leader's endpoint once all three members answer and agree on a leader.
etcd_leader_when_healthy() {
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --command-timeout 1s \
        endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
members = json.load(sys.stdin)
leaders = {member["Status"]["leader"] for member in members}
if len(members) == 3 and len(leaders) == 1 and 0 not in leaders:
    for member in members:
        if member["Status"]["leader"] == member["Status"]["header"]["member_id"]:
            print(member["Endpoint"])
' 2>/dev/null || true
}
healthy_etcd() {
    for _ in $(seq 1 200); do
        if [ -n "$(etcd_leader_when_healthy)" ] && ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" \
            --command-timeout 1s put compare/ready 1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
for i in 1 2 3; do start_etcd "$i"; done
healthy_etcd || { echo "compare.sh: etcd elected no leader" >&2; exit 3; }
require_running "$WORK"/pid/etcd-*
etcd_leader=$(etcd_leader_when_healthy)
measure etcd "$etcd_leader" etcd
ETCD_RSS=""
for i in 1 2 3; do ETCD_RSS="$ETCD_RSS $(( $(rss_kib "$(cat "$WORK/pid/etcd-$i")") / 1024 ))"; done
if [ "$FAILOVER_TRIALS" -gt 0 ]; then
    for timeout_ms in $FAILOVER_TIMEOUTS_MS; do
        echo "== etcd: $FAILOVER_TRIALS failover trials, ${timeout_ms} ms request timeout" >&2
        failover_trials etcd "$ETCD_ENDPOINTS" etcd "$timeout_ms"
    done
fi
for i in 1 2 3; do
    kill -9 "$(cat "$WORK/pid/etcd-$i")" 2>/dev/null || true
    rm -f "$WORK/pid/etcd-$i"
done

echo "== raft-node: 3 nodes" >&2
start_raft() {
    local i=$1
    "$RAFT_NODE" --config "$WORK/raft-$i.toml" >>"$WORK/raft-$i.log" 2>&1 &
    echo $! >"$WORK/pid/raft-$i"
    disown
}
restart_raft() { start_raft "$1"; }
RAFT_ENDPOINTS=$(for i in 1 2 3; do echo "http://127.0.0.1:$((RAFT_CLIENT_PORT + i))"; done | paste -sd,)
# Every member answers and knows the leader (`endpoint health` exits 0), and a write is taken.
healthy_raft() {
    for _ in $(seq 1 200); do
        if "$RAFTCTL" --endpoints "$RAFT_ENDPOINTS" endpoint health >/dev/null 2>&1 &&
            "$RAFTCTL" --endpoints "$RAFT_ENDPOINTS" put compare/ready 1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
for i in 1 2 3; do
    {
        echo "id = $i"
        echo "cluster_id = \"compare\""
        echo "data_dir = \"$WORK/raft-$i\""
        echo "peer_addr = \"127.0.0.1:$((RAFT_PEER_PORT + i))\""
        echo "client_addr = \"127.0.0.1:$((RAFT_CLIENT_PORT + i))\""
        echo "[raft]"
        echo "heartbeat_interval_ms = 30"
        echo "election_timeout_min_ms = 150"
        echo "election_timeout_max_ms = 300"
        for j in 1 2 3; do
            echo "[[members]]"
            echo "id = $j"
            echo "peer_addr = \"127.0.0.1:$((RAFT_PEER_PORT + j))\""
            echo "client_addr = \"127.0.0.1:$((RAFT_CLIENT_PORT + j))\""
        done
    } >"$WORK/raft-$i.toml"
    start_raft "$i"
done
healthy_raft || { echo "compare.sh: raft-node elected no leader" >&2; exit 3; }
require_running "$WORK"/pid/raft-*
measure raft "$RAFT_ENDPOINTS" leader
RAFT_RSS=""
for i in 1 2 3; do RAFT_RSS="$RAFT_RSS $(( $(rss_kib "$(cat "$WORK/pid/raft-$i")") / 1024 ))"; done
if [ "$FAILOVER_TRIALS" -gt 0 ]; then
    for timeout_ms in $FAILOVER_TIMEOUTS_MS; do
        echo "== raft-node: $FAILOVER_TRIALS failover trials, ${timeout_ms} ms request timeout" >&2
        failover_trials raft "$RAFT_ENDPOINTS" round-robin "$timeout_ms"
    done
fi

python3 - "$CLIENTS" "${RESULT[etcd,put64]}" "${RESULT[raft,put64]}" "${RESULT[etcd,put1]}" \
    "${RESULT[raft,put1]}" "${RESULT[etcd,get64]}" "${RESULT[raft,get64]}" "$ETCD_RSS" "$RAFT_RSS" \
    "$FAILOVER_CLIENTS" "$(for timeout_ms in $FAILOVER_TIMEOUTS_MS; do
        echo "$timeout_ms ${FAILOVER[etcd,$timeout_ms]:-n/a not-run} ${FAILOVER[raft,$timeout_ms]:-n/a not-run}"
    done)" <<'EOF'
import sys
clients = sys.argv[1]
e_put, r_put, e_put1, r_put1, e_get, r_get = [list(map(float, a.split())) for a in sys.argv[2:8]]
etcd_rss, raft_rss = sys.argv[8].split(), sys.argv[9].split()
failover_clients = sys.argv[10]
# One line per request timeout: "timeout etcd_median etcd_trials raft_median raft_trials".
failover_rows = [line.split() for line in sys.argv[11].splitlines() if line.strip()]
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
def failover_cell(median, trials):
    return "%s ms (median; trials %s)" % (median, trials.replace(",", ", "))
for timeout_ms, e_fail_median, e_fail_all, r_fail_median, r_fail_all in failover_rows:
    failover_ratio = "n/a"
    if "n/a" not in (e_fail_median, r_fail_median):
        failover_ratio = ratio(float(r_fail_median), float(e_fail_median), higher_is_better=False)
    print("| failover after kill -9 of the leader, %s clients, %s ms request timeout (ms to the first write) | %s | %s | %s |" % (
        failover_clients, timeout_ms, failover_cell(e_fail_median, e_fail_all),
        failover_cell(r_fail_median, r_fail_all), failover_ratio))
EOF
