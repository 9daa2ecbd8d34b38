#!/usr/bin/env bash
# tests/e2e/cluster_harness.sh -- the cluster harness (scripts/cluster.sh) carries real HTTP
# through the kernel's own load balancers and the ideal cluster, and its user-space plug-in path
# works. Real namespaces, real Linux TCP stacks, nginx back ends, curl and wrk clients.
#
# For kernel-nat, kernel-fullnat, kernel-dr and ideal, each on a fresh cluster:
#   1. a curl loop (each request its own connection): every request succeeds, and the back ends
#      share the connections evenly: exactly (+-1 of 60) for the NAT peers' round robin, within
#      +-50 % of the fair share for the hashed modes (kernel-dr's jhash, ideal's multipath hash;
#      150 connections, so the bound is more than 4 standard deviations wide);
#   2. a short wrk run (2 s, new connection per request): no socket error, no non-2xx answer;
#   3. a long download (20 MiB at a capped 2 MiB/s, so it lasts 10 s) survives while another
#      back end is marked down (`cluster.sh mark`) and killed (`cluster.sh backend stop`), a curl
#      loop runs (all succeed, none on the dead one), and it is restored and gets connections
#      again; the download must still be running after all that, and arrives complete and intact;
#   4. `cluster.sh down` leaves no namespace with the test's prefix.
# Then the user-space plug-in path: modes dr, nat and tun with tests/e2e/fixtures/
# toy_dispatcher.py (a stateless AF_PACKET toy, not clusternet's dispatcher) and, for tun,
# tun_decap.py on every back end: with --ingress-drop every request of a curl loop succeeds, every
# back end serves, and the dispatcher namespace's own IP layer takes none of the packets up (Ip
# InAddrErrors and Icmp OutDestUnreachs unchanged); for dr, without the drop it does. And dpr: the
# router spreads the VIP over the back ends, each running its hook.
# Last, a 1-second smoke run of scripts/e2e-bench.sh (it reports; it is not a timed test).
# Needs root and network namespaces; without them it prints a SKIPPED line and exits 77.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
cn_me=cluster_harness
# shellcheck source=../../scripts/lib/common.sh
source "$root/scripts/lib/common.sh"

skip() { printf '\n*** SKIPPED: %s ***\n\n' "$*"; exit 77; }
fail() { printf 'cluster_harness: FAILED: %s\n' "$*" >&2; exit 1; }
say() { printf 'cluster_harness: [%3ds] %s\n' "$SECONDS" "$*"; }

[[ $(id -u) -eq 0 ]] || skip "needs root and network namespaces (not root)"
probe=cnh-probe-$$
timeout 10 ip netns add "$probe" 2>/dev/null || skip "needs root and network namespaces (ip netns add failed)"
timeout 10 ip netns del "$probe"
for tool in nginx curl wrk nft ethtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install.sh installs it)"
done

prefix=${CN_TEST_PREFIX:-cnh-t$$}
# shellcheck source=lib/cluster_test.sh
source "$root/tests/e2e/lib/cluster_test.sh"
tmp=$ct_tmp
cleanup() {
    local rc=$?
    ct_cleanup
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cluster=(cluster)
up() { cluster_up "$@"; }
down() { cluster_down; }

# dsp_kernel_saw: packets the dispatcher namespace's own IP layer took up and could not deliver
# or forward (Ip InAddrErrors: with ip_forward=0 this kernel drops and counts them) plus the ICMP
# destination unreachables it sent (Icmp OutDestUnreachs).
dsp_kernel_saw() {
    ip netns exec "$CN_NS_DSP" awk '
        /^(Ip|Icmp):/ { if (!($1 in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) col[$1 $i] = i; next }
                        for (k in col) if (index(k, $1) == 1) val[k] = $col[k] }
        END { print val["Ip:InAddrErrors"] + val["Icmp:OutDestUnreachs"] }' /proc/net/snmp
}

check_mode() {
    local mode=$1 n lo hi i
    say "--- $mode"
    up "$mode"

    # 1. curl loop and the spread
    if [[ $mode == kernel-nat || $mode == kernel-fullnat ]]; then n=60; else n=150; fi
    curl_loop "$n"
    ((ok == n)) || fail "$mode: $ok of $n requests succeeded ($(shares_text))"
    if ((n == 60)); then
        lo=$((n / CN_BACKENDS - 1)) hi=$((n / CN_BACKENDS + 1))
    else
        lo=$((n / CN_BACKENDS / 2)) hi=$((n / CN_BACKENDS * 3 / 2))
    fi
    for ((i = 1; i <= CN_BACKENDS; i++)); do
        ((share[b$i] >= lo && share[b$i] <= hi)) ||
            fail "$mode: b$i got ${share[b$i]} of $n connections, outside [$lo, $hi] ($(shares_text))"
    done
    say "$mode: $n/$n requests ok, spread $(shares_text) (bounds [$lo, $hi])"

    # 2. a short wrk run
    timeout 30 ip netns exec "$CN_NS_CLI" wrk -t1 -c8 -d2s -H 'Connection: close' \
        "http://$CN_VIP:$CN_PORT/" >"$tmp/wrk.out" 2>&1 || { cat "$tmp/wrk.out"; fail "$mode: wrk failed"; }
    ! grep -qE 'Socket errors|Non-2xx' "$tmp/wrk.out" || { cat "$tmp/wrk.out"; fail "$mode: wrk saw errors"; }
    local reqs
    reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
    ((${reqs:-0} > 0)) || { cat "$tmp/wrk.out"; fail "$mode: wrk completed no request"; }
    say "$mode: wrk 2 s: $reqs requests, no error"

    # 3. a long download while a back end goes down and comes back
    rm -f "$tmp/dl.hdr" "$tmp/dl.bin"
    timeout 60 ip netns exec "$CN_NS_CLI" curl -s --max-time 50 --limit-rate 2M -D "$tmp/dl.hdr" \
        -o "$tmp/dl.bin" "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" &
    dl_pid=$!
    cn_poll 10 "the download's headers" grep -q '^X-Backend: b' "$tmp/dl.hdr" || fail "$mode: the download did not start"
    local serving victim
    serving=$(awk -F': ' '/^X-Backend:/ {sub(/\r$/, "", $2); print $2}' "$tmp/dl.hdr")
    serving=${serving#b}
    victim=$((serving % CN_BACKENDS + 1))
    "${cluster[@]}" mark "$victim" down 2>/dev/null || fail "$mode: mark $victim down failed"
    "${cluster[@]}" backend stop "$victim" 2>/dev/null || fail "$mode: backend stop $victim failed"
    ! ip netns exec "$prefix-b$victim" timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/80' 2>/dev/null ||
        fail "$mode: b$victim still listens after backend stop"
    curl_loop 30
    ((ok == 30 && share[b$victim] == 0)) ||
        fail "$mode: with b$victim down: $ok/30 ok, shares $(shares_text)"
    say "$mode: download on b$serving; b$victim marked down and killed: 30/30 ok, $(shares_text)"
    "${cluster[@]}" backend start "$victim" 2>/dev/null || fail "$mode: backend start $victim failed"
    "${cluster[@]}" mark "$victim" up 2>/dev/null || fail "$mode: mark $victim up failed"
    curl_loop 60
    ((ok == 60 && share[b$victim] > 0)) ||
        fail "$mode: after restoring b$victim: $ok/60 ok, shares $(shares_text)"
    say "$mode: b$victim restored: 60/60 ok, $(shares_text)"
    cn_alive "$dl_pid" || fail "$mode: the download ended before the back end was restored (check the rate cap)"
    wait "$dl_pid"
    local rc=$?
    dl_pid=""
    ((rc == 0)) || fail "$mode: the long download failed (curl status $rc)"
    cmp -s "$tmp/dl.bin" "$CN_BIG_FILE" || fail "$mode: the downloaded file differs from the back ends' ($(stat -c %s "$tmp/dl.bin") bytes)"
    say "$mode: the long download arrived intact ($CN_BIG_BYTES bytes)"

    down
    say "$mode: torn down, no namespace with prefix $prefix left"
}

start=$SECONDS
for mode in kernel-nat kernel-fullnat kernel-dr ideal; do check_mode "$mode"; done

# --- the user-space plug-in path --------------------------------------------------------------
fixtures=$root/tests/e2e/fixtures
for mode in dr nat tun; do
    say "--- $mode with a user-space AF_PACKET dispatcher (test fixture toy_dispatcher.py)"
    extra=()
    [[ $mode == tun ]] && extra=(--backend-cmd "python3 $fixtures/tun_decap.py")
    up "$mode" --ingress-drop --dispatcher "python3 $fixtures/toy_dispatcher.py $mode" "${extra[@]}"
    before=$(dsp_kernel_saw)
    curl_loop 30
    ((ok == 30)) || fail "$mode: $ok of 30 requests through the AF_PACKET dispatcher succeeded ($(shares_text))"
    for ((i = 1; i <= CN_BACKENDS; i++)); do ((share[b$i] > 0)) || fail "$mode: b$i got nothing ($(shares_text))"; done
    (($(dsp_kernel_saw) == before)) || fail "$mode: the dispatcher's kernel took up packets despite --ingress-drop"
    say "$mode: 30/30 ok through the AF_PACKET dispatcher ($(shares_text)); its kernel took up none of them"
    if [[ $mode == dr ]]; then
        ip netns exec "$CN_NS_DSP" nft delete table netdev cn_guard || fail "could not remove the guard"
        ip netns exec "$CN_NS_CLI" curl -s -o /dev/null --max-time 2 "http://$CN_VIP:$CN_PORT/"
        (($(dsp_kernel_saw) > before)) ||
            fail "dr: without the ingress drop the dispatcher's kernel did not see the VIP's packets (the guard would be pointless)"
        say "dr: without the ingress drop the dispatcher's kernel takes them up too ($(($(dsp_kernel_saw) - before)) InAddrErrors/ICMP)"
    fi
    down
done
say "--- dpr: the router spreads over the back ends, each with tun0 and a hook (tun_decap.py)"
up dpr --backend-cmd "python3 $fixtures/tun_decap.py"
curl_loop 30
((ok == 30)) || fail "dpr: $ok of 30 requests succeeded ($(shares_text))"
for ((i = 1; i <= CN_BACKENDS; i++)); do
    [[ -f $CN_STATE_DIR/pids/hook-b$i.pid ]] && cn_alive "$(<"$CN_STATE_DIR/pids/hook-b$i.pid")" ||
        fail "dpr: the hook of b$i is not running"
done
say "dpr: 30/30 ok ($(shares_text)); a hook runs on every back end"
down

# --- the benchmark script still runs ----------------------------------------------------------
say "--- e2e-bench.sh smoke run (1 s, ideal)"
timeout 90 bash "$root/scripts/e2e-bench.sh" --prefix "$prefix" --duration 1 --curl 10 ideal >"$tmp/bench.out" 2>&1 ||
    { cat "$tmp/bench.out"; fail "e2e-bench.sh failed"; }
grep -qE '^ideal +[0-9]+ ' "$tmp/bench.out" || { cat "$tmp/bench.out"; fail "e2e-bench.sh printed no figures"; }
grep -q 'ideal           10/10 ok' "$tmp/bench.out" || { cat "$tmp/bench.out"; fail "e2e-bench.sh's curl loop failed"; }
[[ -z $(left_namespaces) ]] || fail "namespaces left after e2e-bench.sh: $(left_namespaces | tr '\n' ' ')"

say "PASSED in $((SECONDS - start)) s"
