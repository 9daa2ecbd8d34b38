#!/usr/bin/env bash
# scripts/make-capture.sh -- record a real capture of the Linux TCP/IP stack into a pcap file.
#
# Usage: scripts/make-capture.sh [--big-bytes N] <out.pcap>
#
# Needs root (network namespaces). Builds two namespaces, a client and a server, joined by a veth
# pair, with IPv4 (10.77.0.1, 10.77.0.2) and IPv6 (fd00:77::1, fd00:77::2, `nodad` so they work at
# once) addresses. Checksum offload is turned off on both ends (`ethtool -K tx off rx off`, and
# TSO/GSO/GRO off), so every captured packet carries its final, full checksum and wire size.
# The server runs nginx (or, without nginx, python3 -m http.server) on port 8080 serving a small
# text file and a file of N random bytes (default 200000), and two UDP sinks on port 9000.
# tcpdump records on the client's veth (nanosecond timestamps, snaplen 262144) while the client
#   - fetches both files over IPv4 and over IPv6 with curl,
#   - sends UDP datagrams over IPv4 and IPv6 (one IPv4 datagram without a checksum, SO_NO_CHECK),
#   - sends a UDP datagram to a closed port in each family (ICMP / ICMPv6 port unreachable back),
#   - pings the server over IPv4 and IPv6 (ping, or python3 ping sockets when ping is missing).
# Nothing waits a fixed time: servers are polled until they listen, tcpdump until it says
# "listening on", TCP until every connection has closed, and the capture until a final marker
# datagram has reached the file. Everything made here (namespaces, processes, temp files) is
# removed by a trap on exit. Names carry the PID (cn-cap-<pid>-...), so runs do not collide.
#
# Exit status: 0 on success, 1 on failure, 2 on bad usage, 77 when not root or when network
# namespaces cannot be made.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { printf 'make-capture.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'make-capture.sh: %s\n' "$*" >&2; }

big_bytes=200000
out=""
while (($#)); do
    case $1 in
        --big-bytes)
            (($# >= 2)) || { usage >&2; exit 2; }
            big_bytes=$2
            shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) printf 'make-capture.sh: unknown option: %s\n' "$1" >&2; usage >&2; exit 2 ;;
        *)
            [[ -z $out ]] || { printf 'make-capture.sh: one output file only\n' >&2; exit 2; }
            out=$1
            shift ;;
    esac
done
[[ -n $out ]] || { usage >&2; exit 2; }
if ! [[ $big_bytes =~ ^[0-9]+$ ]] || ((big_bytes < 1 || big_bytes > 100000000)); then
    printf 'make-capture.sh: --big-bytes wants a byte count (1..100000000)\n' >&2
    exit 2
fi

if [[ $(id -u) -ne 0 ]]; then
    log "SKIPPED: needs root (network namespaces)"
    exit 77
fi
for tool in ip ethtool tcpdump curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install.sh installs it)"
done

id=$$
cli=cn-cap-$id-cli
srv=cn-cap-$id-srv
vc=cn-cap-${id}c  # interface names: at most 15 characters
vs=cn-cap-${id}s
cli4=10.77.0.1 srv4=10.77.0.2 cli6=fd00:77::1 srv6=fd00:77::2
http_port=8080 udp_port=9000 closed_port=9001

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cn-cap.XXXXXX")
pids=()
made_ns=()

stop_pid() {  # stop_pid <pid>: SIGTERM, poll up to 5 s for the exit, then SIGKILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid ns
    set +e
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    for ns in "${made_ns[@]}"; do
        # Anything still running in a namespace made here was started here (nginx workers...).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid"; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# For foreground commands only: a function run with & would leave its PID to a subshell, and
# killing that would not stop the program (background programs use `ip netns exec` directly).
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
in_cli() { in_ns "$cli" "$@"; }
in_srv() { in_ns "$srv" "$@"; }

# poll <seconds> <what> <command...>: runs the command every 50 ms until it succeeds.
poll() {
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 20; i++)); do
        "$@" >/dev/null && return 0
        sleep 0.05
    done
    die "timed out after ${limit}s waiting for $what"
}

alive() { kill -0 "$1" 2>/dev/null; }

# --- namespaces and the veth pair -----------------------------------------------------------
if ! ip netns add "$cli" 2>"$tmp/netns.err"; then
    log "SKIPPED: cannot create a network namespace: $(cat "$tmp/netns.err")"
    exit 77
fi
made_ns+=("$cli")
ip netns add "$srv"
made_ns+=("$srv")

ip link add "$vc" netns "$cli" numtxqueues 1 numrxqueues 1 type veth \
    peer name "$vs" netns "$srv" numtxqueues 1 numrxqueues 1
setup_end() {  # setup_end <namespace> <device> <IPv4 address> <IPv6 address>
    local ns=$1 dev=$2
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip addr add "$3/24" dev "$dev"
    in_ns "$ns" ip -6 addr add "$4/64" dev "$dev" nodad
    # Without this, the kernel leaves TCP/UDP checksums partial ("offloaded") in what it
    # captures, and GRO/TSO make packets larger than the wire's.
    in_ns "$ns" ethtool -K "$dev" tx off rx off >/dev/null
    in_ns "$ns" ethtool -K "$dev" tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "$ns" ip link set "$dev" up
}
setup_end "$cli" "$vc" "$cli4" "$cli6"
setup_end "$srv" "$vs" "$srv4" "$srv6"
# Ping sockets for the python3 fallback (no effect when ping itself is used).
in_cli sysctl -qw net.ipv4.ping_group_range="0 2147483647" || true

# --- servers ----------------------------------------------------------------------------------
www=$tmp/www
mkdir -p "$www"
printf 'hello from clusternet make-capture.sh\n' >"$www/small.txt"
head -c "$big_bytes" /dev/urandom >"$www/big.bin"
chmod -R a+rX "$tmp"

if command -v nginx >/dev/null 2>&1; then
    nginx_v=$(nginx -V 2>&1)
    temp_paths="client_body_temp_path $tmp/ngx-body; proxy_temp_path $tmp/ngx-proxy;"
    for m in fastcgi uwsgi scgi; do
        [[ $nginx_v == *"--without-http_${m}_module"* ]] || temp_paths+=" ${m}_temp_path $tmp/ngx-$m;"
    done
    cat >"$tmp/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    $temp_paths
    types { text/plain txt; application/octet-stream bin; }
    default_type application/octet-stream;
    keepalive_timeout 0;
    server {
        listen $srv4:$http_port;
        listen [$srv6]:$http_port;
        root $www;
    }
}
EOF
    ip netns exec "$srv" nginx -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" -g 'daemon off;' \
        >"$tmp/server.log" 2>&1 &
    server_pid=$!
    server_name=nginx
elif command -v python3 >/dev/null 2>&1; then
    ip netns exec "$srv" python3 -m http.server --bind :: --directory "$www" "$http_port" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    server_name="python3 -m http.server"
else
    die "neither nginx nor python3 is installed"
fi
pids+=("$server_pid")

udp_sink=()
if command -v socat >/dev/null 2>&1; then
    udp_sink=(socat -u)
    ip netns exec "$srv" socat -u "UDP4-RECV:$udp_port,bind=$srv4" /dev/null >/dev/null 2>&1 &
    pids+=("$!")
    ip netns exec "$srv" socat -u "UDP6-RECV:$udp_port,bind=[$srv6]" /dev/null >/dev/null 2>&1 &
    pids+=("$!")
else
    log "socat is missing: the UDP datagrams will meet a closed port"
fi

http_listening() {
    alive "$server_pid" || { cat "$tmp/server.log" "$tmp/nginx-error.log" 2>/dev/null >&2; die "$server_name exited"; }
    in_srv ss -Hltn "sport = :$http_port" | grep -q .
}
poll 15 "$server_name to listen on port $http_port" http_listening
if ((${#udp_sink[@]})); then
    udp_listening() { [[ $(in_srv ss -Hlun "sport = :$udp_port" | wc -l) -ge 2 ]]; }
    poll 10 "the UDP sinks on port $udp_port" udp_listening
fi

# --- capture ----------------------------------------------------------------------------------
cap=$tmp/capture.pcap
precision=(--time-stamp-precision=nano)
ip netns exec "$cli" tcpdump -i "$vc" -U -n -s 262144 "${precision[@]}" -Z root -w "$cap" \
    >/dev/null 2>"$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
tcpdump_ready() {
    alive "$tcpdump_pid" || { cat "$tmp/tcpdump.err" >&2; die "tcpdump exited"; }
    grep -q 'listening on' "$tmp/tcpdump.err"
}
poll 10 "tcpdump to start" tcpdump_ready

# --- traffic ----------------------------------------------------------------------------------
fetch() {  # fetch <url> <expected size>
    local got
    got=$(in_cli timeout 20 curl --noproxy '*' -g -sS --max-time 15 -o /dev/null -w '%{size_download}' "$1") ||
        die "curl $1 failed"
    [[ $got == "$2" ]] || die "curl $1: got $got bytes, expected $2"
}
small_size=$(stat -c %s "$www/small.txt")
for base in "http://$srv4:$http_port" "http://[$srv6]:$http_port"; do
    fetch "$base/small.txt" "$small_size"
    fetch "$base/big.bin" "$big_bytes"
done

# UDP with bash's /dev/udp (checksummed by the kernel) over both families.
for i in 1 2 3; do
    in_cli timeout 5 bash -c "printf 'clusternet udp v4 %d\n' $i >/dev/udp/$srv4/$udp_port"
    in_cli timeout 5 bash -c "printf 'clusternet udp v6 %d\n' $i >/dev/udp/$srv6/$udp_port"
done

have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1
if ((have_python)); then
    # An IPv4 datagram without a checksum (SO_NO_CHECK), and one datagram per family to a closed
    # port: the ICMP errors come back before python3 returns (it waits for ECONNREFUSED).
    in_cli timeout 10 python3 - "$srv4" "$srv6" "$udp_port" "$closed_port" <<'EOF'
import socket, sys
srv4, srv6, port, closed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
SO_NO_CHECK = 11
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
s.sendto(b"clusternet udp v4 without checksum\n", (srv4, port))
s.close()
for family, addr in ((socket.AF_INET, srv4), (socket.AF_INET6, srv6)):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((addr, closed))
    s.send(b"clusternet udp to a closed port\n")
    try:
        s.recv(100)
        sys.exit("no ICMP port unreachable from " + addr)
    except ConnectionRefusedError:
        pass
    s.close()
EOF
else
    log "python3 is missing: no checksum-less UDP and no ICMP port unreachable in the capture"
fi

# ICMP echo over both families.
if command -v ping >/dev/null 2>&1; then
    in_cli timeout 10 ping -n -c 2 -i 0.2 -W 3 "$srv4" >/dev/null
    in_cli timeout 10 ping -6 -n -c 2 -i 0.2 -W 3 "$srv6" >/dev/null
elif ((have_python)); then
    log "ping is missing: sending ICMP echo requests through python3 ping sockets"
    in_cli timeout 10 python3 - "$srv4" "$srv6" <<'EOF'
import socket, sys
for family, proto, echo, addr in ((socket.AF_INET, socket.IPPROTO_ICMP, 8, sys.argv[1]),
                                  (socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, sys.argv[2])):
    s = socket.socket(family, socket.SOCK_DGRAM, proto)  # the kernel sets the id and checksum
    s.settimeout(5)
    for seq in (1, 2):
        s.sendto(bytes([echo, 0, 0, 0, 0, 0, 0, seq]) + b"clusternet ping", (addr, 0))
        s.recvfrom(1500)  # the echo reply
    s.close()
EOF
else
    log "neither ping nor python3: no ICMP echo in the capture"
fi

# Every TCP connection closed on both sides: the last ACK has passed the client's veth.
tcp_open() {
    in_ns "$1" ss -Htan state established state syn-sent state syn-recv state fin-wait-1 \
        state fin-wait-2 state close-wait state last-ack state closing | grep -q .
}
all_closed() { ! tcp_open "$cli" && ! tcp_open "$srv"; }
poll 15 "TCP connections to close" all_closed

# A marker datagram: once it is in the file, so is everything sent before it.
marker="clusternet-capture-end-$id"
in_cli timeout 5 bash -c "printf '%s' '$marker' >/dev/udp/$srv4/$udp_port"
poll 10 "tcpdump to write the last packet" grep -qaF "$marker" "$cap"
stop_pid "$tcpdump_pid"

tail -n 3 "$tmp/tcpdump.err" | sed 's/^/make-capture.sh: tcpdump: /' >&2
if grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$tmp/tcpdump.err"; then
    die "tcpdump reports packets dropped by the kernel"
fi
mkdir -p "$(dirname "$out")"
cp "$cap" "$out"
log "wrote $out ($(stat -c %s "$out") bytes; server: $server_name)"
