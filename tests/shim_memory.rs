//! The idle shim's memory (issue 17): once its container has started and a second has passed without work, a shim
//! gives back the pages of code it touched and sleeps with nothing mapped of its binary's and libc's code but the
//! fault-around window (64 KiB) around the instructions of its wait, and again after each piece of work; everything
//! the container needs from it still works afterwards. Measured in mapped code, not time.
#![allow(clippy::unwrap_used)]

use berth_integration::*;

/// Rss of the shim's executable file mappings (its binary, libc and the other libraries), in KiB.
fn code_kib(pid: i32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut exec = false;
    let mut total = 0;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let perms = f.next().unwrap_or("");
            let inode = f.nth(2).unwrap_or("0");
            exec = perms.as_bytes().get(2) == Some(&b'x') && inode != "0";
        } else if first == "Rss:" && exec {
            total += f.next().unwrap().parse::<u64>().unwrap();
        }
    }
    total
}

/// At most two 64 KiB windows of the binary (the wait's function may straddle a boundary) and two of libc (its
/// `syscall`). Before the drop moved right before the wait, an idle release shim kept 384 KiB of each.
const IDLE_CODE_KIB: u64 = 256;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn an_idle_shim_keeps_only_its_wait_mapped_and_still_serves() {
    let d = daemon_with_busybox();
    d.ok(&["run", "-d", "--name", "idle", "busybox", "sh", "-c", "trap 'echo woke' USR1; while :; do sleep 0.2; done"]);
    let id = d.inspect("idle", "{{.Id}}");
    let pid: i32 = std::fs::read_to_string(d.dir.join("run/containers").join(&id).join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut seen = 0;
    // The drop comes one quiet second after the start; 10 s leaves room for a loaded machine.
    assert!(
        d.eventually(10, || {
            seen = code_kib(pid);
            seen <= IDLE_CODE_KIB
        }),
        "the idle shim keeps {seen} KiB of code mapped"
    );

    // Work through the shim's loop: a request (pause, unpause), output to the log, an attach; all answered.
    d.ok(&["pause", "idle"]);
    assert_eq!(d.inspect("idle", "{{.State.Status}}"), "paused");
    d.ok(&["unpause", "idle"]);
    d.ok(&["kill", "-s", "USR1", "idle"]);
    assert!(d.eventually(10, || d.ok(&["logs", "idle"]).contains("woke")), "{}", d.ok(&["logs", "idle"]));
    // And idle again: the pages that work mapped go too.
    assert!(
        d.eventually(10, || {
            seen = code_kib(pid);
            seen <= IDLE_CODE_KIB
        }),
        "after work, the idle shim keeps {seen} KiB of code mapped"
    );

    // The exit is recorded as ever (SIGKILL: 137) and the shim goes.
    d.ok(&["kill", "idle"]);
    assert_eq!(d.ok(&["wait", "idle"]).trim(), "137");
    // Gone, or a zombie (an empty command line) until its reaper gets to it.
    let gone = || std::fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty());
    assert!(d.eventually(10, gone), "shim {pid} still there");
    d.ok(&["rm", "idle"]);
}
