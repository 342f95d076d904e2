#!/bin/bash
# Berth vs Docker, side by side in one run, on the same busybox image (made offline from busybox-static).
#
#   bench/run.sh [N]        # N repetitions for latency medians (default 30)
#
# Measures: builds (cold, cached, one file changed), `run --rm img true` latency (--network none and the default bridge, and the difference: what network
# set-up adds to a start), published-port throughput (1 GiB host -> container nc), `exec` latency, 50 x `run -d` then `rm -f`, idle daemon RSS, RSS and PSS per
# running container (the shim: Berth's berth-shim, Docker's containerd-shim), and (Berth only: Docker keeps running
# containers across a restart only with --live-restore) how long a berthd started after a kill -9 takes until its API
# answers, with 50 containers running. Berth runs a private release-built berthd; Docker runs only when `dockerd` is installed
# (apt-get install docker.io), on its own socket and data root. Prints medians and the Berth/Docker ratio.
#
# Registry rows: push and pull of an image with 300 MB of incompressible data in 3 layers (made by this script,
# loaded into each engine) against a registry on 127.0.0.1: Berth's own (`berth registry serve`, release build) or,
# with BENCH_REGISTRY=distribution, Debian's docker-registry. Pull = `rmi` then `pull` (download, verify, unpack).
#
# Log rows: a container writes 100 MB of 100-byte lines to stdout (`cat` of a 1 MB file 100 times: ~40 ms of the
# writer's own); run -d -> exit (the shim writing the json-file log), `run` attached and `exec` with the output
# to /dev/null (the CLI's output path), `logs` of those 100 MB with the docker CLI and with the engine's own CLI
# (to /dev/null and through a pipe), `logs --tail 10` and `logs --since <its end>` (finding the start in a large log).
#
#   BENCH_ONLY=registry bench/run.sh    # only the registry rows (BENCH_ONLY=engine: only the others;
#                                         BENCH_ONLY=events: only kill -> die event latency; BENCH_ONLY=logs: only
#                                         the log rows; BENCH_ONLY=runtime: berth-runc, runc and crun
#                                         through their command line and under containerd, bench/runtime.sh;
#                                         BENCH_ONLY=memory: only the memory rows, see below; BENCH_ONLY=build:
#                                         only the three build rows; BENCH_ONLY=phases: berthd's per-phase
#                                         account of run --rm, from its debug log)
#   BENCH_ONLY=ui bench/run.sh          # only the dashboard's memory and CPU rows (bench/ui.sh)
#   BENCH_ONLY=saveload bench/run.sh    # only save/load: the registry rows' 300 MB image saved to a file (-o) and
#                                         loaded back after an rmi (median of 3 each; berthd logs a `load breakdown`)
#
# Every figure of a run also goes to a file, one row a line (key, unit, berth, docker, podman, berth/docker ratio)
# under a header naming the commit, host and date: $BENCH_OUT, by default bench/results/<date>-<host>.tsv, so a
# regression shows as a changed ratio between two files. Podman gets a column where `podman` is installed (run,
# exec, 50 x run -d, save/load rows; through its own CLI, rootful).
#
# Memory rows: the daemon's RSS fresh (started, 5 s idle, nothing asked yet), after 50 `run -d` + `rm -f` (5 s
# idle), and after heavy use (5 s idle): with BENCH_ONLY=memory, 300 `run --rm busybox true` and a build (200 small
# files + 5 MB) after those; in a full run, every engine row before it (logs of 100 MB, starts, execs, 50 run -d, the
# three builds). Docker's figure is dockerd + containerd. Per running container's shim (Berth's berth-shim, Docker's
# containerd-shim), RSS and PSS with 50 running, 2 s after the last start.
#   CARGO=/tmp/cargo-locked bench/run.sh  # build through a wrapper (a shared machine's build lock)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BENCH_ONLY:-}" = ui ] && exec bench/ui.sh
N=${1:-30}
WORK=/tmp/berth-bench
RUN=/run/berth-bench   # the exec root on a tmpfs, as /run/berth is in production
B_SOCK=$WORK/berth.sock
D_SOCK=/run/peer-docker.sock
# One run at a time on a machine: the paths above (and Docker's) are fixed, and a second run's clean-up would pull
# the first one's data root from under it.
exec 9>/tmp/berth-bench.lock
flock -n 9 || { echo "bench/run.sh: another run holds /tmp/berth-bench.lock; try again when it is done" >&2; exit 1; }
if pgrep -f "data-root $WORK/data" >/dev/null || { [ -S "$D_SOCK" ] && DOCKER_HOST=unix://$D_SOCK docker version >/dev/null 2>&1; }; then
    echo "bench/run.sh: a berthd on $WORK or a dockerd on $D_SOCK is running (another bench?): not touching them" >&2
    exit 1
fi
# Mounts a berthd leaves under its data and exec roots (the volumes directory's own bind mount).
unmount_under() { awk -v p="$1" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; }
# A fresh private data root every run (nothing left from an earlier one skews it).
unmount_under "$WORK"; unmount_under "$RUN"
rm -rf "$WORK" "$RUN"
mkdir -p "$WORK"

ONLY=${BENCH_ONLY:-all}
# The load before this run's own work (the results file's header gives it beside the load at the end).
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
${CARGO:-cargo} build --release --locked -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
# The runtime rows (berth-runc beside runc and crun, directly and under containerd): a script of their own, under
# this run's lock and build.
if [ "$ONLY" = runtime ]; then exec bench/runtime.sh "$BIN" "$N"; fi

now_ns() { date +%s%N; }
# (printf, not print: mawk prints a number of 7 digits or more as 2.01588e+06.)
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {printf "%.0f\n", a[(NR+1)/2]} else {printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Proportional set size: shared pages (the binary's text, libc) divided among the processes that map them.
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

cleanup() {
    [ -n "${BERTHD_PID:-}" ] && { DOCKER_HOST=unix://$B_SOCK "$BIN/berth" rm -f $(DOCKER_HOST=unix://$B_SOCK "$BIN/berth" ps -aq) >/dev/null 2>&1 || true; kill "$BERTHD_PID" 2>/dev/null || true; }
    [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null || true
    [ -n "${DOCKERD_PID:-}" ] && { DOCKER_HOST=unix://$D_SOCK docker rmi -f bench-big:v1 "${REG_ADDR:-none}/bench/docker:v1" >/dev/null 2>&1 || true; }
    [ -n "${DOCKERD_PID:-}" ] && { DOCKER_HOST=unix://$D_SOCK docker rm -f $(DOCKER_HOST=unix://$D_SOCK docker ps -aq) >/dev/null 2>&1 || true; kill "$DOCKERD_PID" 2>/dev/null || true; }
    wait 2>/dev/null || true
    # The benchmark daemon's bridges, firewall table and namespace pins go with it.
    [ -n "${BERTHD_PID:-}" ] && "$BIN/berthd" --data-root "$WORK/data" --exec-root "$RUN" --remove-networking || true
    unmount_under "$WORK" || true; unmount_under "$RUN" || true
}
trap cleanup EXIT

start_berthd() {
    # Registry rows alone: info, for the pull's (and push's) breakdown lines berthd logs.
    "$BIN/berthd" --host "unix://$B_SOCK" --data-root "$WORK/data" --exec-root "$RUN" \
        --log-level "$(case "$ONLY" in registry|saveload) echo info;; phases) echo debug;; *) echo warn;; esac)" \
        >>"$WORK/berthd.log" 2>&1 &
    BERTHD_PID=$!
}
start_berthd
for _ in $(seq 100); do [ -S "$B_SOCK" ] && break; sleep 0.05; done

engines=(berth)
if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
    dockerd --host "unix://$D_SOCK" --data-root /var/lib/peer-docker --exec-root /run/peer-docker \
        --pidfile /run/peer-docker.pid >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 200); do DOCKER_HOST=unix://$D_SOCK docker version >/dev/null 2>&1 && break; sleep 0.1; done
    engines+=(docker)
else
    echo "note: dockerd is not installed (apt-get install docker.io): Docker's column is left empty"
fi

# Podman: a column of its own for the rows it can share (its CLI, no daemon), where it is installed.
if command -v podman >/dev/null 2>&1; then
    HAVE_PODMAN=1
else
    HAVE_PODMAN=
    echo "note: podman is not installed: its column is left empty"
fi

cli() { # engine args...
    local e=$1; shift
    case $e in
        berth) DOCKER_HOST=unix://$B_SOCK "$BIN/berth" "$@" ;;
        podman) podman "$@" ;;
        *) DOCKER_HOST=unix://$D_SOCK docker "$@" ;;
    esac
}

# `docker kill` → the `die` event at a subscriber, in µs, one line a run (issue 14's goal: a median under 5 ms). The
# subscriber (docker-py) is connected before the kill and asks from a second before it (`since`), so it cannot miss
# the event; it reads on its own thread, so the time runs from just before the kill request to the event's arrival
# there, whatever the kill request still does then (a `kill` of SIGKILL answers once the container's clean-up is
# done, as dockerd's, and that is its own row: the request's round trip, `killrtt`, printed as a second column).
kill_die_us() { # engine
    python3 - "$([ "$1" = berth ] && echo "$B_SOCK" || echo "$D_SOCK")" "$N" <<'PY'
import sys, time, queue, threading, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], timeout=30)
for _ in range(int(sys.argv[2])):
    ctr = c.containers.run("busybox", ["sleep", "600"], detach=True)
    # Subscribed (the response has begun) before the kill; `since` covers a subscription the daemon has not
    # registered yet.
    evs = c.events(decode=True, since=int(time.time()) - 1, filters={"container": ctr.id, "event": "die"})
    arrived = queue.Queue()
    def read():
        for _ev in evs:
            arrived.put(time.monotonic_ns())
            break
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t = time.monotonic_ns()
    ctr.kill()
    rtt = time.monotonic_ns() - t
    print((arrived.get(timeout=30) - t) // 1000, rtt // 1000)
    reader.join()
    evs.close()
    ctr.remove(force=True)
PY
}

kill_rows() { # engine
    local out; out=$(kill_die_us "$1")
    R[$1,killdie]=$(awk '{print $1}' <<<"$out" | median)
    R[$1,killrtt]=$(awk '{print $2}' <<<"$out" | median)
}

# The log rows of engine $1 (see the top). Times in ms.
LOG_LINE=$(printf '%099d' 0)
LOG_WRITER="yes $LOG_LINE | head -c 1000000 > /tmp/l; set --; for i in \$(seq 100); do set -- \"\$@\" /tmp/l; done; cat \"\$@\""
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
log_rows() { # engine
    local e=$1 s id
    cli "$e" rm -f bench-logs >/dev/null 2>&1 || true
    s=$(now_ns); id=$(cli "$e" run -d --network none --name bench-logs busybox sh -c "$LOG_WRITER"); cli "$e" wait "$id" >/dev/null
    R[$e,logwrite]=$(ms_since "$s")
    [ "$(cli "$e" logs bench-logs 2>/dev/null | wc -c)" = 100000000 ] || echo "note: $e: logs did not give back 100000000 bytes" >&2
    # The docker CLI against either daemon: the daemon's side of `logs`.
    s=$(now_ns); DOCKER_HOST=unix://$([ "$e" = berth ] && echo "$B_SOCK" || echo "$D_SOCK") docker logs bench-logs >/dev/null 2>&1
    R[$e,logsdocker]=$(ms_since "$s")
    s=$(now_ns); cli "$e" logs bench-logs >/dev/null 2>&1; R[$e,logscli]=$(ms_since "$s")
    s=$(now_ns); cli "$e" logs bench-logs 2>&1 | cat >/dev/null; R[$e,logspipe]=$(ms_since "$s")
    R[$e,logstail]=$(for _ in $(seq 10); do s=$(now_ns); cli "$e" logs --tail 10 bench-logs >/dev/null 2>&1; echo $(( ($(now_ns) - s) / 1000 )); done | median)
    local end; end=$(cli "$e" inspect -f '{{.State.FinishedAt}}' bench-logs)
    R[$e,logssince]=$(for _ in $(seq 10); do s=$(now_ns); cli "$e" logs --since "$end" bench-logs >/dev/null 2>&1; echo $(( ($(now_ns) - s) / 1000 )); done | median)
    cli "$e" rm -f bench-logs >/dev/null
    s=$(now_ns); cli "$e" run --rm --network none busybox sh -c "$LOG_WRITER" >/dev/null; R[$e,logrun]=$(ms_since "$s")
    cli "$e" run -d --network none --name bench-logs-exec busybox sleep 600 >/dev/null
    s=$(now_ns); cli "$e" exec bench-logs-exec sh -c "$LOG_WRITER" >/dev/null; R[$e,logexec]=$(ms_since "$s")
    cli "$e" rm -f bench-logs-exec >/dev/null
}

# The daemon's RSS in KiB (Docker: dockerd + containerd).
daemon_rss() { # engine
    local e=$1 rss
    rss=$(rss_kib "$([ "$e" = berth ] && echo "$BERTHD_PID" || echo "$DOCKERD_PID")")
    if [ "$e" = docker ]; then
        local cpid; cpid=$(pgrep -x containerd | head -1 || true)
        [ -n "$cpid" ] && rss=$((rss + $(rss_kib "$cpid")))
    fi
    echo "$rss"
}
# Idle: berthd gives back what a burst of work left (heap, the pages of its code) once its API has been quiet for
# 3 s; dockerd and containerd get the same time.
IDLE=5

# 50 x `run -d`: how long they take, RSS and PSS of each running container's shim, then `rm -f` and the daemon's RSS.
fifty_rows() { # engine
    local e=$1 s ids shims p total=0 ptotal=0 count=0
    s=$(now_ns)
    ids=$(for _ in $(seq 50); do cli "$e" run -d busybox sleep 600; done)
    R[$e,fifty]=$(( ($(now_ns) - s) / 1000000 ))
    # Running, not starting: berth-shim gives back what its start touched once it has been idle for a second.
    sleep 2
    if [ "$e" = berth ]; then
        shims=$(pgrep -f "berth-shim start $RUN" || true)
    else
        shims=$(pgrep -f containerd-shim || true)
    fi
    for p in $shims; do total=$((total + $(rss_kib "$p"))); ptotal=$((ptotal + $(pss_kib "$p"))); count=$((count + 1)); done
    R[$e,shim]=$([ "$count" -gt 0 ] && echo $((total / count)) || echo n/a)
    R[$e,shimpss]=$([ "$count" -gt 0 ] && echo $((ptotal / count)) || echo n/a)
    cli "$e" rm -f $ids >/dev/null
    sleep "$IDLE"
    R[$e,rss]=$(daemon_rss "$e")
}

build_rows() { # engine
    local e=$1 s ctx tag
    # Builds: ~8 steps, a context of 2,000 small files and one 50 MB file; cold, fully cached, one file changed.
    # Docker's column is its classic builder (what the docker CLI uses without buildx).
    ctx=$WORK/build-ctx-$e
    rm -rf "$ctx"; mkdir -p "$ctx/small"
    for i in $(seq 2000); do echo "file $i" > "$ctx/small/f$i"; done
    head -c 50000000 /dev/urandom > "$ctx/big.bin"
    cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
ENV APP=/app
WORKDIR /app
COPY big.bin /app/big.bin
RUN echo prepared > /app/prepared
COPY small/ /app/small/
RUN ls /app/small | wc -l > /app/count
CMD ["cat", "/app/count"]
DF
    tag=bench-build-$e
    bcli() { if [ "$e" = berth ]; then cli "$e" build --progress=plain -q "$@"; else DOCKER_BUILDKIT=0 cli "$e" build -q "$@"; fi; }
    bcli --no-cache -t "$tag" "$ctx" >/dev/null 2>&1   # warm-up (the base image's first use)
    cli "$e" rmi "$tag" >/dev/null 2>&1
    s=$(now_ns); bcli --no-cache -t "$tag" "$ctx" >/dev/null 2>&1; R[$e,bcold]=$(( ($(now_ns) - s) / 1000000 ))
    s=$(now_ns); bcli -t "$tag" "$ctx" >/dev/null 2>&1; R[$e,bcached]=$(( ($(now_ns) - s) / 1000000 ))
    echo changed > "$ctx/small/f1000"
    s=$(now_ns); bcli -t "$tag" "$ctx" >/dev/null 2>&1; R[$e,bchange]=$(( ($(now_ns) - s) / 1000000 ))
    cli "$e" rmi "$tag" >/dev/null 2>&1
    rm -rf "$ctx"
}

# 50 x `run -d` from 10 clients at once (5 each), until the last has answered; then `rm -f` of them all.
fifty_parallel_rows() { # engine
    local e=$1 s c out=$WORK/fifty-ids-$1 pids=()
    rm -f "$out".*
    s=$(now_ns)
    for c in $(seq 10); do
        ( for _ in $(seq 5); do cli "$e" run -d busybox sleep 600; done >"$out.$c" ) &
        pids+=($!)
    done
    # These clients only (a bare `wait` would wait for the daemons this script started too).
    wait "${pids[@]}"
    R[$e,fifty10]=$(( ($(now_ns) - s) / 1000000 ))
    [ "$(cat "$out".* | wc -l)" = 50 ] || echo "note: $e: not 50 containers from the parallel run -d" >&2
    cli "$e" rm -f $(cat "$out".*) >/dev/null
    rm -f "$out".*
}

# save -o of the 300 MB image (3 layers) and load -i of that file after an rmi: medians of 3, in ms.
saveload_rows() { # engine
    local e=$1 s file=$WORK/saved-$1.tar saves=() loads=()
    cli "$e" rmi -f bench-big:v1 >/dev/null 2>&1 || true
    cli "$e" load -i "$WORK/big.tar" >/dev/null
    for _ in 1 2 3; do
        rm -f "$file"
        s=$(now_ns); cli "$e" save -o "$file" bench-big:v1; saves+=($(( ($(now_ns) - s) / 1000000 )))
        cli "$e" rmi bench-big:v1 >/dev/null
        s=$(now_ns); cli "$e" load -i "$file" >/dev/null; loads+=($(( ($(now_ns) - s) / 1000000 )))
    done
    R[$e,save]=$(printf '%s\n' "${saves[@]}" | median)
    R[$e,load]=$(printf '%s\n' "${loads[@]}" | median)
    cli "$e" rmi -f bench-big:v1 >/dev/null 2>&1 || true
    rm -f "$file"
}

declare -A R
if [ "$ONLY" = all ] || [ "$ONLY" = engine ] || [ "$ONLY" = memory ]; then
    sleep "$IDLE"
    for e in "${engines[@]}"; do R[$e,rssfresh]=$(daemon_rss "$e"); done
fi
for e in "${engines[@]}"; do
    [ "$ONLY" = registry ] && break
    [ "$ONLY" = saveload ] && break
    cli "$e" image inspect busybox:latest >/dev/null 2>&1 || \
        BERTH=$([ "$e" = berth ] && echo "$BIN/berth" || echo docker) \
        DOCKER_HOST=unix://$([ "$e" = berth ] && echo "$B_SOCK" || echo "$D_SOCK") contrib/mkimage-busybox.sh >/dev/null
    cli "$e" run --rm busybox true   # warm-up
    if [ "$ONLY" = events ]; then kill_rows "$e"; continue; fi
    if [ "$ONLY" = phases ]; then
        # berthd's own account of where a start's time goes (debug log): N runs with each kind of network.
        [ "$e" = berth ] && for net in none bridge; do
            for _ in $(seq "$N"); do cli "$e" run --rm --network "$net" busybox true; done
            grep -h 'phases: ' "$WORK/berthd.log" | sed 's/.*phases: //' >"$WORK/phases-$net.txt"
            : >"$WORK/berthd.log"
        done
        continue
    fi
    if [ "$ONLY" = build ]; then build_rows "$e"; continue; fi
    if [ "$ONLY" = memory ]; then
        fifty_rows "$e"
        # Heavy use: 300 create/start/remove cycles and a build, then idle.
        for _ in $(seq 300); do cli "$e" run --rm busybox true; done
        ctx=$WORK/build-ctx-$e
        rm -rf "$ctx"; mkdir -p "$ctx/small"
        for i in $(seq 200); do echo "file $i" > "$ctx/small/f$i"; done
        head -c 5000000 /dev/urandom > "$ctx/big.bin"
        printf 'FROM busybox\nCOPY . /ctx\nRUN ls /ctx/small | wc -l > /count\n' > "$ctx/Dockerfile"
        DOCKER_BUILDKIT=0 cli "$e" build -q --no-cache -t "bench-mem-$e" "$ctx" >/dev/null 2>&1
        cli "$e" rmi "bench-mem-$e" >/dev/null 2>&1
        rm -rf "$ctx"
        sleep "$IDLE"
        R[$e,rssused]=$(daemon_rss "$e")
        continue
    fi
    log_rows "$e"
    [ "$ONLY" = logs ] && continue

    R[$e,run]=$(for _ in $(seq "$N"); do s=$(now_ns); cli "$e" run --rm --network none busybox true; echo $(( ($(now_ns) - s) / 1000 )); done | median)
    R[$e,runnet]=$(for _ in $(seq "$N"); do s=$(now_ns); cli "$e" run --rm busybox true; echo $(( ($(now_ns) - s) / 1000 )); done | median)

    # Published-port throughput: 1 GiB from the host through 127.0.0.1:PORT into busybox nc in the container.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cli "$e" run -d --name bench-nc -p "127.0.0.1:$port:5001" busybox sh -c 'nc -l -p 5001 >/dev/null' >/dev/null
    # Docker's userland proxy accepts at once and resets the connection while nothing listens behind it yet.
    sleep 1
    R[$e,tput]=$(python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        time.sleep(0.05)
chunk = bytes(1 << 20)
t = time.monotonic()
for _ in range(1024):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(int(1024 / (time.monotonic() - t)))
PY
)
    cli "$e" rm -f bench-nc >/dev/null

    cli "$e" run -d --name bench-exec busybox sleep 600 >/dev/null
    R[$e,exec]=$(for _ in $(seq "$N"); do s=$(now_ns); cli "$e" exec bench-exec true; echo $(( ($(now_ns) - s) / 1000 )); done | median)
    cli "$e" rm -f bench-exec >/dev/null

    kill_rows "$e"

    fifty_rows "$e"
    fifty_parallel_rows "$e"

    build_rows "$e"
    sleep "$IDLE"
    R[$e,rssused]=$(daemon_rss "$e")

    if [ "$e" = berth ]; then
        # A daemon restart with 50 containers running: kill -9, start, until the API answers (which it does once
        # every container is reconciled). Last, so that the rows above measure one daemon's life.
        ids=$(for _ in $(seq 50); do cli "$e" run -d busybox sleep 600; done)
        kill -9 "$BERTHD_PID"; wait "$BERTHD_PID" 2>/dev/null || true
        s=$(now_ns); start_berthd
        for _ in $(seq 2000); do cli "$e" version >/dev/null 2>&1 && break; sleep 0.005; done
        R[$e,restart]=$(( ($(now_ns) - s) / 1000000 ))
        cli "$e" rm -f $ids >/dev/null
    fi
done

# Podman's rows (where it is installed): starts, exec, 50 x run -d (sequential and 10 clients), through its CLI.
if [ -n "$HAVE_PODMAN" ] && { [ "$ONLY" = all ] || [ "$ONLY" = engine ]; }; then
    e=podman
    if podman image exists busybox:latest || BERTH=podman contrib/mkimage-busybox.sh >/dev/null; then
        cli "$e" run --rm busybox true
        R[$e,run]=$(for _ in $(seq "$N"); do s=$(now_ns); cli "$e" run --rm --network none busybox true; echo $(( ($(now_ns) - s) / 1000 )); done | median)
        R[$e,runnet]=$(for _ in $(seq "$N"); do s=$(now_ns); cli "$e" run --rm busybox true; echo $(( ($(now_ns) - s) / 1000 )); done | median)
        cli "$e" run -d --name bench-exec busybox sleep 600 >/dev/null
        R[$e,exec]=$(for _ in $(seq "$N"); do s=$(now_ns); cli "$e" exec bench-exec true; echo $(( ($(now_ns) - s) / 1000 )); done | median)
        cli "$e" rm -f bench-exec >/dev/null
        s=$(now_ns); ids=$(for _ in $(seq 50); do cli "$e" run -d busybox sleep 600; done); R[$e,fifty]=$(( ($(now_ns) - s) / 1000000 ))
        cli "$e" rm -f -t 0 $ids >/dev/null
        fifty_parallel_rows "$e"
    else
        echo "note: podman: no busybox image (contrib/mkimage-busybox.sh failed): its column is left empty" >&2
    fi
fi

if [ "$ONLY" = all ] || [ "$ONLY" = registry ] || [ "$ONLY" = saveload ]; then
    # The image: 3 layers of 100 MB from /dev/urandom, in docker's save format, loaded into every engine.
    python3 - "$WORK/big.tar" <<'PY'
import hashlib, io, json, os, sys, tarfile
out = tarfile.open(sys.argv[1], "w")
diff_ids, layers = [], []
for i in range(3):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(100 * 1000 * 1000)
        ti = tarfile.TarInfo(f"data{i}.bin"); ti.size = len(data); ti.mode = 0o644
        t.addfile(ti, io.BytesIO(data))
    b = buf.getvalue()
    h = hashlib.sha256(b).hexdigest()
    ti = tarfile.TarInfo(f"{h}/layer.tar"); ti.size = len(b)
    out.addfile(ti, io.BytesIO(b))
    diff_ids.append("sha256:" + h); layers.append(f"{h}/layer.tar")
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/data0.bin"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": [{"created_by": "bench"}] * 3}).encode()
ch = hashlib.sha256(config).hexdigest()
for name, data in [(f"{ch}.json", config),
                   ("manifest.json", json.dumps([{"Config": f"{ch}.json", "RepoTags": ["bench-big:v1"], "Layers": layers}]).encode())]:
    ti = tarfile.TarInfo(name); ti.size = len(data); out.addfile(ti, io.BytesIO(data))
out.close()
PY
fi
if [ "$ONLY" = all ] || [ "$ONLY" = saveload ]; then
    for e in "${engines[@]}"; do saveload_rows "$e"; done
    if [ -n "$HAVE_PODMAN" ]; then saveload_rows podman || echo "note: podman: the save/load rows failed" >&2; fi
fi
if [ "$ONLY" = all ] || [ "$ONLY" = registry ]; then
    REG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    REG_ADDR=127.0.0.1:$REG_PORT
    if [ "${BENCH_REGISTRY:-berth}" = distribution ]; then
        printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
            "$WORK/registry" "$REG_ADDR" >"$WORK/registry.yml"
        /usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
    else
        "$BIN/berth" registry serve --addr "$REG_ADDR" --root "$WORK/registry" >"$WORK/registry.log" 2>&1 &
    fi
    REG_PID=$!
    for _ in $(seq 100); do curl -sf "http://$REG_ADDR/v2/" >/dev/null && break; sleep 0.05; done
    MB=300
    secs() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN {printf "%.3f", (b-a)/1e9}'; }
    for e in "${engines[@]}"; do
        ref=$REG_ADDR/bench/$e:v1
        cli "$e" rmi -f "$ref" bench-big:v1 >/dev/null 2>&1 || true
        cli "$e" load -i "$WORK/big.tar" >/dev/null
        cli "$e" tag bench-big:v1 "$ref"
        s=$(now_ns); cli "$e" push "$ref" >/dev/null; t=$(secs "$s")
        R[$e,push]=$(awk -v t="$t" -v m=$MB 'BEGIN {printf "%.1f", m/t}')
        cli "$e" rmi -f "$ref" bench-big:v1 >/dev/null
        s=$(now_ns); cli "$e" pull "$ref" >/dev/null; t=$(secs "$s")
        R[$e,pull]=$(awk -v t="$t" -v m=$MB 'BEGIN {printf "%.1f", m/t}')
        cli "$e" rmi -f "$ref" >/dev/null
    done
fi

# Every row also goes to $BENCH_OUT (tab-separated, one row a line, under a header naming the run).
BENCH_OUT=${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-$(hostname -s).tsv}
mkdir -p "$(dirname "$BENCH_OUT")"
{
    echo "# bench/run.sh BENCH_ONLY=$ONLY N=$N commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes) host $(hostname -s) $(date -u +%Y-%m-%dT%H:%M:%SZ) cores $(nproc) load at start $LOAD_AT_START at end $(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'key\tunit\tberth\tdocker\tpodman\tratio\tmetric\n'
} >"$BENCH_OUT"
row() { # label key unit
    [ -z "${R[berth,$2]:-}${R[docker,$2]:-}${R[podman,$2]:-}" ] && return
    local b=${R[berth,$2]:-n/a} d=${R[docker,$2]:-n/a} p=${R[podman,$2]:-n/a} ratio=n/a
    if [[ "$b" =~ ^[0-9.]+$ && "$d" =~ ^[0-9.]+$ && "$d" != 0 ]]; then ratio=$(awk -v b="$b" -v d="$d" 'BEGIN {printf "%.3f", b/d}'); fi
    if [ -n "$HAVE_PODMAN" ]; then
        printf "%-44s %12s %12s %12s %8s\n" "$1 ($3)" "$b" "$d" "$p" "$ratio"
    else
        printf "%-44s %12s %12s %8s\n" "$1 ($3)" "$b" "$d" "$ratio"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$b" "$d" "$p" "$ratio" "$1" >>"$BENCH_OUT"
}
if [ -n "$HAVE_PODMAN" ]; then
    printf "%-44s %12s %12s %12s %8s\n" "metric" "berth" "docker" "podman" "ratio"
else
    printf "%-44s %12s %12s %8s\n" "metric" "berth" "docker" "ratio"
fi
row "run --rm --network none busybox true, median" run us
row "run --rm busybox true (default net), median" runnet us
for e in "${engines[@]}"; do
    [[ "${R[$e,runnet]:-}" =~ ^[0-9.]+$ && "${R[$e,run]:-}" =~ ^[0-9.]+$ ]] && \
        R[$e,netcost]=$(awk -v a="${R[$e,runnet]}" -v b="${R[$e,run]}" 'BEGIN {printf "%d", a-b}')
done
row "bridge set-up cost (default net - none)" netcost us
row "published port 127.0.0.1 -> container, 1 GiB" tput MiB/s
row "exec true, median" exec us
row "kill -> die event at a subscriber, median" killdie us
row "kill (SIGKILL) request round trip, median" killrtt us
row "50 x run -d, total" fifty ms
row "50 x run -d, 10 clients in parallel, total" fifty10 ms
row "daemon restart, 50 running: kill -9 -> API answers" restart ms
row "daemon idle RSS, fresh (dockerd+containerd)" rssfresh KiB
row "daemon idle RSS after 50 run -d + rm -f" rss KiB
row "daemon idle RSS after heavy use (see top)" rssused KiB
row "RSS per running container's shim (50 running)" shim KiB
row "PSS per running container's shim (50 running)" shimpss KiB
row "build, cold (8 steps, 2,000 files + 50 MB)" bcold ms
row "build, fully cached rebuild" bcached ms
row "build, one file changed" bchange ms
row "100 MB to stdout: run -d -> exit (json-file)" logwrite ms
row "100 MB: run attached, > /dev/null" logrun ms
row "100 MB: exec, > /dev/null" logexec ms
row "logs of 100 MB, docker CLI, > /dev/null" logsdocker ms
row "logs of 100 MB, own CLI, > /dev/null" logscli ms
row "logs of 100 MB, own CLI, | cat > /dev/null" logspipe ms
row "logs --tail 10 of 100 MB, median" logstail us
row "logs --since <end> of 100 MB, median" logssince us
row "push 300 MB in 3 layers to a loopback registry" push MB/s
row "pull 300 MB in 3 layers (rmi, then pull)" pull MB/s
row "save 300 MB image to a file (-o), median" save ms
row "load it back (rmi first), median" load ms
# Where a start's time goes in berthd (BENCH_ONLY=phases): the median of each phase, in µs, per operation.
if [ "$ONLY" = phases ]; then
    for net in none bridge; do
        echo "run --rm --network $net busybox true: berthd's phases (median µs over $N runs)"
        python3 - "$WORK/phases-$net.txt" "$net" "$BENCH_OUT" <<'PY'
import sys, collections
parts = collections.OrderedDict()
for line in open(sys.argv[1]):
    op, _id, *kv = line.split()
    for item in kv:
        k, v = item.split("=")
        parts.setdefault((op, k), []).append(int(v))
with open(sys.argv[3], "a") as out:
    for (op, k), vs in parts.items():
        vs.sort()
        print(f"  {op + ' ' + k:24} {vs[len(vs) // 2]:8}")
        out.write(f"phase:{sys.argv[2]}:{op}:{k}\tus\t{vs[len(vs) // 2]}\t\t\t\tberthd's {op} phase {k}, --network {sys.argv[2]}, median\n")
PY
    done
fi
# Where Berth's push and pull spend their time (berthd logs it at info: BENCH_ONLY=registry).
if [ "$ONLY" = registry ] || [ "$ONLY" = saveload ]; then
    grep -ho '\(p[a-z]*\|load\) breakdown.*' "$WORK/berthd.log" | sed 's/^/berth /' || echo "berth: no breakdown in $WORK/berthd.log"
fi
echo "figures saved to $BENCH_OUT"
