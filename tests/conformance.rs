//! The runtime conformance suite: the same checks against every `Runtime` implementation — Berth's built-in runtime
//! and an external OCI runtime (runc, when installed) — driven through berthd with `--runtime`.
#![allow(clippy::unwrap_used)]

use berth_integration::*;

fn conformance(runtime: &str) {
    let d = Berthd::start_with(&["--runtime", runtime]);
    d.busybox();
    // Output, exit code, environment, working directory, user, hostname, PID 1.
    let out = d.berth(&[
        "run",
        "--rm",
        "-e",
        "K=v",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--hostname",
        "conf",
        "busybox",
        "sh",
        "-c",
        "echo $K $(pwd) $(id -u) $(hostname) $$; exit 6",
    ]);
    assert_eq!(stdout(&out), "v /tmp 1000 conf 1\n", "{runtime}: {}", stderr(&out));
    assert_eq!(out.status.code(), Some(6));
    // Exec, pause and resume, stop.
    d.ok(&["run", "-d", "--name", "svc", "busybox", "sleep", "300"]);
    assert_eq!(d.ok(&["exec", "svc", "sh", "-c", "echo $$ > /dev/null; cat /proc/1/comm"]), "sleep\n");
    d.ok(&["pause", "svc"]);
    assert_eq!(d.inspect("svc", "{{.State.Status}}"), "paused");
    d.ok(&["unpause", "svc"]);
    d.ok(&["stop", "-t", "1", "svc"]);
    assert_eq!(d.inspect("svc", "{{.State.Status}}"), "exited");
    // A read-only root file system.
    let out = d.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(out.status.code(), Some(0), "{runtime}: --read-only not enforced");
    // Capabilities: dropping CHOWN makes chown fail.
    let out = d.berth(&["run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1:1", "/tmp"]);
    assert_ne!(out.status.code(), Some(0), "{runtime}: --cap-drop not enforced");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn builtin_runtime_conforms() {
    conformance("berth");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn runc_conforms() {
    require_root();
    if !berth_runtime_available("runc") {
        skip_missing_tool("runc is not installed; the external-runtime conformance run did not happen");
        return;
    }
    conformance("runc");
}

fn berth_runtime_available(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}
