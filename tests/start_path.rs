//! What the start path of `run --rm` skips, and that nothing is lost by it: an `--rm` container's writable layer is a
//! `volatile` overlay (no sync of the host's file system at its unmount), its record is written without an fsync,
//! `restart` keeps such a container (and its files) as dockerd's does, and one left behind by a crash is removed
//! when the daemon starts, as dockerd's restore does.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use berth_integration::*;

/// The super options of the container's `/` (its init's mount table).
fn root_mount_options(d: &Berthd, id: &str) -> String {
    let pid = d.inspect(id, "{{.State.Pid}}");
    let table = std::fs::read_to_string(format!("/proc/{}/mountinfo", pid.trim())).unwrap();
    table.lines().find(|l| l.split(' ').nth(4) == Some("/")).map(str::to_string).unwrap_or_default()
}

#[test]
#[ignore = "needs root: test.sh runs it with --include-ignored"]
fn rm_containers_have_a_volatile_writable_layer_that_restart_keeps() {
    let d = Berthd::start();
    d.busybox();
    let kept = d.ok(&["run", "-d", "busybox", "sleep", "300"]);
    let kept = kept.trim();
    let rm = d.ok(&["run", "-d", "--rm", "busybox", "sleep", "300"]);
    let rm = rm.trim();
    let opts = root_mount_options(&d, rm);
    assert!(opts.contains("overlay") && opts.contains("volatile"), "--rm: a volatile overlay: {opts}");
    let opts = root_mount_options(&d, kept);
    assert!(opts.contains("overlay") && !opts.contains("volatile"), "without --rm, a synced one: {opts}");

    // `restart` keeps an --rm container (dockerd's too), with its writable layer: the kernel refuses to mount a
    // volatile upper directory again until its mark goes, which a restart in the same boot removes.
    d.ok(&["exec", rm, "sh", "-c", "echo kept > /f"]);
    d.ok(&["restart", "-t", "1", rm]);
    assert_eq!(d.inspect(rm, "{{.State.Running}}").trim(), "true");
    assert_eq!(d.ok(&["exec", rm, "cat", "/f"]).trim(), "kept");
    assert!(root_mount_options(&d, rm).contains("volatile"));
    // A stop removes it.
    d.ok(&["stop", "-t", "1", rm]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.berth(&["inspect", rm]).status.success() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!d.berth(&["inspect", rm]).status.success(), "stopped, an --rm container goes");
    assert!(!d.dir.join("data/containers").join(rm).exists(), "with its directory");
    d.ok(&["rm", "-f", kept]);
}

#[test]
#[ignore = "needs root: test.sh runs it with --include-ignored"]
fn an_rm_container_a_crash_left_is_removed_at_start_up() {
    let mut d = Berthd::start();
    d.busybox();
    let never = d.ok(&["create", "--rm", "busybox", "true"]);
    let never = never.trim().to_string();
    let plain = d.ok(&["create", "busybox", "true"]);
    let plain = plain.trim().to_string();
    d.restart();
    // The removal runs in the background of the start-up: bounded wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.berth(&["inspect", &never]).status.success() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!d.berth(&["inspect", &never]).status.success(), "a never-started --rm container goes at start-up");
    assert!(!d.dir.join("data/containers").join(&never).exists(), "with its directory");
    assert!(d.berth(&["inspect", &plain]).status.success(), "one without --rm stays");
    d.ok(&["rm", &plain]);
}
