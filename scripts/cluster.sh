#!/usr/bin/env bash
# scripts/cluster.sh -- a cluster of network namespaces on one machine: a client, a router, a
# dispatcher and N back ends running nginx, wired for one forwarding mode.
#
# Usage: scripts/cluster.sh [--prefix P] [--net A.B] SUB-COMMAND ...
#   up MODE [options]        build the cluster for MODE and leave it running
#   run MODE [options] -- CMD...
#                            build it, run CMD on the host (with the CN_* variables of `info` in
#                            its environment; it reaches the nodes with `cluster.sh exec`), tear
#                            everything down when CMD ends or fails or on INT/TERM
#   down                     stop every process and remove every namespace this prefix made
#   info [--env|--json]      the addresses, names and MACs (shell variables or JSON)
#   exec NODE CMD...         run CMD in a node's namespace (NODE: cli rtr dsp b1 .. bN)
#   backend stop|start I     stop or restart back end I's nginx (kill / restore a back end)
#   mark I down|up           take back end I out of / back into a kernel peer's (or ideal's)
#                            rotation; only the flows of I's slot move
#   modes                    list the modes
#
# Modes:
#   dr              direct routing (LSMAC): VIP routed to the dispatcher, which rewrites MACs onto
#                   the LAN; back ends hold the VIP on lo (arp_ignore=1, arp_announce=2) and reply
#                   straight to the client through the router. Needs a user-space dispatcher.
#   nat             LSNAT: back ends route to clients through the dispatcher. User-space dispatcher.
#   fullnat         source rewritten too (to CN_FULLNAT_IP); back ends route to the router and
#                   need no route through the dispatcher. User-space dispatcher.
#   tun             IP-in-IP to back ends: VIP on lo and a TUN device tun0 on every back end;
#                   no kernel ipip device exists, so a decapsulator of ours runs there through
#                   TUN (--backend-cmd). User-space dispatcher.
#   dpr             Distributed Packet Rewriting: no dispatcher; the router spreads the VIP over
#                   the back ends (ECMP), back ends as in tun, and --backend-cmd runs dpr-node.
#   kernel-nat      the kernel's NAT peer: nftables `numgen inc mod N` + dnat (kube-proxy style)
#   kernel-fullnat  kernel-nat plus snat to CN_FULLNAT_IP
#   kernel-dr       the kernel's direct-routing peer: netdev ingress, `fwd ip to` by jhash of
#                   (client address, client port) out of the LAN interface
#   ideal           no dispatcher: the router spreads the VIP straight over the back ends with an
#                   L4-hash multipath route (the LCCP paper's "ideal" cluster)
#   single          no dispatcher: the VIP is b1's alone (on its lo, routed to it): one server,
#                   direct, the peer of a single-address cluster
#   saps            a single-address cluster (SAPS): the VIP is the dispatcher's own address (on
#                   its lo); the I/O server there (--dispatcher, e.g. cn-saps-io-server --address
#                   \$CN_VIP --nodes \$CN_SAPS_NODES) terminates TCP and application nodes on the
#                   back ends (--backend-cmd, e.g. cn-saps-http-node --server \$CN_SAPS_NODES)
#                   serve it over the LAN; nginx still runs on the back ends, unused by the VIP
#   proxy           a layer-7 front end (TCP splicing, cn-splice): the VIP is the dispatcher's own
#                   address (on its lo) and the program there (--dispatcher, e.g. cn-splice
#                   --listen \$CN_VIP:\$CN_PORT --backend ...) terminates the client's connection
#                   and opens its own to a back end's nginx over the LAN
#
# Options of up/run:
#   --backends N          number of back ends (default 3, at most 50)
#   --dispatcher CMD      run `bash -c "exec CMD"` in the dispatcher namespace, then wait until
#                         the VIP answers; the CN_* variables are in its environment
#   --backend-cmd CMD     run CMD in every back end's namespace (CN_BACKEND_INDEX, CN_BACKEND_IP,
#                         CN_TUN_DEV in its environment): the tun decapsulator, dpr-node
#   --ingress-drop        user-space modes: netdev ingress drop, on the dispatcher, of the VIP
#                         (and for nat/fullnat the back ends' replies), so the kernel there neither
#                         forwards nor answers what an AF_PACKET dispatcher handles (ETH_P_ALL taps
#                         see a frame before netdev ingress; an ETH_P_IP one does not)
#   --offload on|off      veth checksum/TSO/GSO/GRO offloads (default off: every frame a
#                         user-space dispatcher sees carries its full checksum and fits the MTU)
#   --big-mb N            size of /big.bin in MiB (default 20)
#   --no-nginx            start no nginx on the back ends (--backend-cmd serves instead)
#   --nginx-port P        nginx listens on port P instead of the VIP's (CN_NGINX_PORT): for
#                         back-end programs that own the VIP's port and pass connections on to
#                         nginx (the handoff cluster's cn-handoff-node)
#   --ready-timeout S     how long to wait for the VIP to answer (default 15)
#   --ipv6                dual stack (modes dr, nat, fullnat, tun): every link gets an IPv6 address
#                         too (fd00:cb:L::H/64, no DAD), the VIP an IPv6 one (CN_VIP6,
#                         fd00:cb:100::1) routed and guarded as the IPv4 one, nginx listens on
#                         both; run an IPv6 dispatcher beside the IPv4 one (cn-dispatcher.sh
#                         MODE --ipv6). The readiness check stays IPv4's. CN_*6 variables.
#
# Environment: CN_CLUSTER_PREFIX (default cnh) and CN_CLUSTER_NET (default 10.201) stand for
# --prefix and --net; CN_CLUSTER_STATE_BASE (default /tmp) holds the state directory
# cn-cluster.<prefix>. Namespaces are <prefix>-cli, -rtr, -dsp, -b1 .. -bN; every interface lives
# inside them (none on the host). `up` removes what it made when it fails; nothing outside the
# namespaces and the state directory is touched.
#
# Exit status: 0 on success, 1 on failure, 2 on bad usage, 77 when not root or when network
# namespaces cannot be made.
set -euo pipefail

cn_me=cluster.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/common.sh
source "$root/scripts/lib/common.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { printf '%s: error: %s\n' "$cn_me" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$cn_me" "$*" >&2; }
bad_usage() { printf '%s: %s\n' "$cn_me" "$*" >&2; printf 'run %s --help for the usage\n' "$0" >&2; exit 2; }

all_modes=(dr nat fullnat tun dpr kernel-nat kernel-fullnat kernel-dr ideal single saps proxy)

prefix=${CN_CLUSTER_PREFIX:-cnh}
net=${CN_CLUSTER_NET:-10.201}
while (($#)); do
    case $1 in
        --prefix) (($# >= 2)) || bad_usage "--prefix wants a value"; prefix=$2; shift 2 ;;
        --net) (($# >= 2)) || bad_usage "--net wants a value"; net=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) break ;;
    esac
done
(($#)) || { usage >&2; exit 2; }
[[ $prefix =~ ^[a-z][a-z0-9-]{0,23}$ ]] || bad_usage "prefix '$prefix': want [a-z][a-z0-9-]{0,23}"
[[ $net =~ ^([0-9]{1,3})\.([0-9]{1,3})$ ]] && ((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256)) ||
    bad_usage "--net '$net': want the first two octets, A.B"
st=${CN_CLUSTER_STATE_BASE:-/tmp}/cn-cluster.$prefix

# --- names and addresses ----------------------------------------------------------------------
ns_of() { printf '%s-%s' "$prefix" "$1"; }
mac() { printf '02:cb:%02x:00:00:%02x' "$1" "$2"; }   # mac SUBNET HOST
vip=$net.100.1
port=80
cli_ip=$net.1.2 rtr_cli_ip=$net.1.1
rtr_front_ip=$net.3.1 dsp_front_ip=$net.3.2
rtr_lan_ip=$net.2.1 dsp_lan_ip=$net.2.2 fullnat_ip=$net.2.3
lan_net=$net.2.0/24 cli_net=$net.1.0/24
b_ip() { printf '%s.2.%d' "$net" $((10 + $1)); }
# IPv6 (--ipv6): the same links, fd00:cb:<link>::<host>/64; namespaces keep them apart from
# any other cluster's.
vip6=fd00:cb:100::1
cli_ip6=fd00:cb:1::2 rtr_cli_ip6=fd00:cb:1::1
rtr_front_ip6=fd00:cb:3::1 dsp_front_ip6=fd00:cb:3::2
rtr_lan_ip6=fd00:cb:2::1 dsp_lan_ip6=fd00:cb:2::2 fullnat_ip6=fd00:cb:2::3
lan_net6=fd00:cb:2::/64
b_ip6() { printf 'fd00:cb:2::%x' $((16 + $1)); }
addr6() { local node=$1 a=$2 dev=$3; in_ns "$node" ip -6 addr add "$a/64" dev "$dev" nodad; }
b_mac() { mac 2 $((10 + $1)); }

in_ns() { local node=$1; shift; ip netns exec "$(ns_of "$node")" "$@"; }
sysctls() { local node=$1; shift; in_ns "$node" sysctl -q -w "$@" >/dev/null; }
ns_tcp_open() { in_ns "$1" timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$2" "$3"; }

is_mode() { local m; for m in "${all_modes[@]}"; do [[ $m == "$1" ]] && return 0; done; return 1; }
is_kernel_mode() { [[ $1 == kernel-* ]]; }
is_userspace_mode() { [[ $1 == dr || $1 == nat || $1 == fullnat || $1 == tun ]]; }
vip_on_lo() { [[ $1 == dr || $1 == kernel-dr || $1 == ideal || $1 == tun || $1 == dpr || $1 == single ]]; }
router_spreads() { [[ $1 == ideal || $1 == dpr || $1 == single ]]; }

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        log "SKIPPED: needs root (network namespaces)"
        exit 77
    fi
}

load_state() {
    [[ -f $st/info.env ]] || die "no cluster with prefix '$prefix' is up (no $st/info.env)"
    # shellcheck disable=SC1091
    source "$st/info.env"
    mode=$CN_MODE
    nback=$CN_BACKENDS
    ipv6=${CN_IPV6:-0}
    nginx_port=${CN_NGINX_PORT:-$port}
}

# --- teardown ---------------------------------------------------------------------------------
teardown() {
    set +e
    local f pid ns
    if [[ -d $st/pids ]]; then
        for f in "$st"/pids/*.pid; do
            [[ -f $f ]] || continue
            pid=$(<"$f")
            [[ $pid =~ ^[0-9]+$ ]] && cn_stop_pid "$pid"
        done
    fi
    local namespaces=()
    if [[ -f $st/namespaces ]]; then
        mapfile -t namespaces <"$st/namespaces"
    else
        # State lost: only the exact names this script makes.
        mapfile -t namespaces < <(ip netns list 2>/dev/null | awk '{print $1}' |
            grep -E "^${prefix}-(cli|rtr|dsp|b[0-9]+)\$")
    fi
    for ns in "${namespaces[@]}"; do
        [[ -n $ns ]] || continue
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$ns" || continue
        # Whatever still runs in a namespace made here was started in it (nginx workers, hooks).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do cn_stop_pid "$pid"; done
        ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
    done
    rm -rf "$st"
    set -e
}

# --- building blocks --------------------------------------------------------------------------
make_ns() {
    local node=$1 ns
    ns=$(ns_of "$node")
    if ! ip netns add "$ns" 2>"$st/netns.err"; then
        if ! ip netns list | awk '{print $1}' | grep -qx -- "$ns" && [[ ! -s $st/namespaces ]]; then
            log "SKIPPED: cannot create a network namespace: $(cat "$st/netns.err")"
            exit 77
        fi
        die "cannot create namespace $ns: $(cat "$st/netns.err")" \
            "(left over from an earlier run? $0 --prefix $prefix down removes it)"
    fi
    printf '%s\n' "$ns" >>"$st/namespaces"
    in_ns "$node" ip link set lo up
    # Devices made later inherit "default": no reverse-path filter anywhere (asymmetric paths are
    # the point of direct routing), and a client port range wide enough for a long wrk run.
    sysctls "$node" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# veth NODE_A IF_A MAC_A NODE_B IF_B MAC_B (MAC "-" leaves the kernel's random one)
veth() {
    local a=$1 ia=$2 ma=$3 b=$4 ib=$5 mb=$6 node dev
    local aa=() ab=()
    [[ $ma == - ]] || aa=(address "$ma")
    [[ $mb == - ]] || ab=(address "$mb")
    ip link add name "$ia" netns "$(ns_of "$a")" "${aa[@]}" type veth \
        peer name "$ib" netns "$(ns_of "$b")" "${ab[@]}"
    for node_dev in "$a:$ia" "$b:$ib"; do
        node=${node_dev%%:*} dev=${node_dev#*:}
        if [[ $offload == off ]]; then
            in_ns "$node" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 ||
                die "ethtool -K $dev (in $(ns_of "$node")) failed: cannot turn offloads off"
        fi
        in_ns "$node" ip link set "$dev" up
    done
}

write_info() {
    local i ips=() macs=() nss=() ips6=() tun_dev=""
    [[ $mode == tun || $mode == dpr ]] && tun_dev=tun0
    for ((i = 1; i <= nback; i++)); do
        ips+=("$(b_ip "$i")") macs+=("$(b_mac "$i")") nss+=("$(ns_of "b$i")")
        if ((ipv6)); then ips6+=("$(b_ip6 "$i")"); fi
    done
    cat >"$st/info.env" <<EOF
CN_PREFIX='$prefix'
CN_MODE='$mode'
CN_STATE_DIR='$st'
CN_CLUSTER_ENV='$st/info.env'
CN_CLUSTER_INFO='$st/info.json'
CN_NS_CLI='$(ns_of cli)'
CN_NS_RTR='$(ns_of rtr)'
CN_NS_DSP='$(ns_of dsp)'
CN_VIP='$vip'
CN_PORT='$port'
CN_NGINX_PORT='$nginx_port'
CN_CLIENT_IP='$cli_ip'
CN_CLIENT_NET='$cli_net'
CN_LAN_NET='$lan_net'
CN_ROUTER_CLIENT_IP='$rtr_cli_ip'
CN_ROUTER_FRONT_IP='$rtr_front_ip'
CN_ROUTER_FRONT_MAC='$(mac 3 1)'
CN_ROUTER_LAN_IP='$rtr_lan_ip'
CN_ROUTER_LAN_MAC='$(mac 2 1)'
CN_DSP_FRONT_DEV='front0'
CN_DSP_FRONT_IP='$dsp_front_ip'
CN_DSP_FRONT_MAC='$(mac 3 2)'
CN_DSP_LAN_DEV='lan0'
CN_DSP_LAN_IP='$dsp_lan_ip'
CN_DSP_LAN_MAC='$(mac 2 2)'
CN_FULLNAT_IP='$fullnat_ip'
CN_SAPS_NODES='$dsp_lan_ip:9000'
CN_BACKENDS='$nback'
CN_BACKEND_IPS='${ips[*]}'
CN_BACKEND_MACS='${macs[*]}'
CN_BACKEND_NS='${nss[*]}'
CN_BACKEND_DEV='lan0'
CN_TUN_DEV='$tun_dev'
CN_SMALL_PATH='/'
CN_BIG_PATH='/big.bin'
CN_BIG_FILE='$st/www/big.bin'
CN_BIG_BYTES='$big_bytes'
CN_STATUS_URL='http://127.0.0.1:8081/status'
CN_INGRESS_DROP='$ingress_drop'
CN_OFFLOAD='$offload'
CN_IPV6='$ipv6'
EOF
    if ((ipv6)); then
        cat >>"$st/info.env" <<EOF
CN_VIP6='$vip6'
CN_CLIENT_IP6='$cli_ip6'
CN_ROUTER_FRONT_IP6='$rtr_front_ip6'
CN_DSP_FRONT_IP6='$dsp_front_ip6'
CN_DSP_LAN_IP6='$dsp_lan_ip6'
CN_FULLNAT_IP6='$fullnat_ip6'
CN_LAN_NET6='$lan_net6'
CN_BACKEND_IPS6='${ips6[*]}'
EOF
    fi
    python3 - "$st/info.env" >"$st/info.json" <<'PY'
import json, shlex, sys
env = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("=")
    env[k] = shlex.split(v)[0] if shlex.split(v) else ""
lists = ("CN_BACKEND_IPS", "CN_BACKEND_MACS", "CN_BACKEND_NS", "CN_BACKEND_IPS6")
out = {k[3:].lower(): (v.split() if k in lists else v) for k, v in env.items()}
for k in ("port", "backends", "big_bytes", "ingress_drop", "ipv6"):
    out[k] = int(out[k])
out["backend_list"] = [{"index": i + 1, "ip": ip, "mac": m, "ns": n, "name": "b%d" % (i + 1)}
                       for i, (ip, m, n) in enumerate(zip(out["backend_ips"], out["backend_macs"], out["backend_ns"]))]
json.dump(out, sys.stdout, indent=1)
print()
PY
}

nginx_conf() {  # nginx_conf I
    local i=$1 d=$st/b$1
    mkdir -p "$d/www" "$d/tmp"
    printf 'b%d\n' "$i" >"$d/www/index.html"
    cat >"$d/nginx.conf" <<EOF
# back end b$i of cluster $prefix ($mode), written by scripts/cluster.sh
user nobody nogroup;
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen $nginx_port backlog=4096;$(if ((ipv6)); then printf '\n        listen [::]:%s backlog=4096;' "$nginx_port"; fi)
        add_header X-Backend b$i always;
        root $d/www;
        location = /big.bin { root $st/www; }
        # /u/ANYTHING: the back end's name, for tests of content-aware policies (many URLs)
        location /u/ { try_files /index.html =404; }
        location / { }
    }
    server {
        listen 127.0.0.1:8081;
        location = /status { stub_status; }
    }
}
EOF
}

start_backend() {  # start_backend I: nginx in b_I, PID kept, port polled
    local i=$1 pid
    ip netns exec "$(ns_of "b$i")" nginx -e "$st/b$i/error.log" -c "$st/b$i/nginx.conf" \
        </dev/null >>"$st/b$i/nginx.out" 2>&1 &
    pid=$!
    echo "$pid" >"$st/pids/nginx-b$i.pid"
    if ! cn_poll 10 "nginx of b$i to listen" ns_tcp_open "b$i" 127.0.0.1 "$nginx_port" ||
        ! cn_alive "$pid"; then
        cat "$st/b$i/nginx.out" "$st/b$i/error.log" >&2 2>/dev/null || true
        die "nginx did not start in $(ns_of "b$i")"
    fi
}

stop_backend() {
    local i=$1 f=$st/pids/nginx-b$1.pid
    [[ -f $f ]] || { log "b$i is not running"; return 0; }
    cn_stop_pid "$(<"$f")"
    rm -f "$f"
}

# The back ends in rotation, and for each of the N slots the back end that serves it: a slot
# keeps its own back end while that one is up; a down back end's slot goes to the up ones in
# turn. So taking one out moves only its own flows (what a stateless peer must do to keep the
# others' connections).
slot_targets() {
    local i k=0 up=()
    for ((i = 1; i <= nback; i++)); do is_down "$i" || up+=("$i"); done
    for ((i = 1; i <= nback; i++)); do
        if is_down "$i"; then printf '%s\n' "${up[k % ${#up[@]}]}"; k=$((k + 1)); else printf '%s\n' "$i"; fi
    done
}
is_down() { [[ -f $st/down ]] && grep -qx -- "$1" "$st/down"; }

apply_rotation() {
    local i j=0 map="" targets up=()
    for ((i = 1; i <= nback; i++)); do is_down "$i" || up+=("$i"); done
    ((${#up[@]})) || { log "every back end would be down: keep at least one in rotation"; return 1; }
    mapfile -t targets < <(slot_targets)
    case $mode in
        kernel-nat|kernel-fullnat)
            for i in "${up[@]}"; do map+="${map:+, }$j : $(b_ip "$i")"; j=$((j + 1)); done
            {
                echo "flush chain ip cn_lb pre"
                echo "add rule ip cn_lb pre ip daddr $vip tcp dport $port dnat to numgen inc mod ${#up[@]} map { $map }"
            } >"$st/rotation.nft"
            in_ns dsp nft -f "$st/rotation.nft" ;;
        kernel-dr)
            for ((i = 0; i < nback; i++)); do map+="${map:+, }$i : $(b_ip "${targets[i]}")"; done
            {
                echo "flush chain netdev cn_dr in"
                echo "add rule netdev cn_dr in ip daddr $vip tcp dport $port fwd ip to jhash ip saddr . tcp sport mod $nback seed 0x5eed map { $map } device \"lan0\""
            } >"$st/rotation.nft"
            in_ns dsp nft -f "$st/rotation.nft" ;;
        ideal|dpr)
            local hops=()
            for ((i = 0; i < nback; i++)); do hops+=(nexthop via "$(b_ip "${targets[i]}")" dev br0 weight 1); done
            in_ns rtr ip route replace "$vip/32" "${hops[@]}" ;;
        single) in_ns rtr ip route replace "$vip/32" via "$(b_ip "${targets[0]}")" dev br0 ;;
        *) die "mark: mode $mode has no rotation of the harness's own; mark the back end in your dispatcher" ;;
    esac
}

# --- up ---------------------------------------------------------------------------------------
up_options() {
    nback=${CN_CLUSTER_BACKENDS:-3} dispatcher_cmd="" backend_cmd="" ingress_drop=0 offload=off
    big_mb=20 ready_timeout=15 no_nginx=0 ipv6=0 nginx_port=$port
    while (($#)); do
        case $1 in
            --backends) (($# >= 2)) || bad_usage "--backends wants a number"; nback=$2; shift 2 ;;
            --dispatcher) (($# >= 2)) || bad_usage "--dispatcher wants a command"; dispatcher_cmd=$2; shift 2 ;;
            --backend-cmd) (($# >= 2)) || bad_usage "--backend-cmd wants a command"; backend_cmd=$2; shift 2 ;;
            --ingress-drop) ingress_drop=1; shift ;;
            --no-nginx) no_nginx=1; shift ;;
            --nginx-port) (($# >= 2)) || bad_usage "--nginx-port wants a port"; nginx_port=$2; shift 2 ;;
            --ipv6) ipv6=1; shift ;;
            --offload) (($# >= 2)) || bad_usage "--offload wants on or off"; offload=$2; shift 2 ;;
            --big-mb) (($# >= 2)) || bad_usage "--big-mb wants a number"; big_mb=$2; shift 2 ;;
            --ready-timeout) (($# >= 2)) || bad_usage "--ready-timeout wants seconds"; ready_timeout=$2; shift 2 ;;
            --) shift; break ;;
            *) bad_usage "unknown option of $sub: $1" ;;
        esac
    done
    rest=("$@")
    [[ $nback =~ ^[0-9]+$ ]] && ((nback >= 1 && nback <= 50)) || bad_usage "--backends: 1 .. 50"
    [[ $offload == on || $offload == off ]] || bad_usage "--offload: on or off"
    [[ $big_mb =~ ^[0-9]+$ ]] && ((big_mb >= 1 && big_mb <= 1024)) || bad_usage "--big-mb: 1 .. 1024"
    [[ $ready_timeout =~ ^[0-9]+$ ]] || bad_usage "--ready-timeout: whole seconds"
    if ((ipv6)) && ! is_userspace_mode "$mode"; then
        bad_usage "--ipv6 is for modes dr, nat, fullnat and tun"
    fi
    if ((ingress_drop)) && ! is_userspace_mode "$mode"; then
        bad_usage "--ingress-drop is for the user-space dispatcher modes (dr nat fullnat tun)"
    fi
}

# kernel peers and ideal carry traffic by themselves; the other modes need a program of ours.
needs_no_program() { is_kernel_mode "$mode" || [[ $mode == ideal || $mode == single ]]; }
vip_answers() { in_ns cli curl -s -o /dev/null --max-time 1 -f "http://$vip:$port/"; }

do_up() {
    require_root
    for tool in ip nft nginx curl ethtool python3 timeout; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install.sh installs it)"
    done
    [[ ! -e $st ]] || die "a cluster with prefix '$prefix' is up already ($st); run: $0 --prefix $prefix down"
    mkdir -p "$st/pids" "$st/www"
    chmod 755 "$st" "$st/www"
    : >"$st/namespaces"
    big_bytes=$((big_mb * 1024 * 1024))

    local node i
    for node in cli rtr dsp; do make_ns "$node"; done
    for ((i = 1; i <= nback; i++)); do make_ns "b$i"; done

    # client ---- router
    veth cli eth0 "$(mac 1 2)" rtr cli0 "$(mac 1 1)"
    in_ns cli ip addr add "$cli_ip/24" dev eth0
    in_ns cli ip route add default via "$rtr_cli_ip"
    sysctls cli net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    in_ns rtr ip addr add "$rtr_cli_ip/24" dev cli0
    sysctls rtr net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
    if ((ipv6)); then
        addr6 cli "$cli_ip6" eth0
        in_ns cli ip -6 route add default via "$rtr_cli_ip6"
        addr6 rtr "$rtr_cli_ip6" cli0
        sysctls rtr net.ipv6.conf.all.forwarding=1
    fi

    # router ---- dispatcher (front link)
    veth rtr front0 "$(mac 3 1)" dsp front0 "$(mac 3 2)"
    in_ns rtr ip addr add "$rtr_front_ip/24" dev front0
    in_ns dsp ip addr add "$dsp_front_ip/24" dev front0
    in_ns dsp ip route add default via "$rtr_front_ip"
    if ((ipv6)); then
        addr6 rtr "$rtr_front_ip6" front0
        addr6 dsp "$dsp_front_ip6" front0
        in_ns dsp ip -6 route add default via "$rtr_front_ip6"
    fi

    # the LAN: a bridge in the router's namespace, the router's own address on it
    in_ns rtr ip link add br0 address "$(mac 2 1)" type bridge
    in_ns rtr ip link set br0 up
    in_ns rtr ip addr add "$rtr_lan_ip/24" dev br0
    veth dsp lan0 "$(mac 2 2)" rtr p-dsp -
    in_ns rtr ip link set p-dsp master br0
    in_ns dsp ip addr add "$dsp_lan_ip/24" dev lan0
    if ((ipv6)); then
        addr6 rtr "$rtr_lan_ip6" br0
        addr6 dsp "$dsp_lan_ip6" lan0
    fi

    head -c "$big_bytes" /dev/urandom >"$st/www/big.bin"
    chmod 644 "$st/www/big.bin"
    for ((i = 1; i <= nback; i++)); do
        node=b$i
        veth "$node" lan0 "$(b_mac "$i")" rtr "p-b$i" -
        in_ns rtr ip link set "p-b$i" master br0
        in_ns "$node" ip addr add "$(b_ip "$i")/24" dev lan0
        if vip_on_lo "$mode"; then
            in_ns "$node" ip addr add "$vip/32" dev lo
            sysctls "$node" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                net.ipv4.conf.lan0.arp_ignore=1 net.ipv4.conf.lan0.arp_announce=2
        fi
        case $mode in
            nat|kernel-nat) in_ns "$node" ip route add default via "$dsp_lan_ip" ;;
            *) in_ns "$node" ip route add default via "$rtr_lan_ip" ;;
        esac
        if [[ $mode == fullnat || $mode == kernel-fullnat ]]; then
            # Nobody's kernel owns the full-NAT source address: its neighbour entry is static.
            in_ns "$node" ip neigh replace "$fullnat_ip" lladdr "$(mac 2 2)" dev lan0 nud permanent
        fi
        if ((ipv6)); then
            addr6 "$node" "$(b_ip6 "$i")" lan0
            # Linux answers neighbour solicitations only for the receiving interface's own
            # addresses, so the VIP on lo needs no arp_ignore of IPv6's.
            if vip_on_lo "$mode"; then in_ns "$node" ip -6 addr add "$vip6/128" dev lo nodad; fi
            case $mode in
                nat) in_ns "$node" ip -6 route add default via "$dsp_lan_ip6" ;;
                *) in_ns "$node" ip -6 route add default via "$rtr_lan_ip6" ;;
            esac
            if [[ $mode == fullnat ]]; then
                in_ns "$node" ip -6 neigh replace "$fullnat_ip6" lladdr "$(mac 2 2)" dev lan0 nud permanent
            fi
        fi
        if [[ $mode == tun || $mode == dpr ]]; then
            in_ns "$node" ip tuntap add dev tun0 mode tun
            in_ns "$node" ip link set tun0 up
            sysctls "$node" net.ipv4.conf.tun0.rp_filter=0 net.ipv4.conf.tun0.accept_local=1
        fi
        nginx_conf "$i"
        chmod -R a+rX "$st/b$i"
        chown -R nobody "$st/b$i/tmp" 2>/dev/null || true
    done

    # where the router sends the VIP
    if router_spreads "$mode"; then
        apply_rotation
    else
        in_ns rtr ip route add "$vip/32" via "$dsp_front_ip"
    fi
    if ((ipv6)); then in_ns rtr ip -6 route add "$vip6/128" via "$dsp_front_ip6"; fi

    # the dispatcher namespace
    case $mode in
        kernel-nat|kernel-fullnat)
            sysctls dsp net.ipv4.ip_forward=1
            {
                echo "table ip cn_lb {"
                echo "  chain pre { type nat hook prerouting priority dstnat; policy accept; }"
                if [[ $mode == kernel-fullnat ]]; then
                    echo "  chain post { type nat hook postrouting priority srcnat; policy accept;"
                    echo "    ip daddr $lan_net tcp dport $port snat to $fullnat_ip"
                    echo "  }"
                fi
                echo "}"
            } >"$st/lb.nft"
            in_ns dsp nft -f "$st/lb.nft"
            apply_rotation ;;
        kernel-dr)
            cat >"$st/lb.nft" <<EOF
table netdev cn_dr {
  chain in { type filter hook ingress device "front0" priority 0; policy accept; }
}
EOF
            in_ns dsp nft -f "$st/lb.nft"
            apply_rotation ;;
        saps|proxy)
            sysctls dsp net.ipv4.ip_forward=0
            in_ns dsp ip addr add "$vip/32" dev lo ;;
        *)
            sysctls dsp net.ipv4.ip_forward=0 ;;
    esac
    if ((ingress_drop)); then
        {
            echo "table netdev cn_guard {"
            echo "  chain front { type filter hook ingress device \"front0\" priority -500; policy accept;"
            echo "    ip daddr $vip drop"
            if ((ipv6)); then echo "    ip6 daddr $vip6 drop"; fi
            echo "  }"
            if [[ $mode == nat || $mode == fullnat ]]; then
                local list="" list6=""
                for ((i = 1; i <= nback; i++)); do list+="${list:+, }$(b_ip "$i")" list6+="${list6:+, }$(b_ip6 "$i")"; done
                echo "  chain lan { type filter hook ingress device \"lan0\" priority -500; policy accept;"
                echo "    ip saddr { $list } tcp sport $port ip daddr != $lan_net drop"
                echo "    ip daddr $fullnat_ip drop"
                if ((ipv6)); then
                    echo "    ip6 saddr { $list6 } tcp sport $port ip6 daddr != $lan_net6 drop"
                    echo "    ip6 daddr $fullnat_ip6 drop"
                fi
                echo "  }"
            fi
            echo "}"
        } >"$st/guard.nft"
        in_ns dsp nft -f "$st/guard.nft"
    fi

    write_info

    ((no_nginx)) || for ((i = 1; i <= nback; i++)); do start_backend "$i"; done

    # shellcheck disable=SC1091
    set -a; source "$st/info.env"; set +a
    if [[ -n $backend_cmd ]]; then
        for ((i = 1; i <= nback; i++)); do
            ip netns exec "$(ns_of "b$i")" env CN_BACKEND_INDEX="$i" CN_BACKEND_IP="$(b_ip "$i")" \
                CN_BACKEND_MAC="$(b_mac "$i")" bash -c "exec $backend_cmd" \
                </dev/null >"$st/b$i/hook.log" 2>&1 &
            echo $! >"$st/pids/hook-b$i.pid"
        done
    fi
    if [[ -n $dispatcher_cmd ]]; then
        ip netns exec "$(ns_of dsp)" bash -c "exec $dispatcher_cmd" </dev/null >"$st/dispatcher.log" 2>&1 &
        echo $! >"$st/pids/dispatcher.pid"
    fi
    if needs_no_program || [[ -n $dispatcher_cmd ]] || [[ $mode == dpr && -n $backend_cmd ]]; then
        if ! cn_poll "$ready_timeout" "the VIP $vip:$port to answer the client" vip_answers; then
            [[ -f $st/dispatcher.log ]] && { log "dispatcher log:"; tail -n 20 "$st/dispatcher.log" >&2; }
            die "the cluster ($mode) does not answer on $vip:$port"
        fi
    else
        log "no dispatcher: $vip:$port will answer once one runs in $(ns_of dsp)" \
            "(cluster.sh exec dsp CMD, or up --dispatcher CMD)"
    fi
    log "up: $mode, $nback back ends, VIP $vip:$port; info: $st/info.env, $st/info.json"
}

# --- sub-commands -----------------------------------------------------------------------------
sub=$1
shift
case $sub in
    up|run)
        (($#)) || bad_usage "$sub wants a mode (one of: ${all_modes[*]})"
        mode=$1
        shift
        is_mode "$mode" || bad_usage "unknown mode '$mode' (modes: ${all_modes[*]})"
        up_options "$@"
        if [[ $sub == run ]]; then
            ((${#rest[@]})) || bad_usage "run wants a command after --"
            child=""
            trap '[[ -n $child ]] && cn_stop_pid "$child"; teardown' EXIT
            trap 'exit 130' INT TERM
            do_up
            set +e
            # In the background with `wait`, so that a TERM to this script tears down at once
            # (bash runs a trap only after a foreground child ends); stdin passed on explicitly.
            ( set -a; source "$st/info.env"; set +a; exec "${rest[@]}" ) <&0 &
            child=$!
            wait "$child"
            rc=$?
            child=""
            exit "$rc"
        fi
        ((${#rest[@]} == 0)) || bad_usage "up takes no command (did you mean run?)"
        made=0
        # On failure remove what was made; on success leave it up.
        trap '((made)) || teardown' EXIT
        trap 'exit 130' INT TERM
        do_up
        made=1 ;;
    down)
        (($# == 0)) || bad_usage "down takes no argument"
        if [[ ! -d $st ]] && ! ip netns list 2>/dev/null | awk '{print $1}' |
            grep -qE "^${prefix}-(cli|rtr|dsp|b[0-9]+)\$"; then
            log "nothing to remove for prefix '$prefix'"
            exit 0
        fi
        require_root
        teardown
        log "down: prefix '$prefix' removed" ;;
    info)
        load_state
        case ${1:---env} in
            --env) cat "$st/info.env" ;;
            --json) cat "$st/info.json" ;;
            *) bad_usage "info: --env or --json" ;;
        esac ;;
    exec)
        (($# >= 2)) || bad_usage "exec wants a node and a command"
        load_state
        node=$1
        shift
        [[ $node =~ ^(cli|rtr|dsp|b[0-9]+)$ ]] || bad_usage "node: cli, rtr, dsp or b1 .. b$nback"
        if [[ $node == b* ]] && ((${node#b} < 1 || ${node#b} > nback)); then bad_usage "no back end $node"; fi
        set -a; source "$st/info.env"; set +a
        exec ip netns exec "$(ns_of "$node")" "$@" ;;
    backend)
        (($# == 2)) || bad_usage "backend stop|start I"
        load_state
        [[ $2 =~ ^[0-9]+$ ]] && (($2 >= 1 && $2 <= nback)) || bad_usage "back end index: 1 .. $nback"
        case $1 in
            stop) stop_backend "$2"; log "b$2 stopped" ;;
            start)
                [[ ! -f $st/pids/nginx-b$2.pid ]] || { log "b$2 is running already"; exit 0; }
                start_backend "$2"; log "b$2 started" ;;
            *) bad_usage "backend stop|start I" ;;
        esac ;;
    mark)
        (($# == 2)) || bad_usage "mark I down|up"
        load_state
        [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= nback)) || bad_usage "back end index: 1 .. $nback"
        touch "$st/down"
        case $2 in
            down) is_down "$1" || echo "$1" >>"$st/down" ;;
            up) grep -vx -- "$1" "$st/down" >"$st/down.new" || true; mv "$st/down.new" "$st/down" ;;
            *) bad_usage "mark I down|up" ;;
        esac
        if ! apply_rotation; then
            [[ $2 == up ]] || { grep -vx -- "$1" "$st/down" >"$st/down.new" || true; mv "$st/down.new" "$st/down"; }
            die "could not mark b$1 $2"
        fi
        log "b$1 marked $2 ($mode)" ;;
    modes) printf '%s\n' "${all_modes[@]}" ;;
    *) bad_usage "unknown sub-command '$sub'" ;;
esac
