#!/usr/bin/env bash
# tests/e2e/tcp_handoff.sh -- a live TCP connection handed off from node A to node B (two network
# namespaces) with TCP_REPAIR, its state carried as authenticated LCCP messages on raw IP; the
# client sees one unbroken connection and verifies several MB sent after the move.
#
# Topology (every name prefixed cnl7-; all addresses inside these namespaces):
#
#   cnl7-c (client)          cnl7-r (router: the layer-4 switch)        cnl7-a (node A)
#   c0 10.207.1.2 --------- rc 10.207.1.1   ra 10.207.2.1 ------------ a0 10.207.2.2, lo 10.207.0.100
#                                           rb 10.207.3.1 ------------ b0 10.207.3.2, lo 10.207.0.100
#                                                                      cnl7-b (node B)
#
# The service address 10.207.0.100 is on both nodes' loopback; the router's route for it is what
# decides which node the client's packets reach. The handoff re-points that route from A to B
# (the layer-4 switch told to re-point the session), after B has restored the connection and
# before A closes its socket silently (in repair mode: no FIN, no RST). LCCP goes A <-> B through
# the router, protocol 253.
#
# Rounds of one connection each: (small) A has written up to 64 KiB of the response when it
# hands off; (slow) the client pauses before reading, so A's send queue holds megabytes, a
# window's worth sent and unacknowledged, the rest never sent; (held) the router drops the
# client's packets while A writes, so what A sent stays unacknowledged and B must retransmit it;
# (lost) the router drops every LCCP message A sends B, so the handoff fails and A resumes the
# connection itself; (noreply) B restores but every reply it sends A is dropped: A resumes, tells
# B, and B drops its frozen copy silently; then (loss5) 20 connections with 5 % of LCCP datagrams dropped either way
# (nftables numgen): every one completes, handed off (B repeats a lost reply, A a lost decision)
# or resumed by A (the LCCP paper's claim), and at least one is handed off. The slow and held queues travel in thousands of continuation chunks. Checks
# in each: the client verifies every byte of a 4 MiB response (its start written by A, the rest
# by B) and of two later requests (served by B, or by A in round lost); the server prints the
# handoff time; B rejects and counts 2 bad-tag messages and 1 from a non-member; with tcpdump, no
# RST from the service address, and no FIN before the client's own close.
# CLUSTERNET_KEEP_LOGS=DIR keeps the logs and captures in DIR.
# Run from the repository root with CLUSTERNET_BUILD_DIR set (ctest does both). Exits 77 when it
# cannot run (not root, no namespaces).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

e2e_name=tcp_handoff
e2e_prefix=cnl7
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"  # skip, fail, e2e_require_netns
e2e_on_fail() {  # fail() shows the logs
    for f in "${tmp:-/nonexistent}"/*.log; do
        [[ -f $f ]] && { echo "--- $f"; tail -n 30 "$f"; } >&2
    done
}
e2e_require_netns

if [[ -v CLUSTERNET_EXAMPLES_DIR && -z $CLUSTERNET_EXAMPLES_DIR ]]; then
    skip "the examples (cn-handoff-demo) are not part of this build (CLUSTERNET_BUILD_EXAMPLES=OFF)"
fi
[[ -n ${CLUSTERNET_BUILD_DIR:-} ]] || fail "CLUSTERNET_BUILD_DIR is not set (ctest sets it)"
demo=""
for c in "${CLUSTERNET_EXAMPLES_DIR:-}/cn-handoff-demo" "$CLUSTERNET_BUILD_DIR/examples/cn-handoff-demo"; do
    if [[ -x $c && -f $c ]]; then demo=$c; break; fi
done
[[ -n $demo ]] || fail "no cn-handoff-demo under $CLUSTERNET_BUILD_DIR/examples"
echo "tcp_handoff: using $demo"

tag=$$
C=cnl7-c-$tag R=cnl7-r-$tag A=cnl7-a-$tag B=cnl7-b-$tag
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnl7-handoff.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    for ns in "$C" "$R" "$A" "$B"; do ip netns del "$ns" 2>/dev/null; done
    [[ -n ${CLUSTERNET_KEEP_LOGS:-} ]] && cp -R "$tmp" "$CLUSTERNET_KEEP_LOGS"
    rm -rf "$tmp"
}
trap cleanup EXIT

run() { timeout 10 "$@" || fail "command failed: $*"; }

for ns in "$C" "$R" "$A" "$B"; do run ip netns add "$ns"; run ip -n "$ns" link set lo up; done
run ip -n "$C" link add c0 type veth peer name rc netns "$R"
run ip -n "$A" link add a0 type veth peer name ra netns "$R"
run ip -n "$B" link add b0 type veth peer name rb netns "$R"
run ip -n "$C" addr add 10.207.1.2/24 dev c0
run ip -n "$R" addr add 10.207.1.1/24 dev rc
run ip -n "$R" addr add 10.207.2.1/24 dev ra
run ip -n "$R" addr add 10.207.3.1/24 dev rb
run ip -n "$A" addr add 10.207.2.2/24 dev a0
run ip -n "$A" addr add 10.207.2.3/24 dev a0  # a source address that is no LCCP member
run ip -n "$B" addr add 10.207.3.2/24 dev b0
run ip -n "$A" addr add 10.207.0.100/32 dev lo
run ip -n "$B" addr add 10.207.0.100/32 dev lo
for pair in "$C c0" "$R rc" "$R ra" "$R rb" "$A a0" "$B b0"; do
    set -- $pair
    run ip -n "$1" link set "$2" up
done
run ip -n "$C" route add default via 10.207.1.1
run ip -n "$A" route add default via 10.207.2.1
run ip -n "$B" route add default via 10.207.3.1
run ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
for ns in "$R" "$A" "$B"; do
    run ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
for i in rc ra rb; do run ip netns exec "$R" sysctl -qw "net.ipv4.conf.$i.rp_filter=0"; done
run ip -n "$R" route add 10.207.0.100/32 via 10.207.2.2
timeout 5 ip netns exec "$C" ping -c 1 -W 2 10.207.0.100 >/dev/null || fail "the client cannot reach the service address"
timeout 5 ip netns exec "$A" ping -c 1 -W 2 10.207.3.2 >/dev/null || fail "node A cannot reach node B"

sizes=4194304,1048576,3000000
total_bytes=8242880
key=00112233445566778899aabbccddeeff

# round <name> <pre-bytes> <client pause ms> [<hold>]: one connection, one handoff, three
# responses. With hold=hold, the router drops the client's packets from just before A writes its
# part of the response until the route is re-pointed, so some of A's bytes are sent and never
# acknowledged when A captures the connection: B must retransmit them. With hold=lose, the
# router drops every LCCP message from A to B from just before the handoff: B never hears of it,
# A gets no handoff_reply by its deadline, leaves repair mode and serves the client itself.
# expect_resumed ROUND PATTERN MESSAGE: the server log of ROUND shows PATTERN (how A came to resume)
# and A serving all three requests on the resumed connection.
expect_resumed() {
    grep -q "$2" "$tmp/server-$1.log" || fail "round $1: $3"
    grep -q 'node A served 3 request(s) on the resumed connection' "$tmp/server-$1.log" ||
        fail "round $1: node A did not serve all three requests on the resumed connection"
}

round() {
    local name=$1 pre=$2 pause=$3 hold=${4:-} dump=-1 server crc src
    local switch="ip -n $R route replace 10.207.0.100/32 via 10.207.3.2" hold_args=()
    if [[ $hold == hold ]]; then
        hold_args=(--hold-cmd "ip netns exec $R nft 'add table ip cnl7hold; add chain ip cnl7hold hold { type filter hook forward priority 0; policy accept; }; add rule ip cnl7hold hold ip saddr 10.207.1.2 tcp dport 8080 drop'" --await-in-flight 1)
        switch="$switch && ip netns exec $R nft delete table ip cnl7hold"
    elif [[ $hold == loss5 ]]; then
        # 5 % of LCCP datagrams dropped either way (nftables numgen; there is no netem here).
        hold_args=(--deadline-ms 300 --hold-cmd "ip netns exec $R nft 'add table ip cnl7hold; add chain ip cnl7hold hold { type filter hook forward priority 0; policy accept; }; add rule ip cnl7hold hold ip protocol 253 numgen random mod 100 < 5 drop'")
        # The loss ends with the handoff (the switch), before A's forged messages, which B must
        # all receive to count them; a failed handoff never sends them.
        switch="$switch && ip netns exec $R nft delete table ip cnl7hold"
    elif [[ $hold == lose ]]; then
        hold_args=(--deadline-ms 300 --hold-cmd "ip netns exec $R nft 'add table ip cnl7hold; add chain ip cnl7hold hold { type filter hook forward priority 0; policy accept; }; add rule ip cnl7hold hold ip protocol 253 ip daddr 10.207.3.2 drop'")
    elif [[ $hold == noreply ]]; then
        # B restores, but every datagram B sends A is dropped: A never hears B's reply.
        hold_args=(--deadline-ms 300 --hold-cmd "ip netns exec $R nft 'add table ip cnl7hold; add chain ip cnl7hold hold { type filter hook forward priority 0; policy accept; }; add rule ip cnl7hold hold ip protocol 253 ip daddr 10.207.2.2 drop'")
    fi
    echo "tcp_handoff: round $name: A writes up to $pre bytes before the handoff; the client pauses ${pause} ms"
    run ip -n "$R" route replace 10.207.0.100/32 via 10.207.2.2
    # Watch the client's interface for resets and FINs from the service address.
    if ((have_tcpdump)); then
        : >"$tmp/tcpdump-$name.log"
        ip netns exec "$C" timeout 120 tcpdump -n -U --immediate-mode -s 96 -B 16384 -i c0 -w "$tmp/client-$name.pcap" 'tcp port 8080' \
            2>"$tmp/tcpdump-$name.log" &
        dump=$!
        pids+=("$dump")
        for _ in $(seq 1 200); do grep -q 'listening on' "$tmp/tcpdump-$name.log" 2>/dev/null && break; sleep 0.05; done
    fi
    timeout 120 "$demo" serve --ns-a "/var/run/netns/$A" --ns-b "/var/run/netns/$B" --listen 10.207.0.100:8080 \
        --a-addr 10.207.2.2 --b-addr 10.207.3.2 --stranger-addr 10.207.2.3 --key "$key" --pre-bytes "$pre" \
        --switch-cmd "$switch" "${hold_args[@]}" >"$tmp/server-$name.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 1 200); do
        grep -q 'listening on' "$tmp/server-$name.log" 2>/dev/null && break
        kill -0 "$server" 2>/dev/null || break
        sleep 0.05
    done
    grep -q 'listening on' "$tmp/server-$name.log" || fail "round $name: node A never listened"
    timeout 90 ip netns exec "$C" "$demo" client --connect 10.207.0.100:8080 --sizes "$sizes" --seed 7 \
        --pause-ms "$pause" >"$tmp/client-$name.log" 2>&1
    crc=$?
    wait "$server"
    src=$?
    cat "$tmp/client-$name.log" "$tmp/server-$name.log"
    ((crc == 0)) || fail "round $name: the client failed (status $crc)"
    ((src == 0)) || fail "round $name: the server failed (status $src)"
    grep -q "client: OK, one connection, 3 responses, $total_bytes bytes verified" "$tmp/client-$name.log" ||
        fail "round $name: the client did not verify all $total_bytes bytes"
    if [[ $hold == loss5 ]]; then
        timeout 10 ip netns exec "$R" nft delete table ip cnl7hold 2>/dev/null  # left after a fallback
        if grep -q 'node B served 3 request(s) on the restored connection' "$tmp/server-$name.log"; then
            loss_ok=$((loss_ok + 1))
        elif grep -q 'node A served 3 request(s) on the resumed connection' "$tmp/server-$name.log"; then
            loss_fallback=$((loss_fallback + 1))
        else
            fail "round $name: neither B served the restored connection nor A the resumed one"
        fi
    elif [[ $hold == noreply ]]; then
        timeout 10 ip netns exec "$R" nft delete table ip cnl7hold || fail "round $name: could not remove the drop rule"
        expect_resumed "$name" 'handoff failed (no handoff_reply by the deadline); node A resumed the connection after [0-9.]* us (node B dropped its frozen copy)' \
            "A should have resumed and B dropped its restored, frozen copy"
        grep -Eq 'handoff messages: ([2-9]|[1-9][0-9]+) handoff_reply' "$tmp/server-$name.log" ||
            fail "round $name: B should have repeated its reply while it waited for A's decision"
    elif [[ $hold == lose ]]; then
        timeout 10 ip netns exec "$R" nft delete table ip cnl7hold || fail "round $name: could not remove the drop rule"
        grep -q 'server: node B: handoff incomplete at the deadline (no request' "$tmp/server-$name.log" ||
            fail "round $name: node B should have given up on a handoff it never heard of"
        expect_resumed "$name" 'handoff failed (no handoff_reply by the deadline); node A resumed the connection' \
            "node A did not resume the connection"
    else
        grep -q 'node B served 3 request(s) on the restored connection' "$tmp/server-$name.log" ||
            fail "round $name: node B did not serve all three requests on the restored connection"
        grep -Eq '^handoff_time_us: .*capture-to-restored [0-9.]+' "$tmp/server-$name.log" ||
            fail "round $name: no handoff time printed"
        grep -q 'lccp_counters_b: accepted [0-9]*, bad_tag 2, not_member 1, rejected_total 3' "$tmp/server-$name.log" ||
            fail "round $name: node B did not reject and count the forged messages as expected"
    fi

    if ((have_tcpdump)); then
        sleep 0.2  # tcpdump -U writes each packet at once; this only lets the last one land
        kill "$dump" 2>/dev/null
        wait "$dump" 2>/dev/null
        local f=$tmp/client-$name.pcap n_all n_rst cfin sfin
        n_all=$(tcpdump -n -r "$f" 2>/dev/null | wc -l)
        # Resets from the service address, at any time: a handoff must never cause one.
        n_rst=$(tcpdump -n -r "$f" 'src host 10.207.0.100 and tcp[tcpflags] & tcp-rst != 0' 2>/dev/null | wc -l)
        # The server's FIN may only follow the client's (the client closes first when it is done).
        cfin=$(tcpdump -n -tt -r "$f" 'src host 10.207.1.2 and tcp[tcpflags] & tcp-fin != 0' 2>/dev/null |
            head -n 1 | cut -d' ' -f1)
        sfin=$(tcpdump -n -tt -r "$f" 'src host 10.207.0.100 and tcp[tcpflags] & tcp-fin != 0' 2>/dev/null |
            head -n 1 | cut -d' ' -f1)
        echo "tcp_handoff: round $name: tcpdump: $n_all packets, $n_rst resets from the server;" \
            "client FIN at ${cfin:-none}, server FIN at ${sfin:-none}"
        ((n_all > 100)) || fail "round $name: tcpdump saw too few packets ($n_all) to judge"
        ((n_rst == 0)) || fail "round $name: the server side sent $n_rst reset(s)"
        if [[ -n $sfin ]]; then
            [[ -n $cfin ]] || fail "round $name: the server sent a FIN but the client never did"
            python3 -c "import sys; sys.exit(0 if float('$sfin') >= float('$cfin') else 1)" ||
                fail "round $name: a FIN from the server reached the client before the client closed"
        fi
    fi
}

have_tcpdump=0
if command -v tcpdump >/dev/null 2>&1; then
    have_tcpdump=1
else
    printf '\n*** WARNING: tcpdump is not installed: the no-RST/no-FIN check is not run ***\n\n'
fi
# 1: the usual case: the request in the receive queue, a little of the response in flight.
round small 65536 0
# queues <name> <min S>: the captured queues held the 14-byte request, S >= min S bytes of
# response, and both sent-unacknowledged (S - U > 0) and never-sent (U > 0) bytes.
queues() {
    python3 - "$tmp/server-$1.log" "$2" <<'EOF' || fail "round $1: expected R=14, S >= $2 and S > U > 0"
import re, sys
m = re.search(r"R=(\d+) S=(\d+) U=(\d+)", open(sys.argv[1]).read())
r, s, u = map(int, m.groups())
sys.exit(0 if r == 14 and s >= int(sys.argv[2]) and s > u > 0 else 1)
EOF
}
# 2: a slow reader: A's send queue holds megabytes, a window's worth sent, the rest not.
round slow 4194304 300
queues slow 1000000
# 3: the client's packets held back: what A sent stays unacknowledged, B must retransmit it.
round held 4194304 0 hold
queues held 100000
# 4: the handoff's messages lost on the control path: A resumes, the client notices nothing.
round lost 65536 0 lose
# 4b: B restored but its replies are lost: A resumes; B's frozen copy goes without a word (before
# the two-phase commit, B's live copy reset the client here).
round noreply 65536 0 noreply
# 5: 5 % loss on the control path (the LCCP paper's claim: every request still completes).
# Small handoffs (a few messages each), so that most succeed and some fall back.
loss_ok=0 loss_fallback=0
for i in $(seq 1 20); do round "loss5-$i" 1000 0 loss5; done
echo "tcp_handoff: 5 % LCCP loss: 20/20 connections complete; $loss_ok handed off, $loss_fallback resumed by A"
((loss_ok >= 1)) || fail "with 5 % loss no handoff succeeded in 20"
echo "tcp_handoff: PASSED"
