#!/usr/bin/env bash
# tests/e2e/ipv6_dispatchers.sh -- clusternet's reference dispatchers over IPv6 (dispatcher6),
# beside the IPv4 ones, in a dual-stack namespace cluster (scripts/cluster.sh --ipv6), with nginx
# back ends and curl clients on real Linux TCP stacks.
#
# For each of dr and tun (cn-lsmac; tun is IPv6 in IPv6, RFC 2473, unwrapped on the back ends
# by cn-ipip-decap through TUN), nat and fullnat (cn-lsnat): the IPv4 dispatcher runs as the
# cluster's --dispatcher and an IPv6 one (cn-dispatcher.sh MODE --ipv6) beside it on the same
# interfaces, each taking the frames of its family (the other's are not_ours to it):
#   0. (before any cluster) IPv6 configurations are accepted, and refused with a message for
#      mixed families, a tunnel or full NAT without an address of its own, a bad address;
#   1. it finds every back end's MAC by neighbour discovery (RFC 4861, ndp.hpp; the MACs the
#      harness gave them), and its health checks (TCP over IPv6) mark them up;
#   2. a curl loop of 30 connections to [VIP6]: every request succeeds; round robin gives each
#      of the 3 back ends 10 (+-1);
#   3. a curl loop of 15 to the IPv4 VIP still succeeds entirely (dual stack);
#   4. a 20 MiB download over IPv6 arrives intact; for tun, a request with a 7 KB head goes
#      through after the client's path-MTU discovery (the dispatcher answers its full-sized segments with
#      ICMPv6 Packet Too Big);
#   5. the IPv6 dispatcher's metrics count the flows (new_flow >= 31) and, for NAT, the replies;
#      malformed and foreign IPv6 frames injected at it (payload length past the frame, version
#      4 behind the IPv6 ethertype, an extension header past the packet, mid-flow segments of no
#      connection, another destination) are counted by reason, and it keeps serving;
#   6. SIGTERM: it stops cleanly and prints its final counters; the cluster leaves nothing behind.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
cn_me=ipv6_dispatchers
e2e_name=ipv6_dispatchers
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
say() { printf 'ipv6_dispatchers: [%3ds] %s\n' "$SECONDS" "$*"; }

e2e_require_netns
for tool in nginx curl nft ethtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done
lsmac=$(e2e_find_example cn-lsmac) || exit $?
export CLUSTERNET_EXAMPLES_DIR=${lsmac%/*}

# 0. The configuration of an IPv6 dispatcher, checked (--check) before any cluster exists.
lsnat=$CLUSTERNET_EXAMPLES_DIR/cn-lsnat
v6conf=(--set interface=lo --set vip=fd00:cb:100::1 --set gateway_mac=02:cb:03:00:00:01)
"$lsnat" --check "${v6conf[@]}" --set mode=nat --set "backend=fd00:cb:2::11 02:cb:02:00:00:0b" >/dev/null ||
    fail "cn-lsnat refused a valid IPv6 configuration"
refused "an IPv4 address, but the vip is IPv6" "$lsnat" --check "${v6conf[@]}" --set "backend=10.0.0.1 02:cb:02:00:00:0b"
"$lsnat" --check "${v6conf[@]}" --set mode=nat --set "backend=fd00:cb:2::11" --set gateway=fd00:cb:3::1 >/dev/null ||
    fail "cn-lsnat refused IPv6 back ends and gateway to be found by neighbour discovery"
refused "gateway: an IPv4 address, but the vip is IPv6" "$lsnat" --check "${v6conf[@]}" --set "backend=fd00:cb:2::11" --set gateway=10.0.0.1
refused "the IPv6 tunnel needs local_address" "$CLUSTERNET_EXAMPLES_DIR/cn-lsmac" --check "${v6conf[@]}" --set mode=tun --set "backend=fd00:cb:2::11 02:cb:02:00:00:0b"
refused "full NAT needs local_address" "$lsnat" --check "${v6conf[@]}" --set mode=fullnat --set "backend=fd00:cb:2::11 02:cb:02:00:00:0b"
refused "is not an IPv4 or IPv6 address" "$lsnat" --check --set interface=lo --set vip=fd00::zz --set "backend=fd00::1 02:cb:02:00:00:0b"
say "configuration: IPv6 ones accepted (MACs given, or found by NDP); mixed families, tun or full NAT without an address, a bad address refused"

prefix=${CN_TEST_PREFIX:-cn6-$$}
# shellcheck source=lib/cluster_test.sh
source "$root/tests/e2e/lib/cluster_test.sh"
d6_pid=""
e2e_on_fail() {
    [[ -f /tmp/cn-cluster.$prefix/dispatcher.log ]] && tail -n 20 "/tmp/cn-cluster.$prefix/dispatcher.log" >&2
    [[ -f $ct_tmp/d6.log ]] && { echo "IPv6 dispatcher:" >&2; tail -n 20 "$ct_tmp/d6.log" >&2; }
}
trap 'rc=$?; [[ -n $d6_pid ]] && cn_stop_pid "$d6_pid"; ct_cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

metric6() { metric_at 9106 "$1"; }  # metric6 'name{labels}': in the IPv6 dispatcher's metrics (lib/cluster_test.sh)
up6_is() { [[ $(metric6 "clusternet_backend_up{backend=\"$1\"}") == "$2" ]]; }

check_mode() {
    local mode=$1 i ip
    say "--- $mode"
    local hook=()
    [[ $mode == tun ]] && hook=(--backend-cmd "$CLUSTERNET_EXAMPLES_DIR/cn-ipip-decap --set stats_interval=0")
    cluster_up "$mode" --ipv6 --ingress-drop "${hook[@]}" --dispatcher \
        "$root/scripts/cn-dispatcher.sh $mode --set health_interval_ms=200 --set stats_interval=0"
    # The IPv6 dispatcher, in the dispatcher's namespace with the cluster's variables.
    ip netns exec "$CN_NS_DSP" bash -c 'set -a; source "$1"; set +a; shift; exec "$@"' _ "$ct_tmp/info.env" \
        "$root/scripts/cn-dispatcher.sh" "$mode" --ipv6 --set health_interval_ms=200 --set stats_interval=0 \
        --set metrics=127.0.0.1:9106 >"$ct_tmp/d6.log" 2>&1 &
    d6_pid=$!
    local ips6=($CN_BACKEND_IPS6) macs=($CN_BACKEND_MACS)
    for ip in "${ips6[@]}"; do cn_poll 10 "$ip healthy" up6_is "$ip" 1 || fail "$mode: $ip never came up over IPv6"; done
    for ((i = 0; i < ${#ips6[@]}; i++)); do
        grep -q "^ndp: back end ${ips6[i]} is at ${macs[i]}\$" "$ct_tmp/d6.log" ||
            fail "$mode: ${ips6[i]} was not found at ${macs[i]} by neighbour discovery"
    done
    say "$mode: neighbour discovery found the ${#ips6[@]} back ends' MACs; health checks over IPv6 see them up"

    curl_loop 30 "[$CN_VIP6]"
    ((ok == 30)) || fail "$mode: $ok of 30 IPv6 requests succeeded ($(shares_text))"
    for ((i = 1; i <= CN_BACKENDS; i++)); do
        ((share[b$i] >= 9 && share[b$i] <= 11)) || fail "$mode: b$i got ${share[b$i]} of 30, not 10 +-1 ($(shares_text))"
    done
    say "$mode: IPv6 30/30 ok, round robin $(shares_text)"

    curl_loop 15
    ((ok == 15)) || fail "$mode: $ok of 15 IPv4 requests succeeded beside the IPv6 dispatcher"
    say "$mode: IPv4 15/15 ok beside it ($(shares_text))"

    rm -f "$ct_tmp/dl.bin"
    timeout 60 ip netns exec "$CN_NS_CLI" curl -s --max-time 50 -o "$ct_tmp/dl.bin" \
        "http://[$CN_VIP6]:$CN_PORT$CN_BIG_PATH" || fail "$mode: the IPv6 download failed"
    cmp -s "$ct_tmp/dl.bin" "$CN_BIG_FILE" || fail "$mode: the IPv6 download differs from the back ends' file"
    say "$mode: a $CN_BIG_BYTES-byte download over IPv6 arrived intact"

    local flows replies
    flows=$(metric6 'clusternet_packets_total{verdict="new_flow"}')
    replies=$(metric6 'clusternet_packets_total{verdict="reply"}')
    ((flows >= 31)) || fail "$mode: the IPv6 dispatcher counted $flows new flows, not 31 or more"
    if [[ $mode == nat || $mode == fullnat ]]; then ((replies > 0)) || fail "$mode: the IPv6 dispatcher rewrote no replies"; fi
    local too_big=0 code
    if [[ $mode == tun ]]; then
        # A request whose head fills several full-sized segments (1500 bytes on a 1500-byte
        # link), which do not fit the tunnel's 40 more: it gets through only once the client has
        # heard a Packet Too Big and lowered its path MTU. (Not an upload: nginx answers a POST
        # of a static file with 405 as soon as it has the head, and curl then stops sending the
        # body, so whether any full-sized segment left the client was a race -- this step
        # failed about one run in ten that way.) nginx reads the whole head before it answers.
        local pad
        pad=$(head -c 7000 /dev/zero | tr '\0' a)
        code=$(timeout 30 ip netns exec "$CN_NS_CLI" curl -s --max-time 20 -o /dev/null -w '%{http_code}' \
            -H "X-Pad: $pad" "http://[$CN_VIP6]:$CN_PORT$CN_SMALL_PATH") || fail "tun: the 7 KB request head over IPv6 failed"
        [[ $code == 200 ]] || fail "tun: the request with a 7 KB head got HTTP $code, not 200"
        too_big=$(metric6 'clusternet_packets_total{verdict="frag_needed"}')
        if ((too_big <= 0)); then
            ip netns exec "$CN_NS_DSP" curl -s --max-time 5 http://127.0.0.1:9106/metrics | grep -E '^clusternet_(packets|malformed)' >&2
            ip netns exec "$CN_NS_CLI" ip -6 route get "$CN_VIP6" >&2
            fail "tun: no Packet Too Big was counted ($too_big), yet the 7 KB head went through"
        fi
        say "tun: a 7 KB request head over IPv6 went through after $too_big Packet Too Big"
    fi
    say "$mode: IPv6 metrics: new_flow $flows, reply $replies, Packet Too Big $too_big"

    # Bad and foreign IPv6 frames, injected from the router towards the dispatcher.
    local k before=()
    local keys=('clusternet_malformed_total{reason="truncated"}' 'clusternet_malformed_total{reason="bad_version"}'
                'clusternet_malformed_total{reason="bad_ext_header"}' 'clusternet_packets_total{verdict="no_session"}'
                'clusternet_packets_total{verdict="not_ours"}')
    for k in "${keys[@]}"; do before+=("$(metric6 "$k")"); done
    ip netns exec "$CN_NS_RTR" python3 "$root/tests/e2e/fixtures/inject_bad_frames6.py" front0 "$CN_DSP_FRONT_MAC" \
        fd00:cb:1::99 "$CN_VIP6" 40 || fail "$mode: the IPv6 injector failed"
    grew6() { (($(metric6 "$1") - $2 >= 40)); }
    for ((i = 0; i < ${#keys[@]}; i++)); do
        cn_poll 5 "${keys[i]} counted" grew6 "${keys[i]}" "${before[i]}" || fail "$mode: ${keys[i]} did not grow by 40"
    done
    curl_loop 15 "[$CN_VIP6]"
    ((ok == 15)) || fail "$mode: after the injection $ok/15 IPv6 requests succeeded"
    say "$mode: 200 bad and foreign IPv6 frames counted by reason; still 15/15 ok"

    kill -TERM "$d6_pid"
    cn_poll 5 "the IPv6 dispatcher to stop" bash -c "! kill -0 $d6_pid 2>/dev/null" || fail "$mode: it ignored SIGTERM"
    d6_pid=""
    grep -q '^final: ' "$ct_tmp/d6.log" || fail "$mode: no final counters in the IPv6 dispatcher's log"
    say "$mode: stopped on SIGTERM: $(grep '^final: ' "$ct_tmp/d6.log" | cut -c1-110)"
    cluster_down
}

for mode in dr nat fullnat tun; do check_mode "$mode"; done
say "all modes passed in ${SECONDS}s"
