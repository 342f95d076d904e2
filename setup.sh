#!/bin/sh
# Sets Berth up on a Debian 12 machine (as root) and runs the main job: installs the build and run dependencies,
# builds and installs berthd, berth, berth-shim and berth-runc (Berth's runtime with runc's command line, for
# containerd) into /usr/local/bin, starts berthd (as the systemd unit
# contrib/berthd.service where systemd runs, else in the background with nohup), makes a busybox base image offline
# and runs a container that greets you.
set -eu
cd "$(dirname "$0")"
. ./contrib/deps.sh
install_deps
cargo build --release --locked
install -m 0755 target/release/berthd target/release/berth target/release/berth-shim target/release/berth-runc /usr/local/bin/
# The group that may use the API socket (membership is as good as root; berthd uses it when it exists). Empty.
getent group berth >/dev/null || groupadd --system berth
if [ -d /run/systemd/system ]; then
    # Under systemd: the unit contrib/berthd.service (KillMode=process: a restart of the unit leaves the containers
    # running).
    install -m 0644 contrib/berthd.service /etc/systemd/system/berthd.service
    systemctl daemon-reload
    systemctl enable berthd.service
    if ! systemctl is-active --quiet berthd.service && berth version >/dev/null 2>&1; then
        # A berthd started otherwise (an earlier setup.sh, by hand) serves the default socket: the unit's would be
        # refused (one daemon per data root). It is left alone: stopping it (SIGTERM) keeps its containers running.
        echo "a berthd not started by systemd serves /run/berth/berth.sock; stop it, then: systemctl start berthd"
    else
        echo "starting berthd.service (log: journalctl -u berthd)"
        systemctl restart berthd.service   # a new binary takes over; the containers keep running
    fi
else
    if ! berth version >/dev/null 2>&1; then
        echo "starting berthd (log: /var/log/berthd.log)"
        nohup /usr/local/bin/berthd >>/var/log/berthd.log 2>&1 &
    fi
fi
for _ in $(seq 1 100); do
    berth version >/dev/null 2>&1 && break
    sleep 0.1
done
berth image inspect busybox:latest >/dev/null 2>&1 || ./contrib/mkimage-busybox.sh busybox:latest
berth run --rm busybox echo "Hello from Berth: a container started by berthd, running busybox"
