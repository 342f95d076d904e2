//! Issue 12, finding 1: a container must not be able to tamper with an `exec` while it starts (runc's CVE-2016-9962
//! and CVE-2019-5736). Between the helper's fork into the container and the `execve` of the user's program, the new
//! process is still the host's `berth-shim`: container root watching `/proc` must not reach its binary, its
//! descriptors (berthd's report pipe above all) or its environment (berthd's), and no line it could forge may change
//! what berthd records for any exec.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use berth_integration::{Berthd, api, daemon_with_busybox, processes_with, skip, stdout};

/// Runs as PID 1 of the probe container, as root, for as long as the container lives. It waits for each new PID of
/// the container's namespace in turn (they are allocated in order: it spins on the next one, and skips one that came
/// and went, such as its own command substitutions), and probes it at once, without forking (globs, `[`, `read`,
/// redirections are the shell's own) until it has found something:
/// * `WROTE p n`: a forged report line (then garbage) could be written into its descriptor `n` above stderr,
/// * `FD p n target`: that descriptor could be reached,
/// * `ENV p`: its environment holds `$1` (a variable of berthd's environment),
/// * `EXE p target`: its `exe` can be reached and is not the container's busybox (it is the host's helper binary).
///
/// `SEEN n` every 20 processes shows that it kept up.
const PROBER: &str = r#"
marker=$1
probe() {
    d=/proc/$1
    for f in "$d"/fd/*; do
        fd=${f##*/}
        case $fd in
            0|1|2|'*') ;;
            *)
                # Opened read-write: opening a pipe for writing alone waits for a reader.
                { echo '{"status":"created","pid":1}' 1<> "$f"; } 2>/dev/null && echo "WROTE $1 $fd"
                { echo 'garbage' 1<> "$f"; } 2>/dev/null
                # Seen in a process's fd directory, a descriptor may be gone by the time it is opened (a
                # close-on-exec one at the end of an `execve`): only one whose target can be read was reached.
                t=$(readlink "$f") && echo "FD $1 $fd $t"
                ;;
        esac
    done
    { while IFS= read -r -d '' v; do
        case $v in "$marker"*) echo "ENV $1"; break ;; esac
    done < "$d/environ"; } 2>/dev/null
    # (Read again before it is reported: a process may exit, or finish its execve, between two looks.)
    if [ -e "$d/exe" ] && ! [ "$d/exe" -ef /proc/1/exe ]; then
        t=$(readlink "$d/exe") && [ "$t" != /bin/busybox ] && echo "EXE $1 $t"
    fi
}
next=2
n=0
idle=0
while :; do
    if [ -e /proc/$next ]; then
        probe $next
        next=$((next + 1))
        n=$((n + 1))
        idle=0
        [ $((n % 20)) = 0 ] && echo "SEEN $n"
    elif [ -e /proc/$((next + 1)) ] || [ -e /proc/$((next + 2)) ] || [ -e /proc/$((next + 3)) ]; then
        next=$((next + 1))
    else
        idle=$((idle + 1))
        # Now and then, a wider gap (PIDs used and gone while nothing watched): on to the lowest PID above it.
        if [ $idle -ge 50 ]; then
            idle=0
            low=
            for d in /proc/[0-9]*; do
                p=${d#/proc/}
                [ "$p" -gt "$next" ] && { [ -z "$low" ] || [ "$p" -lt "$low" ]; } && low=$p
            done
            [ -n "$low" ] && next=$low
        fi
    fi
done
"#;

/// A variable of berthd's own environment that no container process has, to look for in `/proc/<pid>/environ`.
fn berthd_marker(d: &Berthd) -> Option<String> {
    let env = std::fs::read(format!("/proc/{}/environ", d.pid())).ok()?;
    env.split(|b| *b == 0)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|v| v.split_once('=').map(|(k, _)| k))
        .find(|k| !k.is_empty() && !["PATH", "HOME", "HOSTNAME", "TERM", "PWD", "SHLVL", "_"].contains(k))
        .map(|k| format!("{k}="))
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// The last PID of `NSpid` in `/proc/<pid>/status`: the PID in the process's own namespace.
fn ns_pid(pid: i64) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

struct Started {
    id: String,
    token: String,
    code: i64,
}

/// Starts `sh -c 'sleep 10; exit CODE' TOKEN` in `container`, detached, and checks at once that the PID berthd
/// reports is that very process (alive for ten seconds — far longer than the API calls between, even on a loaded
/// machine — named by its token, in the container's PID namespace).
fn start_exec(d: &Berthd, container: &str, token: &str, code: i64) -> Result<Started, String> {
    let script = format!("sleep 10; exit {code}");
    let body = serde_json::json!({"Cmd": ["sh", "-c", script, token]}).to_string();
    let (status, _, out) = api(d, "POST", &format!("/containers/{container}/exec"), body.as_bytes());
    if status != 201 {
        return Err(format!("create exec {token}: {status} {}", String::from_utf8_lossy(&out)));
    }
    let id = json(&out)["Id"].as_str().unwrap().to_string();
    let (status, _, out) = api(d, "POST", &format!("/exec/{id}/start"), br#"{"Detach":true}"#);
    if status != 200 {
        return Err(format!("start exec {token}: {status} {}", String::from_utf8_lossy(&out)));
    }
    let (_, _, out) = api(d, "GET", &format!("/exec/{id}/json"), b"");
    let pid = json(&out)["Pid"].as_i64().unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let named = cmdline.split(|b| *b == 0).any(|a| a == token.as_bytes());
    // Its PID in the container's namespace differs from the host's: it really is in the container.
    if pid <= 1 || !named || ns_pid(pid).is_none_or(|n| n == pid) {
        return Err(format!(
            "exec {token}: berthd reports PID {pid}, which is not the exec's process (cmdline {:?})",
            String::from_utf8_lossy(&cmdline)
        ));
    }
    Ok(Started { id, token: token.to_string(), code })
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn container_root_cannot_reach_an_exec_while_it_starts() {
    let d = daemon_with_busybox();
    let marker = berthd_marker(&d);
    if marker.is_none() {
        skip("berthd's environment has no variable to look for; the environment part did not run");
    }
    let marker = marker.unwrap_or_else(|| "NO-MARKER-TO-FIND=".into());
    d.ok(&["run", "-d", "--name", "probe", "busybox", "sh", "-c", PROBER, "sh", &marker]);

    // Two clients, 60 execs each, while the prober walks /proc.
    let started = Instant::now();
    let results: Vec<Result<Started, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let d = &d;
                s.spawn(move || {
                    (0..60)
                        .map(|i| start_exec(d, "probe", &format!("tok-{t}-{i}"), (t * 60 + i) % 100 + 3))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();

    // Every exec ends with its own exit code (each sleeps ten seconds from its start: 60 s after the last start is a
    // generous bound on a loaded machine).
    let mut wrong = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for st in results.iter().filter_map(|r| r.as_ref().ok()) {
        let code = loop {
            let (_, _, out) = api(&d, "GET", &format!("/exec/{}/json", st.id), b"");
            let v = json(&out);
            if v["Running"] == false || Instant::now() > deadline {
                break v["ExitCode"].as_i64();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if code != Some(st.code) {
            wrong.push(format!("{}: exit code {code:?}, expected {}", st.token, st.code));
        }
    }

    let logs = stdout(&d.berth(&["logs", "probe"]));
    let seen = logs.lines().filter(|l| l.starts_with("SEEN")).count() * 20;
    let mut findings: HashMap<&str, Vec<&str>> = HashMap::new();
    for l in logs.lines().filter(|l| !l.starts_with("SEEN")) {
        findings.entry(l.split(' ').next().unwrap_or("")).or_default().push(l);
    }
    eprintln!(
        "{} execs in {:?}, the prober probed {seen}+ new processes; findings: {:?}",
        results.len(),
        started.elapsed(),
        findings.iter().map(|(k, v)| (*k, v.len())).collect::<Vec<_>>()
    );
    // Each exec makes two processes (its shell, then `sleep`). How many the prober catches while they start is
    // scheduling; a prober that caught few of them would prove little, one that caught a quarter has raced the window
    // many times over (the old binaries gave it host descriptors in every run).
    assert!(
        seen * 4 >= results.len(),
        "the prober did not keep up: it probed {seen} processes; logs {logs:?}, ps {}",
        stdout(&d.berth(&["exec", "probe", "ps", "-o", "pid,stat,args"]))
    );
    assert!(findings.is_empty(), "container root reached a starting exec: {findings:#?}");
    assert!(failures.is_empty(), "execs failed or misreported: {failures:#?}");
    assert!(wrong.is_empty(), "wrong exit codes: {wrong:#?}");
    d.ok(&["rm", "-f", "probe"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn shims_run_from_a_sealed_copy_with_an_empty_environment() {
    let d = daemon_with_busybox();
    let id = d.ok(&["run", "-d", "busybox", "sleep", "600"]).trim().to_string();
    let shims: Vec<i32> = processes_with(&id)
        .into_iter()
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.windows(6).any(|w| w == b"start\0")))
        .collect();
    assert_eq!(shims.len(), 1, "one shim for {id}: {shims:?}");
    let shim = shims[0];
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert!(
        exe.as_os_str().as_bytes().starts_with(b"/memfd:berth-shim"),
        "the shim runs from {}, not from a sealed copy",
        exe.display()
    );
    // Whoever gets hold of it (a container, through a process running it: CVE-2019-5736 kept a read handle until
    // the binary was no longer busy, then reopened it for writing) can never change a byte of it: it is sealed.
    let handle = std::fs::File::open(format!("/proc/{shim}/exe")).unwrap();
    // SAFETY: F_GET_SEALS on a descriptor we own reads no memory.
    let seals = unsafe { libc::fcntl(handle.as_raw_fd(), libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    assert_eq!(seals & wanted, wanted, "seals {seals:#x}");
    let host = std::fs::read(berth_integration::bin("berth-shim")).unwrap();
    match std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", handle.as_raw_fd())) {
        Ok(mut f) => {
            let err = f.write_all(b"\x7fELF-overwritten").expect_err("the sealed copy took a write");
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        }
        // Busy while the shim runs from it.
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ETXTBSY), "{e}"),
    }
    assert_eq!(std::fs::read(berth_integration::bin("berth-shim")).unwrap(), host);
    assert_eq!(std::fs::read_to_string(format!("/proc/{shim}/comm")).unwrap().trim(), "berth-shim");
    // Nothing of berthd's environment (the shim's is what the container's processes start from).
    let env = std::fs::read(format!("/proc/{shim}/environ")).unwrap();
    let names: Vec<String> = env
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).split('=').next().unwrap_or("").to_string())
        .collect();
    assert!(names.iter().all(|n| n == "PATH"), "the shim's environment: {names:?}");
    // The same for an exec's helper (whose environment its child had inside the container until its execve).
    d.ok(&["exec", "-d", &id, "sleep", "30"]);
    let helpers: Vec<i32> = processes_with(&id)
        .into_iter()
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.windows(5).any(|w| w == b"exec\0")))
        .collect();
    assert_eq!(helpers.len(), 1, "one exec helper: {helpers:?}");
    let env = std::fs::read(format!("/proc/{}/environ", helpers[0])).unwrap();
    assert!(
        env.split(|b| *b == 0).filter(|v| !v.is_empty()).all(|v| v.starts_with(b"PATH=")),
        "the helper's environment: {}",
        String::from_utf8_lossy(&env)
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", helpers[0])).unwrap();
    assert!(exe.as_os_str().as_bytes().starts_with(b"/memfd:berth-shim"), "the helper runs {}", exe.display());
    d.ok(&["rm", "-f", &id]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn no_new_privileges_processes_get_the_filter_and_the_user() {
    let d = daemon_with_busybox();
    // The filter is loaded before the user switch when it allows it (Docker's default profile does): init and exec,
    // as root and as another user, start with no_new_privs and the filter.
    let id = d.ok(&["run", "-d", "--security-opt", "no-new-privileges", "-u", "65534", "busybox", "sleep", "600"]);
    let id = id.trim();
    let status = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[id, "sh", "-c", "grep -E '^(Uid|NoNewPrivs|Seccomp):' /proc/self/status; id -u"]);
        d.ok(&a)
    };
    for (args, uid) in [(&[][..], "65534"), (&["-u", "0"][..], "0"), (&["-u", "1000"][..], "1000")] {
        let out = status(args);
        assert!(out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"), "{args:?}: {out}");
        assert!(
            out.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}")) && out.ends_with(&format!("{uid}\n")),
            "{out}"
        );
    }
    let init = d.inspect(id, "{{.State.Pid}}");
    let init = std::fs::read_to_string(format!("/proc/{}/status", init.trim())).unwrap();
    assert!(init.contains("NoNewPrivs:\t1") && init.contains("Seccomp:\t2"), "{init}");
    // Forbidden by the profile, as root too.
    let out = d.berth(&["exec", "-u", "0", id, "unshare", "-U", "true"]);
    assert!(!out.status.success(), "unshare ran under the default profile");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"), "{out:?}");
    d.ok(&["rm", "-f", id]);
}
