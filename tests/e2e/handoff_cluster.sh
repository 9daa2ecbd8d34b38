#!/usr/bin/env bash
# tests/e2e/handoff_cluster.sh -- the TCP-handoff cluster (the LCCP paper, seeds/000) carrying
# real HTTP traffic: a direct-routing cluster of network namespaces (scripts/cluster.sh dr) whose
# dispatcher namespace runs the layer-4 switch (cn-lsmac, round robin over the SYNs) and the LCCP
# dispatcher (cn-lccp-dispatcher, LARD by URL path), and whose three back ends each run
# cn-handoff-node (distributor and forwarder) in front of an ordinary nginx
# (scripts/cn-handoff-cluster.sh starts them). Checks:
#   0. (before any cluster) cn-lsmac accepts `lccp` in direct routing and refuses it, saying why,
#      in NAT, for IPv6, or with a malformed key; cn-handoff-node and cn-lccp-dispatcher refuse
#      bad command lines, saying why.
# Then twice, with the switch told of each handoff (it re-points the session: CN_HANDOFF_SWITCH=1)
# and without (the old owner's forwarding entry alone carries the client's later packets):
#   1. a curl loop of 30 requests over 6 URLs, each its own connection: every one answers 200,
#      every request for a URL is served by the same back end (the one LARD chose: nginx's
#      X-Backend header says which), the URLs are spread over more than one back end, and the
#      client sees no reset from the service address (tcpdump): the old owner's kernel never
#      answered a handed-off connection's later packets;
#   2. three 20 MiB downloads arrive intact (the switch sends the three SYNs to three nodes, and
#      LARD sends the one URL to one node: at least two are handed off mid-connection, then
#      forwarded, and the new owner streams the file);
#   3. a short wrk run, a new connection per request, has no error;
#   4. with 5 % of LCCP datagrams dropped on the LAN (nftables numgen on the bridge; there is no
#      netem), a curl loop of 30 still answers 200 every time (the LCCP paper's claim: a lost
#      dispatch request is repeated, a handoff that gets no answer is resumed by the old owner);
#   5. forged LCCP datagrams are rejected and counted: 20 from the client (no member:
#      not_member), 20 from the dispatcher's address with a wrong tag (bad_tag);
#   6. the nodes' counters at exit agree: connections were handed off, every committed handoff
#      went live on its new owner, every forwarding entry was installed; the switch was told of
#      every handoff (forward_install) and re-pointed at least half of the sessions (the rest had
#      ended before the message arrived, or it was lost to the 5 % loss) -- or, in the second
#      pass, was told of none.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
cn_me=handoff_cluster
e2e_name=handoff_cluster
e2e_prefix=cnhc
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
say() { printf 'handoff_cluster: [%3ds] %s\n' "$SECONDS" "$*"; }

e2e_require_netns
for tool in nginx curl wrk nft tcpdump python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done
node_bin=$(e2e_find_example cn-handoff-node) || exit $?
e2e_find_example cn-lccp-dispatcher >/dev/null || exit $?
e2e_find_example cn-lsmac >/dev/null || exit $?
export CLUSTERNET_EXAMPLES_DIR=${node_bin%/*}

# 0. The switch's LCCP control, checked before any cluster exists.
lsmac=$CLUSTERNET_EXAMPLES_DIR/cn-lsmac
conf=(--set interface=lo --set vip=10.9.9.9 --set "backend=10.9.9.10 02:cb:02:00:00:0b" --set lccp=10.9.9.1)
"$lsmac" --check "${conf[@]}" --set mode=dr >/dev/null || fail "cn-lsmac refused lccp in direct routing"
refused "dr and tun modes only" "$CLUSTERNET_EXAMPLES_DIR/cn-lsnat" --check "${conf[@]}" --set mode=nat --set gateway_mac=02:cb:02:00:00:01
refused "lccp_key: 32 hexadecimal digits" "$lsmac" --check "${conf[@]}" --set lccp_key=abc
refused "LCCP is IPv4's" "$lsmac" --check --set interface=lo --set vip=fd00::1 --set "backend=fd00::2 02:cb:02:00:00:0b" --set lccp=fd00::3
node=$CLUSTERNET_EXAMPLES_DIR/cn-handoff-node disp=$CLUSTERNET_EXAMPLES_DIR/cn-lccp-dispatcher
refused "--listen, --address, --dispatcher and --upstream are required" "$node" --listen 10.9.9.9:80
refused "--deadline-ms wants an integer in 10..60000, got '5'" "$node" --listen 10.9.9.9:80 --address 10.9.9.10 \
    --dispatcher 10.9.9.1 --upstream 127.0.0.1:8080 --deadline-ms 5
refused "'fd00::1' is not an IPv4 address" "$disp" --address fd00::1 --nodes 10.9.9.10
refused "--key wants 32 hexadecimal digits" "$disp" --address 10.9.9.1 --nodes 10.9.9.10 --key zz
refused "--lard-low wants a number in 0..1000000000" "$disp" --address 10.9.9.1 --nodes 10.9.9.10 --lard-low x

prefix=${CN_TEST_PREFIX:-cnhc-$$}
# shellcheck source=lib/cluster_test.sh
source "$root/tests/e2e/lib/cluster_test.sh"
st=/tmp/cn-cluster.$prefix
e2e_on_fail() {
    local f
    for f in "$st/dispatcher.log" "$st"/b*/hook.log; do
        [[ -f $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
    done
}
trap 'rc=$?; ct_cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

# url_loop N URL...: N requests cycling over the URLs, each its own connection; sets ok and
# served[URL] (the back ends that answered it, space-separated, one entry each).
declare -A served
url_loop() {
    local n=$1 i args=() code be url
    shift
    local urls=("$@")
    for ((i = 0; i < n; i++)); do args+=(-o /dev/null "http://$CN_VIP:$CN_PORT${urls[i % ${#urls[@]}]}"); done
    timeout $((n + 30)) ip netns exec "$CN_NS_CLI" curl -s --max-time 5 -H 'Connection: close' \
        -w '%{url_effective} %{http_code} %header{x-backend}\n' "${args[@]}" >"$ct_tmp/urls.out" 2>/dev/null
    ok=0
    served=()
    while read -r url code be; do
        [[ $code == 200 && -n ${be:-} ]] || continue
        ok=$((ok + 1))
        url=${url#http://"$CN_VIP:$CN_PORT"}
        served[$url]+="$be "
    done <"$ct_tmp/urls.out"
}

one_pass() {  # one_pass SWITCH: a cluster, every check of 1-6, torn down
    export CN_HANDOFF_SWITCH=$1
    cluster_up dr --ingress-drop --nginx-port 8080 \
        --backend-cmd "$root/scripts/cn-handoff-cluster.sh node" \
        --dispatcher "$root/scripts/cn-handoff-cluster.sh front"
    say "cluster up (CN_HANDOFF_SWITCH=$CN_HANDOFF_SWITCH): switch and dispatcher in $CN_NS_DSP, cn-handoff-node on $CN_BACKENDS back ends"

    # 1. URLs pinned by LARD, no reset from the service address.
    ip netns exec "$CN_NS_CLI" tcpdump -i eth0 -nn -U -w "$ct_tmp/rst.pcap" \
        "tcp[tcpflags] & tcp-rst != 0 and src host $CN_VIP" >/dev/null 2>&1 &
    dump=$!
    sleep 1  # tcpdump opens its capture asynchronously; a missed RST would make this test pass wrongly
    urls=(/u/a /u/b /u/c /u/d /u/e /u/f)
    url_loop 30 "${urls[@]}"
    ((ok == 30)) || fail "$ok of 30 requests answered 200 ($(cat "$ct_tmp/urls.out" | tr '\n' ';'))"
    nodes_used=()
    for u in "${urls[@]}"; do
        read -r -a got <<<"${served[$u]}"
        ((${#got[@]} == 5)) || fail "$u: ${#got[@]} answers, not 5"
        for b in "${got[@]}"; do [[ $b == "${got[0]}" ]] || fail "$u was served by ${served[$u]}: LARD should keep it on one node"; done
        nodes_used+=("${got[0]}")
    done
    distinct=$(printf '%s\n' "${nodes_used[@]}" | sort -u | wc -l)
    ((distinct >= 2)) || fail "all 6 URLs went to ${nodes_used[0]}: LARD should spread new targets"
    say "30/30 ok; each URL on one node (${urls[*]} -> ${nodes_used[*]})"

    # 2. downloads handed off mid-connection.
    for i in 1 2 3; do
        rm -f "$ct_tmp/dl.bin"
        timeout 60 ip netns exec "$CN_NS_CLI" curl -s --max-time 50 -o "$ct_tmp/dl.bin" "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" ||
            fail "download $i failed"
        cmp -s "$ct_tmp/dl.bin" "$CN_BIG_FILE" || fail "download $i differs from the back ends' file"
    done
    say "3 downloads of $CN_BIG_BYTES bytes arrived intact"
    kill -INT "$dump" 2>/dev/null
    wait "$dump" 2>/dev/null
    rsts=$(tcpdump -nn -r "$ct_tmp/rst.pcap" 2>/dev/null | wc -l)
    ((rsts == 0)) || { tcpdump -nn -r "$ct_tmp/rst.pcap" 2>/dev/null | head >&2; fail "$rsts resets from $CN_VIP reached the client"; }
    say "no reset from $CN_VIP reached the client"

    # 3. wrk, a new connection per request.
    wrk_run handoff -c 8 -d 3s
    say "wrk: $wrk_requests requests, no error"

    # 4. 5 % of LCCP datagrams dropped on the LAN bridge.
    cat >"$ct_tmp/loss.nft" <<EOF
    table bridge cn_lccp_loss {
      chain lan {
        type filter hook forward priority 0; policy accept;
        ip protocol 253 numgen random mod 100 < 5 counter drop
      }
    }
EOF
    ip netns exec "$CN_NS_RTR" nft -f "$ct_tmp/loss.nft" || fail "could not install the loss rule"
    url_loop 30 "${urls[@]}"
    ((ok == 30)) || fail "with 5 % LCCP loss: $ok of 30 requests answered 200"
    dropped=$(ip netns exec "$CN_NS_RTR" nft list table bridge cn_lccp_loss | awk '/counter/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }')
    ip netns exec "$CN_NS_RTR" nft delete table bridge cn_lccp_loss
    say "with 5 % LCCP loss: 30/30 ok ($dropped LCCP datagrams dropped)"

    # 5. forged LCCP.
    b1=${CN_BACKEND_IPS%% *}
    ip netns exec "$CN_NS_CLI" python3 "$root/tests/e2e/fixtures/inject_lccp.py" "$b1" 20 >/dev/null || fail "injection from the client failed"
    ip netns exec "$CN_NS_DSP" python3 "$root/tests/e2e/fixtures/inject_lccp.py" "$b1" 20 "$CN_DSP_LAN_IP" >/dev/null ||
        fail "injection from the dispatcher's address failed"
    url_loop 6 "${urls[@]}"
    ((ok == 6)) || fail "after the forged messages: $ok of 6 requests answered 200"

    # 6. the nodes' counters, printed when they stop.
    for ((i = 1; i <= CN_BACKENDS; i++)); do cn_stop_pid "$(<"$st/pids/hook-b$i.pid")"; done
    field() { awk -v k="$2" '/^final:/ { for (i = 1; i <= NF; i++) if ($i == k) print $(i + 1) }' "$1"; }
    total() { local k=$1 t=0 i v; for ((i = 1; i <= CN_BACKENDS; i++)); do v=$(field "$st/b$i/hook.log" "$k"); t=$((t + ${v:-0})); done; echo $t; }
    for ((i = 1; i <= CN_BACKENDS; i++)); do
        grep -q '^final:' "$st/b$i/hook.log" || fail "b$i printed no final counters"
        say "b$i: $(grep '^final:' "$st/b$i/hook.log" | cut -c8-)"
    done
    handed=$(total handed_off) live=$(total restored_live) fwd=$(total forwards_installed) fwd_err=$(total forward_errors)
    ((handed >= 20)) || fail "only $handed connections were handed off (round robin should send about 2 in 3 elsewhere)"
    ((live == handed)) || fail "$handed handoffs committed, $live went live on their new owner"
    ((fwd == handed && fwd_err == 0)) || fail "$handed handoffs, $fwd forwarding entries ($fwd_err errors)"
    nm=$(field "$st/b1/hook.log" not_member) bt=$(field "$st/b1/hook.log" bad_tag)
    ((nm >= 20)) || fail "b1 counted $nm not_member, not the 20 forged from the client"
    ((bt >= 20)) || fail "b1 counted $bt bad_tag, not the 20 forged from the dispatcher's address"
    say "$handed handoffs, all live on the new owner; forged: b1 not_member $nm, bad_tag $bt"
    # The switch heard of the handoffs (forward_install, best effort) and re-pointed their sessions.
    told=$(total switch_told)
    cn_stop_pid "$(<"$st/pids/dispatcher.pid")"
    repointed=$(awk '/^final: sessions/ { for (i = 1; i <= NF; i++) if ($i == "lccp_repointed") print $(i + 1) }' "$st/dispatcher.log")
    if ((CN_HANDOFF_SWITCH)); then
        ((told == handed)) || fail "$handed handoffs, but the switch was told of $told"
        # A forward_install for a session the switch has already ended (a short connection closed
        # first) is counted lccp_unknown instead; most arrive while the session lives.
        ((${repointed:-0} * 2 >= handed)) || fail "the switch re-pointed ${repointed:-none} of $handed handed-off sessions"
        say "the switch re-pointed $repointed of $handed handed-off sessions"
    else
        ((told == 0)) && [[ -z $repointed ]] || fail "the switch was told of $told handoffs with CN_HANDOFF_SWITCH=0"
        say "the switch was told of none: the forwarding entries alone carried the handed-off connections"
    fi
    cluster_down
}

one_pass 1
one_pass 0
say "PASSED"
