//! The commands, over one container's state directory `<root>/<id>/`: `state.json` (what `state` reports, plus what
//! the other commands need: the init's start time, to tell a reused PID, and the cgroup path) and, between `create`
//! and `start`, `exec.fifo` (the init's start gate, as runc's). The container itself is made and joined by
//! `berth_runtime::builtin` (`create_waiting_on_fifo`, `exec`) and its cgroup managed by `berth_runtime::cgroups`.
//!
//! The status is derived as runc derives it: `stopped` when the init is gone (or a zombie, or its PID was reused),
//! `paused` when the cgroup is frozen, `created` while the FIFO exists, else `running`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use berth_runtime::builtin::{Builtin, cgroup_path};
use berth_runtime::cgroups::Cgroup;
use berth_runtime::{Runtime, Stdio};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Process, Spec};
use serde::{Deserialize, Serialize};

const STATE_FILE: &str = "state.json";
const EXEC_FIFO: &str = "exec.fifo";
/// Compiled seccomp filters (`Builtin`'s cache), beside the containers' directories.
const CACHE_DIR: &str = ".berth-runc-cache";

/// What every command gets from the global flags.
pub struct Ctx {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl Ctx {
    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn runtime(&self) -> Builtin {
        Builtin::new(&self.root.join(CACHE_DIR))
    }
}

/// `<root>/<id>/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    id: String,
    pid: i32,
    /// The init's start time (`/proc/<pid>/stat`, field 22): a different process with the same PID is not it.
    start_time: u64,
    bundle: PathBuf,
    rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    created: String,
    owner: String,
    annotations: BTreeMap<String, String>,
    /// Relative to each hierarchy's root (`default/<id>` for containerd's default spec).
    cgroup_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// runc's `state` output (and `list --format json`'s elements), in runc's field order.
#[derive(Debug, Serialize)]
struct StateView<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: String,
    id: &'a str,
    pid: i32,
    status: &'static str,
    bundle: &'a Path,
    rootfs: &'a Path,
    created: &'a str,
    owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// A loaded container.
struct Container {
    dir: PathBuf,
    saved: Saved,
}

/// runc's ID rule: `^[\w+-\.]+$`, and not `.` or `..`.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if !ok {
        bail!("invalid id format: {id}");
    }
    Ok(())
}

/// The state (3rd) and start time (22nd) fields of `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (2nd field) is in parentheses and may hold anything: fields are counted after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

impl Container {
    fn load(ctx: &Ctx, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = ctx.dir(id);
        let data = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("container does not exist"),
            Err(e) => return Err(e).with_context(|| format!("read {}", dir.join(STATE_FILE).display())),
        };
        let saved =
            serde_json::from_slice(&data).with_context(|| format!("parse {}", dir.join(STATE_FILE).display()))?;
        Ok(Container { dir, saved })
    }

    /// Whether the init still runs (not a zombie, not another process with its PID).
    fn init_alive(&self) -> bool {
        self.saved.pid > 0
            && proc_stat(self.saved.pid).is_some_and(|(s, t)| t == self.saved.start_time && !matches!(s, 'Z' | 'X'))
    }

    fn cgroup(&self) -> Option<Cgroup> {
        Cgroup::open(&self.saved.cgroup_path).ok()
    }

    fn status(&self) -> Status {
        if !self.init_alive() {
            Status::Stopped
        } else if self.cgroup().is_some_and(|c| c.is_frozen()) {
            Status::Paused
        } else if self.dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    fn view(&self) -> StateView<'_> {
        let status = self.status();
        StateView {
            oci_version: oci_spec::runtime::VERSION.to_string(),
            id: &self.saved.id,
            pid: if status == Status::Stopped { 0 } else { self.saved.pid },
            status: status.as_str(),
            bundle: &self.saved.bundle,
            rootfs: &self.saved.rootfs,
            created: &self.saved.created,
            owner: &self.saved.owner,
            annotations: &self.saved.annotations,
        }
    }

    fn signal(&self, sig: Signal, all: bool) -> Result<()> {
        if all {
            let cg = self.cgroup().ok_or_else(|| anyhow!("container not running"))?;
            for pid in cg.procs().context("list the container's processes")? {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
            return Ok(());
        }
        match nix::sys::signal::kill(Pid::from_raw(self.saved.pid), sig) {
            Ok(()) => Ok(()),
            Err(nix::Error::ESRCH) => bail!("container not running"),
            Err(e) => Err(e).context("kill"),
        }
    }

    /// Kills the init and every process of the cgroup, and waits (10 s at most) until the init is gone.
    fn kill_and_wait(&self) -> Result<()> {
        let pidfd = berth_runtime::sys::pidfd_open(self.saved.pid).ok();
        if self.init_alive() {
            let _ = nix::sys::signal::kill(Pid::from_raw(self.saved.pid), Signal::SIGKILL);
        }
        if let Some(cg) = self.cgroup() {
            let _ = cg.kill_all();
        }
        // A pidfd turns readable when its process has exited (reaped or not): the caller's subreaper reaps it.
        if let Some(fd) = pidfd.filter(|_| self.init_alive()) {
            let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16));
        }
        if self.init_alive() {
            bail!("container init {} still running after SIGKILL", self.saved.pid);
        }
        Ok(())
    }

    /// Releases the cgroup (killing what is left in it) and removes the state directory.
    fn destroy(&self) -> Result<()> {
        if let Some(cg) = self.cgroup() {
            let _ = cg.kill_all();
            cg.destroy().context("remove the container's cgroup")?;
        }
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// Writes a PID file as runc does: a temporary file renamed over the target, mode 0644.
fn write_pid_file(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, pid: i32) -> Result<()> {
    let tmp = format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id());
    let fd = nix::fcntl::openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .with_context(|| format!("create pid file {tmp}"))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(pid.to_string().as_bytes()).context("write pid file")?;
    nix::fcntl::renameat(dir, tmp.as_str(), dir, name).context("rename pid file")?;
    Ok(())
}

/// The directory of `path` (opened now, so the file can be written after we left the host's mount namespace) and
/// the file's name.
fn open_parent(path: &Path) -> Result<(OwnedFd, std::ffi::OsString)> {
    let name = path.file_name().ok_or_else(|| anyhow!("invalid pid file {}", path.display()))?.to_os_string();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fd = nix::fcntl::open(parent, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_PATH, Mode::empty())
        .with_context(|| format!("open {}", parent.display()))?;
    Ok((fd, name))
}

fn connect_console(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).with_context(|| format!("connect to the console socket {}", path.display()))
}

/// Our own standard streams, for a process without a terminal (runc's pass-through mode).
fn own_stdio() -> Result<Stdio> {
    let dup = |fd: BorrowedFd<'_>| fd.try_clone_to_owned().context("dup stdio");
    Ok(Stdio::Fds {
        stdin: dup(std::io::stdin().as_fd())?,
        stdout: dup(std::io::stdout().as_fd())?,
        stderr: dup(std::io::stderr().as_fd())?,
    })
}

/// runc's rules for terminals and console sockets.
fn check_terminal(terminal: bool, console_socket: bool, detach: bool) -> Result<()> {
    if terminal && !console_socket && detach {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    if terminal && !console_socket {
        bail!("a terminal needs --console-socket (berth-runc does not relay a terminal itself)");
    }
    if !terminal && console_socket {
        bail!("cannot use console socket if runc will not detach or allocate tty");
    }
    Ok(())
}

/// `create`: returns the init's PID (our child until we exit).
pub fn create(ctx: &Ctx, a: &crate::CreateArgs) -> Result<i32> {
    create_inner(ctx, a, true)
}

fn create_inner(ctx: &Ctx, a: &crate::CreateArgs, detach: bool) -> Result<i32> {
    check_id(&a.id)?;
    if ctx.systemd_cgroup {
        bail!(
            "--systemd-cgroup is not supported: berth-runc manages cgroups through cgroupfs (set SystemdCgroup = false \
             in containerd's runc options)"
        );
    }
    if a.preserve_fds > 0 {
        bail!("--preserve-fds is not supported");
    }
    let bundle = std::fs::canonicalize(&a.bundle).with_context(|| format!("bundle {}", a.bundle.display()))?;
    let spec = berth_runtime::load_spec(&bundle)?;
    if let Some(hooks) = spec.hooks() {
        let any = |h: &Option<Vec<oci_spec::runtime::Hook>>| h.as_ref().is_some_and(|v| !v.is_empty());
        #[allow(deprecated)]
        if any(hooks.prestart())
            || any(hooks.create_runtime())
            || any(hooks.create_container())
            || any(hooks.start_container())
            || any(hooks.poststart())
            || any(hooks.poststop())
        {
            bail!("OCI hooks are not supported by berth-runc");
        }
    }
    let process = spec.process().as_ref().ok_or_else(|| anyhow!("config.json has no process"))?;
    check_terminal(process.terminal().unwrap_or(false), a.console_socket.is_some(), detach)?;
    let root = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_else(|| PathBuf::from("rootfs"));
    let rootfs = if root.is_absolute() { root } else { bundle.join(root) };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&ctx.root)
        .with_context(|| format!("create {}", ctx.root.display()))?;
    let dir = ctx.dir(&a.id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!("container with given ID already exists"),
        Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
    }
    let made = (|| -> Result<i32> {
        let console = a.console_socket.as_deref().map(connect_console).transpose()?;
        let pid_file = a.pid_file.as_deref().map(open_parent).transpose()?;
        // The FIFO must be writable by the container's user (the init opens it after the user switch), as runc's.
        let fifo = dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622)).context("create exec fifo")?;
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622)).context("chmod exec fifo")?;
        let fifo_fd =
            nix::fcntl::open(&fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).context("open exec fifo")?;
        // Whatever the runtime mounts on our side (a sysfs for a user namespace) stays in a namespace of our own,
        // gone when we exit; a slave of the host's, so the bundle's root file system is seen as the caller mounted it.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare mount namespace")?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .context("make mounts slaves of the host's")?;
        // runc's rule: a cgroup that holds processes already is not this container's to take (its kill and removal
        // at `delete` would reach them).
        if let Ok(cg) = Cgroup::open(&cgroup_path(&spec, &a.id))
            && let Ok(procs) = cg.procs()
            && !procs.is_empty()
        {
            return Err(anyhow!("container's cgroup is not empty: {} process(es) found", procs.len()));
        }
        let stdio = if console.is_some() { Stdio::Console } else { own_stdio()? };
        let mut created = ctx.runtime().create_waiting_on_fifo(&a.id, &bundle, stdio, fifo_fd)?;
        let pid = created.pid().as_raw();
        let mut finish = || -> Result<()> {
            if let (Some(sock), Some(master)) = (&console, created.console()) {
                berth_runtime::sys::send_fd(sock.as_fd(), master.as_fd())
                    .context("send the terminal to the console socket")?;
            }
            let start_time = proc_stat(pid).map(|(_, t)| t).ok_or_else(|| anyhow!("container init {pid} exited"))?;
            let saved = Saved {
                id: a.id.clone(),
                pid,
                start_time,
                bundle: bundle.clone(),
                rootfs: rootfs.clone(),
                created: now_rfc3339(),
                owner: String::new(),
                annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
                cgroup_path: cgroup_path(&spec, &a.id),
            };
            let json = serde_json::to_vec(&saved).context("encode state")?;
            berth_runtime::sys::replace_file(&dir.join(STATE_FILE), &json, false)?;
            if let Some((dirfd, name)) = &pid_file {
                write_pid_file(dirfd.as_fd(), name, pid)?;
            }
            Ok(())
        };
        if let Err(e) = finish() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            if let Ok(cg) = Cgroup::open(&cgroup_path(&spec, &a.id)) {
                let _ = cg.destroy();
            }
            return Err(e);
        }
        Ok(pid)
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

/// `start`: opens the FIFO the init waits on, and reads its byte.
pub fn start(ctx: &Ctx, id: &str) -> Result<()> {
    let c = Container::load(ctx, id)?;
    match c.status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        Status::Paused => bail!("cannot start a container in the paused state"),
    }
    let fifo_path = c.dir.join(EXEC_FIFO);
    // Non-blocking: the open returns at once; the init's open for writing then succeeds and it writes its byte.
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .context("open exec fifo")?;
    let pidfd = berth_runtime::sys::pidfd_open(c.saved.pid)
        .ok()
        .ok_or_else(|| anyhow!("cannot start a container that has stopped"))?;
    if !c.init_alive() {
        bail!("cannot start a container that has stopped");
    }
    let mut fifo = std::fs::File::from(fifo);
    loop {
        let mut byte = [0u8; 1];
        match fifo.read(&mut byte) {
            Ok(1) => break,
            // No writer yet (never had one: no EOF), or nothing written yet.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read exec fifo"),
        }
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN), PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).context("poll exec fifo"),
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let died = fds[1].revents().is_some_and(|r| !r.is_empty());
        if died && !fifo_ready {
            // Read what it may have written just before dying, once more.
            if fifo.read(&mut byte).is_ok_and(|n| n == 1) {
                break;
            }
            bail!("cannot start a container that has stopped");
        }
    }
    std::fs::remove_file(&fifo_path).context("remove exec fifo")?;
    Ok(())
}

/// `run`: create, start; without `detach`, wait for the init (our child), delete and return its exit code.
pub fn run(ctx: &Ctx, a: &crate::CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let pid = create_inner(ctx, a, detach)?;
    if let Err(e) = start(ctx, &a.id) {
        if let Ok(c) = Container::load(ctx, &a.id) {
            let _ = c.kill_and_wait();
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            let _ = c.destroy();
        }
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_child(Pid::from_raw(pid));
    if !keep {
        Container::load(ctx, &a.id)?.destroy()?;
    }
    Ok(code)
}

/// Waits for our child `pid`; its exit code, or 128 + the signal that killed it.
fn wait_child(pid: Pid) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

pub fn state(ctx: &Ctx, id: &str) -> Result<()> {
    let c = Container::load(ctx, id)?;
    println!("{}", serde_json::to_string_pretty(&c.view())?);
    Ok(())
}

/// A signal as runc takes it: `9`, `KILL`, `SIGKILL` (any case).
fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("unknown signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map_err(|_| anyhow!("unknown signal {s:?}"))
}

pub fn kill(ctx: &Ctx, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let c = Container::load(ctx, id)?;
    if c.status() == Status::Stopped {
        bail!("container not running");
    }
    c.signal(sig, all)
}

pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(ctx, id) {
        Ok(c) => c,
        Err(e) => {
            check_id(id)?;
            // A create that died before writing its state leaves a directory behind: runc removes it too.
            let dir = ctx.dir(id);
            if dir.is_dir() && !dir.join(STATE_FILE).exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return if force { Ok(()) } else { Err(e) };
        }
    };
    match c.status() {
        Status::Stopped => c.destroy(),
        Status::Created => {
            c.kill_and_wait()?;
            c.destroy()
        }
        _ if force => {
            c.kill_and_wait()?;
            c.destroy()
        }
        s => bail!("cannot delete container {id} that is not stopped: {}", s.as_str()),
    }
}

pub fn pause(ctx: &Ctx, id: &str) -> Result<()> {
    let c = Container::load(ctx, id)?;
    match c.status() {
        Status::Running | Status::Created => {}
        Status::Paused => return Ok(()),
        Status::Stopped => bail!("container not running"),
    }
    c.cgroup().ok_or_else(|| anyhow!("container not running"))?.freeze().context("pause")?;
    Ok(())
}

pub fn resume(ctx: &Ctx, id: &str) -> Result<()> {
    let c = Container::load(ctx, id)?;
    if c.status() != Status::Paused {
        bail!("container not paused");
    }
    c.cgroup().ok_or_else(|| anyhow!("container not paused"))?.thaw().context("resume")?;
    Ok(())
}

pub fn ps(ctx: &Ctx, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let c = Container::load(ctx, id)?;
    let pids =
        c.cgroup().map(|cg| cg.procs()).transpose().context("list the container's processes")?.unwrap_or_default();
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
    let out = std::process::Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    println!("{header}");
    for line in lines {
        if line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// A JSON file of the process (the OCI `process` object); `-` for stdin.
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// A Unix socket to which the master of the process's terminal is sent.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Write the process's PID (as the host sees it) to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Return once the process runs (it is then re-parented to the caller's subreaper).
    #[arg(short = 'd', long)]
    detach: bool,
    /// Give the process a terminal (with the command form; --process says `terminal` itself).
    #[arg(short = 't', long)]
    tty: bool,
    /// Working directory (command form).
    #[arg(long)]
    cwd: Option<String>,
    /// Environment variable `KEY=VALUE` (command form; repeatable).
    #[arg(short = 'e', long)]
    env: Vec<String>,
    /// `UID[:GID]` (command form).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Extra descriptors to pass on (only 0 is supported).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    /// The command (when there is no --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The process of an exec: `--process`, or the container's own process with the command and flags applied.
fn exec_process(c: &Container, a: &ExecArgs) -> Result<Process> {
    if let Some(path) = &a.process {
        let data = if path.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v).context("read process from stdin")?;
            v
        } else {
            std::fs::read(path).with_context(|| format!("read {}", path.display()))?
        };
        return serde_json::from_slice(&data).with_context(|| format!("parse process {}", path.display()));
    }
    if a.command.is_empty() {
        bail!("exec needs a command, or a process with --process");
    }
    let spec = berth_runtime::load_spec(&c.saved.bundle)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let uid = uid.parse().map_err(|_| anyhow!("invalid user {u:?}: UID[:GID] in numbers"))?;
        let gid = gid.parse().map_err(|_| anyhow!("invalid user {u:?}: UID[:GID] in numbers"))?;
        p.user_mut().set_uid(uid);
        p.user_mut().set_gid(gid);
    }
    Ok(p)
}

/// `exec`: returns the exit code (0 once started with --detach).
pub fn exec(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    if a.preserve_fds > 0 {
        bail!("--preserve-fds is not supported");
    }
    let c = Container::load(ctx, &a.id)?;
    match c.status() {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused => bail!("cannot exec in a paused container"),
        Status::Created | Status::Running => {}
    }
    let process = exec_process(&c, a)?;
    check_terminal(process.terminal().unwrap_or(false), a.console_socket.is_some(), a.detach)?;
    // Everything on the host's side is opened now: the runtime takes us into the container's namespaces.
    let console = a.console_socket.as_deref().map(connect_console).transpose()?;
    let pid_file = a.pid_file.as_deref().map(open_parent).transpose()?;
    let stdio = if console.is_some() { Stdio::Console } else { own_stdio()? };
    let init = Pid::from_raw(c.saved.pid);
    let (pid, master) = ctx.runtime().exec(&a.id, &c.saved.bundle, init, &process, stdio)?;
    let finish = || -> Result<()> {
        if let (Some(sock), Some(master)) = (&console, master) {
            berth_runtime::sys::send_fd(sock.as_fd(), master.as_fd())
                .context("send the terminal to the console socket")?;
        }
        if let Some((dirfd, name)) = &pid_file {
            write_pid_file(dirfd.as_fd(), name, pid.as_raw())?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    Ok(wait_child(pid))
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file of the resources (the OCI `linux.resources` object); `-` for stdin. The flags below override it.
    #[arg(short = 'r', long)]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a unit: 512m, 1g).
    #[arg(long)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited).
    #[arg(long)]
    memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long)]
    cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10-1000).
    #[arg(long)]
    blkio_weight: Option<u16>,
    id: String,
}

fn size(s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    berth_api::units::ram_in_bytes(s).map_err(|e| anyhow!("invalid size {s:?}: {e}"))
}

/// The resources of an `update`: the JSON, then the flags.
fn update_resources(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut r: LinuxResources = match &a.resources {
        None => LinuxResources::default(),
        Some(p) => {
            let data = if p.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v).context("read resources from stdin")?;
                v
            } else {
                std::fs::read(p).with_context(|| format!("read {}", p.display()))?
            };
            serde_json::from_slice(&data).context("parse resources")?
        }
    };
    if a.memory.is_some() || a.memory_reservation.is_some() || a.memory_swap.is_some() {
        let mut m = (*r.memory()).unwrap_or_default();
        if let Some(v) = &a.memory {
            m.set_limit(Some(size(v)?));
        }
        if let Some(v) = &a.memory_reservation {
            m.set_reservation(Some(size(v)?));
        }
        if let Some(v) = &a.memory_swap {
            m.set_swap(Some(size(v)?));
        }
        r.set_memory(Some(m));
    }
    if a.cpu_share.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if a.cpu_share.is_some() {
            c.set_shares(a.cpu_share);
        }
        if a.cpu_quota.is_some() {
            c.set_quota(a.cpu_quota);
        }
        if a.cpu_period.is_some() {
            c.set_period(a.cpu_period);
        }
        if a.cpuset_cpus.is_some() {
            c.set_cpus(a.cpuset_cpus.clone());
        }
        if a.cpuset_mems.is_some() {
            c.set_mems(a.cpuset_mems.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(limit) = a.pids_limit {
        let mut p = oci_spec::runtime::LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

pub fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<()> {
    let c = Container::load(ctx, &a.id)?;
    if c.status() == Status::Stopped {
        bail!("container not running");
    }
    let r = update_resources(a)?;
    Cgroup::update(&c.saved.cgroup_path, &r).context("update the container's cgroup")?;
    Ok(())
}

pub fn list(ctx: &Ctx, format: &str, quiet: bool) -> Result<()> {
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&ctx.root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(c) = Container::load(ctx, &name) {
                all.push(c);
            }
        }
    }
    all.sort_by(|a, b| a.saved.id.cmp(&b.saved.id));
    if quiet {
        for c in &all {
            println!("{}", c.saved.id);
        }
    } else if format == "json" {
        let views: Vec<StateView<'_>> = all.iter().map(Container::view).collect();
        println!("{}", serde_json::to_string(&views)?);
    } else {
        let rows: Vec<[String; 6]> = all
            .iter()
            .map(|c| {
                let v = c.view();
                [
                    v.id.to_string(),
                    v.pid.to_string(),
                    v.status.to_string(),
                    v.bundle.display().to_string(),
                    v.created.to_string(),
                    v.owner.to_string(),
                ]
            })
            .collect();
        let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
        let widths: Vec<usize> =
            (0..6).map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0)).collect();
        for r in std::iter::once(&header).chain(rows.iter()) {
            let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            println!("{}", line.join("   ").trim_end());
        }
    }
    Ok(())
}

pub fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    if rootless {
        bail!("--rootless is not supported: berth-runc runs containers as root");
    }
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let json = serde_json::to_string_pretty(&Spec::default())?;
    std::fs::write(&path, json + "\n").with_context(|| format!("write {}", path.display()))
}

/// The version of the libseccomp we are linked with (`major.minor.micro`).
pub fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".into(),
    }
}

/// The seccomp actions `berth_runtime::seccomp` applies (`SCMP_ACT_NOTIFY` is refused).
const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] =
    &["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"];

const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// runc's `features` JSON for what this runtime does.
pub fn features_json() -> serde_json::Value {
    let namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let v2 = berth_runtime::cgroups::is_unified();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION.to_string(),
        "hooks": [],
        "mountOptions": berth_runtime::mounts::OPTIONS,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS,
                "knownFlags": [],
                "supportedFlags": []
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": libseccomp_version(),
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "org.opencontainers.runc.version": format!("berth-runc {}", env!("CARGO_PKG_VERSION")),
            "io.berth.runc.cgroup.host": if v2 { "v2" } else { "v1" }
        }
    })
}

pub fn features() -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&features_json())?);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rule() {
        for ok in ["a", "abc-1.2_3+x", "A0"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "x\n"] {
            let e = check_id(bad).unwrap_err().to_string();
            assert_eq!(e, format!("invalid id format: {bad}"));
        }
    }

    #[test]
    fn signals_in_every_form() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn proc_stat_reads_our_own_start_time() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(matches!(state, 'R' | 'S'), "{state}");
        assert!(start > 0);
    }

    #[test]
    fn terminal_rules_are_runcs() {
        assert!(check_terminal(true, true, true).is_ok());
        assert!(check_terminal(false, false, true).is_ok());
        assert_eq!(
            check_terminal(true, false, true).unwrap_err().to_string(),
            "cannot allocate tty if runc will detach without setting console socket"
        );
        assert_eq!(
            check_terminal(false, true, true).unwrap_err().to_string(),
            "cannot use console socket if runc will not detach or allocate tty"
        );
    }

    #[test]
    fn update_flags_override_the_json() {
        let dir = std::env::temp_dir().join(format!("berth-runc-update-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("r.json");
        std::fs::write(&file, r#"{"memory":{"limit":1000000},"pids":{"limit":10}}"#).unwrap();
        let a = UpdateArgs {
            resources: Some(file),
            memory: Some("64m".into()),
            memory_reservation: None,
            memory_swap: None,
            cpu_share: Some(512),
            cpu_quota: None,
            cpu_period: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            pids_limit: None,
            blkio_weight: None,
            id: "x".into(),
        };
        let r = update_resources(&a).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_view_has_runcs_fields_in_order() {
        let saved = Saved {
            id: "c1".into(),
            pid: 0,
            start_time: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-12-06T18:00:00.000000001Z".into(),
            owner: String::new(),
            annotations: BTreeMap::new(),
            cgroup_path: "default/c1".into(),
        };
        let c = Container { dir: PathBuf::from("/nonexistent/c1"), saved };
        let text = serde_json::to_string(&c.view()).unwrap();
        assert!(
            text.starts_with(r#"{"ociVersion":""#)
                && text.contains(r#","id":"c1","pid":0,"status":"stopped","bundle":"/b","rootfs":"/b/rootfs","created":"2026-12-06T18:00:00.000000001Z","owner":""}"#),
            "{text}"
        );
    }

    #[test]
    fn features_name_what_is_there() {
        let f = features_json();
        assert_eq!(f["linux"]["cgroup"]["systemd"], false);
        assert!(f["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "pid"));
        assert!(f["linux"]["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(f["linux"]["seccomp"]["actions"].as_array().unwrap().iter().any(|a| a == "SCMP_ACT_ERRNO"));
    }
}
