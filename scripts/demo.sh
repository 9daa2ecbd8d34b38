#!/usr/bin/env bash
# scripts/demo.sh -- a cluster that looks like one server, carrying real HTTP traffic.
#
# Usage: scripts/demo.sh [--duration S] [--rounds R] [--quick]
#   --duration S  seconds per wrk run (default 3)
#   --rounds R    runs of every dispatcher, interleaved; medians are printed (default 1)
#   --quick       only clusternet's own dispatchers (no kernel peers, no ideal cluster)
#
#   1. Builds clusternet's reference dispatchers (cn-lsmac, cn-lsnat) in build/gcc when they are
#      not built: cmake -S . -B build/gcc -G Ninja, then cmake --build for those targets.
#   2. For each way to build the cluster, a fresh cluster of network namespaces (scripts/
#      cluster.sh: a client, a router, a dispatcher, 3 nginx back ends), then real load through
#      the cluster address (scripts/e2e-bench.sh): a curl loop where every request must succeed,
#      wrk with a new connection per request (connections per second) and keep-alive (requests
#      per second). The dispatchers, in turn: the ideal cluster (no dispatcher), clusternet's
#      direct routing (LSMAC, cn-lsmac) beside the kernel's (nftables netdev fwd), clusternet's NAT
#      (LSNAT, cn-lsnat) beside the kernel's (nftables dnat), full NAT beside the kernel's.
#   3. Prints per dispatcher: connections and requests per second, latency, each back end's
#      share, CPU, the ratios against ideal and against the kernel, and clusternet's final
#      counters: every verdict, drops by reason, flows per back end.
# Needs root (network namespaces); without it, says so and runs the packet demo instead
# (scripts/packet-demo.sh: the packet tools over a capture of real Linux traffic).
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
duration=3 rounds=1 quick=0
while (($#)); do
    case $1 in
        --duration) duration=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'demo.sh: unknown argument: %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ $(id -u) -ne 0 ]] || ! ip netns list >/dev/null 2>&1; then
    printf '\n*** demo.sh: the cluster demo needs root and network namespaces; running the packet demo instead ***\n\n'
    exec bash scripts/packet-demo.sh
fi

build=${CLUSTERNET_BUILD_DIR:-build/gcc}
if [[ ! -x $build/examples/cn-lsmac || ! -x $build/examples/cn-lsnat ]]; then
    printf 'demo.sh: building cn-lsmac and cn-lsnat in %s\n' "$build"
    if [[ ! -f $build/CMakeCache.txt ]]; then
        cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLUSTERNET_BUILD_EXAMPLES=ON \
            -DCLUSTERNET_BUILD_TESTS=OFF -DCLUSTERNET_BUILD_BENCHMARKS=OFF >/dev/null
    fi
    cmake --build "$build" -j "${CLUSTERNET_JOBS:-2}" --target cn-lsmac cn-lsnat
fi
export CLUSTERNET_EXAMPLES_DIR=$root/$build/examples
d="$root/scripts/cn-dispatcher.sh"
specs=("dr=$d dr" "nat=$d nat" "fullnat=$d fullnat")
((quick)) || specs=(ideal kernel-dr "dr=$d dr" kernel-nat "nat=$d nat" kernel-fullnat "fullnat=$d fullnat")
exec bash scripts/e2e-bench.sh --prefix "${CN_CLUSTER_PREFIX:-cndemo}" --duration "$duration" --rounds "$rounds" "${specs[@]}"
