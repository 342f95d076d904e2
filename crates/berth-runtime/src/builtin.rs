//! Berth's own runtime: the container's init is cloned straight into its new namespaces by the calling shim, sets up
//! its root file system, and waits on a pipe until `start`; `exec` joins a running container with `setns`.
//!
//! The handshake between parent (the shim) and child (the container's init), over two close-on-exec pipes:
//! parent → child `c` once the child is in its cgroup (waited for before setup when the child makes a cgroup namespace,
//! after it otherwise), child → parent `R` once set up, parent → child `s` to start;
//! then the child's end of the second pipe closes on a successful `execve` (the parent reads EOF), or the child writes
//! `E` + message and exits 127.
//!
//! For the runc command line (`berth-runc`, [`Builtin::create_waiting_on_fifo`]) the creating process exits once the
//! init is set up, so the start gate cannot be the pipe: the init reports `R` once it is ready to exec (user switched,
//! program found, as runc reports those at create), then blocks opening the bundle state's `exec.fifo` for writing
//! (reopened through `/proc/self/fd` from a descriptor it inherited, as runc does) until `start` opens it for reading,
//! writes a byte and execs.
//!
//! With [`Stdio::Console`], a Unix socketpair carries the terminal's master from the child (which opens it from the
//! container's `/dev/ptmx` once its root is in place) to the parent, before `R` (init) or before `execve` (exec).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::cgroups::Cgroup;
use crate::process::Prepared;
use crate::sys::{Forked, clone_fork, close_except};
use crate::{Created, Error, Result, Runtime, Stdio, console, load_spec, mounts, sys};

/// Berth's built-in runtime.
#[derive(Debug, Default, Clone)]
pub struct Builtin {
    /// Where compiled seccomp filters are cached (none: compile every time).
    filter_cache: Option<PathBuf>,
}

impl Builtin {
    /// The built-in runtime keeping its state (a cache of compiled seccomp filters) under `state_root`.
    pub fn new(state_root: &Path) -> Builtin {
        Builtin { filter_cache: Some(state_root.join("seccomp")) }
    }
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// The cgroup path of a spec, relative to the cgroup root (`berth/<id>` unless the spec says otherwise).
pub fn cgroup_path(spec: &Spec, id: &str) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().trim_start_matches('/').to_string())
        .unwrap_or_else(|| format!("berth/{id}"))
}

/// Whether the spec asks for a new user namespace.
fn spec_has_new_user_ns(spec: &Spec) -> bool {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_deref()).unwrap_or_default();
    namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
}

/// Takes the `net.*` sysctls out of the spec.
fn take_net_sysctls(spec: &mut Spec) -> Vec<(String, String)> {
    let Some(sysctl) = spec.linux_mut().as_mut().and_then(|l| l.sysctl_mut().as_mut()) else {
        return Vec::new();
    };
    let keys: Vec<String> = sysctl.keys().filter(|k| k.starts_with("net.")).cloned().collect();
    keys.into_iter().filter_map(|k| sysctl.remove(&k).map(|v| (k, v))).collect()
}

/// Mounts a read-only sysfs of our network namespace on `<bundle>/sysfs`.
fn mount_sysfs(bundle: &Path) -> Result<PathBuf> {
    use nix::mount::MsFlags;
    let path = bundle.join("sysfs");
    std::fs::create_dir_all(&path).map_err(Error::io(format!("mkdir {}", path.display())))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    nix::mount::mount(Some("sysfs"), &path, Some("sysfs"), flags, None::<&str>)
        .map_err(Error::sys(format!("mount sysfs on {}", path.display())))?;
    Ok(path)
}

/// Root (0) of the user namespace we are in, with no supplementary groups.
fn become_root() -> Result<()> {
    nix::unistd::setresgid(0.into(), 0.into(), 0.into()).map_err(Error::sys("setresgid 0"))?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into()).map_err(Error::sys("setresuid 0"))?;
    nix::unistd::setgroups(&[]).map_err(Error::sys("setgroups"))
}

/// The spec's `uidMappings` and `gidMappings` in `uid_map`/`gid_map` form (`container host size` lines).
fn id_maps(spec: &Spec) -> (String, String) {
    let linux = spec.linux().as_ref();
    let fmt = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.map(|v| v.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect())
            .unwrap_or_default()
    };
    (fmt(linux.and_then(|l| l.uid_mappings().as_ref())), fmt(linux.and_then(|l| l.gid_mappings().as_ref())))
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_truncate(t as i32)
}

/// Joins the namespace at `path` (a `/proc/<pid>/ns/<type>` file or a bind mount of one).
fn join_namespace(path: &Path, t: LinuxNamespaceType) -> Result<()> {
    let f = std::fs::File::open(path).map_err(Error::io(format!("open namespace {}", path.display())))?;
    nix::sched::setns(f.as_fd(), ns_flag(t)).map_err(Error::sys(format!("setns {}", path.display())))
}

/// Sends an error to the parent and ends the child. Never returns.
fn fail_child(mut to_parent: std::fs::File, err: &Error) -> ! {
    let _ = to_parent.write_all(format!("E{err}").as_bytes());
    // SAFETY: _exit ends the forked child at once, without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn read_byte(f: &mut std::fs::File) -> Result<Option<u8>> {
    let mut b = [0u8; 1];
    match f.read(&mut b).map_err(Error::io("read from sync pipe"))? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

/// Reads the rest of an error sent by the child after its `E`, then reaps it.
fn child_error(from_child: &mut std::fs::File, pid: Pid) -> Error {
    let mut msg = String::new();
    let _ = from_child.read_to_string(&mut msg);
    let _ = waitpid(pid, None);
    Error::Start(if msg.is_empty() { "container init exited during setup".into() } else { msg })
}

/// Makes the descriptors of `stdio` the standard streams (nothing to do for a console, made later in the container).
fn dup_stdio(stdio: &Stdio) -> Result<()> {
    if let Stdio::Fds { stdin, stdout, stderr } = stdio {
        sys::dup2(stdin.as_fd(), 0)?;
        sys::dup2(stdout.as_fd(), 1)?;
        sys::dup2(stderr.as_fd(), 2)?;
    }
    Ok(())
}

/// The socketpair that carries a terminal's master from child to parent, when `stdio` asks for a console:
/// `(parent's end, child's end)`.
fn console_socket(stdio: &Stdio) -> Result<Option<(OwnedFd, OwnedFd)>> {
    if !stdio.is_console() {
        return Ok(None);
    }
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .map(Some)
        .map_err(Error::sys("socketpair"))
}

/// Takes the master the child sent (it did so before reporting success, so it is queued already).
fn receive_console(sock: Option<OwnedFd>) -> Result<Option<OwnedFd>> {
    sock.map(|s| sys::recv_fd(s.as_fd(), true)).transpose()
}

struct InitArgs<'a> {
    spec: &'a Spec,
    rootfs: &'a Path,
    stdio: &'a Stdio,
    /// The child's end of the console socket, with [`Stdio::Console`].
    console: Option<OwnedFd>,
    join: &'a [(LinuxNamespaceType, PathBuf)],
    new_cgroup_ns: bool,
    new_uts_ns: bool,
    /// Born in a new user namespace: waits for the parent to write its ID maps, then becomes its root.
    new_user_ns: bool,
    /// A sysfs of the container's network namespace, mounted by the parent (see `mounts::setup_rootfs`).
    sysfs: Option<PathBuf>,
    prepared: &'a Prepared,
    /// What the container's cgroup mount shows.
    cgroup_fs: crate::cgroups::CgroupFs,
    /// The start gate is this `exec.fifo` (an `O_PATH` descriptor), not the pipe from the parent.
    fifo: Option<std::os::fd::RawFd>,
    /// cgroup v1: the child moves itself into its cgroup (the parent moves it on v2).
    self_entry: Option<crate::cgroups::SelfEntry>,
}

/// Waits at the runc command line's start gate: opens the FIFO behind `fd` (an `O_PATH` descriptor) for writing,
/// which blocks until `start` opens it for reading, and writes one byte.
fn wait_on_fifo(fd: std::os::fd::RawFd) -> Result<()> {
    let path = format!("/proc/self/fd/{fd}");
    let mut f =
        std::fs::OpenOptions::new().write(true).open(&path).map_err(Error::io(format!("open exec fifo {path}")))?;
    f.write_all(b"0").map_err(Error::io("write exec fifo"))
}

/// The container's init, between clone and execve. Returns only an error.
fn init_child(mut a: InitArgs<'_>, from_parent: &mut std::fs::File, to_parent: &mut std::fs::File) -> Error {
    // First, before the cgroup namespace is unshared (a new one is rooted at the cgroup we are in); its descriptors
    // are closed here, before the others go.
    let mut entry_failed = a.self_entry.take().and_then(|entry| entry.enter().err());
    // Nothing of the shim's beyond the handshake (and the console socket): see `exec`.
    let keep = [
        from_parent.as_raw_fd(),
        to_parent.as_raw_fd(),
        a.console.as_ref().map_or(-1, |c| c.as_raw_fd()),
        a.fifo.unwrap_or(-1),
    ];
    let mut in_cgroup = || -> Result<()> {
        match read_byte(from_parent)? {
            Some(b'c') => Ok(()),
            _ => Err(Error::Start("shim went away during container setup".into())),
        }
    };
    let mut run = || -> Result<()> {
        if let Some(e) = entry_failed.take() {
            return Err(e.into());
        }
        dup_stdio(a.stdio)?;
        close_except(3, &keep);
        // A new cgroup namespace is rooted at the cgroup we are in: wait until the parent has moved us there (v2).
        // Without one, the parent's part (the move on v2, the ID maps, the OOM score) overlaps with the setup below,
        // which needs no cgroup; the user's program runs only after it.
        if a.new_cgroup_ns || a.new_user_ns {
            in_cgroup()?;
        }
        if a.new_user_ns {
            // Our maps are written (before `c`): become the namespace's root (the host's root is not mapped in it,
            // so files we create would otherwise have no owner).
            become_root()?;
        }
        for (t, path) in a.join {
            if *t != LinuxNamespaceType::Pid {
                join_namespace(path, *t)?;
            }
        }
        if a.new_cgroup_ns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(Error::sys("unshare cgroup namespace"))?;
        }
        nix::unistd::setsid().map_err(Error::sys("setsid"))?;
        if a.new_uts_ns
            && let Some(h) = a.spec.hostname()
        {
            nix::unistd::sethostname(h).map_err(Error::sys(format!("sethostname {h}")))?;
        }
        let pty = mounts::setup_rootfs(a.spec, a.rootfs, a.console.is_some(), &a.cgroup_fs, a.sysfs.as_deref())?;
        if let (Some(pty), Some(sock)) = (pty, &a.console) {
            console::attach(pty, sock)?;
        }
        if !a.new_cgroup_ns && !a.new_user_ns {
            in_cgroup()?;
        }
        if a.fifo.is_none() {
            to_parent.write_all(b"R").map_err(Error::io("write to sync pipe"))?;
        }
        Ok(())
    };
    if let Err(e) = run() {
        return e;
    }
    match a.fifo {
        None => a.prepared.exec(|| match read_byte(from_parent)? {
            Some(b's') => Ok(()),
            _ => Err(Error::Start("container was not started".into())),
        }),
        Some(fd) => a.prepared.exec(|| {
            to_parent.write_all(b"R").map_err(Error::io("write to sync pipe"))?;
            wait_on_fifo(fd)
        }),
    }
}

struct BuiltinCreated {
    pid: Pid,
    to_child: std::fs::File,
    from_child: std::fs::File,
    console: Option<OwnedFd>,
}

impl Created for BuiltinCreated {
    fn pid(&self) -> Pid {
        self.pid
    }

    fn console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    fn start(mut self: Box<Self>) -> Result<()> {
        self.to_child.write_all(b"s").map_err(Error::io("start container"))?;
        match read_byte(&mut self.from_child)? {
            None => Ok(()),
            Some(_) => Err(child_error(&mut self.from_child, self.pid)),
        }
    }
}

impl Builtin {
    /// Creates container `id` for the runc command line (`berth-runc create`): as [`Runtime::create`], except that the
    /// init waits to exec on `exec_fifo` (an `O_PATH` descriptor of the state directory's FIFO: see the module's
    /// documentation) instead of on a pipe from the caller, which may exit; the init then becomes a child of the
    /// nearest subreaper (containerd's shim), and `start` is whoever opens the FIFO for reading. It is not killed when
    /// its parent dies (runc's init is not), and a program that cannot be found fails the create (as with runc).
    pub fn create_waiting_on_fifo(
        &self,
        id: &str,
        bundle: &Path,
        stdio: Stdio,
        exec_fifo: OwnedFd,
    ) -> Result<Box<dyn Created>> {
        self.create_gated(id, bundle, stdio, Some(exec_fifo))
    }

    fn create_gated(&self, id: &str, bundle: &Path, stdio: Stdio, fifo: Option<OwnedFd>) -> Result<Box<dyn Created>> {
        let mut spec = load_spec(bundle)?;
        // In a new user namespace, the child cannot write the sysctls of the network namespace berthd made: we do,
        // in that namespace, before the clone.
        let net_sysctls = if spec_has_new_user_ns(&spec) { take_net_sysctls(&mut spec) } else { Vec::new() };
        let root = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_else(|| PathBuf::from("rootfs"));
        let rootfs = if root.is_absolute() { root } else { bundle.join(root) };
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Bundle { path: bundle.display().to_string(), reason: "no process".into() })?;
        let linux = spec.linux().as_ref();
        // Non-dumpable before anything enters the container, until the init's `execve`: see `exec`. The shim stays
        // so (nothing needs to trace it).
        sys::set_dumpable(false)?;
        let prepared = Prepared::new(process, linux.and_then(|l| l.seccomp().as_ref()), self.filter_cache.as_deref())?;
        let prepared = match fifo {
            None => prepared.kill_on_parent_death(),
            Some(_) => prepared.start_through_fifo(),
        };
        stdio.check(process)?;
        let mut flags = 0;
        let mut join = Vec::new();
        let (mut new_cgroup_ns, mut new_uts_ns) = (false, false);
        for ns in linux.and_then(|l| l.namespaces().as_deref()).unwrap_or_default() {
            match ns.path() {
                Some(p) => join.push((ns.typ(), p.clone())),
                None if ns.typ() == LinuxNamespaceType::Cgroup => new_cgroup_ns = true,
                None => {
                    new_uts_ns |= ns.typ() == LinuxNamespaceType::Uts;
                    flags |= ns.typ() as i32;
                }
            }
        }
        if join.iter().any(|(t, _)| *t == LinuxNamespaceType::User) {
            return Err(Error::Start("joining another container's user namespace is not supported".into()));
        }
        let new_user_ns = flags & libc::CLONE_NEWUSER != 0;
        if let Some((t, p)) = join.iter().find(|(t, _)| *t == LinuxNamespaceType::Pid) {
            // A PID namespace applies to the children of the caller only: join it here, before the clone.
            join_namespace(p, *t)?;
        }
        // A child born in a new user namespace has no privilege over the namespaces berthd made (its network
        // namespace belongs to the host's user namespace): it is born in them instead. We join them for the clone and
        // return to ours after it.
        let mut restore = Vec::new();
        if !net_sysctls.is_empty() && !join.iter().any(|(t, _)| *t == LinuxNamespaceType::Network) {
            return Err(Error::Start("network sysctls need the container's own network namespace".into()));
        }
        if new_user_ns {
            for (t, p) in join.iter().filter(|(t, _)| *t != LinuxNamespaceType::Pid) {
                let own = format!("/proc/self/ns/{t}");
                let f = std::fs::File::open(&own).map_err(Error::io(format!("open {own}")))?;
                restore.push((*t, f));
                join_namespace(p, *t)?;
            }
            join.retain(|(t, _)| *t == LinuxNamespaceType::Pid);
        }
        // Nor can it mount a sysfs (tagged with the network namespace): we do, here in the shim's own mount namespace
        // and the container's network namespace, for the child to bind.
        let sysfs = if new_user_ns { Some(mount_sysfs(bundle)?) } else { None };
        for (k, v) in &net_sysctls {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).map_err(Error::io(format!("sysctl {k}={v}")))?;
        }
        let cgroup = Cgroup::create(&cgroup_path(&spec, id), linux.and_then(|l| l.resources().as_ref()))?;
        let cgroup_fs = cgroup.fs();
        // Into its cgroup: on v1 the child moves itself (`InitArgs::self_entry`); on v2 it is born there where the
        // kernel allows it.
        let (self_entry, into) = match cgroup.self_entry().and_then(|e| Ok((e, cgroup.clone_target()?))) {
            Ok(x) => x,
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        let (mut from_parent, mut to_child) = pipe()?;
        let (mut from_child, mut to_parent) = pipe()?;
        let (console_parent, console_child) = console_socket(&stdio)?.unzip();
        let mut born_inside = false;
        let forked = match into.as_ref().map(|fd| {
            // SAFETY: the builtin runtime runs only in the shim (berthd reaches it through the shim), which creates
            // the container before it starts any thread (its only one, the log compressor, comes later), and in
            // `berth-runc`, which starts none, so the child inherits no lock another thread holds.
            unsafe { crate::sys::clone_fork_into(flags, fd.as_fd()) }
        }) {
            Some(Ok(Some(f))) => {
                born_inside = true;
                Ok(f)
            }
            Some(Err(e)) => Err(e),
            // SAFETY: as above.
            None | Some(Ok(None)) => unsafe { clone_fork(flags) },
        };
        drop(into);
        if !matches!(forked, Ok(Forked::Child)) {
            let back = restore.iter().try_for_each(|(t, f)| {
                nix::sched::setns(f.as_fd(), ns_flag(*t)).map_err(Error::sys(format!("return to own {t} namespace")))
            });
            if let Err(e) = back {
                if let Ok(Forked::Parent(pid)) = forked {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                }
                let _ = cgroup.destroy();
                return Err(e);
            }
        }
        match forked {
            Err(e) => {
                let _ = cgroup.destroy();
                Err(e)
            }
            Ok(Forked::Child) => {
                drop(to_child);
                drop(from_child);
                drop(console_parent);
                let args = InitArgs {
                    spec: &spec,
                    rootfs: &rootfs,
                    stdio: &stdio,
                    console: console_child,
                    join: &join,
                    new_cgroup_ns,
                    new_uts_ns,
                    new_user_ns,
                    sysfs,
                    prepared: &prepared,
                    cgroup_fs,
                    fifo: fifo.as_ref().map(|f| f.as_raw_fd()),
                    self_entry,
                };
                let err = init_child(args, &mut from_parent, &mut to_parent);
                fail_child(to_parent, &err)
            }
            Ok(Forked::Parent(pid)) => {
                drop(from_parent);
                drop(to_parent);
                drop(console_child);
                let moves_itself = self_entry.is_some();
                drop(self_entry);
                let mut setup = || -> Result<()> {
                    if !moves_itself && !born_inside {
                        cgroup.add_pid(pid.as_raw())?;
                    }
                    if new_user_ns {
                        let (uid_map, gid_map) = id_maps(&spec);
                        sys::write_id_maps(pid.as_raw(), &uid_map, &gid_map)?;
                        // Its root may manage its own cgroup (v2), as with runc.
                        let root = |m: &str| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
                        if let (Some(uid), Some(gid)) = (root(&uid_map), root(&gid_map)) {
                            cgroup.delegate(uid, gid)?;
                        }
                    }
                    if let Some(adj) = process.oom_score_adj() {
                        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                            .map_err(Error::io("write oom_score_adj"))?;
                    }
                    to_child.write_all(b"c").map_err(Error::io("write to sync pipe"))
                };
                let ready = setup().and_then(|()| read_byte(&mut from_child));
                let ready = match ready {
                    Ok(Some(b'R')) => receive_console(console_parent).map(|c| (Some(b'R'), c)),
                    other => other.map(|r| (r, None)),
                };
                match ready {
                    Ok((Some(b'R'), console)) => Ok(Box::new(BuiltinCreated { pid, to_child, from_child, console })),
                    Ok(_) => {
                        let e = child_error(&mut from_child, pid);
                        let _ = cgroup.destroy();
                        Err(e)
                    }
                    Err(e) => {
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(pid, None);
                        let _ = cgroup.destroy();
                        // The child may have failed its setup first (it sets up while we move it into its cgroup):
                        // then its message, not our broken pipe, is the error.
                        match read_byte(&mut from_child) {
                            Ok(Some(b'E')) => Err(child_error(&mut from_child, pid)),
                            _ => Err(e),
                        }
                    }
                }
            }
        }
    }
}

impl Runtime for Builtin {
    fn name(&self) -> &str {
        "berth"
    }

    fn create(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<Box<dyn Created>> {
        self.create_gated(id, bundle, stdio, None)
    }

    fn exec(
        &self,
        id: &str,
        bundle: &Path,
        init_pid: Pid,
        process: &Process,
        stdio: Stdio,
    ) -> Result<(Pid, Option<OwnedFd>)> {
        stdio.check(process)?;
        // First, as runc does (CVE-2016-9962): the process that enters the container (our child, forked into its PID
        // namespace) is non-dumpable from its first instruction there until its `execve`, so container root, watching
        // /proc, cannot open its `exe`, `fd/*`, `environ`, `mem` or `root`, nor ptrace it, while it is still this
        // helper (the host's binary, the host's descriptors and memory).
        sys::set_dumpable(false)?;
        let spec = load_spec(bundle)?;
        let linux = spec.linux().as_ref();
        let cgroup = Cgroup::open(&cgroup_path(&spec, id))?;
        // cgroup v1: we (single-threaded) move ourselves in, which costs no RCU grace period (`Cgroup::self_entry`).
        // v2: a move by PID waits out one (~10 ms): a forked helper moves us there while we prepare the process.
        // (Not a thread: `setns` into a mount namespace needs a caller that shares its file system information with
        // no other task, and a joined thread may not have released it yet.)
        let me = nix::unistd::getpid();
        let mover = match cgroup.self_entry()? {
            Some(entry) => {
                entry.enter()?;
                None
            }
            // SAFETY: exec runs in its own `berth-shim exec` process, which starts no thread.
            None => match unsafe { clone_fork(0) }? {
                Forked::Child => {
                    let code = if cgroup.add_pid(me.as_raw()).is_ok() { 0 } else { 1 };
                    // SAFETY: _exit ends the forked helper at once, without running the parent's destructors.
                    unsafe { libc::_exit(code) }
                }
                Forked::Parent(pid) => Some(pid),
            },
        };
        let moved = || -> Result<()> {
            match mover.map(|m| waitpid(m, None)) {
                None | Some(Ok(nix::sys::wait::WaitStatus::Exited(_, 0))) => Ok(()),
                // Report the real error: try once more here.
                Some(_) => Ok(cgroup.add_pid(me.as_raw())?),
            }
        };
        let prepared = Prepared::new(process, linux.and_then(|l| l.seccomp().as_ref()), self.filter_cache.as_deref());
        // Open every namespace of the container before joining any: after joining its mount namespace, /proc is the
        // container's.
        // A container's user namespace is joined last: its network namespace belongs to the host's user namespace
        // (berthd made it), and joining that takes the host privilege that entering the user namespace gives up.
        let own_user_ns = spec_has_new_user_ns(&spec);
        let mut order = vec![
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Mount,
        ];
        if own_user_ns {
            order.push(LinuxNamespaceType::User);
        }
        let mut ns_files = Vec::new();
        for t in order {
            let path = format!("/proc/{init_pid}/ns/{t}");
            match std::fs::File::open(&path) {
                Ok(f) => ns_files.push((t, f)),
                Err(e) => {
                    if let Some(m) = mover {
                        let _ = waitpid(m, None);
                    }
                    return Err(Error::Io { what: format!("open {path}"), source: e });
                }
            }
        }
        let moved = moved();
        let prepared = prepared?;
        moved?;
        for (t, f) in &ns_files {
            nix::sched::setns(f.as_fd(), ns_flag(*t)).map_err(Error::sys(format!("setns {t}")))?;
        }
        let (mut from_child, mut to_parent) = pipe()?;
        let (console_parent, console_child) = console_socket(&stdio)?.unzip();
        // SAFETY: exec runs in its own `berth-shim exec` process, which starts no thread.
        match unsafe { clone_fork(0) }? {
            Forked::Child => {
                drop(from_child);
                drop(console_parent);
                let run = || -> Result<()> {
                    dup_stdio(&stdio)?;
                    // Only our sync pipe and console socket stay: not the caller's (berthd's report pipe and console
                    // socket, the namespace files), which would otherwise sit in our table inside the container
                    // until `execve`.
                    let keep = [to_parent.as_raw_fd(), console_child.as_ref().map_or(-1, |c| c.as_raw_fd())];
                    close_except(3, &keep);
                    nix::unistd::setsid().map_err(Error::sys("setsid"))?;
                    if own_user_ns {
                        become_root()?;
                    }
                    if let Some(sock) = &console_child {
                        // In the container's mount namespace already: /dev/ptmx is the container's.
                        console::attach(console::open_pty(process)?, sock)?;
                    }
                    Ok(())
                };
                let err = match run() {
                    Ok(()) => prepared.exec(|| Ok(())),
                    Err(e) => e,
                };
                let _ = to_parent.write_all(format!("E{err}").as_bytes());
                // SAFETY: _exit ends the forked child at once, without running destructors of the parent's state.
                unsafe { libc::_exit(127) }
            }
            Forked::Parent(pid) => {
                drop(to_parent);
                drop(console_child);
                match read_byte(&mut from_child)? {
                    None => Ok((pid, receive_console(console_parent)?)),
                    Some(_) => Err(child_error(&mut from_child, pid)),
                }
            }
        }
    }

    fn pause(&self, id: &str, bundle: &Path) -> Result<()> {
        let spec = load_spec(bundle)?;
        Ok(Cgroup::open(&cgroup_path(&spec, id))?.freeze()?)
    }

    fn resume(&self, id: &str, bundle: &Path) -> Result<()> {
        let spec = load_spec(bundle)?;
        Ok(Cgroup::open(&cgroup_path(&spec, id))?.thaw()?)
    }

    fn delete(&self, id: &str, bundle: &Path) -> Result<()> {
        let path = match load_spec(bundle) {
            Ok(spec) => cgroup_path(&spec, id),
            Err(_) => format!("berth/{id}"),
        };
        match Cgroup::open(&path) {
            Ok(cg) => {
                // Processes left behind by the container's init would keep the cgroup busy.
                let _ = cg.kill_all();
                Ok(cg.destroy()?)
            }
            Err(_) => Ok(()),
        }
    }
}
