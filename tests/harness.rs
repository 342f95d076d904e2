//! The integration-test harness: each test starts its own `berthd` on a private data root, exec root and socket,
//! drives it with the `berth` CLI (or the real `docker` CLI), and cleans up after itself even when it fails.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod shared;
pub use shared::*;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The directory with the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> → target/debug
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.is_file(), "{} is not built: run `cargo build --workspace` first", p.display());
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Fails the test unless it runs as root: tests that need root carry
/// `#[cfg_attr(not(berth_root), ignore = "needs root")]` (`build.rs` sets `berth_root` when root builds them), so this
/// fails only where such a test runs anyway without root (`--ignored`, or a binary that root built, run by another
/// user): loudly, never as a pass.
pub fn require_root() {
    let uid = nix::unistd::geteuid();
    assert!(
        uid.is_root(),
        "this test needs root (namespaces, mounts, cgroups) but runs as uid {uid}: run it as root (a build by another \
         user marks it ignored, \"needs root\")"
    );
}

/// A test, or a part of one, that cannot run here for a reason of the machine (no cgroup v1 devices controller, no
/// non-loopback address): says so on stderr (`SKIPPED: <reason>`, shown with `--nocapture` or when the test fails).
pub fn skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
}

/// A test, or a part of one, that cannot run because a tool is not installed (`reason` names it and says what did not
/// run): [`skip`], except with `BERTH_TESTS_STRICT=1` (set by `test.sh`, which installs every tool the tests use),
/// where it fails the test instead, so that no run that claims to be complete passes a test that did not run.
pub fn skip_missing_tool(reason: &str) {
    let strict = std::env::var_os("BERTH_TESTS_STRICT").is_some_and(|v| v == "1");
    assert!(!strict, "{reason} (BERTH_TESTS_STRICT=1: every tool the tests use must be installed)");
    skip(reason);
}

/// A private berthd with the busybox image.
pub fn daemon_with_busybox() -> Berthd {
    let d = Berthd::start();
    d.busybox();
    d
}

/// A private berthd.
pub struct Berthd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
    /// The data root: `dir/data` unless the test gave its own ([`Berthd::start_on`]).
    data: PathBuf,
    /// Environment variables for the next (re)start of the daemon (`BERTH_FAULT`).
    env: Vec<(String, String)>,
}

impl Berthd {
    pub fn start() -> Berthd {
        Berthd::start_with(&[])
    }

    /// Starts berthd with extra arguments (e.g. `--runtime runc`).
    pub fn start_with(extra: &[&str]) -> Berthd {
        Berthd::start_on(None, extra)
    }

    /// Starts berthd on the data root `data` (a directory the test prepared, e.g. a small file system), or on its own
    /// `dir/data`.
    pub fn start_on(data: Option<&Path>, extra: &[&str]) -> Berthd {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/bt-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("berth.sock");
        let data = data.map(Path::to_path_buf).unwrap_or_else(|| dir.join("data"));
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // The host's /etc/berth/daemon.json is not this daemon's.
        if !args.iter().any(|a| a == "--config-file") {
            args.extend(["--config-file".into(), "/dev/null".into()]);
        }
        let mut d = Berthd { dir, sock, child: None, args, data, env: Vec::new() };
        d.spawn();
        d
    }

    /// This daemon's address space, so parallel daemons (and parallel test binaries) never pick the same subnet:
    /// a /22 of 10.128.0.0/9 per daemon, its first /24 for the default bridge, /26s for networks it creates.
    fn net_args(&self) -> Vec<String> {
        let n: u32 = self
            .dir
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.rsplit('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let block = (std::process::id() % 128) * 64 + n % 64;
        let base = (10u32 << 24) | (128 << 16) | (block << 10);
        let ip = |v: u32| std::net::Ipv4Addr::from(v).to_string();
        vec![
            "--bip".into(),
            format!("{}/24", ip(base + 1)),
            "--default-address-pool".into(),
            format!("base={}/22,size=26", ip(base)),
            // Containers' lookups of names that are not Berth's never leave the host: they go to the default
            // bridge's gateway, where nothing answers DNS.
            "--dns".into(),
            ip(base + 1),
        ]
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("berthd.log")).unwrap();
        let child = Command::new(bin("berthd"))
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(&self.data)
            .arg("--exec-root")
            .arg(self.dir.join("run"))
            .arg("--log-level")
            .arg("debug")
            .args(self.net_args())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not come up; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The PID of the daemon.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap()
    }

    /// `kill -9` the daemon (containers must keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A clean stop (`SIGTERM`, as systemd sends): waits up to 20 s for the daemon to exit and returns its status and
    /// how long it took. Containers must keep running; `restart` brings the daemon back.
    pub fn sigterm(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut c = self.child.take().unwrap();
        let t = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
        while t.elapsed() < Duration::from_secs(20) {
            if let Some(st) = c.try_wait().unwrap() {
                return (st, t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("berthd did not exit within 20 s of SIGTERM; log:\n{}", tail(&self.log(), 40));
    }

    /// Sets (`Some`) or unsets (`None`) an environment variable of the daemon from its next (re)start on.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
    }

    /// Waits up to `secs` seconds for the daemon to exit on its own; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts the daemon again on the same roots.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn berth_cmd(&self) -> Command {
        let mut c = Command::new(bin("berth"));
        c.env("DOCKER_HOST", self.host())
            .env_remove("BERTH_HOST")
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .stdin(Stdio::null());
        c
    }

    /// Runs the berth CLI.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd().args(args).output().unwrap()
    }

    /// Runs the berth CLI with `input` on stdin.
    pub fn berth_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .berth_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs the berth CLI, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\n--- berthd log (tail) ---\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `inspect -f FORMAT NAME` (trimmed).
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    /// The real docker CLI pointed at this daemon, when it is installed.
    pub fn docker(&self, args: &[&str]) -> Option<Output> {
        let docker = docker_cli()?;
        Some(
            Command::new(docker)
                .args(args)
                .env("DOCKER_HOST", self.host())
                .env("DOCKER_CLI_HINTS", "false")
                .env("DOCKER_CONFIG", self.dir.join("docker-config"))
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    /// Imports `busybox:latest` with `contrib/mkimage-busybox.sh`.
    pub fn busybox(&self) {
        let out = Command::new(repo_root().join("contrib/mkimage-busybox.sh"))
            .env("BERTH", bin("berth"))
            .env("DOCKER_HOST", self.host())
            .output()
            .unwrap();
        assert!(out.status.success(), "mkimage-busybox failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Polls `cond` for up to `secs` seconds.
    pub fn eventually(&self, secs: u64, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// The last `n` lines of `s`.
/// Now as Unix seconds with nanoseconds: what `docker events --since/--until` take.
pub fn unix_now() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The real docker CLI against `d`, which must succeed (the failure shows berthd's log); its stdout.
pub fn docker_ok(d: &Berthd, args: &[&str]) -> String {
    let out = d.docker(args).unwrap();
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\n--- berthd log ---\n{}",
        stderr(&out),
        tail(&d.log(), 30)
    );
    stdout(&out)
}

/// [`docker_ok`]'s output without the surrounding whitespace: a value (an ID, a state).
pub fn docker_value(d: &Berthd, args: &[&str]) -> String {
    docker_ok(d, args).trim().to_string()
}

/// Debian's python3 with the Docker SDK (python3-docker, the one CI installs), or `None` after a skip line.
pub fn docker_py() -> Option<&'static str> {
    const PY: &str = "/usr/bin/python3";
    let ok = Command::new(PY).args(["-c", "import docker"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        skip_missing_tool("/usr/bin/python3 has no docker module (apt-get install python3-docker)");
        return None;
    }
    Some(PY)
}

/// A daemon whose busybox the docker CLI itself imported (its `import` path under test too); None, said as a skip,
/// without the docker CLI.
pub fn docker_imported_daemon() -> Option<Berthd> {
    require_root();
    let docker = docker_cli()?;
    let d = Berthd::start();
    let out = Command::new(repo_root().join("contrib/mkimage-busybox.sh"))
        .env("BERTH", docker)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "docker import failed: {}", stderr(&out));
    Some(d)
}

/// A daemon with busybox for the docker-CLI tier (None, said as a skip, without the docker CLI).
pub fn docker_cli_daemon() -> Option<Berthd> {
    require_root();
    docker_cli()?;
    Some(daemon_with_busybox())
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The real docker CLI, if installed (else [`skip_missing_tool`]).
pub fn docker_cli() -> Option<PathBuf> {
    for p in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        if Path::new(p).is_file() {
            return Some(PathBuf::from(p));
        }
    }
    skip_missing_tool("the docker CLI is not installed; the docker-CLI compatibility tier did not run");
    None
}

/// Mount points under `dir` (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&prefix)).map(str::to_string).collect()
}

/// Processes whose command line mentions `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// Berth cgroups of the given container IDs that still exist.
pub fn cgroups_left(ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    for id in ids {
        for root in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup"] {
            let p = Path::new(root).join("berth").join(id);
            if p.exists() {
                left.push(p.display().to_string());
            }
        }
    }
    left
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Pods first: their namespace holders are not listed containers.
            if let Ok(out) = self.berth_cmd().args(["pod", "ls", "-q", "--no-trunc"]).output() {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = self.berth_cmd().args(["pod", "rm", "-f", id]).output();
                }
            }
            if let Ok(out) = self.berth_cmd().args(["ps", "-aq", "--no-trunc"]).output() {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = self.berth_cmd().args(["rm", "-f", id]).output();
                }
            }
            if let Some(mut c) = self.child.take() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                let _ = c.wait();
            }
        }
        // Shims of removed containers finish on their own (they release the cgroup last): give them a moment, or
        // killing them would leave their cgroups behind. Shims still running then (a test that failed half-way):
        // end them by PID.
        let deadline = Instant::now() + Duration::from_secs(3);
        // The directory with its slash: `/tmp/bt-1-1` must not match `/tmp/bt-1-13`'s processes.
        let mine = format!("{}/", self.dir.display());
        while Instant::now() < deadline && !processes_with(&mine).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in processes_with(&mine) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // Bridges, firewall rules and network namespaces outlive berthd (as Docker's do): remove this daemon's.
        let removed = Command::new(bin("berthd"))
            .arg("--data-root")
            .arg(&self.data)
            .arg("--exec-root")
            .arg(self.dir.join("run"))
            .arg("--remove-networking")
            .args(&self.args)
            .output();
        let failed = match removed {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!("berthd --remove-networking for {}: {}", self.dir.display(), stderr(&o))),
            Err(e) => Some(format!("berthd --remove-networking for {}: {e}", self.dir.display())),
        };
        for m in mounts_under(&self.dir).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if std::env::var_os("BERTH_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let Some(msg) = failed {
            // A clean-up that fails leaves a bridge and a firewall table behind: a test that passed fails for it
            // (one that is failing already only says so).
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// stdout of an output as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of an output as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Builds and imports an image: busybox with its applets, a user `app` (1000:1000), whatever `extra` adds, and the
/// `--change`s given.
pub fn image(d: &Berthd, name: &str, changes: &[&str], extra: impl FnOnce(&Path)) {
    let root = d.dir.join(format!("rootfs-{name}"));
    busybox_rootfs(&root);
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
        .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    extra(&root);
    let tar = d.dir.join(format!("{name}.tar"));
    let st = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let mut args: Vec<String> = vec!["import".into()];
    for c in changes {
        args.push("-c".into());
        args.push(c.to_string());
    }
    args.push(tar.display().to_string());
    args.push(name.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&args);
}

/// An Engine API request over the daemon's socket: (status, headers, body).
pub fn api(d: &Berthd, method: &str, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The daemon may answer (a 400 for a bad query) and close before it has read the body: its answer is still there
    // to read (a Unix socket keeps what was queued), so a broken pipe here is not the test's failure.
    for part in [head.as_bytes(), body] {
        match s.write_all(part) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            r => r.unwrap(),
        }
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, out[split + 4..].to_vec())
}

/// `berth registry serve` on a free loopback port with its root in `dir`; stopped (by its PID) and its directory
/// removed on drop.
pub struct LocalRegistry {
    child: Child,
    pub addr: String,
    dir: PathBuf,
}

impl LocalRegistry {
    pub fn start(dir: PathBuf) -> LocalRegistry {
        LocalRegistry::start_on(dir, "127.0.0.1", false)
    }

    /// Listens on `ip`; with `tls`, HTTPS with a certificate for `ip` of a private CA (`dir/ca.pem`, see
    /// [`tls_certificates`]).
    pub fn start_on(dir: PathBuf, ip: &str, tls: bool) -> LocalRegistry {
        let port = std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let addr = format!("{ip}:{port}");
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut cmd = Command::new(bin("berth"));
        cmd.args(["registry", "serve", "--addr", &addr, "--root"]).arg(dir.join("root"));
        if tls {
            tls_certificates(&dir, &[ip]);
            cmd.arg("--tls-cert").arg(dir.join("cert.pem")).arg("--tls-key").arg(dir.join("key.pem"));
        }
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        assert!(wait_listening(&addr, 20), "berth registry did not come up");
        LocalRegistry { child, addr, dir }
    }

    /// The registry's log (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

/// The host's first non-loopback IPv4 address (`hostname -I`): a registry there is not "insecure" (loopback ones
/// are, as in Docker), so berthd verifies its certificate.
pub fn host_ipv4() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    stdout(&out)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .map(str::to_string)
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:` the peak resident set).
pub fn status_kib(pid: i32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `python3 -m http.server` serving `dir` on a free loopback port (for `ADD <url>`); stopped by its PID on drop.
pub struct HttpServer {
    child: Child,
    pub port: u16,
}

impl HttpServer {
    pub fn start(dir: &Path) -> HttpServer {
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Bounded: python's server listens within a second or two.
        assert!(wait_listening(&format!("127.0.0.1:{port}"), 10), "python3 -m http.server did not come up");
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA (`dir/ca.pem`, `dir/ca-key.pem`) and a server certificate it signed for the IP addresses `ips`
/// (`dir/cert.pem`, `dir/key.pem`), made with openssl, as a real deployment has them.
pub fn tls_certificates(dir: &Path, ips: &[&str]) {
    let openssl = |args: &str| {
        let out = Command::new("openssl").current_dir(dir).args(args.split_whitespace()).output().unwrap();
        assert!(out.status.success(), "openssl {args}: {}", stderr(&out));
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(&format!("req -x509 {ec} -days 2 -subj /CN=testCA -keyout ca-key.pem -out ca.pem"));
    openssl(&format!("req {ec} -subj /CN=registry -keyout key.pem -out cert.csr"));
    let san: Vec<String> = ips.iter().map(|ip| format!("IP:{ip}")).collect();
    std::fs::write(dir.join("san.ext"), format!("subjectAltName={}\n", san.join(","))).unwrap();
    openssl(
        "x509 -req -in cert.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile san.ext -out cert.pem",
    );
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a berthd that is expected to refuse to start (a bad flag or configuration, a root another daemon holds):
/// waits up to `secs` seconds for it to exit; returns its exit status (`None`: it was still running then, and has
/// been stopped by its PID) and its stderr.
pub fn berthd_refusing<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
    secs: u64,
) -> (Option<std::process::ExitStatus>, String) {
    require_root();
    let mut child = Command::new(bin("berthd"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, err)
}

/// One tar entry: (name as written, type flag, mode, data or link target).
pub type TarEntry<'a> = (&'a str, u8, u32, &'a str);

/// A ustar archive with the entries written exactly as given (names unchecked: `../x`, `/abs`).
pub fn tar_of(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, mode, body) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        let data = if *kind == b'0' { body.as_bytes() } else { b"" };
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(format!("{:011o}", 1_600_000_000u64).as_bytes());
        h[156] = *kind;
        if *kind == b'1' || *kind == b'2' {
            h[157..157 + body.len()].copy_from_slice(body.as_bytes());
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A real dockerd (20.10, Debian's docker.io) on private paths, without a bridge or firewall rules; stopped by its
/// PID. Docker treats registries on 127.0.0.0/8 as insecure, so it speaks plain HTTP to ours.
pub struct PeerDockerd {
    child: Child,
    /// Its socket, data and exec roots, log and the CLI's config (`config/`).
    pub dir: PathBuf,
}

impl PeerDockerd {
    pub fn start() -> Option<PeerDockerd> {
        if !Path::new("/usr/sbin/dockerd").exists() || docker_cli().is_none() {
            skip_missing_tool("no dockerd (apt-get install docker.io): the real-Docker interop test did not run");
            return None;
        }
        let dir = PathBuf::from(format!("/tmp/bt-pd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--host")
            .arg(format!("unix://{}/docker.sock", dir.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false", "--storage-driver", "overlay2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = PeerDockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not come up: {}", d.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(d)
    }

    /// Its API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_cli().unwrap());
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}/docker.sock", self.dir.display()))
            .env("DOCKER_CONFIG", self.dir.join("config"))
            .env("DOCKER_CLI_HINTS", "false");
        c
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}{}", stdout(&out), stderr(&out));
        stdout(&out)
    }
}

impl Drop for PeerDockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd; SIGKILL if it takes too long.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for m in mounts_under(&self.dir).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
