//! The stats manager: samples of a container's resource usage for `GET /containers/{id}/stats`, as dockerd takes
//! them. A sample of a running container reads its cgroup `berth/<id>` (cpu, memory, pids, block I/O), the host's
//! CPU time and online CPUs, and the interfaces of the network namespace of its init process; a container that is not
//! running has no sample (the view renders Docker's zeros).
//!
//! [`samples`] paces a stream (one frame a second, each carrying the previous sample as its `pre`; zeros while the
//! container is not running, as dockerd) and ends when the container is removed; [`once`] is `stream=false`: two samples a second apart so that `precpu_stats` is filled, as
//! dockerd, or one at once with `one-shot`. Nothing here runs in the background: dropping the stream (the client went
//! away) stops the sampling.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use berth_runtime::cgroups::{self, Cgroup, NetStats, OpenFiles, Stats};
use futures_util::Stream;
use tokio::sync::watch;

use crate::containers::{Container, Status};
use crate::error::Error;

/// How often a stream samples (dockerd's collector interval).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One sample of a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// When it was taken.
    pub read: Option<SystemTime>,
    pub cgroup: Stats,
    /// The host's CPU time, nanoseconds (`/proc/stat`, as dockerd counts it).
    pub system_cpu_usage: u64,
    pub online_cpus: u32,
    /// The host's memory, which caps an unlimited `limit` (as dockerd).
    pub machine_memory: u64,
    /// Per interface of the container's network namespace (none for `host` networking).
    pub networks: BTreeMap<String, NetStats>,
}

/// What one answer object carries: the sample (None: the container is not running) and the one before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub sample: Option<Sample>,
    pub pre: Option<Sample>,
}

/// Takes one sample of `c`; None when it is not running (or stopped while being read).
pub async fn sample(c: &Container) -> Result<Option<Sample>, Error> {
    sample_with(c, &mut None).await
}

/// What a stream keeps between samples: the opened cgroup and its files, for one run of the container (its init PID).
struct Reader {
    pid: i64,
    cgroup: Cgroup,
    files: OpenFiles,
}

/// [`sample`], keeping the cgroup and its open files in `reader` for the next sample of a stream.
async fn sample_with(c: &Container, reader: &mut Option<Box<Reader>>) -> Result<Option<Sample>, Error> {
    let rec = c.record();
    if !matches!(rec.state.status, Status::Running | Status::Paused) {
        return Ok(None);
    }
    let (id, pid) = (c.id.clone(), rec.state.pid);
    // `host` networking: the host's interfaces are not the container's (dockerd reports none).
    let net = rec.host_config.network_mode.as_deref() != Some("host");
    // A restarted container has a new cgroup: its files are opened again.
    let kept = reader.take().filter(|r| r.pid == pid);
    // Read in place, not on a blocking thread: cgroupfs and procfs answer from memory, never wait for a disk (a
    // sample takes some 50 µs here), and the hand-over to a thread would cost about as much as the reads.
    let read = read_sample(&id, pid, net, kept)?;
    // A container that stopped while it was read has no sample (its cgroup may be half gone).
    Ok(read.filter(|_| c.is_running()).map(|(s, r)| {
        *reader = Some(r);
        s
    }))
}

fn read_sample(
    id: &str,
    pid: i64,
    net: bool,
    kept: Option<Box<Reader>>,
) -> Result<Option<(Sample, Box<Reader>)>, Error> {
    let mut r = match kept {
        Some(r) => r,
        None => match Cgroup::open(&format!("berth/{id}")) {
            Ok(cgroup) => Box::new(Reader { pid, cgroup, files: OpenFiles::default() }),
            Err(cgroups::Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(berth_runtime::Error::from(e).into()),
        },
    };
    let cgroup = r.cgroup.stats_with(&mut r.files).map_err(berth_runtime::Error::from)?;
    let system_cpu_usage = cgroups::system_cpu_usage(&mut r.files).map_err(berth_runtime::Error::from)?;
    let networks = match i32::try_from(pid) {
        // Opened each time: an open `/proc/<pid>/net/dev` would hold the container's network namespace. The process
        // may just have exited: no counters rather than an error.
        Ok(pid) if pid > 0 && net => cgroups::net_dev(pid).unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    let sample = Sample {
        read: Some(SystemTime::now()),
        cgroup,
        system_cpu_usage,
        online_cpus: cgroups::online_cpus(&mut r.files),
        machine_memory: machine_memory(),
        networks,
    };
    Ok(Some((sample, r)))
}

/// The host's memory in bytes (`MemTotal` of `/proc/meminfo`, read once, as dockerd), 0 when unknown; also `info`'s
/// `MemTotal`.
pub fn machine_memory() -> u64 {
    static MEMORY: OnceLock<u64> = OnceLock::new();
    *MEMORY.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    })
}

/// `stream=false`: with `one_shot`, one sample at once (no `pre`); without, a first sample to prime the CPU numbers and
/// a second one [`INTERVAL`] later, as dockerd. A container that is not running answers at once, with no sample.
pub async fn once(c: &Container, one_shot: bool) -> Result<Frame, Error> {
    let Some(first) = sample(c).await? else { return Ok(Frame::default()) };
    if one_shot {
        return Ok(Frame { sample: Some(first), pre: None });
    }
    tokio::time::sleep(INTERVAL).await;
    match sample(c).await? {
        Some(s) => Ok(Frame { sample: Some(s), pre: Some(first) }),
        None => Ok(Frame::default()),
    }
}

/// `stream=true`: a frame every [`INTERVAL`], the first with no `pre`, each next with the previous frame's sample.
/// As dockerd's collector: while the container is not running (stopped, or a sample failed, which is logged) the
/// frames carry no sample (Docker's zeros) and the stream goes on, so that a restart shows again; it ends when the
/// container is removed.
pub fn samples(c: Arc<Container>) -> impl Stream<Item = Frame> + Send {
    struct State {
        changed: watch::Receiver<u64>,
        c: Arc<Container>,
        reader: Option<Box<Reader>>,
        pre: Option<Sample>,
        first: bool,
    }
    let start = State { changed: c.subscribe(), c, reader: None, pre: None, first: true };
    futures_util::stream::unfold(start, |mut st| async move {
        if !std::mem::replace(&mut st.first, false) {
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = removed(&mut st.changed) => return None,
            }
        }
        if *st.changed.borrow() == REMOVED {
            return None;
        }
        let s = match sample_with(&st.c, &mut st.reader).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("stats of {}: {e}", &st.c.id[..12.min(st.c.id.len())]);
                None
            }
        };
        let frame = Frame { sample: s.clone(), pre: std::mem::replace(&mut st.pre, s) };
        Some((frame, st))
    })
}

/// The value of a container's change counter once it is removed.
const REMOVED: u64 = u64::MAX;

/// Returns once the container is removed (or its record dropped).
async fn removed(changed: &mut watch::Receiver<u64>) {
    while *changed.borrow_and_update() != REMOVED {
        if changed.changed().await.is_err() {
            return;
        }
    }
}
