//! Volumes and mounts end to end: named, anonymous, bind and tmpfs mounts, `--volumes-from`, copy-up, read-only
//! mounts, the volume commands, `cp` and the archive endpoints — through `berth`, the Engine API and the real docker
//! CLI — and that data outlives containers, daemon restarts and a `kill -9` of everything.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_integration::*;

fn volume_names(d: &Berthd) -> Vec<String> {
    d.ok(&["volume", "ls", "-q"]).split_whitespace().map(str::to_string).collect()
}

/// Runs berth, expects failure with `code`, returns stderr.
fn fails(d: &Berthd, args: &[&str], code: i32) -> String {
    let out = d.berth(args);
    assert_eq!(out.status.code(), Some(code), "berth {args:?}: stdout {} stderr {}", stdout(&out), stderr(&out));
    stderr(&out)
}

/// Mounts of this daemon on the host, but for the directories where the network manager pins namespaces and
/// volumes live (shared mount points of the daemon's own, kept while it runs).
fn leftover_mounts(d: &Berthd) -> Vec<String> {
    let pins = d.dir.join("run/netns");
    let volumes = d.dir.join("data/volumes");
    mounts_under(&d.dir).into_iter().filter(|m| Path::new(m) != pins && Path::new(m) != volumes).collect()
}

/// Removes every container and checks that no mount of this daemon is left on the host.
fn assert_no_leaked_mounts(d: &Berthd) {
    for id in d.ok(&["ps", "-aq", "--no-trunc"]).split_whitespace() {
        d.ok(&["rm", "-f", id]);
    }
    assert!(d.eventually(10, || leftover_mounts(d).is_empty()), "mounts left: {:?}", leftover_mounts(d));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn named_volumes_outlive_containers_and_daemon_restarts() {
    let mut d = daemon_with_busybox();
    d.ok(&["run", "--name", "writer", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"]);
    let mounts = d.inspect("writer", "{{json .Mounts}}");
    let m: serde_json::Value = serde_json::from_str(&mounts).unwrap();
    let m = &m[0];
    assert_eq!(
        (m["Type"].as_str(), m["Name"].as_str(), m["Destination"].as_str()),
        (Some("volume"), Some("data"), Some("/data"))
    );
    assert_eq!((m["Driver"].as_str(), m["Mode"].as_str(), m["RW"].as_bool()), (Some("local"), Some("z"), Some(true)));
    let mountpoint = d.dir.join("data/volumes/data/_data");
    assert_eq!(m["Source"].as_str(), Some(mountpoint.to_str().unwrap()));
    assert_eq!(std::fs::read_to_string(mountpoint.join("f")).unwrap(), "kept\n");
    assert_eq!(d.inspect("writer", "{{json .HostConfig.Binds}}"), "[\"data:/data\"]");
    d.ok(&["rm", "writer"]);
    assert_eq!(d.ok(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"]), "kept\n");
    d.restart();
    assert_eq!(d.ok(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"]), "kept\n");
    let v = d.ok(&["volume", "inspect", "data"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Mountpoint"].as_str(), Some(mountpoint.to_str().unwrap()));
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(v.get("Labels").is_some() && v.get("Options").is_some(), "{v}");
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn data_survives_kill_9_of_everything() {
    let mut d = daemon_with_busybox();
    d.ok(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", "scratch"]);
    let id = d
        .ok(&[
            "run",
            "-d",
            "-v",
            "crash:/data",
            "-v",
            "scratch:/scratch",
            "busybox",
            "sh",
            "-c",
            "echo before > /data/f; sync; echo t > /scratch/t; sleep 1000",
        ])
        .trim()
        .to_string();
    assert!(d.eventually(10, || d.ok(&["exec", &id, "cat", "/data/f"]).trim() == "before"));
    let scratch = d.dir.join("data/volumes/scratch/_data");
    assert!(mounts_under(&d.dir).iter().any(|m| Path::new(m) == scratch), "{:?}", mounts_under(&d.dir));
    // Everything dies at once: the daemon, the shim, the container.
    let pid: i32 = d.inspect(&id, "{{.State.Pid}}").parse().unwrap();
    d.kill9();
    for p in processes_with(&format!("{}/", d.dir.display())).into_iter().chain([pid]) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.restart();
    assert!(d.eventually(10, || d.inspect(&id, "{{.State.Status}}") == "exited"));
    // The tmpfs volume nobody uses any more is unmounted by the restarted daemon.
    assert!(!mounts_under(&d.dir).iter().any(|m| Path::new(m) == scratch), "{:?}", mounts_under(&d.dir));
    assert_eq!(d.ok(&["run", "--rm", "-v", "crash:/data", "busybox", "cat", "/data/f"]), "before\n");
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn copy_up_keeps_ownership_and_modes_and_nocopy_disables_it() {
    let d = daemon_with_busybox();
    image(&d, "withdata", &["VOLUME /data"], |root| {
        let data = root.join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("f"), "from the image\n").unwrap();
        std::fs::write(data.join("sub/g"), "deep\n").unwrap();
        std::os::unix::fs::symlink("f", data.join("link")).unwrap();
        std::fs::set_permissions(data.join("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
        for p in [data.clone(), data.join("f"), data.join("sub"), data.join("sub/g")] {
            std::os::unix::fs::lchown(&p, Some(1000), Some(1000)).unwrap();
        }
    });
    // A new named volume over /data gets the image's content, owners and modes.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "cu:/data",
        "withdata",
        "sh",
        "-c",
        "stat -c '%u:%g %a %n' /data /data/f /data/sub/g; readlink /data/link; cat /data/f",
    ]);
    assert_eq!(out, "1000:1000 750 /data\n1000:1000 640 /data/f\n1000:1000 644 /data/sub/g\nf\nfrom the image\n");
    let host = d.dir.join("data/volumes/cu/_data");
    let meta = std::fs::metadata(&host).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (1000, 0o750));
    // Only into an empty volume: a second use keeps what the volume holds.
    d.ok(&["run", "--rm", "-v", "cu:/data", "withdata", "sh", "-c", "echo changed > /data/f"]);
    assert_eq!(d.ok(&["run", "--rm", "-v", "cu:/data", "withdata", "cat", "/data/f"]), "changed\n");
    // nocopy, both spellings.
    assert_eq!(d.ok(&["run", "--rm", "-v", "nc1:/data:nocopy", "withdata", "ls", "-A", "/data"]), "");
    let m = "type=volume,source=nc2,target=/data,volume-nocopy";
    assert_eq!(d.ok(&["run", "--rm", "--mount", m, "withdata", "ls", "-A", "/data"]), "");
    // The image's VOLUME: an anonymous volume with the content; `rm -v` removes it, named volumes stay.
    d.ok(&["run", "--name", "anon", "withdata", "true"]);
    let name = d.inspect("anon", "{{range .Mounts}}{{.Name}}{{end}}");
    assert_eq!(name.len(), 64, "{name}");
    assert_eq!(d.inspect("anon", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Mode}}{{end}}"), "volume /data");
    assert_eq!(
        std::fs::read_to_string(d.dir.join("data/volumes").join(&name).join("_data/f")).unwrap(),
        "from the image\n"
    );
    assert_eq!(
        d.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &name]).trim(),
        "{\"com.docker.volume.anonymous\":\"\"}"
    );
    d.ok(&["run", "--name", "named", "-v", "keep:/data", "withdata", "true"]);
    d.ok(&["rm", "-v", "anon", "named"]);
    let names = volume_names(&d);
    assert!(!names.contains(&name) && names.contains(&"keep".to_string()), "{names:?}");
    // `run --rm` removes its anonymous volumes too; `-v /path` is anonymous.
    let before = volume_names(&d).len();
    d.ok(&["run", "--rm", "-v", "/other", "withdata", "true"]);
    assert_eq!(volume_names(&d).len(), before);
    // Mounting a volume over a file of the image is refused at creation.
    let before = volume_names(&d);
    let out = d.berth(&["create", "-v", "/data/f", "withdata", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot mount volume over existing file"), "{}", stderr(&out));
    assert_eq!(volume_names(&d), before, "the anonymous volumes of a failed create stay");
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn read_only_mounts_refuse_writes() {
    let d = daemon_with_busybox();
    let host = d.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "host file\n").unwrap();
    let hs = host.display().to_string();
    let out = d.berth(&["run", "--rm", "-v", "rov:/data:ro", "busybox", "touch", "/data/x"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    let bind = format!("type=bind,source={hs},target=/h,readonly");
    let out = d.berth(&["run", "--rm", "--mount", &bind, "busybox", "sh", "-c", "cat /h/h && touch /h/new"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "host file\n");
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    assert!(!host.join("new").exists());
    assert_eq!(
        d.inspect_mode(&["create", "--name", "ro", "-v", &format!("{hs}:/h:ro"), "busybox"], "ro"),
        "bind /h ro false rprivate"
    );
    // --read-only root with writable mounts.
    let out = d.ok(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "rwv:/data",
        "-v",
        &format!("{hs}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo ok > /data/f && echo w > /h/w && cat /data/f; touch /etc/x 2>&1; true",
    ]);
    assert!(out.starts_with("ok\n") && out.contains("Read-only file system"), "{out}");
    assert_eq!(std::fs::read_to_string(host.join("w")).unwrap(), "w\n");
    assert_no_leaked_mounts(&d);
}

trait InspectMode {
    fn inspect_mode(&self, create: &[&str], name: &str) -> String;
}

impl InspectMode for Berthd {
    /// Creates a container and shows its first mount as `type destination mode rw propagation`.
    fn inspect_mode(&self, create: &[&str], name: &str) -> String {
        self.ok(create);
        self.inspect(name, "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}")
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn binds_tmpfs_and_volumes_from() {
    let d = daemon_with_busybox();
    let host = d.dir.join("share");
    std::fs::create_dir_all(&host).unwrap();
    let hs = host.display().to_string();
    d.ok(&["run", "--rm", "-v", &format!("{hs}:/share"), "busybox", "sh", "-c", "echo from-container > /share/out"]);
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "from-container\n");
    // `-v` creates a missing host directory, as Docker does.
    let missing = d.dir.join("made/by/v");
    d.ok(&["run", "--rm", "-v", &format!("{}:/m", missing.display()), "busybox", "true"]);
    assert!(missing.is_dir());
    // A single file can be bound.
    std::fs::write(host.join("conf"), "setting=1\n").unwrap();
    let out = d.ok(&["run", "--rm", "-v", &format!("{hs}/conf:/etc/app.conf:ro"), "busybox", "cat", "/etc/app.conf"]);
    assert_eq!(out, "setting=1\n");
    // tmpfs mounts: --mount type=tmpfs with a size, --tmpfs.
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m",
        "--tmpfs",
        "/run2",
        "busybox",
        "grep",
        "-E",
        " /(t|run2) ",
        "/proc/mounts",
    ]);
    assert!(out.contains("tmpfs /t tmpfs") && out.contains("size=1024k") && out.contains(" /run2 "), "{out}");
    // --volumes-from, read-only.
    d.ok(&["create", "--name", "source", "-v", "shared:/s", "-v", "/anon", "busybox"]);
    d.ok(&["run", "--rm", "--volumes-from", "source", "busybox", "sh", "-c", "echo one > /s/f; echo two > /anon/f"]);
    let out =
        d.berth(&["run", "--rm", "--volumes-from", "source:ro", "busybox", "sh", "-c", "cat /s/f /anon/f; touch /s/x"]);
    assert_eq!(stdout(&out), "one\ntwo\n");
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    let err = fails(&d, &["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"], 125);
    assert!(err.contains("No such container: nosuch"), "{err}");
    // A volume over a directory holding the container's own /etc files keeps them visible.
    let out =
        d.ok(&["run", "--rm", "-v", "etcv:/etc", "busybox", "sh", "-c", "cat /etc/hostname >/dev/null && ls /etc"]);
    assert!(out.contains("passwd") && out.contains("hosts"), "{out}");
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn bad_input_is_refused_with_dockers_errors_and_creates_nothing() {
    let d = daemon_with_busybox();
    let containers = || d.ok(&["ps", "-aq"]);
    let (c0, v0) = (containers(), volume_names(&d));
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "-v", "rel/dir:/x", "busybox", "true"],
            "create rel/dir: \"rel/dir\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
        ),
        (
            &["run", "-v", "/tmp:rel", "busybox", "true"],
            "invalid volume specification: '/tmp:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            &["run", "-v", "vol:/", "busybox", "true"],
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
        ),
        (
            &["run", "--mount", "type=bind,source=/nonexistent/berth/src,target=/x", "busybox", "true"],
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/berth/src",
        ),
        (
            &["run", "--mount", "type=bind,source=rel,target=/x", "busybox", "true"],
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            &["run", "--mount", "type=volume,target=rel", "busybox", "true"],
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        (&["run", "-v", "a1:/x", "-v", "b1:/x", "busybox", "true"], "Duplicate mount point: /x"),
        (&["run", "-v", "good:/x", "-v", "bad!:/y", "busybox", "true"], "\"bad!\" includes invalid characters"),
    ];
    for (args, msg) in cases {
        let err = fails(&d, args, 125);
        assert!(err.contains(msg), "berth {args:?}: {err}");
    }
    let err = fails(&d, &["run", "--volume-driver", "nope", "-v", "dv:/x", "busybox", "true"], 125);
    assert!(err.contains("error looking up volume plugin nope: plugin \"nope\" not found"), "{err}");
    let err = fails(&d, &["volume", "create", "-d", "nope", "x1"], 1);
    assert!(err.contains("plugin \"nope\" not found"), "{err}");
    let err = fails(&d, &["volume", "create", "bad/name"], 1);
    assert!(err.contains("includes invalid characters for a local volume name"), "{err}");
    let err = fails(&d, &["volume", "create", "-o", "bogus=1", "x2"], 1);
    assert!(err.contains("invalid option: \"bogus\""), "{err}");
    assert_eq!(containers(), c0, "a container was created");
    assert_eq!(volume_names(&d), v0, "a volume was created");
    // The statuses, through the API.
    let (s, m) = api_message(&d, "POST", "/v1.53/volumes/create", r#"{"Name":"a/b"}"#);
    assert_eq!(s, 400, "{m}");
    let (s, _) = api_message(&d, "POST", "/v1.53/volumes/create", r#"{"Name":"x3","Driver":"nope"}"#);
    assert_eq!(s, 404);
    let (s, m) = api_message(&d, "GET", "/v1.53/volumes/nope", "");
    assert_eq!((s, m.as_str()), (404, "get nope: no such volume"));
    let body =
        r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/nonexistent/x","Target":"/x"}]}}"#;
    let (s, _) = api_message(&d, "POST", "/v1.53/containers/create", body);
    assert_eq!(s, 400);
    let body = r#"{"Image":"busybox","HostConfig":{"Binds":["v:/"]}}"#;
    assert_eq!(api_message(&d, "POST", "/v1.53/containers/create", body).0, 400);
    // In use: 409, `-f` does not change that; a missing volume with -f is fine.
    d.ok(&["create", "--name", "user", "-v", "busy:/b", "busybox"]);
    let err = fails(&d, &["volume", "rm", "busy"], 1);
    assert!(err.contains("remove busy: volume is in use - ["), "{err}");
    assert_eq!(api_message(&d, "DELETE", "/v1.53/volumes/busy?force=1", "").0, 409);
    assert!(fails(&d, &["volume", "rm", "nosuchvol"], 1).contains("no such volume"));
    d.ok(&["volume", "rm", "-f", "nosuchvol"]);
    d.ok(&["rm", "user"]);
    d.ok(&["volume", "rm", "busy"]);
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn symlinks_in_the_rootfs_cannot_move_mounts_or_copies_outside() {
    let d = daemon_with_busybox();
    let outside = PathBuf::from(format!("/tmp/berth-escape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    let target = format!("../../../../../../../../..{}", outside.display());
    let inside = outside.display().to_string();
    image(&d, "links", &[], |root| {
        std::fs::create_dir_all(root.join(inside.trim_start_matches('/'))).unwrap();
        std::os::unix::fs::symlink(&target, root.join("rel")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
    });
    // The mount lands at <rootfs>/tmp/berth-escape-…/sub, never on the host's path.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "esc:/rel/sub",
        "-v",
        "esc2:/abs/sub",
        "links",
        "sh",
        "-c",
        &format!("echo in > {}/sub/f; ls {}", outside.display(), outside.display()),
    ]);
    assert_eq!(out, "sub\n");
    assert!(!outside.exists(), "a mount escaped to {}", outside.display());
    // cp through the links stays inside the container too.
    d.ok(&["create", "--name", "cpesc", "links", "sh"]);
    let local = d.dir.join("payload");
    std::fs::write(&local, "payload\n").unwrap();
    d.ok(&["cp", local.to_str().unwrap(), "cpesc:/tmp/"]);
    d.ok(&["cp", local.to_str().unwrap(), "cpesc:/abs/"]);
    d.ok(&["cp", local.to_str().unwrap(), "cpesc:/rel/renamed"]);
    assert!(!outside.exists(), "cp escaped to {}", outside.display());
    let listing = d.ok(&["cp", &format!("cpesc:{inside}"), "-"]);
    assert!(listing.contains("/payload") && listing.contains("/renamed"), "the copies are in the container: {listing}");
    // A tar with `..` and absolute names stays inside the destination.
    let tar = tar_with(&[("../../../../etc/berth-escape-test", "x"), ("/abs-name", "y")]);
    let (status, _, body) = api(&d, "PUT", "/containers/cpesc/archive?path=/tmp", &tar);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(!Path::new("/etc/berth-escape-test").exists());
    let out = d.ok(&["cp", "cpesc:/tmp/etc/berth-escape-test", "-"]);
    assert!(out.contains("berth-escape-test"), "{out}");
    let _ = std::fs::remove_dir_all(&outside);
    assert_no_leaked_mounts(&d);
}

/// A tar with the given regular files (names written as they are, unchecked).
fn tar_with(files: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<TarEntry<'_>> = files.iter().map(|(name, data)| (*name, b'0', 0o644, *data)).collect();
    tar_of(&entries)
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn cp_both_ways_running_and_stopped() {
    let d = daemon_with_busybox();
    let local = d.dir.join("local");
    std::fs::create_dir_all(local.join("tree/sub")).unwrap();
    std::fs::write(local.join("tree/sub/file"), "nested\n").unwrap();
    std::fs::write(local.join("single"), "single\n").unwrap();
    let l = |p: &str| local.join(p).display().to_string();
    d.ok(&["run", "-d", "--name", "live", "-v", "cpvol:/vol", "-v", "rocp:/ro:ro", "busybox", "sleep", "1000"]);
    // Into a running container: the writable layer, a volume, a new name.
    d.ok(&["cp", &l("tree"), "live:/root/"]);
    d.ok(&["cp", &l("single"), "live:/vol/"]);
    d.ok(&["cp", &l("single"), "live:/tmp/renamed"]);
    assert_eq!(
        d.ok(&["exec", "live", "cat", "/root/tree/sub/file", "/vol/single", "/tmp/renamed"]),
        "nested\nsingle\nsingle\n"
    );
    assert_eq!(std::fs::read_to_string(d.dir.join("data/volumes/cpvol/_data/single")).unwrap(), "single\n");
    // Out of it.
    d.ok(&["exec", "live", "sh", "-c", "mkdir -p /out/d && echo made > /out/d/x && ln -s x /out/d/l"]);
    d.ok(&["cp", "live:/out/d", &l("fromlive")]);
    assert_eq!(std::fs::read_to_string(local.join("fromlive/x")).unwrap(), "made\n");
    assert_eq!(std::fs::read_link(local.join("fromlive/l")).unwrap(), Path::new("x"));
    d.ok(&["cp", "live:/out/d/.", &l("contents")]);
    assert!(local.join("contents/x").is_file());
    // Tars on stdout and stdin.
    let tar = d.berth(&["cp", "live:/vol/single", "-"]);
    assert!(tar.status.success());
    assert!(String::from_utf8_lossy(&tar.stdout).contains("single\n"));
    let out = d.berth_input(&["cp", "-", "live:/tmp"], &tar_with(&[("fromstdin", "stdin data\n")]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ok(&["exec", "live", "cat", "/tmp/fromstdin"]), "stdin data\n");
    // Read-only targets and missing paths.
    let err = fails(&d, &["cp", &l("single"), "live:/ro/"], 1);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");
    let err = fails(&d, &["cp", "live:/nope", &l("x")], 1);
    assert!(err.contains("Could not find the file /nope in container live"), "{err}");
    // The path-stat header of HEAD, as the docker CLI reads it.
    let (status, headers, _) = api(&d, "HEAD", "/v1.53/containers/live/archive?path=/out/d/l", b"");
    assert_eq!(status, 200);
    let stat = headers.iter().find(|(k, _)| k == "x-docker-container-path-stat").map(|(_, v)| v.clone()).unwrap();
    let json = decode_base64(&stat);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["name"], "l");
    assert_eq!(v["linkTarget"], "/out/d/x");
    assert_eq!(v["mode"].as_u64().unwrap() & (1 << 27), 1 << 27, "symlink bit: {v}");
    assert_eq!(api(&d, "HEAD", "/v1.53/containers/live/archive?path=/nope", b"").0, 404);
    // A stopped container: its writable layer and its volumes.
    d.ok(&["stop", "-t", "0", "live"]);
    d.ok(&["cp", &l("single"), "live:/etc/copied"]);
    d.ok(&["cp", &l("tree"), "live:/vol/"]);
    d.ok(&["cp", "live:/root/tree/sub/file", &l("from-stopped")]);
    assert_eq!(std::fs::read_to_string(local.join("from-stopped")).unwrap(), "nested\n");
    d.ok(&["cp", "live:/vol/tree/sub/file", &l("vol-from-stopped")]);
    assert_eq!(std::fs::read_to_string(local.join("vol-from-stopped")).unwrap(), "nested\n");
    let running_pin = d.dir.join("run/netns").join(d.inspect("live", "{{.Id}}"));
    let left: Vec<String> = leftover_mounts(&d).into_iter().filter(|m| Path::new(m) != running_pin).collect();
    assert!(left.is_empty(), "the stopped container's mounts leaked: {left:?}");
    d.ok(&["start", "live"]);
    assert_eq!(d.ok(&["exec", "live", "cat", "/etc/copied", "/vol/tree/sub/file"]), "single\nnested\n");
    // --read-only root: only its volumes take copies.
    d.ok(&["create", "--name", "rofs", "--read-only", "-v", "rofsvol:/v", "busybox"]);
    let err = fails(&d, &["cp", &l("single"), "rofs:/tmp/"], 1);
    assert!(err.contains("container rootfs is marked read-only"), "{err}");
    d.ok(&["cp", &l("single"), "rofs:/v/"]);
    // noOverwriteDirNonDir, as the docker CLI sends it.
    d.ok(&["exec", "live", "mkdir", "-p", "/clash/single"]);
    let err = fails(&d, &["cp", &l("single"), "live:/clash/"], 1);
    assert!(err.contains("cannot overwrite directory"), "{err}");
    assert_no_leaked_mounts(&d);
}

fn decode_base64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | A.iter().position(|a| *a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn volume_commands_filters_and_prune() {
    let d = daemon_with_busybox();
    d.ok(&["volume", "create", "--label", "tier=db", "--label", "keep", "labelled"]);
    d.ok(&["volume", "create", "plain"]);
    let generated = d.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(generated.len(), 64);
    d.ok(&["create", "--name", "holder", "-v", "plain:/p", "-v", "/anon", "busybox"]);
    let ls = d.ok(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n") && ls.contains("local     labelled\n"), "{ls}");
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "label=tier=db"]), "labelled\n");
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "label=keep"]), "labelled\n");
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "name=plai"]), "plain\n");
    let dangling = d.ok(&["volume", "ls", "-q", "-f", "dangling=true"]);
    assert!(
        dangling.contains("labelled") && dangling.contains(&generated) && !dangling.contains("plain"),
        "{dangling}"
    );
    let used = d.ok(&["volume", "ls", "-q", "-f", "dangling=false"]);
    assert!(used.contains("plain") && !used.contains("labelled"), "{used}");
    assert_eq!(
        d.ok(&["volume", "ls", "--format", "{{.Name}} {{.Labels}}", "-f", "name=labelled"]),
        "labelled keep=,tier=db\n"
    );
    assert!(fails(&d, &["volume", "ls", "-f", "bogus=1"], 1).contains("invalid filter"));
    assert_eq!(d.ok(&["volume", "inspect", "-f", "{{.Labels.tier}} {{.Scope}}", "labelled"]), "db local\n");
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", "labelled"]), "labelled\n");
    let holder = d.inspect("holder", "{{.Id}}");
    assert_eq!(d.ok(&["ps", "-aq", "--no-trunc", "--filter", "volume=plain"]).trim(), holder);
    assert_eq!(d.ok(&["ps", "-aq", "--filter", "volume=labelled"]), "");
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"]);
    assert!(df.contains("Local Volumes 4 2\n"), "{df}");
    // prune: only unused anonymous volumes by default (Docker 23+), all unused with -a, label filters.
    let anon_of_holder =
        d.inspect("holder", "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}");
    d.ok(&["run", "--name", "gone", "-v", "/tmp/x", "busybox", "true"]);
    let anon_of_gone = d.inspect("gone", "{{range .Mounts}}{{.Name}}{{end}}");
    d.ok(&["rm", "gone"]);
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(
        out.contains("Deleted Volumes:") && out.contains(&anon_of_gone) && out.contains("Total reclaimed space:"),
        "{out}"
    );
    let names = volume_names(&d);
    assert!(
        names.contains(&"labelled".to_string()) && names.contains(&generated) && names.contains(&anon_of_holder),
        "{names:?}"
    );
    let out = d.ok(&["volume", "prune", "-a", "-f", "--filter", "label=tier=db"]);
    assert!(out.contains("labelled"), "{out}");
    let out = d.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains(&generated) && !out.contains("plain"), "{out}");
    assert_eq!(volume_names(&d).len(), 2, "the volumes of `holder` stay");
    d.ok(&["rm", "-v", "holder"]);
    assert_eq!(volume_names(&d), vec!["plain".to_string()]);
    assert_eq!(d.ok(&["volume", "rm", "plain"]), "plain\n");
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn local_driver_options_mount_on_first_use() {
    let mut d = daemon_with_busybox();
    d.ok(&["volume", "create", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "fast"]);
    let host = d.dir.join("bound");
    std::fs::create_dir_all(&host).unwrap();
    let o = format!("device={}", host.display());
    d.ok(&["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", &o, "hostbound"]);
    assert_eq!(
        d.ok(&["volume", "inspect", "-f", "{{json .Options}}", "fast"]).trim(),
        "{\"device\":\"tmpfs\",\"o\":\"size=2m\",\"type\":\"tmpfs\"}"
    );
    let data = d.dir.join("data/volumes/fast/_data");
    let dir = d.dir.clone();
    let mounted = || mounts_under(&dir).iter().any(|m| Path::new(m) == data);
    d.ok(&["run", "-d", "--name", "one", "-v", "fast:/f", "busybox", "sh", "-c", "echo shared > /f/x; sleep 1000"]);
    assert!(mounted());
    assert!(d.eventually(5, || d.ok(&["run", "--rm", "-v", "fast:/f", "busybox", "cat", "/f/x"]) == "shared\n"));
    let out = d.ok(&["run", "--rm", "-v", "fast:/f", "busybox", "grep", " /f ", "/proc/mounts"]);
    assert!(out.contains("tmpfs") && out.contains("size=2048k"), "{out}");
    // Still used by `one` after a daemon restart.
    d.restart();
    assert!(mounted());
    d.ok(&["rm", "-f", "one"]);
    assert!(d.eventually(5, || !mounted()), "the tmpfs stayed mounted with no user");
    // A bind of a host directory, with copy-up into it.
    d.ok(&["run", "--rm", "-v", "hostbound:/etc", "busybox", "true"]);
    assert!(host.join("passwd").is_file(), "copy-up into the bound directory");
    d.ok(&["run", "--rm", "-v", "hostbound:/b", "busybox", "sh", "-c", "echo via-volume > /b/file"]);
    assert_eq!(std::fs::read_to_string(host.join("file")).unwrap(), "via-volume\n");
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn volumes_with_runc() {
    require_root();
    let runc = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("runc").is_file()));
    if !runc {
        skip_missing_tool("runc is not installed; volumes were not tried with it");
        return;
    }
    let d = Berthd::start_with(&["--runtime", "runc"]);
    d.busybox();
    let host = d.dir.join("rh");
    std::fs::create_dir_all(&host).unwrap();
    let b = format!("{}:/h", host.display());
    d.ok(&["run", "--rm", "-v", "rv:/data", "-v", &b, "busybox", "sh", "-c", "echo r > /data/f; echo h > /h/f"]);
    assert_eq!(d.ok(&["run", "--rm", "-v", "rv:/data:ro", "busybox", "cat", "/data/f"]), "r\n");
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "h\n");
    let out = d.berth(&["run", "--rm", "-v", "rv:/data:ro", "busybox", "touch", "/data/x"]);
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    assert_eq!(
        d.ok(&["run", "--rm", "-v", "etcr:/etc", "busybox", "cat", "/etc/passwd"]).lines().next(),
        Some("root:x:0:0:root:/root:/bin/sh")
    );
    assert_no_leaked_mounts(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_volumes_mounts_and_cp() {
    require_root();
    if docker_cli().is_none() {
        return;
    }
    let d = Berthd::start();
    d.busybox();
    assert_eq!(docker_ok(&d, &["volume", "create", "--label", "a=b", "dv"]), "dv\n");
    assert!(docker_ok(&d, &["volume", "ls"]).contains("local     dv"));
    assert_eq!(
        docker_ok(&d, &["volume", "inspect", "-f", "{{.Driver}} {{.Labels.a}} {{.Scope}}", "dv"]),
        "local b local\n"
    );
    let host = d.dir.join("dh");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("type=bind,src={},dst=/h", host.display());
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "dc",
            "-v",
            "dv:/data",
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,dst=/t",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let mounts = docker_ok(&d, &["inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}", "dc"]);
    assert_eq!(mounts.trim(), "volume:/data bind:/h tmpfs:/t");
    // docker cp, both ways, running then stopped.
    let local = d.dir.join("dl");
    std::fs::create_dir_all(local.join("dir")).unwrap();
    std::fs::write(local.join("dir/a"), "a\n").unwrap();
    docker_ok(&d, &["cp", local.join("dir").to_str().unwrap(), "dc:/data/"]);
    assert_eq!(docker_ok(&d, &["exec", "dc", "cat", "/data/dir/a"]), "a\n");
    docker_ok(&d, &["exec", "dc", "sh", "-c", "echo b > /data/dir/b"]);
    docker_ok(&d, &["cp", "dc:/data/dir", local.join("back").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(local.join("back/b")).unwrap(), "b\n");
    docker_ok(&d, &["stop", "-t", "0", "dc"]);
    docker_ok(&d, &["cp", local.join("dir/a").to_str().unwrap(), "dc:/root/a-stopped"]);
    docker_ok(&d, &["cp", "dc:/root/a-stopped", local.join("a-back").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(local.join("a-back")).unwrap(), "a\n");
    let out = d.docker(&["cp", "dc:/nope", local.to_str().unwrap()]).unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Could not find the file /nope"), "{}", stderr(&out));
    let out = d.docker(&["volume", "rm", "dv"]).unwrap();
    assert!(stderr(&out).contains("volume is in use"), "{}", stderr(&out));
    docker_ok(&d, &["rm", "-v", "dc"]);
    docker_ok(&d, &["volume", "rm", "dv"]);
    let out = d.docker(&["run", "--rm", "-v", "/tmp:rel", "busybox", "true"]).unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("mount path must be absolute"), "{}", stderr(&out));
    assert_no_leaked_mounts(&d);
}

/// Review findings: the image's VOLUMEs stay when the user adds anonymous volumes; `--tmpfs /` and relative tmpfs
/// paths are refused at creation; `cp` out of a container keeps hard links inside the destination and replaces a
/// symlink in the way instead of following it; `copyUIDGID`/`-u` never read the host's files through an absolute
/// symlink in the image.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn review_fixes_volumes_tmpfs_cp_links() {
    let d = daemon_with_busybox();
    image(&d, "vols", &["VOLUME /data"], |root| {
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/a"), "a\n").unwrap();
        std::fs::hard_link(root.join("data/a"), root.join("data/b")).unwrap();
    });
    d.ok(&["create", "--name", "both", "-v", "/cache", "vols", "true"]);
    let dests = d.inspect("both", "{{range .Mounts}}{{.Destination}} {{end}}");
    assert!(dests.contains("/data") && dests.contains("/cache"), "{dests}");
    let err = fails(&d, &["create", "--tmpfs", "/", "busybox"], 1);
    assert!(err.contains("destination can't be '/'"), "{err}");
    let err = fails(&d, &["create", "--tmpfs", "rel", "busybox"], 125);
    assert!(err.contains("must be absolute"), "{err}");
    // cp of a directory with hard links, into a destination where `data` is a symlink to elsewhere.
    let out = d.dir.join("cp-out");
    let elsewhere = d.dir.join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("data")).unwrap();
    d.ok(&["create", "--name", "src", "vols", "true"]);
    d.ok(&["cp", "src:/data", out.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(out.join("data")).unwrap().is_dir(), "the symlink was replaced");
    assert_eq!(std::fs::read_to_string(out.join("data/b")).unwrap(), "a\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(out.join("data/a")).unwrap().ino(),
        std::fs::metadata(out.join("data/b")).unwrap().ino(),
        "still one file, linked twice"
    );
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none(), "nothing was written through the symlink");
    // A user database that is an absolute symlink resolves inside the image (here: to nothing), not on the host:
    // the host has a user `daemon`, the image none.
    image(&d, "evil", &[], |root| {
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("etc/passwd")).unwrap();
    });
    let out = d.berth(&["run", "--rm", "-u", "daemon", "evil", "id", "-u"]);
    assert_ne!(out.status.code(), Some(0), "user daemon came from the host's /etc/passwd: {}", stdout(&out));
    assert_eq!(d.ok(&["run", "--rm", "-u", "0", "evil", "id", "-u"]), "0\n");
}
