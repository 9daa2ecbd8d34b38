#!/usr/bin/env bash
# scripts/cn-dispatcher.sh MODE [--ipv6] [--set key=value]... -- runs clusternet's reference dispatcher for
# MODE (dr, tun: cn-lsmac; nat, fullnat: cn-lsnat) inside a cluster made by scripts/cluster.sh,
# its configuration taken from the cluster's CN_* variables (the harness puts them in the
# environment of `--dispatcher CMD`). Extra --set arguments are passed on (they win).
#
#   scripts/cluster.sh up nat --ingress-drop --dispatcher 'scripts/cn-dispatcher.sh nat'
#
# --ipv6 (a cluster made with --ipv6): the IPv6 dispatcher instead, for
# CN_VIP6 and the back ends' CN_BACKEND_IPS6, their MACs found by neighbour discovery;
# run it beside the IPv4 one (`cluster.sh exec dsp scripts/cn-dispatcher.sh nat --ipv6 &`).
#
# The binaries are looked up in $CLUSTERNET_EXAMPLES_DIR, else build/gcc/examples.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:?usage: cn-dispatcher.sh dr|tun|nat|fullnat [--set key=value]...}
shift
v6=0
if [[ ${1:-} == --ipv6 ]]; then v6=1; shift; fi
dir=${CLUSTERNET_EXAMPLES_DIR:-$root/build/gcc/examples}
case $mode in
    dr|tun) prog=$dir/cn-lsmac ;;
    nat|fullnat) prog=$dir/cn-lsnat ;;
    *) echo "cn-dispatcher.sh: unknown mode '$mode' (dr, tun, nat, fullnat)" >&2; exit 2 ;;
esac
[[ -x $prog ]] || { echo "cn-dispatcher.sh: $prog is not built (bash scripts/test.sh --quick builds it)" >&2; exit 1; }
: "${CN_VIP:?not inside a cluster.sh cluster (CN_VIP unset)}"
if ((v6)); then
    [[ ${CN_IPV6:-0} == 1 ]] || { echo "cn-dispatcher.sh: --ipv6 wants a cluster made with --ipv6" >&2; exit 2; }
    args=(--set interface=lan0 --set front_interface=front0 --set "mode=$mode" --set "vip=$CN_VIP6"
          --set "port=${CN_PORT:-80}" --set "gateway_mac=$CN_ROUTER_FRONT_MAC")
    [[ $mode == fullnat ]] && args+=(--set "local_address=$CN_FULLNAT_IP6")
    [[ $mode == tun ]] && args+=(--set "local_address=$CN_DSP_LAN_IP6")
    for ip in $CN_BACKEND_IPS6; do args+=(--set "backend=$ip"); done  # MACs by neighbour discovery
    exec "$prog" "${args[@]}" "$@"
fi
args=(--set interface=lan0 --set front_interface=front0 --set "mode=$mode" --set "vip=$CN_VIP"
      --set "port=${CN_PORT:-80}" --set "gateway_mac=$CN_ROUTER_FRONT_MAC")
case $mode in
    fullnat) args+=(--set "local_address=$CN_FULLNAT_IP") ;;
    tun) args+=(--set "local_address=$CN_DSP_LAN_IP") ;;
esac
for ip in $CN_BACKEND_IPS; do args+=(--set "backend=$ip"); done
exec "$prog" "${args[@]}" "$@"
