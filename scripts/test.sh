#!/usr/bin/env bash
# scripts/test.sh -- build and test clusternet the way CI does.
#
# Stages, in order; the first failure stops the run:
#   a  gcc      GCC 12 build (build/gcc, RelWithDebInfo): tests, examples, benchmarks, every
#               header compiled alone (all_verify_interface_header_sets), ctest
#   b  clang    Clang 14 build (build/clang), the same, without the e2e label (they ran in
#               stage a against the same sources; CLUSTERNET_CLANG_E2E=1 runs them again)
#   c  asan     clang ASan+UBSan build (build/asan, Debug -O1, no benchmarks, no examples),
#               ctest without the e2e label (CLUSTERNET_ASAN_E2E=1 builds the examples and
#               includes them)
#   d  consume  install build/gcc into a temporary prefix; build and run tests/consumers/find_package
#               against it, and tests/consumers/add_subdirectory
#   e  bench    run every benchmark of build/gcc once with --benchmark_min_time=0.01
#   f  fuzz     clang libFuzzer build (build/fuzz); each fuzz_* runs CLUSTERNET_FUZZ_SECONDS
#               (default 10) seconds on a copy of its seed corpus
#
# Usage: scripts/test.sh [--quick] [--no-fuzz]
#   --quick    stage a only
#   --no-fuzz  skip stage f
# Environment: CLUSTERNET_JOBS (default 2), CLUSTERNET_FUZZ_SECONDS (default 10),
#   CLUSTERNET_CLANG_E2E (default 0), CLUSTERNET_ASAN_E2E (default 0), CXX_GCC / CXX_CLANG.
# CI's budget is 30 minutes on 2 cores: each stage's time is printed at the end.
#
# The last line printed is always `summary: N passed, M failed, K skipped`, counting ctest tests
# plus the script's own checks (each consumer, benchmark and fuzzer run; a failed build or
# configure counts as one failure). The exit status is non-zero when anything failed.
set -uo pipefail

usage() { sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; }

quick=0
fuzz=1
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --no-fuzz) fuzz=0 ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'test.sh: unknown argument: %s\n' "$arg" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2

jobs=${CLUSTERNET_JOBS:-2}
fuzz_seconds=${CLUSTERNET_FUZZ_SECONDS:-10}
pick() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 && { echo "$c"; return; }; done; echo "$1"; }
cxx_gcc=${CXX_GCC:-$(pick g++-12 g++)}
cxx_clang=${CXX_CLANG:-$(pick clang++-14 clang++)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/clusternet-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'printf "\ntest.sh: interrupted\n"; exit 130' INT TERM

n_passed=0
n_failed=0
n_skipped=0
stage_lines=()

say() { printf '%s\n' "$*"; }
hms() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

finish() {
    local status=$1
    say ""
    say "==> stages"
    local l
    for l in "${stage_lines[@]}"; do say "    $l"; done
    rm -rf "$tmp"
    trap - EXIT
    say "summary: ${n_passed} passed, ${n_failed} failed, ${n_skipped} skipped"
    exit "$status"
}

# fail <message>: one failure, stop.
fail_msg=""
fail() { fail_msg=$*; return 1; }

# run_stage <letter> <title> <function>
run_stage() {
    local letter=$1 title=$2 fn=$3 start=$SECONDS rc
    say ""
    say "==> stage ${letter}: ${title}"
    fail_msg=""
    "$fn"
    rc=$?
    local took=$((SECONDS - start))
    if ((rc != 0)); then
        [[ -n $fail_msg ]] || fail_msg="exit status $rc"
        stage_lines+=("$(printf '%s %-34s FAILED  %s' "$letter" "$title" "$(hms "$took")")")
        say ""
        say "test.sh: FAILED in stage ${letter} (${title}): ${fail_msg}"
        finish 1
    fi
    stage_lines+=("$(printf '%s %-34s ok      %s' "$letter" "$title" "$(hms "$took")")")
    say "==> stage ${letter} done in $(hms "$took")"
}

skip_stage() {
    stage_lines+=("$(printf '%s %-34s skipped (%s)' "$1" "$2" "$3")")
}

# A step that, when it fails, counts as one failed check.
step() {
    say "+ $*"
    "$@" && return 0
    n_failed=$((n_failed + 1))
    fail "command failed: $*"
}

# configure <build dir> <args...>: a Ninja build; a build dir made by another generator is
# rebuilt from scratch.
configure() {
    local dir=$1; shift
    if [[ -f $dir/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
        say "test.sh: $dir was not made by Ninja; removing it"
        rm -rf "$dir"
    fi
    step cmake -S "$root" -B "$dir" -G Ninja "$@"
}

build() {
    step cmake --build "$1" -j "$jobs" "${@:2}"
}

has_target() {
    # (not grep -q: with pipefail, ninja would die of SIGPIPE and the pipeline would fail)
    ninja -C "$1" -t targets all 2>/dev/null | grep "^$2:" >/dev/null
}

verify_headers() {
    if has_target "$1" all_verify_interface_header_sets; then
        build "$1" --target all_verify_interface_header_sets
    else
        say "test.sh: no header set to verify in $1 (no headers yet?)"
    fi
}

# run_ctest <build dir> [ctest args...]: runs ctest, adds its counts to the totals.
run_ctest() {
    local dir=$1; shift
    local log=$tmp/ctest.log rc
    say "+ ctest --test-dir $dir --output-on-failure -j $jobs $*"
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}

    local line total=0 failed=0 skipped=0
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=${BASH_REMATCH[1]}
        total=${BASH_REMATCH[2]}
        # Tests ctest did not run (skipped via SKIP_RETURN_CODE, or disabled) are listed after
        # "The following tests did not run:", one per line, up to a blank line.
        skipped=$(awk '/^The following tests did not run:/ { on = 1; next }
                       on && /^[[:space:]]*$/ { on = 0 }
                       on && /[0-9]+ - / { n++ }
                       END { print n + 0 }' "$log")
    elif grep -q 'No tests were found' "$log"; then
        say "test.sh: no tests in $dir"
    elif ((rc != 0)); then
        failed=1
        total=1
    fi
    n_passed=$((n_passed + total - failed - skipped))
    n_failed=$((n_failed + failed))
    n_skipped=$((n_skipped + skipped))
    if ((rc != 0)); then
        fail "ctest in $dir: ${failed} of ${total} tests failed"
        return 1
    fi
    return 0
}

# ---------------------------------------------------------------------------------------------
common_args=(-DCLUSTERNET_WERROR=ON -DCLUSTERNET_VERIFY_HEADERS=ON)

stage_gcc() {
    configure build/gcc -DCMAKE_CXX_COMPILER="$cxx_gcc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "${common_args[@]}" \
        -DCLUSTERNET_BUILD_TESTS=ON -DCLUSTERNET_BUILD_EXAMPLES=ON -DCLUSTERNET_BUILD_BENCHMARKS=ON &&
        build build/gcc &&
        verify_headers build/gcc &&
        run_ctest build/gcc
}

stage_clang() {
    local -a ctest_args=()
    [[ ${CLUSTERNET_CLANG_E2E:-0} == 1 ]] || ctest_args=(-LE e2e)
    configure build/clang -DCMAKE_CXX_COMPILER="$cxx_clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "${common_args[@]}" \
        -DCLUSTERNET_BUILD_TESTS=ON -DCLUSTERNET_BUILD_EXAMPLES=ON -DCLUSTERNET_BUILD_BENCHMARKS=ON &&
        build build/clang &&
        verify_headers build/clang &&
        run_ctest build/clang "${ctest_args[@]}"
}

stage_asan() {
    local -a ctest_args=() examples=ON
    [[ ${CLUSTERNET_ASAN_E2E:-0} == 1 ]] || { ctest_args=(-LE e2e); examples=OFF; }
    local -x ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
    local -x UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
    configure build/asan -DCMAKE_CXX_COMPILER="$cxx_clang" -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DCLUSTERNET_SANITIZE=address,undefined \
        -DCLUSTERNET_WERROR=ON -DCLUSTERNET_VERIFY_HEADERS=OFF \
        -DCLUSTERNET_BUILD_TESTS=ON -DCLUSTERNET_BUILD_EXAMPLES="$examples" -DCLUSTERNET_BUILD_BENCHMARKS=OFF &&
        build build/asan &&
        run_ctest build/asan "${ctest_args[@]}"
}

# consumer <name> <source dir> <build dir> <extra cmake args...>
consumer() {
    local name=$1 src=$2 dir=$3; shift 3
    say "+ consumer ${name}"
    if cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx_gcc" "$@" 2>&1 | tee "$tmp/consumer.log" &&
        cmake --build "$dir" -j "$jobs" &&
        "$dir/consumer"; then
        n_passed=$((n_passed + 1))
        return 0
    fi
    n_failed=$((n_failed + 1))
    fail "consumer ${name} failed"
}

stage_consumers() {
    local prefix=$tmp/prefix
    step cmake --install build/gcc --prefix "$prefix" || return 1
    [[ -f $prefix/include/clusternet/clusternet.hpp ]] || {
        n_failed=$((n_failed + 1)); fail "the install has no include/clusternet/clusternet.hpp"; return 1; }
    consumer find_package tests/consumers/find_package "$tmp/find_package" \
        -DCMAKE_PREFIX_PATH="$prefix" || return 1
    # It must have used the fresh install, not some other clusternet on the machine.
    grep 'found clusternet' "$tmp/consumer.log" | grep -F " in $prefix/" >/dev/null || {
        n_failed=$((n_failed + 1)); fail "find_package found clusternet outside $prefix"; return 1; }
    consumer add_subdirectory tests/consumers/add_subdirectory "$tmp/add_subdirectory" \
        -DCLUSTERNET_SOURCE_DIR="$root"
}

stage_bench() {
    shopt -s nullglob
    local sources=(benchmarks/*_benchmark.cpp) src name exe rc=0
    shopt -u nullglob
    if ((${#sources[@]} == 0)); then
        say "test.sh: no benchmarks/*_benchmark.cpp"
        return 0
    fi
    local logdir=build/gcc/benchmark-smoke
    mkdir -p "$logdir"
    for src in "${sources[@]}"; do
        name=$(basename "$src" .cpp)
        exe=build/gcc/benchmarks/$name
        say "+ $exe --benchmark_min_time=0.01  (output in $logdir/$name.txt)"
        local start=$SECONDS
        if [[ -x $exe ]] && timeout 600 "$exe" --benchmark_min_time=0.01 >"$logdir/$name.txt" 2>&1; then
            n_passed=$((n_passed + 1))
            say "  ok: $(grep -c '^BM_' "$logdir/$name.txt") benchmark(s) in $(hms $((SECONDS - start)))"
        else
            n_failed=$((n_failed + 1))
            [[ -x $exe ]] || say "  missing executable $exe"
            tail -n 40 "$logdir/$name.txt" 2>/dev/null
            say "  FAILED: $name"
            rc=1
        fi
    done
    ((rc == 0)) || fail "some benchmarks did not run cleanly"
}

stage_fuzz() {
    shopt -s nullglob
    local sources=(tests/fuzz/*_fuzz.cpp) src name exe work rc=0
    shopt -u nullglob
    if ((${#sources[@]} == 0)); then
        say "test.sh: no tests/fuzz/*_fuzz.cpp"
        return 0
    fi
    configure build/fuzz -DCMAKE_CXX_COMPILER="$cxx_clang" -DCMAKE_BUILD_TYPE=Debug \
        -DCLUSTERNET_BUILD_FUZZERS=ON -DCLUSTERNET_WERROR=ON -DCLUSTERNET_VERIFY_HEADERS=OFF \
        -DCLUSTERNET_BUILD_TESTS=OFF -DCLUSTERNET_BUILD_EXAMPLES=OFF -DCLUSTERNET_BUILD_BENCHMARKS=OFF &&
        build build/fuzz || return 1
    local artifacts=$root/build/fuzz/artifacts
    for src in "${sources[@]}"; do
        name=$(basename "$src" _fuzz.cpp)
        exe=build/fuzz/tests/fuzz/fuzz_$name
        work=$tmp/fuzz-$name
        mkdir -p "$work/corpus" "$artifacts/$name"
        if [[ -d tests/fuzz/corpus/$name ]]; then
            cp -R "tests/fuzz/corpus/$name/." "$work/corpus/"
        fi
        local log=build/fuzz/fuzz_$name.log
        say "+ $exe -max_total_time=$fuzz_seconds  ($(find "$work/corpus" -type f | wc -l) seed(s); log in $log)"
        if [[ -x $exe ]] && timeout $((fuzz_seconds + 120)) "$exe" -max_total_time="$fuzz_seconds" \
                -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
                -artifact_prefix="$artifacts/$name/" "$work/corpus" >"$log" 2>&1; then
            n_passed=$((n_passed + 1))
            say "  ok: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
        else
            n_failed=$((n_failed + 1))
            [[ -x $exe ]] || say "  missing executable $exe"
            tail -n 60 "$log" 2>/dev/null
            say "  FAILED: fuzz_$name (reproducer, if any, in $artifacts/$name/)"
            rc=1
        fi
    done
    ((rc == 0)) || fail "a fuzzer found a problem"
}

# ---------------------------------------------------------------------------------------------
say "test.sh: gcc=$cxx_gcc clang=$cxx_clang jobs=$jobs$( ((quick)) && echo ' --quick')$( ((fuzz)) || echo ' --no-fuzz')"

run_stage a "GCC build, headers, ctest" stage_gcc
if ((quick)); then
    for s in "b:Clang build, headers, ctest" "c:ASan+UBSan build, ctest" "d:consumers" \
             "e:benchmark smoke" "f:fuzz"; do
        skip_stage "${s%%:*}" "${s#*:}" "--quick"
    done
    finish $((n_failed > 0))
fi
run_stage b "Clang build, headers, ctest" stage_clang
run_stage c "ASan+UBSan build, ctest" stage_asan
run_stage d "consumers" stage_consumers
run_stage e "benchmark smoke" stage_bench
if ((fuzz)); then
    run_stage f "fuzz (${fuzz_seconds}s each)" stage_fuzz
else
    skip_stage f "fuzz" "--no-fuzz"
fi
finish $((n_failed > 0))
