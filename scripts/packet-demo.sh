#!/usr/bin/env bash
# scripts/packet-demo.sh -- the packet tools on real packets from the Linux TCP/IP stack.
#
# Usage: scripts/packet-demo.sh [--keep DIR]
#   --keep DIR  leave the capture, the rewritten capture and the summaries in DIR
#
#   1. Finds cn-pcap: in $CLUSTERNET_BUILD_DIR when set, else in build/gcc (brought up to date
#      when configured), build/clang or another build/*; when there is none it builds it:
#      cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=Release, then
#      cmake --build build/gcc -j2 --target cn-pcap.
#   2. As root with network namespaces: records a fresh capture with scripts/make-capture.sh
#      (HTTP with nginx and curl over IPv4 and IPv6, UDP, ping; checksum offload off).
#      Otherwise it says so loudly and uses the committed tests/data/linux-http.pcap.
#   3. cn-pcap on it: verdicts, protocols, checksums per layer, flows.
#   4. A NAT rewrite of both directions (server 10.77.0.2 -> 192.0.2.80 port 80, client
#      10.77.0.1 -> 198.51.100.1) with --verify-after (every checksum re-verified and compared to
#      a full recompute) and --write.
#   5. cn-pcap on the rewritten file, and tshark's own checksum validation when tshark is there.
# Exit status 0 when every step passed.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
keep=""
while (($#)); do
    case $1 in
        --keep) (($# >= 2)) || { usage >&2; exit 2; }; keep=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'packet-demo.sh: unknown argument: %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bold=""; plain=""
if [[ -t 1 ]]; then bold=$(printf '\033[1m'); plain=$(printf '\033[0m'); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
shout() {
    printf '\n%s' "$bold"
    printf '%s\n' "################################################################################"
    printf '#  %s\n' "$@"
    printf '%s\n' "################################################################################"
    printf '%s' "$plain"
}
die() { printf 'packet-demo.sh: error: %s\n' "$*" >&2; exit 1; }

# --- 1. cn-pcap -------------------------------------------------------------------------------
step "1. cn-pcap"
find_cn_pcap() {  # find_cn_pcap <build dir>...
    local d c
    for d in "$@"; do
        [[ -d $d ]] || continue
        for c in "$d/examples/cn-pcap" "$d/cn-pcap"; do
            [[ -f $c && -x $c ]] && { printf '%s\n' "$c"; return 0; }
        done
    done
    return 1
}
if [[ -n ${CLUSTERNET_BUILD_DIR:-} ]]; then
    # The caller's build: bring cn-pcap up to date when it is a CMake build, then use it.
    if [[ -f $CLUSTERNET_BUILD_DIR/CMakeCache.txt ]]; then
        cmake --build "$CLUSTERNET_BUILD_DIR" -j2 --target cn-pcap >/dev/null || die "building cn-pcap failed"
    fi
    cn_pcap=$(find_cn_pcap "$CLUSTERNET_BUILD_DIR") || die "no cn-pcap in CLUSTERNET_BUILD_DIR=$CLUSTERNET_BUILD_DIR"
else
    if [[ -f build/gcc/CMakeCache.txt ]]; then
        # A configured build: bring cn-pcap up to date (quick when it is).
        cmake --build build/gcc -j2 --target cn-pcap >/dev/null || die "building cn-pcap in build/gcc failed"
    fi
    if ! cn_pcap=$(find_cn_pcap build/gcc build/clang build/*); then
        echo "no cn-pcap built yet: building it in build/gcc (Release)"
        cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=Release
        cmake --build build/gcc -j2 --target cn-pcap
        cn_pcap=$(find_cn_pcap build/gcc) || die "cn-pcap is still missing after the build"
    fi
fi
echo "using $cn_pcap"

if [[ -n $keep ]]; then
    mkdir -p "$keep"
    work=$(cd "$keep" && pwd)
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/clusternet-demo.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

# --- 2. a capture -----------------------------------------------------------------------------
step "2. a capture of the Linux TCP/IP stack"
capture=""
can_capture=0
if [[ $(id -u) -eq 0 ]]; then
    probe=cn-demo-probe-$$
    if timeout 10 ip netns add "$probe" 2>/dev/null; then
        timeout 10 ip netns del "$probe"
        can_capture=1
    fi
fi
if ((can_capture)); then
    echo "recording: two network namespaces, nginx, curl over IPv4 and IPv6, UDP, ping (a few seconds)"
    if timeout 180 bash scripts/make-capture.sh "$work/capture.pcap"; then
        capture=$work/capture.pcap
    else
        shout "make-capture.sh FAILED: falling back to the committed tests/data/linux-http.pcap"
    fi
else
    shout "NOT ROOT, or no network namespaces here: cannot record a fresh capture." \
          "FALLING BACK to the committed capture tests/data/linux-http.pcap" \
          "(run as root for a capture made now: sudo scripts/packet-demo.sh)"
fi
if [[ -z $capture ]]; then
    [[ -f tests/data/linux-http.pcap ]] || die "tests/data/linux-http.pcap is missing"
    capture=$root/tests/data/linux-http.pcap
fi
echo "capture: $capture ($(stat -c %s "$capture") bytes)"

# --- 3. what is in it -------------------------------------------------------------------------
step "3. cn-pcap $capture"
"$cn_pcap" --top 6 "$capture" | tee "$work/capture-summary.txt"

# --- 4. NAT rewrite ---------------------------------------------------------------------------
# Both directions: the server moves to 192.0.2.80 port 80, the client to 198.51.100.1.
rules=(--rewrite-dst 10.77.0.2=192.0.2.80:80 --rewrite-src 10.77.0.2=192.0.2.80:80
       --rewrite-dst 10.77.0.1=198.51.100.1 --rewrite-src 10.77.0.1=198.51.100.1)
step "4. NAT rewrite, both directions (server -> 192.0.2.80:80, client -> 198.51.100.1), --verify-after:"
echo "cn-pcap ${rules[*]} --verify-after --write rewritten.pcap"
set +e
"$cn_pcap" --top 0 "${rules[@]}" --verify-after --write "$work/rewritten.pcap" "$capture" |
    sed -n '/^rewrites/,$p' | tee "$work/rewrite-summary.txt"
rc=${PIPESTATUS[0]}
set -e
((rc == 0)) || die "cn-pcap --verify-after failed (exit status $rc)"

# --- 5. the rewritten capture -----------------------------------------------------------------
step "5. cn-pcap --verify-after on the rewritten capture"
"$cn_pcap" --top 6 --verify-after "$work/rewritten.pcap" >"$work/rewritten-summary.txt"
# The checksum table, the flows (with the new addresses) and the verdict; the rest is in the file.
awk '/^after the rewrites/ { after = 1 } /^checksums/ && !after { on = 1 } (on && !after) || /verify-after:/' \
    "$work/rewritten-summary.txt"
if command -v tshark >/dev/null 2>&1; then
    set +e
    timeout 120 tshark -n -r "$work/rewritten.pcap" -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
        -o ip.check_checksum:TRUE \
        -Y 'tcp.checksum.status == "Bad" || udp.checksum.status == "Bad" || ip.checksum.status == "Bad"' \
        >"$work/tshark-bad.txt" 2>"$work/tshark.err"
    rc=$?
    set -e
    if ((rc != 0)); then
        # tshark crashes when it cannot read $HOME/.config/wireshark (seen with sudo-like setups).
        echo "(tshark failed with exit status $rc: the independent check was not run)"
    else
        bad=$(wc -l <"$work/tshark-bad.txt")
        echo "tshark, checking every IPv4, TCP and UDP checksum of the rewritten capture on its own: $bad bad"
        ((bad == 0)) || { head -n 20 "$work/tshark-bad.txt"; die "tshark finds bad checksums"; }
    fi
else
    echo "(tshark is not installed: skipping the independent check)"
fi

step "demo: OK"
if [[ -n $keep ]]; then echo "files in $work"; fi
if [[ $capture == "$root/tests/data/linux-http.pcap" ]]; then
    echo "(this ran on the committed capture, not a fresh one: see the notice above)"
fi
