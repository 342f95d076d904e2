//! The last steps of every container process, init or exec'd: rlimits, user and groups, capabilities, no_new_privs,
//! seccomp, working directory, then `execve`. [`Prepared`] is built in the parent (allocation and filter compilation
//! happen before the fork); [`Prepared::exec`] runs in the child.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::sys::resource::{Resource, setrlimit};
use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
use oci_spec::runtime::{Capabilities, LinuxSeccomp, PosixRlimitType, Process};

use crate::seccomp::Filter;
use crate::{Error, Result, sys};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A process ready to be started: everything that allocates or may fail for reasons of the host is done here.
pub struct Prepared {
    args: Vec<CString>,
    env: Vec<CString>,
    path_dirs: Vec<String>,
    cwd: PathBuf,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    umask: Option<u32>,
    rlimits: Vec<(Resource, u64, u64)>,
    no_new_privs: bool,
    caps: CapSets,
    filter: Option<Filter>,
    /// Load the filter first (before the user switch), not just before `execve`: see [`Prepared::finalize`].
    filter_early: bool,
    /// SIGKILL when the parent goes (a container's init, whose parent is its shim).
    kill_on_parent_death: bool,
    /// A program that cannot be found fails before the start gate (runc's create), not after it (Docker's start).
    lookup_before_start: bool,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("args", &self.args).field("uid", &self.uid).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct CapSets {
    bounding: Option<HashSet<caps::Capability>>,
    effective: HashSet<caps::Capability>,
    permitted: HashSet<caps::Capability>,
    inheritable: HashSet<caps::Capability>,
    ambient: HashSet<caps::Capability>,
}

fn convert_caps(set: &Option<Capabilities>) -> HashSet<caps::Capability> {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            caps::Capability::from_str(name.as_str()?).ok()
        })
        .collect()
}

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Start(format!("{what} contains a NUL byte: {s:?}")))
}

fn uid_gid(process: &Process) -> (u32, u32) {
    (process.user().uid(), process.user().gid())
}

/// The system calls [`Prepared::finalize`] and [`Prepared::exec`] make after an early filter load, with the
/// arguments a filter may look at (pointers as 0): the bounding set, the user switch, capabilities, umask, cwd, the
/// program's lookup, allocations, the signal reset, `execve`, and an error's report and exit.
/// `fifo`: the start gate is the runc CLI's `exec.fifo`, opened (`openat`) and written while waiting to start.
fn after_early_filter((uid, gid): (u32, u32), fifo: bool) -> Vec<(i64, [u64; 6])> {
    let prctl = |op: libc::c_int| (libc::SYS_prctl, [op as u64, 0, 0, 0, 0, 0]);
    let mut calls = vec![
        prctl(libc::PR_CAPBSET_DROP),
        prctl(libc::PR_SET_KEEPCAPS),
        prctl(libc::PR_CAP_AMBIENT),
        prctl(libc::PR_SET_PDEATHSIG),
        (libc::SYS_setgroups, [0; 6]),
        (libc::SYS_setgid, [u64::from(gid), 0, 0, 0, 0, 0]),
        (libc::SYS_setuid, [u64::from(uid), 0, 0, 0, 0, 0]),
    ];
    for nr in [
        libc::SYS_capget,
        libc::SYS_capset,
        libc::SYS_umask,
        libc::SYS_chdir,
        libc::SYS_statx,
        libc::SYS_newfstatat,
        libc::SYS_brk,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_execve,
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_close,
        libc::SYS_exit_group,
    ] {
        calls.push((nr, [0; 6]));
    }
    if fifo {
        calls.push((libc::SYS_openat, [0; 6]));
    }
    calls
}

impl Prepared {
    /// Prepares `process`, compiling `seccomp` if given (through the cache in `filter_cache`, if given).
    pub fn new(process: &Process, seccomp: Option<&LinuxSeccomp>, filter_cache: Option<&Path>) -> Result<Prepared> {
        let args: Vec<CString> = process
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| cstring(a, "argument"))
            .collect::<Result<_>>()?;
        if args.is_empty() {
            return Err(Error::Start("no command specified".into()));
        }
        let env_list = process.env().as_deref().unwrap_or_default();
        let env: Vec<CString> = env_list.iter().map(|e| cstring(e, "environment variable")).collect::<Result<_>>()?;
        let path = env_list
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let user = process.user();
        let caps = match process.capabilities() {
            Some(c) => CapSets {
                bounding: Some(convert_caps(c.bounding())),
                effective: convert_caps(c.effective()),
                permitted: convert_caps(c.permitted()),
                inheritable: convert_caps(c.inheritable()),
                ambient: convert_caps(c.ambient()),
            },
            None => CapSets::default(),
        };
        let no_new_privs = process.no_new_privileges().unwrap_or(false);
        let filter = match (seccomp, filter_cache) {
            (Some(s), Some(dir)) => Some(Filter::compile_cached(s, dir)?),
            (Some(s), None) => Some(Filter::compile(s)?),
            (None, _) => None,
        };
        let filter_early = filter
            .as_ref()
            .is_some_and(|f| !no_new_privs || f.allows_all(&after_early_filter(uid_gid(process), false)));
        Ok(Prepared {
            args,
            env,
            path_dirs: path.split(':').map(str::to_string).collect(),
            cwd: process.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            rlimits: process
                .rlimits()
                .iter()
                .flatten()
                .map(|r| (rlimit_resource(r.typ()), r.soft(), r.hard()))
                .collect(),
            no_new_privs,
            caps,
            filter,
            filter_early,
            kill_on_parent_death: false,
            lookup_before_start: false,
        })
    }

    /// For a process whose start gate is the runc CLI's `exec.fifo` (see `builtin::Builtin::create_waiting_on_fifo`):
    /// a program that cannot be found is an error of the create, as runc reports it, and the early filter must also
    /// let through the opening of the FIFO.
    pub fn start_through_fifo(mut self) -> Prepared {
        self.lookup_before_start = true;
        let calls = after_early_filter((self.uid, self.gid), true);
        self.filter_early = self.filter.as_ref().is_some_and(|f| !self.no_new_privs || f.allows_all(&calls));
        self
    }

    /// Makes the process die (SIGKILL) when its parent does: for a container's init, so that it cannot outlive a
    /// killed shim. A second line only (berthd kills what is left in the container's cgroup when it loses a shim): the
    /// signal follows the parent *thread* (the shim is single-threaded), is lost if the parent dies before it is set,
    /// and an `execve` of a set-user-ID program clears it.
    pub fn kill_on_parent_death(mut self) -> Prepared {
        self.kill_on_parent_death = true;
        self
    }

    /// Finds the program in the container's view of the file system, like Go's `exec.LookPath` with the process's
    /// own `PATH`. Errors read like Docker's.
    pub fn resolve_program(&self) -> Result<CString> {
        let prog = self.args[0].to_string_lossy().into_owned();
        let is_exec = |p: &Path| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if prog.contains('/') {
            return match is_exec(Path::new(&prog)) {
                Ok(true) => Ok(self.args[0].clone()),
                Ok(false) => Err(Error::Start(format!("exec: {prog:?}: permission denied"))),
                Err(_) => Err(Error::Start(format!("exec: {prog:?}: stat {prog}: no such file or directory"))),
            };
        }
        for dir in &self.path_dirs {
            let dir = if dir.is_empty() { "." } else { dir.as_str() };
            let candidate = Path::new(dir).join(&prog);
            if let Ok(true) = is_exec(&candidate) {
                return CString::new(candidate.as_os_str().as_bytes())
                    .map_err(|_| Error::Start(format!("exec: {prog:?}: invalid path")));
            }
        }
        Err(Error::Start(format!("exec: {prog:?}: executable file not found in $PATH")))
    }

    /// Applies rlimits, the working directory, user, capabilities, no_new_privs and seccomp to the calling process,
    /// in runc's order. Called in the child, after the root file system is in place. `wait_start` runs just before
    /// the program is looked up and executed (the init process blocks there until the container is started).
    pub fn exec(&self, wait_start: impl FnOnce() -> Result<()>) -> Error {
        match self.finalize(wait_start) {
            Ok(program) => {
                let errno = sys::execve(&program, &self.args, &self.env);
                let prog = self.args[0].to_string_lossy();
                match errno {
                    nix::Error::EACCES => Error::Start(format!("exec: {prog:?}: permission denied")),
                    nix::Error::ENOENT => Error::Start(format!("exec: {prog:?}: no such file or directory")),
                    e => Error::Start(format!("exec {prog:?}: {}", e.desc().to_lowercase())),
                }
            }
            Err(e) => e,
        }
    }

    fn finalize(&self, wait_start: impl FnOnce() -> Result<()>) -> Result<CString> {
        for &(res, soft, hard) in &self.rlimits {
            setrlimit(res, soft, hard).map_err(Error::sys(format!("setrlimit {res:?}")))?;
        }
        // Seccomp without no_new_privs needs CAP_SYS_ADMIN, so it is loaded while we still are root. With
        // no_new_privs it is loaded here too (the sooner the better: the process is in the container already) when
        // the filter lets through every system call made from here to `execve`; else last, as runc does, so that a
        // profile need not allow the user switch (the process is not dumpable meanwhile: nothing can trace it).
        if let Some(f) = self.filter.as_ref().filter(|_| self.filter_early) {
            if self.no_new_privs {
                sys::set_no_new_privs()?;
            }
            f.load()?;
        }
        if let Some(bounding) = &self.caps.bounding {
            for cap in caps::all() {
                if !bounding.contains(&cap) {
                    // Capabilities unknown to this kernel fail with EINVAL: nothing to drop.
                    let _ = caps::drop(None, caps::CapSet::Bounding, cap);
                }
            }
        }
        let switch_user = self.uid != 0 || self.gid != 0;
        sys::set_keep_caps(true)?;
        let groups: Vec<Gid> = self.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&groups).map_err(Error::sys("setgroups"))?;
        setgid(Gid::from_raw(self.gid)).map_err(Error::sys(format!("setgid {}", self.gid)))?;
        setuid(Uid::from_raw(self.uid)).map_err(Error::sys(format!("setuid {}", self.uid)))?;
        sys::set_keep_caps(false)?;
        if self.caps.bounding.is_some() || switch_user {
            let err = |e: caps::errors::CapsError| Error::Start(format!("apply capabilities: {e}"));
            caps::set(
                None,
                caps::CapSet::Effective,
                &self.caps.effective.intersection(&self.caps.permitted).copied().collect(),
            )
            .map_err(err)?;
            caps::set(None, caps::CapSet::Inheritable, &self.caps.inheritable).map_err(err)?;
            caps::set(None, caps::CapSet::Permitted, &self.caps.permitted).map_err(err)?;
            caps::set(None, caps::CapSet::Effective, &self.caps.effective).map_err(err)?;
            for cap in &self.caps.ambient {
                // Raising an ambient capability fails unless it is permitted and inheritable: tolerated, like runc.
                let _ = caps::raise(None, caps::CapSet::Ambient, *cap);
            }
        }
        if let Some(mask) = self.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        let cwd = if self.cwd.as_os_str().is_empty() { Path::new("/") } else { self.cwd.as_path() };
        nix::unistd::chdir(cwd).map_err(|e| {
            Error::Start(format!(
                "chdir to cwd ({:?}) set in config.json failed: {}",
                cwd.display().to_string(),
                e.desc().to_lowercase()
            ))
        })?;
        // A program that cannot be found is reported when the container is started (as Docker does), not during
        // its creation.
        let program = self.resolve_program();
        let program = if self.lookup_before_start { Ok(program?) } else { program };
        wait_start()?;
        let program = program?;
        // After the user switch, which would clear it. Best effort: a second line only (see `kill_on_parent_death`),
        // not worth failing a start for.
        if self.kill_on_parent_death {
            let _ = sys::kill_on_parent_death();
        }
        // Just before execve, and before a late filter (whose profile need not allow `rt_sigaction`): nothing of the
        // shim's signal state (an ignored SIGHUP or SIGPIPE, a blocked SIGCHLD) may reach the program.
        sys::reset_signals();
        if self.no_new_privs && !self.filter_early {
            sys::set_no_new_privs()?;
            if let Some(f) = &self.filter {
                f.load()?;
            }
        }
        Ok(program)
    }
}
