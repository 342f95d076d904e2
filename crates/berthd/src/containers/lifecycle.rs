//! Start, exit (restart policies, `--rm`), stop, kill, restart, pause, rename, wait; loading at start-up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::Error;
use berth_runtime::shim::{self, ExitRecord, Request, Response, RootfsLayers, ShimConfig};

use crate::daemon::Daemon;

use super::*;

/// Starts a created or exited container.
pub async fn start(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    match c.status() {
        // Docker counts a restarting container as running.
        Status::Restarting => return Err(Error::NotModified("container already started".into())),
        Status::Created | Status::Exited => super::restart::reset_for_manual_start(c),
        _ => {}
    }
    start_locked(d, c).await
}

pub(super) async fn start_locked(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<(), Error> {
    let rec = c.record();
    match rec.state.status {
        Status::Running => return Err(Error::NotModified("container already started".into())),
        Status::Paused => {
            return Err(Error::Conflict("cannot start a paused container, try unpause instead".into()));
        }
        Status::Removing | Status::Dead => {
            return Err(Error::Conflict(format!("container {} is marked for removal and cannot be started", rec.id)));
        }
        _ => {}
    }
    let mut phases = crate::phases::Phases::begin("start", &rec.id);
    // A previous run's clean-up (its networking and volumes) finishes first.
    drop(c.cleanup.lock().await);
    // A member of a stopped pod starts its pod's namespace holder first.
    if let Err(e) = start_holder(d, &rec).await {
        record_start_failure(d, c, &e).await;
        return Err(e);
    }
    c.stopping.store(false, Ordering::SeqCst);
    let bundle = bundle_dir(d, &rec.id);
    let dir = container_dir(d, &rec.id);
    let (net, sandbox) = match crate::networks::attach(d, &rec, &dir).await {
        Ok(x) => x,
        Err(e) => {
            record_start_failure(d, c, &e).await;
            return Err(e);
        }
    };
    crate::networks::publish_endpoints(d, &rec.id, &net.endpoints, "connect");
    crate::phases::mark(&mut phases, "network");
    berth_store::fault::point("start.after-network");
    // Everything between the network set-up and a running program: one failure path releases all of it.
    let mut volumes_held = false;
    let started: Result<i32, Error> = async {
        let mut config = rec.config.clone();
        if let Some(h) = &sandbox.hostname {
            config.hostname = Some(h.clone());
        }
        let idmap = crate::userns::of_container(d.config.userns_remap, rec.host_config.userns_mode.as_deref());
        let joins = namespace_joins(d, &rec.host_config)?;
        let shm = super::shm::for_start(d, &rec).await?;
        let spec = crate::spec::build(
            &config,
            &rec.host_config,
            &crate::spec::SpecInputs {
                id: &rec.id,
                args: std::iter::once(rec.path.clone()).chain(rec.args.iter().cloned()).collect(),
                container_dir: &sandbox.files_dir,
                netns: sandbox.netns.as_deref(),
                cgroup_v2: berth_runtime::cgroups::is_unified(),
                mounts: crate::mounts::spec_mounts(&rec.mounts)?,
                idmap,
                link_env: &sandbox.link_env,
                // Docker: the container's `Init`, else the daemon's `--init`.
                init: rec.host_config.init.unwrap_or(d.config.init).then_some(d.config.init_path.as_path()),
                joins: &joins,
                shm: shm.as_deref(),
            },
        )?;
        let shim_cfg = ShimConfig {
            id: rec.id.clone(),
            runtime: rec.runtime.clone(),
            runtime_root: d.config.exec_root.join("runtime"),
            rootfs: RootfsLayers {
                lower: rec.lower_dirs.clone(),
                upper: dir.join("upper"),
                work: dir.join("work"),
                idmap,
                volatile: rec.host_config.auto_remove.unwrap_or(false),
            },
            tty: rec.config.tty.unwrap_or(false),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            log_path: log_path(d, &rec.id),
            log: crate::logs::policy_of(&rec.host_config)?,
            exit_path: exit_path(d, &rec.id),
            user: rec.config.user.clone().unwrap_or_default(),
            group_add: rec.host_config.group_add.clone().unwrap_or_default(),
            console_size: None,
        };
        let write = (|| -> Result<(), String> {
            let _ = std::fs::remove_dir_all(&bundle);
            // Root's only (0700 directory, 0600 files): the spec and the shim's config hold the environment.
            std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
                .create(&bundle)
                .map_err(|e| e.to_string())?;
            if let Some(m) = idmap {
                // The remapped root walks to its rootfs and its files (hosts, resolv.conf) through these.
                for p in [&bundle, &dir] {
                    crate::userns::let_through(p, m).map_err(|e| e.to_string())?;
                }
                // The upper directory holds host IDs: its root is the container's `/`.
                crate::userns::own_root_dir(&dir.join("upper"), m).map_err(|e| e.to_string())?;
            }
            berth_runtime::save_spec(&bundle, &spec).map_err(|e| e.to_string())?;
            let j = serde_json::to_vec(&shim_cfg).map_err(|e| e.to_string())?;
            berth_runtime::sys::replace_file(&bundle.join(shim::CONFIG_FILE), &j, false).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(exit_path(d, &rec.id));
            Ok(())
        })();
        write.map_err(|e| Error::Internal(format!("write bundle {}: {e}", bundle.display())))?;
        crate::phases::mark(&mut phases, "bundle");
        crate::volumes::acquire(d, &rec.mounts).await?;
        volumes_held = true;
        crate::volumes::publish_mounts(d, &rec.id, &rec.mounts, "mount");
        crate::phases::mark(&mut phases, "volumes");
        let pid = d.shims.spawn(&bundle).await?;
        crate::phases::mark(&mut phases, "shim-create");
        berth_store::fault::point("start.after-shim");
        // Attach clients that were waiting for the start get their streams before the program runs.
        let pending: Vec<PendingAttach> =
            c.pending_attach.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        for p in pending {
            match d.shims.attach(&bundle, p.streams).await {
                Ok(s) => {
                    let _ = p.tx.send(s);
                }
                Err(e) => tracing::warn!("attach to {}: {e}", &rec.id[..12]),
            }
        }
        match d.shims.request(&bundle, &Request::Start).await? {
            Response::Ok => Ok(pid),
            Response::Error { message } => Err(start_error(message)),
            other => Err(Error::Internal(format!("unexpected shim answer {other:?}"))),
        }
    }
    .await;
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&bundle);
            super::shm::release(d, &rec.id).await;
            crate::networks::release(d, &rec.id).await;
            crate::networks::publish_endpoints(d, &rec.id, &net.endpoints, "disconnect");
            if volumes_held {
                crate::volumes::release(d, &rec.mounts).await;
            }
            record_start_failure(d, c, &e).await;
            return Err(e);
        }
    };
    berth_store::fault::point("start.before-record");
    let rec = c.update(|r| {
        r.net = net;
        r.state = State {
            status: Status::Running,
            pid: i64::from(pid),
            exit_code: 0,
            error: String::new(),
            started_at: berth_api::time::now(),
            finished_at: r.state.finished_at.clone(),
            oom_killed: false,
            health: crate::health::initial(&r.config),
        };
    });
    crate::phases::mark(&mut phases, "shim-start");
    persist(d, c, &rec).await?;
    c.publish(&d.events, "start", &[]);
    spawn_monitor(d.clone(), c.clone());
    crate::phases::mark(&mut phases, "record");
    crate::phases::done(phases);
    crate::health::spawn(d.clone(), c.clone(), rec.state.started_at.clone());
    Ok(())
}

/// Starts the pod namespace holder a container joins (network mode `container:<holder>`) when it is not running.
async fn start_holder(d: &Arc<Daemon>, rec: &Record) -> Result<(), Error> {
    let mode = rec.host_config.network_mode.clone().unwrap_or_default();
    let crate::networks::Mode::Container(target) = crate::networks::mode(&mode) else { return Ok(()) };
    let Ok(holder) = d.container(&target) else { return Ok(()) };
    if holder.record().holder_of().is_none() || holder.is_running() {
        return Ok(());
    }
    match Box::pin(start(d, &holder)).await {
        Ok(()) | Err(Error::NotModified(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The namespaces a container joins instead of making its own: `IpcMode`/`PidMode` `container:<id>` (and a pod
/// member's `UtsMode` `container:<holder>`), from the other container's init, which must be running.
fn namespace_joins(
    d: &Daemon,
    host: &berth_api::models::HostConfig,
) -> Result<Vec<(&'static str, std::path::PathBuf)>, Error> {
    let mut joins = Vec::new();
    for (typ, mode) in [("ipc", &host.ipc_mode), ("pid", &host.pid_mode), ("uts", &host.uts_mode)] {
        let Some(target) = mode.as_deref().and_then(|m| m.strip_prefix("container:")) else { continue };
        let orec = d.join_target(target, &format!("{typ} namespace"))?;
        joins.push((typ, std::path::PathBuf::from(format!("/proc/{}/ns/{typ}", orec.state.pid))));
    }
    Ok(joins)
}

/// Records a failed start: the exit code Docker gives it, attach clients waiting for the start are let go, and a
/// `--rm` container is removed (as Docker does).
pub(super) async fn record_start_failure(d: &Arc<Daemon>, c: &Arc<Container>, e: &Error) {
    if let Ok(mut p) = c.pending_attach.lock() {
        p.clear();
    }
    let code = match e {
        Error::InvalidArgument(m) if m.contains("permission denied") => 126,
        Error::InvalidArgument(_) => 127,
        _ => 128,
    };
    let rec = c.update(|r| {
        r.state.exit_code = code;
        r.state.error = e.to_string();
        r.state.pid = 0;
        if matches!(r.state.status, Status::Running | Status::Restarting) {
            r.state.status = Status::Exited;
        }
    });
    if let Err(e) = persist(d, c, &rec).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
    if rec.host_config.auto_remove.unwrap_or(false) {
        spawn_remove(d, c);
    }
}

/// Removes a container in the background (its lifecycle lock may be held by the caller).
pub(super) fn spawn_remove(d: &Arc<Daemon>, c: &Arc<Container>) {
    let (d, c) = (d.clone(), c.clone());
    tokio::spawn(async move {
        // Docker removes the anonymous volumes of a `--rm` container with it.
        if let Err(e) = remove(&d, &c, true, true).await {
            tracing::warn!("auto-remove {}: {e}", &c.id[..12]);
        }
    });
}

/// Watches a running container's shim and records the exit when it comes.
pub(super) fn spawn_monitor(d: Arc<Daemon>, c: Arc<Container>) {
    tokio::spawn(async move {
        let oom = super::oom::watch(&d, &c);
        let bundle = bundle_dir(&d, &c.id);
        let mut tries = 0u32;
        let exit = loop {
            match d.shims.request(&bundle, &Request::Wait).await {
                Ok(Response::Exited(e)) => break Some(e),
                // No answer: the exit file tells if the shim recorded one (it writes it before it goes).
                _ => match read_exit(&d, &c.id) {
                    Some(e) => break Some(e),
                    // The shim is still there (it dropped this connection): ask again, a second later; one that
                    // keeps refusing is said once and asked every ten seconds from then on.
                    None if d.shims.shim_pid(&bundle).is_some() => {
                        tries += 1;
                        if tries == 30 {
                            tracing::warn!("the shim of {} keeps dropping its connection; still watching", &c.id[..12]);
                        }
                        tokio::time::sleep(Duration::from_secs(if tries < 30 { 1 } else { 10 })).await;
                    }
                    None => break None,
                },
            }
        };
        // Without an answer (the shim died or was gone already) the exit file tells; wait briefly for it.
        let exit = match exit {
            Some(e) => e,
            None => {
                let mut found = None;
                for _ in 0..50 {
                    if let Some(e) = read_exit(&d, &c.id) {
                        found = Some(e);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                match found {
                    Some(e) => e,
                    None => {
                        // The shim died without recording an exit (`kill -9`): its container must not run on
                        // untracked, nor beside the copy a restart policy starts.
                        kill_orphaned(&d, &c).await;
                        ExitRecord {
                            exit_code: 255,
                            finished_at: berth_api::time::now(),
                            oom_killed: false,
                            error: Some("berth-shim exited unexpectedly".into()),
                        }
                    }
                }
            }
        };
        if let Some(oom) = oom {
            oom.abort();
        }
        on_exit(&d, &c, exit, true, true).await;
    });
}

/// Records an exit; applies `--rm` and (`policy`) the restart policy: a container its policy restarts is
/// `restarting` (with the new `RestartCount`) from its `die` until its next start.
/// `counted`: its volume mounts were counted when it started (not so for a container that ended while berthd was
/// down, whose policy the daemon's start applies instead).
pub(super) async fn on_exit(d: &Arc<Daemon>, c: &Arc<Container>, exit: ExitRecord, counted: bool, policy: bool) {
    let mut phases = crate::phases::Phases::begin("exit", &c.id);
    let restart = policy && super::restart::wants_restart(c, &c.record(), i64::from(exit.exit_code));
    // As dockerd: the exit is recorded and `die` published first (a subscriber learns of it at once), then the
    // clean-up, which a start or a removal waits for.
    let cleanup = c.cleanup.lock().await;
    let endpoints = c.record().net.endpoints;
    // An OOM kill the live watch reported already (`oom::watch`) is not reported again.
    let oom_unreported = std::cell::Cell::new(false);
    let rec = c.update_then(
        |r| {
            r.net.ports.clear();
            r.net.sandbox.clear();
            for e in &mut r.net.endpoints {
                let keep = crate::networks::Endpoint {
                    network: e.network.clone(),
                    network_id: e.network_id.clone(),
                    aliases: e.aliases.clone(),
                    requested_ip: e.requested_ip,
                    links: e.links.clone(),
                    driver_opts: e.driver_opts.clone(),
                    link_local_ips: e.link_local_ips.clone(),
                    ..Default::default()
                };
                *e = keep;
            }
            r.state.status = if restart { Status::Restarting } else { Status::Exited };
            if restart {
                r.restart_count += 1;
            }
            r.state.pid = 0;
            r.state.exit_code = i64::from(exit.exit_code);
            r.state.finished_at = exit.finished_at.clone();
            oom_unreported.set(exit.oom_killed && !r.state.oom_killed);
            r.state.oom_killed |= exit.oom_killed;
            if let Some(e) = &exit.error {
                r.state.error = e.clone();
            }
        },
        |r| {
            if oom_unreported.get() {
                c.publish(&d.events, "oom", &[]);
            }
            c.publish(
                &d.events,
                "die",
                &[("exitCode", &exit.exit_code.to_string()), ("execDuration", &exec_duration(r))],
            );
        },
    );
    // The shim answers before it releases the runtime's resources (the rootfs mount, the cgroup): the bundle goes,
    // and a new run may start, once it is gone.
    if !wait_for_shim_gone(d, &bundle_dir(d, &c.id)).await {
        // It releases the runtime's resources before anything slow (its attach clients' backlog): one still here
        // is stuck; it goes, and what it held is released here, before a new run can start.
        d.shims.kill_shim(&bundle_dir(d, &c.id));
        super::shim::kill_orphaned(d, c).await;
    }
    crate::phases::mark(&mut phases, "shim-gone");
    let _ = std::fs::remove_dir_all(bundle_dir(d, &c.id));
    super::shm::release(d, &c.id).await;
    crate::networks::release(d, &c.id).await;
    crate::networks::publish_endpoints(d, &c.id, &endpoints, "disconnect");
    if counted {
        crate::volumes::release(d, &rec.mounts).await;
    }
    crate::volumes::publish_mounts(d, &rec.id, &rec.mounts, "unmount");
    crate::phases::mark(&mut phases, "release");
    // The record as it is now (a `network disconnect` may have changed it meanwhile).
    if let Err(e) = persist(d, c, &c.record()).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
    crate::phases::mark(&mut phases, "record");
    crate::phases::done(phases);
    // Read under the clean-up lock: `restart` clears it once that lock is free.
    let restarting = c.restarting.load(Ordering::SeqCst);
    drop(cleanup);
    if rec.holder_of().is_some() && !c.stopping.load(Ordering::SeqCst) {
        holder_exited(d, c);
    }
    if rec.host_config.auto_remove.unwrap_or(false) && !restarting {
        spawn_remove(d, c);
        return;
    }
    if restart {
        super::restart::schedule(d, c);
    }
}

/// A pod's holder that ended on its own (OOM, killed from the host; not by its pod's stop, which stops the members
/// first): its members lost their network, and are stopped (Podman's infra exit).
fn holder_exited(d: &Arc<Daemon>, holder: &Arc<Container>) {
    let (d, holder) = (d.clone(), holder.clone());
    tokio::spawn(async move {
        let Some(pod) = holder.record().holder_of().map(str::to_string) else { return };
        let members = d.all_containers().into_iter().filter(|c| c.record().pod() == Some(pod.as_str()));
        for c in members.filter(|c| c.is_running()) {
            // Started again meanwhile (a pod's start): its members are the start's.
            if holder.is_running() {
                return;
            }
            tracing::info!("the infra container of pod {pod} ended: stopping {}", c.name());
            match stop(&d, &c, None, None).await {
                Ok(()) | Err(Error::NotModified(_)) => {}
                Err(e) => tracing::warn!("stop {} after its pod's infra container ended: {e}", c.name()),
            }
        }
    });
}

/// Waits (at most ten seconds: a shim's release is a few unmounts and `rmdir`s, then the attach clients' backlog)
/// until the bundle's shim has exited; false when it has not.
async fn wait_for_shim_gone(d: &Daemon, bundle: &std::path::Path) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut watched: Option<(i32, tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>)> = None;
    while let Some(pid) = d.shims.shim_pid(bundle) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("the shim of {} is still there 10 s after its container ended: ending it", bundle.display());
            return false;
        }
        // A pidfd turns readable when its process ends: the clean-up follows the shim's end at once (a `kill` of
        // SIGKILL answers after it). One per shim PID; the PID file is looked at again every 50 ms all the same (it
        // is what names the shim), and polled every 2 ms where the kernel has no pidfd.
        if watched.as_ref().is_none_or(|(p, _)| *p != pid) {
            watched = berth_runtime::sys::pidfd_open(pid).ok().and_then(|fd| {
                // SAFETY: `fd` is an `OwnedFd` the `AsyncFd` owns and never replaces, so its raw descriptor stays
                // this pidfd for as long as it is registered.
                let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
                fd.ok().map(|fd| (pid, fd))
            });
        }
        match &watched {
            Some((_, fd)) => {
                let _ = tokio::time::timeout(Duration::from_millis(50), fd.readable()).await;
            }
            None => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
    true
}

/// Docker's `execDuration` of a `die` event: whole seconds from the start to the exit.
fn exec_duration(rec: &Record) -> String {
    let (start, end) = (berth_api::time::parse(&rec.state.started_at), berth_api::time::parse(&rec.state.finished_at));
    let secs = match (start, end) {
        (Some(s), Some(e)) => e.duration_since(s).map(|d| d.as_secs()).unwrap_or(0),
        _ => 0,
    };
    secs.to_string()
}

/// The first and last real-time signals as Docker's signal table has them (glibc reserves 32 and 33).
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Docker's signal names (Linux's table of moby's `signal.SignalMap`, without the `SIG` prefix), besides the
/// real-time ones.
const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// Parses a signal as Docker does: a number (not 0), or a name in any case with or without `SIG` (`SIGHUP`, `hup`),
/// `RTMIN`, `RTMIN+1` … `RTMIN+15`, `RTMAX-14` … `RTMAX-1`, `RTMAX`. A number Linux has no signal for (65, 32) is
/// refused as dockerd refuses it (500, "The linux daemon does not support signal 65").
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    let bad = || Error::InvalidArgument(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i64>() {
        if n == 0 {
            return Err(bad());
        }
        return match i32::try_from(n) {
            Ok(sig) if (1..=31).contains(&sig) || (SIGRTMIN..=SIGRTMAX).contains(&sig) => Ok(sig),
            // Go's uint64 of the number, as dockerd prints it (-1: 18446744073709551615).
            _ => Err(Error::Internal(format!("The linux daemon does not support signal {}", n as u64))),
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, sig)) = SIGNAL_NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*sig);
    }
    let offset = |rest: &str, max: i32| -> Option<i32> {
        let n: i32 = rest.parse().ok().filter(|n| (1..=max).contains(n))?;
        // Only the plain digits Docker's table names ("RTMIN+01" is not there).
        (n.to_string() == rest).then_some(n)
    };
    match name {
        "RTMIN" => Ok(SIGRTMIN),
        "RTMAX" => Ok(SIGRTMAX),
        _ => {
            if let Some(n) = name.strip_prefix("RTMIN+").and_then(|r| offset(r, 15)) {
                Ok(SIGRTMIN + n)
            } else if let Some(n) = name.strip_prefix("RTMAX-").and_then(|r| offset(r, 14)) {
                Ok(SIGRTMAX - n)
            } else {
                Err(bad())
            }
        }
    }
}

pub(super) async fn wait_until_not_running(c: &Container, timeout: Option<Duration>) -> bool {
    let mut rx = c.subscribe();
    let fut = async {
        loop {
            if !c.is_running() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

/// Stops a container: its stop signal, then SIGKILL after `timeout` seconds (negative: wait forever).
pub async fn stop(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<String>,
) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    stop_locked(d, c, timeout, signal).await
}

pub(super) async fn stop_locked(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<String>,
) -> Result<(), Error> {
    let rec = c.record();
    if rec.state.status == Status::Restarting {
        // Nothing runs: the pending restart is cancelled and the container stays `exited` (Docker's `stop` of a
        // restarting container).
        super::restart::cancel(d, c, true).await;
        c.publish(&d.events, "stop", &[]);
        return Ok(());
    }
    if !c.is_running() {
        return Err(Error::NotModified("container already stopped".into()));
    }
    c.stopping.store(true, Ordering::SeqCst);
    c.update(|r| r.manually_stopped = true);
    let bundle = bundle_dir(d, &c.id);
    let sig = match signal.or(rec.config.stop_signal.clone()) {
        Some(s) if !s.is_empty() => parse_signal(&s)?,
        _ => libc::SIGTERM,
    };
    let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
    if rec.state.status == Status::Paused {
        let _ = d.shims.request(&bundle, &Request::Resume).await;
    }
    // Before the signal: its `die` may come at once, and must come after.
    c.publish(&d.events, "kill", &[("signal", &sig.to_string())]);
    let _ = d.shims.request(&bundle, &Request::Kill { signal: sig }).await;
    let limit = (secs >= 0).then(|| Duration::from_secs(secs as u64));
    if !wait_until_not_running(c, limit).await {
        c.publish(&d.events, "kill", &[("signal", &libc::SIGKILL.to_string())]);
        let _ = d.shims.request(&bundle, &Request::Kill { signal: libc::SIGKILL }).await;
        wait_until_not_running(c, Some(Duration::from_secs(30))).await;
    }
    // `die` came with the exit; a stop returns once the clean-up is done too: its ports and addresses are free.
    drop(c.cleanup.lock().await);
    c.publish(&d.events, "stop", &[]);
    Ok(())
}

/// Sends a signal to a running container.
pub async fn kill(d: &Arc<Daemon>, c: &Arc<Container>, signal: Option<String>) -> Result<(), Error> {
    let sig = match signal.as_deref() {
        Some(s) if !s.is_empty() => parse_signal(s)?,
        _ => libc::SIGKILL,
    };
    // Docker's `ExitOnNext`: SIGKILL or the stop signal cancels the restart policy until the next manual start.
    let stop_signal = match c.record().config.stop_signal.as_deref() {
        Some(s) if !s.is_empty() => parse_signal(s).unwrap_or(libc::SIGTERM),
        _ => libc::SIGTERM,
    };
    let ends = sig == libc::SIGKILL || sig == libc::SIGINT || sig == stop_signal;
    if c.status() == Status::Restarting {
        // Nothing runs to signal (and Docker publishes no `kill` then).
        if ends {
            let _guard = c.lifecycle.lock().await;
            if c.status() == Status::Restarting {
                super::restart::cancel(d, c, true).await;
            }
        }
        return Ok(());
    }
    if !c.is_running() {
        return Err(Error::Conflict(format!("Container {} is not running", c.id)));
    }
    if ends {
        c.stopping.store(true, Ordering::SeqCst);
    }
    c.update(|r| r.manually_stopped = true);
    let bundle = bundle_dir(d, &c.id);
    if c.status() == Status::Paused && sig == libc::SIGKILL {
        let _ = d.shims.request(&bundle, &Request::Resume).await;
    }
    // Before the signal: its `die` may come at once, and must come after.
    c.publish(&d.events, "kill", &[("signal", &sig.to_string())]);
    shim_ok(d.shims.request(&bundle, &Request::Kill { signal: sig }).await?)?;
    if sig == libc::SIGKILL {
        wait_until_not_running(c, Some(Duration::from_secs(30))).await;
        drop(c.cleanup.lock().await);
    }
    Ok(())
}

/// Stops (if running) and starts again.
pub async fn restart(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<String>,
) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    if c.is_running() || c.status() == Status::Restarting {
        c.restarting.store(true, Ordering::SeqCst);
        // `stop_locked` returns once the exit's clean-up (which reads the flag) is over.
        let stopped = stop_locked(d, c, timeout, signal).await;
        c.restarting.store(false, Ordering::SeqCst);
        match stopped {
            // It ended on its own meanwhile (its exit saw the flag: an `--rm` one is still here): started again, as
            // dockerd's restart does.
            Ok(()) | Err(Error::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
    }
    super::restart::reset_for_manual_start(c);
    start_locked(d, c).await?;
    c.publish(&d.events, "restart", &[]);
    Ok(())
}

/// Freezes (`pause = true`) or thaws a running container.
pub async fn pause(d: &Arc<Daemon>, c: &Arc<Container>, pause: bool) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    let status = c.status();
    match (pause, status) {
        (_, Status::Restarting) => {
            return Err(Error::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                c.id
            )));
        }
        (_, s) if !matches!(s, Status::Running | Status::Paused) => {
            return Err(Error::Conflict(format!("Container {} is not running", c.id)));
        }
        (true, Status::Paused) => return Err(Error::Conflict(format!("Container {} is already paused", c.id))),
        (false, Status::Running) => return Err(Error::Conflict(format!("Container {} is not paused", c.id))),
        _ => {}
    }
    let bundle = bundle_dir(d, &c.id);
    shim_ok(d.shims.request(&bundle, if pause { &Request::Pause } else { &Request::Resume }).await?)?;
    let rec = c.update(|r| r.state.status = if pause { Status::Paused } else { Status::Running });
    persist(d, c, &rec).await?;
    c.publish(&d.events, if pause { "pause" } else { "unpause" }, &[]);
    Ok(())
}

/// Resizes a running container's terminal (`POST /containers/{id}/resize`).
pub async fn resize(d: &Daemon, c: &Container, height: u16, width: u16) -> Result<(), Error> {
    if !c.is_running() {
        return Err(Error::Conflict(format!("Container {} is not running", c.id)));
    }
    shim_ok(d.shims.request(&bundle_dir(d, &c.id), &Request::Resize { height, width }).await?)?;
    c.publish(&d.events, "resize", &[("height", &height.to_string()), ("width", &width.to_string())]);
    Ok(())
}

/// Renames a container.
pub async fn rename(d: &Arc<Daemon>, c: &Arc<Container>, new_name: &str) -> Result<(), Error> {
    let new_name = new_name.trim_start_matches('/');
    crate::names::validate(new_name)?;
    let old = c.name();
    if old == new_name {
        return Err(Error::InvalidArgument("Renaming a container with the same name as its current name".into()));
    }
    if let Ok(other) = d.container(&format!("/{new_name}")) {
        return Err(name_conflict(new_name, &other.id));
    }
    let rec = c.update(|r| r.name = new_name.to_string());
    if let Err(e) = write_doc(d, &rec, Some(c.removed.clone()), true).await {
        let rec = c.update(|r| r.name = old);
        let _ = write_doc(d, &rec, Some(c.removed.clone()), true).await;
        // A concurrent create or rename may have taken the name first.
        return Err(if e.is_conflict() { name_taken(d, new_name).await } else { e });
    }
    crate::networks::renamed(d, &c.id, new_name);
    c.publish(&d.events, "rename", &[("oldName", &format!("/{old}"))]);
    Ok(())
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

/// Waits for a condition and returns the exit code then.
pub async fn wait(c: &Arc<Container>, cond: WaitCondition) -> (i64, Option<String>) {
    let mut rx = c.subscribe();
    let result = |c: &Container| {
        let r = c.record();
        (r.state.exit_code, Some(r.state.error).filter(|e| !e.is_empty()))
    };
    // A restarting container counts as running (Docker's): its wait ends at its next exit.
    if cond == WaitCondition::NotRunning && !c.is_running() && c.status() != Status::Restarting {
        return result(c);
    }
    // An exit is known by its recorded time, not by having seen the container run: notifications coalesce, and a
    // start followed at once by an exit may arrive as one.
    let exited_at = c.record().state.finished_at;
    let exited_since = |c: &Container| c.record().state.finished_at != exited_at;
    loop {
        if rx.changed().await.is_err() {
            return result(c);
        }
        let removed = *rx.borrow() == u64::MAX;
        let running = c.is_running();
        match cond {
            // A removal that failed leaves it `Dead`, with the reason as its error.
            WaitCondition::Removed if removed || c.status() == Status::Dead => return result(c),
            // Not on a change while it is still between an exit and its restart (an update, a connect): at an exit
            // (to `restarting` too), or when it is stopped for good.
            WaitCondition::NotRunning if !running && (exited_since(c) || c.status() != Status::Restarting) => {
                return result(c);
            }
            WaitCondition::NextExit if !running && exited_since(c) => return result(c),
            WaitCondition::NextExit if removed => return result(c),
            _ => {}
        }
    }
}

/// Loads every container from the store and reconnects to the shims of those that were running.
pub async fn load_all(d: &Arc<Daemon>) -> anyhow::Result<()> {
    let store = d.store.clone();
    let docs = tokio::task::spawn_blocking(move || store.list_docs(DOC_KIND)).await??;
    let mut running = Vec::new();
    let mut monitor = Vec::new();
    let mut ended = Vec::new();
    let mut leftover_rm = Vec::new();
    for doc in docs {
        let rec: Record = match serde_json::from_value(doc) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("skipping an unreadable container record: {e}");
                continue;
            }
        };
        let c = Container::new(rec.clone());
        if let Ok(mut m) = d.containers.write() {
            m.insert(rec.id.clone(), c.clone());
        }
        if rec.state.status == Status::Restarting {
            // Its exit was recorded (and published) before berthd stopped; the start-up pass below decides.
            let rec = c.update(|r| r.state.status = Status::Exited);
            if let Err(e) = persist(d, &c, &rec).await {
                tracing::warn!("persist {}: {e}", &rec.id[..12]);
            }
            let _ = std::fs::remove_dir_all(bundle_dir(d, &rec.id));
        } else if matches!(rec.state.status, Status::Running | Status::Paused) {
            let bundle = bundle_dir(d, &rec.id);
            if d.shims.reachable(&bundle).await {
                tracing::info!("container {} is still running; monitoring it again", &rec.id[..12]);
                running.push(rec.clone());
                monitor.push(c);
            } else {
                tracing::info!("container {} ended while berthd was down", &rec.id[..12]);
                let exit = match read_exit(d, &rec.id) {
                    Some(e) => e,
                    None => {
                        // Its shim died without recording an exit: what it ran must not run on untracked.
                        kill_orphaned(d, &c).await;
                        ExitRecord {
                            exit_code: 255,
                            finished_at: berth_api::time::now(),
                            oom_killed: false,
                            error: Some("berth-shim exited unexpectedly".into()),
                        }
                    }
                };
                ended.push((c, exit));
            }
        } else {
            let _ = std::fs::remove_dir_all(bundle_dir(d, &rec.id));
            // As dockerd's restore: an `--rm` container that is not running goes (one created and never started,
            // or one whose removal a crash interrupted).
            if rec.host_config.auto_remove.unwrap_or(false) {
                leftover_rm.push(c);
            }
        }
    }
    // The survivors' addresses and ports are taken back before anything can exit, restart (restart policies of the
    // containers that ended meanwhile) or start and claim them.
    crate::networks::restore(d, &running).await;
    // Volume mounts are counted from the survivors too, before any exit or restart changes the counts.
    crate::volumes::reconcile(d, &running).await?;
    for c in monitor {
        // A healthcheck starts over after a daemon restart (as moby's does).
        crate::health::spawn(d.clone(), c.clone(), c.record().state.started_at);
        spawn_monitor(d.clone(), c);
    }
    for (c, exit) in ended {
        // Its volumes were never counted in this daemon's life (it was not running at start-up).
        on_exit(d, &c, exit, false, false).await;
    }
    for c in leftover_rm {
        spawn_remove(d, &c);
    }
    // Live restore: what still runs is left alone; what stopped comes back as its policy says (also after a boot).
    super::restart::start_at_boot(d, d.all_containers());
    Ok(())
}
