#!/usr/bin/env bash
# Runs the example programs that need no privileges and checks that they succeed: the docs
# quote them, so they must keep working.
set -euo pipefail
dir=${CLUSTERNET_EXAMPLES_DIR:-${CLUSTERNET_BUILD_DIR:-build/gcc}/examples}
tour="$dir/cn-packet-tour"
if [[ ! -x $tour ]]; then
    echo "examples_e2e: $tour not built" >&2
    exit 1
fi
out=$(timeout 20 "$tour")
printf '%s\n' "$out"
grep -q '^all good$' <<<"$out"
! grep -q FAILED <<<"$out"
