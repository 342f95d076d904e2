# Installs what building and testing Berth needs from Debian's packages (sourced by setup.sh and test.sh).

# apt_install PKG...: installs the packages that are missing, without letting any of them start a service (docker.io
# would start dockerd, which rewrites the firewall; docker-registry would take port 5000).
apt_install() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    echo "installing:$missing"
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    if [ -n "$policy" ]; then rm -f "$policy"; fi
}

install_deps() {
    apt_install build-essential pkg-config libseccomp-dev busybox-static runc nftables iptables iproute2 \
        util-linux procps tar curl ca-certificates bsdutils hostname
    if ! command -v cargo >/dev/null 2>&1; then
        [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.95+) is required: https://rustup.rs" >&2; exit 1; }
}

# What only the tests use: the real docker CLI and dockerd for the compatibility tier (Debian's docker.io where no
# dockerd is installed; its daemon is not started by the installation), Debian's docker-compose 1.29 and docker-registry (distribution 2.8.2,
# started by each registry test on a loopback port), python3 (bcrypt for the registry's htpasswd), openssl (the TLS
# tests' and the remote API's certificates); with docker.io, a real dockerd pushes to and pulls from Berth's registry
# in the tests.
install_test_deps() {
    # sqlite3: the full-disk test's integrity check of berthd's database; e2fsprogs and mount (mkfs.ext4, losetup):
    # its small loop-mounted file system; passwd (useradd) and util-linux (setpriv): the user-namespace and file-mode
    # tests' users; python3-docker: the docker-py SDK of tests/views.rs.
    # chromium, chromium-driver and python3-selenium: the dashboard's browser test (tests/ui.rs); bzip2, xz-utils and
    # zstd: the compressed archives of the ADD and zstd-layer tests (tests/commit.rs, tests/pull_stream.rs); python3-pip:
    # kubernetes-validate below. containerd (containerd, ctr, containerd-shim-runc-v2): berth-runc under containerd
    # (tests/runc_cli.rs, each test with its own containerd; the package's service is not needed).
    pkgs="docker-compose docker-registry python3 python3-docker openssl sqlite3 e2fsprogs mount passwd util-linux
          chromium chromium-driver python3-selenium bzip2 xz-utils zstd python3-pip containerd"
    # docker.io also where a docker CLI is installed but no dockerd: the registry's interop test runs a real dockerd.
    if [ ! -x /usr/sbin/dockerd ]; then
        pkgs="docker.io $pkgs"
    fi
    # npm (axe-core below) from Debian, unless an npm is there already (NodeSource's nodejs carries its own and
    # conflicts with Debian's npm package).
    command -v npm >/dev/null || pkgs="$pkgs npm"
    apt_install $pkgs
    # kubernetes-validate (PyPI, pinned; it carries the Kubernetes OpenAPI schemas): tests/kube.rs validates every
    # YAML document `berth kube generate` writes against Kubernetes 1.30 and 1.31, offline.
    if ! /usr/bin/python3 -c "import kubernetes_validate" 2>/dev/null; then
        /usr/bin/python3 -m pip install -q --break-system-packages kubernetes-validate==1.37.0
    fi
    # axe-core, the accessibility checker the dashboard's browser test runs in every page: from npm, pinned, into a
    # directory of Berth's tests (no CDN at test time).
    axe=/var/lib/berth-test-deps/axe
    if [ ! -f "$axe/node_modules/axe-core/axe.min.js" ]; then
        mkdir -p "$axe"
        npm install --silent --no-audit --no-fund --prefix "$axe" axe-core@4.14.1 >/dev/null
    fi
}
