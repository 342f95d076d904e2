//! Mount targets and archives under attack (issue 12, findings 5 and 9): a container racing a symlink into a shared
//! volume cannot redirect another container's mounts, read-only binds keep their source's flags and can be made
//! recursively read-only, and `ADD` of a local tar unpacks exactly as `import` does (one extractor), never outside the
//! root.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_integration::*;

/// `tar -tv` of an archive from `cp ... -`, each line without the first `strip` bytes of its name, sorted; the
/// archive's own top entry left out.
fn listing(archive: &[u8], strip: &str) -> Vec<String> {
    let mut child = Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvf", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(archive).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // perms owner size date time name [-> target | link to target]
            let mut rest = l;
            for _ in 0..5 {
                rest = rest.trim_start();
                rest = &rest[rest.find(' ')?..];
            }
            let head = l[..l.len() - rest.len()].split_whitespace().collect::<Vec<_>>().join(" ");
            let name = rest.trim_start().strip_prefix(strip)?;
            if name.is_empty() || name == "./" {
                return None;
            }
            Some(format!("{head} {}", name.replace(&format!("link to {strip}"), "link to ")))
        })
        .collect();
    lines.sort();
    lines
}

fn cp_out(d: &Berthd, from: &str) -> Vec<u8> {
    let out = d.berth(&["cp", from, "-"]);
    assert!(out.status.success(), "cp {from}: {}", stderr(&out));
    out.stdout
}

/// Files named `name` anywhere below `dir`, outside the store's layer directories (`layers/<id>/diff`, where an
/// image's own content lives).
fn stray_files(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else { continue };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if path.file_name().is_some_and(|n| n == "layers" || n == "containers") {
                    continue;
                }
                stack.push(path);
            } else if names.iter().any(|n| path.file_name().is_some_and(|f| f == *n)) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn add_of_a_local_tar_unpacks_as_import_does() {
    let d = daemon_with_busybox();
    let tar = tar_of(&[
        ("d/", b'5', 0o750, ""),
        ("d/f", b'0', 0o640, "hello\n"),
        ("d/abs", b'2', 0o777, "/etc/passwd"),
        ("d/rel", b'2', 0o777, "f"),
        ("d/hl", b'1', 0o777, "d/abs"),
        ("../x", b'0', 0o600, "dotdot\n"),
        ("/abs", b'0', 0o644, "absolute\n"),
        ("d/../../up", b'0', 0o604, "up\n"),
    ]);
    // The same tar gzip-compressed: ADD and import both take it.
    let ctx = d.dir.join("addctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("t.tar"), &tar).unwrap();
    let gz = Command::new("sh").arg("-c").arg(format!("gzip -c {0}/t.tar > {0}/t.tar.gz", ctx.display())).status();
    assert!(gz.unwrap().success());
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nADD t.tar /out/\nADD t.tar.gz /outgz/\n").unwrap();
    d.ok(&["build", "-q", "-t", "added", ctx.to_str().unwrap()]);
    d.ok(&["import", ctx.join("t.tar").to_str().unwrap(), "imported"]);
    d.ok(&["import", ctx.join("t.tar.gz").to_str().unwrap(), "importedgz"]);
    d.ok(&["create", "--name", "addc", "added", "true"]);
    d.ok(&["create", "--name", "impc", "imported", "true"]);
    d.ok(&["create", "--name", "impg", "importedgz", "true"]);

    let imported = listing(&cp_out(&d, "impc:/"), "");
    let added = listing(&cp_out(&d, "addc:/out"), "out/");
    let added_gz = listing(&cp_out(&d, "addc:/outgz"), "outgz/");
    let imported_gz = listing(&cp_out(&d, "impg:/"), "");
    let names: Vec<&str> = imported.iter().map(|l| l.rsplit(' ').next().unwrap_or("")).collect();
    for want in ["d/", "d/f", "x", "abs", "up"] {
        assert!(imported.iter().any(|l| l.contains(&format!(" {want}"))), "import lacks {want}: {imported:#?}");
    }
    assert!(imported.iter().any(|l| l.contains("d/abs -> /etc/passwd")), "{imported:#?} ({names:?})");
    assert!(imported.iter().any(|l| l.contains("d/rel -> f")), "{imported:#?}");
    assert!(imported.iter().any(|l| l.contains("d/hl") && l.contains("/etc/passwd")), "{imported:#?}");
    // Same names, modes, owners, sizes, times and link targets.
    assert_eq!(added, imported, "ADD and import differ");
    assert_eq!(added_gz, imported, "ADD of the gzip tar differs");
    assert_eq!(imported_gz, imported, "import of the gzip tar differs");
    // Nothing landed outside the image roots: not at the image's root for ADD, not anywhere in the daemon's dirs.
    let out = d.ok(&["run", "--rm", "added", "sh", "-c", "ls /x /abs /up 2>&1; cat /out/x /out/abs /out/up"]);
    assert!(out.contains("dotdot") && out.contains("absolute") && out.contains("up\n"), "{out}");
    assert_eq!(out.matches("No such file").count(), 3, "{out}");
    assert_eq!(stray_files(&d.dir, &["x", "abs", "up"]), Vec::<PathBuf>::new());
}

/// Mounts under `prefix` in a `/proc/mounts` text: (target, type).
fn mounts_in(text: &str, prefix: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (target, typ) = (*f.get(1)?, *f.get(2)?);
            (target == prefix || target.starts_with(&format!("{prefix}/"))).then(|| (target.into(), typ.into()))
        })
        .collect()
}

/// Starts `runs` containers with `--tmpfs /data/sub` on the volume `shared` while something swaps /data/sub, and
/// checks each: refused with a clear error, or running with its tmpfs at one of `names` (the swapper goes on renaming
/// the directory after the container started; a mount moves with its directory, which no engine can prevent), and
/// never with a tmpfs over the symlink's target (/etc). Returns (started with a tmpfs under /data, refused).
fn race(d: &Berthd, runs: usize, names: &[&str], exact: bool) -> (usize, usize) {
    let (mut mounted, mut refused) = (0, 0);
    for i in 0..runs {
        let out = d.berth(&[
            "run",
            "--rm",
            "-v",
            "shared:/data",
            "--tmpfs",
            "/data/sub",
            "busybox",
            "sh",
            "-c",
            "cat /proc/mounts",
        ]);
        if !out.status.success() {
            let e = stderr(&out);
            assert!(
                e.contains("mount target /data/sub") && (e.contains("symbolic link") || e.contains("moved")),
                "run {i} failed without a clear error: {e}"
            );
            refused += 1;
            continue;
        }
        let text = stdout(&out);
        let tmpfs: Vec<String> =
            mounts_in(&text, "/data").into_iter().filter(|(_, t)| t == "tmpfs").map(|(m, _)| m).collect();
        let on_etc: Vec<(String, String)> =
            mounts_in(&text, "/etc").into_iter().filter(|(_, t)| t == "tmpfs").collect();
        assert!(on_etc.is_empty(), "run {i}: a tmpfs over the symlink's target: {on_etc:?}");
        if exact {
            assert!(
                tmpfs.len() == 1 && names.contains(&tmpfs[0].as_str()),
                "run {i} started without its tmpfs at /data/sub: {tmpfs:?}\n{text}"
            );
        }
        if !tmpfs.is_empty() {
            mounted += 1;
        }
    }
    (mounted, refused)
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn mount_targets_cannot_be_raced_through_a_shared_volume() {
    let d = daemon_with_busybox();
    d.ok(&["volume", "create", "shared"]);
    let vol = d.dir.join("data/volumes/shared/_data");

    // 1. A container swaps the directory /data/sub for a symlink to /etc and back with mv, as fast as it can. (Its
    //    mv can also move or delete a directory a started container has its tmpfs on — deleting a mount point
    //    detaches the mounts on it in every namespace — so only "never over /etc, never a silent failure" holds.)
    d.ok(&[
        "run",
        "-d",
        "--name",
        "swapper",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub; touch /data/ready; while :; do mv /data/sub /data/sub.real 2>/dev/null; \
         ln -s /etc /data/sub 2>/dev/null; rm -f /data/sub 2>/dev/null; mv /data/sub.real /data/sub 2>/dev/null; done",
    ]);
    assert!(d.eventually(10, || vol.join("ready").exists()), "the swapper did not start");
    let (mounted, refused) = race(&d, 15, &[], false);
    eprintln!(
        "mv swapper: 15 runs, {mounted} with a tmpfs under /data, {refused} refused with a clear error, {} whose \
         tmpfs the swapper had moved away or deleted by the time they looked",
        15 - mounted - refused
    );
    d.ok(&["rm", "-f", "swapper"]);

    // 2. The exchange race: /data/sub and a symlink to /etc trade places atomically (renameat2 RENAME_EXCHANGE) in
    //    a loop on the volume, so the directory is never missing, moved elsewhere or deleted: each start must end
    //    with its tmpfs on that directory (named /data/sub, or /data/lnk after a later exchange) or refused.
    let _ = std::fs::remove_dir_all(&vol);
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    std::os::unix::fs::symlink("/etc", vol.join("lnk")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swaps = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, vol) = (stop.clone(), swaps.clone(), vol.clone());
        std::thread::spawn(move || {
            let dir = std::fs::File::open(&vol).unwrap();
            use std::os::fd::AsFd;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                nix::fcntl::renameat2(dir.as_fd(), "sub", dir.as_fd(), "lnk", nix::fcntl::RenameFlags::RENAME_EXCHANGE)
                    .unwrap();
                swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let (mounted, refused) = race(&d, 20, &["/data/sub", "/data/lnk"], true);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("exchange swapper ({swaps} swaps): 20 runs, {mounted} with their tmpfs, {refused} refused");
    assert!(swaps > 1000, "the swapper hardly ran ({swaps} swaps): the race was not exercised");
    // Refused starts leave nothing behind.
    let pins = d.dir.join("run/netns");
    let left =
        || -> Vec<String> { mounts_under(&d.dir.join("run")).into_iter().filter(|m| Path::new(m) != pins).collect() };
    assert!(d.eventually(10, || left().is_empty()), "mounts left: {:?}", left());
    // `run --rm` of a container that failed to start may finish its removal just after the CLI returns.
    assert!(d.eventually(10, || d.ok(&["ps", "-aq"]).is_empty()), "containers left: {}", d.ok(&["ps", "-a"]));
}

/// Unmounts what the test mounted on the host (also when it fails).
struct HostMounts(Vec<PathBuf>);

impl Drop for HostMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn mount_tmpfs(at: &Path, flags: nix::mount::MsFlags) {
    std::fs::create_dir_all(at).unwrap();
    nix::mount::mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some("size=1m")).unwrap();
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn read_only_binds_keep_source_flags_and_can_be_recursive() {
    let d = daemon_with_busybox();
    use nix::mount::MsFlags;
    let host = d.dir.join("hostdir");
    let sub = host.join("sub");
    let locked = d.dir.join("locked");
    let mut guard = HostMounts(Vec::new());
    mount_tmpfs(&host, MsFlags::empty());
    guard.0.push(host.clone());
    mount_tmpfs(&sub, MsFlags::empty());
    guard.0.push(sub.clone());
    mount_tmpfs(&locked, MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    guard.0.push(locked.clone());
    let h = host.to_str().unwrap();

    // bind-recursive=readonly: the submount is read-only inside too.
    let rro = format!("type=bind,src={h},dst=/h,readonly,bind-recursive=readonly");
    let out = d.berth(&[
        "run",
        "--rm",
        "--mount",
        &rro,
        "busybox",
        "sh",
        "-c",
        "grep ' /h' /proc/mounts; touch /h/sub/x 2>&1; touch /h/y 2>&1; true",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text.matches("Read-only file system").count(), 2, "{text}");
    let mount_lines = text.lines().filter(|l| !l.starts_with("touch:"));
    for l in mount_lines.filter(|l| l.split(' ').nth(1).is_some_and(|m| m == "/h" || m.starts_with("/h/"))) {
        assert!(l.split(' ').nth(3).unwrap().split(',').any(|o| o == "ro"), "not read-only: {l}");
    }
    assert!(!sub.join("x").exists());
    // A plain read-only bind is read-only at its top only (Docker's behaviour for API < 1.44 and
    // bind-recursive=writable).
    let ro = format!("type=bind,src={h},dst=/h,readonly,bind-recursive=writable");
    let out = d.ok(&["run", "--rm", "--mount", &ro, "busybox", "sh", "-c", "touch /h/sub/w && echo wrote"]);
    assert_eq!(out, "wrote\n");
    // Docker's checks: recursive read-only needs a read-only mount.
    let bad = format!("type=bind,src={h},dst=/h,bind-recursive=readonly");
    let out = d.berth(&["create", "--mount", &bad, "busybox"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ReadOnlyForceRecursive requires ReadOnly"), "{}", stderr(&out));

    // A read-only bind keeps its source's nosuid, nodev and noexec (a remount would have cleared them).
    let l = locked.to_str().unwrap();
    for spec in [format!("{l}:/l:ro"), format!("{l}:/l")] {
        let out = d.ok(&["run", "--rm", "-v", &spec, "busybox", "grep", " /l ", "/proc/mounts"]);
        let opts: Vec<&str> = out.split(' ').nth(3).unwrap().split(',').collect();
        for want in ["nosuid", "nodev", "noexec"] {
            assert!(opts.contains(&want), "-v {spec}: {want} lost: {out}");
        }
        assert_eq!(opts.contains(&"ro"), spec.ends_with(":ro"), "{out}");
    }
    drop(guard);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn symlinks_of_the_image_still_lead_mounts_inside_the_root() {
    let d = daemon_with_busybox();
    image(&d, "links", &[], |root| {
        std::os::unix::fs::symlink("/tmp", root.join("t")).unwrap();
        std::os::unix::fs::symlink("../../tmp/deep", root.join("up")).unwrap();
    });
    d.ok(&["volume", "create", "vv"]);
    // Links of the image's own file system are followed inside the root, into a volume too.
    let out = d.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t/x",
        "-v",
        "vv:/up",
        "--tmpfs",
        "/up/inner",
        "links",
        "sh",
        "-c",
        "cat /proc/mounts",
    ]);
    let at: Vec<(String, String)> = mounts_in(&out, "/tmp");
    assert!(at.contains(&("/tmp/x".into(), "tmpfs".into())), "{out}");
    assert!(at.contains(&("/tmp/deep/inner".into(), "tmpfs".into())), "{out}");
    assert!(at.iter().any(|(m, _)| m == "/tmp/deep"), "{out}");
    // A link inside a volume is not followed for a mount target.
    d.ok(&["run", "--rm", "-v", "vv:/v", "busybox", "ln", "-s", "/etc", "/v/link"]);
    let out = d.berth(&["run", "--rm", "-v", "vv:/v", "--tmpfs", "/v/link/x", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/v/link is a symbolic link inside a mount"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn cp_into_a_stopped_container_resolves_its_mount_points_by_descriptor() {
    let d = daemon_with_busybox();
    d.ok(&["volume", "create", "outer"]);
    d.ok(&["volume", "create", "inner"]);
    d.ok(&["create", "--name", "stopped", "-v", "outer:/v", "-v", "inner:/v/sub", "busybox", "true"]);
    let local = d.dir.join("payload");
    std::fs::write(&local, "payload\n").unwrap();
    // The nested volume's mount point exists (created by the first cp), and the copy lands in the inner volume.
    d.ok(&["cp", local.to_str().unwrap(), "stopped:/v/sub/"]);
    assert!(d.dir.join("data/volumes/inner/_data/payload").is_file());
    // Another container sharing `outer` swaps the mount point for a symlink to a host path: cp refuses the mount
    // point instead of following the link (which would create it on the host).
    let outer = d.dir.join("data/volumes/outer/_data");
    let host_target = d.dir.join("host-target");
    std::fs::remove_dir(outer.join("sub")).unwrap();
    std::os::unix::fs::symlink(&host_target, outer.join("sub")).unwrap();
    let out = d.berth(&["cp", local.to_str().unwrap(), "stopped:/v/"]);
    assert!(!out.status.success());
    let tar = tar_of(&[("f", b'0', 0o644, "x\n")]);
    let (status, _, body) = api(&d, "PUT", "/containers/stopped/archive?path=/v", &tar);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("/v/sub is a symbolic link inside a mount"), "{body}");
    assert!(!host_target.exists(), "a mount point was created on the host");
    assert!(mounts_under(&d.dir).iter().all(|m| !m.contains("host-target")));
}
