#!/bin/bash
# The cost of `docker stats`: berthd's CPU time while 50 running containers are streamed at once (one
# `GET /containers/{id}/stats` stream each, an object a second), against the same daemon idle with the 50 running.
# Issue 14's goal: under 2 % of one core.
#
#   bench/stats.sh [SECONDS]         # measurement window (default 30)
#   BIN=target/debug bench/stats.sh  # use another build (default: a release build, made first)
#
# A private berthd (own data root, exec root, socket and bridge), torn down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
WORK=/tmp/berth-bench-stats
RUN=/run/berth-bs   # short: the shims' socket paths must fit in sun_path
SOCK=$WORK/berth.sock
exec 9>/tmp/berth-bench-stats.lock
flock -n 9 || { echo "bench/stats.sh: another run holds /tmp/berth-bench-stats.lock" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
    ${CARGO:-cargo} build --release --locked -q
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
unmount_under() { awk -v p="$1" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; }
cli() { DOCKER_HOST=unix://$SOCK "$BIN/berth" "$@"; }
STREAMS=()
cleanup() {
    for p in "${STREAMS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "${BERTHD_PID:-}" ]; then
        cli rm -f $(cli ps -aq) >/dev/null 2>&1 || true
        kill "$BERTHD_PID" 2>/dev/null || true
        wait "$BERTHD_PID" 2>/dev/null || true
        "$BIN/berthd" --data-root "$WORK/data" --exec-root "$RUN" --remove-networking >/dev/null 2>&1 || true
    fi
    unmount_under "$WORK" || true; unmount_under "$RUN" || true
    rm -rf "$WORK" "$RUN"
}
trap cleanup EXIT
mkdir -p "$WORK"
"$BIN/berthd" --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$RUN" --log-level warn >>"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
BERTH="$BIN/berth" DOCKER_HOST=unix://$SOCK contrib/mkimage-busybox.sh >/dev/null
ids=$(for _ in $(seq 50); do cli run -d busybox sleep 3600; done)
[ "$(cli ps -q | wc -l)" = 50 ] || { echo "bench/stats.sh: 50 containers did not start" >&2; exit 1; }

# berthd's CPU time in clock ticks: user and system.
ticks() { awk '{print $14, $15}' "/proc/$BERTHD_PID/stat"; }
tck=$(getconf CLK_TCK)
window() { # label
    local a b
    a=($(ticks)); sleep "$SECS"; b=($(ticks))
    awk -v l="$1" -v u=$((b[0] - a[0])) -v k=$((b[1] - a[1])) -v hz="$tck" -v s="$SECS" \
        'BEGIN {printf "%-20s %6.2f %% of one core (user %d, system %d ticks in %d s)\n", l, (u + k) / hz / s * 100, u, k, s}'
}
sleep 2
window "idle, 50 running"
for id in $ids; do
    curl -sN --unix-socket "$SOCK" "http://berth/containers/$id/stats" >/dev/null &
    STREAMS+=($!)
done
sleep 3   # every stream started
window "50 stats streams"
objects=$(for id in $(echo "$ids" | head -3); do curl -s --unix-socket "$SOCK" "http://berth/containers/$id/stats?stream=false" | wc -c; done | paste -sd' ')
echo "one stats object: $objects bytes"
