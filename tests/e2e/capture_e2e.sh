#!/usr/bin/env bash
# tests/e2e/capture_e2e.sh -- a fresh capture of the Linux TCP/IP stack, NAT-rewritten by cn-pcap,
# checked by cn-pcap itself and independently by tshark.
#
# Run from the repository root with CLUSTERNET_BUILD_DIR set to a build directory (ctest does
# both). Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
#   1. scripts/make-capture.sh records HTTP over IPv4 and IPv6, UDP and pings between two
#      namespaces (checksum offload off).
#   2. cn-pcap --verify-after --rewrite-dst ... --rewrite-src ... --write: zero bad checksums and
#      > 0 TCP packets before and after the rewrite, every rewritten checksum equal to a full
#      recompute, and exit status 0.
#   3. cn-pcap on the rewritten file: still zero bad checksums, and the new addresses are there.
#   4. tshark with checksum validation on: no packet of the rewritten file has a bad IPv4, TCP or
#      UDP checksum, and it did check TCP checksums.
# Every command that could hang runs under `timeout`.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

e2e_name=capture_e2e
# shellcheck source=lib/common.sh
source "$root/tests/e2e/lib/common.sh"  # skip, fail

if [[ $(id -u) -ne 0 ]]; then
    skip "needs root and network namespaces (not root)"
fi
probe=cn-e2e-probe-$$
if ! timeout 10 ip netns add "$probe" 2>/dev/null; then
    skip "needs root and network namespaces (ip netns add failed)"
fi
timeout 10 ip netns del "$probe"

# --- the cn-pcap binary -----------------------------------------------------------------------
if [[ -v CLUSTERNET_EXAMPLES_DIR && -z $CLUSTERNET_EXAMPLES_DIR ]]; then
    skip "the examples (cn-pcap) are not part of this build (CLUSTERNET_BUILD_EXAMPLES=OFF)"
fi
[[ -n ${CLUSTERNET_BUILD_DIR:-} ]] || fail "CLUSTERNET_BUILD_DIR is not set (ctest sets it)"
cn_pcap=""
for c in "${CLUSTERNET_EXAMPLES_DIR:-}/cn-pcap" "$CLUSTERNET_BUILD_DIR/examples/cn-pcap"; do
    if [[ -x $c && -f $c ]]; then cn_pcap=$c; break; fi
done
if [[ -z $cn_pcap ]]; then
    cn_pcap=$(find "$CLUSTERNET_BUILD_DIR" -type f -name cn-pcap -perm -u+x 2>/dev/null | head -n 1)
fi
[[ -n $cn_pcap ]] || fail "no cn-pcap executable under $CLUSTERNET_BUILD_DIR"
command -v python3 >/dev/null 2>&1 || fail "python3 is needed to read cn-pcap's JSON"
echo "capture_e2e: using $cn_pcap"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cn-e2e-capture.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- 1. capture -------------------------------------------------------------------------------
timeout 180 bash scripts/make-capture.sh "$tmp/capture.pcap"
rc=$?
((rc == 77)) && skip "make-capture.sh could not make network namespaces"
((rc == 0)) || fail "make-capture.sh exited with status $rc"

# --- 2. rewrite and verify --------------------------------------------------------------------
# check_json <file> <python expression over `s`, the summary>: fails with the expression.
check_json() {
    python3 - "$1" "$2" <<'EOF' || fail "in $(basename "$1"): $2"
import json, sys
s = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    json.dump({k: s[k] for k in ("records", "verdicts", "protocols", "checksums", "after_rewrite") if k in s},
              sys.stderr, indent=1)
    sys.exit(1)
EOF
}

timeout 60 "$cn_pcap" --json --verify-after \
    --rewrite-dst 10.77.0.2=192.0.2.80:80 --rewrite-src 10.77.0.1=198.51.100.1:40000 \
    --write "$tmp/rewritten.pcap" "$tmp/capture.pcap" >"$tmp/summary.json"
rc=$?
((rc == 0)) || { cat "$tmp/summary.json"; fail "cn-pcap --verify-after exited with status $rc"; }
s=$tmp/summary.json
check_json "$s" 's["records"] > 0 and s["verdicts"]["parsed"] == s["records"]'
check_json "$s" 's["bad_checksums"] == 0'
check_json "$s" 's["tcp_packets"] > 0'
check_json "$s" 's["checksums"]["tcp"]["ok"] > 0 and s["checksums"]["udp"]["ok"] > 0'
check_json "$s" 's["protocols"].get("tcp/ipv4", 0) > 0 and s["protocols"].get("tcp/ipv6", 0) > 0'
check_json "$s" 's["rewrite"]["packets_rewritten"] > 0'
check_json "$s" 'all(r["matched"] > 0 for r in s["rewrite"]["rules"])'
check_json "$s" 's["after_rewrite"]["bad_checksums"] == 0'
check_json "$s" 's["after_rewrite"]["tcp_packets"] > 0'
check_json "$s" 's["after_rewrite"]["verdicts"]["parsed"] == s["records"]'
check_json "$s" 's["after_rewrite"]["recompute_mismatches"] == {"ip": 0, "transport": 0}'
check_json "$s" 's["written"]["records"] == s["records"] and s["ok"]'
python3 - "$s" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print("capture_e2e: %d records, tcp %d, rewritten %d; bad checksums before %d, after %d; recompute mismatches %s"
      % (s["records"], s["tcp_packets"], s["rewrite"]["packets_rewritten"], s["bad_checksums"],
         s["after_rewrite"]["bad_checksums"], s["after_rewrite"]["recompute_mismatches"]))
EOF

# --- 3. the rewritten file on its own ---------------------------------------------------------
timeout 60 "$cn_pcap" --json --verify-after --top 1000 "$tmp/rewritten.pcap" >"$tmp/rewritten.json"
rc=$?
((rc == 0)) || fail "cn-pcap on the rewritten capture exited with status $rc"
r=$tmp/rewritten.json
check_json "$r" 's["bad_checksums"] == 0 and s["tcp_packets"] > 0'
# Flows list both directions as one, the smaller address first: either order will do.
check_json "$r" 'any({(f["a"], f["a_port"]), (f["b"], f["b_port"])} == {("192.0.2.80", 80), ("198.51.100.1", 40000)}
                     for f in s["top_flows"] if f["protocol"] == 6)'

# --- 4. tshark, an independent checker --------------------------------------------------------
if command -v tshark >/dev/null 2>&1; then
    prefs=(-o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE)
    bad=$(timeout 120 tshark -n -r "$tmp/rewritten.pcap" "${prefs[@]}" \
        -Y 'tcp.checksum.status == "Bad" || udp.checksum.status == "Bad" || ip.checksum.status == "Bad"' 2>/dev/null)
    rc=$?
    ((rc == 0)) || fail "tshark exited with status $rc"
    [[ -z $bad ]] || { printf '%s\n' "$bad" | head -n 20; fail "tshark finds bad checksums in the rewritten capture"; }
    good=$(timeout 120 tshark -n -r "$tmp/rewritten.pcap" "${prefs[@]}" -Y 'tcp.checksum.status == "Good"' 2>/dev/null |
        wc -l)
    ((good > 0)) || fail "tshark verified no TCP checksum at all (were the checksum preferences ignored?)"
    echo "capture_e2e: tshark: no bad checksum; $good TCP checksums verified good"
else
    printf '\n*** WARNING: tshark is not installed: the independent check was not run ***\n\n'
fi

echo "capture_e2e: PASSED"
