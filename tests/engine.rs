//! The engine spine, end to end through the `berth` CLI against private daemons.
#![allow(clippy::unwrap_used)]

use berth_integration::*;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn run_streams_output_and_propagates_exit_codes() {
    let d = daemon_with_busybox();
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hello"]), "hello\n");
    // A program that does not exist: Docker's message and exit code 127.
    let out = d.berth(&["run", "--name", "nope", "busybox", "nope"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("executable file not found"), "{}", stderr(&out));
    assert_eq!(d.inspect("nope", "{{.State.Status}} {{.State.ExitCode}}"), "created 127");
    // The image's default command and the container's hostname.
    let id = d.ok(&["run", "-d", "busybox", "hostname"]).trim().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(d.ok(&["wait", &id]).trim(), "0");
    assert_eq!(d.ok(&["logs", &id]).trim(), &id[..12]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn entrypoint_and_cmd_like_docker() {
    let d = daemon_with_busybox();
    let tar = d.dir.join("rootfs.tar");
    // Re-export busybox's rootfs as a new image with ENTRYPOINT + CMD set by --change.
    d.ok(&["create", "--name", "src", "busybox", "true"]);
    let rootfs = d.dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let st = std::process::Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(st.success());
    d.ok(&[
        "import",
        "-c",
        "ENTRYPOINT [\"echo\"]",
        "-c",
        "CMD [\"Hello from CMD\"]",
        tar.to_str().unwrap(),
        "greeter",
    ]);
    assert_eq!(d.ok(&["run", "--rm", "greeter"]), "Hello from CMD\n");
    assert_eq!(d.ok(&["run", "--rm", "greeter", "Hi there"]), "Hi there\n");
    assert_eq!(d.ok(&["run", "--rm", "--entrypoint", "sh", "greeter", "-c", "echo via sh"]), "via sh\n");
    assert_eq!(
        d.inspect("greeter", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}"),
        "[\"echo\"] [\"Hello from CMD\"]"
    );
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn env_workdir_user_hostname() {
    let d = daemon_with_busybox();
    let env_file = d.dir.join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n\nB=from-file\n").unwrap();
    let out = d.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env",
        "B=2",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp/work",
        "-u",
        "1000:1000",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $B $FROM_FILE; pwd; id -u; id -g; hostname",
    ]);
    assert_eq!(out, "1 2 yes\n/tmp/work\n1000\n1000\nbox\n");
    assert_eq!(
        d.ok(&["run", "--rm", "-u", "www-data", "busybox", "sh", "-c", "id -un; echo $HOME"]),
        "www-data\n/var/www\n"
    );
    let out = d.berth(&["run", "--rm", "-u", "nobody-here", "busybox", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("unable to find user nobody-here"), "{}", stderr(&out));
    let out = d.berth(&["run", "--rm", "-w", "relative", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("absolute path"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn lifecycle_states_and_writable_layer() {
    let d = daemon_with_busybox();
    d.ok(&[
        "create",
        "--name",
        "life",
        "busybox",
        "sh",
        "-c",
        "echo started >> /data.txt; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(d.inspect("life", "{{.State.Status}}"), "created");
    d.ok(&["start", "life"]);
    assert_eq!(d.inspect("life", "{{.State.Status}} {{.State.Running}}"), "running true");
    let pid: i32 = d.inspect("life", "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    d.ok(&["pause", "life"]);
    assert_eq!(d.inspect("life", "{{.State.Status}} {{.State.Paused}}"), "paused true");
    assert!(d.ok(&["ps"]).contains("(Paused)"));
    let out = d.berth(&["pause", "life"]);
    assert!(stderr(&out).contains("is already paused"), "{}", stderr(&out));
    d.ok(&["unpause", "life"]);
    assert_eq!(d.inspect("life", "{{.State.Status}}"), "running");
    let out = d.berth(&["rm", "life"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("You cannot remove a running container"), "{}", stderr(&out));
    d.ok(&["stop", "life"]);
    assert_eq!(d.inspect("life", "{{.State.Status}} {{.State.ExitCode}}"), "exited 0");
    assert!(d.inspect("life", "{{.State.FinishedAt}}") > d.inspect("life", "{{.State.StartedAt}}"));
    d.ok(&["restart", "life"]);
    assert_eq!(d.inspect("life", "{{.State.Status}}"), "running");
    // The writable layer survived the stop: the file has both lines.
    assert_eq!(d.ok(&["exec", "life", "cat", "/data.txt"]), "started\nstarted\n");
    d.ok(&["kill", "-s", "KILL", "life"]);
    assert!(d.eventually(10, || d.inspect("life", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"));
    d.ok(&["rename", "life", "life2"]);
    assert_eq!(d.inspect("life2", "{{.Name}}"), "/life2");
    d.ok(&["rm", "life2"]);
    let out = d.berth(&["inspect", "life2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such object: life2") || stderr(&out).contains("No such container"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn stop_escalates_to_sigkill() {
    let d = daemon_with_busybox();
    d.ok(&["run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]);
    let t = std::time::Instant::now();
    d.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(t.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(d.inspect("stubborn", "{{.State.ExitCode}}"), "137");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn logs_tail_timestamps_follow() {
    let d = daemon_with_busybox();
    // stdout and stderr are separate pipes (as with Docker): the pause makes their order in the log certain.
    d.ok(&[
        "run",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.2; echo oops >&2",
    ]);
    assert_eq!(d.ok(&["logs", "talk"]), "line1\nline2\nline3\nline4\nline5\n");
    let out = d.berth(&["logs", "--tail", "2", "talk"]);
    assert_eq!(stdout(&out), "line5\n");
    assert_eq!(stderr(&out), "oops\n");
    let ts = d.ok(&["logs", "-t", "--tail", "1", "talk"]);
    assert!(ts.is_empty() || ts.contains('T'), "{ts}");
    let ts = stderr(&d.berth(&["logs", "-t", "talk"]));
    assert!(ts.ends_with("Z oops\n") && ts.starts_with("20"), "{ts}");
    // Follow a running container until it exits.
    d.ok(&["run", "-d", "--name", "slow", "busybox", "sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.2; done"]);
    assert_eq!(d.ok(&["logs", "-f", "slow"]), "tick1\ntick2\ntick3\n");
    assert_eq!(d.ok(&["logs", "--since", "1h", "slow"]), "tick1\ntick2\ntick3\n");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn exec_codes_env_workdir_user() {
    let d = daemon_with_busybox();
    d.ok(&["run", "-d", "--name", "host", "-e", "FROM_RUN=1", "busybox", "sleep", "300"]);
    let out = d.berth(&["exec", "host", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        d.ok(&["exec", "-e", "X=42", "-w", "/tmp", "-u", "65534", "host", "sh", "-c", "echo $X $FROM_RUN; pwd; id -u"]),
        "42 1\n/tmp\n65534\n"
    );
    // dockerd 20.10 gives 126 to every exec that cannot start, a missing program too (127 is a container's).
    let out = d.berth(&["exec", "host", "nope"]);
    assert_eq!(out.status.code(), Some(126), "stdout {} stderr {}", stdout(&out), stderr(&out));
    assert!(format!("{}{}", stdout(&out), stderr(&out)).contains("executable file not found"));
    // The exec runs inside the container's namespaces: it sees the container's PID 1.
    assert_eq!(d.ok(&["exec", "host", "cat", "/proc/1/cmdline"]), "sleep\u{0}300\u{0}");
    let out = d.berth_input(&["exec", "-i", "host", "cat"], b"piped in\n");
    assert_eq!(stdout(&out), "piped in\n");
    let out = d.berth(&["exec", "missing", "true"]);
    assert!(stderr(&out).contains("No such container: missing"), "{}", stderr(&out));
    d.ok(&["stop", "-t", "0", "host"]);
    let out = d.berth(&["exec", "host", "true"]);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn stdin_pipes_into_run() {
    let d = daemon_with_busybox();
    let out = d.berth_input(&["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"], b"shout\n");
    assert_eq!(stdout(&out), "SHOUT\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn ps_filters_and_quiet() {
    let d = daemon_with_busybox();
    d.ok(&["run", "-d", "--name", "up1", "-l", "tier=web", "busybox", "sleep", "300"]);
    d.ok(&["run", "--name", "done1", "busybox", "true"]);
    let ps = d.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    assert!(ps.contains("up1") && !ps.contains("done1"));
    assert!(d.ok(&["ps", "-a"]).contains("done1"));
    let q = d.ok(&["ps", "-aq"]);
    assert_eq!(q.lines().count(), 2);
    assert!(q.lines().all(|l| l.len() == 12));
    assert_eq!(d.ok(&["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"]), "done1\n");
    assert_eq!(d.ok(&["ps", "--filter", "label=tier=web", "--format", "{{.Names}}"]), "up1\n");
    assert_eq!(d.ok(&["ps", "-a", "--filter", "name=done", "--format", "{{.Names}}"]), "done1\n");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn bad_input_is_refused_cleanly() {
    let d = daemon_with_busybox();
    let out = d.berth(&["run", "--rm", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("nosuchimage"), "{}", stderr(&out));
    d.ok(&["create", "--name", "taken", "busybox", "true"]);
    let out = d.berth(&["create", "--name", "taken", "busybox", "true"]);
    assert!(stderr(&out).contains("is already in use"), "{}", stderr(&out));
    let out = d.berth(&["create", "--name", "bad name", "busybox"]);
    assert!(stderr(&out).contains("Invalid container name"), "{}", stderr(&out));
    let out = d.berth(&["start", "ghost"]);
    assert!(stderr(&out).contains("No such container: ghost"), "{}", stderr(&out));
    // Malformed JSON straight to the API: 400 with Docker's error body.
    let (status, body) = raw_http(
        &d,
        "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{nope",
    );
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("invalid JSON"));
    let (status, _) = raw_http(&d, "GET /v1.99/version HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 400);
    let (status, body) = raw_http(&d, "GET /v1.41/containers/ghost/json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.as_str()), (404, "{\"message\":\"No such container: ghost\"}"));
    // Nothing half-made: only the one good container exists.
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1);
}

/// One raw HTTP/1.1 request over the daemon's socket; returns (status, body).
fn raw_http(d: &Berthd, req: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let req = if req.contains("Connection:") {
        req.to_string()
    } else {
        req.replacen("\r\n", "\r\nConnection: close\r\n", 1)
    };
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    let body = if resp.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body.lines().nth(1).unwrap_or("").to_string()
    } else {
        body
    };
    (status, body)
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn images_import_tag_rmi_and_corrupt_tar() {
    let d = daemon_with_busybox();
    let images = d.ok(&["images"]);
    assert!(images.starts_with("REPOSITORY   TAG       IMAGE ID"), "{images}");
    assert!(images.contains("busybox      latest"), "{images}");
    d.ok(&["tag", "busybox", "mybox:v1"]);
    assert_eq!(d.inspect("mybox:v1", "{{.Id}}"), d.inspect("busybox", "{{.Id}}"));
    assert!(d.ok(&["rmi", "mybox:v1"]).contains("Untagged: mybox:v1"));
    // A truncated tar is refused and leaves no image behind.
    let tar = d.dir.join("good.tar");
    let st =
        std::process::Command::new("tar").args(["-C", "/usr/share/doc", "-cf"]).arg(&tar).arg(".").status().unwrap();
    assert!(st.success());
    let data = std::fs::read(&tar).unwrap();
    let cut = d.dir.join("cut.tar");
    std::fs::write(&cut, &data[..data.len() / 2 + 100]).unwrap();
    let before = d.ok(&["images", "-q"]);
    let out = d.berth(&["import", cut.to_str().unwrap(), "broken:latest"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(d.ok(&["images", "-q"]), before);
    let out = d.berth(&["image", "inspect", "broken"]);
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    // An image in use cannot be removed without force.
    d.ok(&["create", "--name", "user", "busybox", "true"]);
    let out = d.berth(&["rmi", "busybox"]);
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn network_none_and_host() {
    let d = daemon_with_busybox();
    let ifaces = d.ok(&["run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(ifaces, "lo\n");
    // Other tests' bridges and veths come and go meanwhile: only the host's own interfaces count.
    let host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("vb") && !n.starts_with("bb") && !n.starts_with("br-"))
        .collect();
    let seen = d.ok(&["run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"]);
    for i in host_ifaces {
        assert!(seen.contains(&i), "{i} missing from {seen}");
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn security_defaults() {
    let d = daemon_with_busybox();
    let status =
        d.ok(&["run", "--rm", "busybox", "sh", "-c", "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status"]);
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    // Masked and read-only paths.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "sh", "-c", "cat /proc/kcore | wc -c"]).trim(), "0");
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/kernel/domainname"]);
    assert_ne!(out.status.code(), Some(0));
    // Seccomp denies what Docker's profile denies (unshare of a user namespace needs CAP_SYS_ADMIN).
    let out = d.berth(&["run", "--rm", "busybox", "unshare", "-m", "true"]);
    assert_ne!(out.status.code(), Some(0));
    // The container is PID 1 in its own PID namespace.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]), "1\n");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn daemon_kill9_keeps_containers_and_catches_up() {
    let mut d = daemon_with_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo n$i; sleep 0.1; done",
    ]);
    d.ok(&["run", "-d", "--name", "shortlived", "busybox", "sh", "-c", "sleep 1; exit 4"]);
    let pid = d.inspect("survivor", "{{.State.Pid}}");
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "container died with berthd");
    d.restart();
    assert_eq!(d.inspect("survivor", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect("survivor", "{{.State.Pid}}"), pid);
    // The container that ended while berthd was down has its exit recorded.
    assert!(d.eventually(5, || d.inspect("shortlived", "{{.State.Status}} {{.State.ExitCode}}") == "exited 4"));
    // No log line lost: the numbers are consecutive.
    d.ok(&["stop", "-t", "1", "survivor"]);
    let logs = d.ok(&["logs", "survivor"]);
    let nums: Vec<u64> = logs.lines().map(|l| l.trim_start_matches('n').parse().unwrap()).collect();
    assert!(nums.len() > 10);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "gap in {nums:?}");
    assert_eq!(d.inspect("survivor", "{{.State.Status}}"), "exited");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn nothing_leaks_after_containers_go() {
    let d = daemon_with_busybox();
    let ids = vec![
        d.ok(&["run", "-d", "busybox", "sleep", "300"]).trim().to_string(),
        d.ok(&["run", "-d", "busybox", "true"]).trim().to_string(),
    ];
    d.ok(&["run", "--rm", "busybox", "true"]);
    let _ = d.berth(&["run", "--rm", "busybox", "nope"]);
    d.ok(&["exec", &ids[0], "true"]);
    for id in &ids {
        d.ok(&["rm", "-f", id]);
    }
    assert!(d.eventually(5, || d.ok(&["ps", "-aq"]).trim().is_empty()));
    // The directories of network namespace pins and volumes are mount points of their own while berthd runs;
    // nothing below them stays.
    let pins = d.dir.join("run/netns").display().to_string();
    let volumes = d.dir.join("data/volumes").display().to_string();
    let left = || mounts_under(&d.dir).into_iter().filter(|m| *m != pins && *m != volumes).collect::<Vec<_>>();
    assert!(d.eventually(5, || left().is_empty()), "mounts left: {:?}", left());
    // berthd's own command line names the exec root too: only other processes count.
    let shims = || {
        processes_with(&format!("{}/run", d.dir.display())).into_iter().filter(|p| *p != d.pid()).collect::<Vec<_>>()
    };
    assert!(d.eventually(5, || shims().is_empty()), "shims left: {:?}", shims());
    assert!(cgroups_left(&ids).is_empty(), "cgroups left: {:?}", cgroups_left(&ids));
    assert!(std::fs::read_dir(d.dir.join("run/containers")).unwrap().next().is_none(), "bundles left");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn removed_containers_stay_removed_after_restart() {
    let mut d = daemon_with_busybox();
    // `rm -f` kills the container, and its exit is recorded while it is being deleted: that late write must not
    // bring the container back.
    for i in 0..5 {
        let name = format!("gone{i}");
        d.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
        d.ok(&["rm", "-f", &name]);
    }
    d.restart();
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.ok(&["run", "-d", "--name", "gone0", "busybox", "true"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn attach_top_and_system_df() {
    let d = daemon_with_busybox();
    d.ok(&["run", "-d", "--name", "late", "busybox", "sh", "-c", "sleep 1; echo late; exit 3"]);
    let top = d.ok(&["top", "late"]);
    assert!(top.starts_with("UID") && top.contains("sleep 1"), "{top}");
    // attach follows the running container to its end and takes its exit code.
    let out = d.berth(&["attach", "late"]);
    assert_eq!(stdout(&out), "late\n");
    assert_eq!(out.status.code(), Some(3));
    let df = d.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE            TOTAL     ACTIVE    SIZE"), "{df}");
    assert!(df.contains("Images          1         1"), "{df}");
    // The one image is in use by a container: nothing of it is reclaimable.
    assert!(df.lines().nth(1).is_some_and(|l| l.ends_with("0B (0%)")), "{df}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn resource_limits_reach_the_cgroup() {
    let d = daemon_with_busybox();
    d.ok(&["run", "-d", "--name", "limited", "-m", "64m", "--pids-limit", "50", "busybox", "sleep", "300"]);
    // Docker: a memory limit without --memory-swap allows as much swap again.
    assert_eq!(d.inspect("limited", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"), "67108864 134217728");
    let limits = d.ok(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || true",
    ]);
    let id = d.inspect("limited", "{{.Id}}");
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/berth").join(&id);
    if v1.is_dir() {
        let mem = std::fs::read_to_string(v1.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(mem.trim(), "67108864");
        let pids =
            std::fs::read_to_string(std::path::Path::new("/sys/fs/cgroup/pids/berth").join(&id).join("pids.max"))
                .unwrap();
        assert_eq!(pids.trim(), "50");
    } else {
        assert_eq!(limits, "67108864\n50\n", "cgroup v2 limits seen from inside");
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn setup_failures_and_exec_workdir_like_docker() {
    let d = daemon_with_busybox();
    // A failure during the container's setup reaches the user with its own message (not a broken pipe).
    let out = d.berth(&["run", "--rm", "--sysctl", "net.bogus.key=1", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("sysctl net.bogus.key=1"), "{}", stderr(&out));
    // run -w creates a missing directory; exec -w does not (Docker's behaviour for both).
    assert_eq!(d.ok(&["run", "--rm", "-w", "/new/dir", "busybox", "pwd"]), "/new/dir\n");
    assert_eq!(d.ok(&["run", "--rm", "--read-only", "-w", "/new/dir", "busybox", "pwd"]), "/new/dir\n");
    d.ok(&["run", "-d", "--name", "wd", "busybox", "sleep", "300"]);
    let out = d.berth(&["exec", "-w", "/nonexistent", "wd", "pwd"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(format!("{}{}", stdout(&out), stderr(&out)).contains("chdir"), "{}", stderr(&out));
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1, "the failed --rm container is gone");
}
