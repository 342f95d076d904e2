//! `berth-runc`, Berth's runtime with runc's command line: driven directly (state JSON, errors, features, the
//! create/start/exec/pause/kill/delete life cycle on one bundle) and as a cluster node drives it, through Debian's
//! containerd and its runc-v2 shim (`ctr run --runc-binary`), with a private containerd per test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration::{
    bin, busybox_rootfs, mounts_under, processes_with, require_root, sha256_hex, skip_missing_tool, stderr, stdout,
};

/// A private directory for one test, removed (after its mounts) on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("berth-runc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // Containers a failed test left under its berth-runc root.
        let root = self.0.join("root");
        if root.is_dir() {
            let ids = stdout(&runc(&root, &["list", "-q"]));
            for id in ids.split_whitespace() {
                let _ = runc(&root, &["delete", "--force", id]);
            }
        }
        for m in mounts_under(&self.0).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.0);
        // The tests' cgroup parent, once no test holds a cgroup in it (a failed test's too: its containers went above).
        remove_test_cgroups(&format!("berth-runc-test-{}", std::process::id()));
    }
}

fn runc(root: &Path, args: &[&str]) -> Output {
    Command::new(bin("berth-runc")).arg("--root").arg(root).args(args).stdin(Stdio::null()).output().unwrap()
}

/// Runs berth-runc with its stdout and stderr in files: what a container it creates inherits (pipes would stay open
/// as long as it runs). Its status, stdout and stderr.
fn runc_files(root: &Path, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let dir = root.parent().unwrap().join(format!(
        "out-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new(bin("berth-runc"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("out")).unwrap())
        .stderr(std::fs::File::create(dir.join("err")).unwrap())
        .status()
        .unwrap();
    (status, std::fs::read_to_string(dir.join("out")).unwrap(), std::fs::read_to_string(dir.join("err")).unwrap())
}

/// [`runc_files`], expecting success.
fn runc_files_ok(root: &Path, args: &[&str]) {
    let (status, out, err) = runc_files(root, args);
    assert!(status.success(), "berth-runc {args:?}: {out}{err}");
}

/// Runs berth-runc and expects success; its stdout.
fn runc_ok(root: &Path, args: &[&str]) -> String {
    let o = runc(root, args);
    assert!(o.status.success(), "berth-runc {args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn state(root: &Path, id: &str) -> serde_json::Value {
    serde_json::from_str(&runc_ok(root, &["state", id])).unwrap()
}

/// A root file system for a bundle: [`busybox_rootfs`] with the mount points /proc, /sys and /dev.
fn runc_rootfs(rootfs: &Path) {
    busybox_rootfs(rootfs);
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
}

/// A bundle from `berth-runc spec` running `args`, in its own cgroup `berth-runc-test/<id>`.
fn bundle(dir: &Path, id: &str, args: &[&str]) -> PathBuf {
    let b = dir.join(format!("bundle-{id}"));
    runc_rootfs(&b.join("rootfs"));
    let o = Command::new(bin("berth-runc")).args(["spec", "--bundle"]).arg(&b).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let path = b.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(args);
    spec["root"]["readonly"] = false.into();
    spec["linux"]["cgroupsPath"] = format!("/berth-runc-test-{}/{id}", std::process::id()).into();
    spec["annotations"] = serde_json::json!({"io.berth.test": "yes"});
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    b
}

/// The cgroup directories (any hierarchy) of `rel` that exist.
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    // cgroup v2 (the unified hierarchy at the root), then each v1 hierarchy (and a hybrid host's unified mount).
    let unified = Path::new("/sys/fs/cgroup").join(rel);
    if unified.is_dir() {
        out.push(unified);
    }
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = e.path().join(rel);
        if e.file_type().unwrap().is_dir() && p.is_dir() {
            out.push(p);
        }
    }
    out
}

/// Removes the (empty) parent cgroups a test's containers were put under: made for the test, not Berth's to remove.
fn remove_test_cgroups(rel: &str) {
    for d in cgroup_dirs(rel) {
        let _ = std::fs::remove_dir(&d);
    }
}

fn ppid(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim().parse().unwrap()
}

#[test]
fn errors_are_runcs_and_go_to_the_json_log() {
    let t = TestDir::new("errors");
    let root = t.0.join("root");
    let log = t.0.join("log.json");
    let o = Command::new(bin("berth-runc"))
        .arg("--root")
        .arg(&root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "state", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim(), "container does not exist");
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container does not exist");
    // Without --log, the log is stderr (text), said once.
    let o = runc(&root, &["kill", "nope", "KILL"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("level=error msg=\"container does not exist\""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // delete --force of what does not exist is fine (containerd's clean-up does it).
    assert!(runc(&root, &["delete", "--force", "nope"]).status.success());
    assert!(stderr(&runc(&root, &["state", "a/b"])).contains("invalid id format: a/b"));
    let o = Command::new(bin("berth-runc"))
        .arg("--root")
        .arg(&root)
        .args(["--systemd-cgroup", "create", "--bundle", "/nonexistent", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--systemd-cgroup is not supported"), "{}", stderr(&o));
    assert!(!root.join("x").exists());
    // `list` of an empty root, `features`.
    assert_eq!(runc_ok(&root, &["list", "--format", "json"]).trim(), "[]");
    let f: serde_json::Value = serde_json::from_str(&runc_ok(&root, &["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    assert!(f["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "cgroup"));
    assert!(f["annotations"]["io.github.seccomp.libseccomp.version"].as_str().unwrap().contains('.'));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn life_cycle_on_one_bundle() {
    require_root();
    let t = TestDir::new("life");
    let root = t.0.join("root");
    let id = "life1";
    let b = bundle(&t.0, id, &["sleep", "600"]);
    // The test is the caller's subreaper, as containerd's shim is.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let pid_file = t.0.join("init.pid");
    runc_files_ok(&root, &["create", "--bundle", b.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), id]);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // create has exited; its init waits, re-parented to us.
    assert_eq!(ppid(pid), std::process::id() as i32);
    let s = state(&root, id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"], pid);
    assert_eq!(s["id"], id);
    assert_eq!(s["bundle"], b.to_str().unwrap());
    assert_eq!(s["rootfs"], b.join("rootfs").to_str().unwrap());
    assert_eq!(s["annotations"]["io.berth.test"], "yes");
    assert!(s["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["owner"], "");
    // The init has not run the program yet.
    assert_ne!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "sleep");
    let again = runc(&root, &["create", "--bundle", b.to_str().unwrap(), id]);
    assert!(stderr(&again).contains("container with given ID already exists"), "{}", stderr(&again));
    runc_ok(&root, &["start", id]);
    assert_eq!(state(&root, id)["status"], "running");
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "sleep");
    assert!(stderr(&runc(&root, &["start", id])).contains("cannot start an already running container"));
    // exec, inline form: its output, its exit code.
    let o = runc(&root, &["exec", id, "sh", "-c", "echo in:$(cat /proc/1/comm); exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o).trim(), "in:sleep");
    // exec --process --detach --pid-file: returns at once, the process re-parented to us.
    let proc_json = t.0.join("process.json");
    std::fs::write(
        &proc_json,
        serde_json::to_vec(&serde_json::json!({"args": ["sleep", "500"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin"], "terminal": false}))
        .unwrap(),
    )
    .unwrap();
    let exec_pid_file = t.0.join("exec.pid");
    runc_files_ok(
        &root,
        &[
            "exec",
            "--process",
            proc_json.to_str().unwrap(),
            "--detach",
            "--pid-file",
            exec_pid_file.to_str().unwrap(),
            id,
        ],
    );
    let exec_pid: i32 = std::fs::read_to_string(&exec_pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(ppid(exec_pid), std::process::id() as i32);
    let pids: Vec<i32> = serde_json::from_str(&runc_ok(&root, &["ps", "--format", "json", id])).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&exec_pid), "{pids:?}");
    // pause / resume.
    runc_ok(&root, &["pause", id]);
    assert_eq!(state(&root, id)["status"], "paused");
    assert!(stderr(&runc(&root, &["exec", id, "true"])).contains("cannot exec in a paused container"));
    runc_ok(&root, &["resume", id]);
    assert_eq!(state(&root, id)["status"], "running");
    assert!(stderr(&runc(&root, &["resume", id])).contains("container not paused"));
    // update: a memory limit lands in the cgroup.
    let o = Command::new(bin("berth-runc"))
        .arg("--root")
        .arg(&root)
        .args(["update", "--resources", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(br#"{"memory":{"limit":67108864},"pids":{"limit":50}}"#)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rel = format!("berth-runc-test-{}/{id}", std::process::id());
    let read = |ctrl: &str, file: &str| {
        let base = if berth_runtime_is_v2() {
            Path::new("/sys/fs/cgroup").to_path_buf()
        } else {
            Path::new("/sys/fs/cgroup").join(ctrl)
        };
        std::fs::read_to_string(base.join(&rel).join(file)).unwrap_or_else(|e| panic!("{ctrl}/{rel}/{file}: {e}"))
    };
    let memory = if berth_runtime_is_v2() { "memory.max" } else { "memory.limit_in_bytes" };
    assert_eq!(read("memory", memory).trim(), "67108864");
    assert_eq!(read("pids", "pids.max").trim(), "50");
    let listed: serde_json::Value = serde_json::from_str(&runc_ok(&root, &["list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["id"], id);
    // delete refuses a running container; kill --all, then it is stopped and goes without a trace.
    let o = runc(&root, &["delete", id]);
    assert!(
        stderr(&o).contains(&format!("cannot delete container {id} that is not stopped: running")),
        "{}",
        stderr(&o)
    );
    runc_ok(&root, &["kill", "--all", id, "KILL"]);
    // The exec'd process first: a PID namespace's init finishes exiting only once every process of its namespace has
    // been reaped.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(exec_pid), None);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Signaled(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL, false)
    );
    let s = state(&root, id);
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["pid"], 0);
    assert!(stderr(&runc(&root, &["kill", id])).contains("container not running"));
    runc_ok(&root, &["delete", id]);
    assert!(!root.join(id).exists());
    assert_eq!(cgroup_dirs(&rel), Vec::<PathBuf>::new(), "cgroups left");
    assert!(stderr(&runc(&root, &["state", id])).contains("container does not exist"));
    remove_test_cgroups(&format!("berth-runc-test-{}", std::process::id()));
}

fn berth_runtime_is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn create_reports_a_missing_program_and_leaves_nothing() {
    require_root();
    let t = TestDir::new("missing");
    let root = t.0.join("root");
    let id = "missing1";
    let b = bundle(&t.0, id, &["/no/such/program"]);
    let (status, _, err) = runc_files(&root, &["create", "--bundle", b.to_str().unwrap(), id]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("no such file or directory"), "{err}");
    assert!(!root.join(id).exists());
    let rel = format!("berth-runc-test-{}/{id}", std::process::id());
    assert_eq!(cgroup_dirs(&rel), Vec::<PathBuf>::new(), "cgroups left");
    // delete of a created container kills its init (runc's rule), and `run -d` then `delete -f` of a running one.
    let b2 = bundle(&t.0, "created2", &["sleep", "600"]);
    runc_files_ok(&root, &["create", "--bundle", b2.to_str().unwrap(), "created2"]);
    let pid = state(&root, "created2")["pid"].as_i64().unwrap();
    runc_ok(&root, &["delete", "created2"]);
    assert!(!root.join("created2").exists());
    let gone = Instant::now() + Duration::from_secs(10);
    // The init's parent (the machine's init here) reaps it; until then it is a zombie at most.
    while Instant::now() < gone
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z")));
    remove_test_cgroups(&format!("berth-runc-test-{}", std::process::id()));
}

// ---- containerd ------------------------------------------------------------------------------------------------

const NS: &str = "berthrunc";
const IMAGE: &str = "docker.io/library/berth-runc-busybox:latest";

/// A private containerd (its own config, root, state and socket; no CRI plugin), stopped by PID on drop after its
/// tasks and containers are removed.
struct Containerd {
    dir: TestDir,
    child: std::process::Child,
    pid: i32,
    ids: Vec<String>,
}

impl Containerd {
    fn start(name: &str) -> Option<Containerd> {
        for tool in ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2"] {
            if !Path::new(tool).exists() {
                skip_missing_tool(&format!("{tool} is not installed (apt-get install containerd): containerd tests"));
                return None;
            }
        }
        let dir = TestDir::new(name);
        let d = &dir.0;
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{0}/ctd.sock\"\n[ttrpc]\n  address = \"{0}/ctd.sock.ttrpc\"\n",
            d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd { pid: child.id() as i32, child, dir, ids: Vec::new() };
        // Its socket answers within seconds (a bound: containerd loads its plugins first).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not answer: {}", c.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(c)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("containerd.log")).unwrap_or_default()
    }

    fn ctr_cmd(&self) -> Command {
        let mut c = Command::new("/usr/bin/ctr");
        c.arg("--address").arg(self.dir.0.join("ctd.sock")).args(["--namespace", NS]);
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ctr_ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(o.status.success(), "ctr {args:?}: {}{}\ncontainerd's log:\n{}", stdout(&o), stderr(&o), self.log());
        stdout(&o)
    }

    /// `ctr run` with berth-runc; `args` go between the flags and the image.
    fn run_args(&self, id: &str, flags: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["run".into(), "--runc-binary".into(), bin("berth-runc").display().to_string()];
        v.push("--runc-root".into());
        v.push(self.dir.0.join("runc").display().to_string());
        v.push("--cgroup".into());
        v.push(format!("/{NS}-{}/{id}", std::process::id()));
        v.extend(flags.iter().map(|s| s.to_string()));
        v.push(IMAGE.into());
        v.push(id.into());
        v
    }

    /// An OCI archive of busybox, imported.
    fn import_busybox(&self) {
        let d = self.dir.0.join("image");
        let blobs = d.join("layout/blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        runc_rootfs(&d.join("rootfs"));
        let layer = d.join("layer.tar");
        let o = Command::new("tar").arg("-C").arg(d.join("rootfs")).arg("-cf").arg(&layer).arg(".").output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let put = |data: &[u8]| -> (String, usize) {
            let hex = sha256_hex(data);
            std::fs::write(blobs.join(&hex), data).unwrap();
            (format!("sha256:{hex}"), data.len())
        };
        let (layer_digest, layer_size) = put(&std::fs::read(&layer).unwrap());
        let config = serde_json::json!({"architecture": berth_store::image::host_architecture(), "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]}});
        let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]});
        let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": berth_store::image::host_architecture(), "os": "linux"},
            "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "latest"}}]});
        std::fs::write(d.join("layout/index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::write(d.join("layout/oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let archive = d.join("busybox.tar");
        let o = Command::new("tar").arg("-C").arg(d.join("layout")).arg("-cf").arg(&archive).arg(".").output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        self.ctr_ok(&["image", "import", archive.to_str().unwrap()]);
    }

    fn task_status(&self, id: &str) -> String {
        let out = self.ctr_ok(&["task", "ls"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ids.clone() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id.as_str()]);
            let _ = self.ctr(&["task", "delete", "-f", id.as_str()]);
            let _ = self.ctr(&["container", "delete", id.as_str()]);
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
        // Shims left by a test that failed half-way: ours are those of our state directory.
        for pid in processes_with(&format!("{}/", self.dir.0.display())) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        remove_test_cgroups(&format!("{NS}-{}", std::process::id()));
    }
}

/// Drives `ctr run -t` through a pty (python3's `pty`): a shell prompt, a command's output, the exit code.
fn interactive(c: &Containerd, id: &str) -> (String, i32) {
    let args = c.run_args(id, &["-t", "--rm"]);
    let mut argv = vec!["/usr/bin/ctr".to_string(), "--address".into(), c.dir.0.join("ctd.sock").display().to_string()];
    argv.extend(["--namespace".to_string(), NS.to_string()]);
    argv.extend(args);
    argv.push("sh".into());
    let script = r##"
import json, os, pty, select, sys, time
argv = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
def read_until(needle, secs):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return
            if not d:
                return
            out += d
            if needle and needle in out:
                return
read_until(b"# ", 20)
os.write(fd, b"echo tty:$(tty) $((6*7))x\r")
read_until(b"42x", 20)
os.write(fd, b"exit 3\r")
read_until(None, 20)
_, st = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"out": out.decode("utf-8", "replace"), "code": os.waitstatus_to_exitcode(st)}))
"##;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script, &serde_json::to_string(&argv).unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "python3 pty driver failed: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    (v["out"].as_str().unwrap().to_string(), v["code"].as_i64().unwrap() as i32)
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn containerd_runs_berths_runtime() {
    require_root();
    let Some(mut c) = Containerd::start("containerd") else { return };
    c.import_busybox();
    let runc_root = c.dir.0.join("runc");

    // A container to completion, its output through containerd's IO.
    c.ids.push("once".into());
    let args = c.run_args("once", &["--rm"]);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["sh", "-c", "echo hello from $(cat /proc/1/comm); exit 0"]);
    assert_eq!(c.ctr_ok(&all).trim(), "hello from sh");

    // An interactive one with a terminal.
    c.ids.push("tty".into());
    let (out, code) = interactive(&c, "tty");
    assert!(out.contains("tty:/dev/pts/0 42x"), "{out}");
    assert_eq!(code, 3, "{out}");

    // A detached one: exec, ps, pause/resume, kill, delete.
    c.ids.push("detached".into());
    let args = c.run_args("detached", &["-d"]);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["sleep", "600"]);
    c.ctr_ok(&all);
    assert_eq!(c.task_status("detached"), "RUNNING");
    // berth-runc's own view of it, under the shim's --root.
    let s = state(&runc_root.join(NS), "detached");
    assert_eq!(s["status"], "running");
    let init = s["pid"].as_i64().unwrap() as i32;
    // The init's parent is the shim (re-parented from berth-runc create, which is gone).
    let parent = std::fs::read_to_string(format!("/proc/{}/cmdline", ppid(init))).unwrap();
    assert!(parent.contains("containerd-shim-runc-v2"), "{parent}");
    // No berth-runc of this containerd still runs (create exited; so did the execs' and kills').
    assert_eq!(processes_with(&runc_root.display().to_string()), Vec::<i32>::new(), "a berth-runc still runs");
    let out = c.ctr_ok(&["task", "exec", "--exec-id", "e1", "detached", "sh", "-c", "echo exec:$(cat /proc/1/comm)"]);
    assert_eq!(out.trim(), "exec:sleep");
    let o = c.ctr(&["task", "exec", "--exec-id", "e2", "detached", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let ps = c.ctr_ok(&["task", "ps", "detached"]);
    assert!(ps.contains(&init.to_string()), "{ps}");
    c.ctr_ok(&["task", "pause", "detached"]);
    assert_eq!(c.task_status("detached"), "PAUSED");
    c.ctr_ok(&["task", "resume", "detached"]);
    assert_eq!(c.task_status("detached"), "RUNNING");
    c.ctr_ok(&["task", "kill", "-s", "KILL", "detached"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.task_status("detached") != "STOPPED" {
        assert!(Instant::now() < deadline, "the task did not stop: {}", c.ctr_ok(&["task", "ls"]));
        std::thread::sleep(Duration::from_millis(50));
    }
    c.ctr_ok(&["task", "delete", "detached"]);
    c.ctr_ok(&["container", "delete", "detached"]);
    assert!(!runc_root.join(NS).join("detached").exists());

    // Nothing left: containers, processes, mounts, cgroups, berth-runc state.
    assert_eq!(c.ctr_ok(&["container", "ls", "-q"]).trim(), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    // The shims exit on their own once their task is deleted (a bound: they do within a second).
    while !processes_with(&format!("{}/", c.dir.0.display())).iter().all(|p| *p == c.pid) {
        assert!(Instant::now() < deadline, "processes left: {:?}", processes_with(&format!("{}/", c.dir.0.display())));
        std::thread::sleep(Duration::from_millis(50));
    }
    let init_gone = std::fs::read(format!("/proc/{init}/cmdline")).map_or(true, |c| !c.starts_with(b"sleep"));
    assert!(init_gone, "the container's init {init} still runs");
    let state_dir = c.dir.0.join("state");
    assert_eq!(mounts_under(&state_dir), Vec::<String>::new(), "mounts left");
    for id in ["once", "tty", "detached"] {
        assert_eq!(
            cgroup_dirs(&format!("{NS}-{}/{id}", std::process::id())),
            Vec::<PathBuf>::new(),
            "cgroups of {id} left"
        );
    }
    let left: Vec<_> =
        std::fs::read_dir(runc_root.join(NS)).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.iter().all(|n| n.to_string_lossy().starts_with('.')), "berth-runc state left: {left:?}");
}

/// A cgroup that holds processes already is not the container's to take (runc's rule): create refuses it, and the
/// process in it is left alone.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn create_refuses_a_cgroup_that_holds_processes() {
    require_root();
    let t = TestDir::new("busycg");
    let root = t.0.join("root");
    let id = "busy1";
    let b = bundle(&t.0, id, &["true"]);
    let rel = format!("berth-runc-test-{}/{id}", std::process::id());
    let hierarchy =
        if berth_runtime_is_v2() { PathBuf::from("/sys/fs/cgroup") } else { PathBuf::from("/sys/fs/cgroup/pids") };
    let dir = hierarchy.join(&rel);
    std::fs::create_dir_all(&dir).unwrap();
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(dir.join("cgroup.procs"), other.id().to_string()).unwrap();
    let (status, _, err) = runc_files(&root, &["create", "--bundle", b.to_str().unwrap(), id]);
    let alive = other.try_wait().unwrap().is_none();
    let _ = other.kill();
    let _ = other.wait();
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("container's cgroup is not empty: 1 process(es) found"), "{err}");
    assert!(alive, "the process in the cgroup was killed");
    assert!(!root.join(id).exists());
}
