# tests/e2e/lib/cluster_test.sh -- what the e2e tests that run a cluster (scripts/cluster.sh)
# share. Source it after scripts/lib/common.sh, with `prefix` set to the cluster's prefix and a
# fail() defined; it defines:
#   cluster ARGS...      scripts/cluster.sh --prefix $prefix ARGS... (60 s at most)
#   cluster_up MODE ...  a fresh cluster; its CN_* variables into this shell ($ct_tmp/info.env)
#   cluster_down         tears it down; fails if a namespace with the prefix is left
#   left_namespaces      namespaces with the prefix
#   curl_loop N [HOST]   N requests from the client to HOST (default the VIP; "[ADDR]" for
#                        IPv6), each its own connection: sets ok and share[bI] (the back end
#                        named by each answer)
#   shares_text          "b1=N b2=N ..."
#   wrk_run MODE ARGS... a short wrk run (new connection per request); fails on any error
#   ct_cleanup           (for the caller's EXIT trap) stops the download, tears down, removes tmp
# Not a test itself (ctest runs tests/e2e/*.sh only).

ct_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
ct_tmp=${ct_tmp:-$(mktemp -d "${TMPDIR:-/tmp}/cn-e2e-cluster.XXXXXX")}  # a caller may give its own
dl_pid=""

cluster() { timeout 60 bash "$ct_root/scripts/cluster.sh" --prefix "$prefix" "$@"; }

ct_cleanup() {
    set +e
    [[ -n $dl_pid ]] && cn_stop_pid "$dl_pid"
    cluster down >/dev/null 2>&1
    rm -rf "$ct_tmp"
}

left_namespaces() { ip netns list | awk '{print $1}' | grep -E "^${prefix}-" || true; }

cluster_up() {
    cluster up "$@" 2>"$ct_tmp/up.err" || { cat "$ct_tmp/up.err" >&2; fail "cluster.sh up $* failed"; }
    cluster info --env >"$ct_tmp/info.env" || fail "cluster.sh info failed"
    # shellcheck disable=SC1091
    source "$ct_tmp/info.env"
}

cluster_down() {
    cluster down >/dev/null 2>&1 || fail "cluster.sh down failed"
    [[ -z $(left_namespaces) ]] || fail "namespaces left after down: $(left_namespaces | tr '\n' ' ')"
}

declare -A share
curl_loop() {
    local n=$1 host=${2:-$CN_VIP} urls=() i
    for ((i = 0; i < n; i++)); do urls+=("http://$host:$CN_PORT/"); done
    timeout $((n + 30)) ip netns exec "$CN_NS_CLI" curl -s --max-time 5 -H 'Connection: close' \
        -w '%{http_code}\n' "${urls[@]}" >"$ct_tmp/curl.out" 2>/dev/null
    ok=0
    share=()
    for ((i = 1; i <= CN_BACKENDS; i++)); do share[b$i]=0; done
    local line last=""
    while read -r line; do
        if [[ $line =~ ^b[0-9]+$ ]]; then last=$line
        elif [[ $line == 200 && -n $last ]]; then ok=$((ok + 1)); share[$last]=$((share[$last] + 1)); last=""
        else last=""; fi
    done <"$ct_tmp/curl.out"
}

# metric_at PORT 'name{labels}': the value in the metrics page a dispatcher serves on
# 127.0.0.1:PORT of the dispatcher's namespace (0 when the metric is absent). The page is fetched
# up to 3 times (5 s each): a busy dispatcher may answer late, and a page that could not be
# fetched must not read as "0". When it cannot be fetched at all: -1, and the reason on stderr.
metric_at() {
    local page try
    for try in 1 2 3; do
        if page=$(ip netns exec "$CN_NS_DSP" curl -sf --max-time 5 "http://127.0.0.1:$1/metrics"); then
            awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' <<<"$page"
            return 0
        fi
    done
    echo "metric_at: the metrics page on 127.0.0.1:$1 in $CN_NS_DSP did not answer 3 times (wanted $2)" >&2
    echo -1
}

shares_text() { local i s=""; for ((i = 1; i <= CN_BACKENDS; i++)); do s+=" b$i=${share[b$i]}"; done; echo "${s# }"; }

wrk_run() {
    local mode=$1
    shift
    timeout 30 ip netns exec "$CN_NS_CLI" wrk -t1 "$@" -H 'Connection: close' \
        "http://$CN_VIP:$CN_PORT/" >"$ct_tmp/wrk.out" 2>&1 || { cat "$ct_tmp/wrk.out"; fail "$mode: wrk failed"; }
    ! grep -qE 'Socket errors|Non-2xx' "$ct_tmp/wrk.out" || { cat "$ct_tmp/wrk.out"; fail "$mode: wrk saw errors"; }
    wrk_requests=$(awk '/requests in/ {print $1}' "$ct_tmp/wrk.out")
    ((${wrk_requests:-0} > 0)) || { cat "$ct_tmp/wrk.out"; fail "$mode: wrk completed no request"; }
}
