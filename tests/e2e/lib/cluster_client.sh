# tests/e2e/lib/cluster_client.sh -- driving a scripts/cluster.sh cluster from an e2e test (the
# tunnel and DPR tests): tests/e2e/lib/cluster_test.sh (cluster, cluster_up, cluster_down,
# curl_loop, shares_text, wrk_run) working in the caller's `tmp`, plus:
#   cluster_left           namespaces with the prefix
#   wrk_check SECONDS      a wrk run (new connection per request): fails on any socket error or
#                          non-2xx answer; sets `wrk_requests`
#   download_check         the 20 MiB file arrives byte for byte
# Source after tests/e2e/lib/common.sh, with `prefix`, `tmp` and `root` set. Not a test itself.

ct_tmp=$tmp
# shellcheck source=cluster_test.sh
source "$root/tests/e2e/lib/cluster_test.sh"

cluster_left() { left_namespaces; }
wrk_check() { wrk_run "${e2e_name:-e2e}" -c8 -d"$1"s; }

download_check() {
    rm -f "$tmp/dl.bin"
    timeout 120 ip netns exec "$CN_NS_CLI" curl -s -f --max-time 100 -o "$tmp/dl.bin" \
        "http://$CN_VIP:$CN_PORT$CN_BIG_PATH" || fail "the $CN_BIG_BYTES-byte download failed"
    cmp -s "$tmp/dl.bin" "$CN_BIG_FILE" || fail "the downloaded file differs ($(stat -c %s "$tmp/dl.bin") of $CN_BIG_BYTES bytes)"
}
