//! Containers' logs: json-file rotation (`max-size`, `max-file`, `compress`) as Docker does it, `logs` (`--tail`,
//! `--since`, `-f`) across rotated and compressed files, the `local` and `none` drivers, refusals of drivers and
//! options with Docker's messages, the daemon's default log configuration from flags and from the configuration
//! file, bad configuration files, and a log write that fails on a full disk.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::*;

/// 100 bytes of padding after each number: a line is about 107 bytes of output.
const PAD: &str =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// A shell command printing `1 PAD` … `n PAD`.
fn numbered(n: u64) -> String {
    format!("seq 1 {n} | sed 's/$/ {PAD}/'")
}

/// The numbers at the start of each line.
fn numbers(text: &str) -> Vec<u64> {
    text.lines().map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap_or_else(|_| panic!("line {l:?}"))).collect()
}

/// `first..=last`, asserted contiguous.
fn assert_run(nums: &[u64], last: u64) -> u64 {
    assert!(!nums.is_empty(), "no lines");
    let first = nums[0];
    let expect: Vec<u64> = (first..=last).collect();
    assert!(nums == expect.as_slice(), "not {first}..={last} in order: {} lines, last {:?}", nums.len(), nums.last());
    first
}

fn container_dir(d: &Berthd, id: &str) -> PathBuf {
    d.dir.join("data/containers").join(id)
}

/// The container's log files (name, size), sorted by name.
fn log_files(d: &Berthd, id: &str) -> Vec<(String, u64)> {
    let prefix = format!("{id}-json.log");
    let mut v: Vec<(String, u64)> = std::fs::read_dir(container_dir(d, id))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix).then(|| (name, e.metadata().unwrap().len()))
        })
        .collect();
    v.sort();
    v
}

fn gunzip(path: &Path) -> String {
    let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(out.status.success(), "gzip -dc {}: {}", path.display(), stderr(&out));
    stdout(&out)
}

/// The entries of a json-file log file, each checked to be a whole JSON object.
fn entries(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an entry ({e}): {l:?}"))).collect()
}

fn log_config(d: &Berthd, name: &str) -> serde_json::Value {
    serde_json::from_str(&d.inspect(name, "{{json .HostConfig.LogConfig}}")).unwrap()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn rotation_bounds_disk_use_and_logs_read_across_files() {
    let d = daemon_with_busybox();
    // About 14 MB of output; kept: two files of 1,000,000 bytes (Docker's decimal `m`) plus at most one entry.
    let n = 130_000;
    let id = d.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        &numbered(n),
    ]);
    let id = id.trim();
    assert_eq!(d.ok(&["wait", id]).trim(), "0");
    let files = log_files(&d, id);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [format!("{id}-json.log"), format!("{id}-json.log.1")], "{files:?}");
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    assert!(total <= 2 << 20, "{total} bytes of logs kept: {files:?}");
    // An entry here is under 200 bytes.
    assert!(files.iter().all(|(_, s)| *s < 1_000_000 + 200), "{files:?}");
    assert!(files[1].1 >= 1_000_000, "the rotated file was rotated before it was full: {files:?}");
    let on_disk: usize = files
        .iter()
        .map(|(f, _)| entries(&std::fs::read_to_string(container_dir(&d, id).join(f)).unwrap()).len())
        .sum();

    assert_eq!(numbers(&d.ok(&["logs", "--tail", "5", id])), (n - 4..=n).collect::<Vec<_>>());
    let all = numbers(&d.ok(&["logs", id]));
    let first = assert_run(&all, n);
    assert!(first > 1, "everything was kept");
    assert_eq!(all.len(), on_disk);
    // A tail longer than the current file reaches into the rotated one.
    let cur_entries = entries(&std::fs::read_to_string(container_dir(&d, id).join(&files[0].0)).unwrap()).len() as u64;
    let k = cur_entries + 100;
    assert_eq!(numbers(&d.ok(&["logs", "--tail", &k.to_string(), id])), (n - k + 1..=n).collect::<Vec<_>>());
    d.ok(&["rm", id]);
}

/// `logs -f` started before the output begins sees every line once, in order, through about fifty rotations.
fn follow_sees_every_line(compress: bool) {
    let d = daemon_with_busybox();
    let n = 60_000;
    let mut args = vec!["run", "-d", "--log-opt", "max-size=200k", "--log-opt", "max-file=100"];
    if compress {
        args.extend(["--log-opt", "compress=true"]);
    }
    // The pause lets the follower start first.
    let script = format!("sleep 2; {}", numbered(n));
    args.extend(["busybox", "sh", "-c", &script]);
    let id = d.ok(&args).trim().to_string();
    let mut follower = d.berth_cmd().args(["logs", "-f", &id]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    // The follower ends with the container; bound: a minute for 6 MB (it takes a few seconds).
    let deadline = Instant::now() + Duration::from_secs(60);
    while follower.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = follower.kill();
            panic!("logs -f did not end after the container; berthd log:\n{}", tail(&d.log(), 30));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = reader.join().unwrap();
    assert_eq!(assert_run(&numbers(&text), n), 1);
    let files = log_files(&d, &id);
    assert!(files.len() >= 30, "too few rotations to test anything: {files:?}");
    if compress {
        assert!(files.iter().filter(|(f, _)| f.ends_with(".gz")).count() >= 29, "{files:?}");
    }
    d.ok(&["rm", &id]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn follow_across_rotations_loses_and_repeats_nothing() {
    follow_sees_every_line(false);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn follow_across_compressed_rotations_loses_and_repeats_nothing() {
    follow_sees_every_line(true);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compressed_rotations_are_gzip_files_that_logs_reads() {
    let d = daemon_with_busybox();
    let n = 20_000;
    let opts = ["--log-opt", "max-size=100k", "--log-opt", "max-file=4", "--log-opt", "compress=true"];
    let mut args = vec!["run", "-d"];
    args.extend(opts);
    let script = numbered(n);
    args.extend(["busybox", "sh", "-c", &script]);
    let id = d.ok(&args).trim().to_string();
    assert_eq!(d.ok(&["wait", &id]).trim(), "0");
    let files = log_files(&d, &id);
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let base = format!("{id}-json.log");
    assert_eq!(names, [base.clone(), format!("{base}.1.gz"), format!("{base}.2.gz"), format!("{base}.3.gz")]);
    let dir = container_dir(&d, &id);
    let mut on_disk = 0;
    for (f, size) in &files {
        let text =
            if f.ends_with(".gz") { gunzip(&dir.join(f)) } else { std::fs::read_to_string(dir.join(f)).unwrap() };
        if f.ends_with(".gz") {
            assert!(*size * 5 < text.len() as u64, "{f}: {size} bytes for {} of text", text.len());
        }
        on_disk += entries(&text).len();
    }
    let all = numbers(&d.ok(&["logs", &id]));
    let first = assert_run(&all, n);
    assert_eq!(all.len(), on_disk);
    // 1,500 lines reach back into the compressed files (a 100 kB file holds fewer than 600).
    assert_eq!(numbers(&d.ok(&["logs", "--tail", "1500", &id])), (n - 1499..=n).collect::<Vec<_>>());
    // --since a time in the middle: a suffix of the log that starts near that line.
    let stamped = d.ok(&["logs", "-t", &id]);
    let mid = stamped.lines().nth(all.len() / 2).unwrap();
    let (ts, rest) = mid.split_once(' ').unwrap();
    let mid_n: u64 = rest.split(' ').next().unwrap().parse().unwrap();
    let since = numbers(&d.ok(&["logs", "--since", ts, &id]));
    let since_first = assert_run(&since, n);
    assert!(since_first > first && since_first <= mid_n, "--since {ts} started at {since_first} (line {mid_n})");
    // --until the same time: the log up to that line (and the others of its write), from the oldest kept.
    let until = numbers(&d.ok(&["logs", "--until", ts, &id]));
    let until_last = *until.last().unwrap();
    assert_eq!(assert_run(&until, until_last), first);
    assert!(until_last >= mid_n && until_last < n, "--until {ts} ended at {until_last} (line {mid_n})");
    d.ok(&["rm", &id]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn daemon_default_log_options_from_flags() {
    let d = Berthd::start_with(&["--log-opt", "max-size=10k", "--log-opt", "max-file=2"]);
    d.busybox();
    let n = 2000;
    let script = numbered(n);
    let plain = d.ok(&["run", "-d", "busybox", "sh", "-c", &script]).trim().to_string();
    assert_eq!(
        log_config(&d, &plain),
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "10k", "max-file": "2"}})
    );
    assert_eq!(d.ok(&["wait", &plain]).trim(), "0");
    let files = log_files(&d, &plain);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|(_, s)| *s < 10_000 + 200), "{files:?}");
    assert_run(&numbers(&d.ok(&["logs", &plain])), n);
    assert!(d.inspect(&plain, "{{.LogPath}}").ends_with(&format!("{plain}-json.log")));

    // The container's own options win; the defaults fill in the others.
    let own = d.ok(&["create", "--log-opt", "max-size=20k", "busybox", "true"]).trim().to_string();
    assert_eq!(
        log_config(&d, &own),
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "20k", "max-file": "2"}})
    );
    // Another driver does not get json-file's defaults.
    let local =
        d.ok(&["run", "-d", "--log-driver", "local", "--log-opt", "max-size=10k", "busybox", "sh", "-c", &script]);
    let local = local.trim();
    assert_eq!(log_config(&d, local), serde_json::json!({"Type": "local", "Config": {"max-size": "10k"}}));
    assert_eq!(d.ok(&["wait", local]).trim(), "0");
    // local's defaults: five files, compressed.
    let files = log_files(&d, local);
    assert_eq!(files.len(), 5, "{files:?}");
    assert_eq!(files.iter().filter(|(f, _)| f.ends_with(".gz")).count(), 4, "{files:?}");
    assert_run(&numbers(&d.ok(&["logs", local])), n);
    assert_eq!(d.inspect(local, "{{.LogPath}}"), "");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn daemon_default_log_config_from_the_configuration_file() {
    require_root();
    let cfg_dir = PathBuf::from(format!("/tmp/bt-logcfg-{}", std::process::id()));
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("daemon.json");
    std::fs::write(
        &cfg,
        r#"{"log-driver": "local", "log-opts": {"max-size": "10k", "max-file": "3"}, "live-restore": true}"#,
    )
    .unwrap();
    let d = Berthd::start_with(&["--config-file", cfg.to_str().unwrap()]);
    d.busybox();
    let n = 2000;
    let id = d.ok(&["run", "-d", "busybox", "sh", "-c", &numbered(n)]).trim().to_string();
    assert_eq!(
        log_config(&d, &id),
        serde_json::json!({"Type": "local", "Config": {"max-size": "10k", "max-file": "3"}})
    );
    assert_eq!(d.ok(&["wait", &id]).trim(), "0");
    let files = log_files(&d, &id);
    assert_eq!(files.len(), 3, "{files:?}");
    assert_run(&numbers(&d.ok(&["logs", &id])), n);
    let (_, _, info) = api(&d, "GET", "/info", b"");
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["LoggingDriver"], "local");
    // An empty type is the daemon's default driver.
    let body = r#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"LogConfig": {"Type": "", "Config": {}}}}"#;
    let (status, _, created) = api(&d, "POST", "/containers/create", body.as_bytes());
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&created));
    let created: serde_json::Value = serde_json::from_slice(&created).unwrap();
    let cid = created["Id"].as_str().unwrap();
    assert_eq!(log_config(&d, cid)["Type"], "local");
    drop(d);
    let _ = std::fs::remove_dir_all(&cfg_dir);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn none_keeps_no_log_and_logs_says_so() {
    let d = daemon_with_busybox();
    // Attached output does not need a log.
    assert_eq!(d.ok(&["run", "--log-driver", "none", "--name", "quiet", "busybox", "echo", "hello"]).trim(), "hello");
    let id = d.inspect("quiet", "{{.Id}}");
    assert!(log_files(&d, &id).is_empty(), "{:?}", log_files(&d, &id));
    assert_eq!(log_config(&d, "quiet"), serde_json::json!({"Type": "none", "Config": {}}));
    assert_eq!(d.inspect("quiet", "{{.LogPath}}"), "");
    let (status, msg) = api_message(&d, "GET", &format!("/containers/{id}/logs?stdout=1"), "");
    assert_eq!((status, msg.as_str()), (501, "configured logging driver does not support reading"));
    let out = d.berth(&["logs", "quiet"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("configured logging driver does not support reading"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn bad_drivers_and_options_are_refused_at_create() {
    let d = daemon_with_busybox();
    let create = |log_config: &str| {
        let body = format!(r#"{{"Image": "busybox", "Cmd": ["true"], "HostConfig": {{"LogConfig": {log_config}}}}}"#);
        api_message(&d, "POST", "/containers/create", &body)
    };
    let refused = [
        (r#"{"Type": "asdf"}"#, "logger: no log driver named 'asdf' is registered"),
        (r#"{"Type": "json-file", "Config": {"foo": "bar"}}"#, "unknown log opt 'foo' for json-file log driver"),
        (r#"{"Type": "local", "Config": {"foo": "bar"}}"#, "unknown log opt 'foo' for log driver local"),
        (
            r#"{"Type": "json-file", "Config": {"max-size": "abc"}}"#,
            "failed to initialize logging driver: invalid size: 'abc'",
        ),
        (
            r#"{"Type": "json-file", "Config": {"max-size": "0"}}"#,
            "failed to initialize logging driver: max-size must be a positive number",
        ),
        (
            r#"{"Type": "json-file", "Config": {"max-file": "x"}}"#,
            "failed to initialize logging driver: strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            r#"{"Type": "json-file", "Config": {"max-file": "0"}}"#,
            "failed to initialize logging driver: max-file cannot be less than 1",
        ),
        (
            r#"{"Type": "json-file", "Config": {"compress": "true", "max-file": "3"}}"#,
            "failed to initialize logging driver: compress cannot be true when max-file is less than 2 or max-size is not set",
        ),
        (r#"{"Type": "json-file", "Config": {"mode": "fast"}}"#, "logger: logging mode not supported: fast"),
        (
            r#"{"Type": "local", "Config": {"max-file": "1"}}"#,
            "failed to initialize logging driver: compression cannot be enabled when max file count is 1",
        ),
    ];
    for (config, message) in refused {
        assert_eq!(create(config), (400, message.to_string()), "{config}");
    }
    for driver in ["syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"] {
        let (status, msg) = create(&format!(r#"{{"Type": "{driver}"}}"#));
        assert_eq!(status, 400);
        assert!(msg.contains(&format!("'{driver}'")) && msg.contains("not supported by Berth"), "{msg}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "a refused create left a container");
    // The CLI shows the message.
    let out = d.berth(&["run", "--log-driver", "asdf", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("logger: no log driver named 'asdf' is registered"), "{}", stderr(&out));
    // An empty type means json-file (the default of a daemon without a configured one).
    let (status, _) = create(r#"{"Type": "", "Config": {"max-size": "1k"}}"#);
    assert_eq!(status, 201);
}

/// berthd with only a configuration file (and private roots): its exit status and stderr, or a failure if it is
/// still running after ten seconds.
fn berthd_with_config(name: &str, config: Option<&str>, extra: &[&str]) -> (Option<i32>, String) {
    let dir = PathBuf::from(format!("/tmp/bt-badcfg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("daemon.json");
    if let Some(c) = config {
        std::fs::write(&file, c).unwrap();
    }
    let mut args: Vec<std::ffi::OsString> = vec!["--config-file".into(), file.into_os_string()];
    args.extend(["--data-root".into(), dir.join("data").into_os_string(), "--exec-root".into()]);
    args.extend([dir.join("run").into_os_string(), "--host".into()]);
    args.push(format!("unix://{}", dir.join("s.sock").display()).into());
    args.extend(extra.iter().map(Into::into));
    // A bad file stops berthd before it does anything; ten seconds is far more than that takes.
    let (status, err) = berthd_refusing(args, 10);
    let Some(status) = status else {
        let _ = std::fs::remove_dir_all(&dir);
        panic!("berthd kept running with the configuration {config:?}");
    };
    assert!(!dir.join("data").exists(), "berthd created its data root before refusing its configuration");
    let _ = std::fs::remove_dir_all(&dir);
    (status.code(), err.replace(&format!("{}/", dir.display()), "DIR/"))
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn bad_configuration_files_stop_berthd_with_the_key_named() {
    require_root();
    // (name, file, extra flags, what the message must hold)
    type Case<'a> = (&'a str, Option<&'a str>, &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "type",
            Some(r#"{"log-opts": {"max-file": 3}}"#),
            &[],
            &["DIR/daemon.json", "log-opts: max-file: want a string"],
        ),
        (
            "unknown",
            Some(r#"{"storage-driver": "overlay2"}"#),
            &[],
            &["DIR/daemon.json", "don't match any configuration option: storage-driver"],
        ),
        ("json", Some(r#"{"log-driver": "local""#), &[], &["DIR/daemon.json", "invalid JSON"]),
        ("value", Some(r#"{"dns": ["not-an-ip"]}"#), &[], &["DIR/daemon.json", "dns: ", "not-an-ip"]),
        (
            "conflict",
            Some(r#"{"dns": ["10.0.0.1"]}"#),
            &["--dns", "10.0.0.2"],
            &[
                "the following directives are specified both as a flag and in the configuration file: dns: (from flag: [10.0.0.2], from file: [10.0.0.1])",
            ],
        ),
        (
            "mirrors",
            Some(r#"{"registry-mirrors": ["https://mirror.example"]}"#),
            &[],
            &["registry-mirrors: Berth has no registry mirrors"],
        ),
        ("driver", Some(r#"{"log-driver": "asdf"}"#), &[], &["logger: no log driver named 'asdf' is registered"]),
        ("missing", None, &[], &["DIR/daemon.json", "No such file"]),
    ];
    for (name, config, extra, wanted) in cases {
        let (code, err) = berthd_with_config(name, *config, extra);
        assert!(code.is_some_and(|c| c != 0), "{name}: exit {code:?}, stderr {err}");
        for w in *wanted {
            assert!(err.contains(w), "{name}: {w:?} not in {err:?}");
        }
    }
}

/// The numbers of `line N` entries in a log file, each entry checked to be whole.
fn logged_numbers(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    entries(&text).iter().filter_map(|e| e["log"].as_str()?.strip_prefix("line ")?.trim().parse().ok()).collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_full_disk_drops_log_lines_but_not_the_container_or_its_clients() {
    let d = daemon_with_busybox();
    // 200 lines a second, forever.
    let id = d.ok(&[
        "create",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo \"line $i\"; i=$((i+1)); usleep 5000; done",
    ]);
    let id = id.trim().to_string();
    // The container's directory (writable layer and log) on a 2 MiB file system of its own.
    let dir = container_dir(&d, &id);
    let save = d.dir.join("chatty-save");
    std::fs::create_dir_all(&save).unwrap();
    let cp = |from: &Path, to: &Path| {
        let st = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().unwrap();
        assert!(st.success());
    };
    cp(&dir, &save);
    nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=2m")).unwrap();
    cp(&save, &dir);
    d.ok(&["start", "chatty"]);
    let mut attach = d
        .berth_cmd()
        .args(["attach", "--no-stdin", "--sig-proxy=false", "chatty"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut attached_out = attach.stdout.take().unwrap();
    let attached = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = attached_out.read_to_string(&mut s);
        s
    });
    let log = dir.join(format!("{id}-json.log"));
    assert!(d.eventually(10, || logged_numbers(&log).len() > 50), "the container logs nothing");

    // Fill the file system.
    let filler = dir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 16 << 10];
        // At most the file system's size.
        for _ in 0..(2 << 20) / chunk.len() + 1 {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
    }
    let shim: i32 = std::fs::read_to_string(d.dir.join("run/containers").join(&id).join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before_full = logged_numbers(&log);
    let ticks = cpu_ticks(shim).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu_ticks(shim).unwrap() - ticks;
    let during_full = logged_numbers(&log);
    // A shim that copes spends a few ticks on 400 lines; one spinning on the failing writes would burn ~200 (all
    // of the two seconds). 50 leaves room for a loaded machine.
    assert!(ticks < 50, "the shim used {ticks} ticks of CPU in 2 s with its disk full");
    // Perhaps the last page of the file took a few more lines; not 400.
    assert!(
        during_full.len() < before_full.len() + 100,
        "{} lines logged on a full disk",
        during_full.len() - before_full.len()
    );
    let last_logged_while_full = during_full.last().copied().unwrap();

    // Space again: logging resumes.
    std::fs::remove_file(&filler).unwrap();
    assert!(
        d.eventually(10, || logged_numbers(&log).last().is_some_and(|n| *n > last_logged_while_full + 100)),
        "logging did not resume once there was space"
    );
    assert_eq!(d.inspect("chatty", "{{.State.Running}}"), "true");
    d.ok(&["kill", "chatty"]);
    d.ok(&["wait", "chatty"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while attach.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = attach.kill();
    let _ = attach.wait();
    // The attached client saw what the full disk kept out of the log.
    let seen: Vec<u64> =
        attached.join().unwrap().lines().filter_map(|l| l.strip_prefix("line ")?.parse().ok()).collect();
    let logged = logged_numbers(&log);
    let missing_from_log: Vec<u64> =
        (last_logged_while_full + 1..last_logged_while_full + 200).filter(|n| !logged.contains(n)).collect();
    assert!(!missing_from_log.is_empty(), "no line was dropped: the disk was not full");
    assert!(missing_from_log.iter().all(|n| seen.contains(n)), "the attached client missed lines too");
    // Every entry is whole, and `logs` reads them.
    let via_logs = d.ok(&["logs", "chatty"]);
    assert_eq!(via_logs.lines().count(), logged.len());
    nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).unwrap();
    d.ok(&["rm", "chatty"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_sees_dockers_answers() {
    let d = daemon_with_busybox();
    let Some(out) = d.docker(&["run", "--log-driver", "asdf", "busybox", "true"]) else { return };
    assert!(!out.status.success());
    assert!(stderr(&out).contains("logger: no log driver named 'asdf' is registered"), "{}", stderr(&out));
    let out = d
        .docker(&[
            "run",
            "--name",
            "rot",
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            &numbered(1000),
        ])
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(log_files(&d, &d.inspect("rot", "{{.Id}}")).len(), 2);
    let logs = d.docker(&["logs", "--tail", "3", "rot"]).unwrap();
    assert_eq!(numbers(&stdout(&logs)), [998, 999, 1000]);
    let out = d.docker(&["run", "--name", "mute", "--log-driver", "none", "busybox", "true"]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.docker(&["logs", "mute"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Error response from daemon: configured logging driver does not support reading"),
        "{}",
        stderr(&out)
    );
}
