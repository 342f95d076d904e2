//! Attach and exec streams and signals as dockerd 20.10 gives them, through the docker CLI, docker-py
//! (`/usr/bin/python3`, Debian's python3-docker) and docker-compose 1.29: attaching before `start` and to a stopped
//! container, a non-streaming `attach(logs=True, stream=False)`, detach keys (the daemon's on raw sockets, the CLI's
//! on a terminal), exec framing chosen by the start request's `Tty`, exec start failures exiting 126, and every form
//! of `kill --signal` reaching a trapping shell of a daemon started with SIGUSR1 ignored (as a careless parent leaves
//! it; SIGHUP, which `nohup` ignores, berthd handles itself, for a reload).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_integration::*;

/// The docker CLI with `input` on its stdin, bounded by `timeout` (a hung attach fails the test rather than hangs it).
fn docker_input(d: &Berthd, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(docker_cli().unwrap())
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `script` (which prints `ok` at its end and removes its containers) with `/usr/bin/python3` against a new
/// daemon with busybox, when docker-py is installed; then berthd holds no more descriptors than before it.
fn python_test(script: &str) {
    require_root();
    if docker_py().is_none() {
        return;
    }
    let d = daemon_with_busybox();
    // A first container opens what berthd keeps open for good (the event log, the store's files).
    docker_ok(&d, &["run", "--rm", "busybox", "true"]);
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", d.pid())).unwrap().count();
    let before = fds();
    assert_eq!(python(&d, script).trim(), "ok");
    // Connections and shims' sockets of the removed containers close as their tasks end.
    assert!(d.eventually(10, || fds() <= before), "berthd had {before} descriptors, now {}", fds());
}

/// Runs `script` with `/usr/bin/python3` against the daemon (bounded: 120 s); its stdout.
fn python(d: &Berthd, script: &str) -> String {
    let out = Command::new("timeout")
        .args(["120", "/usr/bin/python3", "-c", script])
        .env("DOCKER_HOST", d.host())
        .env("SOCK", &d.sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "python: {}{}\n--- berthd ---\n{}", stdout(&out), stderr(&out), tail(&d.log(), 40));
    stdout(&out)
}

/// `docker start -a` of a created container and again of the same container once it has exited (Docker attaches
/// before it starts; berthd answered 409 for the stopped one), `start -ai` with stdin, `docker run` losing no output
/// of a quick container, and docker-compose 1.29's foreground `up` (it attaches before it starts).
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_attaches_before_start() {
    require_root();
    if docker_cli().is_none() {
        skip_missing_tool("the docker CLI is not installed: the attach-before-start test did not run");
        return;
    }
    let d = daemon_with_busybox();
    docker_ok(&d, &["create", "--name", "once", "busybox", "sh", "-c", "echo first; echo second >&2; exit 3"]);
    for round in 0..2 {
        let out = docker_input(&d, &["start", "-a", "once"], b"");
        assert_eq!(out.status.code(), Some(3), "round {round}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(stdout(&out), "first\n", "round {round}");
        assert_eq!(stderr(&out), "second\n", "round {round}");
    }
    docker_ok(&d, &["create", "-i", "--name", "reader", "busybox", "sh", "-c", "read x; echo got $x"]);
    let out = docker_input(&d, &["start", "-ai", "reader"], b"hi\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got hi\n");
    // Every line of a container that writes at once and exits reaches `docker run`.
    let out = docker_input(&d, &["run", "--rm", "busybox", "seq", "1", "3000"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: String = (1..=3000).map(|i| format!("{i}\n")).collect();
    assert!(stdout(&out) == expected, "run lost output: {} bytes of {}", stdout(&out).len(), expected.len());

    let Some(compose) = ComposeV1::new(
        &d,
        "oneshot",
        "version: \"3\"\nservices:\n  once:\n    image: busybox\n    command: sh -c 'echo from-once; echo line2; exit 4'\n",
        "its foreground `up`",
    ) else {
        return;
    };
    for flag in [&["--abort-on-container-exit"][..], &["--exit-code-from", "once"][..]] {
        let mut args = vec!["up", "--no-color"];
        args.extend(flag);
        let out = compose.run(&args);
        let text = stdout(&out);
        assert!(text.contains("from-once") && text.contains("line2"), "{flag:?}: {text}{}", stderr(&out));
        if flag.len() == 2 {
            assert_eq!(out.status.code(), Some(4), "{text}{}", stderr(&out));
        }
        compose.run_ok(&["down"]);
    }
}

/// docker-py: an attach (logs and stream) registered before `start` gets everything; `attach(logs=True,
/// stream=False)` of an exited container completes with its logs (it never did); stdin reaches a container attached
/// before its start; exec output framed by the start request's `Tty` (create `tty=True` + start `Tty=False`:
/// multiplexed; create `tty=False` + start `Tty=True`: raw stdout, no stderr; `exec_run(tty=True, demux=True)`);
/// an exec of a missing program exits 126, as dockerd 20.10's.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_py_attach_logs_and_exec_framing() {
    python_test(
        r#"
import docker, os, socket, time
c = docker.from_env()
api = c.api
ct = c.containers.create("busybox", ["sh", "-c", "echo one; echo two >&2; echo three"])
s = ct.attach(stream=True, stdout=True, stderr=True, logs=True)
ct.start()
got = b"".join(s)
assert sorted(got.split()) == [b"one", b"three", b"two"], got
assert ct.wait()["StatusCode"] == 0
logs = ct.attach(logs=True, stream=False, stdout=True, stderr=True)
assert sorted(logs.split()) == [b"one", b"three", b"two"], logs
assert ct.attach(logs=True, stream=False, stdout=True, stderr=False) == b"one\nthree\n"
ct.remove()

# stdin attached before the start
ct = c.containers.create("busybox", ["sh", "-c", "read x; echo got $x"], stdin_open=True)
sock = api.attach_socket(ct.id, params={"stdin": 1, "stdout": 1, "stream": 1})
ct.start()
sock._sock.sendall(b"hi\n")
sock._sock.settimeout(30)
data = b""
while True:
    chunk = sock._sock.recv(4096)
    if not chunk:
        break
    data += chunk
assert data == b"\x01\x00\x00\x00\x00\x00\x00\x07got hi\n", data
ct.wait()
ct.remove()

ct = c.containers.run("busybox", ["sleep", "300"], detach=True)
e = api.exec_create(ct.id, ["sh", "-c", "echo out; echo err >&2"], tty=True)
out = api.exec_start(e["Id"], tty=False, demux=True)
assert out[0] is not None and b"out" in out[0] and b"err" in out[0] and out[1] is None, out
e = api.exec_create(ct.id, ["sh", "-c", "echo out; echo err >&2"], tty=False)
assert api.exec_start(e["Id"], tty=True) == b"out\n"
r = ct.exec_run(["sh", "-c", "echo out"], tty=True, demux=True)
assert r.exit_code == 0 and r.output == (b"out\r\n", None), r
r = ct.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
assert r.output == (b"out\n", b"err\n"), r
r = ct.exec_run(["nosuchbinary"])
assert r.exit_code == 126, r
assert b"executable file not found" in r.output, r
ct.remove(force=True)
print("ok")
"#,
    );
}

/// The daemon's detach keys on raw hijacked sockets: on a TTY container the default `ctrl-p,ctrl-q` and a custom
/// `detachKeys` end the attach, leave the container running and publish `detach`; a non-TTY container's input
/// passes them through (as Docker's); an exec's `DetachKeys` (of its create request) end its stream and leave it
/// running (`exec_detach`); bad specs get Docker's 400, an attach to a paused container Docker's 409.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn detach_keys_on_attach_and_exec() {
    python_test(
        r#"
import docker, json, os, socket, time
c = docker.from_env()
api = c.api
SOCK = os.environ["SOCK"]

def hijack(path, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCK)
    s.settimeout(3)
    b = json.dumps(body).encode() if body is not None else b""
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path, len(b))).encode() + b)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s

def read_to_end(s):
    # (data, True) once the daemon closed the stream; (data, False) when it stayed open for 3 s.
    out = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out, True
            out += chunk
    except socket.timeout:
        return out, False

def actions(ct, since):
    return [e["Action"] for e in api.events(since=since, until=time.time() + 0.5, decode=True,
                                             filters={"container": ct.id})]

tty = c.containers.run("busybox", ["cat"], detach=True, stdin_open=True, tty=True)
since = time.time()
for query, keys in [("", b"\x10\x11"), ("&detachKeys=ctrl-x,a", b"\x18b\x18a")]:
    s = hijack("/v1.41/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1%s" % (tty.id, query))
    s.sendall(b"abc\n" + keys)
    data, closed = read_to_end(s)
    assert closed, (query, data)
    tty.reload()
    assert tty.status == "running", (query, tty.status)
assert actions(tty, since).count("detach") == 2, actions(tty, since)

plain = c.containers.run("busybox", ["cat"], detach=True, stdin_open=True)
s = hijack("/v1.41/containers/%s/attach?stream=1&stdin=1&stdout=1" % plain.id)
s.sendall(b"abc\n\x10\x11")
data, closed = read_to_end(s)
assert not closed and data == b"\x01\x00\x00\x00\x00\x00\x00\x06abc\n\x10\x11", (closed, data)
s.close()

for spec in ["ctrl-", "ctrl-p,", "ctrl-zz", "CTRL-P"]:
    r = api._post(api._url("/containers/{0}/attach", tty.id),
                  params={"stream": 1, "stdout": 1, "detachKeys": spec},
                  headers={"Upgrade": "tcp", "Connection": "Upgrade"})
    assert r.status_code == 400 and r.json()["message"] == "Invalid detach keys (%s) provided" % spec, r.text

tty.pause()
r = api._post(api._url("/containers/{0}/attach", tty.id), params={"stream": 1, "stdout": 1},
              headers={"Upgrade": "tcp", "Connection": "Upgrade"})
assert r.status_code == 409, r.text
assert r.json()["message"] == "container %s is paused, unpause the container before attach" % tty.id, r.text
tty.unpause()

since = time.time()
r = api._post_json(api._url("/containers/{0}/exec", tty.id), data={
    "AttachStdin": True, "AttachStdout": True, "Tty": True, "Cmd": ["cat"], "DetachKeys": "ctrl-e"})
eid = r.json()["Id"]
s = hijack("/v1.41/exec/%s/start" % eid, {"Tty": True})
s.sendall(b"zz\n\x05")
data, closed = read_to_end(s)
assert closed, data
assert api.exec_inspect(eid)["Running"], "the exec ended with its detach"
assert "exec_detach" in actions(tty, since), actions(tty, since)
r = api._post_json(api._url("/containers/{0}/exec", tty.id), data={"Cmd": ["cat"], "DetachKeys": "ctrl-"})
assert r.status_code == 400 and r.json()["message"] == "Invalid escape keys (ctrl-) provided", r.text
tty.remove(force=True)
plain.remove(force=True)
print("ok")
"#,
    );
}

/// The docker CLI on a terminal (`script`): `docker run -it` (StdinOnce) left with ctrl-p ctrl-q keeps running (the
/// end of its attach used to close a TTY's stdin, which ended the shell), and `detachKeys` of the CLI's config.json
/// apply to `docker attach`.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_detaches_on_a_terminal() {
    require_root();
    if docker_cli().is_none() || !Path::new("/usr/bin/script").is_file() {
        skip_missing_tool("the docker CLI or script(1) is not installed: the terminal detach test did not run");
        return;
    }
    let d = daemon_with_busybox();
    let config = d.dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // Keys typed one after the other on the terminal, as a user would (the CLI reads them one by one).
    let on_terminal = |cmd: &str, keys: &[&[u8]]| {
        let mut child = Command::new("timeout")
            .args(["60", "script", "-qec", cmd, "/dev/null"])
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The CLI needs to be attached before it reads the keys (its terminal echoes nothing back before).
        std::thread::sleep(Duration::from_secs(2));
        for k in keys {
            stdin.write_all(k).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        out
    };
    let docker = docker_cli().unwrap();
    let out = on_terminal(&format!("{} run -it --name t1 busybox cat", docker.display()), &[b"x\n", b"\x10", b"\x11"]);
    // `docker run` ends quietly with 0 on a detach (as against dockerd 20.10).
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // What the attach's end would do to the container (its stdin closed) takes the shim a moment.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.inspect("t1", "{{.State.Status}}"), "running", "detaching ended the container");

    std::fs::write(config.join("config.json"), r#"{"detachKeys": "ctrl-x,a"}"#).unwrap();
    let out =
        on_terminal(&format!("{} attach t1", docker.display()), &[b"y\n", b"\x10", b"\x11", b"z\n", b"\x18", b"a"]);
    let text = stdout(&out);
    assert!(text.contains("read escape sequence") && text.contains('z'), "{text}{}", stderr(&out));
    assert_eq!(d.inspect("t1", "{{.State.Status}}"), "running");
    docker_ok(&d, &["rm", "-f", "t1"]);
}

/// Whether signal `sig` is ignored by process `pid` (its `SigIgn` mask).
fn ignores(pid: i32, sig: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap().trim().to_string();
    u64::from_str_radix(&mask, 16).unwrap() & (1 << (sig - 1)) != 0
}

/// `docker kill --signal` in every form Docker accepts (`SIGHUP`, `HUP`, `hup`, `1`, `SIGRTMIN+3`, `RTMIN+3`,
/// `rtmin+3`, `37`, `SIGUSR1`) reaches a busybox shell that traps them, with berthd started with SIGUSR1 ignored
/// (containers must not inherit that; a shell cannot trap a signal ignored at its start); bad ones get dockerd's
/// messages.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn kill_signals_in_every_form() {
    require_root();
    if docker_cli().is_none() {
        skip_missing_tool("the docker CLI is not installed: the signal test did not run");
        return;
    }
    // SAFETY: (test) SIG_IGN for SIGUSR1 in this test process, inherited across the daemon's fork and exec; restored
    // at once (this binary's other tests start daemons too, which may inherit it meanwhile).
    let d = unsafe {
        let old = libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        let d = Berthd::start();
        libc::signal(libc::SIGUSR1, old);
        d
    };
    assert!(ignores(d.pid(), libc::SIGUSR1), "berthd was meant to start with SIGUSR1 ignored");
    d.busybox();
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "trap",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-1' HUP; trap 'echo got-37' 37; trap 'echo got-10' USR1; echo ready; \
             while :; do sleep 0.1; done",
        ],
    );
    assert!(d.eventually(10, || docker_ok(&d, &["logs", "trap"]).contains("ready")));
    let shell = d.inspect("trap", "{{.State.Pid}}").parse::<i32>().unwrap();
    assert!(!ignores(shell, libc::SIGUSR1), "the container inherited berthd's ignored SIGUSR1");
    let mut want = std::collections::HashMap::<&str, usize>::new();
    for (form, line) in [
        ("SIGHUP", "got-1"),
        ("HUP", "got-1"),
        ("hup", "got-1"),
        ("1", "got-1"),
        ("SIGRTMIN+3", "got-37"),
        ("RTMIN+3", "got-37"),
        ("rtmin+3", "got-37"),
        ("37", "got-37"),
        ("SIGUSR1", "got-10"),
    ] {
        docker_ok(&d, &["kill", "--signal", form, "trap"]);
        *want.entry(line).or_default() += 1;
        let n = want[line];
        // The trap runs once the shell's current `sleep 0.1` ends.
        let seen = d.eventually(10, || docker_ok(&d, &["logs", "trap"]).lines().filter(|l| *l == line).count() >= n);
        assert!(seen, "{form}: {}", docker_ok(&d, &["logs", "trap"]));
    }
    for (form, message) in [
        ("SIGFOO", "Invalid signal: SIGFOO".to_string()),
        ("0", "Invalid signal: 0".to_string()),
        ("SIGRTMAX+1", "Invalid signal: SIGRTMAX+1".to_string()),
        ("65", "Cannot kill container: trap: The linux daemon does not support signal 65".to_string()),
    ] {
        let out = d.docker(&["kill", "--signal", form, "trap"]).unwrap();
        assert!(!out.status.success() && stderr(&out).contains(&message), "{form}: {}", stderr(&out));
    }
    assert_eq!(d.inspect("trap", "{{.State.Status}}"), "running");
    let out = d.docker(&["kill", "nosuch"]).unwrap();
    assert!(stderr(&out).contains("Cannot kill container: nosuch: No such container: nosuch"), "{}", stderr(&out));
    docker_ok(&d, &["rm", "-f", "trap"]);
}
