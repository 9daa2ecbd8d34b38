#!/usr/bin/env bash
# scripts/cn-dpr-node.sh [--set key=value]... -- runs cn-dpr-node on a back end of a
# `scripts/cluster.sh up dpr` cluster, its configuration taken from the CN_* variables the harness
# gives --backend-cmd (CN_VIP, CN_PORT, CN_BACKEND_IP, CN_BACKEND_INDEX, CN_BACKEND_IPS): node id =
# the back end's index, every other back end a peer. First it installs, in this namespace, the
# netdev-ingress drop of the VIP's packets on lan0 (table netdev cn_dpr): the node reads them
# from its AF_PACKET tap and hands the local ones to the kernel through tun0 itself. Extra --set
# arguments are passed on (they win), e.g. --set max_load=4.
#
#   scripts/cluster.sh up dpr --backend-cmd 'scripts/cn-dpr-node.sh --set max_load=8'
#
# The binary is looked up in $CLUSTERNET_EXAMPLES_DIR, else build/gcc/examples.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prog=${CLUSTERNET_EXAMPLES_DIR:-$root/build/gcc/examples}/cn-dpr-node
[[ -x $prog ]] || { echo "cn-dpr-node.sh: $prog is not built (bash scripts/test.sh --quick builds it)" >&2; exit 1; }
: "${CN_VIP:?not inside a cluster.sh cluster (CN_VIP unset)}"
: "${CN_BACKEND_INDEX:?not run by cluster.sh --backend-cmd (CN_BACKEND_INDEX unset)}"
nft -f - <<NFT
table netdev cn_dpr {
  chain in { type filter hook ingress device "lan0" priority -500; policy accept;
    ip daddr $CN_VIP tcp dport ${CN_PORT:-80} drop
  }
}
NFT
args=(--set interface=lan0 --set "vip=$CN_VIP" --set "port=${CN_PORT:-80}" --set "local_address=$CN_BACKEND_IP"
      --set "node_id=$CN_BACKEND_INDEX")
i=0
for ip in $CN_BACKEND_IPS; do
    i=$((i + 1))
    [[ $i == "$CN_BACKEND_INDEX" ]] || args+=(--set "peer=$ip node=$i")
done
exec "$prog" "${args[@]}" "$@"
