//! berth-init: the small init Berth runs as PID 1 of a container started with `--init` (Docker's `docker-init`,
//! tini): it starts the command (`berth-init -- CMD ARGS...`) in its own process group (the terminal's foreground group
//! when there is one), forwards every signal it gets to it, reaps every zombie (orphans are reparented to PID 1), and
//! exits with the command's exit code, or 128 + the signal that ended it.
//!
//! `berth-init --pause` is a pod's namespace holder instead: it runs nothing, reaps what is reparented to it (the pod's
//! processes when the pod shares its PID namespace) and exits 0 on `SIGTERM`, `SIGINT` or `SIGHUP`.
//!
//! Built by berthd's build script with `rustc` alone (std only, libc's functions declared here), statically linked
//! (`+crt-static`): it runs inside any image, whatever libc the image has or lacks. berthd embeds it and bind-mounts it
//! read-only at `/sbin/docker-init`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, exit};

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
struct SigSet([u64; 16]);

/// `siginfo_t` (128 bytes; only its size matters here).
#[repr(C)]
struct SigInfo([u64; 16]);

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigdelset(set: *mut SigSet, sig: i32) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigtimedwait(set: *const SigSet, info: *mut SigInfo, timeout: *const Timespec) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn setpgid(pid: i32, pgid: i32) -> i32;
    fn tcsetpgrp(fd: i32, pgrp: i32) -> i32;
    fn getpid() -> i32;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}

const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;
const WNOHANG: i32 = 1;
const SIGCHLD: i32 = 17;
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const PR_SET_DUMPABLE: i32 = 4;
/// Signals the kernel raises for a fault of this process itself: never blocked.
const SYNCHRONOUS: [i32; 7] = [4, 5, 6, 7, 8, 11, 31];

fn fatal(msg: &str, code: i32) -> ! {
    eprintln!("[FATAL berth-init] {msg}");
    exit(code)
}

/// The exit code of a wait status: the code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    let sig = status & 0x7f;
    if sig == 0 { (status >> 8) & 0xff } else { 128 + sig }
}

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // `docker-init -- CMD...` (tini's options other than `--` are not supported).
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        fatal("usage: berth-init -- COMMAND [ARGS...] | berth-init --pause", 1);
    }
    // Every signal waits for the loop below (a blocked signal reaches PID 1 of a PID namespace, an unhandled one would
    // not); the child gets a clean mask (std's spawn resets it).
    let mut waited = SigSet([0; 16]);
    let mut parent_mask = SigSet([0; 16]);
    // SAFETY: plain libc calls on sets owned here.
    unsafe {
        sigfillset(&mut waited);
        for s in SYNCHRONOUS.iter().chain(&[SIGTTIN, SIGTTOU]) {
            sigdelset(&mut waited, *s);
        }
        if sigprocmask(SIG_SETMASK, &waited, &mut parent_mask) != 0 {
            fatal("sigprocmask failed", 1);
        }
        // Not PID 1 (a nested init): orphans must still come to us.
        if getpid() != 1 {
            prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }
    if args.len() == 1 && args[0] == "--pause" {
        pause(&waited);
    }
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Its own process group, in the terminal's foreground when there is a terminal (as tini).
            setpgid(0, 0);
            let mut ttou = SigSet([0; 16]);
            sigfillset(&mut ttou);
            sigprocmask(SIG_BLOCK, &ttou, std::ptr::null_mut());
            tcsetpgrp(0, getpid());
            let mut none = SigSet([0; 16]);
            sigfillset(&mut none);
            sigprocmask(SIG_UNBLOCK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c.id() as i32,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
            fatal(&format!("exec {} failed: {e}", args[0].to_string_lossy()), code);
        }
    };
    let timeout = Timespec { sec: 1, nsec: 0 };
    loop {
        let mut info = SigInfo([0; 16]);
        // SAFETY: the set, the info and the timeout are owned here.
        let sig = unsafe { sigtimedwait(&waited, &mut info, &timeout) };
        if sig > 0 && sig != SIGCHLD {
            // SAFETY: a signal to our own child.
            unsafe { kill(child, sig) };
        }
        // Reap everything that has ended (the child and any orphan).
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a status owned here.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                exit(exit_code(status));
            }
        }
    }
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// A pod's namespace holder: waits for a signal to end, reaping every zombie meanwhile.
fn pause(waited: &SigSet) -> ! {
    // Nothing in the pod needs to trace or read the holder: non-dumpable for its whole life.
    // SAFETY: a plain prctl on this process.
    unsafe { prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let timeout = Timespec { sec: 60, nsec: 0 };
    loop {
        let mut info = SigInfo([0; 16]);
        // SAFETY: the set, the info and the timeout are owned here.
        let sig = unsafe { sigtimedwait(waited, &mut info, &timeout) };
        if matches!(sig, SIGHUP | SIGINT | SIGTERM) {
            exit(0);
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a status owned here.
            if unsafe { waitpid(-1, &mut status, WNOHANG) } <= 0 {
                break;
            }
        }
    }
}
