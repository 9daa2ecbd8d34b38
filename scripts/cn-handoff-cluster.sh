#!/usr/bin/env bash
# scripts/cn-handoff-cluster.sh front|node -- the programs of a TCP-handoff cluster (the LCCP
# paper's content-aware cluster, seeds/000), run inside a direct-routing cluster made by
# scripts/cluster.sh, their configuration taken from its CN_* variables:
#
#   scripts/cluster.sh up dr --ingress-drop --nginx-port 8080 \
#       --backend-cmd 'scripts/cn-handoff-cluster.sh node' \
#       --dispatcher 'scripts/cn-handoff-cluster.sh front'
#
#   front   in the dispatcher namespace: the layer-4 switch (cn-lsmac, direct routing, round
#           robin: the paper's front distribution of SYNs; it takes forward_install on its LAN
#           address, `lccp = ...`) and the dispatcher (cn-lccp-dispatcher, LARD by URL path) on
#           the same address; stops both on SIGTERM/SIGINT
#   node    in a back end: cn-handoff-node, the distributor and forwarder, on the VIP's port;
#           it passes each connection to the node's nginx on 127.0.0.1:$CN_NGINX_PORT, directly
#           or after handing it off to the node the dispatcher chose
#
# Environment: CN_HANDOFF_SWITCH (1, the default: nodes tell the switch of each handoff and it
# re-points the session; 0: only the old node's forwarding entry carries the client's later
# packets), CN_HANDOFF_POLICY (the dispatcher's policy, default lard), CN_HANDOFF_KEY (the
# cluster key, 32 hex digits; default the demo key), CN_HANDOFF_NODE_ARGS and
# CN_HANDOFF_DISPATCHER_ARGS (more options for each program), CLUSTERNET_EXAMPLES_DIR (where
# the binaries are; default build/gcc/examples). docs/lccp.md describes the cluster.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
role=${1:?usage: cn-handoff-cluster.sh front|node}
dir=${CLUSTERNET_EXAMPLES_DIR:-$root/build/gcc/examples}
: "${CN_VIP:?not inside a cluster.sh cluster (CN_VIP unset)}"
key=${CN_HANDOFF_KEY:-000102030405060708090a0b0c0d0e0f}
need() { [[ -x $dir/$1 ]] || { echo "cn-handoff-cluster.sh: $dir/$1 is not built" >&2; exit 1; }; }

case $role in
    front)
        need cn-lccp-dispatcher
        # shellcheck disable=SC2086
        "$dir/cn-lccp-dispatcher" --address "$CN_DSP_LAN_IP" --nodes "${CN_BACKEND_IPS// /,}" \
            --policy "${CN_HANDOFF_POLICY:-lard}" --key "$key" ${CN_HANDOFF_DISPATCHER_ARGS:-} &
        lccp=$!
        # Health checks would probe the back ends' own address on the VIP's port, where nothing
        # listens (cn-handoff-node owns the VIP's port): off.
        sw=()
        [[ ${CN_HANDOFF_SWITCH:-1} == 1 ]] && sw=(--set "lccp=$CN_DSP_LAN_IP" --set "lccp_key=$key")
        bash "$root/scripts/cn-dispatcher.sh" dr --set health=off "${sw[@]}" &
        switch=$!
        trap 'kill -TERM $lccp $switch 2>/dev/null; wait $lccp $switch; exit 0' TERM INT
        wait -n $lccp $switch
        echo "cn-handoff-cluster.sh: a front program ended; stopping the other" >&2
        kill -TERM $lccp $switch 2>/dev/null || true
        wait
        exit 1 ;;
    node)
        need cn-handoff-node
        : "${CN_BACKEND_IP:?not in a back end (CN_BACKEND_IP unset)}"
        sw=()
        [[ ${CN_HANDOFF_SWITCH:-1} == 1 ]] && sw=(--switch "$CN_DSP_LAN_IP")
        # shellcheck disable=SC2086
        exec "$dir/cn-handoff-node" "${sw[@]}" --listen "$CN_VIP:$CN_PORT" --address "$CN_BACKEND_IP" \
            --dispatcher "$CN_DSP_LAN_IP" --peers "${CN_BACKEND_IPS// /,}" \
            --upstream "127.0.0.1:${CN_NGINX_PORT:?no CN_NGINX_PORT}" --device "${CN_BACKEND_DEV:-lan0}" \
            --key "$key" ${CN_HANDOFF_NODE_ARGS:-} ;;
    *) echo "cn-handoff-cluster.sh: unknown role '$role' (front, node)" >&2; exit 2 ;;
esac
