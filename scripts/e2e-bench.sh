#!/usr/bin/env bash
# scripts/e2e-bench.sh -- the end-to-end benchmark: the same namespace cluster and the same load
# through each dispatcher mode, as the LCCP paper's Figure 6 compares dispatchers with "ideal".
#
# Usage: scripts/e2e-bench.sh [options] [SPEC ...]
#   SPEC is MODE (a kernel peer, ideal or single: kernel-nat kernel-fullnat kernel-dr ideal single;
#   or handoff: the TCP-handoff cluster of scripts/cn-handoff-cluster.sh, dispatcher policy
#   $CN_HANDOFF_POLICY, default rr, so that two connections in three are handed off) or
#   MODE=COMMAND for a user-space dispatcher run in the dispatcher namespace, e.g.
#   'dr=cn-lsmac --config cfg' (COMMAND sees the CN_* variables of `cluster.sh info`, so
#   'nat=cn-lsnat --vip $CN_VIP --backends "$CN_BACKEND_IPS"' works). The user-space modes get
#   cluster.sh's --ingress-drop. Default: ideal kernel-dr kernel-nat.
#   --dispatcher CMD --mode MODE   the same as the SPEC MODE=CMD
#   --duration S      seconds per wrk run (default 5)
#   --connections C   wrk connections (default 32); --threads T wrk threads (default 1)
#   --backends N      back ends (default 3)
#   --curl N          requests in the curl loop before the wrk runs (default 60)
#   --rounds R        run every spec R times, interleaved; figures are medians (default 1)
#   --backend-cmd CMD passed to cluster.sh up (tun's decapsulator, dpr-node)
#   --saps-node CMD   the application node of a saps=COMMAND spec (its --backend-cmd), e.g.
#                     'cn-saps-http-node --server $CN_SAPS_NODES --name b$CN_BACKEND_INDEX
#                     --file /big.bin=$CN_BIG_FILE'
#   --single-node CMD the server of the single spec instead of nginx (cluster.sh --no-nginx;
#                     CMD runs on every back end, only b1 gets the VIP), e.g. the same HTTP code
#                     as the saps nodes on plain TCP: 'cn-saps-http-node --direct 0.0.0.0:80 ...'
#                     A saps spec runs without nginx too (its nodes serve).
#   --http-node CMD   the server on every back end instead of nginx for the other specs that
#                     need no --backend-cmd of their own (ideal, dr, nat, fullnat, the kernel
#                     peers; single too unless --single-node is given), e.g. the saps nodes'
#                     HTTP code on plain TCP, so that dr and saps serve with the same program
#   --bytes           also a throughput run per spec: wrk -c4 on $CN_BIG_PATH (MB/s)
#   --no-ingress-drop do not pass --ingress-drop for user-space modes
#   --prefix P        namespace prefix (default $CN_CLUSTER_PREFIX or cnh)
#   --json FILE       also write every run's figures as JSON
#
# For each spec: `cluster.sh up`, a curl loop (each request a new connection; every one must
# succeed), then two wrk runs: "conn/s", one request per connection (`Connection: close`), and
# "req/s", keep-alive. It prints conn/s and req/s, latency (average and 99th percentile), errors,
# the share of each back end (from each nginx's stub_status accepts and requests), and CPU:
#   - dsp CPU: user+system time of every process in the dispatcher namespace (/proc/PID/stat),
#     i.e. the user-space dispatcher's own time. The kernel peers have no process: their work is
#     softirq time, which no per-namespace account separates, so for them (and for every mode,
#     as a common yardstick) the whole machine's busy CPU over the run is taken from /proc/stat.
#   - per packet: that CPU divided by the packets the dispatcher's interfaces received; and the
#     machine's CPU per connection, whose excess over ideal's is the dispatcher's cost.
# Then ratios: each spec vs ideal, and each user-space mode vs its kernel peer (dr vs kernel-dr,
# nat vs kernel-nat, fullnat vs kernel-fullnat). The machine is shared: run with --rounds 3 for
# figures to quote, and read the background CPU line printed first.
#
# Every run is bounded (wrk -d, each command under timeout); traffic stays inside the
# namespaces; the cluster is torn down after each spec and on any exit.
set -euo pipefail

cn_me=e2e-bench.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/common.sh
source "$root/scripts/lib/common.sh"
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { printf '%s: error: %s\n' "$cn_me" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$cn_me" "$*" >&2; }
bad_usage() { printf '%s: %s\n' "$cn_me" "$*" >&2; exit 2; }

duration=5 connections=32 threads=1 nback=3 ncurl=60 rounds=1 backend_cmd="" ingress=1
prefix=${CN_CLUSTER_PREFIX:-cnh} json_out="" pending_cmd="" specs=() saps_node="" bytes_run=0 single_node="" http_node=""
while (($#)); do
    case $1 in
        --duration|--connections|--threads|--backends|--curl|--rounds)
            (($# >= 2)) || bad_usage "$1 wants a number"
            [[ $2 =~ ^[0-9]+$ ]] && (($2 >= 1)) || bad_usage "$1 wants a positive number"
            case $1 in
                --duration) duration=$2 ;; --connections) connections=$2 ;; --threads) threads=$2 ;;
                --backends) nback=$2 ;; --curl) ncurl=$2 ;; --rounds) rounds=$2 ;;
            esac
            shift 2 ;;
        --dispatcher) (($# >= 2)) || bad_usage "--dispatcher wants a command"; pending_cmd=$2; shift 2 ;;
        --mode)
            (($# >= 2)) || bad_usage "--mode wants a mode"
            [[ -n $pending_cmd ]] && { specs+=("$2=$pending_cmd"); pending_cmd=""; } || specs+=("$2")
            shift 2 ;;
        --backend-cmd) (($# >= 2)) || bad_usage "--backend-cmd wants a command"; backend_cmd=$2; shift 2 ;;
        --saps-node) (($# >= 2)) || bad_usage "--saps-node wants a command"; saps_node=$2; shift 2 ;;
        --single-node) (($# >= 2)) || bad_usage "--single-node wants a command"; single_node=$2; shift 2 ;;
        --http-node) (($# >= 2)) || bad_usage "--http-node wants a command"; http_node=$2; shift 2 ;;
        --bytes) bytes_run=1; shift ;;
        --no-ingress-drop) ingress=0; shift ;;
        --prefix) (($# >= 2)) || bad_usage "--prefix wants a value"; prefix=$2; shift 2 ;;
        --json) (($# >= 2)) || bad_usage "--json wants a file"; json_out=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) bad_usage "unknown option: $1" ;;
        *) specs+=("$1"); shift ;;
    esac
done
[[ -z $pending_cmd ]] || bad_usage "--dispatcher wants a --mode after it"
((${#specs[@]})) || specs=(ideal kernel-dr kernel-nat)
for s in "${specs[@]}"; do
    m=${s%%=*}
    case $m in
        ideal|single|kernel-*) [[ $s != *=* ]] || bad_usage "$m runs no dispatcher program: '$s'" ;;
        dr|nat|fullnat|tun) [[ $s == *=* ]] || bad_usage "$m needs a dispatcher: $m=COMMAND" ;;
        proxy) [[ $s == *=* ]] || bad_usage "proxy needs a front end: proxy=COMMAND (cn-splice ...)" ;;
        saps) [[ $s == *=* && -n $saps_node ]] || bad_usage "saps needs saps=IO_SERVER_COMMAND and --saps-node CMD" ;;
        dpr) [[ -n $backend_cmd || $s == *=* ]] || bad_usage "dpr needs --backend-cmd (dpr-node)" ;;
        handoff) [[ $s != *=* ]] || bad_usage "handoff runs its own programs (scripts/cn-handoff-cluster.sh): '$s'" ;;
        *) bad_usage "unknown mode in '$s' (scripts/cluster.sh modes)" ;;
    esac
done

if [[ $(id -u) -ne 0 ]]; then log "SKIPPED: needs root (network namespaces)"; exit 77; fi
for tool in wrk curl python3 nginx nft; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install.sh installs it)"
done

cluster=("$root/scripts/cluster.sh" --prefix "$prefix")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cn-e2e-bench.XXXXXX")
is_up=0
cleanup() {
    local rc=$?
    set +e
    ((is_up)) && "${cluster[@]}" down >/dev/null 2>&1
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measurements -----------------------------------------------------------------------------
# machine_cpu: "busy total softirq" ticks of the whole machine (/proc/stat's first line).
machine_cpu() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6, $8; exit}' /proc/stat; }
# ns_cpu NS: user+system jiffies of every process in the namespace (fields 14, 15 after comm).
ns_cpu() {
    local pid sum=0 f
    for pid in $(ip netns pids "$1" 2>/dev/null); do
        f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        f=${f##*) }
        read -r -a a <<<"$f"
        sum=$((sum + a[11] + a[12]))
    done
    echo "$sum"
}
dsp_packets() {
    local d sum=0 v
    for d in front0 lan0; do
        v=$(ip netns exec "$CN_NS_DSP" cat "/sys/class/net/$d/statistics/rx_packets")
        sum=$((sum + v))
    done
    echo "$sum"
}
# stub_status of every back end: "accepts requests" per line.
backend_counts() {
    local ns
    for ns in $CN_BACKEND_NS; do
        # (no nginx, as in a saps cluster: no line, and no share in the report)
        { ip netns exec "$ns" curl -s --max-time 2 "$CN_STATUS_URL" || true; } | awk 'NR == 3 {print $1, $3}'
    done
}
snapshot() {  # snapshot FILE
    {
        echo "machine $(machine_cpu)"
        echo "dsp $(ns_cpu "$CN_NS_DSP")"
        echo "packets $(dsp_packets)"
        backend_counts | sed 's/^/backend /'
    } >"$1"
}

# run_wrk LABEL SPEC ROUND KIND: one wrk run with snapshots around it; one JSON line.
run_wrk() {
    local label=$1 spec=$2 round=$3 kind=$4 hdr=() path=/ conns=$connections
    [[ $kind == conn ]] && hdr=(-H 'Connection: close')
    [[ $kind == bytes ]] && { path=$CN_BIG_PATH; conns=4; }
    snapshot "$tmp/before"
    timeout $((duration + 30)) ip netns exec "$CN_NS_CLI" wrk -t "$threads" -c "$conns" \
        -d "${duration}s" --latency "${hdr[@]}" "http://$CN_VIP:$CN_PORT$path" >"$tmp/wrk.out" 2>&1 ||
        { cat "$tmp/wrk.out" >&2; die "wrk failed for $label ($kind)"; }
    snapshot "$tmp/after"
    python3 - "$label" "$spec" "$round" "$kind" "$tmp/wrk.out" "$tmp/before" "$tmp/after" \
        "$(getconf CLK_TCK)" "$(nproc)" >>"$tmp/runs.jsonl" <<'PY'
import json, re, sys
label, spec, rnd, kind, wrk, before, after, hz, ncpu = sys.argv[1:]
hz = float(hz)
def snap(path):
    s = {"backend": []}
    for line in open(path):
        k, *v = line.split()
        if k == "backend":
            s["backend"].append([int(x) for x in v])
        else:
            s[k] = [int(x) for x in v]
    return s
b, a = snap(before), snap(after)
text = open(wrk).read()
def ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]
r = {"label": label, "spec": spec, "round": int(rnd), "kind": kind}
r["rate"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
r["mbytes_s"] = float(tr.group(1)) * {"B": 1e-6, "KB": 1.024e-3, "MB": 1.048576, "GB": 1073.741824}.get(tr.group(2), 0) if tr else 0.0
m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
r["requests"] = int(m.group(1))
lat = re.search(r"Latency\s+([\d.]+)(\w+)", text)
r["lat_avg_ms"] = ms(lat.group(1), lat.group(2))
p99 = re.search(r"99%\s+([\d.]+)(\w+)", text)
r["lat_p99_ms"] = ms(p99.group(1), p99.group(2))
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
r["socket_errors"] = sum(int(x) for x in err.groups()) if err else 0
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
r["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
# stub_status counts its own status request: one accept and one request per snapshot.
r["backend_conns"] = [x[0] - y[0] - 1 for x, y in zip(a["backend"], b["backend"])]
r["backend_reqs"] = [x[1] - y[1] - 1 for x, y in zip(a["backend"], b["backend"])]
busy = (a["machine"][0] - b["machine"][0]) / hz
total = (a["machine"][1] - b["machine"][1]) / hz
r["machine_cpu_s"] = busy
r["softirq_s"] = (a["machine"][2] - b["machine"][2]) / hz
r["machine_util"] = busy / total if total else 0.0   # of all CPUs
r["ncpu"] = int(ncpu)
r["dsp_cpu_s"] = (a["dsp"][0] - b["dsp"][0]) / hz
r["dsp_packets"] = a["packets"][0] - b["packets"][0]
json.dump(r, sys.stdout)
print()
PY
}

# curl_loop N: N requests, each on its own connection; prints "ok total" and the shares.
curl_loop() {
    local n=$1 urls=() i
    for ((i = 0; i < n; i++)); do urls+=("http://$CN_VIP:$CN_PORT/"); done
    timeout $((n + 30)) ip netns exec "$CN_NS_CLI" curl -s --max-time 2 -H 'Connection: close' \
        -w '%{http_code}\n' "${urls[@]}" >"$tmp/curl.out" 2>/dev/null || true
    # The body names the back end ("b2"); the write-out line after it is the status.
    awk -v n="$n" '/^b[0-9]+$/ {last = $1; next}
        /^[0-9][0-9][0-9]$/ {if ($1 == 200 && last != "") {ok++; share[last]++}; last = ""}
        END {printf "%d %d", ok, n; for (b in share) printf " %s=%d", b, share[b]; print ""}' "$tmp/curl.out"
}

# --- background -------------------------------------------------------------------------------
read -r b0 t0 _ < <(machine_cpu)
sleep 1  # a measured second of the machine without our traffic (not a wait for anything)
read -r b1 t1 _ < <(machine_cpu)
python3 -c "import sys; b,t=float(sys.argv[1]),float(sys.argv[2]); print('e2e-bench.sh: background CPU before the runs: %.0f %% of %s CPUs (the machine is shared)' % (100*b/t if t else 0, sys.argv[3]))" \
    $((b1 - b0)) $((t1 - t0)) "$(nproc)"
log "specs: ${specs[*]}; $rounds round(s); wrk -t$threads -c$connections -d${duration}s; $nback back ends"

# --- the runs ---------------------------------------------------------------------------------
: >"$tmp/runs.jsonl"
: >"$tmp/curl.txt"
for ((round = 1; round <= rounds; round++)); do
    for spec in "${specs[@]}"; do
        m=${spec%%=*} cmd=""
        [[ $spec == *=* ]] && cmd=${spec#*=}
        up=(up "$m" --backends "$nback")
        if [[ $m == handoff ]]; then
            # The TCP-handoff cluster: a direct-routing cluster whose switch spreads the SYNs, its
            # nodes handing connections to the node the LCCP dispatcher names (CN_HANDOFF_POLICY,
            # rr here unless set: the LCCP paper's Figure 5/6 experiment) in front of nginx.
            up=(up dr --backends "$nback" --ingress-drop --nginx-port 8080
                --backend-cmd "$root/scripts/cn-handoff-cluster.sh node"
                --dispatcher "$root/scripts/cn-handoff-cluster.sh front")
            export CN_HANDOFF_POLICY=${CN_HANDOFF_POLICY:-rr}
        fi
        if [[ -n $cmd ]]; then
            if [[ $m == dpr ]]; then up+=(--backend-cmd "$cmd"); else up+=(--dispatcher "$cmd"); fi
            [[ $m == dpr || $m == saps || $m == proxy ]] || ((ingress == 0)) || up+=(--ingress-drop)
        fi
        if [[ $m == saps ]]; then
            up+=(--backend-cmd "$saps_node" --no-nginx)
        elif [[ $m == single && -n $single_node ]]; then
            up+=(--backend-cmd "$single_node" --no-nginx)
        elif [[ -n $http_node && $m != dpr && $m != tun && $m != handoff ]]; then
            up+=(--backend-cmd "$http_node" --no-nginx)
        elif [[ -n $backend_cmd && $m != handoff ]] && ! [[ $m == dpr && -n $cmd ]]; then
            up+=(--backend-cmd "$backend_cmd")
        fi
        log "round $round: $spec"
        "${cluster[@]}" "${up[@]}" 2>"$tmp/up.err" || { cat "$tmp/up.err" >&2; die "cluster.sh up $m failed"; }
        is_up=1
        "${cluster[@]}" info --env >"$tmp/info.env"
        set -a
        # shellcheck disable=SC1091
        source "$tmp/info.env"
        set +a
        read -r ok total shares < <(curl_loop "$ncurl")
        printf '%s\t%s\t%s\t%s\n' "$spec" "$ok" "$total" "$shares" >>"$tmp/curl.txt"
        ((ok == total)) || log "WARNING: $spec: only $ok of $total curl requests succeeded"
        run_wrk "$m" "$spec" "$round" conn
        run_wrk "$m" "$spec" "$round" req
        ((bytes_run == 0)) || run_wrk "$m" "$spec" "$round" bytes
        if [[ -f $CN_STATE_DIR/pids/dispatcher.pid ]] && ! cn_alive "$(<"$CN_STATE_DIR/pids/dispatcher.pid")"; then
            tail -n 20 "$CN_STATE_DIR/dispatcher.log" >&2
            die "$spec: the dispatcher died during the runs"
        fi
        if [[ -f $CN_STATE_DIR/pids/dispatcher.pid ]]; then
            # A clean stop makes a clusternet dispatcher print its final counters: every verdict,
            # drops by reason, flows per back end.
            dpid=$(<"$CN_STATE_DIR/pids/dispatcher.pid")
            kill -TERM "$dpid" 2>/dev/null
            cn_poll 5 "the dispatcher to stop" bash -c "! kill -0 $dpid 2>/dev/null" || true
            grep -h '^final: ' "$CN_STATE_DIR/dispatcher.log" 2>/dev/null | sed "s|^final: |$m* |" >>"$tmp/final.txt" || true
        fi
        "${cluster[@]}" down >/dev/null 2>&1
        is_up=0
    done
done
[[ -z $json_out ]] || cp "$tmp/runs.jsonl" "$json_out"

# --- the report -------------------------------------------------------------------------------
python3 - "$tmp/runs.jsonl" "$tmp/curl.txt" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
curl = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
specs = list(dict.fromkeys(r["spec"] for r in runs))
def med(spec, kind, key):
    return statistics.median(r[key] for r in runs if r["spec"] == spec and r["kind"] == kind)
def pick(spec, kind):
    return [r for r in runs if r["spec"] == spec and r["kind"] == kind]
def shares(spec, kind, key):
    tot = [sum(x) for x in zip(*(r[key] for r in pick(spec, kind)))]
    s = sum(tot) or 1
    return "/".join("%.0f" % (100.0 * t / s) for t in tot)
label = {s: (s.split("=")[0] + ("*" if "=" in s else "")) for s in specs}
# Two specs of one mode (say cn-splice relaying by splice and by copy): numbered, with a legend.
for base in set(label.values()):
    same = [s for s in specs if label[s] == base]
    if len(same) > 1:
        for k, s in enumerate(same, 1):
            label[s] = "%s%d" % (base, k)
print()
for s in specs:
    if "=" in s and label[s][-1].isdigit():
        print("%-15s = %s" % (label[s], s.split("=", 1)[1]))
print("%-15s %9s %7s %7s %9s %7s %7s %6s %-12s %8s %7s %7s %8s" % (
    "mode", "conn/s", "lat ms", "p99 ms", "req/s", "lat ms", "p99 ms", "errors", "share %",
    "dspCPU s", "mach s", "sirq s", "us/conn"))
for s in specs:
    errs = sum(r["socket_errors"] + r["non_2xx"] for r in runs if r["spec"] == s)
    mach = med(s, "conn", "machine_cpu_s")
    conns = med(s, "conn", "requests")
    print("%-15s %9.0f %7.2f %7.2f %9.0f %7.2f %7.2f %6d %-12s %8.2f %7.2f %7.2f %8.1f" % (
        label[s], med(s, "conn", "rate"), med(s, "conn", "lat_avg_ms"), med(s, "conn", "lat_p99_ms"),
        med(s, "req", "rate"), med(s, "req", "lat_avg_ms"), med(s, "req", "lat_p99_ms"), errs,
        shares(s, "conn", "backend_conns"), med(s, "conn", "dsp_cpu_s"), mach, med(s, "conn", "softirq_s"),
        1e6 * mach / conns if conns else 0))
print("(conn/s: one request per connection; req/s: keep-alive; share: connections per back end in the"
      " conn/s run (the keep-alive run's requests per back end are listed below); dspCPU: processes in the dispatcher namespace; mach: whole machine busy CPU in the"
      " conn/s run, sirq: its softirq part (tick-sampled), us/conn: machine CPU per connection;"
      " * = user-space dispatcher)")
print()
print("spread over rounds, and the keep-alive run's share of requests:")
for s in specs:
    print("  %-15s conn/s %s; req/s %s; keep-alive requests %% %s" % (
        label[s], " ".join("%.0f" % r["rate"] for r in pick(s, "conn")),
        " ".join("%.0f" % r["rate"] for r in pick(s, "req")), shares(s, "req", "backend_reqs")))
print()
print("per packet through the dispatcher (conn/s run):")
for s in specs:
    pk = med(s, "conn", "dsp_packets")
    if s.startswith("ideal") or s == "single" or not pk:
        print("  %-15s no dispatcher in the path" % label[s])
        continue
    mach = med(s, "conn", "machine_cpu_s")
    dsp = med(s, "conn", "dsp_cpu_s")
    sirq = med(s, "conn", "softirq_s")
    line = "  %-15s %9d packets in; machine %.0f ns/packet, softirq %.0f ns/packet" % (
        label[s], pk, 1e9 * mach / pk, 1e9 * sirq / pk)
    if "=" in s:
        line += ", dispatcher process %.0f ns/packet" % (1e9 * dsp / pk)
    else:
        line += " (kernel peer: no process; its softirq time is not separable from the rest)"
    print(line)
print()
print("curl loops (each request its own connection):")
for spec, ok, total, sh in curl:
    print("  %-15s %s/%s ok  %s" % (label.get(spec, spec), ok, total, sh))
if any(r["kind"] == "bytes" for r in runs):
    print()
    print("throughput (wrk -c4 on the big file), MB/s:")
    for s in specs:
        mb = [r["mbytes_s"] * r["requests"] / r["rate"] for r in pick(s, "bytes") if r["rate"]]  # MB moved
        cpu = [1e3 * r["dsp_cpu_s"] / x for r, x in zip(pick(s, "bytes"), mb) if x]
        extra = ("; dispatcher CPU %.2f ms per MB" % statistics.median(cpu)) if "=" in s and cpu else ""
        print("  %-15s %8.1f  (rounds: %s)%s" % (label[s], med(s, "bytes", "mbytes_s"),
              " ".join("%.1f" % r["mbytes_s"] for r in pick(s, "bytes")), extra))
ideal = next((s for s in specs if s == "ideal"), None)
single = next((s for s in specs if s == "single"), None)
peers = {"dr": "kernel-dr", "nat": "kernel-nat", "fullnat": "kernel-fullnat"}
print()
print("ratios (conn/s, req/s):")
for s in specs:
    m = s.split("=")[0]
    out = []
    if ideal and s != ideal:
        out.append("vs ideal %.2f, %.2f" % (med(s, "conn", "rate") / med(ideal, "conn", "rate"),
                                             med(s, "req", "rate") / med(ideal, "req", "rate")))
        mi = med(ideal, "conn", "machine_cpu_s") / med(ideal, "conn", "requests")
        ms = med(s, "conn", "machine_cpu_s") / med(s, "conn", "requests")
        out.append("machine CPU per connection %+.1f us vs ideal" % (1e6 * (ms - mi)))
        si = med(ideal, "conn", "softirq_s") / med(ideal, "conn", "requests")
        ss = med(s, "conn", "softirq_s") / med(s, "conn", "requests")
        out.append("softirq per connection %+.1f us" % (1e6 * (ss - si)))
    if single and s != single:
        out.append("vs single (one node, direct) %.2f, %.2f" % (med(s, "conn", "rate") / med(single, "conn", "rate"),
                                                              med(s, "req", "rate") / med(single, "req", "rate")))
    if m == "saps":
        for d in (x for x in specs if x.split("=")[0] == "dr" and "=" in x):
            out.append("vs dr* %.2f, %.2f" % (med(s, "conn", "rate") / med(d, "conn", "rate"),
                                              med(s, "req", "rate") / med(d, "req", "rate")))
    first = next(x for x in specs if label[x].rstrip("0123456789") == label[s].rstrip("0123456789"))
    if first != s:
        out.append("vs %s %.2f, %.2f" % (label[first], med(s, "conn", "rate") / med(first, "conn", "rate"),
                                         med(s, "req", "rate") / med(first, "req", "rate")))
        if pick(s, "bytes") and pick(first, "bytes"):
            out.append("MB/s %.2f" % (med(s, "bytes", "mbytes_s") / med(first, "bytes", "mbytes_s")))
    peer = peers.get(m)
    if peer and "=" in s and peer in specs:
        out.append("vs %s %.2f, %.2f" % (peer, med(s, "conn", "rate") / med(peer, "conn", "rate"),
                                         med(s, "req", "rate") / med(peer, "req", "rate")))
    if out:
        print("  %-15s %s" % (label[s], "; ".join(out)))
nr = max(r["round"] for r in runs)
print()
print("%d round(s); figures are medians over rounds" % nr)
PY
if [[ -s $tmp/final.txt ]]; then
    printf '\nclusternet dispatchers, final counters (verdicts, drops by reason, flows per back end):\n'
    sed 's/^/  /' "$tmp/final.txt"
fi
