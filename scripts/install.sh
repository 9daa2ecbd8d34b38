#!/usr/bin/env bash
# scripts/install.sh -- install what clusternet's build, tests, benchmarks and e2e tests need.
#
# For Debian 12 (bookworm). Idempotent: when every package is already installed it only checks
# (dpkg-query) and exits, without touching the network. Otherwise it runs `apt-get update` once
# and installs the missing packages, dropping (and reporting) any name the archive does not have.
# Runs as root, or through sudo when not root. Never prompts.
set -euo pipefail

packages=(
    # compilers and build tools
    build-essential g++ clang-14 clang lld libclang-rt-14-dev cmake ninja-build pkg-config
    # libraries: the core set, then the benchmark peers
    libboost1.81-dev librange-v3-dev doctest-dev libbenchmark-dev libdpdk-dev libabsl-dev
    libpcap-dev libhttp-parser-dev
    # end-to-end tests and measurements
    iproute2 iputils-ping nftables ethtool tcpdump tshark curl wrk nginx-light iperf3 socat python3 gnuplot-nox
)

start=$SECONDS
log() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    die "not root and sudo is not available; run this script as root"
fi

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == "ii "* ]]
}

missing=()
for p in "${packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    log "all ${#packages[@]} packages are already installed; nothing to do"
    exit 0
fi
log "${#missing[@]} of ${#packages[@]} packages to install: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
apt_env=(env DEBIAN_FRONTEND=noninteractive)
apt_opts=(-y -q --no-install-recommends
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# Answer the questions some packages ask, so that nothing prompts even without
# DEBIAN_FRONTEND: tshark (capture as non-root) and iperf3 (run a daemon).
"${as_root[@]}" debconf-set-selections <<'EOF'
wireshark-common wireshark-common/install-setuid boolean false
iperf3 iperf3/start_daemon boolean false
EOF

# Installing nginx-light (and iperf3) would start their daemons through invoke-rc.d, leaving an
# nginx listening on port 80 that the e2e tests do not expect. Forbid service starts while we
# install, unless the machine already has a policy (containers often do).
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
    if ((made_policy)); then
        "${as_root[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from clusternet scripts/install.sh\nexit 101\n' |
        "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    made_policy=1
    log "services will not be started during the installation (temporary $policy)"
fi

retry() {
    local i
    for i in 1 2 3; do
        "$@" && return 0
        log "attempt $i failed: $*"
        sleep $((i * 5))
    done
    return 1
}

log "apt-get update"
retry "${as_root[@]}" "${apt_env[@]}" apt-get update -q || die "apt-get update failed"

to_install=()
dropped=()
for p in "${missing[@]}"; do
    candidate=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    if [[ -n $candidate && $candidate != "(none)" ]]; then
        to_install+=("$p")
    else
        dropped+=("$p")
    fi
done
if ((${#dropped[@]})); then
    log "WARNING: not in the archive, skipped: ${dropped[*]}"
fi

if ((${#to_install[@]})); then
    log "apt-get install ${to_install[*]}"
    retry "${as_root[@]}" "${apt_env[@]}" apt-get install "${apt_opts[@]}" "${to_install[@]}" ||
        die "apt-get install failed"
fi

still_missing=()
for p in "${to_install[@]}"; do
    is_installed "$p" || still_missing+=("$p")
done
((${#still_missing[@]} == 0)) || die "still not installed: ${still_missing[*]}"

log "installed ${#to_install[@]} package(s): ${to_install[*]:-none}"
log "already present: $((${#packages[@]} - ${#missing[@]})); not available: ${#dropped[@]}${dropped[*]:+ (${dropped[*]})}"
log "done in $((SECONDS - start)) s"
