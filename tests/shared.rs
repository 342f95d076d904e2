//! Helpers that several test files use (re-exported by the harness): HTTP from the host, ports, the host's links and
//! nft rules, a crash by `BERTH_FAULT`, compose projects, `docker events`, test images and root file systems.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Berthd, docker_cli, image, skip_missing_tool, stderr, stdout, tail};

/// One `GET path HTTP/1.0` to `addr:port` from the host (3 s to connect, 10 s to read; busybox `wget` crashes
/// here, this is plain std): the whole answer, head and body, or the error.
pub fn http_get(addr: &str, port: u16, path: &str) -> Result<String, String> {
    let sa: std::net::SocketAddr = format!("{addr}:{port}").parse().map_err(|e| format!("{addr}:{port}: {e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The body of an HTTP answer: what follows the head's empty line (a CGI's own headers end with "\n\n").
pub fn http_body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").or_else(|| answer.split_once("\n\n")).map(|(_, b)| b).unwrap_or_default()
}

/// GET `path` from 127.0.0.1:`port`, retried every 100 ms for up to `secs` seconds while the server comes up
/// (connection refused, or an answer other than 200); the body of the 200. Panics with the last answer.
pub fn http_get_200(port: u16, path: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match http_get("127.0.0.1", port, path) {
            Ok(out) if out.starts_with("HTTP/1.") && out.contains(" 200 ") => return http_body(&out).to_string(),
            Ok(out) => last = out,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no 200 from 127.0.0.1:{port}{path} within {secs} s: {last}");
}

/// Waits (at most `secs` seconds, trying every 20 ms) until something accepts TCP connections on `addr`
/// (`host:port`); whether it did.
pub fn wait_listening(addr: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A free loopback port (bound and let go: another process could take it meanwhile, which the daemon's start, or
/// the container's, would then report).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port in `range` free on every address (0.0.0.0), picked from a start that depends on this test process.
pub fn free_port_in(range: std::ops::RangeInclusive<u16>) -> u16 {
    let seed = std::process::id() as u16;
    let len = range.end() - range.start();
    for i in 0..len {
        let p = range.start() + (seed.wrapping_mul(7).wrapping_add(i * 13)) % len;
        if std::net::TcpListener::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port in {range:?}");
}

/// A host port for this test process (published ports must not clash with parallel test binaries): 20000 and up,
/// by the process ID, plus `offset`.
pub fn test_port(offset: u16) -> u16 {
    20000 + (std::process::id() % 20000) as u16 + offset
}

/// The names in directory `dir` (none where it cannot be read).
pub fn names_in_any(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// The host's interface names.
pub fn host_links() -> Vec<String> {
    names_in_any(Path::new("/sys/class/net"))
}

/// `nft list ARGS`; `None` (said, and a failure under `BERTH_TESTS_STRICT=1`) where nft is not installed.
pub fn nft_list(args: &[&str]) -> Option<String> {
    match Command::new("nft").arg("list").args(args).output() {
        Ok(o) if o.status.success() => Some(stdout(&o)),
        Ok(o) => panic!("nft list {args:?}: {}", stderr(&o)),
        Err(_) => {
            skip_missing_tool("nft is not installed; firewall rules are not checked (this part only)");
            None
        }
    }
}

/// The host's nft rules (every table); empty where nft is not installed ([`nft_list`]).
pub fn nft_rules() -> String {
    nft_list(&["ruleset"]).unwrap_or_default()
}

/// The nftables table `ip TABLE` (the daemon's), or `None` where nft is not installed ([`nft_list`]).
pub fn nft_table(table: &str) -> Option<String> {
    nft_list(&["table", "ip", table])
}

/// A program's path on `PATH`.
pub fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).map(|d| d.join(prog)).find(|f| f.is_file()))
}

/// docker-compose 1.29 (Debian's, or one in /usr/local/bin); where it is missing, [`skip_missing_tool`] says that
/// `what` did not run.
pub fn docker_compose_v1(what: &str) -> Option<&'static Path> {
    let found =
        ["/usr/bin/docker-compose", "/usr/local/bin/docker-compose"].into_iter().map(Path::new).find(|p| p.is_file());
    if found.is_none() {
        skip_missing_tool(&format!("docker-compose 1.29 is not installed: {what} did not run"));
    }
    found
}

/// Restarts `d` with `BERTH_FAULT=point` (`name` or `name@N`), runs `op` (which must fail: the daemon dies under it),
/// waits for the daemon's end, lets `dead` look at what it left, starts it again without the fault and checks that
/// it was killed by `SIGKILL` at that point.
pub fn crash_at(d: &mut Berthd, point: &str, op: impl FnOnce(&Berthd) -> Output, dead: impl FnOnce(&Berthd)) {
    use std::os::unix::process::ExitStatusExt;
    d.set_env("BERTH_FAULT", Some(point));
    d.restart();
    let out = op(d);
    assert!(!out.status.success(), "{point}: the operation succeeded although berthd was to die: {}", stdout(&out));
    // The operation's client returns when the daemon's end of the connection goes: the daemon is dead or dying.
    let st = d.wait_exit(20);
    let st = st.unwrap_or_else(|| panic!("{point}: berthd did not die; log:\n{}", tail(&d.log(), 30)));
    dead(d);
    let log = d.log();
    // Running again before anything is asserted: a failing test still cleans up through the daemon.
    d.set_env("BERTH_FAULT", None);
    d.restart();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{point}: berthd ended with {st:?}, not by the fault");
    let name = point.split('@').next().unwrap_or(point);
    assert!(log.contains(&format!("BERTH_FAULT: killing the process at {name}")), "{point}: no fault in the log");
}

/// The image `e2e-db:1` of the compose and kube end-to-end projects: busybox with a CGI on port 5432 that counts
/// visits in /data.
pub fn e2e_db_image(d: &Berthd) {
    image(d, "e2e-db:1", &["CMD [\"sh\", \"-c\", \"echo db ready; exec httpd -f -vv -p 5432 -h /srv\"]"], |root| {
        let cgi = root.join("srv/cgi-bin");
        std::fs::create_dir_all(&cgi).unwrap();
        std::fs::write(
            cgi.join("count"),
            "#!/bin/sh\nn=$(cat /data/visits 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > /data/visits\necho 'Content-Type: text/plain'\necho\necho \"visits=$n\"\n",
        )
        .unwrap();
        std::fs::set_permissions(cgi.join("count"), std::fs::Permissions::from_mode(0o755)).unwrap();
    });
}

/// A busybox root file system: the host's static busybox, a link per applet in /bin, and /etc and /tmp.
pub fn busybox_rootfs(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
}

/// `berth ARGS` run in the directory `dir`.
pub fn berth_in(d: &Berthd, dir: &Path, args: &[&str]) -> Output {
    d.berth_cmd().current_dir(dir).args(args).output().unwrap()
}

/// `berth ARGS` in `dir`, which must succeed (the failure shows berthd's log); its stdout.
pub fn berth_ok_in(d: &Berthd, dir: &Path, args: &[&str]) -> String {
    let o = berth_in(d, dir, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed:\n{}{}\n--- berthd log ---\n{}",
        stdout(&o),
        stderr(&o),
        tail(&d.log(), 40)
    );
    stdout(&o)
}

/// A compose project directory `d.dir/name` holding `compose.yaml` with `text`.
pub fn compose_project(d: &Berthd, name: &str, text: &str) -> PathBuf {
    let dir = d.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
    dir
}

/// `berth compose ARGS` in the project directory `dir`, not run yet.
pub fn compose_cmd(d: &Berthd, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = d.berth_cmd();
    cmd.current_dir(dir).arg("compose").args(args);
    cmd
}

/// `berth compose ARGS` in `dir`.
pub fn compose(d: &Berthd, dir: &Path, args: &[&str]) -> Output {
    compose_cmd(d, dir, args).output().unwrap()
}

/// `berth compose ARGS` in `dir`, which must succeed (the failure shows berthd's log); its stdout.
pub fn compose_ok(d: &Berthd, dir: &Path, args: &[&str]) -> String {
    let out = compose(d, dir, args);
    assert!(
        out.status.success(),
        "berth compose {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\n--- berthd log (tail) ---\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out),
        tail(&d.log(), 40)
    );
    stdout(&out)
}

/// A compose project directory of a daemon, with any files.
pub struct Project<'a> {
    pub d: &'a Berthd,
    pub dir: PathBuf,
}

impl<'a> Project<'a> {
    /// The project `d.dir/name` with `files` (path, text), e.g. `compose.yaml`.
    pub fn new(d: &'a Berthd, name: &str, files: &[(&str, &str)]) -> Project<'a> {
        let dir = d.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = Project { d, dir };
        for (f, text) in files {
            p.write(f, text);
        }
        p
    }

    /// Writes a file of the project (a file under `cgi-bin/` is made executable).
    pub fn write(&self, f: &str, text: &str) {
        let path = self.dir.join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if f.contains("cgi-bin/") {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    /// `berth compose ARGS` with extra environment variables.
    pub fn compose_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        compose_cmd(self.d, &self.dir, args).envs(env.iter().copied()).output().unwrap()
    }

    pub fn compose(&self, args: &[&str]) -> Output {
        compose(self.d, &self.dir, args)
    }

    /// Runs `berth compose ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        compose_ok(self.d, &self.dir, args)
    }

    /// Runs `berth compose ARGS`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(!out.status.success(), "berth compose {args:?} succeeded:\n{}", stdout(&out));
        stderr(&out)
    }

    /// `compose exec -T SERVICE sh -c SCRIPT`'s output, or `None` when it fails.
    pub fn sh(&self, service: &str, script: &str) -> Option<String> {
        let out = self.compose(&["exec", "-T", service, "sh", "-c", script]);
        out.status.success().then(|| stdout(&out))
    }

    /// `inspect` of the service's (one) container.
    pub fn inspect(&self, service: &str) -> Value {
        let id = self.ok(&["ps", "-aq", service]).trim().to_string();
        assert!(!id.is_empty(), "no container of {service}");
        let v: Value = serde_json::from_str(&self.d.ok(&["inspect", &id])).unwrap();
        v[0].clone()
    }
}

/// A docker-compose 1.29 project of a daemon: `d.dir/name` with its `docker-compose.yml`, run with `DOCKER_HOST`
/// pointing at the daemon.
pub struct ComposeV1<'a> {
    pub p: Project<'a>,
    bin: &'static Path,
}

impl<'a> ComposeV1<'a> {
    /// The project `d.dir/name` whose `docker-compose.yml` is `text`; `None` where docker-compose 1.29 is missing
    /// ([`docker_compose_v1`] says that `what` did not run).
    pub fn new(d: &'a Berthd, name: &str, text: &str, what: &str) -> Option<ComposeV1<'a>> {
        let bin = docker_compose_v1(what)?;
        Some(ComposeV1 { p: Project::new(d, name, &[("docker-compose.yml", text)]), bin })
    }

    /// `docker-compose ARGS` in the project, without input, ended after 120 s (`timeout`) if it hangs.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg(self.bin)
            .args(args)
            .current_dir(&self.p.dir)
            .env("DOCKER_HOST", self.p.d.host())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// `docker-compose ARGS`, which must succeed (the failure shows its output and berthd's log).
    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed ({:?}): {}{}\n--- berthd log (tail) ---\n{}",
            out.status.code(),
            stdout(&out),
            stderr(&out),
            tail(&self.p.d.log(), 30)
        );
        out
    }
}

/// `docker events --since .. --until .. [--filter ..] --format '{{json .}}'`, parsed (the stream ends at `until`).
pub fn events(d: &Berthd, since: &str, until: &str, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["events", "--since", since, "--until", until, "--format", "{{json .}}"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    // Bounded: a daemon that never ends the stream at `until` fails the test instead of hanging it.
    let out = Command::new("timeout")
        .arg("30")
        .arg(docker_cli().unwrap())
        .args(&args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?}: {:?} {}", out.status.code(), stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The `Action`s of Engine API events.
pub fn actions(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["Action"].as_str().unwrap()).collect()
}

/// The address of container `c` on network `net`.
pub fn ip_on(d: &Berthd, c: &str, net: &str) -> String {
    d.inspect(c, &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"))
}

/// The gateway of network `net`.
pub fn gateway(d: &Berthd, net: &str) -> String {
    d.ok(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", net]).trim().to_string()
}

/// An Engine API request whose answer is Docker's `{"message"}` (or nothing): (status, message).
pub fn api_message(d: &Berthd, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = crate::api(d, method, path, body.as_bytes());
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    (status, v["message"].as_str().unwrap_or("").to_string())
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The CPU time (user + system, in clock ticks) process `pid` has used; `None` once it is gone.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses: fields are counted after the last ')', from state (field 3) on.
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// A build context directory `ctx-<name>` in the daemon's test directory, with the given files.
pub fn context_dir<C: AsRef<[u8]>>(d: &Berthd, name: &str, files: &[(&str, C)]) -> PathBuf {
    let dir = d.dir.join(format!("ctx-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (p, content) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, content).unwrap();
    }
    dir
}

/// `berth build --progress=plain EXTRA... DIR`.
pub fn berth_build(d: &Berthd, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress=plain"];
    args.extend_from_slice(extra);
    let p = dir.display().to_string();
    args.push(&p);
    d.berth(&args)
}

/// [`berth_build`], which must succeed; its stderr (the build's plain progress).
pub fn berth_build_ok(d: &Berthd, dir: &Path, extra: &[&str]) -> String {
    let out = berth_build(d, dir, extra);
    assert!(
        out.status.success(),
        "build failed:\nstdout: {}\nstderr: {}\n--- berthd log ---\n{}",
        stdout(&out),
        stderr(&out),
        tail(&d.log(), 30)
    );
    stderr(&out)
}

/// An image's ID (`sha256:…`).
pub fn image_id(d: &Berthd, name: &str) -> String {
    d.ok(&["image", "inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

/// A process's descriptors: number → what it points at.
pub fn fds_of(pid: i32) -> std::collections::HashMap<i32, String> {
    let mut out = std::collections::HashMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(t) = std::fs::read_link(e.path()) {
            out.insert(n, t.display().to_string());
        }
    }
    out
}
