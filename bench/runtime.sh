#!/bin/bash
# The runtime rows (`BENCH_ONLY=runtime bench/run.sh [N]`, which builds and holds the bench lock, then runs this with
# the release binaries' directory): berth-runc (Berth's runtime with runc's command line) beside runc and crun,
#   1. `RT run --bundle B ID` of a busybox `true` (create, start, wait, delete: one command), N times, median;
#   2. `ctr run --rm --runc-binary RT IMAGE ID true` through a private containerd (Debian's containerd 1.6, runc-v2
#      shim; its own config, root, state and socket, stopped by PID at the end), N times, median: a cluster node's
#      start, as containerd drives the runtime.
# A runtime that is not installed, or fails here, is reported as such (crun 1.8 refuses hosts whose cgroup2 mount
# holds hugetlb: "n/a" with its error).
set -euo pipefail
BIN=$1
N=${2:-30}
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
W=/tmp/berth-bench-runtime
CG=berth-bench-runtime
now_ns() { date +%s%N; }
# (printf, not print: mawk prints a number of 7 digits or more as 2.01588e+06.)
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {printf "%.0f\n", a[(NR+1)/2]} else {printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}}'; }
unmount_under() { awk -v p="$1" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; }
CTD_PID=
cleanup() {
    if [ -n "$CTD_PID" ]; then
        for id in $(ctr -a "$W/ctd.sock" -n bench c ls -q 2>/dev/null); do ctr -a "$W/ctd.sock" -n bench c rm "$id" >/dev/null 2>&1 || true; done
        kill "$CTD_PID" 2>/dev/null || true
        wait "$CTD_PID" 2>/dev/null || true
    fi
    unmount_under "$W" || true
    for d in /sys/fs/cgroup/*/"$CG"; do [ -d "$d" ] && { find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null; rmdir "$d" 2>/dev/null; }; done
    rm -rf "$W"
}
trap cleanup EXIT
unmount_under "$W"; rm -rf "$W"; mkdir -p "$W/bundle/rootfs/bin"
cp /bin/busybox "$W/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/bundle/rootfs/bin/$a"; done
"$BIN/berth-runc" spec --bundle "$W/bundle"
python3 - "$W/bundle/config.json" "$CG" <<'EOF'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False; c["process"]["args"] = ["true"]; c["root"]["readonly"] = True
c["linux"]["cgroupsPath"] = "/" + sys.argv[2] + "/c"
json.dump(c, open(p, "w"))
EOF

declare -A RUNTIMES=([berth-runc]="$BIN/berth-runc" [runc]="$(command -v runc || true)" [crun]="$(command -v crun || true)")
ORDER=(berth-runc runc crun)
declare -A DIRECT CTR

# 1. Straight through the runtime's command line.
for name in "${ORDER[@]}"; do
    rt=${RUNTIMES[$name]}
    [ -n "$rt" ] || { DIRECT[$name]="not installed"; continue; }
    if ! err=$(cd "$W/bundle" && "$rt" --root "$W/root-$name" run --bundle "$W/bundle" probe 2>&1 </dev/null); then
        DIRECT[$name]="n/a ($(echo "$err" | tail -1 | cut -c1-120))"
        "$rt" --root "$W/root-$name" delete --force probe >/dev/null 2>&1 || true
        continue
    fi
    DIRECT[$name]=$(for i in $(seq "$N"); do
        t0=$(now_ns)
        "$rt" --root "$W/root-$name" run --bundle "$W/bundle" "d$i" </dev/null >/dev/null 2>&1
        t1=$(now_ns)
        echo $(( (t1 - t0) / 1000 ))
    done | median)
done

# 2. Through containerd.
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
    mkdir -p "$W/img/blobs/sha256"
    tar -C "$W/bundle/rootfs" -cf "$W/layer.tar" .
    put() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$W/img/blobs/sha256/$d"; echo "$d $(stat -c %s "$W/img/blobs/sha256/$d")"; }
    read -r L LS < <(put "$W/layer.tar")
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["true"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$L" > "$W/cfg.json"
    read -r C CS < <(put "$W/cfg.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" > "$W/m.json"
    read -r M MS < <(put "$W/m.json")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/library/bench-bb:latest"}}]}' "$M" "$MS" > "$W/img/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$W/img/oci-layout"
    tar -C "$W/img" -cf "$W/image.tar" .
    printf 'version = 2\nroot = "%s/ctd-root"\nstate = "%s/ctd-state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/ctd.sock"\n[ttrpc]\n  address = "%s/ctd.sock.ttrpc"\n' "$W" "$W" "$W" "$W" > "$W/ctd.toml"
    containerd --config "$W/ctd.toml" >"$W/containerd.log" 2>&1 &
    CTD_PID=$!
    for _ in $(seq 200); do ctr -a "$W/ctd.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
    CTRCMD=(ctr -a "$W/ctd.sock" -n bench)
    "${CTRCMD[@]}" image import "$W/image.tar" >/dev/null
    for name in "${ORDER[@]}"; do
        rt=${RUNTIMES[$name]}
        [ -n "$rt" ] || { CTR[$name]="not installed"; continue; }
        run_ctr() { "${CTRCMD[@]}" run --rm --null-io --runc-binary "$rt" --runc-root "$W/ctr-root-$name" --cgroup "/$CG/$1" docker.io/library/bench-bb:latest "$1" true; }
        if ! err=$(run_ctr "probe-$name" 2>&1 </dev/null); then
            CTR[$name]="n/a ($(echo "$err" | tail -1 | cut -c1-120))"
            "${CTRCMD[@]}" c rm "probe-$name" >/dev/null 2>&1 || true
            continue
        fi
        CTR[$name]=$(for i in $(seq "$N"); do
            t0=$(now_ns)
            run_ctr "$name-$i" </dev/null >/dev/null 2>&1
            t1=$(now_ns)
            echo $(( (t1 - t0) / 1000 ))
        done | median)
    done
else
    for name in "${ORDER[@]}"; do CTR[$name]="no containerd (apt-get install containerd)"; done
fi

ms() { case $1 in ''|n/a*|not*|no*) echo "$1" ;; *) awk -v u="$1" 'BEGIN {printf "%.1f ms", u / 1000}' ;; esac; }
echo
echo "| metric (median of $N) | berth-runc | runc | crun |"
echo "|---|---|---|---|"
echo "| \`RT run\` of busybox \`true\` (create, start, wait, delete) | $(ms "${DIRECT[berth-runc]}") | $(ms "${DIRECT[runc]}") | $(ms "${DIRECT[crun]}") |"
echo "| \`ctr run --rm --runc-binary RT\` of busybox \`true\` (containerd 1.6, runc-v2 shim) | $(ms "${CTR[berth-runc]}") | $(ms "${CTR[runc]}") | $(ms "${CTR[crun]}") |"
# The figures also go to a results file beside bench/run.sh's ($BENCH_OUT, by default bench/results/<date>-<host>-runtime.tsv).
BENCH_OUT=${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-$(hostname -s)-runtime.tsv}
mkdir -p "$(dirname "$BENCH_OUT")"
{
    echo "# bench/runtime.sh N=$N commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes) host $(hostname -s) $(date -u +%Y-%m-%dT%H:%M:%SZ) cores $(nproc) load at start $LOAD_AT_START at end $(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'key\tunit\tberth-runc\trunc\tcrun\tmetric\n'
    printf 'run\tus\t%s\t%s\t%s\tRT run of busybox true (create, start, wait, delete), median\n' "${DIRECT[berth-runc]}" "${DIRECT[runc]}" "${DIRECT[crun]}"
    printf 'ctr\tus\t%s\t%s\t%s\tctr run --rm --runc-binary RT of busybox true, median\n' "${CTR[berth-runc]}" "${CTR[runc]}" "${CTR[crun]}"
} >"$BENCH_OUT"
echo "figures saved to $BENCH_OUT"
