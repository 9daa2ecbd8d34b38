# tests/e2e/lib/cluster_client.sh -- driving a scripts/cluster.sh cluster from an e2e test (the
# tunnel and DPR tests). Source after tests/e2e/lib/common.sh, with `prefix`, `tmp` and `root`
# set. Defines:
#   cluster ARGS...        scripts/cluster.sh --prefix $prefix ARGS... (60 s at most)
#   cluster_up MODE OPTS   a fresh cluster; its CN_* variables into this shell
#   cluster_down           removes it and checks that no namespace with the prefix is left
#   curl_loop N [NODE]     N requests from the client (each its own connection); sets `ok` and
#                          share[bI] (who answered, by the page's name)
#   shares_text            "b1=N b2=N ..."
#   wrk_check SECONDS      a wrk run (new connection per request): fails on any socket error or
#                          non-2xx answer; sets `wrk_requests`
#   download_check         the 20 MiB file arrives byte for byte
# Not a test itself (ctest runs tests/e2e/*.sh only).

cluster() { timeout 60 bash "$root/scripts/cluster.sh" --prefix "$prefix" "$@"; }

cluster_up() {
    cluster up "$@" 2>"$tmp/up.err" || { cat "$tmp/up.err" >&2; fail "cluster.sh up $* failed"; }
    cluster info --env >"$tmp/info.env" || fail "cluster.sh info failed"
    # shellcheck disable=SC1091
    source "$tmp/info.env"
}

cluster_left() { ip netns list | awk '{print $1}' | grep -E "^${prefix}-" || true; }
cluster_down() {
    cluster down >/dev/null 2>&1 || fail "cluster.sh down failed"
    [[ -z $(cluster_left) ]] || fail "namespaces left after down: $(cluster_left | tr '\n' ' ')"
}

declare -A share
curl_loop() {
    local n=$1 urls=() i line last=""
    for ((i = 0; i < n; i++)); do urls+=("http://$CN_VIP:$CN_PORT/"); done
    timeout $((n + 30)) ip netns exec "$CN_NS_CLI" curl -s --max-time 5 -H 'Connection: close' \
        -w '%{http_code}\n' "${urls[@]}" >"$tmp/curl.out" 2>/dev/null
    ok=0
    share=()
    for ((i = 1; i <= CN_BACKENDS; i++)); do share[b$i]=0; done
    while read -r line; do
        if [[ $line =~ ^b[0-9]+$ ]]; then last=$line
        elif [[ $line == 200 && -n $last ]]; then ok=$((ok + 1)); share[$last]=$((share[$last] + 1)); last=""
        else last=""; fi
    done <"$tmp/curl.out"
}
shares_text() { local i s=""; for ((i = 1; i <= CN_BACKENDS; i++)); do s+=" b$i=${share[b$i]}"; done; echo "${s# }"; }

wrk_check() {
    timeout 60 ip netns exec "$CN_NS_CLI" wrk -t1 -c8 -d"$1"s -H 'Connection: close' \
        "http://$CN_VIP:$CN_PORT/" >"$tmp/wrk.out" 2>&1 || { cat "$tmp/wrk.out"; fail "wrk failed"; }
    ! grep -qE 'Socket errors|Non-2xx' "$tmp/wrk.out" || { cat "$tmp/wrk.out"; fail "wrk saw errors"; }
    wrk_requests=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
    ((${wrk_requests:-0} > 0)) || { cat "$tmp/wrk.out"; fail "wrk completed no request"; }
}

download_check() {
    rm -f "$tmp/dl.bin"
    timeout 120 ip netns exec "$CN_NS_CLI" curl -s -f --max-time 100 -o "$tmp/dl.bin" \
        "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" || fail "the $CN_BIG_BYTES-byte download failed"
    cmp -s "$tmp/dl.bin" "$CN_BIG_FILE" || fail "the downloaded file differs ($(stat -c %s "$tmp/dl.bin") of $CN_BIG_BYTES bytes)"
}
