//! Thin wrappers over the system calls that `nix` does not cover, each unsafe block small and justified; plus file helpers.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use nix::unistd::Pid;

use crate::{Error, Result};

/// What a fork-like call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `clone(2)` with fork semantics (no new stack: the child continues on a copy of the caller's stack) and extra
/// `CLONE_NEW*` flags, so that the child is born in new namespaces (PID 1 of a new PID namespace, for instance).
///
/// # Safety
///
/// As for `fork(2)` (and nix's `unsafe fn fork`): only the calling thread exists in the child, so a lock another
/// thread held at the fork (the allocator's, stdio's, the environment's) stays locked there forever. The caller must
/// be single-threaded (the shim is), or the child must call only async-signal-safe functions until it `execve`s or
/// `_exit`s.
pub unsafe fn clone_fork(namespace_flags: libc::c_int) -> Result<Forked> {
    let flags = (namespace_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack pointer, clone behaves like fork(2): the child gets a copy-on-write copy of the address
    // space, including the stack, and no memory of ours is passed. What the child may do then is the caller's
    // contract (see `# Safety`).
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Error::Sys { what: "clone".into(), source: nix::Error::last() }),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// `struct clone_args` of `clone3(2)`, up to its `cgroup` field (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`clone_fork`] with the child born in the cgroup v2 directory `cgroup` (`clone3` with `CLONE_INTO_CGROUP`): no
/// move by PID afterwards, which takes the kernel's threadgroup semaphore for writing and so waits out an RCU grace
/// period (about 10 ms). `Ok(None)` where the kernel has no `clone3` or no `CLONE_INTO_CGROUP` (the caller then
/// forks with [`clone_fork`] and moves the child).
///
/// # Safety
///
/// As for [`clone_fork`].
pub unsafe fn clone_fork_into(namespace_flags: libc::c_int, cgroup: BorrowedFd<'_>) -> Result<Option<Forked>> {
    let mut args = CloneArgs {
        flags: u64::from(namespace_flags as u32) | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: `args` is a valid `clone_args` of the size passed, alive for the call; with no stack given, clone3
    // behaves like fork(2) (the child continues on a copy-on-write copy of this stack), and no memory of ours is
    // handed over. What the child may do then is the caller's contract (see `# Safety`).
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match ret {
        -1 => match nix::Error::last() {
            // Out of processes or memory: a plain clone would fail the same way.
            e @ (nix::Error::EAGAIN | nix::Error::ENOMEM) => Err(Error::Sys { what: "clone3".into(), source: e }),
            // No clone3 (before 5.3), a shorter `clone_args` (before 5.7), a filter that refuses it (EPERM), a
            // cgroup the caller's cgroup namespace does not show (ENOENT)...: the caller clones and moves the child,
            // which reports what is really wrong.
            _ => Ok(None),
        },
        0 => Ok(Some(Forked::Child)),
        pid => Ok(Some(Forked::Parent(Pid::from_raw(pid as i32)))),
    }
}

/// Removes the mark a `volatile` overlay leaves in its work directory `workdir` (`work/incompat/volatile` under it,
/// which makes the kernel refuse to mount that upper directory again). Only for a volatile upper directory that
/// cannot have outlived a crash: berthd mounts them for `--rm` containers only, and removes every `--rm` container
/// that is not running when it starts, so one mounted again (a `restart`, a `cp` from the stopped container before
/// its removal) is from this boot, whole (what was not synced is in the page cache).
pub fn clear_volatile_mark(workdir: &Path) {
    let mark = workdir.join("work").join("incompat").join("volatile");
    if std::fs::symlink_metadata(&mark).is_ok() {
        let _ = std::fs::remove_dir_all(&mark);
    }
}

/// Makes the calling process a child subreaper: orphaned descendants (a container init left behind by an external
/// runtime's `create`) re-parent to it, so that it can reap them and learn their exit status.
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_CHILD_SUBREAPER)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Sets the no_new_privs bit: execve can no longer grant privileges (setuid bits, file capabilities).
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_NO_NEW_PRIVS)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Keeps the permitted capabilities across the coming setuid away from root.
pub fn set_keep_caps(keep: bool) -> Result<()> {
    // SAFETY: prctl with PR_SET_KEEPCAPS takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_KEEPCAPS)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// `dup2(fd, target)`: makes descriptor number `target` a copy of `fd` (without close-on-exec). `target` is a number
/// the caller means to replace (a standard stream).
pub fn dup2(fd: BorrowedFd<'_>, target: libc::c_int) -> Result<()> {
    if fd.as_raw_fd() == target {
        return Ok(());
    }
    // SAFETY: dup2 on two descriptor numbers: `fd` is borrowed, hence open for this call; whatever `target` was is
    // replaced on purpose, as the caller asked.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } == -1 {
        return Err(Error::Sys { what: format!("dup2 {} -> {target}", fd.as_raw_fd()), source: nix::Error::last() });
    }
    Ok(())
}

/// Makes the calling process (and what it forks) non-dumpable, or dumpable again. A non-dumpable process's
/// `/proc/<pid>/{exe,fd,environ,mem,root,...}` are reachable only with `CAP_SYS_PTRACE`, and it cannot be ptraced by
/// another process of the same user: what runc does before a process enters a container (CVE-2016-9962), so that
/// container root cannot reach the host's binary, descriptors or memory through it. The `execve` of the user's program
/// makes it dumpable again as the kernel decides (not for a set-user-ID or unreadable program).
pub fn set_dumpable(dumpable: bool) -> Result<()> {
    // SAFETY: prctl with PR_SET_DUMPABLE takes an integer flag and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_DUMPABLE)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Whether the calling process is dumpable (`PR_GET_DUMPABLE` is 1).
pub fn is_dumpable() -> bool {
    // SAFETY: prctl with PR_GET_DUMPABLE takes no argument and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}

/// Closes every descriptor from `first` up except those in `keep`. For a forked child about to enter a container:
/// whatever its parent held (berthd's report pipe, namespace files, sockets) must not be in its descriptor table
/// there, close-on-exec or not. Allocates nothing unless `close_range(2)` is missing (kernels before 5.9).
pub fn close_except(first: u32, keep: &[std::os::fd::RawFd]) {
    let mut lo = first;
    loop {
        // The lowest kept descriptor at or above `lo` bounds the next range to close.
        let next = keep.iter().filter_map(|k| u32::try_from(*k).ok()).filter(|k| *k >= lo).min();
        match next {
            Some(k) => {
                if k > lo {
                    close_between(lo, k - 1, CloseMode::Close);
                }
                match k.checked_add(1) {
                    Some(n) => lo = n,
                    None => return,
                }
            }
            None => {
                close_between(lo, libc::c_uint::MAX, CloseMode::Close);
                return;
            }
        }
    }
}

/// A read-only, sealed in-memory copy of the executable at `path` (a memfd named `name`, close-on-exec), to run
/// instead of the file: a process executing it that a container gets hold of (its `/proc/<pid>/exe`) can never write
/// to the host's binary (runc's CVE-2019-5736). Made once and executed through `/proc/self/fd/N` by its holder.
pub fn sealed_copy(path: &Path, name: &str) -> Result<OwnedFd> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let mut src = std::fs::File::open(path).map_err(Error::io(format!("open {}", path.display())))?;
    let fd =
        memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).map_err(Error::sys("memfd_create"))?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(Error::io(format!("copy {}", path.display())))?;
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    fcntl(&dst, FcntlArg::F_ADD_SEALS(seals)).map_err(Error::sys("seal the copy"))?;
    Ok(OwnedFd::from(dst))
}

/// What [`close_from`] does to the descriptors it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// Close them now.
    Close,
    /// Mark them close-on-exec: they stay usable here, but no program this process executes gets them.
    CloseOnExec,
}

/// Closes (or marks close-on-exec) every descriptor from `first` up: `close_range(2)`, or on kernels before 5.11 a
/// walk of `/proc/self/fd`. A process started by someone else calls it first thing, so that descriptors its parent
/// leaked (a pipe of whoever started berthd) go no further.
pub fn close_from(first: u32, mode: CloseMode) {
    close_between(first, libc::c_uint::MAX, mode);
}

/// [`close_from`] for the descriptors `first..=last`.
fn close_between(first: u32, last: u32, mode: CloseMode) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let flags = match mode {
        CloseMode::Close => 0,
        CloseMode::CloseOnExec => CLOSE_RANGE_CLOEXEC,
    };
    // SAFETY: close_range on a range of descriptor numbers reads no memory; the caller owns (and gives up, with
    // `Close`) every descriptor from `first` up.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, flags) };
    if ret == 0 {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    // Collected first: the walk's own descriptor is among them.
    let fds: Vec<i32> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds.into_iter().filter(|fd| *fd >= first as i32 && i64::from(*fd) <= i64::from(last)) {
        // SAFETY: fcntl(F_SETFD) or close on a descriptor number, which the caller gave up; a stale number (the
        // walk's own, closed by now) yields EBADF.
        unsafe {
            match mode {
                CloseMode::Close => libc::close(fd),
                CloseMode::CloseOnExec => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            };
        }
    }
}

/// Gives the calling process the signal state a freshly started program expects, as runc does before `execve`: every
/// disposition back to the default (an ignored SIGHUP or SIGPIPE would otherwise be inherited from the shim, and from
/// however berthd was started, e.g. `nohup`) and no signal blocked (the shim blocks SIGCHLD for its signalfd).
/// Allocates nothing, so that a forked child may call it.
pub fn reset_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            set_default_disposition(sig);
        }
    }
    // SAFETY: sigprocmask with an empty set built on the stack; it only changes this thread's mask.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// The kernel's `struct sigaction` where it has `sa_restorer` (x86-64, arm64).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// SIG_DFL for `sig`. Through the system call itself where we know its structure: glibc's `sigaction` refuses its
/// internal signals (32 and 33), which its `posix_spawn` hands to the child *ignored* (Rust's `Command` spawns
/// berthd's and the shim's children that way), and which must not reach the container so.
fn set_default_disposition(sig: libc::c_int) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let sa = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
        // SAFETY: rt_sigaction reads the `KernelSigaction` (the kernel's layout on this architecture, SIG_DFL, no
        // flags, empty mask) that lives on the stack for the call, with the kernel's sigset size (8 bytes); no old
        // action is written. A signal that cannot be changed fails with EINVAL, harmlessly.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &sa as *const KernelSigaction,
                std::ptr::null_mut::<u8>(),
                8usize,
            )
        };
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    // SAFETY: sigaction with a zeroed `sigaction` (SIG_DFL, no flags, empty mask) on the stack for the call.
    unsafe {
        let sa: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Asks the kernel to send SIGKILL to the calling process when its parent (thread) exits: a container's init dies
/// with its shim instead of running on untracked. Changes of credentials and the execve of a set-user-ID program clear
/// it, so it is set after the user switch, just before `execve`.
pub fn kill_on_parent_death() -> Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_PDEATHSIG)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Makes `fd` (a terminal) the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and reads no memory of ours.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "ioctl(TIOCSCTTY)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Sets the window size of a terminal.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which points at a live local of the right type.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret == -1 {
        return Err(Error::Sys { what: "ioctl(TIOCSWINSZ)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Sends the descriptor `fd` over the Unix stream socket `sock` (one data byte carrying an `SCM_RIGHTS` message), as
/// the OCI console-socket protocol does. Allocates nothing, so that a forked child may call it.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"t")];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::Sys { what: "send terminal master".into(), source: e }),
        }
    }
}

/// Receives one descriptor sent with `SCM_RIGHTS` on the Unix stream socket `sock` (close-on-exec). Any data that comes
/// with it (runc sends the terminal's name) is discarded. `nonblocking`: fail with `EAGAIN` rather than wait.
pub fn recv_fd(sock: BorrowedFd<'_>, nonblocking: bool) -> Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let err = |source| Error::Sys { what: "receive terminal master".into(), source };
    let mut iov = [IoSliceMut::new(&mut data)];
    let msg = loop {
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Err(nix::Error::EINTR) => continue,
            other => break other.map_err(err)?,
        }
    };
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs().map_err(err)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel has just installed this descriptor in our table for this message: nothing else
                // in the process knows or owns its number.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    // Extra descriptors, if any, are closed on drop.
    received
        .into_iter()
        .next()
        .ok_or(Error::Sys { what: "receive terminal master: no descriptor".into(), source: nix::Error::EBADMSG })
}

/// `pivot_root(new_root, put_old)`.
pub fn pivot_root(new_root: &str, put_old: &str) -> Result<()> {
    nix::unistd::pivot_root(new_root, put_old).map_err(Error::sys("pivot_root"))
}

/// The ID of the mount `fd` (any descriptor, `O_PATH` included) lives on (`statx(STATX_MNT_ID)`, Linux 5.8).
pub fn mount_id(fd: BorrowedFd<'_>) -> nix::Result<u64> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx writes at most one `struct statx` into the buffer we own; the path is a static empty C string and
    // AT_EMPTY_PATH makes the call describe `fd` itself.
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            stx.as_mut_ptr(),
        )
    };
    if ret == -1 {
        return Err(nix::Error::last());
    }
    // SAFETY: statx succeeded, so the structure is initialised (it was zeroed before in any case).
    let stx = unsafe { stx.assume_init() };
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(nix::Error::ENOSYS);
    }
    Ok(stx.stx_mnt_id)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE])` setting the `MOUNT_ATTR_*` bits `set` (Linux 5.12): the
/// mount's other attributes stay as they are.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64) -> nix::Result<()> {
    let attr = libc::mount_attr { attr_set: set, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: the kernel reads `size_of::<mount_attr>()` bytes from `attr`, which lives on our stack for the call; the
    // path is a static empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret == -1 { Err(nix::Error::last()) } else { Ok(()) }
}

/// Writes a process's `uid_map` and `gid_map` (`container host size` lines): the parent does it for a child in a new
/// user namespace, as runc does (the child, non-dumpable and unprivileged on the host, could not).
pub fn write_id_maps(pid: i32, uid_map: &str, gid_map: &str) -> Result<()> {
    for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map).map_err(|e| Error::Io { what: format!("write {path}"), source: e })?;
    }
    Ok(())
}

/// A user namespace with these maps, for idmapped mounts: a helper child makes it, the maps are written, and its
/// descriptor outlives the helper (reaped before returning).
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Sys { what: "pipe".into(), source: e })?;
    // SAFETY: the child only reads a pipe and `_exit`s (async-signal-safe), so a multi-threaded caller is fine too.
    match unsafe { clone_fork(libc::CLONE_NEWUSER) }? {
        Forked::Child => {
            drop(w);
            let mut b = [0u8; 1];
            // Waits until the parent has what it needs (EOF), then ends.
            let _ = nix::unistd::read(&r, &mut b);
            // SAFETY: _exit ends the forked helper at once, without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent(pid) => {
            drop(r);
            let fd = write_id_maps(pid.as_raw(), uid_map, gid_map).and_then(|()| {
                let path = format!("/proc/{pid}/ns/user");
                std::fs::File::open(&path)
                    .map(OwnedFd::from)
                    .map_err(|e| Error::Io { what: format!("open {path}"), source: e })
            });
            drop(w);
            let _ = nix::sys::wait::waitpid(pid, None);
            fd
        }
    }
}

/// Mounts an idmapped copy of the directory `source` (through the user namespace `userns`: a file owned by `n` on disk
/// appears owned by the host ID that `n` maps to) on `target`, with `open_tree(OPEN_TREE_CLONE)`,
/// `mount_setattr(MOUNT_ATTR_IDMAP)` and `move_mount` (Linux 5.12).
pub fn idmapped_bind(source: &Path, target: &Path, userns: BorrowedFd<'_>) -> Result<()> {
    let what = |op: &str| format!("{op} {}", source.display());
    let src = CString::new(source.as_os_str().as_encoded_bytes()).map_err(|_| Error::Start(what("nul in")))?;
    let dst = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| Error::Start(what("nul in")))?;
    // SAFETY: open_tree reads a NUL-terminated path that lives for the call and returns a new descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(Error::Sys { what: what("open_tree"), source: nix::Error::last() });
    }
    // SAFETY: a non-negative return is a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(ret as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: the kernel reads `size_of::<mount_attr>()` bytes from `attr`, on our stack for the call; the path is a
    // static empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret == -1 {
        return Err(Error::Sys { what: what("idmap (mount_setattr)"), source: nix::Error::last() });
    }
    // SAFETY: move_mount reads two NUL-terminated paths that live for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
        )
    };
    if ret == -1 {
        return Err(Error::Sys { what: what("move_mount"), source: nix::Error::last() });
    }
    Ok(())
}

/// `kill(pid, sig)` for any signal number, the real-time ones included (nix's `Signal` names only the standard ones).
pub fn send_signal(pid: i32, sig: libc::c_int) -> nix::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    let ret = unsafe { libc::kill(pid, sig) };
    if ret == -1 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// The bytes written to socket `fd` that its peer has not read yet (`SIOCOUTQ`; for a Unix stream socket, what
/// waits in the peer's receive queue).
pub fn unread_output(fd: BorrowedFd<'_>) -> nix::Result<libc::c_int> {
    let mut n: libc::c_int = 0;
    // SAFETY: ioctl(SIOCOUTQ) writes one int into `n`, which lives on the stack for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if ret == -1 {
        return Err(nix::Error::last());
    }
    Ok(n)
}

/// `pidfd_open(pid, 0)` (Linux 5.3): a descriptor that names this process and no other, even after its PID is reused.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor, which we own from here on.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a non-negative return is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// Replaces the process image; returns only on failure, with the errno.
pub fn execve(path: &CString, args: &[CString], env: &[CString]) -> nix::Error {
    match nix::unistd::execve(path, args, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Writes `data` to `path` atomically (temp file + rename: readers see the old or the new content, also after a
/// crash of the process); with `sync`, also durably (fsync before the rename, so that a power loss cannot leave an
/// empty file either). The file is readable by its owner (root) only, whatever the umask: bundles hold secrets.
pub fn replace_file(path: &Path, data: &[u8], sync: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        // A leftover temp file would keep its own mode.
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { what: format!("write {}", path.display()), source: e }
    })
}

/// Gives the heap's free memory back to the kernel (the shim calls it once the container is set up, so that what
/// setup allocated does not stay in its RSS for the container's lifetime; berthd after a burst of work).
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory (at the top and in the middle of each of glibc's arenas, every
    // arena locked while it does); it reads none of ours and is MT-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's malloc arenas at `n` (its default is eight per core: a thread that finds the arenas in use makes a
/// new one, and every arena keeps its own free memory). Call before the process starts threads.
pub fn limit_malloc_arenas(n: i32) {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n);
    }
}

/// What of this process's resident set it can give back without changing any memory it sees: the pages of the
/// read-only, private mappings of its binary and shared libraries that hold nothing but the file's content (code and
/// constants: what start-up alone touched, and everything the kernel mapped around it), and the stack below the
/// caller's frame. The pages stay in the page cache (the shims' sealed copy of their binary is one, shared by all);
/// the next access maps them again. Find the list ([`CleanPages::find`]) right before dropping it
/// ([`CleanPages::drop_now`]): a library unloaded in between would leave a range another mapping may take.
#[derive(Debug, Default)]
pub struct CleanPages {
    files: Vec<(usize, usize)>,
    /// The main thread's stack mapping, when the caller runs on it.
    stack: Option<(usize, usize)>,
}

impl CleanPages {
    /// Below the caller's frame, left alone: this call's own frames and `madvise`'s, and the red zone.
    const STACK_MARGIN: usize = 16 * 1024;

    /// Reads the mappings (`/proc/self/smaps`); empty when it cannot.
    pub fn find() -> CleanPages {
        let here = 0u8;
        let exe = std::fs::read_link("/proc/self/exe").map(|p| p.display().to_string()).unwrap_or_default();
        // The link reads `/memfd:berth-shim (deleted)` where smaps says `/memfd:berth-shim`.
        let exe = exe.split_ascii_whitespace().next().unwrap_or_default();
        match std::fs::read("/proc/self/smaps") {
            Ok(smaps) => CleanPages::parse(&smaps, exe, std::ptr::addr_of!(here) as usize),
            Err(_) => CleanPages::default(),
        }
    }

    /// Takes the pages out of the resident set.
    pub fn drop_now(&self) {
        let here = 0u8;
        for (start, end) in self.ranges(std::ptr::addr_of!(here) as usize) {
            // SAFETY: the ranges are page-aligned parts of this process's mappings that hold no private copy of a
            // page (read-only, private, file-backed, no anonymous page: what they hold is the file's content, read
            // again on the next access) or that lie below the live part of this thread's stack (nothing there is in
            // use: the caller's frames are above `here`, this call's own within `STACK_MARGIN` below it).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }

    /// Takes the pages out of the resident set, then waits in `poll(2)` on `fds` (`timeout_ms`: -1 for none) and
    /// returns the number of ready descriptors. Between the two there are only this function's loop and libc's
    /// `syscall` (no `madvise` or `poll` wrapper, no allocator, no clock): a process that sleeps here keeps mapped one
    /// fault-around window (64 KiB) of its binary and one of libc, instead of every window of the code that would run
    /// between a [`CleanPages::drop_now`] and its next wait (the loop's own, `malloc`, `poll`'s wrapper: most of a
    /// MiB for the shim).
    #[inline(never)]
    pub fn drop_then_poll(&self, fds: &mut [libc::pollfd], timeout_ms: i32) -> std::io::Result<usize> {
        let here = 0u8;
        let ranges = self.ranges(std::ptr::addr_of!(here) as usize);
        // Everything the wait needs is computed before the drop: after it, only a slice pattern (no iterator or
        // indexing function, even in a debug build) and `syscall` run. `ppoll`, which every architecture has
        // (aarch64 has no `poll`), with no signal mask.
        let mut ts = (timeout_ms >= 0).then(|| libc::timespec {
            tv_sec: libc::time_t::from(timeout_ms / 1000),
            tv_nsec: libc::c_long::from(timeout_ms % 1000) * 1_000_000,
        });
        // `ppoll` writes the time left back into it.
        let ts_ptr = ts.as_mut().map_or(std::ptr::null_mut(), |t| t as *mut libc::timespec);
        let (fds_ptr, nfds) = (fds.as_mut_ptr(), fds.len() as libc::nfds_t);
        let mut left: &[(usize, usize)] = &ranges;
        while let [(start, end), rest @ ..] = left {
            // SAFETY: as in `drop_now`: page-aligned ranges that hold only the file's content or lie below the live
            // part of this thread's stack (this frame and `syscall`'s are within `STACK_MARGIN` of `here`).
            unsafe {
                libc::syscall(libc::SYS_madvise, *start, *end - *start, libc::MADV_DONTNEED);
            }
            left = rest;
        }
        // SAFETY: `fds_ptr` is a valid, exclusively borrowed array of `nfds` pollfd structures the kernel fills in;
        // `ts_ptr` is null or points to a timespec of ours, writable and alive for the call (the kernel writes the
        // time left into it); a null signal mask leaves the mask alone.
        let n = unsafe {
            libc::syscall(libc::SYS_ppoll, fds_ptr, nfds, ts_ptr, std::ptr::null::<libc::sigset_t>(), 0usize)
        };
        drop(ranges);
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }

    /// The ranges to drop for a caller whose frame is at `sp`.
    fn ranges(&self, sp: usize) -> Vec<(usize, usize)> {
        const PAGE: usize = 4096;
        let mut out = self.files.clone();
        if let Some((start, end)) = self.stack
            && start <= sp
            && sp < end
        {
            let top = sp.saturating_sub(Self::STACK_MARGIN) & !(PAGE - 1);
            if top > start {
                out.push((start, top));
            }
        }
        out
    }

    /// From the text of `/proc/self/smaps`, the binary's path there and an address in the caller's stack frame.
    fn parse(smaps: &[u8], exe: &str, sp: usize) -> CleanPages {
        struct Mapping {
            start: usize,
            end: usize,
            clean_file: bool,
            stack: bool,
            anonymous: bool,
        }
        let mut out = CleanPages::default();
        let mut cur: Option<Mapping> = None;
        let finish = |m: Mapping, out: &mut CleanPages| {
            if m.clean_file && !m.anonymous {
                out.files.push((m.start, m.end));
            } else if m.stack && m.start <= sp && sp < m.end {
                out.stack = Some((m.start, m.end));
            }
        };
        for line in smaps.split(|b| *b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else { continue };
            let mut f = line.split_ascii_whitespace();
            let Some(first) = f.next() else { continue };
            if let Some((a, b)) = first.split_once('-')
                && let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                if let Some(m) = cur.take() {
                    finish(m, &mut out);
                }
                let perms = f.next().unwrap_or("").as_bytes();
                let (_offset, _dev) = (f.next(), f.next());
                let inode = f.next().unwrap_or("0");
                let path = f.next().unwrap_or("");
                let clean_file = perms.len() == 4
                    && perms[0] == b'r'
                    && perms[1] == b'-'
                    && perms[3] == b'p'
                    && inode != "0"
                    && ((!exe.is_empty() && path == exe) || path.ends_with(".so") || path.contains(".so."));
                cur = Some(Mapping { start, end, clean_file, stack: path == "[stack]", anonymous: false });
            } else if first == "Anonymous:"
                && let Some(m) = cur.as_mut()
            {
                m.anonymous = f.next().is_some_and(|n| n != "0");
            }
        }
        if let Some(m) = cur.take() {
            finish(m, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Runs `f` in a forked child (it changes process-wide state: descriptors, dumpability) and returns its exit code.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the test harness is multi-threaded; the tests' closures only make syscalls and plain computations
        // (no allocation, no locks another thread could hold), then `_exit`.
        match unsafe { clone_fork(0) }.expect("fork") {
            Forked::Child => {
                let code = f();
                // SAFETY: _exit ends the forked child at once, without running the test harness's destructors.
                unsafe { libc::_exit(code) }
            }
            Forked::Parent(pid) => match nix::sys::wait::waitpid(pid, None).expect("wait") {
                nix::sys::wait::WaitStatus::Exited(_, code) => code,
                other => panic!("child: {other:?}"),
            },
        }
    }

    /// A child born in a cgroup v2 directory is in it from its first instruction.
    #[test]
    #[ignore = "needs root and a cgroup2 mount: test.sh runs it with --include-ignored"]
    fn clone_into_a_cgroup2_directory() {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let Some(root) = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(sep + 1) == Some(&"cgroup2")).then(|| std::path::PathBuf::from(f[4]))
        }) else {
            eprintln!("SKIPPED: no cgroup2 mount on this host");
            return;
        };
        let name = format!("berth-selftest-clone3-{}", std::process::id());
        let dir = root.join(&name);
        std::fs::create_dir(&dir).expect("mkdir");
        let fd: OwnedFd = std::fs::File::open(&dir).expect("open").into();
        let ((up_r, up_w), (down_r, down_w)) = (nix::unistd::pipe().expect("pipe"), nix::unistd::pipe().expect("pipe"));
        // SAFETY: the child only makes system calls on descriptors opened before the clone, then `_exit`s.
        let forked = unsafe { clone_fork_into(0, std::os::fd::AsFd::as_fd(&fd)) }.expect("clone3");
        let child = match forked {
            Some(Forked::Child) => {
                let _ = nix::unistd::write(&up_w, b"x");
                let mut b = [0u8; 1];
                let _ = nix::unistd::read(&down_r, &mut b);
                // SAFETY: _exit ends the child at once, without running the test harness's destructors.
                unsafe { libc::_exit(0) }
            }
            Some(Forked::Parent(pid)) => pid,
            None => {
                let _ = std::fs::remove_dir(&dir);
                eprintln!("SKIPPED: this kernel has no clone3 CLONE_INTO_CGROUP");
                return;
            }
        };
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(&up_r, &mut b);
        let cgroup = std::fs::read_to_string(format!("/proc/{child}/cgroup")).expect("cgroup");
        let _ = nix::unistd::write(&down_w, b"x");
        let _ = nix::sys::wait::waitpid(child, None);
        let _ = std::fs::remove_dir(&dir);
        assert!(cgroup.lines().any(|l| l.starts_with("0::/") && l.ends_with(&name)), "{cgroup}");
    }

    #[test]
    fn a_volatile_mark_goes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        clear_volatile_mark(tmp.path());
        let mark = tmp.path().join("work/incompat/volatile");
        std::fs::create_dir_all(mark.join("dirty")).expect("mkdir");
        clear_volatile_mark(tmp.path());
        assert!(!mark.exists());
        assert!(tmp.path().join("work/incompat").exists(), "only the mark goes");
    }

    fn is_open(fd: i32) -> bool {
        // SAFETY: F_GETFD on a descriptor number reads no memory; a closed one yields EBADF.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[test]
    fn close_except_keeps_only_what_is_asked() {
        // Opened here: the child of a multi-threaded test process only makes system calls.
        let files: Vec<std::fs::File> = (0..6).map(|_| std::fs::File::open("/dev/null").expect("open")).collect();
        let fds: Vec<i32> = files.iter().map(AsRawFd::as_raw_fd).collect();
        let code = in_child(|| {
            close_except(3, &[fds[1], fds[4], -1]);
            let expected = [false, true, false, false, true, false];
            let right = (0..3).all(is_open) && fds.iter().zip(expected).all(|(fd, open)| is_open(*fd) == open);
            i32::from(!right)
        });
        assert_eq!(code, 0);
        assert!(fds.iter().all(|fd| is_open(*fd)), "the parent's descriptors are its own");
    }

    #[test]
    fn dumpability_is_inherited_by_a_fork() {
        let code = in_child(|| {
            if set_dumpable(false).is_err() || is_dumpable() {
                return 1;
            }
            let inner = in_child(|| i32::from(is_dumpable()));
            if inner != 0 {
                return 2;
            }
            i32::from(set_dumpable(true).is_err() || !is_dumpable()) * 3
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn sealed_copies_cannot_be_written() {
        let exe = std::env::current_exe().expect("exe");
        let copy = sealed_copy(&exe, "test-copy").expect("copy");
        let mut f = std::fs::File::from(copy);
        let len = f.metadata().expect("stat").len();
        assert_eq!(len, std::fs::metadata(&exe).expect("stat").len());
        assert!(f.write_all(b"x").is_err());
        assert!(f.set_len(1).is_err());
        assert!(f.set_len(len + 1).is_err());
        let path = format!("/proc/self/fd/{}", f.as_raw_fd());
        let mut again = std::fs::OpenOptions::new().write(true).open(path).expect("reopen");
        let err = again.write_all(b"x").expect_err("a write went through");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn replaced_files_are_the_owners_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        // A leftover temp file of an earlier attempt with a looser mode must not pass its mode on.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, b"stale").expect("write");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        super::replace_file(&path, b"SECRET=1", false).expect("replace");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"SECRET=1");
        assert!(!tmp.exists());
    }

    #[test]
    fn drop_then_poll_waits_as_poll_does() {
        // In this (test) thread, not the main one: its stack is not `[stack]` and stays; the clean pages of the test
        // binary and its libraries go and come back on use.
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut fds = [libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let pages = CleanPages::find();
        assert!(!pages.files.is_empty());
        // Nothing to read: the timeout.
        assert_eq!(pages.drop_then_poll(&mut fds, 20).expect("poll"), 0);
        assert_eq!(fds[0].revents, 0);
        nix::unistd::write(&w, b"x").expect("write");
        assert_eq!(CleanPages::find().drop_then_poll(&mut fds, -1).expect("poll"), 1);
        assert_eq!(fds[0].revents, libc::POLLIN);
        // A closed descriptor: POLLNVAL, as poll(2) reports it.
        let mut bad = [libc::pollfd { fd: 1 << 20, events: libc::POLLIN, revents: 0 }];
        assert_eq!(CleanPages::default().drop_then_poll(&mut bad, 0).expect("poll"), 1);
        assert_eq!(bad[0].revents, libc::POLLNVAL);
    }

    #[test]
    fn only_clean_file_pages_and_the_unused_stack_are_dropped() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 00:01 2049 /memfd:berth-shim (deleted)
Rss:                 100 kB
Anonymous:             0 kB
55d0a0100000-55d0a0400000 r-xp 00100000 00:01 2049 /memfd:berth-shim (deleted)
Anonymous:             0 kB
55d0a0400000-55d0a0450000 r--p 00400000 00:01 2049 /memfd:berth-shim (deleted)
Anonymous:           320 kB
55d0a0450000-55d0a0452000 rw-p 00450000 00:01 2049 /memfd:berth-shim (deleted)
Anonymous:             8 kB
55d0a1000000-55d0a1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:            88 kB
7f0000000000-7f0000020000 r--s 00000000 08:01 77 /var/lib/shared.db
Anonymous:             0 kB
7f0000040000-7f0000060000 r--p 00000000 08:01 78 /var/lib/berth/some-file
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00028000 08:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00100000 rw-p 00000000 00:00 0 [stack]
Anonymous:           176 kB
7ffd00200000-7ffd00202000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        let sp = 0x7ffd_000f_8123;
        let pages = CleanPages::parse(smaps.as_bytes(), "/memfd:berth-shim", sp);
        assert_eq!(
            pages.ranges(sp),
            vec![
                (0x55d0_a000_0000, 0x55d0_a010_0000),
                (0x55d0_a010_0000, 0x55d0_a040_0000),
                (0x7f00_0010_0000, 0x7f00_0020_0000),
                // 16 KiB below the frame, page-aligned.
                (0x7ffd_0000_0000, 0x7ffd_000f_4000),
            ]
        );
        // Deeper in the stack later: less of it goes.
        assert_eq!(pages.ranges(0x7ffd_0008_0000).last(), Some(&(0x7ffd_0000_0000, 0x7ffd_0007_c000)));
        // Another thread's stack is not this one's to drop.
        let other = CleanPages::parse(smaps.as_bytes(), "/memfd:berth-shim", 0x7f00_0000_0000);
        assert!(other.stack.is_none());
        assert_eq!(other.ranges(0x7f00_0000_0000).len(), 3);
    }
}
