#!/usr/bin/env bash
# tests/e2e/io_bindings.sh -- the I/O bindings (include/clusternet/io/) on real sockets: two
# network namespaces joined by a veth pair, a TUN device, and cn-io-selftest driving each
# binding from a boost::asio::io_context and checking every byte.
#
#   cnio-a-<pid>  cnioa<pid> 10.201.0.1/24 ===veth=== cniob<pid> 10.201.0.2/24  cnio-b-<pid>
#                 cniotun0   10.202.0.1/24 (TUN, 2 queues)
#                 cniotap0   10.203.0.1/24 (TAP)
#
#   errors   setup errors in both forms (codes and messages)
#   ring     TX ring -> RX ring across the veth: 20000 frames, every byte and the count
#   fanout   two RX rings in a PACKET_FANOUT group: hash keeps flows whole, lb shares frames
#   raw      raw IP protocol 253 both ways (with and without IP_HDRINCL) and IP-in-IP
#   tun      echo requests and SYNs written into the TUN, the kernel's replies read back
#   tap      ARP and echo requests in Ethernet frames into the TAP, the kernel's replies back
#   compare  frames/s: TX ring -> RX ring vs TX ring -> recvmmsg vs sendmmsg -> RX ring
#            (printed for docs/io.md, not asserted)
#
# Run from the repository root with CLUSTERNET_BUILD_DIR set (ctest does both). Needs root and
# network namespaces; without them it prints SKIPPED and exits 77. Everything it makes is
# named with the prefix cnio and the script's pid, and removed by the EXIT trap.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

e2e_name=io_bindings
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"  # skip, fail

[[ $(id -u) -eq 0 ]] || skip "needs root and network namespaces (not root)"
[[ -c /dev/net/tun ]] || skip "needs /dev/net/tun"

if [[ -v CLUSTERNET_EXAMPLES_DIR && -z $CLUSTERNET_EXAMPLES_DIR ]]; then
    skip "the examples (cn-io-selftest) are not part of this build (CLUSTERNET_BUILD_EXAMPLES=OFF)"
fi
[[ -n ${CLUSTERNET_BUILD_DIR:-} ]] || fail "CLUSTERNET_BUILD_DIR is not set (ctest sets it)"
selftest=""
for c in "${CLUSTERNET_EXAMPLES_DIR:-}/cn-io-selftest" "$CLUSTERNET_BUILD_DIR/examples/cn-io-selftest"; do
    if [[ -x $c && -f $c ]]; then selftest=$c; break; fi
done
[[ -n $selftest ]] || fail "no cn-io-selftest under $CLUSTERNET_BUILD_DIR/examples"
echo "io_bindings: using $selftest"

ns_a=cnio-a-$$
ns_b=cnio-b-$$
if_a=cnioa$$
if_b=cniob$$
tun=cniotun0
tap=cniotap0

cleanup() {
    ip netns del "$ns_a" 2>/dev/null
    ip netns del "$ns_b" 2>/dev/null
}
trap cleanup EXIT

timeout 10 ip netns add "$ns_a" 2>/dev/null || skip "needs network namespaces (ip netns add failed)"
timeout 10 ip netns add "$ns_b" || fail "ip netns add $ns_b"
a() { ip netns exec "$ns_a" "$@"; }
b() { ip netns exec "$ns_b" "$@"; }

ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b" || fail "veth pair"
for ns in "$ns_a" "$ns_b"; do
    # No IPv6: its router solicitations and MLD reports would only be noise on the wire.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
a ip addr add 10.201.0.1/24 dev "$if_a" && a ip link set "$if_a" up || fail "address $if_a"
b ip addr add 10.201.0.2/24 dev "$if_b" && b ip link set "$if_b" up || fail "address $if_b"
a ip tuntap add dev "$tun" mode tun multi_queue || fail "ip tuntap add"
a ip addr add 10.202.0.1/24 dev "$tun" && a ip link set "$tun" up || fail "address $tun"
a ip tuntap add dev "$tap" mode tap || fail "ip tuntap add (tap)"
a ip addr add 10.203.0.1/24 dev "$tap" && a ip link set "$tap" up || fail "address $tap"

# Wait for both veth ends to be up (carrier), polling.
for _ in $(seq 100); do
    if a ip -o link show "$if_a" | grep -q 'state UP' && b ip -o link show "$if_b" | grep -q 'state UP'; then
        break
    fi
    sleep 0.05
done
a ip -o link show "$if_a" | grep -q 'state UP' || fail "$if_a did not come up"
timeout 10 ip netns exec "$ns_a" ping -c 1 -W 2 10.201.0.2 >/dev/null || fail "no ping across the veth pair"

failed=0
run() {
    local name=$1; shift
    printf '\n--- %s\n' "$name"
    local out rc
    out=$(timeout 120 ip netns exec "$ns_a" "$selftest" "$name" "$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if ((rc != 0)) || ! grep -qx PASS <<<"$out"; then
        printf 'io_bindings: %s FAILED (status %d)\n' "$name" "$rc" >&2
        failed=1
        # What the kernels saw, to tell a drop from a stall.
        a ip -s -d link show 2>&1 | sed 's/^/  a| /'
        a nstat -asz 2>/dev/null | grep -E 'Ip(InReceives|InDelivers|OutRequests|InDiscards|OutNoRoutes|InAddrErrors)|IcmpIn|IcmpOut|TcpOutRsts|IpExtInNoRoutes' | sed 's/^/  a| /'
    fi
}

run errors
run ring --tx-if "$if_a" --rx-netns "$ns_b" --rx-if "$if_b" --frames 20000
run fanout --tx-if "$if_a" --rx-netns "$ns_b" --rx-if "$if_b" --frames 20000
run raw --peer-netns "$ns_b" --local 10.201.0.1 --peer 10.201.0.2 --count 2000
run tun --name "$tun" --local 10.202.0.1 --remote 10.202.0.2 --count 200
run tap --name "$tap" --local 10.203.0.1 --remote 10.203.0.2 --count 50
run compare --tx-if "$if_a" --rx-netns "$ns_b" --rx-if "$if_b" --frames "${CNIO_COMPARE_FRAMES:-200000}"

((failed == 0)) || fail "some tests failed (see above)"
echo "io_bindings: PASSED"
