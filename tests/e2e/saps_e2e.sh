#!/usr/bin/env bash
# tests/e2e/saps_e2e.sh -- a single-address cluster (SAPS): curl and wrk against the cluster
# address reach HTTP servers on two application nodes through cn-saps-io-server, and killing one
# node leaves the other serving.
#
# Topology (namespaces and interfaces prefixed cnfl; nothing is created in the root namespace):
#   cnfl-cli  10.211.0.1 --veth-- 10.211.0.2 (the cluster address)  cnfl-io   cn-saps-io-server
#   cnfl-n1   10.211.1.1 --veth-- 10.211.1.2                         cnfl-io   (node channel, TCP 9000)
#   cnfl-n2   10.211.2.1 --veth-- 10.211.2.2                         cnfl-io
# Checks: 20 fresh connections are spread over both nodes round robin (10 each); wrk for 3 s
# with 10 connections gets only 200s; a client that half-closes after its request (socat) gets
# its answer; while one connection's application stops reading (an upload to --stall-path that
# the node never reads), 20 other requests are answered at once; node 1 is killed while a
# download from each node is in flight: node 1's client gets a reset (a clear error), node 2's
# download completes byte-exact, and every later request is answered by node 2.
# Needs root and namespaces; exits 77 (skipped) without them. Every wait polls; nothing sleeps a
# fixed time for a server.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

skip() { printf '\n*** SKIPPED: %s ***\n\n' "$*"; exit 77; }
fail() { printf 'saps_e2e: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || skip "needs root and network namespaces (not root)"
command -v curl >/dev/null || skip "curl is not installed"
if [[ -v CLUSTERNET_EXAMPLES_DIR && -z $CLUSTERNET_EXAMPLES_DIR ]]; then
    skip "the examples are not part of this build (CLUSTERNET_BUILD_EXAMPLES=OFF)"
fi
[[ -n ${CLUSTERNET_BUILD_DIR:-} ]] || fail "CLUSTERNET_BUILD_DIR is not set (ctest sets it)"
bin=${CLUSTERNET_EXAMPLES_DIR:-$CLUSTERNET_BUILD_DIR/examples}
io_server=$bin/cn-saps-io-server
http_node=$bin/cn-saps-http-node
[[ -x $io_server && -x $http_node ]] || fail "no cn-saps-io-server / cn-saps-http-node in $bin"

ns_cli=cnfl-cli-$$ ns_io=cnfl-io-$$ ns_n1=cnfl-n1-$$ ns_n2=cnfl-n2-$$
made=()
pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnfl-saps.XXXXXX")
cleanup() {
    local p n
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    # Anything still running in a namespace made here was started here (nginx workers).
    for n in "${made[@]}"; do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
        ip netns del "$n" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

for n in "$ns_cli" "$ns_io" "$ns_n1" "$ns_n2"; do
    timeout 10 ip netns add "$n" || { [[ ${#made[@]} -eq 0 ]] && skip "ip netns add failed"; fail "ip netns add $n"; }
    made+=("$n")
    ip -n "$n" link set lo up
done
# link <ns> <its address> <io-side address>: a veth between <ns> and the I/O server's namespace.
link() {
    local ns=$1 a=$2 b=$3 i=$4
    ip link add "cnfl$i-a" netns "$ns" type veth peer name "cnfl$i-b" netns "$ns_io" || fail "veth $i"
    ip -n "$ns" addr add "$a/24" dev "cnfl$i-a"
    ip -n "$ns_io" addr add "$b/24" dev "cnfl$i-b"
    ip -n "$ns" link set "cnfl$i-a" up
    ip -n "$ns_io" link set "cnfl$i-b" up
}
link "$ns_cli" 10.211.0.1 10.211.0.2 0
link "$ns_n1" 10.211.1.1 10.211.1.2 1
link "$ns_n2" 10.211.2.1 10.211.2.2 2
vip=10.211.0.2

# poll <tries> <command...>: runs the command every 0.1 s until it succeeds.
poll() {
    local tries=$1; shift
    local i
    for ((i = 0; i < tries; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

ip netns exec "$ns_io" "$io_server" --address "$vip" --nodes 0.0.0.0:9000 >"$tmp/io.log" 2>&1 &
pids+=($!)
poll 100 ip netns exec "$ns_io" bash -c "ss -ltn | grep -q ':9000 '" || { cat "$tmp/io.log"; fail "the I/O server does not listen"; }

head -c $((20 * 1024 * 1024)) /dev/urandom >"$tmp/big.bin"
node_args=(--port 80 --file /big.bin="$tmp/big.bin" --stall-path /stall)
ip netns exec "$ns_n1" "$http_node" --server 10.211.1.2:9000 --name n1 "${node_args[@]}" >"$tmp/n1.log" 2>&1 &
pid_n1=$!
pids+=($pid_n1)
poll 100 grep -q listening "$tmp/n1.log" || { cat "$tmp/n1.log"; fail "node 1 does not listen"; }
ip netns exec "$ns_n2" "$http_node" --server 10.211.2.2:9000 --name n2 "${node_args[@]}" >"$tmp/n2.log" 2>&1 &
pids+=($!)
poll 100 grep -q listening "$tmp/n2.log" || { cat "$tmp/n2.log"; fail "node 2 does not listen"; }

get() { timeout 10 ip netns exec "$ns_cli" curl -sS --max-time 5 "http://$vip/"; }
poll 100 get || fail "curl cannot reach the cluster address"

# --- round robin over both nodes -------------------------------------------------------------
n1=0 n2=0
for ((i = 0; i < 20; i++)); do
    body=$(get) || fail "request $i failed"
    case $body in
        n1) n1=$((n1 + 1)) ;;
        n2) n2=$((n2 + 1)) ;;
        *) fail "unexpected body '$body'" ;;
    esac
done
echo "saps_e2e: 20 connections: n1 $n1, n2 $n2"
((n1 == 10 && n2 == 10)) || fail "round robin expected 10/10, got $n1/$n2"

# --- wrk ----------------------------------------------------------------------------------------
if command -v wrk >/dev/null; then
    timeout 30 ip netns exec "$ns_cli" wrk -t1 -c10 -d3s "http://$vip/" >"$tmp/wrk.txt" 2>&1 || { cat "$tmp/wrk.txt"; fail "wrk failed"; }
    cat "$tmp/wrk.txt"
    grep -q "Non-2xx" "$tmp/wrk.txt" && fail "wrk saw non-2xx answers"
    grep -q "Socket errors" "$tmp/wrk.txt" && fail "wrk saw socket errors"
    rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.txt")
    [[ -n $rps ]] || fail "no Requests/sec in wrk's output"
    echo "saps_e2e: wrk through the I/O server: $rps requests/s"
else
    echo "saps_e2e: wrk not installed, load step left out"
fi

# --- the peer: wrk straight to nginx on node 2's own address (routed through cnfl-io) ---------
if command -v wrk >/dev/null && command -v nginx >/dev/null; then
    ip netns exec "$ns_io" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$ns_cli" route add 10.211.2.0/24 via 10.211.0.2
    ip -n "$ns_n2" route add 10.211.0.0/24 via 10.211.2.2
    cat >"$tmp/nginx.conf" <<NGX
user root;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $tmp/ngx-body;
    proxy_temp_path $tmp/ngx-proxy;
    server { listen 10.211.2.1:8080; location / { return 200 "n2\n"; } }
}
NGX
    ip netns exec "$ns_n2" nginx -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" -g 'daemon off;' >"$tmp/nginx.log" 2>&1 &
    pids+=($!)
    poll 100 ip netns exec "$ns_cli" curl -sf --max-time 2 http://10.211.2.1:8080/ || { cat "$tmp/nginx-error.log"; fail "nginx on node 2 cannot be reached"; }
    timeout 30 ip netns exec "$ns_cli" wrk -t1 -c10 -d3s http://10.211.2.1:8080/ >"$tmp/wrk-direct.txt" 2>&1 || fail "wrk (direct) failed"
    echo "saps_e2e: wrk straight to nginx on one node: $(awk '/Requests\/sec/ {print $2}' "$tmp/wrk-direct.txt") requests/s"
fi

# --- half-close: request, FIN, then read the answer ---------------------------------------------
if command -v socat >/dev/null; then
    answer=$(printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 ip netns exec "$ns_cli" socat -t 5 - "TCP:$vip:80") ||
        fail "socat (a half-closing client) failed"
    [[ $answer == "HTTP/1.1 200 OK"* ]] || fail "a half-closing client got no answer: '$answer'"
    [[ $answer == *$'\r\n\r\n'n[12]* ]] || fail "a half-closing client's answer has no body: '$answer'"
    echo "saps_e2e: a client that shut down its side after the request got its answer"
else
    echo "saps_e2e: socat not installed, half-close step left out"
fi

# --- one application stops reading; the others are not slowed --------------------------------
# An upload to /stall: the node reads its head and never reads again, so the channel's credit
# for that stream runs out and TCP flow control stops the client; the channel and the other
# connections must go on.
head -c $((64 * 1024 * 1024)) /dev/zero >"$tmp/upload.bin"
timeout 60 ip netns exec "$ns_cli" curl -s -o /dev/null --max-time 50 -H 'Expect:' -T "$tmp/upload.bin" \
    "http://$vip/stall" &
stall_pid=$!
pids+=($stall_pid)
client_connected() { ip netns exec "$ns_io" ss -Htn state established "( sport = :80 )" | grep -q .; }
poll 100 client_connected || fail "the stalled upload did not connect"
sleep 1  # let the upload fill every buffer on its way (the point of the step; nothing is awaited)
n1=0 n2=0
start=$SECONDS
for ((i = 0; i < 20; i++)); do
    body=$(get) || fail "request $i failed while one connection was stalled"
    case $body in n1) n1=$((n1 + 1)) ;; n2) n2=$((n2 + 1)) ;; *) fail "unexpected body '$body'" ;; esac
done
kill -0 "$stall_pid" 2>/dev/null || fail "the stalled upload ended: the node was expected never to read it"
echo "saps_e2e: with one upload stalled by its application, 20 of 20 other requests answered (n1 $n1, n2 $n2) in $((SECONDS - start)) s"
((n1 > 0 && n2 > 0)) || fail "with a stalled connection, one node got no requests ($n1/$n2)"
kill "$stall_pid" 2>/dev/null
wait "$stall_pid" 2>/dev/null

# --- kill node 1 while a download from each node is in flight ----------------------------------
want=$(sha256sum <"$tmp/big.bin" | awk '{print $1}')
for k in a b; do
    timeout 60 ip netns exec "$ns_cli" curl -s --max-time 50 --limit-rate 4M -D "$tmp/hdr-$k" -o "$tmp/got-$k" \
        "http://$vip/big.bin" &
    eval "dl_$k=\$!"
    pids+=($!)
    poll 100 grep -q '^X-Backend' "$tmp/hdr-$k" || fail "download $k did not start"
done
srv_a=$(awk -F': ' '/^X-Backend/ {gsub(/\r/, "", $2); print $2}' "$tmp/hdr-a")
srv_b=$(awk -F': ' '/^X-Backend/ {gsub(/\r/, "", $2); print $2}' "$tmp/hdr-b")
[[ $srv_a != "$srv_b" ]] || fail "both downloads went to $srv_a (round robin expected one each)"
if [[ $srv_a == n1 ]]; then on_n1=$dl_a on_n2=$dl_b got_n2=$tmp/got-b; else on_n1=$dl_b on_n2=$dl_a got_n2=$tmp/got-a; fi
kill -KILL "$pid_n1"
wait "$pid_n1" 2>/dev/null
wait "$on_n1"
rc_n1=$?
[[ $rc_n1 == 56 || $rc_n1 == 18 ]] || fail "node 1's download ended with curl status $rc_n1 (expected a reset: 56, or 18)"
wait "$on_n2" || fail "node 2's download failed (curl status $?) when node 1 was killed"
[[ $(sha256sum <"$got_n2" | awk '{print $1}') == "$want" ]] || fail "node 2's download is corrupt"
echo "saps_e2e: node 1 killed mid-download: its client got curl status $rc_n1 (reset); node 2's 20 MiB download completed byte-exact"

# --- after node 1's death ----------------------------------------------------------------------
# The I/O server drops node 1 when its channel breaks; poll until it says so.
poll 100 grep -q "node 0 failed" "$tmp/io.log" || { cat "$tmp/io.log"; fail "the I/O server did not notice node 1's death"; }
for ((i = 0; i < 20; i++)); do
    body=$(get) || fail "request $i after killing node 1 failed"
    [[ $body == n2 ]] || fail "after killing node 1, got '$body'"
done
echo "saps_e2e: after killing node 1, 20 of 20 requests answered by n2"
echo "saps_e2e: passed"
