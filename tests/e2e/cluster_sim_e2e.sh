#!/usr/bin/env bash
# cn-cluster-sim end to end: --help, a bad argument, each experiment at a small scale writing its
# CSV (and PNG when gnuplot is installed), the DPR ordering, and two runs with one seed giving
# the same CSV byte for byte. Needs no privileges and no network.
set -euo pipefail
e2e_name=cluster_sim_e2e
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
sim=$(e2e_find_example cn-cluster-sim)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$sim" --help | grep -q '^usage: cn-cluster-sim'
if "$sim" dpr --no-such-option >/dev/null 2>"$out/err"; then fail "a bad option was accepted"; fi
grep -q 'unknown argument --no-such-option' "$out/err"

timeout 60 "$sim" dpr --scale 0.2 --duration 60 --out "$out/a" | tee "$out/dpr.txt"
grep -q 'ordering none > random > load-based (mean delay and imbalance): holds' "$out/dpr.txt"
timeout 60 "$sim" dpr --scale 0.2 --duration 60 --out "$out/b" >/dev/null
cmp "$out/a/dpr.csv" "$out/b/dpr.csv"
cmp "$out/a/dpr_series.csv" "$out/b/dpr_series.csv"
[[ $(wc -l <"$out/a/dpr.csv") -eq 4 ]]

timeout 60 "$sim" lccp --max-nodes 3 --duration 10 --out "$out/a"
[[ $(wc -l <"$out/a/lccp.csv") -eq 4 ]]
timeout 120 "$sim" large --servers 100 --requests 20000 --policies rr,lc,maglev,dpr --out "$out/a"
[[ $(wc -l <"$out/a/large.csv") -eq 5 ]]

if command -v gnuplot >/dev/null 2>&1; then
    for f in dpr dpr_series lccp large; do
        [[ -s $out/a/$f.png ]] || fail "$f.png missing"
    done
else
    echo "cluster_sim_e2e: gnuplot not installed, PNGs not checked"
fi
echo "cluster_sim_e2e: ok"
