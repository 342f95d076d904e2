#!/bin/bash
# The dashboard's cost (issue 19), with a private release-built berthd (BENCH_ONLY=ui bench/run.sh runs this):
#   - idle RSS of berthd without --ui, with --ui before any page, and with --ui after every page was loaded once in
#     headless Chromium (the goal: nothing added when off, under 3 MiB when on);
#   - berthd's CPU time while the containers page (100 sleeping busybox containers, their sparklines fed by one stats
#     stream) is open in headless Chromium for 60 s, from /proc/<pid>/stat (the goal: under 2 % of a core), and the
#     same 60 s with no page open, for comparison.
# Needs chromium, chromium-driver and python3-selenium (Debian's /usr/bin/python3). Indicative on a shared machine:
# a quiet run is `BENCH_ONLY=ui bench/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=/tmp/berth-bench-ui
RUN=/run/berth-bench-ui
SOCK=$WORK/berth.sock
SECS=${BENCH_UI_SECS:-60}
exec 9>/tmp/berth-bench.lock
flock -n 9 || { echo "bench/ui.sh: another run holds /tmp/berth-bench.lock; try again when it is done" >&2; exit 1; }
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$tool" ] || { echo "bench/ui.sh: $tool is missing (apt-get install chromium chromium-driver)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import selenium' || { echo "bench/ui.sh: python3-selenium is missing" >&2; exit 1; }
unmount_under() { awk -v p="$1" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; }
unmount_under "$WORK"; unmount_under "$RUN"
rm -rf "$WORK" "$RUN"
mkdir -p "$WORK"
${CARGO:-cargo} build --release --locked -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
cli() { DOCKER_HOST=unix://$SOCK "$BIN/berth" "$@"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

PID=
start() { # extra berthd args...
    "$BIN/berthd" --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$RUN" --log-level warn "$@" \
        >>"$WORK/berthd.log" 2>&1 &
    PID=$!
    for _ in $(seq 200); do cli version >/dev/null 2>&1 && return; sleep 0.05; done
    echo "bench/ui.sh: berthd did not answer" >&2; exit 1
}
stop() {
    [ -n "$PID" ] || return 0
    kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=
}
cleanup() {
    if [ -n "$PID" ]; then cli rm -f $(cli ps -aq) >/dev/null 2>&1 || true; fi
    stop
    "$BIN/berthd" --data-root "$WORK/data" --exec-root "$RUN" --remove-networking >/dev/null 2>&1 || true
    unmount_under "$WORK" || true; unmount_under "$RUN" || true
}
trap cleanup EXIT

# The browser: log in, then either every page once (`pages`) or the containers page for SECS seconds (`hold`).
browse() { # pages|hold
    local login
    login=$(cli ui | tail -1 | tr -d '[:space:]')
    /usr/bin/python3 - "$1" "$login" "$SECS" <<'PY'
import sys, tempfile, shutil, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
mode, login, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = login.split("/login")[0]
profile = tempfile.mkdtemp(prefix="berth-bench-ui-")
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
          f"--user-data-dir={profile}"]:
    opts.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    d.get(login)
    WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "containers"))
    if mode == "pages":
        for p in ["/", "/images", "/volumes", "/networks", "/compose", "/events", "/system"]:
            d.get(base + p)
            time.sleep(2)
        d.get(base + "/")
        link = d.find_element(By.CSS_SELECTOR, "#containers tbody a")
        link.click()
        time.sleep(3)
    else:
        print("open", flush=True)
        time.sleep(secs)
        n = int(d.find_element(By.CSS_SELECTOR, "#containers tbody").get_attribute("data-samples") or 0)
        print(f"samples {n}", flush=True)
finally:
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)
PY
}

start
cli image inspect busybox:latest >/dev/null 2>&1 || BERTH="$BIN/berth" DOCKER_HOST=unix://$SOCK contrib/mkimage-busybox.sh >/dev/null
cli run -d --name bench-ui-one busybox sleep 3600 >/dev/null
# Idle: berthd gives memory back once its API has been quiet for 3 s (up to 6 s after the last request: memory.rs).
IDLE_WAIT=7
sleep "$IDLE_WAIT"
RSS_OFF=$(rss_kib "$PID")
stop

start --ui "127.0.0.1:$PORT"
sleep "$IDLE_WAIT"
RSS_ON=$(rss_kib "$PID")
browse pages >/dev/null
sleep "$IDLE_WAIT"
RSS_PAGES=$(rss_kib "$PID")

for i in $(seq 99); do cli run -d --name "bench-ui-$i" busybox sleep 3600 >/dev/null; done
sleep 5
t0=$(cpu_ticks "$PID"); s=$(date +%s%N)
sleep "$SECS"
IDLE=$(awk -v a="$t0" -v b="$(cpu_ticks "$PID")" -v s="$s" -v e="$(date +%s%N)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.2f", 100 * (b - a) / hz / ((e - s) / 1e9)}')
# From the page's first sample on: the page and its streams opened, then SECS seconds.
browse hold > "$WORK/hold.out" &
BR=$!
for _ in $(seq 600); do grep -q open "$WORK/hold.out" 2>/dev/null && break; sleep 0.1; done
t0=$(cpu_ticks "$PID"); s=$(date +%s%N)
wait "$BR"
PAGE=$(awk -v a="$t0" -v b="$(cpu_ticks "$PID")" -v s="$s" -v e="$(date +%s%N)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.2f", 100 * (b - a) / hz / ((e - s) / 1e9)}')
SAMPLES=$(awk '/^samples/ {print $2}' "$WORK/hold.out")

printf "%-66s %10s\n" "metric" "berth"
printf "%-66s %10s\n" "berthd idle RSS, 1 container, without --ui (KiB)" "$RSS_OFF"
printf "%-66s %10s\n" "berthd idle RSS, 1 container, --ui, no page loaded (KiB)" "$RSS_ON"
printf "%-66s %10s\n" "berthd idle RSS, 1 container, --ui, after every page (KiB)" "$RSS_PAGES"
printf "%-66s %10s\n" "  the dashboard's share, after every page (KiB)" "$((RSS_PAGES - RSS_OFF))"
printf "%-66s %10s\n" "berthd CPU, 100 sleeping containers, no page (% of a core)" "$IDLE"
printf "%-66s %10s\n" "berthd CPU, 100 containers, containers page open ${SECS} s (% of a core)" "$PAGE"
printf "%-66s %10s\n" "  sparkline samples the page received in that time" "${SAMPLES:-n/a}"
