# tests/e2e/lib/common.sh -- what every namespace-based e2e script needs first. Source it after
# setting `e2e_name` (used in messages) and `e2e_prefix` (the prefix of every namespace the script
# makes, the probe's too); it defines:
#   skip <why>                 print a loud SKIPPED line and exit 77
#   fail <why>                 print "<e2e_name>: FAILED: <why>", run e2e_on_fail if defined, exit 1
#   e2e_require_netns          skip unless root and `ip netns add` works
#   e2e_find_example <name>    print the path of example program <name> in the build (skips when
#                              the build has no examples, fails when it is missing)
# Not a test itself (ctest runs tests/e2e/*.sh only).

skip() {
    # stderr, so that the line shows even from inside $(...)
    printf '\n*** SKIPPED: %s ***\n\n' "$*" >&2
    exit 77
}

fail() {
    printf '%s: FAILED: %s\n' "${e2e_name:-e2e}" "$*" >&2
    if declare -F e2e_on_fail >/dev/null; then e2e_on_fail; fi
    exit 1
}

e2e_require_netns() {
    if [[ $(id -u) -ne 0 ]]; then
        skip "needs root and network namespaces (not root)"
    fi
    local probe=${e2e_prefix:-cn-e2e}-probe-$$
    if ! timeout 10 ip netns add "$probe" 2>/dev/null; then
        skip "needs root and network namespaces (ip netns add failed)"
    fi
    timeout 10 ip netns del "$probe"
}

e2e_find_example() {
    local name=$1 c
    if [[ -v CLUSTERNET_EXAMPLES_DIR && -z $CLUSTERNET_EXAMPLES_DIR ]]; then
        skip "the examples ($name) are not part of this build (CLUSTERNET_BUILD_EXAMPLES=OFF)"
    fi
    [[ -n ${CLUSTERNET_BUILD_DIR:-} ]] || fail "CLUSTERNET_BUILD_DIR is not set (ctest sets it)"
    for c in "${CLUSTERNET_EXAMPLES_DIR:-}/$name" "$CLUSTERNET_BUILD_DIR/examples/$name"; do
        if [[ -x $c && -f $c ]]; then
            echo "$c"
            return 0
        fi
    done
    c=$(find "$CLUSTERNET_BUILD_DIR" -type f -name "$name" -perm -u+x 2>/dev/null | head -n 1)
    [[ -n $c ]] || fail "no $name executable under $CLUSTERNET_BUILD_DIR"
    echo "$c"
}

# refused 'WHAT THE ERROR SAYS' PROGRAM ARGS...: the program must refuse (exit non-zero), and its
# output must say that.
refused() {
    local want=$1 out
    shift
    if out=$("$@" 2>&1); then fail "accepted: $* (want an error saying: $want)"; fi
    grep -qF -- "$want" <<<"$out" || fail "$*: the error does not say \"$want\": $out"
}
