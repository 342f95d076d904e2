//! Exec instances: `POST /containers/{id}/exec` creates one, `POST /exec/{id}/start` runs it through a
//! `berth-shim exec` helper whose stdio is the exec's stdio, `GET /exec/{id}/json` reports it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

pub mod record;
pub use record::*;

use crate::error::Error;
use berth_api::models::ExecConfig;
use berth_runtime::shim::{ExecRequest, Response};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::containers::persist::bundle_dir;
use crate::containers::record::{Container, Status};
use crate::daemon::Daemon;

/// Creates an exec instance in a running container.
pub fn create(d: &Daemon, c: &Container, config: ExecConfig) -> Result<String, Error> {
    match c.status() {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::Conflict(format!("Container {} is paused, unpause the container before exec", c.id)));
        }
        Status::Restarting => {
            return Err(Error::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                c.id
            )));
        }
        _ => return Err(Error::Conflict(format!("Container {} is not running", c.id))),
    }
    if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(Error::InvalidArgument("No exec command specified".into()));
    }
    if let Some(u) = config.user.as_deref().filter(|u| !u.is_empty()) {
        berth_runtime::user::validate_spec(u).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    }
    if let Some(k) = config.detach_keys.as_deref()
        && crate::hijack::parse_detach_keys(k).is_none()
    {
        // dockerd 20.10 answers 500 with this message; later ones 400 (an invalid parameter).
        return Err(Error::InvalidArgument(format!("Invalid escape keys ({k}) provided")));
    }
    for e in config.env.iter().flatten() {
        if e.is_empty() || e.starts_with('=') {
            return Err(Error::InvalidArgument(format!("invalid environment variable: {e:?}")));
        }
    }
    let id = crate::names::new_id()?;
    let inst = Arc::new(ExecInstance {
        id: id.clone(),
        container_id: c.id.clone(),
        config,
        state: Mutex::new(ExecState::default()),
    });
    let action = format!("exec_create: {}", cmdline(&inst));
    d.execs.lock().map_err(|_| Error::Internal("exec table poisoned".into()))?.insert(id.clone(), inst);
    c.publish(&d.events, &action, &[("execID", &id)]);
    Ok(id)
}

/// The command line of an exec as Docker's exec events name it: the program, a space and its arguments
/// (`exec_start: sh -c true`, `exec_start: cat `).
fn cmdline(inst: &ExecInstance) -> String {
    match inst.config.cmd.as_deref().unwrap_or_default() {
        [] => String::new(),
        [prog, args @ ..] => format!("{prog} {}", args.join(" ")),
    }
}

/// Finds an exec instance.
pub fn get(d: &Daemon, id: &str) -> Result<Arc<ExecInstance>, Error> {
    d.execs
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
        .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
}

/// Drops an exec instance from the table (the daemon's own execs, such as healthchecks, once they are done).
pub fn forget(d: &Daemon, id: &str) {
    if let Ok(mut m) = d.execs.lock() {
        m.remove(id);
    }
}

/// Builds the OCI process of an exec from the container's spec.
fn process(d: &Daemon, c: &Container, cfg: &ExecConfig) -> Result<ExecRequest, Error> {
    let bundle = bundle_dir(d, &c.id);
    let spec = berth_runtime::load_spec(&bundle).map_err(|e| Error::Internal(e.to_string()))?;
    let mut p = spec.process().clone().ok_or_else(|| Error::Internal("container spec has no process".into()))?;
    let rec = c.record();
    p.set_args(cfg.cmd.clone());
    p.set_terminal(Some(cfg.tty.unwrap_or(false)));
    let size = crate::spec::console_size(cfg.tty.unwrap_or(false), cfg.console_size.as_deref());
    p.set_console_size(size.and_then(|v| serde_json::from_value(v).ok()));
    let mut env: Vec<String> =
        p.env().clone().unwrap_or_default().into_iter().filter(|e| !e.starts_with("HOME=")).collect();
    for e in cfg.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    if cfg.tty.unwrap_or(false) && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p.set_env(Some(env));
    if let Some(w) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
        p.set_cwd(w.into());
    }
    if cfg.privileged.unwrap_or(false) {
        let host = berth_api::models::HostConfig { privileged: Some(true), ..Default::default() };
        let all = crate::security::capabilities(&host)?;
        let caps: serde_json::Value = json!({"bounding": all, "effective": all, "permitted": all});
        p.set_capabilities(serde_json::from_value(caps).ok());
    }
    let user = cfg.user.clone().filter(|u| !u.is_empty()).or(rec.config.user.clone()).unwrap_or_default();
    Ok(ExecRequest { process: p, user })
}

/// The streams of a started exec.
pub enum Io {
    /// The terminal's master, twice: a `tokio::fs::File` serialises its operations and drops read-ahead data when
    /// it is written to (it seeks back, which a terminal cannot do), so reads and writes each get their own.
    Tty {
        read: tokio::fs::File,
        write: tokio::fs::File,
    },
    Pipes {
        stdin: Option<tokio::process::ChildStdin>,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    },
    Detached,
}

/// Starts an exec. Returns its streams and the helper process, or the start error (already recorded).
pub async fn start(
    d: &Arc<Daemon>,
    inst: &Arc<ExecInstance>,
    detach: bool,
) -> Result<(Io, tokio::process::Child), Error> {
    {
        let mut st = inst.lock();
        if st.started {
            return Err(Error::Conflict(format!("Exec {} has already been started", inst.id)));
        }
        st.started = true;
        st.running = true;
    }
    let c = d.container(&inst.container_id)?;
    if c.status() != Status::Running {
        inst.lock().running = false;
        return Err(Error::Conflict(format!("Container {} is not running", c.id)));
    }
    let req = process(d, &c, &inst.config)?;
    let bundle = bundle_dir(d, &c.id);
    let req_path = bundle.join(format!("exec-{}.json", inst.id));
    let data = serde_json::to_vec(&req).map_err(|e| Error::Internal(e.to_string()))?;
    // Root only (0600): the request holds the process's environment.
    berth_runtime::sys::replace_file(&req_path, &data, false).map_err(|e| Error::Internal(e.to_string()))?;

    let tty = inst.config.tty.unwrap_or(false);
    let mut cmd = d.shims.command();
    cmd.arg("exec").arg(&bundle).arg(&req_path).kill_on_drop(false);
    // With a terminal, the helper sends its master (created inside the container) on descriptor 4 before it reports.
    let mut console_socket = None;
    if detach || tty {
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        if tty && !detach {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
            let pair = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                .map_err(|e| Error::Internal(format!("socketpair: {e}")))?;
            console_socket = Some(pair);
        }
    } else {
        let stdin = if inst.config.attach_stdin.unwrap_or(false) {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        };
        cmd.stdin(stdin).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    }
    let (report_r, report_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Internal(format!("pipe: {e}")))?;
    let report_fd = report_w.as_raw_fd();
    let console_fd = console_socket.as_ref().map_or(-1, |(_, theirs): &(OwnedFd, OwnedFd)| theirs.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl and dup2, which are
    // async-signal-safe; it moves the report pipe to descriptor 3 and the console socket, if any, to 4 (first out of
    // the way of 3, then dup2, which clears close-on-exec on the copies). Both descriptors outlive the spawn.
    unsafe {
        cmd.pre_exec(move || {
            let console = if console_fd >= 0 { libc::fcntl(console_fd, libc::F_DUPFD_CLOEXEC, 5) } else { -1 };
            if (console_fd >= 0 && console == -1)
                || libc::dup2(report_fd, 3) == -1
                || (console >= 0 && libc::dup2(console, 4) == -1)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::Internal(format!("run {}: {e}", d.config.shim.display())))?;
    drop(report_w);
    let console_socket = console_socket.map(|(ours, _theirs)| ours);
    let report = tokio::net::unix::pipe::Receiver::from_owned_fd(report_r)
        .map_err(|e| Error::Internal(format!("report pipe: {e}")))?;
    let mut line = String::new();
    let _ = BufReader::new(report).read_line(&mut line).await;
    let _ = std::fs::remove_file(&req_path);
    let helper = child.id();
    match serde_json::from_str::<Response>(&line) {
        // Only the helper holds the report pipe (the process it starts in the container closes its copy before
        // anything else, and is not dumpable meanwhile). A second line: what it reports is its own child (or, for an
        // external runtime, an orphan re-parented to it as subreaper), unless that has already exited and been
        // reaped (the helper reaps it right after reporting).
        Ok(Response::Created { pid }) if pid > 0 && reported_pid_plausible(pid, helper, &inst.container_id) => {
            inst.lock().pid = i64::from(pid);
        }
        Ok(Response::Error { message }) => {
            let _ = child.wait().await;
            let mut st = inst.lock();
            st.running = false;
            // dockerd 20.10 records 126 for every exec that cannot start (a missing program too, where a
            // container's start gives 127).
            st.exit_code = Some(126);
            return Err(Error::InvalidArgument(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown"
            )));
        }
        _ => {
            let _ = child.kill().await;
            let mut st = inst.lock();
            st.running = false;
            st.exit_code = Some(126);
            return Err(Error::Internal(format!("exec helper failed (it said {:?})", line.trim())));
        }
    }
    // The helper sent the master before it reported: it is queued already.
    let pty_master = match console_socket {
        Some(sock) => match berth_runtime::sys::recv_fd(sock.as_fd(), true) {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = child.kill().await;
                let mut st = inst.lock();
                st.running = false;
                st.exit_code = Some(126);
                return Err(Error::Internal(format!("exec terminal: {e}")));
            }
        },
        None => None,
    };
    c.publish(&d.events, &format!("exec_start: {}", cmdline(inst)), &[("execID", &inst.id)]);
    let io = if detach {
        Io::Detached
    } else if let Some(master) = pty_master {
        let dup = || master.try_clone().map_err(|e| Error::Internal(format!("dup: {e}")));
        let (read, write) = (dup()?, dup()?);
        inst.lock().pty = Some(master);
        let file = |fd: OwnedFd| tokio::fs::File::from_std(std::fs::File::from(fd));
        Io::Tty { read: file(read), write: file(write) }
    } else {
        let stdout = child.stdout.take().ok_or_else(|| Error::Internal("exec stdout".into()))?;
        let stderr = child.stderr.take().ok_or_else(|| Error::Internal("exec stderr".into()))?;
        Io::Pipes { stdin: child.stdin.take(), stdout, stderr }
    };
    Ok((io, child))
}

/// Whether an exec's reported PID can be its process: the helper's own child (or, for an external runtime, an orphan
/// re-parented to it as subreaper), or gone already (the helper reaps it right after reporting), or — should the
/// parent read differently (a PID recycled on a host with a small `pid_max`) — a process of the container's cgroup.
/// Only the helper holds the report pipe; this is a second line, and must never fail a genuine exec.
fn reported_pid_plausible(pid: i32, helper: Option<u32>, container: &str) -> bool {
    match parent_of(pid) {
        // Parent 0 is what the kernel shows for a process being reaped right now (no longer `pid_alive`): a quick
        // command the helper has just collected, as seen once in CI. No live process of ours has parent 0.
        None | Some(0) => true,
        Some(p) if Some(p) == helper => true,
        Some(p) => {
            let member = berth_runtime::cgroups::Cgroup::open(&format!("berth/{container}"))
                .and_then(|cg| cg.procs())
                .is_ok_and(|procs| procs.contains(&pid));
            if !member {
                tracing::warn!("exec helper {helper:?} reported PID {pid}, whose parent is {p}, outside the container");
            }
            member
        }
    }
}

/// The parent PID of process `pid`, from `/proc/<pid>/stat` (after the command, which may hold spaces and parentheses:
/// the state, then the parent).
fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for the helper and records the exit code.
pub async fn finish(d: &Daemon, inst: &ExecInstance, mut child: tokio::process::Child) -> i64 {
    let code = match child.wait().await {
        Ok(s) => i64::from(s.code().unwrap_or(255)),
        Err(_) => 255,
    };
    let mut st = inst.lock();
    st.running = false;
    st.exit_code = Some(code);
    st.pty = None;
    drop(st);
    if let Ok(c) = d.container(&inst.container_id) {
        c.publish(&d.events, "exec_die", &[("execID", &inst.id), ("exitCode", &code.to_string())]);
    }
    code
}

/// An exec's output as the client gets it: in stream `stream`'s 8-byte frames, or raw, where only stdout is sent
/// (Docker's raw exec stream has no stderr).
fn encode(stream: u8, data: &[u8], raw: bool) -> Option<Vec<u8>> {
    if raw {
        return (stream == berth_api::stream::STDOUT).then(|| data.to_vec());
    }
    let mut frame = berth_api::stream::frame_header(stream, data.len()).to_vec();
    frame.extend_from_slice(data);
    Some(frame)
}

/// Relays a started exec's streams over a hijacked connection until its output ends, then awaits `finished` (which
/// records the exit code) before it closes the connection: a client that inspects the exec once its stream ends
/// (the docker CLI does) must find the exit code there. `raw` is the start request's `Tty` (Docker frames the output
/// whenever it is false, whether the process has a terminal or not). On a terminal, `detach_keys` in the input end
/// the relay (`on_detach` is called) and leave the process running; its output is then read and dropped.
pub async fn relay(
    io: Io,
    conn: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    stdin_wanted: bool,
    raw: bool,
    detach_keys: Option<Vec<u8>>,
    on_detach: impl FnOnce() + Send,
    finished: impl std::future::Future<Output = ()>,
) {
    let (mut rd, wr) = tokio::io::split(conn);
    match io {
        Io::Detached => finished.await,
        Io::Tty { read: mut mr, write: mut mw } => {
            let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
            let input = async move {
                if stdin_wanted {
                    let end = crate::hijack::copy_input(&mut rd, &mut mw, detach_keys).await;
                    if end.is_ok_and(|e| e == crate::hijack::InputEnd::Detached) {
                        on_detach();
                        let _ = detach_tx.send(());
                    }
                }
                std::future::pending::<()>().await
            };
            let output = async move {
                let mut client = Some(wr);
                let mut detach_rx = Some(detach_rx);
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    tokio::select! {
                        // EIO from the master once the slave side closes is the end of the output. A client that
                        // went away (or detached) leaves the rest to be read and dropped, so that the process is
                        // not stuck on a full terminal.
                        r = tokio::io::AsyncReadExt::read(&mut mr, &mut buf) => match r {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if let (Some(w), Some(data)) = (client.as_mut(), encode(1, &buf[..n], raw))
                                    && w.write_all(&data).await.is_err()
                                {
                                    client = None;
                                }
                            }
                        },
                        d = async {
                            match detach_rx.as_mut() {
                                Some(rx) => rx.await,
                                None => std::future::pending().await,
                            }
                        }, if detach_rx.is_some() => {
                            detach_rx = None;
                            if d.is_ok() && let Some(mut w) = client.take() {
                                let _ = w.shutdown().await;
                            }
                        }
                    }
                }
                finished.await;
                if let Some(mut w) = client {
                    let _ = w.shutdown().await;
                }
            };
            tokio::select! {
                _ = output => {}
                _ = input => {}
            }
        }
        Io::Pipes { stdin, stdout, stderr } => {
            let mut wr = wr;
            let input = async move {
                if let Some(mut s) = stdin {
                    let _ = tokio::io::copy(&mut rd, &mut s).await;
                    let _ = s.shutdown().await;
                }
                std::future::pending::<()>().await
            };
            let output = async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
                let pump = |stream: u8,
                            mut r: Box<dyn AsyncRead + Unpin + Send>,
                            tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>| async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match tokio::io::AsyncReadExt::read(&mut r, &mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.send((stream, buf[..n].to_vec())).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                };
                let a = tokio::spawn(pump(1, Box::new(stdout), tx.clone()));
                let b = tokio::spawn(pump(2, Box::new(stderr), tx));
                // Output is read to its end even when the client has gone (and dropped then), so that the process is
                // not stuck on a full pipe and its exit is recorded.
                let mut client_gone = false;
                while let Some((stream, data)) = rx.recv().await {
                    if client_gone {
                        continue;
                    }
                    if let Some(data) = encode(stream, &data, raw) {
                        client_gone = wr.write_all(&data).await.is_err();
                    }
                }
                let _ = a.await;
                let _ = b.await;
                finished.await;
                let _ = wr.shutdown().await;
            };
            tokio::select! {
                _ = output => {}
                _ = input => {}
            }
        }
    }
}

/// Sends SIGHUP to a running exec's process, as a terminal that closes does (the dashboard's terminal, when its page
/// goes away). Nothing when it has exited: its PID may be another process's by now.
pub fn hang_up(inst: &ExecInstance) {
    let st = inst.lock();
    if st.running
        && st.pid > 0
        && let Ok(pid) = i32::try_from(st.pid)
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP);
    }
}

/// A finished exec's exit code.
pub fn exit_code(inst: &ExecInstance) -> Option<i64> {
    inst.lock().exit_code
}

/// Resizes a TTY exec.
pub fn resize(inst: &ExecInstance, h: u16, w: u16) -> Result<(), Error> {
    let st = inst.lock();
    match &st.pty {
        Some(m) => berth_runtime::sys::set_winsize(m.as_fd(), h, w).map_err(|e| Error::Internal(e.to_string())),
        None if inst.config.tty.unwrap_or(false) => Ok(()),
        None => Err(Error::InvalidArgument("exec is not a TTY".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_framed_unless_raw_and_raw_drops_stderr() {
        assert_eq!(encode(1, b"ab", true), Some(b"ab".to_vec()));
        assert_eq!(encode(2, b"ab", true), None);
        let mut framed = berth_api::stream::frame_header(2, 2).to_vec();
        framed.extend(b"ab");
        assert_eq!(encode(2, b"ab", false), Some(framed));
    }

    #[test]
    fn event_command_lines_are_dockers() {
        let inst = |cmd: &[&str]| ExecInstance {
            id: "x".into(),
            container_id: "c".into(),
            config: ExecConfig { cmd: Some(cmd.iter().map(|s| s.to_string()).collect()), ..Default::default() },
            state: Mutex::new(ExecState::default()),
        };
        assert_eq!(cmdline(&inst(&["cat"])), "cat ");
        assert_eq!(cmdline(&inst(&["sh", "-c", "true"])), "sh -c true");
    }
}
