#!/usr/bin/env bash
# scripts/bench.sh -- run the Google Benchmark binaries the way docs/performance.md quotes them.
#
# Usage: scripts/bench.sh [FILTER]
#   Builds build/gcc if needed, then runs every benchmark binary (or those whose name matches
#   FILTER, e.g. `checksum`) with 5 repetitions of at least 0.5 s and prints the medians.
#   Benchmarks are compiled -O3 whatever the build type. Expect several percent of noise
#   between runs on a shared 2-core machine; compare within one run, as the peers share it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
filter=${1:-}
if [[ ! -f build/gcc/CMakeCache.txt ]]; then
    cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build/gcc -j2 >/dev/null
grep -m1 'model name' /proc/cpuinfo || true
for b in build/gcc/benchmarks/*_benchmark; do
    [[ -x $b ]] || continue
    [[ -z $filter || $(basename "$b") == *"$filter"* ]] || continue
    echo "== $(basename "$b")"
    "$b" --benchmark_min_time=0.5 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true 2>/dev/null |
        grep '_median' | sed 's/_median//'
done
