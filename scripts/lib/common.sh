# scripts/lib/common.sh -- small shell helpers shared by the cluster harness scripts
# (scripts/cluster.sh, scripts/e2e-bench.sh, tests/e2e/cluster_harness.sh). Source it; it
# defines functions only and changes no shell option.
#
#   cn_poll SECONDS WHAT CMD...   run CMD every 50 ms until it succeeds; returns 1 (after a
#                                 message naming WHAT) when SECONDS have passed.
#   cn_stop_pid PID               SIGTERM, poll up to 5 s for the exit, then SIGKILL.
#   cn_alive PID                  whether the process is still there (and not a zombie).
#   cn_tcp_open HOST PORT         one TCP connect (bash /dev/tcp), 1 s at most; run it inside a
#                                 namespace with `ip netns exec NS bash -c ...` or cn_in_ns.

cn_poll() {
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 20; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    printf '%s: timed out after %ss waiting for %s\n' "${cn_me:-harness}" "$limit" "$what" >&2
    return 1
}

# A process whose parent has gone (cluster.sh up returned) is reaped by PID 1, if at all: a
# zombie answers kill -0, so the state field of /proc/PID/stat is read too.
cn_alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

cn_stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        cn_alive "$pid" || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cn_tcp_open() {
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2"
}
