#!/bin/sh
# Sets Berth up on a Debian 12 machine (as root) and runs the main job: installs the build and run dependencies,
# builds and installs berthd, berth and berth-shim into /usr/local/bin, starts berthd, makes a busybox base image
# offline and runs a container that greets you.
set -eu
cd "$(dirname "$0")"
. ./contrib/deps.sh
install_deps
cargo build --release --locked
install -m 0755 target/release/berthd target/release/berth target/release/berth-shim /usr/local/bin/
if ! berth version >/dev/null 2>&1; then
    echo "starting berthd (log: /var/log/berthd.log)"
    nohup /usr/local/bin/berthd >>/var/log/berthd.log 2>&1 &
    for _ in $(seq 1 100); do
        berth version >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
berth image inspect busybox:latest >/dev/null 2>&1 || ./contrib/mkimage-busybox.sh busybox:latest
berth run --rm busybox echo "Hello from Berth: a container started by berthd, running busybox"
