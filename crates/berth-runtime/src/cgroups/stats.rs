//! A cgroup's resource usage, as `docker stats` reports it: CPU (total, per CPU on v1, kernel/user, throttling),
//! memory (usage, limit, v1's max usage and failcnt, the `memory.stat` map under Docker's keys), pids and block I/O.
//! The numbers are the ones dockerd (through containerd's cgroups library) takes from the same files; a file a
//! controller does not offer (no io controller, no swap accounting) leaves its part empty instead of failing.
//!
//! Also the host's side of a sample: the system CPU time from `/proc/stat` and the online CPUs, and the network
//! counters of a process's network namespace (`/proc/<pid>/net/dev`).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Cgroup, Error, Version, read_file};

/// Nanoseconds per second.
const NANOS: u64 = 1_000_000_000;

/// The clock ticks per second `/proc/stat` and `cpuacct.stat` count in (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const CLK_TCK: u64 = 100;

/// The v1 `memory.stat` keys dockerd copies into `memory_stats.stats`.
const V1_MEMORY_KEYS: &[&str] = &[
    "active_anon",
    "active_file",
    "cache",
    "hierarchical_memory_limit",
    "inactive_anon",
    "inactive_file",
    "mapped_file",
    "pgfault",
    "pgmajfault",
    "pgpgin",
    "pgpgout",
    "rss",
    "rss_huge",
    "total_active_anon",
    "total_active_file",
    "total_cache",
    "total_inactive_anon",
    "total_inactive_file",
    "total_mapped_file",
    "total_pgfault",
    "total_pgmajfault",
    "total_pgpgin",
    "total_pgpgout",
    "total_rss",
    "total_rss_huge",
    "total_unevictable",
    "total_writeback",
    "unevictable",
    "writeback",
];

/// The v2 `memory.stat` keys dockerd copies into `memory_stats.stats`.
const V2_MEMORY_KEYS: &[&str] = &[
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// One sample of a cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
}

/// CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub total_usage: u64,
    /// Per CPU (v1's `cpuacct.usage_percpu`; empty on v2).
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
    pub throttling: Throttling,
}

/// CFS throttling (`cpu.stat`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

/// Memory, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub usage: u64,
    /// v1 only (`memory.max_usage_in_bytes`).
    pub max_usage: Option<u64>,
    /// The limit, `u64::MAX`-ish when unlimited (the caller caps it at the host's memory, as dockerd).
    pub limit: u64,
    /// v1: `memory.failcnt`; v2: the `oom` count of `memory.events`.
    pub failcnt: Option<u64>,
    /// `memory.stat` under Docker's keys (v1: `cache`, `rss`, `total_inactive_file`, ...; v2: `anon`, `file`,
    /// `inactive_file`, ...).
    pub stats: BTreeMap<String, u64>,
}

/// Tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    /// None when unlimited (`max`).
    pub limit: Option<u64>,
}

/// Block I/O, as Docker's `blkio_stats` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// v1 only.
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One device's counter for one operation (`8:0 Read 4096`; v2: op `read`/`write`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// A network interface's counters (`/proc/<pid>/net/dev`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Stats files kept open between samples: re-reading an open cgroupfs or procfs file from offset 0 costs a fraction of
/// opening it again (here 1 µs against 7 µs for a one-line cgroup file), which is most of what a stream of samples
/// costs. A stream keeps one per container and drops it when the container restarts (its cgroup is a new one then).
#[derive(Debug, Default)]
pub struct OpenFiles {
    /// None: the file does not exist (not looked up again).
    files: HashMap<PathBuf, Option<File>>,
}

impl OpenFiles {
    /// The whole content of `path`; None when it does not exist.
    fn read(&mut self, path: &Path) -> Result<Option<String>, Error> {
        let err = |source| Error::Read { path: path.to_path_buf(), source };
        if !self.files.contains_key(path) {
            let file = match File::open(path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(err(e)),
            };
            self.files.insert(path.to_path_buf(), file);
        }
        let Some(Some(file)) = self.files.get(path) else { return Ok(None) };
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        loop {
            if len == buf.len() {
                buf.resize(len * 2, 0);
            }
            let room = buf.len() - len;
            let n = file.read_at(&mut buf[len..], len as u64).map_err(err)?;
            len += n;
            // cgroupfs and procfs files give their whole (regenerated) content to a read with room for it: a short
            // read is the end, which saves asking again for the 0 of the end of file.
            if n == 0 || n < room {
                break;
            }
        }
        buf.truncate(len);
        String::from_utf8(buf).map(Some).map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    }
}

impl Cgroup {
    /// One sample of the cgroup's usage. A controller or file the host lacks leaves its part at zero; a file that
    /// exists but cannot be read is an error.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.stats_with(&mut OpenFiles::default())
    }

    /// [`Cgroup::stats`] through files kept open in `files` (for a stream of samples).
    pub fn stats_with(&self, files: &mut OpenFiles) -> Result<Stats, Error> {
        match self.version {
            Version::V1 => self.stats_v1(files),
            Version::V2 => self.stats_v2(files),
        }
    }

    /// How many processes of the cgroup the kernel's OOM killer has killed since the cgroup was made (v1: the
    /// `oom_kill` line of `memory.oom_control`, kernel 4.13 and later; v2: `oom_kill` of `memory.events`). 0 when the
    /// memory controller or the line is missing. A container's cgroup is made at each start, so this counts kills of
    /// the current run: Docker's `State.OOMKilled`.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let Ok(dir) = self.dir_of("memory") else { return 0 };
        std::fs::read_to_string(dir.join(file)).ok().and_then(|t| flat_keyed(&t).get("oom_kill").copied()).unwrap_or(0)
    }

    /// A descriptor that becomes readable whenever the kernel may have OOM-killed a process of the cgroup, for a
    /// live `oom` event (Docker's, from containerd's OOM monitor): v1 registers an eventfd on `memory.oom_control`
    /// through `cgroup.event_control`; v2 watches `memory.events` with inotify. It also wakes when the cgroup is
    /// removed. Its reader drains it ([`OomNotifier::drain`]), compares [`Cgroup::oom_kills`] with what it saw before,
    /// and ends once [`OomNotifier::gone`] says the cgroup is no more.
    pub fn oom_notifier(&self) -> Result<OomNotifier, Error> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let dir = self.dir_of("memory")?.to_path_buf();
        let sys = |path: &Path, e: nix::Error| Error::Read { path: path.to_path_buf(), source: e.into() };
        match self.version {
            Version::V1 => {
                let control = dir.join("memory.oom_control");
                let watched = File::open(&control).map_err(|source| Error::Read { path: control.clone(), source })?;
                let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                    .map_err(|e| sys(&control, e))?;
                let value = format!("{} {}", efd.as_raw_fd(), watched.as_raw_fd());
                let path = dir.join("cgroup.event_control");
                std::fs::write(&path, &value).map_err(|source| Error::Write { path, value, source })?;
                Ok(OomNotifier { fd: efd.into(), dir, _watched: Some(watched) })
            }
            Version::V2 => {
                let events = dir.join("memory.events");
                let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|e| sys(&events, e))?;
                ino.add_watch(&events, AddWatchFlags::IN_MODIFY).map_err(|e| sys(&events, e))?;
                Ok(OomNotifier { fd: ino.into(), dir, _watched: None })
            }
        }
    }

    /// Reads `file` of the hierarchy with `controller`; None when the controller or the file is missing.
    fn optional(&self, files: &mut OpenFiles, controller: &'static str, file: &str) -> Result<Option<String>, Error> {
        let Ok(dir) = self.dir_of(controller) else { return Ok(None) };
        files.read(&dir.join(file))
    }

    fn stats_v1(&self, files: &mut OpenFiles) -> Result<Stats, Error> {
        let mut s = Stats::default();
        let num = |files: &mut OpenFiles, c, f| -> Result<Option<u64>, Error> {
            Ok(self.optional(files, c, f)?.and_then(|t| parse_u64(&t)))
        };
        // CPU: cpuacct for usage, cpu for throttling.
        s.cpu.total_usage = num(files, "cpuacct", "cpuacct.usage")?.unwrap_or(0);
        if let Some(t) = self.optional(files, "cpuacct", "cpuacct.usage_percpu")? {
            s.cpu.percpu_usage = t.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        }
        if let Some(t) = self.optional(files, "cpuacct", "cpuacct.stat")? {
            let kv = flat_keyed(&t);
            s.cpu.usage_in_usermode = kv.get("user").copied().unwrap_or(0) * NANOS / CLK_TCK;
            s.cpu.usage_in_kernelmode = kv.get("system").copied().unwrap_or(0) * NANOS / CLK_TCK;
        }
        if let Some(t) = self.optional(files, "cpu", "cpu.stat")? {
            let kv = flat_keyed(&t);
            s.cpu.throttling = Throttling {
                periods: kv.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: kv.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: kv.get("throttled_time").copied().unwrap_or(0),
            };
        }
        // Memory.
        s.memory.usage = num(files, "memory", "memory.usage_in_bytes")?.unwrap_or(0);
        s.memory.max_usage = num(files, "memory", "memory.max_usage_in_bytes")?;
        s.memory.limit = num(files, "memory", "memory.limit_in_bytes")?.unwrap_or(u64::MAX);
        s.memory.failcnt = num(files, "memory", "memory.failcnt")?;
        if let Some(t) = self.optional(files, "memory", "memory.stat")? {
            s.memory.stats = pick(&flat_keyed(&t), V1_MEMORY_KEYS);
        }
        s.pids = self.pids(files)?;
        // Block I/O: the CFQ files when the scheduler fills them, else the throttle ones (as containerd).
        let blkio = |files: &mut OpenFiles, name: &str| -> Result<Vec<BlkioEntry>, Error> {
            let cfq = self
                .optional(files, "blkio", &format!("blkio.{name}"))?
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default();
            if !cfq.is_empty() {
                return Ok(cfq);
            }
            Ok(self
                .optional(files, "blkio", &format!("blkio.throttle.{name}"))?
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default())
        };
        s.blkio.io_service_bytes_recursive = blkio(files, "io_service_bytes_recursive")?;
        s.blkio.io_serviced_recursive = blkio(files, "io_serviced_recursive")?;
        Ok(s)
    }

    fn stats_v2(&self, files: &mut OpenFiles) -> Result<Stats, Error> {
        let mut s = Stats::default();
        if let Some(t) = self.optional(files, "cpu", "cpu.stat")? {
            let kv = flat_keyed(&t);
            let usec = |k: &str| kv.get(k).copied().unwrap_or(0) * 1000;
            s.cpu.total_usage = usec("usage_usec");
            s.cpu.usage_in_usermode = usec("user_usec");
            s.cpu.usage_in_kernelmode = usec("system_usec");
            s.cpu.throttling = Throttling {
                periods: kv.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: kv.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: usec("throttled_usec"),
            };
        }
        s.memory.usage = self.optional(files, "memory", "memory.current")?.and_then(|t| parse_u64(&t)).unwrap_or(0);
        s.memory.limit = self.optional(files, "memory", "memory.max")?.and_then(|t| parse_u64(&t)).unwrap_or(u64::MAX);
        if let Some(t) = self.optional(files, "memory", "memory.stat")? {
            s.memory.stats = pick(&flat_keyed(&t), V2_MEMORY_KEYS);
        }
        if let Some(t) = self.optional(files, "memory", "memory.events")? {
            s.memory.failcnt = flat_keyed(&t).get("oom").copied();
        }
        s.pids = self.pids(files)?;
        if let Some(t) = self.optional(files, "io", "io.stat")? {
            s.blkio.io_service_bytes_recursive = parse_io_stat_v2(&t);
        }
        Ok(s)
    }

    /// `pids.current` and `pids.max` (the same files on v1 and v2).
    fn pids(&self, files: &mut OpenFiles) -> Result<PidsStats, Error> {
        Ok(PidsStats {
            current: self.optional(files, "pids", "pids.current")?.and_then(|t| parse_u64(&t)).unwrap_or(0),
            limit: self.optional(files, "pids", "pids.max")?.and_then(|t| parse_u64(&t)),
        })
    }
}

/// A single number; None for `max` or garbage.
fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A flat-keyed file (`key value` per line).
fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (k, v) = (it.next()?, it.next()?.parse().ok()?);
            Some((k.to_string(), v))
        })
        .collect()
}

/// The entries of `all` under `keys` (a key the kernel does not report is left out).
fn pick(all: &BTreeMap<String, u64>, keys: &[&str]) -> BTreeMap<String, u64> {
    keys.iter().filter_map(|k| all.get(*k).map(|v| (k.to_string(), *v))).collect()
}

/// `major:minor`.
fn device(s: &str) -> Option<(u64, u64)> {
    let (major, minor) = s.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// v1's `8:0 Read 4096` lines; the closing `Total N` line is skipped.
fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f.as_slice() else { return None };
            let (major, minor) = device(dev)?;
            Some(BlkioEntry { major, minor, op: op.to_string(), value: value.parse().ok()? })
        })
        .collect()
}

/// v2's `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 ...`) as dockerd turns it into `io_service_bytes_recursive`: a
/// `read` and a `write` entry per device.
fn parse_io_stat_v2(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(device) else { continue };
        let kv: BTreeMap<&str, u64> =
            it.filter_map(|f| f.split_once('=')).filter_map(|(k, v)| Some((k, v.parse().ok()?))).collect();
        for (op, key) in [("read", "rbytes"), ("write", "wbytes")] {
            out.push(BlkioEntry { major, minor, op: op.into(), value: kv.get(key).copied().unwrap_or(0) });
        }
    }
    out
}

/// What [`Cgroup::oom_notifier`] returns: the descriptor to wait on (readable after a possible OOM kill, or the
/// cgroup's removal), and what keeps the registration alive.
#[derive(Debug)]
pub struct OomNotifier {
    fd: std::os::fd::OwnedFd,
    /// The cgroup's memory directory: gone once the cgroup is removed.
    dir: PathBuf,
    /// v1: `memory.oom_control`, held open as long as its eventfd is registered.
    _watched: Option<File>,
}

impl OomNotifier {
    /// The descriptor to wait on for readability.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads what woke the descriptor (an eventfd counter, inotify records) so that it waits again.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        // Non-blocking: ends at EAGAIN (or any error: the next wake-up reads again).
        while nix::unistd::read(&self.fd, &mut buf).is_ok_and(|n| n > 0) {}
    }

    /// Whether the cgroup has been removed (the notifier has nothing more to say).
    pub fn gone(&self) -> bool {
        !self.dir.exists()
    }
}

impl AsRawFd for OomNotifier {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// The host's CPU time in nanoseconds, as dockerd computes `system_cpu_usage`: the first seven fields of the `cpu`
/// line of `/proc/stat` (user, nice, system, idle, iowait, irq, softirq) in clock ticks, times 1e9 / CLK_TCK.
pub fn system_cpu_usage(files: &mut OpenFiles) -> Result<u64, Error> {
    let path = Path::new("/proc/stat");
    let text = files.read(path)?.unwrap_or_default();
    parse_proc_stat(&text).ok_or_else(|| Error::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no valid cpu line"),
    })
}

fn parse_proc_stat(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).take(7).map(|v| v.parse().ok()).collect::<Option<_>>()?;
    if fields.len() < 7 {
        return None;
    }
    Some(fields.iter().sum::<u64>() * (NANOS / CLK_TCK))
}

/// The number of online CPUs (`/sys/devices/system/cpu/online`, a range list like `0-3,6`); at least 1.
pub fn online_cpus(files: &mut OpenFiles) -> u32 {
    files
        .read(Path::new("/sys/devices/system/cpu/online"))
        .ok()
        .flatten()
        .and_then(|t| count_cpu_list(&t))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get() as u32))
        .unwrap_or(1)
}

fn count_cpu_list(text: &str) -> Option<u32> {
    let mut n = 0;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<u32>().ok()?.checked_sub(a.parse::<u32>().ok()?)? + 1,
            None => {
                part.parse::<u32>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

/// The counters of every interface but `lo` in the network namespace of process `pid` (`/proc/<pid>/net/dev`).
pub fn net_dev(pid: i32) -> Result<BTreeMap<String, NetStats>, Error> {
    Ok(parse_net_dev(&read_file(&Path::new("/proc").join(pid.to_string()).join("net/dev"))?))
}

fn parse_net_dev(text: &str) -> BTreeMap<String, NetStats> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" || name.contains('|') {
                return None;
            }
            let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().ok()).collect::<Option<_>>()?;
            if f.len() < 12 {
                return None;
            }
            let n = NetStats {
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            };
            Some((name.to_string(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Dir, Hierarchy, Layout};
    use super::*;

    fn touch(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (name, content) in files {
            std::fs::write(dir.join(name), content).expect("write");
        }
    }

    /// A v1 container cgroup as the kernel shows it on a hybrid host (cpu and cpuacct apart, as this machine).
    fn v1_tree(root: &Path) -> Layout {
        let mk = |c: &str| Hierarchy { controllers: vec![c.to_string()], mount: root.join(c) };
        let leaf = |c: &str| root.join(c).join("berth/c1");
        touch(
            &leaf("cpuacct"),
            &[
                ("cpuacct.usage", "3000000000\n"),
                ("cpuacct.usage_percpu", "1000000000 2000000000 \n"),
                ("cpuacct.stat", "user 150\nsystem 50\n"),
            ],
        );
        touch(&leaf("cpu"), &[("cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 123456\n")]);
        touch(
            &leaf("memory"),
            &[
                ("memory.usage_in_bytes", "10485760\n"),
                ("memory.max_usage_in_bytes", "20971520\n"),
                ("memory.limit_in_bytes", "104857600\n"),
                ("memory.failcnt", "0\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
                (
                    "memory.stat",
                    "cache 4096\nrss 8192\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\nwriteback 0\n\
                     inactive_file 4096\nhierarchical_memory_limit 104857600\ntotal_cache 4096\n\
                     total_rss 8192\ntotal_inactive_file 2048\n",
                ),
            ],
        );
        touch(&leaf("pids"), &[("pids.current", "3\n"), ("pids.max", "64\n")]);
        touch(
            &leaf("blkio"),
            &[
                ("blkio.io_service_bytes_recursive", "Total 0\n"),
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
                ),
                ("blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n"),
            ],
        );
        Layout::V1 { hierarchies: ["cpu", "cpuacct", "memory", "pids", "blkio"].iter().map(|c| mk(c)).collect() }
    }

    #[test]
    fn v1_stats() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cg = Cgroup::open_in(&v1_tree(tmp.path()), "berth/c1").expect("open");
        let s = cg.stats().expect("stats");
        assert_eq!(s.cpu.total_usage, 3_000_000_000);
        assert_eq!(cg.oom_kills(), 2, "memory.oom_control's oom_kill");
        assert_eq!(s.cpu.percpu_usage, [1_000_000_000, 2_000_000_000]);
        assert_eq!(s.cpu.usage_in_usermode, 1_500_000_000);
        assert_eq!(s.cpu.usage_in_kernelmode, 500_000_000);
        assert_eq!(s.cpu.throttling, Throttling { periods: 10, throttled_periods: 3, throttled_time: 123456 });
        assert_eq!(s.memory.usage, 10 << 20);
        assert_eq!(s.memory.max_usage, Some(20 << 20));
        assert_eq!(s.memory.limit, 100 << 20);
        assert_eq!(s.memory.failcnt, Some(0));
        assert_eq!(s.memory.stats.get("cache"), Some(&4096));
        assert_eq!(s.memory.stats.get("total_inactive_file"), Some(&2048));
        assert_eq!(s.memory.stats.get("hierarchical_memory_limit"), Some(&(100 << 20)));
        // Keys Docker does not copy stay out.
        assert!(!s.memory.stats.contains_key("shmem") && !s.memory.stats.contains_key("dirty"));
        assert_eq!(s.pids, PidsStats { current: 3, limit: Some(64) });
        let e = |op: &str, value| BlkioEntry { major: 8, minor: 0, op: op.into(), value };
        assert_eq!(
            s.blkio.io_service_bytes_recursive,
            [e("Read", 4096), e("Write", 8192), e("Sync", 0), e("Async", 12288), e("Discard", 0), e("Total", 12288)]
        );
        assert_eq!(s.blkio.io_serviced_recursive, [e("Read", 1), e("Write", 2)]);
    }

    #[test]
    fn v1_missing_controllers_leave_zeros() {
        let tmp = tempfile::tempdir().expect("tempdir");
        touch(&tmp.path().join("memory/berth/c1"), &[("memory.usage_in_bytes", "5\n")]);
        let layout = Layout::V1 {
            hierarchies: vec![Hierarchy { controllers: vec!["memory".into()], mount: tmp.path().join("memory") }],
        };
        let s = Cgroup::open_in(&layout, "berth/c1").expect("open").stats().expect("stats");
        assert_eq!(s.memory.usage, 5);
        assert_eq!(s.memory.limit, u64::MAX);
        assert_eq!(s.cpu, CpuStats::default());
        assert_eq!(s.pids, PidsStats::default());
        assert!(s.blkio.io_service_bytes_recursive.is_empty());
        assert_eq!(Cgroup::open_in(&layout, "berth/c1").expect("open").oom_kills(), 0, "no oom_control: none counted");
    }

    /// A v2 container cgroup with the files of a 6.1 kernel.
    fn v2_cgroup(root: &Path, io: bool) -> Cgroup {
        let dir = root.join("berth/c1");
        touch(
            &dir,
            &[
                (
                    "cpu.stat",
                    "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\ncore_sched.force_idle_usec 0\n\
                     nr_periods 20\nnr_throttled 4\nthrottled_usec 7000\nnr_bursts 0\nburst_usec 0\n",
                ),
                ("memory.current", "8388608\n"),
                ("memory.max", "max\n"),
                (
                    "memory.stat",
                    "anon 4194304\nfile 2097152\nkernel 100\nkernel_stack 16384\nsock 0\nshmem 0\n\
                     inactive_anon 0\nactive_anon 4194304\ninactive_file 1048576\nactive_file 1048576\n\
                     pgfault 100\npgmajfault 1\n",
                ),
                ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n"),
                ("pids.current", "2\n"),
                ("pids.max", "max\n"),
            ],
        );
        if io {
            touch(
                &dir,
                &[(
                    "io.stat",
                    "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n\
                     259:1 rbytes=10 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
                )],
            );
        }
        Cgroup {
            path: "berth/c1".into(),
            version: Version::V2,
            dirs: vec![Dir { controllers: Vec::new(), path: dir, hierarchy: String::new() }],
        }
    }

    /// v2's notifier wakes when `memory.events` changes (a kill counted), and says when the cgroup is gone.
    #[test]
    fn v2_oom_notifier_wakes_on_memory_events() {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let tmp = tempfile::tempdir().expect("tempdir");
        let cg = v2_cgroup(tmp.path(), false);
        let n = cg.oom_notifier().expect("notifier");
        let ready = |n: &OomNotifier| {
            let mut fds = [PollFd::new(n.fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::ZERO).expect("poll") == 1
        };
        assert!(!ready(&n), "nothing happened yet");
        let events = cg.dir_of("memory").expect("dir").join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n").expect("write");
        assert!(ready(&n), "a change of memory.events wakes it");
        n.drain();
        assert!(!ready(&n), "drained");
        assert_eq!(cg.oom_kills(), 2);
        assert!(!n.gone());
        std::fs::remove_dir_all(cg.dir_of("memory").expect("dir")).expect("remove");
        assert!(n.gone(), "the cgroup is gone");
    }

    #[test]
    fn v2_stats() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cg = v2_cgroup(tmp.path(), true);
        let s = cg.stats().expect("stats");
        assert_eq!(s.cpu.total_usage, 2_500_000_000);
        assert!(s.cpu.percpu_usage.is_empty());
        assert_eq!(s.cpu.usage_in_usermode, 2_000_000_000);
        assert_eq!(s.cpu.usage_in_kernelmode, 500_000_000);
        assert_eq!(s.cpu.throttling, Throttling { periods: 20, throttled_periods: 4, throttled_time: 7_000_000 });
        assert_eq!(s.memory.usage, 8 << 20);
        assert_eq!(s.memory.limit, u64::MAX, "max: unlimited");
        assert_eq!(s.memory.max_usage, None, "v2 has no max usage");
        assert_eq!(s.memory.failcnt, Some(1), "the oom count");
        assert_eq!(cg.oom_kills(), 1, "memory.events' oom_kill");
        assert_eq!(s.memory.stats.get("anon"), Some(&(4 << 20)));
        assert_eq!(s.memory.stats.get("inactive_file"), Some(&(1 << 20)));
        assert!(!s.memory.stats.contains_key("kernel"), "not one of Docker's keys");
        assert_eq!(s.pids, PidsStats { current: 2, limit: None });
        let e = |major, minor, op: &str, value| BlkioEntry { major, minor, op: op.into(), value };
        assert_eq!(
            s.blkio.io_service_bytes_recursive,
            [e(8, 0, "read", 1024), e(8, 0, "write", 2048), e(259, 1, "read", 10), e(259, 1, "write", 0)]
        );
        assert!(s.blkio.io_serviced_recursive.is_empty());
        // Without the io controller there is no io.stat: no entries, no error.
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = v2_cgroup(tmp.path(), false).stats().expect("stats");
        assert!(s.blkio.io_service_bytes_recursive.is_empty());
    }

    #[test]
    fn open_files_read_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (small, big) = (tmp.path().join("small"), tmp.path().join("big"));
        std::fs::write(&small, "1\n").expect("write");
        let long = "x".repeat(10_000);
        std::fs::write(&big, &long).expect("write");
        let mut files = OpenFiles::default();
        assert_eq!(files.read(&small).expect("read").as_deref(), Some("1\n"));
        // The same descriptor, read from the start again (cgroupfs regenerates its content on every read).
        std::fs::write(&small, "22\n").expect("write");
        assert_eq!(files.read(&small).expect("read").as_deref(), Some("22\n"));
        assert_eq!(files.files.len(), 1);
        assert_eq!(files.read(&big).expect("read"), Some(long));
        assert_eq!(files.read(&tmp.path().join("none")).expect("missing"), None);
        // A stats sample through kept files equals a fresh one.
        let tmp = tempfile::tempdir().expect("tempdir");
        let cg = v2_cgroup(tmp.path(), true);
        let mut files = OpenFiles::default();
        assert_eq!(cg.stats_with(&mut files).expect("stats"), cg.stats().expect("stats"));
        assert_eq!(cg.stats_with(&mut files).expect("stats"), cg.stats().expect("stats"));
        // /proc/stat through the same cache.
        assert!(system_cpu_usage(&mut files).expect("/proc/stat") > 0);
        assert!(online_cpus(&mut files) >= 1);
    }

    #[test]
    fn proc_stat_as_docker() {
        let text = "cpu  100 20 30 1000 5 1 2 7 0 0\ncpu0 50 10 15 500 2 1 1 3 0 0\nintr 1\n";
        // user+nice+system+idle+iowait+irq+softirq = 1158 ticks; steal (7) is not counted, as dockerd.
        assert_eq!(parse_proc_stat(text), Some(1158 * 10_000_000));
        assert_eq!(parse_proc_stat("cpu 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("intr 1\n"), None);
        assert_eq!(count_cpu_list("0-3\n"), Some(4));
        assert_eq!(count_cpu_list("0-1,4,6-7\n"), Some(5));
        assert_eq!(count_cpu_list("0\n"), Some(1));
        assert_eq!(count_cpu_list("\n"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn net_dev_skips_lo() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      726       9    3    4    0     0       0          0
";
        let m = parse_net_dev(text);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["eth0"]);
        assert_eq!(
            m["eth0"],
            NetStats {
                rx_bytes: 1296,
                rx_packets: 16,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 726,
                tx_packets: 9,
                tx_errors: 3,
                tx_dropped: 4
            }
        );
    }
}
