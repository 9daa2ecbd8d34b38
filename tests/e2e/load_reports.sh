#!/usr/bin/env bash
# tests/e2e/load_reports.sh -- DPR-style load reports over real multicast between network
# namespaces, announced and heard by cn-load-agent.
#
# Topology: a hub namespace holding a Linux bridge (multicast snooping off), and one namespace
# per node, each with a veth into the bridge:
#   n1 10.97.0.1, n2 10.97.0.2, n3 10.97.0.3   announcers (node ids 1, 2, 3)
#   ls 10.97.0.10                              the listener (members 1=n1, 2=n2, 3=n3)
#   st 10.97.0.20                              a stranger announcing as node 9 (not configured)
# plus, in n1, an impostor announcing node id 7 from n1's address. Every agent sends and joins on
# its own interface (--interface), so no multicast route is needed.
#
# Checks:
#   1. the listener sees all three members up;
#   2. n2's announcer killed with SIGKILL is marked down within period x dead-after + tolerance,
#      and not before the silence can have lasted that long (minus one period and some slack);
#   3. n2 restarted comes back up;
#   4. n3 stopped with SIGTERM announces it is leaving and is down at once (well before the
#      silence deadline);
#   5. an HTTP server in n1 (python3 -m http.server), health-checked by the listener: up; killed, down with the
#      reason; restarted, up again;
#   6. n1 never went down by its reports; the listener counted the stranger (unknown_source) and
#      the impostor (wrong_node_id) and accepted reports.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77. Every
# name it creates starts with "cnlr"; the trap deletes exactly those and kills exactly the agents
# it started.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

e2e_name=load_reports
e2e_prefix=cnlr
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
e2e_on_fail() {
    if [[ -n ${tmp:-} && -f $tmp/listener.out ]]; then
        printf -- '--- listener output (last 40 lines) ---\n' >&2
        tail -n 40 "$tmp/listener.out" >&2
    fi
}

# The timing under test. The tolerance is generous on purpose: a 2-core machine shared with
# compilers may hold a process off the CPU for a second or more.
period_ms=250
dead_after=8
dead_ms=$((period_ms * dead_after))
tolerance_ms=3000

e2e_require_netns
agent=$(e2e_find_example cn-load-agent) || exit $?
echo "load_reports: using $agent"

tag=cnlr-$$
hub=$tag-hub
nodes=(n1 n2 n3 ls st)
declare -A addr=([n1]=10.97.0.1 [n2]=10.97.0.2 [n3]=10.97.0.3 [ls]=10.97.0.10 [st]=10.97.0.20)
made_ns=()
pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnlr-e2e.XXXXXX")

cleanup() {
    local p ns
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkns() {
    ip netns add "$1" || fail "ip netns add $1"
    made_ns+=("$1")
    ip -n "$1" link set lo up
}

# --- topology ---------------------------------------------------------------------------------
mkns "$hub"
ip -n "$hub" link add cnlr-br type bridge mcast_snooping 0 || fail "cannot create the bridge"
ip -n "$hub" link set cnlr-br up
for n in "${nodes[@]}"; do
    mkns "$tag-$n"
    ip -n "$hub" link add "cnlr-$n" type veth peer name eth0 netns "$tag-$n" || fail "veth for $n"
    ip -n "$hub" link set "cnlr-$n" master cnlr-br up
    ip -n "$tag-$n" addr add "${addr[$n]}/24" dev eth0
    ip -n "$tag-$n" link set eth0 up
done
# The bridge forwards once its ports are up: wait until the listener reaches every node.
for n in n1 n2 n3 st; do
    ok=0
    for _ in $(seq 1 100); do
        if ip netns exec "$tag-ls" ping -c 1 -W 1 -q "${addr[$n]}" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    ((ok)) || fail "the listener cannot reach $n (${addr[$n]}) over the bridge"
done

# --- agents -----------------------------------------------------------------------------------
common=(--period-ms "$period_ms" --dead-after "$dead_after")

# start_agent <name> <namespace> <args...>: starts cn-load-agent in the namespace, output to
# $tmp/<name>.out; sets started_pid.
started_pid=""
start_agent() {
    local name=$1 ns=$2
    shift 2
    start_agent_cmd "$name" "$ns" "$agent" "${common[@]}" "$@"
}
# start_agent_cmd <name> <namespace> <command...>: any command, the same way.
start_agent_cmd() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" "$@" >>"$tmp/$name.out" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for <file> <extended regex> <count> <timeout ms>: polls until the file holds at least
# <count> matching lines; prints the time it took (ms); fails on timeout.
wait_for() {
    local file=$1 re=$2 count=$3 limit=$4 start n
    start=$(now_ms)
    while :; do
        n=$(grep -cE -- "$re" "$file" 2>/dev/null)
        ((${n:-0} >= count)) && { echo $(($(now_ms) - start)); return 0; }
        (($(now_ms) - start > limit)) && return 1
        sleep 0.02
    done
}

# n1 also serves HTTP (python3's http.server, $tmp/www/health holds "ok"), health-checked by the
# listener. It is started before the listener and polled until it answers.
command -v python3 >/dev/null 2>&1 || fail "python3 is needed for the HTTP server of the health check"
mkdir -p "$tmp/www" && echo ok >"$tmp/www/health"
start_http() {
    start_agent_cmd http "$tag-n1" python3 -m http.server 8080 --bind "${addr[n1]}" --directory "$tmp/www"
    http_pid=$started_pid
    local _
    for _ in $(seq 1 200); do
        if ip netns exec "$tag-ls" curl -sf -m 1 -o /dev/null "http://${addr[n1]}:8080/health"; then return 0; fi
        sleep 0.05
    done
    fail "the HTTP server in n1 did not answer within 10 s"
}
start_http

start_agent listener "$tag-ls" --listen --events-only --interface "${addr[ls]}" \
    --member "1=${addr[n1]}" --member "2=${addr[n2]}" --member "3=${addr[n3]}" \
    --health-http "1=http://${addr[n1]}:8080/health" --expect-body ok \
    --health-interval-ms 200 --health-timeout-ms 150 --rise 2 --fall 2
listener_pid=$started_pid
wait_for "$tmp/listener.out" '^cn-load-agent: listening' 1 10000 >/dev/null || fail "the listener did not start"

declare -A agent_pid
for i in 1 2 3; do
    start_agent "n$i" "$tag-n$i" --announce --node-id "$i" --interface "${addr[n$i]}"
    agent_pid[n$i]=$started_pid
done
start_agent stranger "$tag-st" --announce --node-id 9 --interface "${addr[st]}"
start_agent impostor "$tag-n1" --announce --node-id 7 --interface "${addr[n1]}"

# --- 1. all members up ------------------------------------------------------------------------
for slot in 0 1 2; do
    t=$(wait_for "$tmp/listener.out" "^event up member=$slot .*source=reports" 1 15000) ||
        fail "member $slot (node $((slot + 1))) did not come up within 15 s"
done
echo "load_reports: all three members are up"

# --- 2. kill n2: down within the deadline -----------------------------------------------------
# (the braces keep bash's "Killed" job notice out of the log)
{
    kill -KILL "${agent_pid[n2]}"
    killed_at=$(now_ms)
    wait "${agent_pid[n2]}"
} 2>/dev/null
t=$(wait_for "$tmp/listener.out" '^event down member=1 .*source=reports' 1 $((dead_ms + tolerance_ms))) ||
    fail "member 1 (node 2) was not marked down within ${dead_ms} ms + ${tolerance_ms} ms of its announcer's death"
took=$(($(now_ms) - killed_at))
low=$((dead_ms - period_ms - 250))
((took >= low)) || fail "member 1 was marked down after ${took} ms, sooner than the silence deadline allows (${low} ms)"
grep -E '^event down member=1 ' "$tmp/listener.out" | grep -q 'no load report for' ||
    fail "the down event of member 1 does not give the silence as its reason"
echo "load_reports: node 2 killed, marked down after ${took} ms (deadline ${dead_ms} ms = ${dead_after} x ${period_ms} ms; allowed ${low}..$((dead_ms + tolerance_ms)) ms)"

# --- 3. restart n2: up again ------------------------------------------------------------------
start_agent n2 "$tag-n2" --announce --node-id 2 --interface "${addr[n2]}"
agent_pid[n2]=$started_pid
t=$(wait_for "$tmp/listener.out" '^event up member=1 .*source=reports' 2 10000) ||
    fail "member 1 (node 2) did not come back within 10 s of its restart"
echo "load_reports: node 2 restarted, up again after ${t} ms"

# --- 4. SIGTERM n3: leaving, down at once -----------------------------------------------------
kill -TERM "${agent_pid[n3]}"
stopped_at=$(now_ms)
t=$(wait_for "$tmp/listener.out" '^event down member=2 .*source=reports' 1 $((dead_ms + tolerance_ms))) ||
    fail "member 2 (node 3) was not marked down after SIGTERM"
took=$(($(now_ms) - stopped_at))
grep -E '^event down member=2 ' "$tmp/listener.out" | grep -q 'announced that it is leaving' ||
    fail "member 2 went down, but not because it announced it was leaving"
((took < dead_ms - period_ms)) ||
    fail "member 2's leaving report took ${took} ms to take effect: no faster than the silence deadline"
wait "${agent_pid[n3]}" || fail "node 3's agent did not exit cleanly on SIGTERM"
echo "load_reports: node 3 stopped with SIGTERM, down after ${took} ms (leaving)"

# --- 5. health checks: n1's HTTP server stops and starts again -----------------------------
health_re='^event (up|down) member=0 .*source=health'
t=$(wait_for "$tmp/listener.out" '^event up member=0 .*source=health' 1 10000) ||
    fail "member 0's HTTP health check did not come up within 10 s"
downs=$(grep -cE '^event down member=0 .*source=health' "$tmp/listener.out")
((downs == 0)) || fail "member 0's health check went down although its server ran"
{
    kill -KILL "$http_pid"
    wait "$http_pid"
} 2>/dev/null
t=$(wait_for "$tmp/listener.out" '^event down member=0 .*source=health' 1 10000) ||
    fail "member 0's HTTP health check did not go down within 10 s of its server's death"
grep -E '^event down member=0 .*source=health' "$tmp/listener.out" |
    grep -q "health check HTTP GET http://${addr[n1]}:8080/health failed 2 times in a row (fall 2); last: connecting: Connection refused" ||
    fail "the health check's down event does not say what failed"
echo "load_reports: n1's HTTP server killed, health check down after ${t} ms"
start_http
t=$(wait_for "$tmp/listener.out" '^event up member=0 .*source=health' 2 10000) ||
    fail "member 0's HTTP health check did not come back within 10 s of its server's restart"
echo "load_reports: n1's HTTP server restarted, health check up after ${t} ms"
echo "load_reports: health events of member 0: $(grep -cE "$health_re" "$tmp/listener.out") (up, down, up)"

# --- 6. counters ------------------------------------------------------------------------------
if grep -qE '^event down member=0 .*source=reports' "$tmp/listener.out"; then
    fail "member 0 (node 1) went down although its announcer ran all along"
fi
kill -TERM "$listener_pid"
wait "$listener_pid" || fail "the listener did not exit cleanly on SIGTERM"
line=$(grep -E '^counters listener ' "$tmp/listener.out") || fail "the listener printed no counters"
echo "load_reports: $line"
field() { sed -nE "s/.* $1=([0-9]+).*/\1/p" <<<"$line"; }
(($(field accepted) > 10)) || fail "too few reports accepted"
(($(field unknown_source) > 0)) || fail "the stranger's reports were not counted as unknown_source"
(($(field wrong_node_id) > 0)) || fail "the impostor's reports were not counted as wrong_node_id"
(($(field bad_magic) + $(field bad_field) + $(field truncated) == 0)) || fail "well-formed reports were refused"

echo "load_reports: PASSED"
