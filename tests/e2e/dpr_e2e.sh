#!/usr/bin/env bash
# tests/e2e/dpr_e2e.sh -- Distributed Packet Rewriting end to end: cn-dpr-node on every back end
# of `cluster.sh up dpr` (the router spreads the VIP over the nodes; each node takes the VIP's
# packets with AF_PACKET, the kernel's copy dropped at lan0's netdev ingress, serves a new
# connection locally through tun0 or redirects it IP-in-IP to a peer, whose cn-dpr-node
# decapsulates into its tun0; the server answers the client directly). Load reports every
# 200 ms, a peer silent for 3 periods is down. The client load is skewed: `cluster.sh mark 2
# down; mark 3 down` makes the router send every connection to b1 (as round-robin DNS skew would).
#   1. threshold high (max_load 1000): with 12 long downloads held open on b1, a curl loop of 40
#      all succeeds and b1 serves every request itself; it redirected nothing;
#   2. threshold low (max_load 4): once the 12 downloads put b1's reported load above it, a curl
#      loop of 40 all succeeds and at least 30 go to the peers, both of them; a 20 MiB download
#      started then is redirected and arrives intact (its every ACK follows it through b1's
#      session table); every node's metrics endpoint answers;
#   3. b2's node is killed (SIGKILL: no leaving report): b1 drops it from the choice within the
#      load reports' liveness time (600 ms, checked with 1.5 s of slack), and a curl loop of 30
#      all succeeds with none on b2;
#   4. b3's node gets SIGTERM: its `leaving` report makes b1 drop it at once, it prints its final
#      counters, and b1 serves the next 10 requests alone.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
e2e_name=dpr_e2e
e2e_prefix=cnd
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
e2e_require_netns
for tool in nginx curl nft ethtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done
node=$(e2e_find_example cn-dpr-node) || exit $?

prefix=${CN_TEST_PREFIX:-cnd-d$$}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cn-e2e-dpr.XXXXXX")
chmod 755 "$tmp"
# shellcheck source=lib/cluster_client.sh
source "$root/tests/e2e/lib/cluster_client.sh"
say() { printf 'dpr_e2e: [%3ds] %s\n' "$SECONDS" "$*"; }
holders=()
stop_holders() { local p; for p in "${holders[@]}"; do cn_stop_pid "$p"; done; holders=(); }
e2e_on_fail() {
    [[ -n ${CN_STATE_DIR:-} && -d $CN_STATE_DIR ]] || return 0
    for f in "$CN_STATE_DIR"/b*/hook.log; do echo "--- $f"; grep -v '^stats' "$f" | tail -n 8; grep '^stats' "$f" | tail -n 2; done
} >&2
cleanup() {
    local rc=$?
    set +e
    stop_holders
    cluster down >/dev/null 2>&1
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each back end's command: scripts/cn-dpr-node.sh (the netdev-ingress drop of the VIP's packets
# on lan0, then cn-dpr-node with every other back end as a peer), reports every 200 ms.
node_cmd() {
    echo "env CLUSTERNET_EXAMPLES_DIR=$(dirname "$node") $root/scripts/cn-dpr-node.sh --set max_load=$1" \
        "--set report_period_ms=200 --set dead_after_periods=3 --set stats_interval=1 --set metrics=127.0.0.1:9100"
}

# hold N: N downloads held open (20 KB/s) on whichever node the router picks (b1, once skewed).
hold() {
    local i
    for ((i = 0; i < $1; i++)); do
        ip netns exec "$CN_NS_CLI" curl -s --limit-rate 20K -o /dev/null "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" &
        holders+=($!)
    done
}
last_stats() { grep '^stats:' "$CN_STATE_DIR/b$1/hook.log" | tail -n 1; }
self_load() { last_stats "$1" | sed -n 's/.*| self [0-9.]* flows [0-9]* load \([0-9]*\).*/\1/p'; }
load_at_least() { local l; l=$(self_load "$1"); [[ -n $l ]] && ((l >= $2)); }
peers_up() { local s; s=$(last_stats 1); [[ $(grep -o ' up flows' <<<"$s" | wc -l) == "$((CN_BACKENDS - 1))" ]]; }
skew_to_b1() {
    local i
    for ((i = 2; i <= CN_BACKENDS; i++)); do cluster mark "$i" down 2>/dev/null || fail "mark $i down failed"; done
}

# loaded_cluster MAX_LOAD MIN_B1_LOAD: a dpr cluster with that threshold, every peer heard by b1,
# the clients skewed to b1 and 12 downloads held open there until b1 reports MIN_B1_LOAD.
loaded_cluster() {
    say "--- up dpr, max_load $1"
    cluster_up dpr --backend-cmd "$(node_cmd "$1")"
    cn_poll 10 "b1 to hear from every peer" peers_up || fail "b1 does not see its peers up: $(last_stats 1)"
    skew_to_b1
    hold 12
    cn_poll 10 "b1's load to reach $2" load_at_least 1 "$2" || fail "b1's load stays $(self_load 1): $(last_stats 1)"
}

start=$SECONDS
# --- 1. the threshold high: everything served where it lands
loaded_cluster 1000 12
curl_loop 40
((ok == 40)) || fail "max_load 1000: $ok of 40 requests succeeded ($(shares_text))"
((share[b1] == 40)) || fail "max_load 1000: b1 did not serve everything itself ($(shares_text))"
grep -q ' redirected 0 ' <<<"$(last_stats 1)" || fail "max_load 1000: b1 redirected packets: $(last_stats 1)"
say "max_load 1000, b1's load $(self_load 1): 40/40 ok, all served locally ($(shares_text))"
stop_holders
cluster_down

# --- 2. the threshold low: a share goes to the peers
loaded_cluster 4 5
curl_loop 40
((ok == 40)) || fail "max_load 4: $ok of 40 requests succeeded ($(shares_text))"
((share[b2] + share[b3] >= 30 && share[b2] > 0 && share[b3] > 0)) ||
    fail "max_load 4, b1's load $(self_load 1): too few redirected ($(shares_text))"
say "max_load 4, b1's load $(self_load 1): 40/40 ok, redirected to the peers ($(shares_text))"
rm -f "$tmp/dl.hdr" "$tmp/dl.bin"
timeout 120 ip netns exec "$CN_NS_CLI" curl -s -f --max-time 100 -D "$tmp/dl.hdr" -o "$tmp/dl.bin" \
    "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" || fail "the redirected download failed"
cmp -s "$tmp/dl.bin" "$CN_BIG_FILE" || fail "the redirected download differs ($(stat -c %s "$tmp/dl.bin") bytes)"
served=$(awk -F': ' '/^X-Backend:/ {sub(/\r$/, "", $2); print $2}' "$tmp/dl.hdr")
[[ $served == b2 || $served == b3 ]] || fail "the download was served by '$served', not redirected"
say "a $CN_BIG_BYTES-byte download redirected to $served arrived intact"
for ((i = 1; i <= CN_BACKENDS; i++)); do
    ip netns exec "$prefix-b$i" curl -s --max-time 3 http://127.0.0.1:9100/metrics >"$tmp/metrics" ||
        fail "b$i's metrics endpoint does not answer"
    grep -q '^clusternet_dpr_flows_total' "$tmp/metrics" || fail "b$i's metrics lack clusternet_dpr_flows_total"
done
grep -q '^clusternet_ipip_delivered_total [1-9]' "$tmp/metrics" || fail "b$CN_BACKENDS's metrics show no decapsulated packet"
say "every node's metrics endpoint answers"
# Path-MTU discovery through a redirection: a request of 6000 bytes of headers goes out in
# full-sized segments, 1520 bytes once b1 wraps them for a peer, over the 1500-byte link. b1
# answers with an ICMP "fragmentation needed" (next-hop MTU 1480); the client's kernel resends
# smaller. Without it a redirected request would hang until curl's timeout. Requests until one
# is redirected (most are, at this threshold); each must succeed.
pad=$(head -c 6000 /dev/zero | tr '\0' a)
big_served=""
for ((i = 1; i <= 10; i++)); do
    rm -f "$tmp/big.hdr"
    code=$(timeout 30 ip netns exec "$CN_NS_CLI" curl -s --max-time 20 -H "X-Pad: $pad" -D "$tmp/big.hdr" -o /dev/null \
        -w '%{http_code}' "http://$CN_VIP:$CN_PORT/") || true
    [[ $code == 200 ]] || fail "request $i with 6000 bytes of headers: HTTP '$code' (frag_needed not sent?): $(last_stats 1)"
    big_served=$(awk -F': ' '/^X-Backend:/ {sub(/\r$/, "", $2); print $2}' "$tmp/big.hdr")
    [[ $big_served == b2 || $big_served == b3 ]] && break
done
[[ $big_served == b2 || $big_served == b3 ]] || fail "none of 10 big requests was redirected"
pmtu=$(ip netns exec "$CN_NS_CLI" ip route get "$CN_VIP" | grep -o 'mtu [0-9]*' || true)
[[ $pmtu == "mtu 1480" ]] || fail "the client's path MTU to the VIP is '${pmtu:-unset}', not 1480: $(last_stats 1)"
cn_poll 3 "b1 to count frag_needed" bash -c "grep '^stats:' '$CN_STATE_DIR/b1/hook.log' | tail -n 1 | grep -q ' frag_needed [1-9]'" ||
    fail "b1 counts no frag_needed: $(last_stats 1)"
say "$i request(s) with 6000 bytes of headers, the last redirected to $big_served: 200s; path MTU 1480 learnt from b1's ICMP"

# --- 3. a killed peer leaves the choice within the liveness time
kill -KILL "$(<"$CN_STATE_DIR/pids/hook-b2.pid")" || fail "could not kill b2's node"
t0=$(date +%s%N)
b2_ip=$(awk '{print $2}' <<<"$CN_BACKEND_IPS")
down_seen() { grep -q "^peer $b2_ip (node 2) down" "$CN_STATE_DIR/b1/hook.log"; }
cn_poll 5 "b1 to drop b2 from the choice" down_seen || fail "b1 never marked b2 down: $(last_stats 1)"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms <= 2100)) || fail "b1 took $ms ms to drop b2 (liveness 600 ms)"
curl_loop 30
((ok == 30 && share[b2] == 0)) || fail "after b2's node died: $ok of 30 ok ($(shares_text))"
say "b2's node killed: b1 dropped it after $ms ms ($(grep "^peer $b2_ip (node 2) down" "$CN_STATE_DIR/b1/hook.log" | tail -n 1)); 30/30 ok ($(shares_text))"
# 4. a clean stop: SIGTERM makes b3's node send a `leaving` report (b1 drops it at once, long
#    before the liveness time) and print its final counters; b1 then serves alone.
b3_ip=$(awk '{print $3}' <<<"$CN_BACKEND_IPS")
kill -TERM "$(<"$CN_STATE_DIR/pids/hook-b3.pid")" || fail "could not signal b3's node"
t0=$(date +%s%N)
b3_down() { grep -q "^peer $b3_ip (node 3) down" "$CN_STATE_DIR/b1/hook.log"; }
cn_poll 5 "b1 to drop b3" b3_down || fail "b1 never marked b3 down after its SIGTERM"
ms=$((($(date +%s%N) - t0) / 1000000))
cn_poll 5 "b3's final counters" grep -q '^final: sessions' "$CN_STATE_DIR/b3/hook.log" || fail "b3's node printed no final counters"
curl_loop 10
((ok == 10 && share[b1] == 10)) || fail "with both peers gone: $ok of 10 ok ($(shares_text))"
say "b3's node stopped by SIGTERM: b1 dropped it after $ms ms ($(grep "^peer $b3_ip (node 3) down" "$CN_STATE_DIR/b1/hook.log" | tail -n 1 | cut -c1-80)...); 10/10 ok on b1 alone"
stop_holders
cluster_down
say "PASSED in $((SECONDS - start)) s"
