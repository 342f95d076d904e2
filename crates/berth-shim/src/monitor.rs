//! The container monitor: `berth-shim start <bundle>`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_runtime::shim::{self, ExitRecord, Request, Response, ShimConfig};
use berth_runtime::{Created, Runtime, Stdio};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::log::JsonLog;

/// Output queued for one attach client beyond which the container's output is no longer read until the client has
/// taken some (the container waits for its attached readers, as with Docker); a client that takes nothing for
/// [`MAX_CLIENT_STALL`] is dropped then, and so is one past the limit once the container has exited.
const MAX_CLIENT_BACKLOG: usize = 8 << 20;
/// How long a full attach client may hold the container's output back.
const MAX_CLIENT_STALL: std::time::Duration = std::time::Duration::from_secs(10);
/// After this long without anything to do, the shim gives back the pages its work touched (see [`Monitor::idle`]).
const QUIET_MS: u16 = 1000;
/// A shim that never has a quiet second gives back its pages this often all the same.
const BUSY_DROP: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(bundle: PathBuf) -> Result<()> {
    let cfg: ShimConfig = crate::read_json(&bundle.join(shim::CONFIG_FILE))?;
    // Detach from berthd: the parent returns at once, the child carries on in its own session and is re-parented to
    // init (or the nearest subreaper) so that the container outlives the daemon.
    // SAFETY: no thread has been started yet (the log compressor starts only once the container runs).
    match unsafe { berth_runtime::sys::clone_fork(0) }? {
        berth_runtime::sys::Forked::Parent(_) => std::process::exit(0),
        berth_runtime::sys::Forked::Child => {}
    }
    nix::unistd::setsid().context("setsid")?;
    let mut report = std::fs::File::from(dup_fd(std::io::stdout().as_fd())?);
    redirect_stdout_to_null();
    let mut monitor = match Monitor::create(bundle, cfg) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(report, "{}", json(&Response::Error { message: format!("{e:#}") }));
            return Ok(());
        }
    };
    let _ = writeln!(report, "{}", json(&Response::Created { pid: monitor.pid.as_raw() }));
    drop(report);
    monitor.run()
}

fn json(r: &Response) -> String {
    serde_json::to_string(r).unwrap_or_else(|_| r#"{"status":"error","message":"encoding"}"#.into())
}

fn dup_fd(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned().context("dup")
}

fn redirect_stdout_to_null() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 of a descriptor we own onto the standard output number, which we replace on purpose.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).context("fcntl")?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("fcntl")?;
    Ok(())
}

/// Mounts the overlay root file system on `<bundle>/rootfs` in a mount namespace of the shim's own.
fn mount_rootfs(bundle: &Path, cfg: &ShimConfig) -> Result<PathBuf> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare mount namespace")?;
    // A slave, not private: nothing mounted here reaches the host, but what berthd unmounts on the host (another
    // container's network namespace pin, under a shared mount) goes from this copy of the mount table too, instead of
    // keeping that namespace alive for as long as this shim runs.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .context("make mounts slaves of the host's")?;
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).with_context(|| format!("mkdir {}", rootfs.display()))?;
    let mut lower = cfg.rootfs.lower.clone();
    let (upper, work) = (&cfg.rootfs.upper, &cfg.rootfs.work);
    let mut staged = Vec::new();
    if let Some(idmap) = &cfg.rootfs.idmap {
        // Idmapped copies of the (shared) layers, here in the shim's namespace only; the overlay keeps its own
        // references to them, so they go once it is mounted. The upper directory is the container's own and holds
        // host IDs (a copy-up keeps the owner seen through the lower mount): the overlay, mounted by host root,
        // could not create its work directory on an idmapped mount, where host root has no ID.
        let (uid_map, gid_map) = idmap.maps();
        let userns = berth_runtime::sys::userns_with_maps(&uid_map, &gid_map)?;
        let stage = bundle.join("idmap");
        let mut bind = |source: &Path, name: String| -> Result<PathBuf> {
            let target = stage.join(name);
            std::fs::create_dir_all(&target).with_context(|| format!("mkdir {}", target.display()))?;
            berth_runtime::sys::idmapped_bind(source, &target, userns.as_fd())?;
            staged.push(target.clone());
            Ok(target)
        };
        for (i, l) in lower.iter_mut().enumerate() {
            *l = bind(l, format!("l{i}"))?;
        }
    }
    let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let opts = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
    let overlay = |opts: &str| mount(Some("overlay"), &rootfs, Some("overlay"), MsFlags::empty(), Some(opts));
    let mounted = if cfg.rootfs.volatile {
        berth_runtime::sys::clear_volatile_mark(work);
        // A kernel before 5.10 knows no `volatile`.
        overlay(&format!("{opts},volatile")).or_else(|_| overlay(&opts))
    } else {
        overlay(&opts)
    };
    mounted.with_context(|| format!("mount overlay on {}", rootfs.display()))?;
    for s in staged {
        let _ = nix::mount::umount2(&s, nix::mount::MntFlags::MNT_DETACH);
    }
    Ok(rootfs)
}

enum ClientKind {
    /// Waiting for its request line.
    New(Vec<u8>),
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Waiter,
    /// Answered; to be closed once its output is written.
    Done,
}

struct Client {
    sock: UnixStream,
    kind: ClientKind,
    out: VecDeque<u8>,
    read_closed: bool,
    /// Since when its backlog has been over [`MAX_CLIENT_BACKLOG`].
    full_since: Option<std::time::Instant>,
}

struct Monitor {
    bundle: PathBuf,
    cfg: ShimConfig,
    runtime: Box<dyn Runtime>,
    pid: Pid,
    created: Option<Box<dyn Created>>,
    listener: UnixListener,
    sigchld: SignalFd,
    /// stdout (or the pty master) and stderr of the container.
    outputs: Vec<(u8, std::fs::File)>,
    /// Where attach clients' stdin goes; `None` once closed.
    stdin: Option<std::fs::File>,
    stdin_buf: VecDeque<u8>,
    pty_master: Option<OwnedFd>,
    log: JsonLog,
    clients: Vec<Client>,
    exit: Option<ExitRecord>,
    paused: bool,
    /// The container has started: from then on a quiet second after work gives back what the shim may take out of
    /// its resident set (the binary's and libc's pages, the stack below the loop; not on the start's path).
    started: bool,
    /// Something happened since the pages were last given back.
    busy: bool,
    /// The next wait gives back the pages first ([`Monitor::idle`]).
    drop_pages: bool,
    /// When the pages were last given back (or the shim was set up).
    last_drop: std::time::Instant,
}

impl Monitor {
    fn create(bundle: PathBuf, cfg: ShimConfig) -> Result<Monitor> {
        berth_runtime::sys::set_child_subreaper()?;
        std::fs::write(bundle.join(shim::SHIM_PID_FILE), std::process::id().to_string()).context("write shim.pid")?;
        // SIGCHLD goes to a signalfd, read in the poll loop.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGPIPE);
        mask.thread_block().context("block signals")?;
        let mut chld = SigSet::empty();
        chld.add(Signal::SIGCHLD);
        let sigchld =
            SignalFd::with_flags(&chld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).context("signalfd")?;

        let rootfs = mount_rootfs(&bundle, &cfg)?;
        let mut spec = berth_runtime::load_spec(&bundle)?;
        if let Some(p) = spec.process_mut() {
            crate::apply_user(p, &rootfs, &cfg.user, &cfg.group_add)?;
        }
        berth_runtime::save_spec(&bundle, &spec)?;

        let mut log = JsonLog::open(&cfg.log_path, cfg.log.clone())
            .with_context(|| format!("open log {}", cfg.log_path.display()))?;
        let runtime = berth_runtime::by_name(&cfg.runtime, &cfg.runtime_root);
        // Without a terminal: pipes, kept by the shim's ends. With one: the runtime creates it inside the container
        // (as runc does) and hands back the master, taken once the container exists.
        let (stdio, pipes) = if cfg.tty {
            (Stdio::Console, None)
        } else {
            let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
            let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
            let (stdin_fd, stdin_w) = if cfg.open_stdin {
                let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
                (r, Some(std::fs::File::from(w)))
            } else {
                (OwnedFd::from(std::fs::File::open("/dev/null").context("open /dev/null")?), None)
            };
            let stdio = Stdio::Fds { stdin: stdin_fd, stdout: out_w, stderr: err_w };
            (stdio, Some((vec![(1u8, std::fs::File::from(out_r)), (2u8, std::fs::File::from(err_r))], stdin_w)))
        };
        let sock_path = bundle.join(shim::SOCKET_FILE);
        let _ = std::fs::remove_file(&sock_path);
        let listener = UnixListener::bind(&sock_path).with_context(|| format!("listen on {}", sock_path.display()))?;
        // Only root may connect (the bundle directory is root's only as well).
        std::fs::set_permissions(&sock_path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .with_context(|| format!("chmod {}", sock_path.display()))?;
        listener.set_nonblocking(true).context("listener")?;
        let mut created = runtime.create(&cfg.id, &bundle, stdio).inspect_err(|_| {
            let _ = std::fs::remove_file(&sock_path);
        })?;
        let pid = created.pid();
        // Threads only from here on: the init is cloned.
        log.resume_compression();
        let finish_setup = || -> Result<_> {
            let (outputs, stdin, pty_master) = match pipes {
                Some((outputs, stdin)) => (outputs, stdin, None),
                None => {
                    let master = created.console().context("the runtime returned no terminal")?;
                    if let Some((rows, cols)) = cfg.console_size {
                        let _ = berth_runtime::sys::set_winsize(master.as_fd(), rows, cols);
                    }
                    let out = std::fs::File::from(dup_fd(master.as_fd())?);
                    let stdin = cfg.open_stdin.then(|| dup_fd(master.as_fd()).map(std::fs::File::from)).transpose()?;
                    (vec![(1u8, out)], stdin, Some(master))
                }
            };
            for (_, f) in &outputs {
                set_nonblocking(f.as_fd())?;
            }
            if let Some(f) = &stdin {
                set_nonblocking(f.as_fd())?;
            }
            std::fs::write(bundle.join(shim::INIT_PID_FILE), pid.to_string()).context("write init.pid")?;
            Ok((outputs, stdin, pty_master))
        };
        let (outputs, stdin, pty_master) = match finish_setup() {
            Ok(v) => v,
            Err(e) => {
                // The container exists but cannot be monitored: end it and release what the runtime holds.
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                drop(created);
                let _ = waitpid(pid, None);
                let _ = runtime.delete(&cfg.id, &bundle);
                let _ = std::fs::remove_file(&sock_path);
                return Err(e);
            }
        };
        Ok(Monitor {
            bundle,
            cfg,
            runtime,
            pid,
            created: Some(created),
            listener,
            sigchld,
            outputs,
            stdin,
            stdin_buf: VecDeque::new(),
            pty_master,
            log,
            clients: Vec::new(),
            exit: None,
            paused: false,
            started: false,
            busy: false,
            drop_pages: false,
            last_drop: std::time::Instant::now(),
        })
    }

    fn run(&mut self) -> Result<()> {
        berth_runtime::sys::trim_heap();
        let mut exited_at: Option<std::time::Instant> = None;
        loop {
            if self.exit.is_some() {
                let since = *exited_at.get_or_insert_with(std::time::Instant::now);
                // Output is drained until every writer has closed it; a descendant that escaped the container's PID
                // namespace cannot hold the shim open for more than two seconds.
                if self.outputs.is_empty() || since.elapsed() > std::time::Duration::from_secs(2) {
                    break;
                }
            }
            self.poll_once()?;
        }
        self.finish();
        Ok(())
    }

    fn poll_once(&mut self) -> Result<()> {
        // Order of descriptors: listener, signalfd, outputs, stdin (when it has a backlog), clients.
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN));
        // While an attach client is full, the container's output waits in its pipes (not after the exit: what is
        // left there is bounded, and the log must get it).
        let now = std::time::Instant::now();
        let mut held = false;
        for c in &mut self.clients {
            if c.out.len() <= MAX_CLIENT_BACKLOG {
                c.full_since = None;
            } else if self.exit.is_some() || now - *c.full_since.get_or_insert(now) > MAX_CLIENT_STALL {
                c.kind = ClientKind::Done;
                c.out.clear();
                c.full_since = None;
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
            } else {
                held = true;
            }
        }
        // Left out of the poll while held (a closed pipe would report POLLHUP at once, every time).
        let n_out = if held { 0 } else { self.outputs.len() };
        for (_, f) in &self.outputs[..n_out] {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let stdin_slot = match (&self.stdin, self.stdin_buf.is_empty()) {
            (Some(f), false) => {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
                true
            }
            _ => false,
        };
        for c in &self.clients {
            let mut ev = PollFlags::empty();
            if !c.read_closed {
                ev |= PollFlags::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        let timeout = if self.exit.is_some() || held {
            PollTimeout::from(100u16)
        } else if self.busy && self.started {
            PollTimeout::from(QUIET_MS)
        } else {
            PollTimeout::NONE
        };
        let (n, revents) = if self.drop_pages {
            // Gone quiet: the pages go, and the wait follows with nothing in between that would map code again.
            let mut raw: Vec<libc::pollfd> = fds
                .iter()
                .map(|f| libc::pollfd { fd: f.as_fd().as_raw_fd(), events: f.events().bits(), revents: 0 })
                .collect();
            let n = berth_runtime::sys::CleanPages::find().drop_then_poll(&mut raw, i32::from(timeout));
            self.drop_pages = false;
            (
                n.map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
                raw.iter().map(|p| PollFlags::from_bits_truncate(p.revents)).collect(),
            )
        } else {
            let n = poll(&mut fds, timeout).map(|n| n as usize);
            (n, fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect::<Vec<_>>())
        };
        drop(fds);
        let quiet = match n {
            Ok(n) => n == 0,
            Err(nix::Error::EINTR) => return Ok(()),
            Err(e) => return Err(e).context("poll"),
        };
        let ready = |r: &PollFlags| !r.is_empty();
        let listener_ready = ready(&revents[0]);
        let sig_ready = ready(&revents[1]);
        let outputs_ready: Vec<bool> = revents[2..2 + n_out].iter().map(ready).collect();
        let base = 2 + n_out + usize::from(stdin_slot);
        let stdin_ready = stdin_slot && ready(&revents[2 + n_out]);
        let clients_ready: Vec<bool> = revents[base..].iter().map(ready).collect();
        // POLLHUP on a Unix stream socket: the peer has closed it entirely (a client's half-close gives no POLLHUP),
        // so nothing more can reach it. A client in that state with nothing left to read is dropped: left in the set
        // with no events asked for, it would make every poll return at once, forever (the shims of a killed berthd).
        let hangup = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        let clients_gone: Vec<bool> = revents[base..].iter().map(|r| r.intersects(hangup)).collect();

        if sig_ready {
            self.reap();
        }
        for (i, r) in outputs_ready.iter().enumerate().rev() {
            if *r {
                self.read_output(i);
            }
        }
        if stdin_ready {
            self.flush_stdin();
        }
        for (i, r) in clients_ready.iter().enumerate().rev() {
            if *r {
                self.service_client(i);
            }
        }
        // Servicing reads what a gone client still had queued (its last request, its stdin's end); once that is read
        // to the end, it goes.
        let mut gone = clients_gone.into_iter();
        self.clients.retain(|c| {
            let hung_up = gone.next().unwrap_or(false) && c.read_closed;
            let answered = matches!(c.kind, ClientKind::Done) && c.out.is_empty();
            let left_unasked = c.read_closed && c.out.is_empty() && matches!(c.kind, ClientKind::New(_));
            !(hung_up || answered || left_unasked)
        });
        if listener_ready {
            while let Ok((sock, _)) = self.listener.accept() {
                if sock.set_nonblocking(true).is_ok() {
                    self.clients.push(Client {
                        sock,
                        kind: ClientKind::New(Vec::new()),
                        out: VecDeque::new(),
                        read_closed: false,
                        full_since: None,
                    });
                }
            }
        }
        if quiet && !held && self.exit.is_none() {
            self.idle();
        } else {
            self.busy = true;
            // Never quiet for a second (a container that prints every few hundred milliseconds): what the start and
            // the work touched goes now and then all the same, or it would stay resident for the container's life.
            if self.started && !held && self.exit.is_none() && self.last_drop.elapsed() > BUSY_DROP {
                self.idle();
                self.busy = true;
            }
        }
        Ok(())
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigchld.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.pid => self.record_exit(code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.pid => self.record_exit(128 + sig as i32, None),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }

    fn record_exit(&mut self, exit_code: i32, error: Option<String>) {
        if self.exit.is_none() {
            self.exit = Some(ExitRecord { exit_code, finished_at: berth_api::time::now(), oom_killed: false, error });
        }
    }

    // Not inlined (nor `service_client`): their 32 KiB buffers then live below the loop's frame only while they run,
    // and the stack under the loop is given back when idle.
    #[inline(never)]
    fn read_output(&mut self, idx: usize) {
        let mut buf = [0u8; 32 * 1024];
        let (stream, file) = &mut self.outputs[idx];
        let stream = *stream;
        match file.read(&mut buf) {
            Ok(0) => {
                self.outputs.remove(idx);
            }
            Ok(n) => {
                let data = &buf[..n];
                self.log.write(stream, data);
                let header = berth_api::stream::frame_header(stream, n);
                for c in &mut self.clients {
                    if let ClientKind::Attach { stdout, stderr, .. } = c.kind
                        && ((stream == 1 && stdout) || (stream == 2 && stderr))
                    {
                        c.out.extend(header);
                        c.out.extend(data);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO on a pty master: the slave side is closed.
            Err(_) => {
                self.outputs.remove(idx);
            }
        }
    }

    fn flush_stdin(&mut self) {
        let Some(f) = &mut self.stdin else { return };
        let (a, _) = self.stdin_buf.as_slices();
        match f.write(a) {
            Ok(n) => {
                self.stdin_buf.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                self.stdin = None;
                self.stdin_buf.clear();
            }
        }
    }

    fn close_stdin(&mut self) {
        if self.pty_master.is_none() {
            // Whatever is still queued goes first, then the pipe closes.
            if let Some(f) = &mut self.stdin {
                let _ = set_blocking(f.as_fd());
                let (a, b) = self.stdin_buf.as_slices();
                let _ = f.write_all(a).and_then(|()| f.write_all(b));
            }
            self.stdin = None;
            self.stdin_buf.clear();
        } else if let Some(f) = &mut self.stdin {
            // A terminal has no half-close: send the EOF character, as typing ^D would.
            self.stdin_buf.push_back(4);
            let _ = f;
        }
    }

    #[inline(never)]
    fn service_client(&mut self, idx: usize) {
        // Write pending output first.
        {
            let c = &mut self.clients[idx];
            while !c.out.is_empty() {
                let (a, _) = c.out.as_slices();
                match c.sock.write(a) {
                    Ok(0) => break,
                    Ok(n) => {
                        c.out.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.out.clear();
                        c.kind = ClientKind::Done;
                        c.read_closed = true;
                        break;
                    }
                }
            }
        }
        if self.clients[idx].read_closed {
            return;
        }
        let mut buf = [0u8; 32 * 1024];
        let n = match self.clients[idx].sock.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        let data = &buf[..n];
        if n == 0 {
            self.clients[idx].read_closed = true;
            let kind = std::mem::replace(&mut self.clients[idx].kind, ClientKind::Done);
            match kind {
                ClientKind::Attach { stdin: true, stdout, stderr } => {
                    // As Docker: the end of an attach closes the stdin of `StdinOnce` containers, never a TTY's (a
                    // client detaching or going away leaves a terminal session running).
                    if self.cfg.stdin_once && self.pty_master.is_none() {
                        self.close_stdin();
                    }
                    // Output keeps flowing to a client that only closed its sending side.
                    self.clients[idx].kind = ClientKind::Attach { stdin: false, stdout, stderr };
                }
                ClientKind::Attach { .. } | ClientKind::Waiter => self.clients[idx].kind = kind,
                ClientKind::New(_) | ClientKind::Done => {}
            }
            return;
        }
        let kind = std::mem::replace(&mut self.clients[idx].kind, ClientKind::Done);
        match kind {
            ClientKind::Attach { stdin, .. } => {
                if stdin && self.stdin.is_some() {
                    self.stdin_buf.extend(data);
                    self.flush_stdin();
                }
                self.clients[idx].kind = kind;
            }
            ClientKind::New(mut pending) => {
                pending.extend_from_slice(data);
                match pending.iter().position(|b| *b == b'\n') {
                    None => self.clients[idx].kind = ClientKind::New(pending),
                    Some(pos) => {
                        let rest = pending[pos + 1..].to_vec();
                        let req: Result<Request, _> = serde_json::from_slice(&pending[..pos]);
                        match req {
                            Ok(r) => self.handle(idx, r, rest),
                            Err(e) => self.reply(idx, &Response::Error { message: format!("bad request: {e}") }),
                        }
                    }
                }
            }
            other => self.clients[idx].kind = other,
        }
    }

    fn reply(&mut self, idx: usize, r: &Response) {
        let c = &mut self.clients[idx];
        c.out.extend(json(r).as_bytes());
        c.out.push_back(b'\n');
        c.kind = ClientKind::Done;
        self.service_write(idx);
    }

    fn service_write(&mut self, idx: usize) {
        let c = &mut self.clients[idx];
        while !c.out.is_empty() {
            let (a, _) = c.out.as_slices();
            match c.sock.write(a) {
                Ok(n) if n > 0 => {
                    c.out.drain(..n);
                }
                _ => break,
            }
        }
    }

    fn handle(&mut self, idx: usize, req: Request, rest: Vec<u8>) {
        match req {
            Request::Start => {
                let res = match self.created.take() {
                    Some(c) => c.start().map_err(|e| e.to_string()),
                    None => Err("container already started".into()),
                };
                match res {
                    // Set up and answered: from here on the shim is its poll loop. What the setup alone touched (the
                    // spec, the runtime, seccomp: most of the binary) leaves the resident set at the first quiet second.
                    Ok(()) => {
                        self.reply(idx, &Response::Ok);
                        self.started = true;
                        self.busy = true;
                    }
                    Err(message) => {
                        let code = if message.contains("permission denied") { 126 } else { 127 };
                        self.record_exit(code, Some(message.clone()));
                        self.reply(idx, &Response::Error { message });
                    }
                }
            }
            Request::Attach { stdin, stdout, stderr } => {
                self.clients[idx].kind = ClientKind::Attach { stdin, stdout, stderr };
                // One acknowledgement line, then the stream.
                self.clients[idx].out.extend(json(&Response::Ok).as_bytes());
                self.clients[idx].out.push_back(b'\n');
                self.service_write(idx);
                if stdin && !rest.is_empty() && self.stdin.is_some() {
                    self.stdin_buf.extend(rest);
                    self.flush_stdin();
                }
            }
            // Answered in `finish`, once the output is drained.
            Request::Wait => self.clients[idx].kind = ClientKind::Waiter,
            Request::Kill { signal } => {
                // Real-time signals (34..=64) too, which nix's `Signal` does not name.
                let r = if !(1..=64).contains(&signal) {
                    Response::Error { message: format!("invalid signal: {signal}") }
                } else if self.exit.is_some() {
                    Response::Ok
                } else {
                    match berth_runtime::sys::send_signal(self.pid.as_raw(), signal) {
                        Ok(()) => Response::Ok,
                        Err(e) => Response::Error { message: format!("kill: {e}") },
                    }
                };
                self.reply(idx, &r);
            }
            Request::Resize { height, width } => {
                let r = match &self.pty_master {
                    Some(m) => match berth_runtime::sys::set_winsize(m.as_fd(), height, width) {
                        Ok(()) => Response::Ok,
                        Err(e) => Response::Error { message: e.to_string() },
                    },
                    None => Response::Ok,
                };
                self.reply(idx, &r);
            }
            Request::CloseStdin => {
                self.close_stdin();
                self.reply(idx, &Response::Ok);
            }
            Request::Pause | Request::Resume => {
                let pause = req == Request::Pause;
                let res = if pause {
                    self.runtime.pause(&self.cfg.id, &self.bundle)
                } else {
                    self.runtime.resume(&self.cfg.id, &self.bundle)
                };
                let r = match res {
                    Ok(()) => {
                        self.paused = pause;
                        Response::Ok
                    }
                    Err(e) => Response::Error { message: e.to_string() },
                };
                self.reply(idx, &r);
            }
            Request::State => {
                let r = Response::State { pid: self.pid.as_raw(), paused: self.paused };
                self.reply(idx, &r);
            }
        }
    }

    /// Nothing to do for a while (or the container has just started): the heap's free memory goes back to the kernel
    /// and, in the next wait, the pages of the binary, libc and the stack that the shim's work touched leave its
    /// resident set (they stay in the page cache; the next piece of work maps what it uses). They go right before the
    /// wait ([`berth_runtime::sys::CleanPages::drop_then_poll`], found again each time, as berthd does: a mapping may
    /// have gone since), so that the code between the two does not map them again. An idle shim's RSS is then little
    /// more than its own data.
    fn idle(&mut self) {
        berth_runtime::sys::trim_heap();
        self.drop_pages = self.started;
        self.last_drop = std::time::Instant::now();
        self.busy = false;
    }

    /// The container is gone and its output drained: record the exit, tell every waiter, then release the runtime's
    /// resources and go. The waiters hear first (berthd publishes `die` on it); berthd's clean-up waits for this
    /// process to be gone before it touches the bundle or starts the container again.
    fn finish(&mut self) {
        self.log.flush();
        let mut exit = self.exit.clone().unwrap_or(ExitRecord {
            exit_code: 255,
            finished_at: berth_api::time::now(),
            oom_killed: false,
            error: None,
        });
        // Docker's `State.OOMKilled`: the kernel's OOM killer ended a process of the container during this run (its
        // cgroup, made at this start, counts the kills; read before the runtime removes it).
        exit.oom_killed =
            berth_runtime::cgroups::Cgroup::open(&format!("berth/{}", self.cfg.id)).is_ok_and(|cg| cg.oom_kills() > 0);
        if let Ok(data) = serde_json::to_vec(&exit) {
            // Atomic but not synced: a power loss that could lose it has ended the container too.
            let _ = berth_runtime::sys::replace_file(&self.cfg.exit_path, &data, false);
        }
        let _ = std::fs::remove_file(self.bundle.join(shim::SOCKET_FILE));
        let msg = json(&Response::Exited(exit));
        // The waiters first (berthd publishes `die` on it), then the runtime's resources, then the other clients
        // (what attach clients still have queued): a slow reader delays only this process's end, never the release of the cgroup and
        // mounts that a restart of the container will make again.
        let send = |c: &mut Client| {
            let _ = set_blocking(c.sock.as_fd());
            let _ = c.sock.set_write_timeout(Some(std::time::Duration::from_secs(2)));
            let (a, b) = c.out.as_slices();
            let _ = c.sock.write_all(a).and_then(|()| c.sock.write_all(b));
            if let ClientKind::Waiter = c.kind {
                let _ = writeln!(c.sock, "{msg}");
            }
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        };
        let (waiters, others): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.clients).into_iter().partition(|c| matches!(c.kind, ClientKind::Waiter));
        for mut c in waiters {
            send(&mut c);
        }
        let _ = self.runtime.delete(&self.cfg.id, &self.bundle);
        for mut c in others {
            send(&mut c);
        }
        // Only our own: after a berthd that gave up waiting for us, the file may already be a new shim's.
        let pid_file = self.bundle.join(shim::SHIM_PID_FILE);
        if std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == std::process::id().to_string()) {
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

fn set_blocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).context("fcntl")?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).context("fcntl")?;
    Ok(())
}
