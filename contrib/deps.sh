# Installs what building and testing Berth needs from Debian's packages (sourced by setup.sh and test.sh).
install_deps() {
    pkgs="build-essential pkg-config libseccomp-dev busybox-static runc nftables iptables iproute2 util-linux procps curl ca-certificates bsdutils"
    missing=""
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.95+) is required: https://rustup.rs" >&2; exit 1; }
}

# The test suite's compatibility tier drives berthd with the real docker CLI: where none is installed, Debian's
# docker.io brings one (its daemon is not started).
install_test_deps() {
    if ! command -v docker >/dev/null 2>&1 && [ ! -x /usr/local/bin/docker ]; then
        echo "installing: docker.io (for the docker CLI the compatibility tests use)"
        # Keep the package from starting its daemon (which would touch the firewall) while it installs.
        policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
        if [ -n "$policy" ]; then rm -f "$policy"; fi
    fi
    # Registry tests push to and pull from Debian's docker-registry (distribution 2.8.2), started by each test on a
    # loopback port (the package's own service is not used).
    if ! command -v docker-registry >/dev/null 2>&1; then
        echo "installing: docker-registry (for the registry tests)"
        policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
        if [ -n "$policy" ]; then rm -f "$policy"; fi
    fi
    # ... and Debian's docker-compose 1.29 (docker-py) drives it for compose files.
    if ! command -v docker-compose >/dev/null 2>&1; then
        echo "installing: docker-compose (for the compatibility tests)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    fi
}
