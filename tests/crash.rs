//! Crash consistency (issue 11, point 2): berthd is killed (`SIGKILL`, by its own fault injection: `BERTH_FAULT`,
//! debug builds) at named points of create, start, rm, network connect/disconnect, volume create/rm, import, load,
//! build and pull; restarted without the fault, it must show no half image, keep every listed image complete and
//! verified, leave no orphan container directory, bundle, shim, cgroup, network namespace, veth, nft rule, layer,
//! blob or volume directory, let the interrupted operation run again, and keep a container started before the
//! crash running with its log intact.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_integration::*;
use sha2::{Digest, Sha256};

/// A daemon with a container that logs a numbered line every 50 ms, started before any crash.
struct Scene {
    d: Berthd,
    keeper: String,
    keeper_pid: String,
    /// Every container ID this daemon's roots ever showed (taken before each restart, so IDs whose creation the
    /// crash cut short are checked too).
    seen: BTreeSet<String>,
    /// `builder prune` before checking layers (build-cache entries hold layers no image uses).
    prune_cache: bool,
}

impl Scene {
    fn new() -> Scene {
        let d = daemon_with_busybox();
        let keeper = d
            .ok(&["run", "-d", "busybox", "sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"])
            .trim()
            .to_string();
        let keeper_pid = d.inspect(&keeper, "{{.State.Pid}}");
        Scene { d, keeper, keeper_pid, seen: BTreeSet::new(), prune_cache: false }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.d.dir.join(rel)
    }

    /// Restarts the daemon with `BERTH_FAULT=point` (`name` or `name@N`) and runs `op` under it ([`crash_at`]),
    /// noting the container IDs the dead daemon left on disk.
    fn crash(&mut self, point: &str, op: impl Fn(&Berthd) -> std::process::Output) {
        let mut ids = BTreeSet::new();
        crash_at(&mut self.d, point, op, |d| {
            for rel in ["data/containers", "run/containers"] {
                ids.extend(names_in(&d.dir.join(rel)));
            }
        });
        self.seen.extend(ids);
    }

    /// The invariants after a restart (see the file's documentation).
    fn check(&mut self, point: &str) {
        let d = &self.d;
        let all: BTreeSet<String> = d.ok(&["ps", "-aq", "--no-trunc"]).split_whitespace().map(str::to_string).collect();
        let running: BTreeSet<String> =
            d.ok(&["ps", "-q", "--no-trunc"]).split_whitespace().map(str::to_string).collect();
        self.seen.extend(all.iter().cloned());
        // The keeper kept running (the same process) and its log has every line, in order.
        assert!(running.contains(&self.keeper), "{point}: the container started before the crash is not running");
        assert_eq!(d.inspect(&self.keeper, "{{.State.Pid}}"), self.keeper_pid, "{point}: the keeper was restarted");
        let logs = d.ok(&["logs", &self.keeper]);
        let lines: Vec<&str> = logs.lines().collect();
        assert!(!lines.is_empty(), "{point}: the keeper logged nothing");
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(*l, format!("line {i}"), "{point}: keeper log has a gap or a damaged line at {i}");
        }
        // Directories: a container directory per record, a bundle per running container, nothing else.
        let data_dirs = names_in(&self.path("data/containers"));
        assert!(
            data_dirs.is_subset(&all),
            "{point}: container directories without a record: {:?}",
            diff(&data_dirs, &all)
        );
        let bundles = names_in(&self.path("run/containers"));
        assert!(
            bundles.is_subset(&running),
            "{point}: bundles of containers not running: {:?}",
            diff(&bundles, &running)
        );
        // Shims: one per running container.
        let prefix = format!("{}/", self.path("run/containers").display());
        let mut shims: Vec<String> = processes_with(&prefix)
            .into_iter()
            .filter_map(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).into_owned();
                let start = cmd.find(&prefix)? + prefix.len();
                Some(cmd[start..].chars().take(64).collect())
            })
            .collect();
        shims.sort();
        let want: Vec<String> = running.iter().cloned().collect();
        assert_eq!(shims, want, "{point}: shims vs running containers");
        // Cgroups, network namespaces and veths only for running containers.
        let stopped: Vec<String> = self.seen.iter().filter(|id| !running.contains(*id)).cloned().collect();
        assert_eq!(cgroups_left(&stopped), Vec::<String>::new(), "{point}: cgroups of containers not running");
        let pins = names_in(&self.path("run/netns"));
        assert!(pins.is_subset(&running), "{point}: netns pins of containers not running: {:?}", diff(&pins, &running));
        let netns_dir = self.path("run/netns").display().to_string();
        let volumes_dir = self.path("data/volumes").display().to_string();
        for m in mounts_under(&d.dir) {
            let ok = m == netns_dir
                || m == volumes_dir
                || m.strip_prefix(&format!("{netns_dir}/")).is_some_and(|id| running.contains(id));
            assert!(ok, "{point}: unexpected mount {m}");
        }
        let links = host_links();
        for id in &self.seen {
            let mine: Vec<&String> = links.iter().filter(|l| l.starts_with(&format!("vb{}", &id[..10]))).collect();
            let expected = if running.contains(id) {
                d.inspect(id, "{{len .NetworkSettings.Networks}}").parse::<usize>().unwrap()
            } else {
                0
            };
            let expected = if running.contains(id) && d.inspect(id, "{{.HostConfig.NetworkMode}}") == "none" {
                0
            } else {
                expected
            };
            assert_eq!(mine.len(), expected, "{point}: veths of {}: {mine:?}", &id[..12]);
        }
        // No build workspace outlives its build.
        for rel in ["data/build", "run/build"] {
            let ws: Vec<String> = names_in_any(&self.path(rel)).into_iter().filter(|n| n.starts_with("ws-")).collect();
            assert!(ws.is_empty(), "{point}: build workspaces left in {rel}: {ws:?}");
        }
        // Volumes: a directory per record.
        let vols: BTreeSet<String> = d.ok(&["volume", "ls", "-q"]).split_whitespace().map(str::to_string).collect();
        let vol_dirs = names_in(&self.path("data/volumes"));
        assert!(
            vol_dirs.is_subset(&vols),
            "{point}: volume directories without a record: {:?}",
            diff(&vol_dirs, &vols)
        );
        self.check_images(point);
    }

    /// Every listed image's layers are there and verified, every layer directory and blob belongs to a listed image,
    /// and every image runs.
    fn check_images(&self, point: &str) {
        let d = &self.d;
        if self.prune_cache {
            d.ok(&["builder", "prune", "-af"]);
        }
        let images: BTreeSet<String> =
            d.ok(&["images", "-aq", "--no-trunc"]).split_whitespace().map(str::to_string).collect();
        let mut chains = HashSet::new();
        let mut blobs = HashSet::new();
        for id in &images {
            blobs.insert(id.trim_start_matches("sha256:").to_string());
            let layers: Vec<String> = serde_json::from_str(&d.inspect(id, "{{json .RootFS.Layers}}")).unwrap();
            let mut chain: Option<String> = None;
            for diff in &layers {
                let next = match &chain {
                    None => diff.clone(),
                    Some(c) => format!("sha256:{}", hex::encode(Sha256::digest(format!("{c} {diff}").as_bytes()))),
                };
                let hexid = next.trim_start_matches("sha256:").to_string();
                let dir = self.path("data/layers").join(&hexid).join("diff");
                assert!(dir.is_dir(), "{point}: image {id}: layer {next} is not unpacked");
                let dhex = diff.trim_start_matches("sha256:").to_string();
                let tar = std::fs::read(self.path("data/content/blobs/sha256").join(&dhex)).unwrap();
                assert_eq!(hex::encode(Sha256::digest(&tar)), dhex, "{point}: image {id}: layer blob {diff} damaged");
                chains.insert(hexid);
                blobs.insert(dhex);
                chain = Some(next);
            }
            let out = d.berth(&["run", "--rm", "--network", "none", id, "true"]);
            assert!(out.status.success(), "{point}: image {id} does not run: {}", stderr(&out));
        }
        let layer_dirs: HashSet<String> =
            names_in_any(&self.path("data/layers")).into_iter().filter(|n| n != "empty").collect();
        let extra: Vec<&String> = layer_dirs.difference(&chains).collect();
        assert!(extra.is_empty(), "{point}: layer directories no image uses: {extra:?}");
        let stored: HashSet<String> = names_in_any(&self.path("data/content/blobs/sha256")).into_iter().collect();
        let extra: Vec<&String> = stored.difference(&blobs).collect();
        assert!(extra.is_empty(), "{point}: blobs no image uses: {extra:?}");
        let ingest = names_in_any(&self.path("data/content/ingest"));
        assert!(ingest.is_empty(), "{point}: unfinished ingests: {ingest:?}");
    }
}

/// Entries of `dir` that are container IDs (64 hex digits).
fn names_in(dir: &Path) -> BTreeSet<String> {
    names_in_any(dir).into_iter().filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit())).collect()
}

fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn crash_during_container_network_and_volume_operations() {
    let mut s = Scene::new();
    s.d.ok(&["network", "create", "crashnet"]);
    s.check("before any crash");

    // create: after the container directory is made, before the record; and after the record.
    // `k1`: a name that is no hex prefix, so `inspect` can only find it by name (never an ID that happens to begin so).
    s.crash("create.after-dir", |d| d.berth(&["create", "--name", "k1", "busybox", "sleep", "1000"]));
    s.check("create.after-dir");
    let out = s.d.berth(&["inspect", "k1"]);
    assert!(out.status.code() != Some(0), "k1 must not exist: {}", stdout(&out));
    s.d.ok(&["create", "--name", "k1", "busybox", "sleep", "1000"]);
    s.d.ok(&["rm", "k1"]);
    s.crash("create.after-record", |d| d.berth(&["create", "--name", "k1", "busybox", "sleep", "1000"]));
    s.check("create.after-record");
    s.d.ok(&["rm", "-f", "k1"]);
    s.d.ok(&["create", "--name", "k1", "busybox", "sleep", "1000"]);

    // start: after the network is set up, after the shim is spawned, before the record says running. The container
    // publishes a port: its rule must not outlive the crash.
    let port = test_port(0);
    s.d.ok(&["create", "--name", "web", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "1000"]);
    for point in ["start.after-network", "start.after-shim", "start.before-record"] {
        s.crash(point, |d| d.berth(&["start", "web"]));
        s.check(point);
        assert_eq!(s.d.inspect("web", "{{.State.Running}}"), "false", "{point}: web must not run");
        assert!(!nft_rules().contains(&format!("dport {port} ")), "{point}: the port's rule outlived the crash");
        s.d.ok(&["start", "web"]);
        assert!(
            nft_rules().contains(&format!("dport {port} ")) || which("nft").is_none(),
            "{point}: no rule after start"
        );
        s.check(&format!("{point}, started again"));
        s.d.ok(&["stop", "-t", "0", "web"]);
    }

    // network connect / disconnect of a running container.
    s.d.ok(&["start", "web"]);
    s.crash("network.connect-after-veth", |d| d.berth(&["network", "connect", "crashnet", "web"]));
    s.check("network.connect-after-veth");
    s.d.ok(&["network", "connect", "crashnet", "web"]);
    s.check("network.connect, again");
    s.crash("network.disconnect-after-veth", |d| d.berth(&["network", "disconnect", "crashnet", "web"]));
    s.check("network.disconnect-after-veth");
    // Its interface was gone already: start-up completed the disconnect (address and DNS name released).
    assert_eq!(s.d.inspect("web", "{{len .NetworkSettings.Networks}}"), "1");
    let out = s.d.berth(&["network", "disconnect", "crashnet", "web"]);
    assert!(stderr(&out).contains("is not connected to network crashnet"), "disconnect again: {}", stderr(&out));
    s.d.ok(&["network", "connect", "crashnet", "web"]);
    s.d.ok(&["network", "disconnect", "crashnet", "web"]);
    s.check("network.disconnect, again");

    // rm: after the cgroup is killed (before the directories go), and after the record is deleted (the last step).
    s.crash("rm.after-record", |d| d.berth(&["rm", "-f", "web"]));
    s.check("rm.after-record");
    let out = s.d.berth(&["rm", "-f", "web"]);
    assert!(out.status.success() || stderr(&out).contains("No such container"), "rm again: {}", stderr(&out));
    s.d.ok(&["run", "-d", "--name", "web", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "1000"]);
    // The writable layer goes before the record (a full disk needs its space to delete the record): cut short here,
    // the container is still listed, stopped, and removing it again finishes the job.
    s.crash("rm.after-cgroup", |d| d.berth(&["rm", "-f", "web"]));
    s.check("rm.after-cgroup");
    assert!(!nft_rules().contains(&format!("dport {port} ")), "rm.after-cgroup: the port's rule stayed");
    assert_eq!(s.d.inspect("web", "{{.State.Running}}"), "false", "rm.after-cgroup: web must not run");
    s.d.ok(&["rm", "-f", "web"]);
    s.d.ok(&["run", "-d", "--name", "web", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "1000"]);
    s.d.ok(&["rm", "-f", "web"]);

    // volumes.
    s.crash("volume.create-after-dir", |d| d.berth(&["volume", "create", "vol1"]));
    s.check("volume.create-after-dir");
    s.d.ok(&["volume", "create", "vol1"]);
    s.d.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "sh", "-c", "echo kept > /v/f"]);
    s.crash("volume.rm-after-record", |d| d.berth(&["volume", "rm", "vol1"]));
    s.check("volume.rm-after-record");
    s.d.ok(&["volume", "create", "vol1"]);
    let out = s.d.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "ls", "/v"]);
    assert_eq!(out, "", "a volume re-created after a cut-short rm starts empty");
    s.d.ok(&["volume", "rm", "vol1"]);
    s.d.ok(&["rm", "-f", "k1"]);

    // Parallel `run -d` (issue 11: a kill -9 then left container directories without records): the third creation
    // to make its directory kills the daemon while the others are anywhere in create or start.
    s.crash("create.after-dir@3", |d| {
        let outs: Vec<std::process::Output> = std::thread::scope(|sc| {
            let runs: Vec<_> =
                (0..6).map(|_| sc.spawn(|| d.berth(&["run", "-d", "busybox", "sleep", "1000"]))).collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let failed = outs.iter().position(|o| !o.status.success()).unwrap_or(0);
        outs.into_iter().nth(failed).unwrap()
    });
    s.check("create.after-dir@3, parallel runs");
    for id in s.d.ok(&["ps", "-aq", "--no-trunc"]).split_whitespace() {
        if id != s.keeper {
            s.d.ok(&["rm", "-f", id]);
        }
    }
    s.check("the end");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn crash_during_image_operations() {
    let mut s = Scene::new();
    s.prune_cache = true;
    // import: after the layer is stored, before the image is recorded.
    let rootfs = s.d.dir.join("rootfs.tar");
    s.d.ok(&["create", "--name", "exp", "busybox"]);
    s.d.ok(&["export", "-o", rootfs.to_str().unwrap(), "exp"]);
    s.d.ok(&["rm", "exp"]);
    s.crash("import.after-layer", |d| d.berth(&["import", rootfs.to_str().unwrap(), "imported:1"]));
    s.check("import.after-layer");
    assert!(s.d.berth(&["image", "inspect", "imported:1"]).status.code() != Some(0));
    s.d.ok(&["import", rootfs.to_str().unwrap(), "imported:1"]);
    s.check("import, again");

    // build: between steps, and after the last layer before the image is recorded.
    let ctx = s.d.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "from the context\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo one > /one\nCOPY f /f\nRUN echo two > /two\nCMD [\"cat\", \"/one\", \"/f\", \"/two\"]\n",
    )
    .unwrap();
    let build = |d: &Berthd| d.berth(&["build", "--progress=plain", "-t", "built:1", ctx.to_str().unwrap()]);
    for point in ["build.after-step@1", "build.after-step@2", "build.before-image"] {
        // `@1`: after the first step (a `RUN`, whose step container is gone by then); `@2`: after the `COPY`.
        s.crash(point, build);
        s.check(point);
        assert!(s.d.berth(&["image", "inspect", "built:1"]).status.code() != Some(0), "{point}: half a build");
        let out = build(&s.d);
        assert!(out.status.success(), "{point}: build again: {}", stderr(&out));
        assert_eq!(s.d.ok(&["run", "--rm", "built:1"]), "one\nfrom the context\ntwo\n");
        s.check(&format!("{point}, built again"));
        s.d.ok(&["rmi", "built:1"]);
    }

    // load: after a layer, before the image.
    s.d.ok(&["rmi", "imported:1"]);
    let two = s.d.dir.join("two.tar");
    let out = build(&s.d);
    assert!(out.status.success(), "{}", stderr(&out));
    s.d.ok(&["save", "-o", two.to_str().unwrap(), "built:1"]);
    s.d.ok(&["rmi", "built:1"]);
    s.d.ok(&["builder", "prune", "-af"]);
    // `@2`: after the second layer (the first one is busybox's, which is here already), one more to go.
    for point in ["load.after-layer@2", "load.before-image"] {
        s.crash(point, |d| d.berth(&["load", "-i", two.to_str().unwrap()]));
        s.check(point);
        assert!(s.d.berth(&["image", "inspect", "built:1"]).status.code() != Some(0), "{point}: half a load");
        s.d.ok(&["load", "-i", two.to_str().unwrap()]);
        assert_eq!(s.d.ok(&["run", "--rm", "built:1"]), "one\nfrom the context\ntwo\n");
        s.check(&format!("{point}, loaded again"));
        s.d.ok(&["rmi", "built:1"]);
    }

    // pull from Berth's own registry on loopback: after a layer, before the image.
    let reg = LocalRegistry::start(s.d.dir.join("registry"));
    let name = format!("{}/crash/built:1", reg.addr);
    s.d.ok(&["load", "-i", two.to_str().unwrap()]);
    s.d.ok(&["tag", "built:1", &name]);
    s.d.ok(&["push", &name]);
    s.d.ok(&["rmi", "built:1", &name]);
    for point in ["pull.after-layer", "pull.before-image"] {
        s.crash(point, |d| d.berth(&["pull", &name]));
        s.check(point);
        assert!(s.d.berth(&["image", "inspect", &name]).status.code() != Some(0), "{point}: half a pull");
        s.d.ok(&["pull", &name]);
        assert_eq!(s.d.ok(&["run", "--rm", &name]), "one\nfrom the context\ntwo\n");
        let left = names_in_any(&s.path("data/downloads"));
        assert!(left.is_empty(), "{point}: downloads left after the pull: {left:?}");
        s.check(&format!("{point}, pulled again"));
        s.d.ok(&["rmi", &name]);
    }

    // Downloads: a push's scratch file and a download abandoned two days ago go at start-up, a recent partial
    // download stays for the next pull to resume.
    let dl = s.path("data/downloads");
    let scratch = dl.join("push-abc-1.gz");
    let old = dl.join(format!("{}.partial", "a".repeat(64)));
    let recent = dl.join(format!("{}.partial", "b".repeat(64)));
    for f in [&scratch, &old, &recent] {
        std::fs::write(f, b"partial").unwrap();
    }
    let st = Command::new("touch").args(["-d", "2 days ago"]).arg(&old).status().unwrap();
    assert!(st.success());
    s.d.restart();
    assert!(!scratch.exists() && !old.exists(), "scratch or abandoned downloads stayed");
    assert!(recent.exists(), "a recent partial download was removed");
    std::fs::remove_file(&recent).unwrap();
}
