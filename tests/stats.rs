//! `GET /containers/{id}/stats` and `berth stats`: a container with a memory limit and some CPU, memory and network
//! activity, read through the API (stream=false, one-shot, a stream of several objects), the real docker CLI, the
//! Docker SDK for Python and the berth CLI; a stopped container's zeros; streams that go on with zeros once their
//! container stops and end when it is removed.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_integration::*;
use serde_json::Value;

/// Go's zero time, which Docker writes for a sample that was not taken.
const ZERO: &str = "0001-01-01T00:00:00Z";

fn get_json(d: &Berthd, path: &str) -> Value {
    let (status, _, body) = api(d, "GET", path, b"");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// A streamed stats request (HTTP/1.0: the body runs until the daemon closes it): its lines, read with a bound.
fn open_stream(d: &Berthd, path: &str) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    // A generous bound: one object a second is due; this catches a stream that stalls.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.0 200") || line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return r;
        }
    }
}

fn next_object(r: &mut BufReader<UnixStream>) -> Option<Value> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => Some(serde_json::from_str(&line).unwrap()),
        Err(e) => panic!("reading the stats stream: {e}"),
    }
}

fn cpu_total(v: &Value, key: &str) -> u64 {
    v[key]["cpu_usage"]["total_usage"].as_u64().unwrap()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn stats_of_a_busy_container() {
    require_root();
    let d = daemon_with_busybox();
    // Some CPU, 8 MiB in /dev/shm (memory the container pays for), a few packets to the gateway, then idle.
    let script = "i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; \
                  dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>/dev/null; \
                  gw=$(ip route | awk '/default/ {print $3}'); ping -c 2 -W 1 $gw >/dev/null 2>&1; \
                  echo ready; sleep 300";
    let id = d.ok(&["run", "-d", "--name", "busy", "-m", "64m", "busybox", "sh", "-c", script]).trim().to_string();
    assert!(d.eventually(60, || d.ok(&["logs", "busy"]).contains("ready")), "{}", tail(&d.log(), 20));

    // stream=false: two samples a second apart, precpu filled (as dockerd).
    let v = get_json(&d, "/containers/busy/stats?stream=false");
    assert_eq!(v["name"], "/busy");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["num_procs"], 0);
    let read = v["read"].as_str().unwrap();
    let preread = v["preread"].as_str().unwrap();
    assert!(read != ZERO && preread != ZERO && preread < read, "{read} {preread}");
    let total = cpu_total(&v, "cpu_stats");
    let pre_total = cpu_total(&v, "precpu_stats");
    assert!(total > 0 && pre_total > 0 && pre_total <= total, "{total} {pre_total}");
    let system = v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap();
    let pre_system = v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap();
    // About a second of every CPU's time passed between the samples (system usage counts all CPUs).
    let cpus = v["cpu_stats"]["online_cpus"].as_u64().unwrap();
    assert!(cpus >= 1);
    assert!(system > pre_system, "{system} {pre_system}");
    assert!(v["cpu_stats"]["throttling_data"]["periods"].is_u64(), "{v}");
    let mem = &v["memory_stats"];
    assert_eq!(mem["limit"], 64u64 << 20, "{mem}");
    assert!(mem["usage"].as_u64().unwrap() >= 8 << 20, "the 8 MiB in /dev/shm: {mem}");
    let stats = mem["stats"].as_object().unwrap();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert!(stats.contains_key("inactive_file") && stats.contains_key("anon"), "{mem}");
    } else {
        assert!(stats.contains_key("total_inactive_file") && stats.contains_key("cache"), "{mem}");
        assert!(mem["max_usage"].as_u64().unwrap() >= mem["usage"].as_u64().unwrap(), "{mem}");
    }
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["blkio_stats"].as_object().unwrap().contains_key("io_service_bytes_recursive"), "{v}");
    let eth0 = &v["networks"]["eth0"];
    assert!(eth0["tx_bytes"].as_u64().unwrap() > 0 && eth0["tx_packets"].as_u64().unwrap() > 0, "{v}");
    assert!(v["networks"].get("lo").is_none(), "{v}");

    // one-shot: at once, no precpu; with stream=true it is a bad request, as dockerd.
    let t = Instant::now();
    let v = get_json(&d, "/containers/busy/stats?stream=false&one-shot=true");
    assert_eq!(v["preread"], ZERO);
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert!(cpu_total(&v, "cpu_stats") > 0);
    assert!(t.elapsed() < Duration::from_millis(900), "one-shot waits for no second sample: {:?}", t.elapsed());
    let (status, _, body) = api(&d, "GET", "/containers/busy/stats?stream=true&one-shot=true", b"");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    // A stream: the first object has no precpu, each next one carries the one before.
    let mut r = open_stream(&d, "/containers/busy/stats");
    let first = next_object(&mut r).unwrap();
    assert_eq!(first["preread"], ZERO);
    assert_eq!(first["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    let second = next_object(&mut r).unwrap();
    let third = next_object(&mut r).unwrap();
    assert_eq!(second["precpu_stats"], first["cpu_stats"]);
    assert_eq!(second["preread"], first["read"]);
    assert_eq!(third["precpu_stats"], second["cpu_stats"]);
    drop(r);

    // The docker CLI.
    match d.docker(&["stats", "--no-stream", "--format", "{{json .}}", "busy"]) {
        None => skip_missing_tool("no docker CLI: docker stats not checked"),
        Some(out) => {
            assert!(out.status.success(), "{}", stderr(&out));
            let row: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
            assert_eq!(row["Name"], "busy");
            assert_eq!(row["ID"], &id[..12]);
            assert!(row["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"), "{row}");
            assert!(row["CPUPerc"].as_str().unwrap().ends_with('%'), "{row}");
            assert_ne!(row["NetIO"], "0B / 0B", "{row}");
            assert!(row["PIDs"].as_str().unwrap().parse::<u64>().unwrap() >= 1, "{row}");
            let table = stdout(&d.docker(&["stats", "--no-stream"]).unwrap());
            assert!(table.starts_with("CONTAINER ID   NAME") && table.contains(" busy "), "{table}");
            // Streaming: the docker CLI reads the stream and shows a percentage from each object's precpu.
            let mut child = Command::new(docker_cli().unwrap())
                .args(["stats", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}", "busy"])
                .env("DOCKER_HOST", d.host())
                .env("DOCKER_CONFIG", d.dir.join("docker-config"))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let (mut seen, mut line) = (0, String::new());
            let t = Instant::now();
            while seen < 2 && t.elapsed() < Duration::from_secs(20) {
                line.clear();
                if out.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                if line.contains("busy ") && line.contains("% ") && line.contains(" / 64MiB") {
                    seen += 1;
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(seen >= 2, "docker stats (streaming) showed {seen} rows of busy; last line {line:?}");
        }
    }

    // The Docker SDK for Python.
    let py = "import docker,json,sys\n\
              c = docker.DockerClient(base_url=sys.argv[1]).containers.get('busy')\n\
              print(json.dumps(c.stats(stream=False)))";
    match Command::new("python3").args(["-c", py, &d.host()]).output() {
        Ok(out) if out.status.success() => {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["name"], "/busy");
            assert_eq!(v["memory_stats"]["limit"], 64u64 << 20);
            assert!(cpu_total(&v, "precpu_stats") > 0, "stream=False fills precpu: {v}");
        }
        Ok(out) if stderr(&out).contains("No module named 'docker'") => {
            skip_missing_tool("no docker SDK for Python (python3-docker): container.stats not checked")
        }
        Ok(out) => panic!("docker-py stats failed: {}", stderr(&out)),
        Err(e) => skip_missing_tool(&format!("no python3 ({e}): container.stats not checked")),
    }

    // The berth CLI.
    let table = d.ok(&["stats", "--no-stream"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).as_deref(),
        Some("CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS"),
        "{table}"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id[..12]) && row.contains(" busy ") && row.contains(" / 64MiB "), "{table}");
    let json = d.ok(&["container", "stats", "--no-stream", "--no-trunc", "--format", "json", "busy"]);
    let row: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["ID"], id.as_str());

    // The live table (not a terminal: one table after another, no screen control), ended by its PID.
    let mut child = d.berth_cmd().args(["stats"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut headers, mut rows, mut line) = (0, 0, String::new());
    let t = Instant::now();
    while headers < 3 && t.elapsed() < Duration::from_secs(20) {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        assert!(!line.contains('\x1b'), "no screen control off a terminal: {line:?}");
        headers += usize::from(line.starts_with("CONTAINER ID"));
        rows += usize::from(line.contains(" busy ") && line.contains(" / 64MiB "));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(headers >= 3 && rows >= 1, "{headers} tables, {rows} rows of busy");

    // A stream goes on with Docker's zeros once its container stops (as dockerd's collector does).
    let mut r = open_stream(&d, "/containers/busy/stats");
    assert_ne!(next_object(&mut r).unwrap()["read"], ZERO);
    d.ok(&["kill", "busy"]);
    let t = Instant::now();
    loop {
        let v = next_object(&mut r).expect("the stream goes on after the container stopped");
        if v["read"] == ZERO {
            assert_eq!(cpu_total(&v, "cpu_stats"), 0);
            assert_eq!(v["memory_stats"], serde_json::json!({}));
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "still samples of a stopped container");
    }

    // A stopped container: Docker's zeros, at once.
    let v = get_json(&d, "/containers/busy/stats?stream=false");
    assert_eq!(v["read"], ZERO);
    assert_eq!(v["name"], "/busy");
    assert_eq!(cpu_total(&v, "cpu_stats"), 0);
    assert_eq!(v["memory_stats"], serde_json::json!({}));
    assert!(v.get("networks").is_none());
    let table = d.ok(&["stats", "--no-stream", "-a"]);
    assert!(table.lines().any(|l| l.contains(" busy ") && l.contains("0.00%")), "{table}");
    assert_eq!(d.ok(&["stats", "--no-stream"]).lines().count(), 1, "no running container: the header only");
    let out = d.berth(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No such container: nosuch"), "{}", stderr(&out));

    // Removing the container ends its streams (the one still open above, and a new one).
    let mut r2 = open_stream(&d, "/containers/busy/stats");
    assert_eq!(next_object(&mut r2).unwrap()["read"], ZERO);
    d.ok(&["rm", "busy"]);
    for r in [&mut r, &mut r2] {
        let t = Instant::now();
        while next_object(r).is_some() {
            assert!(t.elapsed() < Duration::from_secs(5), "the stream went on after the container was removed");
        }
    }
    assert!(cgroups_left(&[id]).is_empty());
}
