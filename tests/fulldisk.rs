//! A full disk: berthd's data root on a small ext4 file system of the test's own (a loop-mounted image), filled by a
//! container. Every operation that needs space fails with an error that says the disk is full, nothing stored is
//! damaged, `rm -f` frees the space, and afterwards the same operations succeed; berthd never exits.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration::*;

/// A 96 MB ext4 file system (no blocks reserved for root, so a container fills it for berthd too) on a loop device,
/// mounted under the test's own directory; unmounted, detached and removed on drop, even when the test fails.
struct SmallFs {
    dir: PathBuf,
    mnt: PathBuf,
    loopdev: String,
}

impl SmallFs {
    /// The file system, or `None` (loudly) where loop devices cannot be used.
    fn make(tag: &str) -> Option<SmallFs> {
        let dir = PathBuf::from(format!("/tmp/bt-disk-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("fs.img");
        let sh = |cmd: &mut Command| -> Result<String, String> {
            match cmd.output() {
                Ok(o) if o.status.success() => Ok(stdout(&o).trim().to_string()),
                Ok(o) => Err(format!("{cmd:?}: {}", stderr(&o).trim())),
                Err(e) => Err(format!("{cmd:?}: {e}")),
            }
        };
        let made = sh(Command::new("truncate").args(["-s", "96M"]).arg(&img))
            .and_then(|_| sh(Command::new("mkfs.ext4").args(["-q", "-m", "0"]).arg(&img)))
            .and_then(|_| sh(Command::new("losetup").args(["--find", "--show"]).arg(&img)));
        let loopdev = match made {
            Ok(dev) => dev,
            Err(e) => {
                skip(&format!("no loop-mounted file system here: {e}"));
                let _ = std::fs::remove_dir_all(&dir);
                return None;
            }
        };
        let mnt = dir.join("data");
        std::fs::create_dir_all(&mnt).unwrap();
        let fs = SmallFs { dir, mnt, loopdev };
        let mounted = sh(Command::new("mount").arg(&fs.loopdev).arg(&fs.mnt));
        assert!(mounted.is_ok(), "mount the loop device: {mounted:?}");
        Some(fs)
    }

    /// Bytes free for anyone.
    fn avail(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(&self.mnt).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        for m in mounts_under(&self.mnt).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.loopdev).output();
        if std::env::var_os("BERTH_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs the berth CLI with a bound: a command that hangs (the bug this file is about) fails the test instead of
/// hanging it.
fn bounded(d: &Berthd, args: &[&str], secs: u64) -> Output {
    let child = d.berth_cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_bounded(child, secs, &format!("berth {args:?}"), d)
}

fn wait_bounded(mut child: Child, secs: u64, what: &str, d: &Berthd) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not end within {secs} s; stderr: {}\n--- berthd log (tail) ---\n{}",
                stderr(&out),
                tail(&d.log(), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `args`, which must fail with an error that says the disk is full; returns that output.
fn fails_full(d: &Berthd, args: &[&str]) -> String {
    let out = bounded(d, args, 120);
    says_full(&[&["berth"], args].concat(), &out)
}

/// The same with the docker CLI (its classic builder: BuildKit needs sessions Berth does not have), where installed.
fn docker_fails_full(d: &Berthd, args: &[&str]) {
    let Some(docker) = docker_cli() else { return };
    let child = Command::new(docker)
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CLI_HINTS", "false")
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(child, 120, &format!("docker {args:?}"), d);
    says_full(&["docker", args[0]], &out);
}

fn says_full(args: &[&str], out: &Output) -> String {
    let text = format!("{}{}", stdout(out), stderr(out));
    assert!(!out.status.success(), "{args:?} should fail on a full disk: {text}");
    assert!(text.to_lowercase().contains("no space left on device"), "{args:?}: {text}");
    assert!(!text.contains("broken pipe"), "{args:?}: {text}");
    eprintln!("{args:?}: {}", text.trim());
    text
}

fn ok_bounded(d: &Berthd, args: &[&str]) -> String {
    let out = bounded(d, args, 120);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}{}\n--- berthd log (tail) ---\n{}",
        stdout(&out),
        stderr(&out),
        tail(&d.log(), 40)
    );
    stdout(&out)
}

/// Fills `fs` from inside container `name` (its writable layer) until nothing is free, in the background.
fn fill(d: &Berthd, fs: &SmallFs, name: &str) {
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=64k; dd if=/dev/zero of=/fill2 bs=4k; sleep 100000",
    ]);
    // Bound: 96 MB of zeros through an overlay on a loop device takes a few seconds.
    assert!(d.eventually(60, || fs.avail() < 64 * 1024), "the disk did not fill: {} bytes free", fs.avail());
}

/// A file of `n` pseudo-random bytes (incompressible, so no layer of it is small).
fn random_file(path: &Path, n: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(n);
    while data.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(n);
    std::fs::write(path, data).unwrap();
}

/// berthd is alive (not exited, not a zombie) and still the process the test started.
fn same_daemon(d: &Berthd, pid: i32) {
    assert_eq!(d.pid(), pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).unwrap_or("gone");
    assert!(matches!(state, "S" | "R" | "D"), "berthd {pid} is {state}\n{}", tail(&d.log(), 40));
}

fn container_id(d: &Berthd, name: &str) -> String {
    d.inspect(name, "{{.Id}}")
}

/// The full disk's costs: nothing of the container is left (directory, cgroup, mounts).
fn assert_gone(d: &Berthd, fs: &SmallFs, id: &str) {
    let ps = d.ok(&["ps", "-aq", "--no-trunc"]);
    assert!(!ps.contains(id), "{id} is still listed: {ps}");
    assert!(!fs.mnt.join("containers").join(id).exists(), "the container directory of {id} is left");
    assert!(!d.dir.join("run/containers").join(id).exists(), "the bundle of {id} is left");
    assert_eq!(cgroups_left(&[id.to_string()]), Vec::<String>::new());
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(id))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "mounts of {id} are left: {mounts:?}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn full_disk_errors_are_clear_and_cost_nothing() {
    require_root();
    let Some(fs) = SmallFs::make("ops") else { return };
    let d = Berthd::start_on(Some(&fs.mnt), &[]);
    let pid = d.pid();
    d.busybox();

    // A second image, saved and pushed, then removed: loading, importing and pulling it again needs space.
    random_file(&d.dir.join("big"), 6 << 20);
    image(&d, "second", &["CMD [\"cat\", \"/big.sum\"]"], |root| {
        std::fs::copy(d.dir.join("big"), root.join("big")).unwrap();
        std::fs::write(root.join("big.sum"), "second image\n").unwrap();
    });
    let second_tar = d.dir.join("second.tar");
    let saved = d.dir.join("second-saved.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "second"]);
    let reg = LocalRegistry::start(fs.dir.join("registry"));
    let remote = format!("{}/second:v1", reg.addr);
    d.ok(&["tag", "second", &remote]);
    d.ok(&["push", &remote]);
    d.ok(&["rmi", "second", &remote]);
    // A build context with a file bigger than the space that will be left.
    let ctx = d.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(d.dir.join("big"), ctx.join("big")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY big /big\n").unwrap();

    // Running before the disk fills: a container that stays, and one that logs all along.
    // The keeper has 6 MB of its own in its writable layer, which the full disk must not damage.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "busybox",
        "sh",
        "-c",
        "cat /dev/urandom | head -c 6000000 > /own; sleep 100000",
    ]);
    let own = |d: &Berthd| stdout(&d.berth(&["exec", "keeper", "ls", "-l", "/own"])).contains("6000000");
    assert!(d.eventually(20, || own(&d)), "the keeper did not write its file");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "logger",
        "busybox",
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.1; done",
    ]);
    let logger_bundle = d.dir.join("run/containers").join(container_id(&d, "logger")).display().to_string();
    let logger_shim = processes_with(&logger_bundle);
    assert_eq!(logger_shim.len(), 1, "the logger's shim: {logger_shim:?}");

    fill(&d, &fs, "fill");
    let fill_id = container_id(&d, "fill");

    fails_full(&d, &["load", "-i", saved.to_str().unwrap()]);
    fails_full(&d, &["import", second_tar.to_str().unwrap(), "imported:v1"]);
    fails_full(&d, &["build", "-t", "built:v1", ctx.to_str().unwrap()]);
    fails_full(&d, &["pull", &remote]);
    fails_full(&d, &["cp", d.dir.join("big").to_str().unwrap(), "keeper:/big"]);
    // For the docker CLI a body bigger than the socket's buffers too: it is still sending when berthd fails.
    random_file(&d.dir.join("rootfs-huge/huge"), 32 << 20);
    let huge = d.dir.join("huge.tar");
    let tar = Command::new("tar").arg("-C").arg(d.dir.join("rootfs-huge")).arg("-cf").arg(&huge).arg(".").status();
    assert!(tar.unwrap().success());
    for args in [
        vec!["load", "-i", saved.to_str().unwrap()],
        vec!["load", "-i", huge.to_str().unwrap()],
        vec!["import", second_tar.to_str().unwrap(), "imported:v1"],
        vec!["import", huge.to_str().unwrap(), "huge:v1"],
        vec!["pull", &remote],
        vec!["cp", d.dir.join("big").to_str().unwrap(), "keeper:/big"],
        vec!["build", "-t", "built:v1", ctx.to_str().unwrap()],
    ] {
        docker_fails_full(&d, &args);
    }
    // The logger wrote while nothing was free: the shim said why its lines were lost (in berthd's log, where its
    // standard error goes), and it is still there and serving. Bound: the logger writes 40 KB a second.
    let said = |d: &Berthd| d.log().contains("writing the container's log: No space left on device");
    assert!(d.eventually(20, || said(&d)), "no word of the full disk from the logger's shim");
    assert_eq!(processes_with(&logger_bundle), logger_shim);
    assert_eq!(d.inspect("logger", "{{.State.Status}}"), "running");
    assert_eq!(ok_bounded(&d, &["exec", "keeper", "echo", "exec works"]), "exec works\n");
    same_daemon(&d, pid);

    // Nothing stored was damaged, nothing half-written was recorded.
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut images: Vec<&str> = images.lines().collect();
    images.sort();
    assert_eq!(images, ["busybox:latest"]);
    let ps = d.ok(&["ps", "--format", "{{.Names}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort();
    assert_eq!(ps, ["fill", "keeper", "logger"]);

    // `rm -f` of the filler frees the space and really removes it.
    ok_bounded(&d, &["rm", "-f", "fill"]);
    assert_gone(&d, &fs, &fill_id);
    assert!(fs.avail() > 40 << 20, "rm -f freed too little: {} bytes free", fs.avail());
    let ingest: Vec<_> =
        std::fs::read_dir(fs.mnt.join("content/ingest")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(ingest.is_empty(), "half-written blobs are left: {ingest:?}");
    let layers = std::fs::read_dir(fs.mnt.join("layers")).unwrap().flatten().map(|e| e.file_name());
    // `layers/empty` is the store's own (the lower directory of an image without layers).
    let odd: Vec<_> = layers
        .filter(|n| n != "empty" && (n.len() != 64 || !n.to_string_lossy().bytes().all(|b| b.is_ascii_hexdigit())))
        .collect();
    assert!(odd.is_empty(), "half-unpacked layers are left: {odd:?}");
    // The failed operations recorded no layer: busybox's is all there is.
    assert_eq!(std::fs::read_dir(fs.mnt.join("layers")).unwrap().count(), 2);

    // The same operations succeed now.
    assert_eq!(ok_bounded(&d, &["run", "--rm", "busybox", "echo", "runs"]), "runs\n");
    ok_bounded(&d, &["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(ok_bounded(&d, &["run", "--rm", "second"]), "second image\n");
    ok_bounded(&d, &["import", second_tar.to_str().unwrap(), "imported:v1"]);
    ok_bounded(&d, &["build", "-t", "built:v1", ctx.to_str().unwrap()]);
    ok_bounded(&d, &["pull", &remote]);
    let sum = |image: &str| ok_bounded(&d, &["run", "--rm", image, "md5sum", "/big"]);
    let want = sum("second");
    for image in ["imported:v1", "built:v1", remote.as_str()] {
        assert_eq!(sum(image), want, "{image}");
    }
    ok_bounded(&d, &["cp", d.dir.join("big").to_str().unwrap(), "keeper:/big"]);
    assert_eq!(ok_bounded(&d, &["exec", "keeper", "md5sum", "/big"]), want);
    assert!(own(&d), "the keeper's own file changed");
    // The logger's shim kept serving: its lines go on after the disk had space again.
    let lines = |d: &Berthd| d.ok(&["logs", "logger"]).lines().count();
    let before = lines(&d);
    assert!(d.eventually(10, || lines(&d) > before + 5), "the logger's log stopped at {before} lines");
    same_daemon(&d, pid);
    database_intact(&fs);
    drop(reg);
}

/// SQLite's own check of berthd's database, where the sqlite3 CLI is installed.
fn database_intact(fs: &SmallFs) {
    let Ok(out) = Command::new("sqlite3").arg(fs.mnt.join("berth.db")).arg("PRAGMA integrity_check").output() else {
        skip_missing_tool("the sqlite3 CLI is not installed; the database's integrity was not checked");
        return;
    };
    assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn run_rm_of_a_container_that_fills_the_disk_ends_and_removes_it() {
    require_root();
    let Some(fs) = SmallFs::make("rm") else { return };
    let mut d = Berthd::start_on(Some(&fs.mnt), &[]);
    let pid = d.pid();
    d.busybox();
    let free = fs.avail();
    let out = bounded(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/fill bs=64k 2>/dev/null; dd if=/dev/zero of=/fill2 bs=4k 2>/dev/null; echo filled",
        ],
        120,
    );
    assert!(out.status.success(), "{}{}\n{}", stdout(&out), stderr(&out), tail(&d.log(), 40));
    assert_eq!(stdout(&out), "filled\n");
    // `--rm` removed it, and its writable layer with it.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let left: Vec<_> = std::fs::read_dir(fs.mnt.join("containers")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "container directories left: {left:?}");
    assert!(fs.avail() + (1 << 20) >= free, "space not freed: {} of {free} bytes free", fs.avail());

    // A filler that stopped, removed by `system prune` while the disk is full.
    fill(&d, &fs, "stopped");
    let id = container_id(&d, "stopped");
    ok_bounded(&d, &["kill", "stopped"]);
    ok_bounded(&d, &["system", "prune", "-af"]);
    assert_gone(&d, &fs, &id);
    assert_eq!(d.ok(&["images", "-q"]), "", "prune -a removes the image too");
    assert!(fs.avail() >= free, "space not freed: {} of {free} bytes free", fs.avail());
    same_daemon(&d, pid);
    d.busybox();

    // A filler removed with `rm -f` while the disk is full: the same, also after berthd restarted on the full disk
    // (it comes up, and finds the filler still running).
    fill(&d, &fs, "fill");
    let id = container_id(&d, "fill");
    d.restart();
    assert_eq!(d.inspect("fill", "{{.State.Status}}"), "running");
    ok_bounded(&d, &["rm", "-f", "fill"]);
    assert_gone(&d, &fs, &id);
    assert_eq!(ok_bounded(&d, &["run", "--rm", "busybox", "echo", "runs"]), "runs\n");
    database_intact(&fs);
}
