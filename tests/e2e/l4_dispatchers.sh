#!/usr/bin/env bash
# tests/e2e/l4_dispatchers.sh -- clusternet's reference dispatchers carry real HTTP: cn-lsmac
# (direct routing) and cn-lsnat (NAT, full NAT) in a namespace cluster (scripts/cluster.sh), with
# nginx back ends and curl / wrk clients on real Linux TCP stacks.
#
# For each of dr, nat and fullnat, on a fresh cluster with the dispatcher plugged in
# (scripts/cn-dispatcher.sh, health checks every 200 ms, metrics on 127.0.0.1:9100):
#   1. a curl loop of 60 connections: every request succeeds; round robin gives each of the 3 back
#      ends 20 (+-1);
#   2. a short wrk run (2 s, new connection per request): no socket error, no non-2xx answer;
#   3. a long download (20 MiB capped at 2 MiB/s) survives while another back end is killed: its
#      health check marks it down (seen in the metrics), a curl loop then succeeds entirely with
#      none on the dead one; restarted, it is marked up and gets connections again; the download
#      arrives intact;
#   4. malformed and foreign frames injected at the dispatcher (bad IHL, truncated, bad header
#      checksum, mid-flow packets of no connection, packets for another address) are counted by
#      reason in the metrics, and a curl loop still succeeds entirely;
#   5. SIGTERM: the dispatcher stops cleanly and prints its final counters; nothing is left.
# NAT runs a second time receiving through the TPACKET_V3 ring (rx_ring=true) instead of recvmmsg.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
cn_me=l4_dispatchers
e2e_name=l4_dispatchers
e2e_prefix=cnl4
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
say() { printf 'l4_dispatchers: [%3ds] %s\n' "$SECONDS" "$*"; }

e2e_require_netns
for tool in nginx curl wrk nft ethtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done
lsmac=$(e2e_find_example cn-lsmac) || exit $?
export CLUSTERNET_EXAMPLES_DIR=${lsmac%/*}

prefix=${CN_TEST_PREFIX:-cnl4-$$}
# shellcheck source=lib/cluster_test.sh
source "$root/tests/e2e/lib/cluster_test.sh"
e2e_on_fail() { [[ -f /tmp/cn-cluster.$prefix/dispatcher.log ]] && tail -n 30 "/tmp/cn-cluster.$prefix/dispatcher.log" >&2; }
trap 'rc=$?; ct_cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

metric() { metric_at 9100 "$1"; }  # metric 'name{labels}': in the dispatcher's metrics (lib/cluster_test.sh)
backend_up_is() { [[ $(metric "clusternet_backend_up{backend=\"$1\"}") == "$2" ]]; }

check_mode() {
    local mode=$1 extra=${2:-} i ip
    say "--- $mode $extra"
    cluster_up "$mode" --ingress-drop --dispatcher \
        "$root/scripts/cn-dispatcher.sh $mode --set health_interval_ms=200 --set metrics=127.0.0.1:9100 --set stats_interval=0 $extra"
    local ips=($CN_BACKEND_IPS)
    for ip in "${ips[@]}"; do cn_poll 10 "$ip healthy" backend_up_is "$ip" 1 || fail "$mode: $ip never came up"; done

    # 1. every request, round robin
    curl_loop 60
    ((ok == 60)) || fail "$mode: $ok of 60 requests succeeded ($(shares_text))"
    for ((i = 1; i <= CN_BACKENDS; i++)); do
        ((share[b$i] >= 19 && share[b$i] <= 21)) || fail "$mode: b$i got ${share[b$i]} of 60, not 20 +-1 ($(shares_text))"
    done
    say "$mode: 60/60 ok, round robin $(shares_text)"

    # 2. wrk
    wrk_run "$mode" -c8 -d2s
    say "$mode: wrk 2 s: $wrk_requests requests, no error"

    # 3. a long download while a back end dies and returns
    rm -f "$ct_tmp/dl.hdr" "$ct_tmp/dl.bin"
    timeout 60 ip netns exec "$CN_NS_CLI" curl -s --max-time 50 --limit-rate 2M -D "$ct_tmp/dl.hdr" \
        -o "$ct_tmp/dl.bin" "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" &
    dl_pid=$!
    cn_poll 10 "the download's headers" grep -q '^X-Backend: b' "$ct_tmp/dl.hdr" || fail "$mode: the download did not start"
    local serving victim
    serving=$(awk -F': ' '/^X-Backend:/ {sub(/\r$/, "", $2); print $2}' "$ct_tmp/dl.hdr")
    serving=${serving#b}
    victim=$((serving % CN_BACKENDS + 1))
    cluster backend stop "$victim" 2>/dev/null || fail "$mode: backend stop $victim failed"
    cn_poll 10 "b$victim marked down" backend_up_is "${ips[victim - 1]}" 0 || fail "$mode: b$victim was not marked down"
    curl_loop 30
    ((ok == 30 && share[b$victim] == 0)) || fail "$mode: with b$victim down: $ok/30 ok, $(shares_text)"
    say "$mode: download on b$serving; b$victim killed, marked down by its health check: 30/30 ok, $(shares_text)"
    cluster backend start "$victim" 2>/dev/null || fail "$mode: backend start $victim failed"
    cn_poll 10 "b$victim marked up" backend_up_is "${ips[victim - 1]}" 1 || fail "$mode: b$victim did not come back"
    curl_loop 30
    ((ok == 30 && share[b$victim] > 0)) || fail "$mode: after restoring b$victim: $ok/30 ok, $(shares_text)"
    say "$mode: b$victim back: 30/30 ok, $(shares_text)"
    cn_alive "$dl_pid" || fail "$mode: the download ended before the back end came back (rate cap?)"
    wait "$dl_pid"
    local rc=$?
    dl_pid=""
    ((rc == 0)) || fail "$mode: the long download failed (curl status $rc)"
    cmp -s "$ct_tmp/dl.bin" "$CN_BIG_FILE" || fail "$mode: the download differs from the back ends' file"
    say "$mode: the long download arrived intact ($CN_BIG_BYTES bytes)"

    # 4. bad and foreign frames, injected from the router towards the dispatcher
    local before_ihl before_cut before_sum before_nos before_foreign
    before_ihl=$(metric 'clusternet_malformed_total{reason="bad_ihl"}')
    before_cut=$(metric 'clusternet_malformed_total{reason="truncated"}')
    before_sum=$(metric 'clusternet_malformed_total{reason="bad_checksum"}')
    before_nos=$(metric 'clusternet_packets_total{verdict="no_session"}')
    before_foreign=$(metric 'clusternet_packets_total{verdict="not_ours"}')
    ip netns exec "$CN_NS_RTR" python3 "$root/tests/e2e/fixtures/inject_bad_frames.py" front0 "$CN_DSP_FRONT_MAC" \
        198.51.100.7 "$CN_VIP" 50 || fail "$mode: the injector failed"  # a source with no connection
    grew() { (($(metric "$1") - $2 >= 50)); }  # grew NAME BEFORE: by 50 or more
    cn_poll 5 "bad_ihl counted" grew 'clusternet_malformed_total{reason="bad_ihl"}' "$before_ihl" || fail "$mode: bad_ihl not counted"
    cn_poll 5 "truncated counted" grew 'clusternet_malformed_total{reason="truncated"}' "$before_cut" || fail "$mode: truncated not counted"
    cn_poll 5 "bad_checksum counted" grew 'clusternet_malformed_total{reason="bad_checksum"}' "$before_sum" ||
        fail "$mode: bad_checksum not counted"
    cn_poll 5 "no_session counted" grew 'clusternet_packets_total{verdict="no_session"}' "$before_nos" || fail "$mode: no_session not counted"
    cn_poll 5 "not_ours counted" grew 'clusternet_packets_total{verdict="not_ours"}' "$before_foreign" || fail "$mode: not_ours not counted"
    curl_loop 30
    ((ok == 30)) || fail "$mode: after the injection $ok/30 ok"
    say "$mode: 250 bad and foreign frames counted by reason; still 30/30 ok"

    # 5. clean stop
    local pid
    pid=$(cat "/tmp/cn-cluster.$prefix/pids/dispatcher.pid")
    kill -TERM "$pid"
    cn_poll 5 "the dispatcher to stop" bash -c "! kill -0 $pid 2>/dev/null" || fail "$mode: the dispatcher ignored SIGTERM"
    grep -q '^final: ' "/tmp/cn-cluster.$prefix/dispatcher.log" || fail "$mode: no final counters in the log"
    say "$mode: stopped on SIGTERM: $(grep '^final: ' "/tmp/cn-cluster.$prefix/dispatcher.log" | cut -c1-120)"
    cluster_down
}

for mode in dr nat fullnat; do check_mode "$mode"; done
# The TPACKET_V3 receive ring instead of recvmmsg: bursts are gathered per ring block.
check_mode nat "--set rx_ring=true"
say "all modes passed in ${SECONDS}s"
