//! Faults around the shim (issue 11): the signal state and descriptors container processes start with, idle shims
//! across a `kill -9` of berthd (measured in CPU time), and a killed shim or container init (nothing left running,
//! exactly one restarted copy).
//!
//! Every daemon here is started the way a careless environment would start it: with SIGHUP and SIGUSR2 ignored (as
//! `nohup` does with SIGHUP; berthd handles SIGHUP itself, for a reload, so SIGUSR2 is the one it inherits ignored)
//! and an extra inherited pipe on descriptor 100 without close-on-exec. Neither may reach a shim or a container.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_integration::*;

/// The descriptor number of the leaked pipe.
const LEAKED_FD: i32 = 100;

/// Makes this test process a hostile parent for the daemons it starts (once): SIGHUP ignored, and a pipe's write end
/// on descriptor 100 without close-on-exec. Returns the pipe's inode (`pipe:[N]`), to recognise it anywhere.
fn hostile_parent() -> u64 {
    static INODE: OnceLock<u64> = OnceLock::new();
    *INODE.get_or_init(|| {
        for sig in [nix::sys::signal::Signal::SIGHUP, nix::sys::signal::Signal::SIGUSR2] {
            // SAFETY: setting a signal's disposition to SIG_IGN in the test process; no handler is involved.
            unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) }.unwrap();
        }
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: dup2 onto a descriptor number this test process does not use otherwise; the copy has no
        // close-on-exec flag, which is the point. Both ends are leaked on purpose for the life of the process.
        assert_eq!(unsafe { libc::dup2(w.as_raw_fd(), LEAKED_FD) }, LEAKED_FD);
        let inode = std::fs::metadata(format!("/proc/self/fd/{LEAKED_FD}")).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        });
        std::mem::forget(r);
        std::mem::forget(w);
        inode.unwrap()
    })
}

/// A daemon with busybox, started by the hostile parent.
fn daemon() -> (Berthd, u64) {
    require_root();
    let inode = hostile_parent();
    let d = Berthd::start();
    d.busybox();
    (d, inode)
}

fn id_of(d: &Berthd, name: &str) -> String {
    d.inspect(name, "{{.Id}}")
}

fn bundle(d: &Berthd, id: &str) -> PathBuf {
    d.dir.join("run/containers").join(id)
}

fn shim_pid(d: &Berthd, id: &str) -> i32 {
    let text = std::fs::read_to_string(bundle(d, id).join("shim.pid")).unwrap();
    text.trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    // A zombie is no longer running anything: it has an empty command line.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// This daemon's shims and exec helpers: `berth-shim` processes with one of its bundles on their command line.
fn shim_processes(d: &Berthd) -> Vec<i32> {
    let needle = format!("{}/", d.dir.join("run/containers").display());
    processes_with(&needle)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with(bin("berth-shim").to_str().unwrap().as_bytes()))
        })
        .collect()
}

/// CPU ticks each of `pids` uses over `secs` seconds (processes that went meanwhile are left out).
fn cpu_over(pids: &[i32], secs: u64) -> HashMap<i32, u64> {
    let before: HashMap<i32, u64> = pids.iter().filter_map(|p| Some((*p, cpu_ticks(*p)?))).collect();
    std::thread::sleep(Duration::from_secs(secs));
    before.into_iter().filter_map(|(p, t)| Some((p, cpu_ticks(p)?.saturating_sub(t)))).collect()
}

/// Asserts that no process of `pids` used more than `max` ticks in `secs` seconds: an idle shim wakes once per
/// output line (one a second here) and costs microseconds; one spinning in `poll` takes a whole core (hundreds of
/// ticks in 3 s, tens even on a machine shared with parallel builds).
fn assert_idle(d: &Berthd, what: &str, secs: u64, max: u64) {
    let pids = shim_processes(d);
    assert!(!pids.is_empty(), "{what}: no shim found");
    let used = cpu_over(&pids, secs);
    eprintln!("{what}: CPU ticks per shim process over {secs} s: {used:?}");
    for (pid, ticks) in &used {
        assert!(*ticks <= max, "{what}: shim process {pid} used {ticks} ticks in {secs} s (all: {used:?})");
    }
}

/// Runs the CLI; kills it and fails if it has not ended in `secs` seconds.
fn berth_within(d: &Berthd, args: &[&str], secs: u64) -> Output {
    let mut child = d.berth_cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("berth {args:?} did not end within {secs} s; stdout so far: {}", stdout(&out));
}

/// A CLI left running in the background (attach, logs -f, an exec session).
fn background(d: &Berthd, args: &[&str]) -> Child {
    d.berth_cmd().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// The `SigIgn` and `SigBlk` masks a `grep` of `/proc/self/status` printed.
fn signal_masks(out: &str) -> Vec<String> {
    out.lines().filter(|l| l.starts_with("Sig")).map(|l| l.trim_end_matches('\r').to_string()).collect()
}

fn assert_default_signals(what: &str, out: &str) {
    let masks = signal_masks(out);
    assert_eq!(masks.len(), 2, "{what}: {out:?}");
    for m in &masks {
        let value = m.split(':').nth(1).unwrap().trim();
        assert!(value.chars().all(|c| c == '0'), "{what}: {m} (want no signal ignored or blocked)");
    }
}

/// The processes in the container's cgroup (`berth/<id>`), from the first hierarchy that has it.
fn cgroup_procs(id: &str) -> Option<Vec<i32>> {
    for root in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"] {
        let f = std::path::Path::new(root).join("berth").join(id).join("cgroup.procs");
        if let Ok(text) = std::fs::read_to_string(f) {
            return Some(text.split_whitespace().map(|p| p.parse().unwrap()).collect());
        }
    }
    None
}

/// A number no other test's `sleep` uses: its processes are found by it.
fn token(k: u32) -> String {
    (10_000_000 + std::process::id() * 10 + k).to_string()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn container_processes_start_with_default_signals() {
    let (d, _) = daemon();
    // The daemon really has SIGUSR2 ignored (inherited from this process; SIGHUP it handles, for a reload).
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let ign = status.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
    let ign = u64::from_str_radix(ign.split(':').nth(1).unwrap().trim(), 16).unwrap();
    assert_ne!(ign & (1 << (libc::SIGUSR2 - 1)), 0, "berthd should have SIGUSR2 ignored in this test: {ign:x}");

    let grep = ["busybox", "grep", "-E", "SigIgn|SigBlk", "/proc/self/status"];
    for tty in [false, true] {
        let mut args = vec!["run", "--rm"];
        if tty {
            args.push("-t");
        }
        args.extend(grep);
        assert_default_signals(&format!("run (tty {tty})"), &d.ok(&args));
    }
    d.ok(&["run", "-d", "--name", "sigs", "busybox", "sleep", "1000"]);
    for tty in [false, true] {
        let mut args = vec!["exec"];
        if tty {
            args.push("-t");
        }
        args.push("sigs");
        args.extend(&grep[1..]);
        assert_default_signals(&format!("exec (tty {tty})"), &d.ok(&args));
    }

    // SIGPIPE ends a writer whose reader has gone: `yes` stops once `head` has its 100 bytes (without the default
    // disposition it would write on forever).
    let out = berth_within(&d, &["run", "--rm", "busybox", "sh", "-c", "yes | head -c 100 | wc -c"], 30);
    assert_eq!(stdout(&out).trim(), "100", "stderr: {}", stderr(&out));
    let out = berth_within(&d, &["exec", "sigs", "sh", "-c", "yes | head -c 100 | wc -c"], 30);
    assert_eq!(stdout(&out).trim(), "100", "stderr: {}", stderr(&out));

    // A shell may trap only a signal that was not ignored when it started; `kill -s HUP` reaches it.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hup",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-hup; exit 7' HUP; echo ready; while :; do sleep 1; done",
    ]);
    assert!(d.eventually(10, || d.ok(&["logs", "hup"]).contains("ready")), "the shell never started");
    d.ok(&["kill", "-s", "HUP", "hup"]);
    // The trap runs once the current `sleep 1` is over.
    assert!(
        d.eventually(10, || d.inspect("hup", "{{.State.Status}}") == "exited"),
        "SIGHUP did not reach the trap: {}",
        d.inspect("hup", "{{.State.Status}}")
    );
    assert_eq!(d.inspect("hup", "{{.State.ExitCode}}"), "7");
    assert!(d.ok(&["logs", "hup"]).contains("got-hup"));
}

fn is_exec_helper(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.split(|b| *b == 0).nth(1) == Some(b"exec"))
}

/// The descriptors of a process: number → link target.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn only_the_descriptors_they_need() {
    let (d, inode) = daemon();
    let leaked = format!("pipe:[{inode}]");
    // berthd inherited the pipe (this process gave it) but keeps it to itself: close-on-exec.
    let info = std::fs::read_to_string(format!("/proc/{}/fdinfo/{LEAKED_FD}", d.pid())).unwrap();
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
    let flags = u32::from_str_radix(flags, 8).unwrap();
    assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "berthd's inherited descriptor {LEAKED_FD} is not close-on-exec");

    // The container's processes: 0, 1 and 2, nothing else, in run and exec, with and without a terminal.
    let list = ["busybox", "sh", "-c", "ls /proc/$$/fd; true"];
    for tty in [false, true] {
        let mut args = vec!["run", "--rm"];
        if tty {
            args.push("-t");
        }
        args.extend(list);
        let out = d.ok(&args).replace('\r', "");
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"], "run (tty {tty})");
    }
    d.ok(&["run", "-d", "--name", "fds", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "-t", "--name", "fdt", "busybox", "sleep", "1000"]);
    for (name, tty) in [("fds", false), ("fdt", true), ("fds", true)] {
        let mut args = vec!["exec"];
        if tty {
            args.push("-t");
        }
        args.push(name);
        args.extend(&list[1..]);
        let out = d.ok(&args).replace('\r', "");
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"], "exec {name} (tty {tty})");
    }

    // An exec session in flight: its helper keeps stdio (and the console socket with a terminal), nothing else.
    let mut sessions = vec![
        background(&d, &["exec", "fds", "sleep", "1000"]),
        background(&d, &["exec", "-t", "fdt", "sleep", "1000"]),
    ];
    // Each helper has reported (its report pipe, descriptor 3, closed) and only waits now.
    let reported = || {
        let pids = shim_processes(&d);
        pids.len() == 4 && pids.iter().all(|p| !is_exec_helper(*p) || !fds_of(*p).contains_key(&3))
    };
    assert!(d.eventually(20, reported), "exec helpers did not start: {:?}", shim_processes(&d));

    for pid in shim_processes(&d) {
        let fds = fds_of(pid);
        eprintln!("shim process {pid}: {fds:?}");
        assert!(!fds.contains_key(&LEAKED_FD), "shim process {pid} has descriptor {LEAKED_FD}: {fds:?}");
        assert!(!fds.values().any(|t| *t == leaked), "shim process {pid} holds the leaked pipe: {fds:?}");
        // The monitor's own: stdio, listener, signalfd, outputs, stdin, log, clients; a handful.
        assert!(fds.len() <= 12, "shim process {pid} has {} descriptors: {fds:?}", fds.len());
    }
    for s in &mut sessions {
        let _ = s.kill();
        let _ = s.wait();
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn shims_stay_idle_when_berthd_is_killed() {
    let (mut d, _) = daemon();
    let talk = "while :; do echo x; sleep 1; done";
    d.ok(&["run", "-d", "--name", "loop", "busybox", "sh", "-c", talk]);
    d.ok(&["run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", talk]);
    d.ok(&["run", "-d", "-i", "--name", "stdin", "busybox", "sh", "-c", "cat; echo eof; exec sleep 100000"]);
    // `run -i` whose stdin has ended (half-closed), still attached to the output.
    let mut run_i = d
        .berth_cmd()
        .args(["run", "-i", "--name", "half", "busybox", "sh", "-c", "cat; echo eof; exec sleep 100000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = run_i.stdin.take().unwrap();
        stdin.write_all(b"hello\n").unwrap();
    }
    assert!(d.eventually(20, || d.berth(&["logs", "half"]).stdout.ends_with(b"eof\n")), "run -i did not see its EOF");
    let mut clients = vec![
        run_i,
        background(&d, &["attach", "loop"]),
        background(&d, &["attach", "tty"]),
        background(&d, &["attach", "stdin"]),
        background(&d, &["logs", "-f", "loop"]),
        background(&d, &["logs", "-f", "tty"]),
        background(&d, &["exec", "loop", "sh", "-c", talk]),
        background(&d, &["exec", "-t", "tty", "sh", "-c", talk]),
        background(&d, &["exec", "-i", "stdin", "sh", "-c", "cat; exec sleep 100000"]),
    ];
    d.ok(&["exec", "-d", "-t", "loop", "sh", "-c", talk]);
    // Four monitors and four exec helpers.
    assert!(d.eventually(20, || shim_processes(&d).len() == 8), "not every exec started: {:?}", shim_processes(&d));

    assert_idle(&d, "berthd running", 3, 10);
    d.kill9();
    assert_idle(&d, "berthd killed", 3, 10);
    d.restart();
    assert_idle(&d, "berthd back", 3, 10);
    // Nothing was lost meanwhile: the containers run, the new daemon has them.
    for name in ["loop", "tty", "stdin", "half"] {
        assert_eq!(d.inspect(name, "{{.State.Status}}"), "running", "{name}");
    }
    for c in &mut clients {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Waits until the container runs again after a restart (restart count `n`) with an init other than `old`.
fn restarted(d: &Berthd, name: &str, n: u32, old: &str) -> bool {
    d.eventually(20, || {
        let s = d.inspect(name, "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}");
        s.starts_with(&format!("running {n} ")) && !s.ends_with(&format!(" {old}"))
    })
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_killed_shim_leaves_nothing_running() {
    let (mut d, _) = daemon();
    // Without a restart policy: the container's processes go with the shim, and the exit is recorded.
    let t = token(1);
    d.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", &t]);
    let id = id_of(&d, "plain");
    assert_eq!(processes_with(&t).len(), 1);
    kill9(shim_pid(&d, &id));
    assert!(
        d.eventually(10, || d.inspect("plain", "{{.State.Status}}") == "exited" && processes_with(&t).is_empty()),
        "after the shim's kill: {} with processes {:?}",
        d.inspect("plain", "{{.State.Status}}"),
        processes_with(&t)
    );
    assert_eq!(d.inspect("plain", "{{.State.ExitCode}}"), "255");
    d.ok(&["rm", "plain"]);
    assert!(
        d.eventually(5, || cgroups_left(std::slice::from_ref(&id)).is_empty()),
        "{:?}",
        cgroups_left(std::slice::from_ref(&id))
    );

    // A paused container: its frozen processes take their SIGKILL once thawed.
    let t = token(5);
    d.ok(&["run", "-d", "--name", "paused", "busybox", "sleep", &t]);
    let id = id_of(&d, "paused");
    d.ok(&["pause", "paused"]);
    kill9(shim_pid(&d, &id));
    assert!(
        d.eventually(15, || d.inspect("paused", "{{.State.Status}}") == "exited" && processes_with(&t).is_empty()),
        "after the paused container's shim's kill: {} with processes {:?}",
        d.inspect("paused", "{{.State.Status}}"),
        processes_with(&t)
    );
    d.ok(&["rm", "paused"]);
    assert!(d.eventually(5, || cgroups_left(std::slice::from_ref(&id)).is_empty()));

    // With `--restart always`: exactly one new copy, in a cgroup of its own process alone.
    let t = token(2);
    d.ok(&["run", "-d", "--restart", "always", "--name", "always", "busybox", "sleep", &t]);
    let id = id_of(&d, "always");
    let old = d.inspect("always", "{{.State.Pid}}");
    kill9(shim_pid(&d, &id));
    assert!(restarted(&d, "always", 1, &old), "{}", d.inspect("always", "{{.State.Status}} {{.RestartCount}}"));
    assert!(!alive(old.parse().unwrap()), "the first copy still runs");
    assert_eq!(processes_with(&t).len(), 1, "{:?}", processes_with(&t));
    assert_eq!(cgroup_procs(&id).map(|p| p.len()), Some(1), "{:?}", cgroup_procs(&id));
    d.ok(&["rm", "-f", "always"]);
    assert!(d.eventually(5, || processes_with(&t).is_empty()), "{:?}", processes_with(&t));
    assert!(
        d.eventually(5, || cgroups_left(std::slice::from_ref(&id)).is_empty()),
        "{:?}",
        cgroups_left(std::slice::from_ref(&id))
    );

    // A killed container init: one restart, one copy, and rm works.
    let t = token(3);
    d.ok(&["run", "-d", "--restart", "always", "--name", "init", "busybox", "sleep", &t]);
    let id = id_of(&d, "init");
    let old = d.inspect("init", "{{.State.Pid}}");
    kill9(old.parse().unwrap());
    assert!(restarted(&d, "init", 1, &old), "{}", d.inspect("init", "{{.State.Status}} {{.RestartCount}}"));
    assert_eq!(processes_with(&t).len(), 1, "{:?}", processes_with(&t));
    assert_eq!(cgroup_procs(&id).map(|p| p.len()), Some(1), "{:?}", cgroup_procs(&id));
    d.ok(&["rm", "-f", "init"]);
    assert!(d.eventually(5, || processes_with(&t).is_empty()), "{:?}", processes_with(&t));

    // A shim killed while berthd is down: the restarted daemon finds its container's processes and ends them first.
    let t = token(4);
    d.ok(&["run", "-d", "--restart", "always", "--name", "down", "busybox", "sleep", &t]);
    let id = id_of(&d, "down");
    let old = d.inspect("down", "{{.State.Pid}}");
    d.kill9();
    kill9(shim_pid(&d, &id));
    d.restart();
    // Brought back by the daemon's start, as a manual start (Docker's restore): `RestartCount` starts over at 0.
    assert!(restarted(&d, "down", 0, &old), "{}", d.inspect("down", "{{.State.Status}} {{.RestartCount}}"));
    assert!(!alive(old.parse().unwrap()), "the first copy still runs");
    assert_eq!(processes_with(&t).len(), 1, "{:?}", processes_with(&t));
    assert_eq!(cgroup_procs(&id).map(|p| p.len()), Some(1), "{:?}", cgroup_procs(&id));
    d.ok(&["rm", "-f", "down"]);
    assert!(d.eventually(5, || processes_with(&t).is_empty()), "{:?}", processes_with(&t));
    assert!(
        d.eventually(5, || cgroups_left(std::slice::from_ref(&id)).is_empty()),
        "{:?}",
        cgroups_left(std::slice::from_ref(&id))
    );
}
