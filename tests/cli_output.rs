//! The `berth` CLI's output path (`logs`, `logs -f`, `run` attached, `exec`, a TTY): every byte there, stdout and
//! stderr apart and in order, `-f` and a TTY shown as the output comes, and the cost of moving the bytes (the CLI's
//! CPU time for 20 MB: it was about a second per MB when each frame went through a blocking thread); the daemon's
//! `--tail` and `--since` on a large log, checked against the docker CLI's view of the same daemon.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_integration::*;

/// `n` numbered lines of 100 bytes (`00000001 xxx…`), every 1000th on stderr (`e00001000 …`, same length).
fn writer(n: u64) -> String {
    format!(
        "i=0; pad=$(printf '%090d' 0); while [ $i -lt {n} ]; do i=$((i+1)); \
         if [ $((i % 1000)) = 0 ]; then printf 'e%08d %s\\n' $i $pad >&2; else printf '%09d %s\\n' $i $pad; fi; done"
    )
}

/// A shell command writing `mb` MB of 100-byte lines quickly (a 1 MB file `cat` `mb` times), the last line `end`.
fn bulk(mb: u32) -> String {
    format!(
        "yes $(printf '%099d' 0) | head -c 1000000 > /tmp/l; set --; for i in $(seq {mb}); do set -- \"$@\" /tmp/l; \
         done; cat \"$@\"; echo end"
    )
}

/// Runs `berth ARGS > out 2> err` under `sh` and returns (stdout, stderr, the CLI's user + system CPU seconds, as
/// the shell's `times` reports its children's).
fn berth_timed(d: &Berthd, args: &str) -> (Vec<u8>, Vec<u8>, f64) {
    let dir = d.dir.join("out");
    std::fs::create_dir_all(&dir).unwrap();
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let script = format!(
        "{} {args} >{} 2>{} </dev/null; rc=$?; times; exit $rc",
        bin("berth").display(),
        out.display(),
        err.display()
    );
    let o = Command::new("sh").arg("-c").arg(&script).env("DOCKER_HOST", d.host()).output().unwrap();
    let (stdout_b, stderr_b) = (std::fs::read(&out).unwrap(), std::fs::read(&err).unwrap());
    assert!(o.status.success(), "berth {args}: {}", String::from_utf8_lossy(&stderr_b));
    // `times`: the shell's own user/system line, then its children's.
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let children = text.lines().nth(1).unwrap_or_else(|| panic!("times said {text:?}"));
    let secs = |f: &str| -> f64 {
        let (m, s) = f.trim_end_matches('s').split_once('m').unwrap();
        m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
    };
    let cpu: f64 = children.split_whitespace().map(secs).sum();
    (stdout_b, stderr_b, cpu)
}

/// Checks the numbered output of [`writer`]: stdout has every line but the 1000th ones, stderr those.
fn check_numbered(out: &[u8], err: &[u8], n: u64) {
    let out = String::from_utf8_lossy(out);
    let err = String::from_utf8_lossy(err);
    let outs: Vec<u64> = out.lines().map(|l| l[..9].parse().unwrap()).collect();
    let errs: Vec<u64> = err.lines().map(|l| l[1..9].parse().unwrap()).collect();
    assert_eq!(outs, (1..=n).filter(|i| i % 1000 != 0).collect::<Vec<_>>(), "stdout");
    assert_eq!(errs, (1..=n).filter(|i| i % 1000 == 0).collect::<Vec<_>>(), "stderr");
    assert!(out.lines().chain(err.lines()).all(|l| l.len() == 100), "a line was cut or merged");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn logs_run_and_exec_move_every_byte_cheaply() {
    let d = daemon_with_busybox();
    let n = 20_000;
    let id = d.ok(&["run", "-d", "busybox", "sh", "-c", &writer(n)]).trim().to_string();
    assert_eq!(d.ok(&["wait", &id]).trim(), "0");
    let (out, err, _) = berth_timed(&d, &format!("logs {id}"));
    check_numbered(&out, &err, n);

    // 20 MB: the CLI's CPU time. It was about 20 s when each frame was a write on a blocking thread with its
    // futex handoffs; it is well under a second now (3 s leaves room for a loaded machine and a debug build).
    let big = d.ok(&["run", "-d", "busybox", "sh", "-c", &bulk(20)]).trim().to_string();
    assert_eq!(d.ok(&["wait", &big]).trim(), "0");
    let (out, err, cpu) = berth_timed(&d, &format!("logs {big}"));
    assert_eq!(out.len(), 20_000_004, "stderr: {}", String::from_utf8_lossy(&err));
    assert!(out.ends_with(b"0000\nend\n"));
    assert!(cpu < 3.0, "berth logs of 20 MB took {cpu} s of CPU");

    // `run` attached and `exec`: the same path.
    let (out, err, cpu) = berth_timed(&d, &format!("run --rm busybox sh -c '{}'", bulk(20).replace('\'', "'\\''")));
    assert_eq!(out.len(), 20_000_004, "stderr: {}", String::from_utf8_lossy(&err));
    assert!(cpu < 3.0, "berth run of 20 MB took {cpu} s of CPU");
    let ex = d.ok(&["run", "-d", "busybox", "sleep", "600"]).trim().to_string();
    let (out, err, cpu) = berth_timed(&d, &format!("exec {ex} sh -c '{}'", writer(n).replace('\'', "'\\''")));
    check_numbered(&out, &err, n);
    assert!(cpu < 3.0, "berth exec took {cpu} s of CPU");
    let (out, _, cpu) = berth_timed(&d, &format!("exec {ex} sh -c '{}'", bulk(20).replace('\'', "'\\''")));
    assert_eq!(out.len(), 20_000_004);
    assert!(cpu < 3.0, "berth exec of 20 MB took {cpu} s of CPU");
    d.ok(&["rm", "-f", &ex]);
}

/// stdout and stderr into one pipe keep the container's order; a TTY's output is one raw stream.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn streams_keep_their_order() {
    let d = daemon_with_busybox();
    let script = "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; sleep 0.2; echo err2 >&2";
    let id = d.ok(&["run", "-d", "busybox", "sh", "-c", script]).trim().to_string();
    d.ok(&["wait", &id]);
    for args in [format!("logs {id}"), format!("run --rm busybox sh -c '{script}'")] {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("{} {args} 2>&1", bin("berth").display()))
            .env("DOCKER_HOST", d.host())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "out1\nerr1\nout2\nerr2\n", "berth {args}");
    }
    let o = d.berth(&["run", "--rm", "-t", "busybox", "sh", "-c", "echo a; echo b >&2"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a\r\nb\r\n");
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

/// `logs -f` shows each line as it comes (the output is flushed when the input has nothing more), not when a
/// buffer fills or the stream ends.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn follow_shows_output_as_it_comes() {
    let d = daemon_with_busybox();
    let id = d.ok(&["run", "-d", "busybox", "sh", "-c", "echo first; sleep 600"]).trim().to_string();
    let mut child = d.berth_cmd().args(["logs", "-f", &id]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let n = stdout.read(&mut buf).unwrap_or(0);
        let _ = tx.send(buf[..n].to_vec());
    });
    // The daemon polls a followed file every 50 ms; 10 s is only a bound for a loaded machine.
    let got = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    d.ok(&["rm", "-f", &id]);
    assert_eq!(got.ok().as_deref(), Some(&b"first\n"[..]), "logs -f showed nothing while the container ran");
}

/// `--tail` and `--since` on a log of 5 MB in three rotated files (one compressed): the same lines as the docker
/// CLI gets from this daemon, and as the whole log has at those places.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn tail_and_since_on_a_rotated_log() {
    let d = daemon_with_busybox();
    let opts = ["--log-opt", "max-size=2m", "--log-opt", "max-file=3", "--log-opt", "compress=true"];
    let mut args = vec!["run", "-d"];
    args.extend(opts);
    // stdout only: `--tail` counts the lines of both streams.
    let script = format!("seq 1 50000 | sed 's/$/ {}/'; sleep 1; echo late", "x".repeat(90));
    args.extend(["busybox", "sh", "-c", &script]);
    let id = d.ok(&args).trim().to_string();
    assert_eq!(d.ok(&["wait", &id]).trim(), "0");
    let all = d.ok(&["logs", "-t", &id]);
    let all: Vec<&str> = all.lines().collect();
    assert!(all.len() > 10_000 && all.last().is_some_and(|l| l.ends_with(" late")), "{} lines", all.len());
    let tail = d.ok(&["logs", "-t", "--tail", "3", &id]);
    assert_eq!(tail.lines().collect::<Vec<_>>(), all[all.len() - 3..].to_vec());
    assert_eq!(d.ok(&["logs", "--tail", "0", &id]), "");
    // `--since` the time of a line in the middle: from the first line of that time on.
    for at in [all.len() / 3, all.len() - 1] {
        let time = all[at].split(' ').next().unwrap();
        let since = d.ok(&["logs", "-t", "--since", time, &id]);
        let since: Vec<&str> = since.lines().collect();
        let first = all.iter().position(|l| l.split(' ').next() == Some(time)).unwrap();
        assert_eq!(since, all[first..].to_vec(), "--since {time}");
        if let Some(o) = d.docker(&["logs", "-t", "--since", time, &id]) {
            assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), since.len(), "docker logs --since");
        }
    }
    match d.docker(&["logs", "-t", "--tail", "3", &id]) {
        Some(o) => assert_eq!(stdout(&o), tail, "docker logs --tail 3"),
        None => skip_missing_tool("the docker CLI is not installed: its view of --tail not compared"),
    }
}
