#!/usr/bin/env bash
# tests/e2e/splice_e2e.sh -- the TCP-splicing front end end to end: cn-splice on the cluster
# address of a `cluster.sh up proxy` cluster (3 back ends running nginx), LARD by URL path,
# splice(2) relaying, real curl and wrk from the client namespace.
#   1. a curl loop of 60 requests (each its own connection) all succeed, and all land on one
#      back end: LARD keeps a URL on its server set while the load is low;
#   2. 12 URLs, each asked 4 times on fresh connections, interleaved: every answer for a URL
#      comes from the same back end, the one cn-splice's access log says it chose, and the URLs
#      are spread over more than one back end;
#   3. keep-alive HTTP/1.1: 20 requests on one connection all succeed (one connect), all from
#      the back end the first request chose; HTTP/1.0 requests succeed;
#   4. the 20 MiB file arrives byte for byte through splice(2), and through a second front end
#      relaying by copy (--relay copy); a client that half-closes after its request gets its
#      answer (the FIN goes on to the back end, the answer comes back);
#   5. wrk, keep-alive and one request per connection: no socket error, no non-2xx;
#   6. refused heads: garbage 400, HTTP/2.0 505, 10 KB of headers 431, a head that stops
#      half-way 408 (after --head-timeout-ms), each answered and counted;
#   7. back-end failure: with the back end of "/" stopped, 20 requests to "/" all succeed on
#      the others; with every back end stopped a front end answers 502, then 503 while they are
#      out (--fail-timeout-ms); once they are back, requests succeed again;
#   8. SIGTERM: the final counters agree with the above.
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
e2e_name=splice_e2e
e2e_prefix=cnsp
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
e2e_require_netns
for tool in nginx curl wrk nft ethtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done
splice=$(e2e_find_example cn-splice) || exit $?

prefix=${CN_TEST_PREFIX:-cnsp-t$$}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cn-e2e-splice.XXXXXX")
chmod 755 "$tmp"
# shellcheck source=lib/cluster_client.sh
source "$root/tests/e2e/lib/cluster_client.sh"
say() { printf 'splice_e2e: [%3ds] %s\n' "$SECONDS" "$*"; }
e2e_on_fail() {
    [[ -n ${CN_STATE_DIR:-} && -d $CN_STATE_DIR ]] || return 0
    echo "--- dispatcher.log"; grep -v '^access: ' "$CN_STATE_DIR/dispatcher.log" | tail -n 10
    grep '^access: ' "$CN_STATE_DIR/dispatcher.log" | tail -n 10
    for f in "$tmp"/front-*.log; do [[ -f $f ]] && { echo "--- $f"; tail -n 10 "$f"; }; done
} >&2
extra_pids=()
cleanup() {
    local rc=$? p
    set +e
    for p in "${extra_pids[@]}"; do cn_stop_pid "$p"; done
    cluster down >/dev/null 2>&1
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The front end on the VIP's port 80 (the cluster's dispatcher) and, later, others on other ports.
front_cmd() {  # front_cmd PORT ARGS...: the command line of a front end on $CN_VIP:PORT
    local port=$1
    shift
    printf '%s --listen $CN_VIP:%s --backends "$CN_BACKEND_IPS" --backend-port $CN_PORT --access-log %s' \
        "$splice" "$port" "$*"
}
start_front() {  # start_front PORT ARGS...: another front end in the dispatcher namespace
    local port=$1
    ip netns exec "$CN_NS_DSP" env CN_VIP="$CN_VIP" CN_PORT="$CN_PORT" CN_BACKEND_IPS="$CN_BACKEND_IPS" \
        bash -c "exec $(front_cmd "$@")" </dev/null >"$tmp/front-$port.log" 2>&1 &
    extra_pids+=($!)
    cn_poll 10 "the front end on port $port" ns_open "$port" || fail "the front end on port $port did not start"
}
ns_open() { ip netns exec "$CN_NS_CLI" bash -c "exec 3<>/dev/tcp/$CN_VIP/$1" 2>/dev/null; }
get() {  # get PATH [CURL ARGS...]: prints "BODY CODE" of one request on its own connection
    local path=$1
    shift
    timeout 20 ip netns exec "$CN_NS_CLI" curl -s --max-time 10 "$@" -w ' %{http_code}' "http://$CN_VIP$path" | tr -d '\n'
}
# raw PORT PYTHON-BYTES [SHUT]: sends the bytes on a fresh connection, prints the status line
raw() {
    timeout 20 ip netns exec "$CN_NS_CLI" python3 - "$CN_VIP" "$1" "$2" "${3:-}" <<'PY'
import socket, sys
vip, port, data, shut = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3]), sys.argv[4]
s = socket.create_connection((vip, port), timeout=10)
s.sendall(data)
if shut: s.shutdown(socket.SHUT_WR)
out = b""
while True:
    try:
        b = s.recv(65536)
    except (ConnectionResetError, socket.timeout):
        break
    if not b: break
    out += b
print(out.split(b"\r\n", 1)[0].decode("latin-1"), len(out))
PY
}
final_of() { grep '^final: ' "$1" | tail -n 1; }
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }

start=$SECONDS
say "--- up proxy: cn-splice --policy lard --relay splice on $(nproc) CPUs"
cluster_up proxy --backends 3 --dispatcher "$(front_cmd 80 --head-timeout-ms 1000 --fail-timeout-ms 1500)"
log=$CN_STATE_DIR/dispatcher.log
grep -q 'policy lard, relay splice' "$log" || fail "cn-splice did not start as asked: $(head -n 3 "$log")"

# 1. a curl loop: one URL, so one back end
n=60
curl_loop "$n"
((ok == n)) || fail "$ok of $n requests succeeded ($(shares_text))"
home=""
for ((i = 1; i <= CN_BACKENDS; i++)); do
    if ((share[b$i] == n)); then home=b$i; elif ((share[b$i] != 0)); then fail "LARD split one URL: $(shares_text)"; fi
done
say "$n/$n requests ok, all on $home: LARD keeps / on one server ($(shares_text))"

# 2. URL affinity, checked against the access log
declare -A owner
used=()
for round in 1 2 3 4; do
    for u in $(seq 1 12); do
        r=$(get "/u/$u")
        [[ $r =~ ^(b[0-9]+)\ 200$ ]] || fail "/u/$u (round $round): '$r'"
        b=${BASH_REMATCH[1]}
        if [[ -z ${owner[$u]:-} ]]; then owner[$u]=$b; used+=("$b"); fi
        [[ ${owner[$u]} == "$b" ]] || fail "/u/$u answered by ${owner[$u]} then $b"
    done
done
for u in $(seq 1 12); do
    logged=$(grep -E "^access: [^ ]+ GET /u/$u -> " "$log" | awk '{print $6}' | sort -u | tr '\n' ' ')
    [[ $logged == "${owner[$u]} " ]] || fail "/u/$u: the access log says '$logged', the answers ${owner[$u]}"
done
distinct=$(printf '%s\n' "${used[@]}" | sort -u | wc -l)
((distinct >= 2)) || fail "12 URLs all went to one back end (${used[*]})"
say "12 URLs x 4: each always on its own back end, as logged; spread over $distinct back ends"

# 3. keep-alive and HTTP/1.0
urls=()
for i in $(seq 1 20); do urls+=("http://$CN_VIP/u/ka$i"); done
# Each answer is "bN\n" and then " CODE CONNECTS\n": one line per request once paired.
timeout 30 ip netns exec "$CN_NS_CLI" curl -s --max-time 20 -w ' %{http_code} %{num_connects}\n' "${urls[@]}" \
    >"$tmp/ka.raw" || fail "the keep-alive curl failed"
paste -d '' - - <"$tmp/ka.raw" >"$tmp/ka.out"
good=$(grep -c ' 200 ' "$tmp/ka.out")
((good == 20)) || fail "keep-alive: $good of 20 answered 200: $(head -c 300 "$tmp/ka.out")"
connects=$(awk '{s += $3} END {print s}' "$tmp/ka.out")
((connects == 1)) || fail "keep-alive: $connects connections for 20 requests"
servers=$(awk '{print $1}' "$tmp/ka.out" | sort -u | wc -l)
((servers == 1)) || fail "keep-alive requests answered by $servers back ends"
for i in 1 2 3 4 5; do
    r=$(get "/u/old$i" -0)
    [[ $r =~ ^b[0-9]+\ 200$ ]] || fail "HTTP/1.0 request: '$r'"
done
say "keep-alive: 20 requests, 1 connection, one back end; HTTP/1.0: 5/5"

# 4. downloads through splice and through copy, and a half-closing client
download_check
say "the $CN_BIG_BYTES-byte download arrived intact (splice)"
start_front 8080 --relay copy
rm -f "$tmp/dl2.bin"
timeout 120 ip netns exec "$CN_NS_CLI" curl -s -f --max-time 100 -o "$tmp/dl2.bin" "http://$CN_VIP:8080$CN_BIG_PATH" ||
    fail "the download through --relay copy failed"
cmp -s "$tmp/dl2.bin" "$CN_BIG_FILE" || fail "the download through --relay copy differs"
grep -q 'relay copy' "$tmp/front-8080.log" || fail "the second front end is not relaying by copy"
say "the $CN_BIG_BYTES-byte download arrived intact (copy)"
# (A small answer: nginx itself abandons a long answer once it sees the client's FIN.)
r=$(raw 80 "b'GET /u/half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'" shut)
[[ $r == "HTTP/1.1 200 OK "* ]] || fail "half-closing client: '$r'"
((${r##* } > 200)) || fail "half-closing client got only ${r##* } bytes"
say "a client that half-closes after its request gets its answer (${r##* } bytes)"

# 5. wrk
timeout 30 ip netns exec "$CN_NS_CLI" wrk -t1 -c8 -d2s "http://$CN_VIP/u/wrk" >"$tmp/wrk-ka.out" 2>&1 ||
    fail "wrk keep-alive failed: $(cat "$tmp/wrk-ka.out")"
! grep -qE 'Socket errors|Non-2xx' "$tmp/wrk-ka.out" || fail "wrk keep-alive saw errors: $(cat "$tmp/wrk-ka.out")"
say "wrk keep-alive 2 s: $(awk '/requests in/ {print $1}' "$tmp/wrk-ka.out") requests, no error"
wrk_check 2
say "wrk one request per connection 2 s: $wrk_requests requests, no error"

# 6. refused heads
r=$(raw 80 "b'GARBAGE\r\n\r\n'")
[[ $r == "HTTP/1.1 400 Bad Request "* ]] || fail "garbage: '$r'"
r=$(raw 80 "b'GET / HTTP/2.0\r\n\r\n'")
[[ $r == "HTTP/1.1 505 "* ]] || fail "HTTP/2.0: '$r'"
r=$(raw 80 "b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 10000 + b'\r\n\r\n'")
[[ $r == "HTTP/1.1 431 "* ]] || fail "10 KB of headers: '$r'"
t0=$SECONDS
r=$(raw 80 "b'GET / HTTP/1.1\r\nHost: x\r\n'")
[[ $r == "HTTP/1.1 408 "* ]] || fail "a head that stops half-way: '$r'"
say "garbage 400, HTTP/2.0 505, 10 KB of headers 431, a stalled head 408 (after ~$((SECONDS - t0)) s)"

# 7. back-end failure
hi=${home#b}
cluster backend stop "$hi" >/dev/null 2>&1 || fail "could not stop $home"
for i in $(seq 1 20); do
    r=$(get /)
    [[ $r =~ ^(b[0-9]+)\ 200$ && ${BASH_REMATCH[1]} != "$home" ]] || fail "with $home stopped, request $i to /: '$r'"
done
say "$home (the back end of /) stopped: 20/20 requests to / answered by the others"
start_front 8081 --fail-timeout-ms 60000
for ((i = 1; i <= CN_BACKENDS; i++)); do cluster backend stop "$i" >/dev/null 2>&1; done
r=$(raw 8081 "b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'")
[[ $r == "HTTP/1.1 502 "* ]] || fail "every back end stopped, first request: '$r' (want 502)"
r=$(raw 8081 "b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'")
[[ $r == "HTTP/1.1 503 "* ]] || fail "every back end out, second request: '$r' (want 503)"
for ((i = 1; i <= CN_BACKENDS; i++)); do cluster backend start "$i" >/dev/null 2>&1 || fail "could not restart b$i"; done
cn_poll 15 "the front end to use the restarted back ends" bash -c "[[ \$(ip netns exec $CN_NS_CLI curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://$CN_VIP/) == 200 ]]" ||
    fail "no request succeeded after the back ends came back"
curl_loop 10
((ok == 10)) || fail "after the back ends came back: $ok of 10"
say "every back end stopped: 502, then 503 while they are out; back again: 10/10"

# 8. final counters
pid=$(<"$CN_STATE_DIR/pids/dispatcher.pid")
kill -TERM "$pid"
cn_poll 5 "cn-splice to stop" bash -c "! kill -0 $pid 2>/dev/null" || fail "cn-splice did not stop on SIGTERM"
fin=$(final_of "$log")
[[ -n $fin ]] || fail "cn-splice printed no final counters"
for k in bad_request too_large bad_version head_timeout; do
    (($(field "$fin" "$k") == 1)) || fail "final counters: $k is not 1: $fin"
done
(($(field "$fin" connect_failures) >= 1)) || fail "final counters: no connect failure counted: $fin"
(($(field "$fin" spliced) >= 60 + 48 + 1 + 5)) || fail "final counters: too few spliced: $fin"
for p in "${extra_pids[@]}"; do cn_stop_pid "$p"; done
fin2=$(final_of "$tmp/front-8081.log")
(($(field "$fin2" bad_gateway) == 1 && $(field "$fin2" no_backend) == 1)) || fail "port 8081's counters: $fin2"
extra_pids=()
say "$fin"
cluster_down
say "PASSED in $((SECONDS - start)) s"
