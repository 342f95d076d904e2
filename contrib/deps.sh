# Installs what building and testing Berth needs from Debian's packages (sourced by setup.sh and test.sh).
install_deps() {
    pkgs="build-essential pkg-config libseccomp-dev busybox-static runc iptables procps curl ca-certificates"
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
