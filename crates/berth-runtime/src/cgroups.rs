//! Cgroups: a container's cgroup from creation to removal. Creates it (with its resource limits: memory, cpu, cpuset,
//! pids, device rules), adds processes, lists them, freezes and thaws them, reads their usage (`stats`, for
//! `docker stats`), and removes the cgroup.
//!
//! Pure v2 hosts (`/sys/fs/cgroup/cgroup.controllers` exists) use the unified hierarchy. Every other host uses its v1
//! hierarchies only, found in the mount table: the cgroup2 mount of a hybrid host (`/sys/fs/cgroup/unified`) is
//! ignored, as runc does (it may even hold controllers, hugetlb on some boots, that v1 then lacks).
//!
//! All file system access goes through a [`Layout`] (where the hierarchies are), detected once for the host; tests
//! build one over a temporary directory tree that mimics cgroupfs.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources};

mod stats;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, MemoryStats, NetStats, OomNotifier, OpenFiles, PidsStats, Stats, Throttling,
    net_dev, online_cpus, system_cpu_usage,
};

/// Where the host mounts its cgroup hierarchies (v2: the unified hierarchy itself).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The controllers of cgroup v1, as they appear in mount options.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// The v2 controllers enabled for a container's cgroup (when the parent offers them); io for `docker stats`' block I/O.
const V2_CONTROLLERS: &[&str] = &["cpu", "memory", "pids", "io"];

/// What the host's cgroups can limit beyond the basics, as Docker's `sysinfo` finds it (for its warnings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// A swap limit (v1: swap accounting's `memory.memsw.limit_in_bytes`; v2: the memory controller).
    pub swap: bool,
    /// A block I/O weight (a proportional I/O scheduler's weight file; v2: the io controller).
    pub blkio_weight: bool,
}

/// The host's [`Support`].
pub fn support() -> Support {
    match host_layout() {
        Ok(l) => support_in(l),
        Err(_) => Support { swap: false, blkio_weight: false },
    }
}

fn support_in(layout: &Layout) -> Support {
    match layout {
        Layout::V1 { hierarchies } => {
            let root = |c: &str| hierarchies.iter().find(|h| h.controllers.iter().any(|x| x == c)).map(|h| &h.mount);
            Support {
                swap: root("memory").is_some_and(|m| m.join(MEMSW_LIMIT).exists()),
                blkio_weight: root("blkio")
                    .is_some_and(|m| m.join("blkio.weight").exists() || m.join("blkio.bfq.weight").exists()),
            }
        }
        Layout::V2 { root } => {
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            Support { swap: has("memory"), blkio_weight: has("io") }
        }
    }
}

/// A v1 block I/O weight (10 to 1000) as a v2 `io.weight` (1 to 10000), as runc converts it.
fn blkio_weight_to_v2(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// v1's `memory.memsw.limit_in_bytes`, present only with swap accounting.
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

/// How long freezing or thawing may take before giving up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often rmdir is retried while the cgroup is busy (processes that just exited are still being released; on a
/// loaded machine that can take a few seconds): about 3 s in all.
const RMDIR_ATTEMPTS: u32 = 35;

/// Errors of cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mount table could not be read. (The cause is in the message, so not also a `source`: the shim prints
    /// error chains.)
    #[error("read the mount table: {0}")]
    Mounts(MountTableError),
    /// A v1 host without a single mounted v1 hierarchy.
    #[error("no cgroup v1 hierarchy is mounted")]
    NoHierarchy,
    /// The cgroup path is empty, or not a plain relative path.
    #[error("invalid cgroup path {0:?}")]
    InvalidPath(String),
    /// The cgroup does not exist in any hierarchy.
    #[error("cgroup {0} does not exist")]
    NotFound(String),
    /// The cgroup needs a controller that is not mounted.
    #[error("cgroup {path}: the {controller} controller is not mounted")]
    NoController { path: String, controller: &'static str },
    /// A resource limit is invalid or cannot be applied on this host.
    #[error("cgroup {path}: {reason}")]
    Resource { path: String, reason: String },
    /// A cgroup directory could not be created.
    #[error("create {}: {source}", .path.display())]
    Create { path: PathBuf, source: std::io::Error },
    /// A cgroup file could not be read.
    #[error("read {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A value could not be written to a cgroup file.
    #[error("write {value:?} to {}: {source}", .path.display())]
    Write { path: PathBuf, value: String, source: std::io::Error },
    /// A cgroup directory could not be removed.
    #[error("remove {}: {source}", .path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    /// A cgroup could not be delegated (its owner changed).
    #[error("chown {}: {source}", .path.display())]
    Chown { path: PathBuf, source: std::io::Error },
    /// Freezing or thawing did not complete in time.
    #[error("cgroup {path}: timed out waiting for the {state} state")]
    Timeout { path: String, state: &'static str },
}

/// Neither `/proc/self/mountinfo` nor `/proc/mounts` could be read. Cloneable, since the host's layout (or why it
/// is unknown) is detected once and kept.
#[derive(Debug, Clone, thiserror::Error)]
#[error("/proc/self/mountinfo: {mountinfo}; /proc/mounts: {mounts}")]
pub struct MountTableError {
    mountinfo: Arc<std::io::Error>,
    mounts: Arc<std::io::Error>,
}

/// Why a memory+swap limit cannot be applied (the same words on v1 and v2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SwapError {
    #[error("a swap limit needs a memory limit")]
    NoMemoryLimit,
    #[error("the memory+swap limit ({swap}) is lower than the memory limit ({limit})")]
    BelowLimit { swap: i64, limit: i64 },
}

// ---- Layout --------------------------------------------------------------------------------------------------------

/// Where the cgroup hierarchies are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// v1: one mount per hierarchy, each with one or more controllers (`cpu,cpuacct`).
    V1 { hierarchies: Vec<Hierarchy> },
    /// v2: the unified hierarchy's mount.
    V2 { root: PathBuf },
}

/// A mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    controllers: Vec<String>,
    mount: PathBuf,
}

/// The v1 controllers named in a comma-separated option list (`rw,nosuid,cpu,cpuacct`).
fn controllers_in(options: &str) -> Vec<String> {
    options.split(',').filter(|o| V1_CONTROLLERS.contains(o)).map(str::to_string).collect()
}

/// Undoes the octal escapes of the mount table (`\040` for a space).
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The v1 hierarchies of `/proc/self/mountinfo`. cgroup2 mounts and named hierarchies without controllers
/// (`name=systemd`) are skipped; a hierarchy mounted twice is listed once.
fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().skip(6).position(|f| *f == "-").map(|p| p + 6) else { continue };
        let (Some(fstype), Some(super_options)) = (fields.get(sep + 1), fields.get(sep + 3)) else { continue };
        if *fstype != "cgroup" {
            continue;
        }
        let controllers = controllers_in(super_options);
        if controllers.is_empty() || seen.contains(&fields[2]) {
            continue;
        }
        seen.push(fields[2]);
        out.push(Hierarchy { controllers, mount: PathBuf::from(unescape_mount_path(fields[4])) });
    }
    out
}

/// The v1 hierarchies of `/proc/mounts` (the fallback when mountinfo cannot be read).
fn parse_proc_mounts(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        // source mount-point fstype options dump pass
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 4 || fields[2] != "cgroup" {
            continue;
        }
        let controllers = controllers_in(fields[3]);
        if controllers.is_empty() || out.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        out.push(Hierarchy { controllers, mount: PathBuf::from(unescape_mount_path(fields[1])) });
    }
    out
}

fn detect_host_layout() -> Result<Layout, MountTableError> {
    if is_unified() {
        return Ok(Layout::V2 { root: PathBuf::from(CGROUP_ROOT) });
    }
    let hierarchies = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => parse_mountinfo(&text),
        Err(e) => match std::fs::read_to_string("/proc/mounts") {
            Ok(text) => parse_proc_mounts(&text),
            Err(e2) => return Err(MountTableError { mountinfo: Arc::new(e), mounts: Arc::new(e2) }),
        },
    };
    Ok(Layout::V1 { hierarchies })
}

/// The host's layout, detected at first use.
fn host_layout() -> Result<&'static Layout, Error> {
    static LAYOUT: OnceLock<Result<Layout, MountTableError>> = OnceLock::new();
    LAYOUT.get_or_init(detect_host_layout).as_ref().map_err(|e| Error::Mounts(e.clone()))
}

/// Whether the host uses the unified (v2) hierarchy only: `/sys/fs/cgroup/cgroup.controllers` exists. Hybrid hosts
/// (v1 controllers plus a cgroup2 mount at `/sys/fs/cgroup/unified`) count as v1. Detected at first use.
pub fn is_unified() -> bool {
    static UNIFIED: OnceLock<bool> = OnceLock::new();
    *UNIFIED.get_or_init(|| Path::new(CGROUP_ROOT).join("cgroup.controllers").exists())
}

// ---- File helpers --------------------------------------------------------------------------------------------------

fn read_file(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}

/// Writes `value` to an existing cgroup file, in one write (cgroupfs takes one value per write).
fn write_file(path: &Path, value: &str) -> Result<(), Error> {
    let err = |source| Error::Write { path: path.to_path_buf(), value: value.to_string(), source };
    let mut f = OpenOptions::new().write(true).truncate(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// Creates `dir` unless it exists; true when this call created it.
fn make_dir(dir: &Path) -> Result<bool, Error> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(Error::Create { path: dir.to_path_buf(), source }),
    }
}

/// Removes cgroup directory `dir` and the child cgroups a container may have made in it. Only `rmdir` is used, which
/// cgroupfs allows on cgroups without processes, so nothing but cgroups can go. A missing directory is fine; a busy
/// one is retried for a moment, since the processes of a container that just exited take time to be released.
fn remove_cgroup_dir(dir: &Path) -> Result<(), Error> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            // file_type does not follow symbolic links: only real subdirectories are visited.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_dir(&entry.path())?;
            }
        }
    }
    let mut delay = Duration::from_millis(10);
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => return Err(Error::Remove { path: dir.to_path_buf(), source }),
        }
    }
}

/// Polls `done` with short, growing sleeps until it is true or `FREEZE_TIMEOUT` passed.
fn poll_until(mut done: impl FnMut() -> Result<bool, Error>) -> Result<bool, Error> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut delay = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// `path` as a relative path of plain components (`berth/<id>`; a leading `/` is dropped).
fn relative_path(path: &str) -> Result<PathBuf, Error> {
    let trimmed = path.trim_start_matches('/');
    let rel = Path::new(trimmed);
    if trimmed.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::InvalidPath(path.to_string()));
    }
    // Interior `.` components are dropped by `components`: the path is rebuilt from them, normalised.
    Ok(rel.components().collect())
}

// ---- Resource values -----------------------------------------------------------------------------------------------

/// `pids.max`: a positive limit, else (`0`, `-1`) no limit.
fn pids_max(limit: i64) -> String {
    if limit > 0 { limit.to_string() } else { "max".to_string() }
}

/// cgroup v2's `cpu.weight` (1..=10000) for v1 `cpu.shares` (2..=262144), runc's linear mapping; 0 means unset.
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `cpu.max` (`$QUOTA $PERIOD`, quota `max` when unlimited) when a quota or a period is set.
fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let q = quota.filter(|q| *q > 0).map_or_else(|| "max".to_string(), |q| q.to_string());
    Some(format!("{q} {}", period.unwrap_or(100_000)))
}

/// v2's `memory.swap.max` (swap alone) for OCI's `swap` (memory + swap, as v1's memsw) and `limit`, as runc converts
/// them: `None` leaves it unset, -1 is unlimited, and a swap equal to the limit is 0 (no swap at all).
fn swap_to_v2(swap: i64, limit: i64) -> Result<Option<i64>, SwapError> {
    if limit == -1 && swap == 0 {
        // As v1: unlimited memory without a swap setting means unlimited swap too.
        return Ok(Some(-1));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(-1)),
        _ => {}
    }
    if limit <= 0 {
        return Err(SwapError::NoMemoryLimit);
    }
    if swap < limit {
        return Err(SwapError::BelowLimit { swap, limit });
    }
    Ok(Some(swap - limit))
}

/// A byte limit as cgroup v2 writes it.
fn v2_bytes(value: i64) -> String {
    if value < 0 { "max".to_string() } else { value.to_string() }
}

/// One device rule in v1 `devices.allow` / `devices.deny` syntax: `c 1:3 rwm`, `*` for a wildcard number, `a` for
/// every device. `None` for FIFOs, which the device controller does not govern.
fn device_rule(rule: &LinuxDeviceCgroup) -> Option<String> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => return Some("a".to_string()),
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => return None,
    };
    let number = |n: Option<i64>| n.filter(|n| *n >= 0).map_or_else(|| "*".to_string(), |n| n.to_string());
    let access = rule.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
    Some(format!("{typ} {}:{} {access}", number(rule.major()), number(rule.minor())))
}

/// The writes that install `rules` in a v1 devices cgroup, in order: deny everything, then each rule as given.
fn device_writes(rules: &[LinuxDeviceCgroup]) -> Vec<(&'static str, String)> {
    let mut writes = vec![("devices.deny", "a".to_string())];
    for rule in rules {
        if let Some(line) = device_rule(rule) {
            writes.push((if rule.allow() { "devices.allow" } else { "devices.deny" }, line));
        }
    }
    writes
}

// ---- Cgroup --------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The cgroup's directory in one hierarchy (v2: the only one, with no controller list).
#[derive(Debug)]
struct Dir {
    controllers: Vec<String>,
    path: PathBuf,
    /// v1: the name of the hierarchy's mount point (`memory`, `cpu,cpuacct`).
    hierarchy: String,
}

/// The last component of a hierarchy's mount point.
fn hierarchy_name(h: &Hierarchy) -> String {
    h.mount.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What a container sees at its cgroup mount (`/sys/fs/cgroup`), as runc mounts it for Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupFs {
    /// v2: a `cgroup2` mount (in the container's cgroup namespace it is rooted at the container's own cgroup).
    Unified,
    /// v1: a tmpfs holding, for each hierarchy, the container's own directory bound on the hierarchy's name
    /// (`memory`, `cpu,cpuacct`), and a symbolic link per controller of a joined hierarchy (`cpu` → `cpu,cpuacct`).
    V1 { binds: Vec<(String, PathBuf)>, links: Vec<(String, String)> },
}

/// The v1 [`CgroupFs`] of a cgroup's directories, given as (hierarchy name, directory).
fn v1_fs(dirs: impl Iterator<Item = (String, PathBuf)>) -> CgroupFs {
    let mut binds: Vec<(String, PathBuf)> = Vec::new();
    let mut links = Vec::new();
    for (name, dir) in dirs {
        if name.is_empty() || name.contains('/') || binds.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if name.contains(',') {
            links.extend(name.split(',').filter(|c| !c.is_empty()).map(|c| (c.to_string(), name.clone())));
        }
        binds.push((name, dir));
    }
    // A link never stands where a hierarchy of that name is bound.
    links.retain(|(l, _)| !binds.iter().any(|(n, _)| n == l));
    CgroupFs::V1 { binds, links }
}

/// The way into a v1 cgroup for the calling process itself (see [`Cgroup::self_entry`]).
#[derive(Debug)]
pub struct SelfEntry {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl SelfEntry {
    /// Moves the calling thread (the whole process, when it has no other thread) into the cgroup, in every
    /// hierarchy.
    pub fn enter(&self) -> Result<(), Error> {
        for (path, f) in &self.files {
            let mut w: &std::fs::File = f;
            w.write_all(b"0").map_err(|source| Error::Write { path: path.clone(), value: "0".into(), source })?;
        }
        Ok(())
    }
}

/// A container's cgroup: its directory in every v1 hierarchy, or in the unified one.
#[derive(Debug)]
pub struct Cgroup {
    /// The path relative to the hierarchies' roots, for messages.
    path: String,
    version: Version,
    dirs: Vec<Dir>,
}

impl Cgroup {
    /// Creates (or reuses) cgroup `path` (relative to the cgroup root, like `berth/<id>`) and applies `resources`.
    /// v1: a directory in every mounted hierarchy; v2: `/sys/fs/cgroup/<path>`, with the cpu, memory and pids
    /// controllers enabled on the way down. When anything fails, the directories this call created are removed.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup, Error> {
        Cgroup::create_in(host_layout()?, path, resources)
    }

    /// Opens the existing cgroup `path`; fails when it exists in no hierarchy.
    pub fn open(path: &str) -> Result<Cgroup, Error> {
        Cgroup::open_in(host_layout()?, path)
    }

    /// Changes the limits of the existing cgroup `path` in place (`docker update` of a running container): what
    /// `resources` sets is written, what it leaves out stays as it is. v2: a cpuset needs its controller enabled on
    /// the way down first (a container created without one has not).
    pub fn update(path: &str, resources: &LinuxResources) -> Result<Cgroup, Error> {
        Cgroup::update_in(host_layout()?, path, resources)
    }

    fn update_in(layout: &Layout, path: &str, r: &LinuxResources) -> Result<Cgroup, Error> {
        let cg = Cgroup::open_in(layout, path)?;
        match layout {
            Layout::V1 { .. } => cg.apply_v1(r)?,
            Layout::V2 { root } => {
                if r.cpu().as_ref().is_some_and(|c| c.cpus().is_some() || c.mems().is_some()) {
                    let mut dir = root.clone();
                    for c in relative_path(path)?.components() {
                        enable_controllers(&dir, &["cpuset"])?;
                        dir.push(c);
                    }
                }
                cg.apply_v2(r)?
            }
        }
        Ok(cg)
    }

    fn create_in(layout: &Layout, path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup, Error> {
        let rel = relative_path(path)?;
        let mut cg = Cgroup { path: rel.display().to_string(), version: Version::V1, dirs: Vec::new() };
        let mut created = Vec::new();
        let result = cg.make_dirs(layout, &rel, resources, &mut created).and_then(|()| match resources {
            Some(r) if cg.version == Version::V1 => cg.apply_v1(r),
            Some(r) => cg.apply_v2(r),
            None => Ok(()),
        });
        match result {
            Ok(()) => Ok(cg),
            Err(e) => {
                // Only the leaves this call made go: intermediate directories (`berth/`) are shared with other
                // containers, and reused leaves belong to whoever made them.
                for dir in created.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// Creates the directories of the cgroup in every hierarchy, recording the leaves it created in `created`.
    fn make_dirs(
        &mut self,
        layout: &Layout,
        rel: &Path,
        resources: Option<&LinuxResources>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        let components: Vec<_> = rel.components().collect();
        match layout {
            Layout::V1 { hierarchies } => {
                if hierarchies.is_empty() {
                    return Err(Error::NoHierarchy);
                }
                for h in hierarchies {
                    let cpuset = h.controllers.iter().any(|c| c == "cpuset");
                    let mut dir = h.mount.clone();
                    for (i, c) in components.iter().enumerate() {
                        let parent = dir.clone();
                        dir.push(c);
                        if make_dir(&dir)? && i + 1 == components.len() {
                            created.push(dir.clone());
                        }
                        if cpuset {
                            // A new cpuset starts empty and takes no process: inherit the parent's CPUs and nodes.
                            copy_cpuset_from_parent(&parent, &dir)?;
                        }
                    }
                    self.dirs.push(Dir { controllers: h.controllers.clone(), path: dir, hierarchy: hierarchy_name(h) });
                }
                self.version = Version::V1;
            }
            Layout::V2 { root } => {
                let mut wanted: Vec<&str> = V2_CONTROLLERS.to_vec();
                let cpu = resources.and_then(|r| r.cpu().as_ref());
                if cpu.is_some_and(|c| c.cpus().is_some() || c.mems().is_some()) {
                    wanted.push("cpuset");
                }
                let mut dir = root.clone();
                for (i, c) in components.iter().enumerate() {
                    // Controllers are enabled for children in the parent's cgroup.subtree_control.
                    enable_controllers(&dir, &wanted)?;
                    dir.push(c);
                    if make_dir(&dir)? && i + 1 == components.len() {
                        created.push(dir.clone());
                    }
                }
                self.dirs.push(Dir { controllers: Vec::new(), path: dir, hierarchy: String::new() });
                self.version = Version::V2;
            }
        }
        Ok(())
    }

    fn open_in(layout: &Layout, path: &str) -> Result<Cgroup, Error> {
        let rel = relative_path(path)?;
        let (version, dirs) = match layout {
            Layout::V1 { hierarchies } => {
                let dirs: Vec<Dir> = hierarchies
                    .iter()
                    .map(|h| Dir {
                        controllers: h.controllers.clone(),
                        path: h.mount.join(&rel),
                        hierarchy: hierarchy_name(h),
                    })
                    .filter(|d| d.path.is_dir())
                    .collect();
                (Version::V1, dirs)
            }
            Layout::V2 { root } => {
                let dir = root.join(&rel);
                let dirs = if dir.is_dir() {
                    vec![Dir { controllers: Vec::new(), path: dir, hierarchy: String::new() }]
                } else {
                    Vec::new()
                };
                (Version::V2, dirs)
            }
        };
        if dirs.is_empty() {
            return Err(Error::NotFound(rel.display().to_string()));
        }
        Ok(Cgroup { path: rel.display().to_string(), version, dirs })
    }

    /// What the container's `/sys/fs/cgroup` shows of this cgroup (see [`CgroupFs`]).
    pub fn fs(&self) -> CgroupFs {
        match self.version {
            Version::V2 => CgroupFs::Unified,
            Version::V1 => v1_fs(self.dirs.iter().map(|d| (d.hierarchy.clone(), d.path.clone()))),
        }
    }

    /// The directory of the hierarchy that has `controller` (v2: the cgroup's directory).
    fn dir_of(&self, controller: &'static str) -> Result<&Path, Error> {
        let dir = match self.version {
            Version::V2 => self.dirs.first(),
            Version::V1 => self.dirs.iter().find(|d| d.controllers.iter().any(|c| c == controller)),
        };
        dir.map(|d| d.path.as_path()).ok_or_else(|| Error::NoController { path: self.path.clone(), controller })
    }

    fn resource_error(&self, reason: impl Into<String>) -> Error {
        Error::Resource { path: self.path.clone(), reason: reason.into() }
    }

    fn warn_unapplied(&self, r: &LinuxResources) {
        let unapplied = [
            // Only the weight is applied (`set_blkio_weight`).
            (
                "blockIO",
                r.block_io().as_ref().is_some_and(|b| {
                    b.weight().is_none()
                        || b.weight_device().is_some()
                        || b.throttle_read_bps_device().is_some()
                        || b.throttle_write_bps_device().is_some()
                        || b.throttle_read_iops_device().is_some()
                        || b.throttle_write_iops_device().is_some()
                }),
            ),
            ("hugepageLimits", r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())),
            ("network", r.network().is_some()),
            ("rdma", r.rdma().as_ref().is_some_and(|m| !m.is_empty())),
        ];
        for (name, set) in unapplied {
            if set {
                tracing::warn!("cgroup {}: {name} limits are not supported, ignored", self.path);
            }
        }
    }

    // ---- v1 ----

    fn apply_v1(&self, r: &LinuxResources) -> Result<(), Error> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(self.resource_error("unified resources need cgroup v2"));
        }
        if let Some(m) = r.memory() {
            self.set_memory_v1(m)?;
        }
        if let Some(c) = r.cpu() {
            self.set_cpu_v1(c)?;
        }
        if let Some(p) = r.pids() {
            write_file(&self.dir_of("pids")?.join("pids.max"), &pids_max(p.limit()))?;
        }
        self.set_blkio_weight(r)?;
        if let Some(rules) = r.devices() {
            let dir = self.dir_of("devices")?;
            for (file, line) in device_writes(rules) {
                write_file(&dir.join(file), &line)?;
            }
        }
        self.warn_unapplied(r);
        Ok(())
    }

    fn set_memory_v1(&self, m: &LinuxMemory) -> Result<(), Error> {
        let limit = m.limit().filter(|l| *l != 0);
        let mut swap = m.swap().filter(|s| *s != 0);
        let reservation = m.reservation().filter(|r| *r != 0);
        let oom = m.disable_oom_killer() == Some(true);
        if limit.is_none() && swap.is_none() && reservation.is_none() && m.swappiness().is_none() && !oom {
            return Ok(());
        }
        let dir = self.dir_of("memory")?;
        let limit_file = dir.join("memory.limit_in_bytes");
        let memsw_file = dir.join(MEMSW_LIMIT);
        let has_memsw = memsw_file.exists();
        // As runc: an unlimited memory without a swap setting means unlimited swap too.
        if limit == Some(-1) && swap.is_none() && has_memsw {
            swap = Some(-1);
        }
        if let (Some(l), Some(s)) = (limit, swap)
            && l > 0
            && s > 0
            && s < l
        {
            return Err(self.resource_error(SwapError::BelowLimit { swap: s, limit: l }.to_string()));
        }
        if swap.is_some() && !has_memsw {
            tracing::warn!("cgroup {}: the kernel has no swap accounting, swap limit ignored", self.path);
            swap = None;
        }
        match (limit, swap) {
            (Some(l), Some(s)) => {
                // memsw must never be below the memory limit: raise memsw first when it grows or becomes unlimited.
                let current = read_file(&limit_file)?.trim().parse::<u64>().unwrap_or(u64::MAX);
                if s == -1 || u64::try_from(s).is_ok_and(|s| current < s) {
                    write_file(&memsw_file, &s.to_string())?;
                    write_file(&limit_file, &l.to_string())?;
                } else {
                    write_file(&limit_file, &l.to_string())?;
                    write_file(&memsw_file, &s.to_string())?;
                }
            }
            (Some(l), None) => write_file(&limit_file, &l.to_string())?,
            (None, Some(s)) => write_file(&memsw_file, &s.to_string())?,
            (None, None) => {}
        }
        if let Some(r) = reservation {
            write_file(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(self.resource_error(format!("invalid memory swappiness {s}: it must be 0 to 100")));
            }
            write_file(&dir.join("memory.swappiness"), &s.to_string())?;
        }
        if oom {
            write_file(&dir.join("memory.oom_control"), "1")?;
        }
        Ok(())
    }

    fn set_cpu_v1(&self, c: &LinuxCpu) -> Result<(), Error> {
        let shares = c.shares().filter(|s| *s != 0);
        let period = c.period().filter(|p| *p != 0);
        let quota = c.quota().filter(|q| *q != 0);
        let rt_period = c.realtime_period().filter(|p| *p != 0);
        let rt_runtime = c.realtime_runtime().filter(|r| *r != 0);
        if shares.is_some() || period.is_some() || quota.is_some() || rt_period.is_some() || rt_runtime.is_some() {
            let dir = self.dir_of("cpu")?;
            if let Some(s) = shares {
                write_file(&dir.join("cpu.shares"), &s.to_string())?;
            }
            // The period first: the kernel checks the quota against it.
            if let Some(p) = period {
                write_file(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = quota {
                write_file(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            if let Some(p) = rt_period {
                write_file(&dir.join("cpu.rt_period_us"), &p.to_string())?;
            }
            if let Some(r) = rt_runtime {
                write_file(&dir.join("cpu.rt_runtime_us"), &r.to_string())?;
            }
        }
        self.set_cpuset(c)
    }

    /// The block I/O weight (10 to 1000): v1 `blkio.weight` (CFQ) or `blkio.bfq.weight` (BFQ); v2 `io.bfq.weight`
    /// or, converted as runc does, `io.weight`. Without any of them (no proportional I/O scheduler) it is skipped
    /// with a warning; the daemon says so to the user before (Docker's "Weight discarded").
    fn set_blkio_weight(&self, r: &LinuxResources) -> Result<(), Error> {
        let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w != 0) else { return Ok(()) };
        let Ok(dir) = self.dir_of(if self.version == Version::V2 { "io" } else { "blkio" }) else {
            tracing::warn!("cgroup {}: no blkio hierarchy, block I/O weight ignored", self.path);
            return Ok(());
        };
        let candidates: [(&str, u64); 2] = match self.version {
            Version::V1 => [("blkio.weight", u64::from(w)), ("blkio.bfq.weight", u64::from(w))],
            Version::V2 => [("io.bfq.weight", u64::from(w)), ("io.weight", blkio_weight_to_v2(w))],
        };
        match candidates.iter().find(|(f, _)| dir.join(f).exists()) {
            Some((file, value)) => write_file(&dir.join(file), &value.to_string()),
            None => {
                tracing::warn!(
                    "cgroup {}: no block I/O weight file (no proportional I/O scheduler), ignored",
                    self.path
                );
                Ok(())
            }
        }
    }

    /// `cpuset.cpus` / `cpuset.mems` (both versions).
    fn set_cpuset(&self, c: &LinuxCpu) -> Result<(), Error> {
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_none() && mems.is_none() {
            return Ok(());
        }
        let dir = self.dir_of("cpuset")?;
        if let Some(cpus) = cpus {
            write_file(&dir.join("cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = mems {
            write_file(&dir.join("cpuset.mems"), mems)?;
        }
        Ok(())
    }

    // ---- v2 ----

    fn apply_v2(&self, r: &LinuxResources) -> Result<(), Error> {
        let dir = self.dir_of("memory")?;
        if let Some(m) = r.memory() {
            let limit = m.limit().unwrap_or(0);
            if limit != 0 {
                write_file(&dir.join("memory.max"), &v2_bytes(limit))?;
            }
            if let Some(swap) =
                swap_to_v2(m.swap().unwrap_or(0), limit).map_err(|e| self.resource_error(e.to_string()))?
            {
                let file = dir.join("memory.swap.max");
                if file.exists() {
                    write_file(&file, &v2_bytes(swap))?;
                } else {
                    tracing::warn!("cgroup {}: the kernel has no swap accounting, swap limit ignored", self.path);
                }
            }
            if let Some(low) = m.reservation().filter(|r| *r != 0) {
                write_file(&dir.join("memory.low"), &v2_bytes(low))?;
            }
            if m.swappiness().is_some() || m.disable_oom_killer() == Some(true) {
                tracing::warn!(
                    "cgroup {}: swappiness and disableOOMKiller have no cgroup v2 equivalent, ignored",
                    self.path
                );
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(weight) = c.shares().map(shares_to_weight).filter(|w| *w != 0) {
                write_file(&dir.join("cpu.weight"), &weight.to_string())?;
            }
            if let Some(max) = cpu_max(c.quota(), c.period()) {
                write_file(&dir.join("cpu.max"), &max)?;
            }
            if let Some(idle) = c.idle() {
                write_file(&dir.join("cpu.idle"), &idle.to_string())?;
            }
            self.set_cpuset(c)?;
        }
        if let Some(p) = r.pids() {
            write_file(&dir.join("pids.max"), &pids_max(p.limit()))?;
        }
        self.set_blkio_weight(r)?;
        // Device rules: cgroup v2 has no devices files; enforcing them takes an eBPF program attached to the
        // cgroup (BPF_CGROUP_DEVICE), which Berth does not do yet. They are ignored here: the container still sees
        // only the device nodes its /dev was given.
        if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            tracing::debug!("cgroup {}: device rules are not enforced on cgroup v2", self.path);
        }
        for (key, value) in r.unified().iter().flatten() {
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                return Err(self.resource_error(format!("invalid unified resource {key:?}")));
            }
            write_file(&dir.join(key), value)?;
        }
        self.warn_unapplied(r);
        Ok(())
    }

    /// cgroup v2: delegates the cgroup to `uid`:`gid` (a container's root in its user namespace), as systemd
    /// delegates: the directory and its `cgroup.procs`, `cgroup.threads` and `cgroup.subtree_control`. Nothing on v1.
    pub fn delegate(&self, uid: u32, gid: u32) -> Result<(), Error> {
        if self.version != Version::V2 {
            return Ok(());
        }
        for d in &self.dirs {
            let files = ["", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"];
            for p in files.iter().map(|f| if f.is_empty() { d.path.clone() } else { d.path.join(f) }) {
                match std::os::unix::fs::chown(&p, Some(uid), Some(gid)) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    r => r.map_err(|source| Error::Chown { path: p.clone(), source })?,
                }
            }
        }
        Ok(())
    }

    // ---- Processes ----

    /// cgroup v1: descriptors of the cgroup's `tasks` file in every hierarchy, through which a single-threaded
    /// process moves itself in ([`SelfEntry::enter`]). Writing `0` there moves the calling thread, for which the kernel
    /// takes no global lock, where a move by PID (`cgroup.procs`, [`Cgroup::add_pid`]) takes the threadgroup
    /// semaphore for writing, which waits out an RCU grace period (about 10 ms) when no other move came just before.
    /// `None` on v2, where `cgroup.procs` is the only way in for a process and a clone straight into the cgroup is
    /// the fast one. Opened by the caller (the files are checked against the opener's credentials), kept open across
    /// a `clone` (not across `execve`).
    pub fn self_entry(&self) -> Result<Option<SelfEntry>, Error> {
        if self.version != Version::V1 {
            return Ok(None);
        }
        let files = self
            .dirs
            .iter()
            .map(|d| {
                let path = d.path.join("tasks");
                match OpenOptions::new().write(true).open(&path) {
                    Ok(f) => Ok((path, f)),
                    Err(source) => Err(Error::Write { path, value: "0".into(), source }),
                }
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Some(SelfEntry { files }))
    }

    /// cgroup v2: the cgroup's directory, for a child to be born in (`sys::clone_fork_into`), which costs no RCU
    /// grace period where a move by PID does. `None` on v1 (see [`Cgroup::self_entry`]).
    pub fn clone_target(&self) -> Result<Option<std::os::fd::OwnedFd>, Error> {
        let Some(d) = self.dirs.first().filter(|_| self.version == Version::V2) else { return Ok(None) };
        use std::os::unix::fs::OpenOptionsExt;
        match OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(&d.path) {
            Ok(f) => Ok(Some(f.into())),
            Err(source) => Err(Error::Read { path: d.path.clone(), source }),
        }
    }

    /// Moves process `pid` into the cgroup, in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        let pid = pid.to_string();
        for d in &self.dirs {
            write_file(&d.path.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    /// The PIDs (in the caller's PID namespace) of the processes in the cgroup. v1 reads the pids, freezer or memory
    /// hierarchy, whichever is mounted.
    pub fn procs(&self) -> Result<Vec<i32>, Error> {
        let dir = match self.version {
            Version::V2 => self.dirs.first(),
            Version::V1 => ["pids", "freezer", "memory"]
                .iter()
                .find_map(|c| self.dirs.iter().find(|d| d.controllers.iter().any(|dc| dc == c)))
                .or(self.dirs.first()),
        }
        .ok_or_else(|| Error::NotFound(self.path.clone()))?;
        let file = dir.path.join("cgroup.procs");
        let text = read_file(&file)?;
        text.split_whitespace()
            .map(|p| {
                p.parse().map_err(|_| Error::Read {
                    path: file.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("invalid pid {p:?}")),
                })
            })
            .collect()
    }

    /// Freezes every process of the cgroup and waits (a few seconds at most) until they are.
    pub fn freeze(&self) -> Result<(), Error> {
        match self.version {
            Version::V1 => self.set_freezer_state_v1("FROZEN"),
            Version::V2 => self.set_frozen_v2(true),
        }
    }

    /// Thaws the cgroup's processes and waits until they run again.
    pub fn thaw(&self) -> Result<(), Error> {
        match self.version {
            Version::V1 => self.set_freezer_state_v1("THAWED"),
            Version::V2 => self.set_frozen_v2(false),
        }
    }

    /// Whether the cgroup is frozen (or freezing): v1's `freezer.state`, v2's `cgroup.freeze`. False without a freezer.
    pub fn is_frozen(&self) -> bool {
        match self.version {
            Version::V1 => self
                .dir_of("freezer")
                .is_ok_and(|d| read_file(&d.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")),
            Version::V2 => {
                self.dir_of("freezer").is_ok_and(|d| read_file(&d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"))
            }
        }
    }

    fn set_freezer_state_v1(&self, state: &'static str) -> Result<(), Error> {
        let file = self.dir_of("freezer")?.join("freezer.state");
        // Writing the state again moves a cgroup that hangs in FREEZING on (new processes may have come in): runc
        // does the same.
        let done = poll_until(|| {
            write_file(&file, state)?;
            Ok(read_file(&file)?.trim() == state)
        })?;
        if done {
            return Ok(());
        }
        if state == "FROZEN" {
            // Leave nothing half frozen.
            let _ = write_file(&file, "THAWED");
        }
        Err(Error::Timeout { path: self.path.clone(), state })
    }

    fn set_frozen_v2(&self, frozen: bool) -> Result<(), Error> {
        let dir = self.dir_of("freezer")?;
        let (value, want, state) = if frozen { ("1", "frozen 1", "frozen") } else { ("0", "frozen 0", "thawed") };
        write_file(&dir.join("cgroup.freeze"), value)?;
        let events = dir.join("cgroup.events");
        if poll_until(|| Ok(read_file(&events)?.lines().any(|l| l.trim() == want)))? {
            return Ok(());
        }
        if frozen {
            let _ = write_file(&dir.join("cgroup.freeze"), "0");
        }
        Err(Error::Timeout { path: self.path.clone(), state })
    }

    /// Sends SIGKILL to every process in the cgroup (what is left of a container whose init is gone), then thaws it:
    /// a frozen (paused) process takes its SIGKILL only once thawed.
    pub fn kill_all(&self) -> Result<(), Error> {
        for pid in self.procs()? {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // Without a freezer there is nothing to thaw.
        let _ = self.thaw();
        Ok(())
    }

    /// Removes the cgroup from every hierarchy: only its own directory (and child cgroups inside it), never the
    /// parent (`berth/`). Directories already gone are fine; a cgroup still busy is retried for a moment.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut first_error = None;
        for d in &self.dirs {
            if let Err(e) = remove_cgroup_dir(&d.path) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Copies `cpuset.cpus` and `cpuset.mems` from `parent` into `dir` where they are empty.
fn copy_cpuset_from_parent(parent: &Path, dir: &Path) -> Result<(), Error> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let target = dir.join(file);
        if read_file(&target)?.trim().is_empty() {
            let value = read_file(&parent.join(file))?;
            write_file(&target, value.trim())?;
        }
    }
    Ok(())
}

/// Enables `wanted` controllers (those `dir` offers in `cgroup.controllers` and has not enabled yet) for the children
/// of `dir`. All at once first; when the kernel refuses, one by one, skipping (with a warning) those it refuses.
fn enable_controllers(dir: &Path, wanted: &[&str]) -> Result<(), Error> {
    let available = read_file(&dir.join("cgroup.controllers"))?;
    let control = dir.join("cgroup.subtree_control");
    let enabled = read_file(&control)?;
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| available.split_whitespace().any(|a| a == *c) && !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if write_file(&control, &all.join(" ")).is_ok() {
        return Ok(());
    }
    for c in missing {
        if let Err(e) = write_file(&control, &format!("+{c}")) {
            tracing::warn!("{e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    /// This machine's mountinfo: a hybrid host with a cgroup2 mount at /sys/fs/cgroup/unified.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd host with comma-joined hierarchies, optional fields and a hierarchy mounted twice.
    const SYSTEMD: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,hugetlb
90 60 0:29 / /mnt/my\\040memory rw,relatime shared:16 - cgroup cgroup rw,memory
";

    fn names(h: &Hierarchy) -> String {
        h.controllers.join(",")
    }

    #[test]
    fn mountinfo_hybrid_ignores_unified_and_named() {
        let h = parse_mountinfo(HYBRID);
        let got: Vec<(String, PathBuf)> = h.iter().map(|h| (names(h), h.mount.clone())).collect();
        let want: Vec<(String, PathBuf)> =
            ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"]
                .iter()
                .map(|c| (c.to_string(), PathBuf::from(format!("/sys/fs/cgroup/{c}"))))
                .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn mountinfo_comma_joined_and_duplicates() {
        let h = parse_mountinfo(SYSTEMD);
        let got: Vec<String> = h.iter().map(names).collect();
        assert_eq!(got, ["cpu,cpuacct", "net_cls,net_prio", "memory", "hugetlb"]);
        assert_eq!(h[0].mount, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(unescape_mount_path("/mnt/my\\040memory"), "/mnt/my memory");
    }

    #[test]
    fn proc_mounts_fallback() {
        let text = "\
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,nosuid,nodev,noexec,relatime,pids 0 0
";
        let h = parse_proc_mounts(text);
        assert_eq!(h.iter().map(names).collect::<Vec<_>>(), ["cpu,cpuacct", "pids"]);
    }

    #[test]
    fn value_conversions() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 40), 10_000);
        assert_eq!(cpu_max(Some(50_000), Some(100_000)).as_deref(), Some("50000 100000"));
        assert_eq!(cpu_max(Some(50_000), None).as_deref(), Some("50000 100000"));
        assert_eq!(cpu_max(None, Some(20_000)).as_deref(), Some("max 20000"));
        assert_eq!(cpu_max(Some(-1), Some(20_000)).as_deref(), Some("max 20000"));
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(pids_max(100), "100");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(swap_to_v2(0, 100), Ok(None));
        assert_eq!(swap_to_v2(-1, 100), Ok(Some(-1)));
        assert_eq!(swap_to_v2(300, 100), Ok(Some(200)));
        assert_eq!(swap_to_v2(100, 100), Ok(Some(0)));
        assert_eq!(swap_to_v2(0, -1), Ok(Some(-1)));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow).set_typ(typ).set_major(major).set_minor(minor).set_access(Some(access.to_string()));
        r
    }

    #[test]
    fn device_rule_format() {
        use LinuxDeviceType::*;
        assert_eq!(device_rule(&rule(true, Some(C), Some(1), Some(3), "rwm")).as_deref(), Some("c 1:3 rwm"));
        assert_eq!(device_rule(&rule(true, Some(C), Some(136), None, "rwm")).as_deref(), Some("c 136:* rwm"));
        assert_eq!(device_rule(&rule(true, Some(B), None, None, "m")).as_deref(), Some("b *:* m"));
        assert_eq!(device_rule(&rule(true, Some(U), Some(5), Some(-1), "rw")).as_deref(), Some("c 5:* rw"));
        assert_eq!(device_rule(&rule(false, None, None, None, "rwm")).as_deref(), Some("a"));
        assert_eq!(device_rule(&rule(true, Some(P), None, None, "rwm")), None);
        let mut no_access = rule(true, Some(C), Some(1), Some(5), "");
        no_access.set_access(None);
        assert_eq!(device_rule(&no_access).as_deref(), Some("c 1:5 rwm"));
        let writes =
            device_writes(&[rule(false, None, None, None, "rwm"), rule(true, Some(C), Some(1), Some(3), "rwm")]);
        assert_eq!(
            writes,
            [
                ("devices.deny", "a".to_string()),
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string())
            ]
        );
    }

    #[test]
    fn invalid_paths() {
        for p in ["", "/", "berth/../x", "./berth", "../berth"] {
            assert!(matches!(relative_path(p), Err(Error::InvalidPath(_))), "{p:?}");
        }
        assert_eq!(relative_path("/berth/abc").expect("path"), PathBuf::from("berth/abc"));
        assert_eq!(relative_path("berth/./abc/").expect("path"), PathBuf::from("berth/abc"));
    }

    fn touch(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (name, content) in files {
            std::fs::write(dir.join(name), content).expect("write");
        }
    }

    fn read(path: impl AsRef<Path>) -> String {
        std::fs::read_to_string(path).expect("read")
    }

    fn resources() -> LinuxResources {
        let mut devices = vec![rule(false, None, None, None, "rwm")];
        devices.push(rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rwm"));
        devices.push(rule(true, Some(LinuxDeviceType::C), Some(136), None, "rwm"));
        LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(100 << 20).swap(300 << 20).build().expect("memory"))
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .cpus("0-1")
                    .build()
                    .expect("cpu"),
            )
            .pids(LinuxPidsBuilder::default().limit(64).build().expect("pids"))
            .devices(devices)
            .build()
            .expect("resources")
    }

    /// A v1 tree: per hierarchy, the root's files and (as the kernel would create them) the container's.
    fn v1_tree(root: &Path) -> Layout {
        let mk = |c: &str| Hierarchy { controllers: c.split(',').map(str::to_string).collect(), mount: root.join(c) };
        let hierarchies = vec![mk("cpu,cpuacct"), mk("cpuset"), mk("memory"), mk("pids"), mk("devices"), mk("freezer")];
        touch(&root.join("cpuset"), &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")]);
        let leaf = |c: &str| root.join(c).join("berth/c1");
        touch(&root.join("cpuset/berth"), &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
        touch(&leaf("cpuset"), &[("cpuset.cpus", ""), ("cpuset.mems", ""), ("cgroup.procs", "")]);
        touch(
            &leaf("memory"),
            &[
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                (MEMSW_LIMIT, "9223372036854771712\n"),
                ("cgroup.procs", ""),
            ],
        );
        touch(
            &leaf("cpu,cpuacct"),
            &[
                ("cpu.shares", "1024\n"),
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.cfs_period_us", "100000\n"),
                ("cgroup.procs", ""),
            ],
        );
        touch(&leaf("pids"), &[("pids.max", "max\n"), ("cgroup.procs", "")]);
        touch(&leaf("devices"), &[("devices.allow", ""), ("devices.deny", ""), ("cgroup.procs", "")]);
        touch(&leaf("freezer"), &[("freezer.state", "THAWED\n"), ("cgroup.procs", "")]);
        Layout::V1 { hierarchies }
    }

    #[test]
    fn v1_fs_binds_own_dirs_and_links_joined_controllers() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let cg = Cgroup::create_in(&v1_tree(root), "/berth/c1", None).expect("create");
        let CgroupFs::V1 { binds, links } = cg.fs() else { panic!("v1 tree gave {:?}", cg.fs()) };
        let names: Vec<&str> = binds.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"memory") && names.contains(&"cpu,cpuacct"), "{names:?}");
        for (name, dir) in &binds {
            assert_eq!(*dir, root.join(name).join("berth/c1"), "{name} binds the container's own directory");
        }
        assert!(links.contains(&("cpu".into(), "cpu,cpuacct".into())), "{links:?}");
        assert!(links.contains(&("cpuacct".into(), "cpu,cpuacct".into())), "{links:?}");
        // A link never hides a hierarchy of that name; odd names are left out.
        let fs = v1_fs(
            [("cpu", "/a"), ("cpu,cpuacct", "/b"), ("", "/c"), ("memory", "/d"), ("memory", "/e")]
                .into_iter()
                .map(|(n, d)| (n.to_string(), PathBuf::from(d))),
        );
        let want_binds =
            vec![("cpu".into(), "/a".into()), ("cpu,cpuacct".into(), "/b".into()), ("memory".into(), "/d".into())];
        assert_eq!(fs, CgroupFs::V1 { binds: want_binds, links: vec![("cpuacct".into(), "cpu,cpuacct".into())] });
    }

    #[test]
    fn v1_resources() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let layout = v1_tree(root);
        let cg = Cgroup::create_in(&layout, "/berth/c1", Some(&resources())).expect("create");
        let leaf = |c: &str, f: &str| read(root.join(c).join("berth/c1").join(f));
        assert_eq!(leaf("memory", "memory.limit_in_bytes"), (100 << 20).to_string());
        assert_eq!(leaf("memory", MEMSW_LIMIT), (300 << 20).to_string());
        assert_eq!(leaf("cpu,cpuacct", "cpu.shares"), "512");
        assert_eq!(leaf("cpu,cpuacct", "cpu.cfs_quota_us"), "50000");
        assert_eq!(leaf("cpu,cpuacct", "cpu.cfs_period_us"), "100000");
        assert_eq!(leaf("pids", "pids.max"), "64");
        // The last write wins in a plain file: the deny-all went first, the allows after it.
        assert_eq!(leaf("devices", "devices.allow"), "c 136:* rwm");
        assert_eq!(leaf("devices", "devices.deny"), "a");
        // cpuset: the intermediate directory inherits from the root, the leaf gets its own CPUs and inherited mems.
        assert_eq!(read(root.join("cpuset/berth/cpuset.cpus")), "0-3");
        assert_eq!(read(root.join("cpuset/berth/cpuset.mems")), "0");
        assert_eq!(leaf("cpuset", "cpuset.cpus"), "0-1");
        assert_eq!(leaf("cpuset", "cpuset.mems"), "0");

        cg.add_pid(4242).expect("add_pid");
        for c in ["cpu,cpuacct", "cpuset", "memory", "pids", "devices", "freezer"] {
            assert_eq!(leaf(c, "cgroup.procs"), "4242");
        }
        std::fs::write(root.join("pids/berth/c1/cgroup.procs"), "1\n7\n").expect("write");
        assert_eq!(cg.procs().expect("procs"), [1, 7]);
        cg.freeze().expect("freeze");
        assert_eq!(leaf("freezer", "freezer.state"), "FROZEN");
        cg.thaw().expect("thaw");
        assert_eq!(leaf("freezer", "freezer.state"), "THAWED");

        // A process's own way in: `0` into each hierarchy's `tasks` (the kernel's files; plain files here).
        for c in ["cpu,cpuacct", "cpuset", "memory", "pids", "devices", "freezer"] {
            std::fs::write(root.join(c).join("berth/c1/tasks"), "").expect("write");
        }
        let entry = cg.self_entry().expect("self entry").expect("v1 has one");
        entry.enter().expect("enter");
        for c in ["cpu,cpuacct", "cpuset", "memory", "pids", "devices", "freezer"] {
            assert_eq!(leaf(c, "tasks"), "0");
        }

        let opened = Cgroup::open_in(&layout, "berth/c1").expect("open");
        assert_eq!(opened.dirs.len(), 6);
        assert!(matches!(Cgroup::open_in(&layout, "berth/nope"), Err(Error::NotFound(_))));
    }

    #[test]
    fn v1_swap_without_accounting_and_bad_values() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let layout = v1_tree(root);
        std::fs::remove_file(root.join("memory/berth/c1").join(MEMSW_LIMIT)).expect("rm");
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(1 << 20).swap(2 << 20).build().expect("memory"))
            .build()
            .expect("resources");
        Cgroup::create_in(&layout, "berth/c1", Some(&r)).expect("create");
        assert_eq!(read(root.join("memory/berth/c1/memory.limit_in_bytes")), (1 << 20).to_string());

        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(2 << 20).swap(1 << 20).build().expect("memory"))
            .build()
            .expect("resources");
        let err = Cgroup::create_in(&layout, "berth/c1", Some(&r)).expect_err("swap below limit");
        assert!(err.to_string().contains("lower than the memory limit"), "{err}");
    }

    #[test]
    fn v1_failure_removes_created_leaves() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for c in ["memory", "pids"] {
            std::fs::create_dir_all(root.join(c)).expect("mkdir");
        }
        let layout = Layout::V1 {
            hierarchies: ["memory", "pids"]
                .iter()
                .map(|c| Hierarchy { controllers: vec![c.to_string()], mount: root.join(c) })
                .collect(),
        };
        // The fresh leaves have no pids.max (a real kernel would): applying the limit fails.
        let r = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(10).build().expect("pids"))
            .build()
            .expect("resources");
        let err = Cgroup::create_in(&layout, "berth/c2", Some(&r)).expect_err("no pids.max");
        assert!(err.to_string().contains("pids.max"), "{err}");
        assert!(!root.join("memory/berth/c2").exists());
        assert!(!root.join("pids/berth/c2").exists());
        assert!(root.join("pids/berth").exists(), "the parent stays");

        // Without resources, creation works; destroy removes the leaves only, and twice is fine.
        let cg = Cgroup::create_in(&layout, "berth/c2", None).expect("create");
        std::fs::create_dir(root.join("memory/berth/c2/nested")).expect("nested");
        cg.destroy().expect("destroy");
        cg.destroy().expect("destroy again");
        assert!(!root.join("memory/berth/c2").exists());
        assert!(root.join("memory/berth").exists());
        assert!(matches!(
            Cgroup::create_in(&Layout::V1 { hierarchies: vec![] }, "berth/x", None),
            Err(Error::NoHierarchy)
        ));
    }

    #[test]
    fn v2_resources() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let all = "cpuset cpu io memory hugetlb pids rdma misc\n";
        touch(root, &[("cgroup.controllers", all), ("cgroup.subtree_control", "")]);
        touch(
            &root.join("berth"),
            &[("cgroup.controllers", "cpuset cpu memory pids\n"), ("cgroup.subtree_control", "memory\n")],
        );
        let leaf = root.join("berth/c1");
        let files =
            ["memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "cpuset.cpus", "cpuset.mems"];
        touch(
            &leaf,
            &files
                .iter()
                .map(|f| (*f, ""))
                .chain([("cgroup.procs", ""), ("cgroup.freeze", "0"), ("cgroup.events", "populated 0\nfrozen 1\n")])
                .collect::<Vec<_>>(),
        );
        let layout = Layout::V2 { root: root.to_path_buf() };
        let cg = Cgroup::create_in(&layout, "berth/c1", Some(&resources())).expect("create");
        assert_eq!(read(root.join("cgroup.subtree_control")), "+cpu +memory +pids +io +cpuset");
        // memory was already enabled in berth/.
        assert_eq!(read(root.join("berth/cgroup.subtree_control")), "+cpu +pids +cpuset");
        assert_eq!(read(leaf.join("memory.max")), (100 << 20).to_string());
        assert_eq!(read(leaf.join("memory.swap.max")), (200 << 20).to_string());
        assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
        assert_eq!(read(leaf.join("cpu.weight")), shares_to_weight(512).to_string());
        assert_eq!(read(leaf.join("pids.max")), "64");
        assert_eq!(read(leaf.join("cpuset.cpus")), "0-1");
        cg.add_pid(99).expect("add_pid");
        assert_eq!(cg.procs().expect("procs"), [99]);
        cg.freeze().expect("freeze");
        assert_eq!(read(leaf.join("cgroup.freeze")), "1");
        assert!(Cgroup::open_in(&layout, "berth/c1").is_ok());
        assert!(matches!(Cgroup::open_in(&layout, "berth/c9"), Err(Error::NotFound(_))));
    }

    #[test]
    fn v2_update_in_place() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        touch(
            root,
            &[
                ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                ("cgroup.subtree_control", "cpu io memory pids\n"),
            ],
        );
        touch(
            &root.join("berth"),
            &[
                ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                ("cgroup.subtree_control", "cpu io memory pids\n"),
            ],
        );
        let leaf = root.join("berth/c1");
        let files = [
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("memory.low", "0"),
            ("cpu.max", "max 100000"),
            ("cpu.weight", "100"),
            ("pids.max", "50"),
            ("cpuset.cpus", ""),
            ("io.weight", "default 100"),
        ];
        touch(&leaf, &files);
        let layout = Layout::V2 { root: root.to_path_buf() };
        assert!(matches!(Cgroup::update_in(&layout, "berth/none", &resources()), Err(Error::NotFound(_))));
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(200 << 20)
                    .swap(300 << 20)
                    .reservation(100 << 20)
                    .build()
                    .expect("memory"),
            )
            .cpu(LinuxCpuBuilder::default().cpus("1").build().expect("cpu"))
            .block_io(LinuxBlockIoBuilder::default().weight(500u16).build().expect("blkio"))
            .build()
            .expect("resources");
        Cgroup::update_in(&layout, "berth/c1", &r).expect("update");
        assert_eq!(read(leaf.join("memory.max")), (200 << 20).to_string());
        assert_eq!(read(leaf.join("memory.swap.max")), (100 << 20).to_string(), "v2 swap excludes the memory");
        assert_eq!(read(leaf.join("memory.low")), (100 << 20).to_string());
        assert_eq!(read(leaf.join("cpuset.cpus")), "1");
        assert_eq!(read(leaf.join("io.weight")), blkio_weight_to_v2(500).to_string());
        // What the update leaves out stays; the cpuset controller is enabled on the way down.
        assert_eq!(read(leaf.join("pids.max")), "50");
        assert_eq!(read(leaf.join("cpu.max")), "max 100000");
        assert_eq!(read(root.join("cgroup.subtree_control")), "+cpuset");
        assert_eq!(read(root.join("berth/cgroup.subtree_control")), "+cpuset");
        assert_eq!((blkio_weight_to_v2(10), blkio_weight_to_v2(1000)), (1, 10000));
        assert_eq!(support_in(&layout), Support { swap: true, blkio_weight: true });
    }

    #[test]
    fn v1_update_in_place_and_blkio_weight() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let mut layout = v1_tree(root);
        if let Layout::V1 { hierarchies } = &mut layout {
            hierarchies.push(Hierarchy { controllers: vec!["blkio".into()], mount: root.join("blkio") });
        }
        touch(&root.join("blkio/berth/c1"), &[("blkio.bfq.weight", "100")]);
        assert_eq!(support_in(&layout), Support { swap: false, blkio_weight: false }, "no file at the roots");
        touch(&root.join("memory"), &[(MEMSW_LIMIT, "9223372036854771712\n")]);
        std::fs::write(root.join("memory/berth/c1/memory.limit_in_bytes"), (100 << 20).to_string()).expect("w");
        std::fs::write(root.join("memory/berth/c1").join(MEMSW_LIMIT), (200 << 20).to_string()).expect("w");
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(300 << 20).swap(600 << 20).build().expect("memory"))
            .block_io(LinuxBlockIoBuilder::default().weight(300u16).build().expect("blkio"))
            .pids(LinuxPidsBuilder::default().limit(-1).build().expect("pids"))
            .build()
            .expect("resources");
        Cgroup::update_in(&layout, "berth/c1", &r).expect("update");
        let leaf = |c: &str, f: &str| read(root.join(c).join("berth/c1").join(f));
        assert_eq!(leaf("memory", "memory.limit_in_bytes"), (300 << 20).to_string());
        assert_eq!(leaf("memory", MEMSW_LIMIT), (600 << 20).to_string());
        assert_eq!(leaf("blkio", "blkio.bfq.weight"), "300");
        assert_eq!(leaf("pids", "pids.max"), "max");
        assert_eq!(leaf("cpuset", "cpuset.cpus"), "", "a cpuset left out is not touched");
        assert_eq!(support_in(&layout), Support { swap: true, blkio_weight: false });
    }

    #[test]
    fn is_frozen_reads_the_freezer_v1_and_v2() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("v1");
        let layout = v1_tree(&root);
        touch(&root.join("freezer/berth/c1"), &[("freezer.state", "THAWED\n")]);
        let cg = Cgroup::open_in(&layout, "berth/c1").expect("open");
        assert!(!cg.is_frozen());
        for (state, frozen) in [("FROZEN\n", true), ("FREEZING\n", true), ("THAWED\n", false)] {
            std::fs::write(root.join("freezer/berth/c1/freezer.state"), state).expect("w");
            assert_eq!(cg.is_frozen(), frozen, "{state}");
        }
        let root = tmp.path().join("v2");
        touch(&root, &[("cgroup.controllers", "pids\n"), ("cgroup.subtree_control", "")]);
        touch(&root.join("berth/c1"), &[("cgroup.freeze", "0\n"), ("cgroup.procs", "")]);
        let layout = Layout::V2 { root: root.clone() };
        let cg = Cgroup::open_in(&layout, "berth/c1").expect("open");
        assert!(!cg.is_frozen());
        std::fs::write(root.join("berth/c1/cgroup.freeze"), "1\n").expect("w");
        assert!(cg.is_frozen());
    }

    #[test]
    #[ignore = "needs root (chown): test.sh runs it with --include-ignored"]
    fn v2_delegation_chowns_the_leaf_and_its_files() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        touch(root, &[("cgroup.controllers", "pids\n"), ("cgroup.subtree_control", "")]);
        touch(&root.join("berth"), &[("cgroup.controllers", "pids\n"), ("cgroup.subtree_control", "")]);
        let leaf = root.join("berth/c1");
        touch(&leaf, &[("cgroup.procs", ""), ("cgroup.subtree_control", ""), ("memory.max", "")]);
        let layout = Layout::V2 { root: root.to_path_buf() };
        let cg = Cgroup::create_in(&layout, "berth/c1", None).expect("create");
        assert!(cg.self_entry().expect("self entry").is_none(), "v2: a process goes in through cgroup.procs");
        cg.delegate(100000, 100001).expect("delegate");
        for p in [leaf.clone(), leaf.join("cgroup.procs"), leaf.join("cgroup.subtree_control")] {
            let m = std::fs::metadata(&p).expect("stat");
            assert_eq!((m.uid(), m.gid()), (100000, 100001), "{}", p.display());
        }
        // Limits stay root's; the parent is not delegated.
        assert_eq!(std::fs::metadata(leaf.join("memory.max")).expect("stat").uid(), 0);
        assert_eq!(std::fs::metadata(root.join("berth")).expect("stat").uid(), 0);
    }

    /// Runs the real thing on this host: create with limits, add a process, freeze, thaw, destroy.
    #[test]
    #[ignore = "needs root and a writable cgroup hierarchy: test.sh runs it with --include-ignored"]
    fn host_cgroup_lifecycle() {
        let path = format!("berth-selftest/{}", std::process::id());
        let cg = Cgroup::create(&path, Some(&resources())).expect("create");
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        cg.add_pid(pid).expect("add_pid");
        assert_eq!(Cgroup::open(&path).expect("open").procs().expect("procs"), [pid]);
        // v1: a single-threaded process moves itself in (the container's init, an exec'd process).
        if let Some(entry) = cg.self_entry().expect("self entry") {
            let ((up_r, up_w), (down_r, down_w)) =
                (nix::unistd::pipe().expect("pipe"), nix::unistd::pipe().expect("pipe"));
            // SAFETY: the child only makes system calls (writes to descriptors opened before the fork), then exits.
            match unsafe { crate::sys::clone_fork(0) }.expect("fork") {
                crate::sys::Forked::Child => {
                    let code = i32::from(entry.enter().is_err());
                    let _ = nix::unistd::write(&up_w, b"x");
                    // Stays until the parent has looked.
                    let mut b = [0u8; 1];
                    let _ = nix::unistd::read(&down_r, &mut b);
                    // SAFETY: _exit ends the forked child at once, without running the test harness's destructors.
                    unsafe { libc::_exit(code) }
                }
                crate::sys::Forked::Parent(moved) => {
                    let mut b = [0u8; 1];
                    let _ = nix::unistd::read(&up_r, &mut b);
                    let mut procs = Cgroup::open(&path).expect("open").procs().expect("procs");
                    procs.sort();
                    let _ = nix::unistd::write(&down_w, b"x");
                    let status = nix::sys::wait::waitpid(moved, None).expect("wait");
                    assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)), "{status:?}");
                    let mut want = vec![pid, moved.as_raw()];
                    want.sort();
                    assert_eq!(procs, want, "the child moved itself in");
                }
            }
        }
        cg.freeze().expect("freeze");
        cg.thaw().expect("thaw");
        child.kill().expect("kill");
        child.wait().expect("wait");
        cg.destroy().expect("destroy");
        assert!(matches!(Cgroup::open(&path), Err(Error::NotFound(_))));
        if let Ok(Layout::V1 { hierarchies }) = host_layout() {
            for h in hierarchies {
                let _ = std::fs::remove_dir(h.mount.join("berth-selftest"));
            }
        } else if let Ok(Layout::V2 { root }) = host_layout() {
            let _ = std::fs::remove_dir(root.join("berth-selftest"));
        }
    }
}
