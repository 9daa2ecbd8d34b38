#!/usr/bin/env bash
# tests/e2e/tunnel_e2e.sh -- LVS-style IP-in-IP tunnelling end to end, all clusternet: cn-lsmac
# mode=tun in the dispatcher namespace (AF_PACKET in, ipip_encap, out to the back end's
# address) and cn-ipip-decap in every back end (raw socket, ipip_decap, the inner packet into
# tun0, the back end's own TCP stack answers the client directly from the VIP on lo).
# On one `cluster.sh up tun --ingress-drop` cluster with 3 back ends:
#   1. a curl loop of 90 requests (each its own connection): every one succeeds, and round robin
#      spreads them exactly (30 +- 1 each);
#   1b. a request bigger than the tunnel's MTU gets through by path-MTU discovery: the
#      dispatcher's ICMP "fragmentation needed" teaches the client's kernel MTU 1480;
#   2. the 20 MiB file downloads through the tunnel byte for byte;
#   3. a 2-second wrk run: no socket error, no non-2xx;
#   4. the decapsulators' counters: packets delivered, none dropped; forged IP-in-IP packets (one
#      for another outer address, one with a truncated inner packet) are counted as dropped by
#      reason, and the back end keeps serving; SIGTERM stops it with its final counters.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
e2e_name=tunnel_e2e
e2e_prefix=cnd
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
e2e_require_netns
for tool in nginx curl wrk nft ethtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done
lsmac=$(e2e_find_example cn-lsmac) || exit $?
decap=$(e2e_find_example cn-ipip-decap) || exit $?

prefix=${CN_TEST_PREFIX:-cnd-t$$}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cn-e2e-tunnel.XXXXXX")
chmod 755 "$tmp"
# shellcheck source=lib/cluster_client.sh
source "$root/tests/e2e/lib/cluster_client.sh"
say() { printf 'tunnel_e2e: [%3ds] %s\n' "$SECONDS" "$*"; }
e2e_on_fail() {
    [[ -n ${CN_STATE_DIR:-} && -d $CN_STATE_DIR ]] || return 0
    echo "--- dispatcher.log"; tail -n 20 "$CN_STATE_DIR/dispatcher.log" 2>/dev/null
    for f in "$CN_STATE_DIR"/b*/hook.log; do echo "--- $f"; tail -n 5 "$f"; done
} >&2
cleanup() {
    local rc=$?
    set +e
    cluster down >/dev/null 2>&1
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The dispatcher's command: cn-lsmac's --set arguments from the cluster's CN_* variables.
cat >"$tmp/dispatcher.sh" <<EOS
#!/usr/bin/env bash
args=(--set interface=lan0 --set front_interface=front0 --set mode=tun --set "vip=\$CN_VIP"
      --set "port=\$CN_PORT" --set "local_address=\$CN_DSP_LAN_IP" --set stats_interval=1
      --set health_interval_ms=200)
for ip in \$CN_BACKEND_IPS; do args+=(--set "backend=\$ip"); done
exec "$lsmac" "\${args[@]}"
EOS
chmod 755 "$tmp/dispatcher.sh"

start=$SECONDS
say "--- up tun: cn-lsmac mode=tun, cn-ipip-decap on every back end"
cluster_up tun --ingress-drop --dispatcher "$tmp/dispatcher.sh" --backend-cmd "$decap --set stats_interval=1"
grep -q 'tunnel on lan0' "$CN_STATE_DIR/dispatcher.log" || fail "cn-lsmac did not start in tunnel mode"

# 1. every request, spread exactly by round robin
n=90
curl_loop "$n"
((ok == n)) || fail "$ok of $n requests through the tunnel succeeded ($(shares_text))"
for ((i = 1; i <= CN_BACKENDS; i++)); do
    ((share[b$i] >= n / CN_BACKENDS - 1 && share[b$i] <= n / CN_BACKENDS + 1)) ||
        fail "round robin: b$i got ${share[b$i]} of $n ($(shares_text))"
done
say "$n/$n requests ok, round robin $(shares_text)"

# 1b. path-MTU discovery: a request of 6000 bytes of headers goes out in full-sized segments,
# 1500-byte IP packets that do not fit the tunnel once wrapped (1520 > the 1500 MTU). The
# dispatcher answers each with an ICMP "fragmentation needed" (next-hop MTU 1480); the client's
# kernel lowers its path MTU to the VIP, resends smaller, and the request goes through. Without
# the ICMP it would hang until curl's timeout.
pad=$(head -c 6000 /dev/zero | tr '\0' a)
code=$(timeout 30 ip netns exec "$CN_NS_CLI" curl -s --max-time 20 -H "X-Pad: $pad" -o /dev/null -w '%{http_code}' \
    "http://$CN_VIP:$CN_PORT/") || true
[[ $code == 200 ]] || fail "a request larger than the tunnel's MTU did not get through (HTTP '$code')"
pmtu=$(ip netns exec "$CN_NS_CLI" ip route get "$CN_VIP" | grep -o 'mtu [0-9]*' || true)
[[ $pmtu == "mtu 1480" ]] || fail "the client's path MTU to the VIP is '${pmtu:-unset}', not 1480 (no ICMP frag-needed taken?)"
say "a 6000-byte request through the tunnel: HTTP 200; the client learnt path MTU 1480 from the dispatcher's ICMP"

# 2. a long download
download_check
say "the $CN_BIG_BYTES-byte download arrived intact"

# 3. wrk
wrk_check 2
say "wrk 2 s: $wrk_requests requests, no error"

# 4. counters, and forged tunnel packets counted by reason
hook_stats() { grep '^stats:' "$CN_STATE_DIR/b$1/hook.log" | tail -n 1; }
field() { awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}' <<<"$1"; }
cn_poll 5 "b1's decapsulator stats" grep -q '^stats: received [1-9]' "$CN_STATE_DIR/b1/hook.log" ||
    fail "b1's decapsulator printed no stats"
line=$(hook_stats 1)
(($(field "$line" delivered) > 0)) || fail "b1 delivered nothing: $line"
(($(field "$line" dropped) == 0)) || fail "b1 dropped tunnel packets of real traffic: $line"
say "b1: $line"
# Frames to b1's MAC from the dispatcher namespace through a packet socket: IP-in-IP to the VIP
# (an address b1's kernel takes up, on lo, but not the decapsulator's local_address), and
# IP-in-IP to b1 whose inner packet claims more bytes than it has. (A bad outer checksum cannot
# be shown here: b1's kernel drops such a packet before any raw socket sees it.)
ip netns exec "$CN_NS_DSP" python3 - "$CN_DSP_LAN_IP" "${CN_BACKEND_IPS%% *}" "$CN_VIP" \
    "${CN_BACKEND_MACS%% *}" <<'PY' || fail "could not send the forged packets"
import socket, struct, sys
src, b1, vip, b1mac = sys.argv[1:5]
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
def ip4(s, d, proto, payload, length=None):
    n = 20 + len(payload) if length is None else length
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, n, 1, 0, 64, proto, 0, socket.inet_aton(s), socket.inet_aton(d))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
udp = struct.pack('!HHHH', 1, 2, 8, 0)
good_inner = ip4('10.9.9.9', vip, 17, udp)
long_inner = ip4('10.9.9.9', vip, 17, udp, length=400)
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
p.bind(('lan0', 0))
eth = bytes.fromhex(b1mac.replace(':', '')) + bytes.fromhex(open('/sys/class/net/lan0/address').read().strip().replace(':', '')) + b'\x08\x00'
p.send(eth + ip4(src, vip, 4, good_inner))
p.send(eth + ip4(src, b1, 4, long_inner))
PY
forged_counted() { hook_stats 1 | grep -q 'not_for_us 1' && hook_stats 1 | grep -q 'inner_truncated 1'; }
cn_poll 5 "b1 to count the forged packets" forged_counted ||
    fail "b1 did not count the forged packets by reason: $(hook_stats 1)"
curl_loop 9
((ok == 9)) || fail "after the forged packets: $ok of 9 requests succeeded"
say "forged packets counted: $(hook_stats 1); 9/9 requests ok afterwards"

# a clean stop prints the final counters
pid=$(<"$CN_STATE_DIR/pids/hook-b1.pid")
kill -TERM "$pid"
cn_poll 5 "b1's decapsulator to stop" bash -c "! kill -0 $pid 2>/dev/null" || fail "cn-ipip-decap did not stop on SIGTERM"
grep -q '^final: received' "$CN_STATE_DIR/b1/hook.log" || fail "cn-ipip-decap printed no final counters"
cluster_down
say "PASSED in $((SECONDS - start)) s"
