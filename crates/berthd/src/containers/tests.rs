//! The container manager on the fake shim (`fake_shim.rs`): lifecycle, restart policies, `--rm`, name reservation and
//! volume users, without root, in a temporary data root. Containers use `--network host`, whose start touches no
//! kernel networking (a namespace and veths need root until the network seam exists).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions, RestartPolicy, RestartPolicyNameEnum,
};

use super::fake_shim::{FakeShims, FakeState};
use super::*;
use crate::daemon::{Config, Daemon};
use crate::error::Error;

pub(crate) struct Env {
    pub(crate) d: Arc<Daemon>,
    pub(crate) shims: Arc<FakeShims>,
    _tmp: tempfile::TempDir,
}

/// A daemon on a temporary data root with the fake shim and one image, `test` (one file; `CMD ["sh"]`).
pub(crate) async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        data_root: tmp.path().join("data"),
        exec_root: tmp.path().join("exec"),
        runtime: "berth".into(),
        shim: PathBuf::from("/nonexistent/berth-shim"),
        network: crate::networks::NetConfig {
            bridge: "berth-test0".into(),
            bridge_from_flag: false,
            bip: None,
            pools: Vec::new(),
            table: "berth-test".into(),
            dns: Vec::new(),
            firewall: berth_network::firewall::Backend::None,
        },
        reloadable: crate::reload::Reloadable::default(),
        engine_id: String::new(),
        registry_certs_dir: tmp.path().join("certs.d"),
        log: crate::logs::LogConfig::default(),
        userns_remap: None,
        init_path: PathBuf::from("/nonexistent/berth-init"),
        init: false,
    };
    let shims = Arc::new(FakeShims::default());
    let store = berth_store::Store::open(&config.data_root).unwrap();
    let d = Daemon::assemble(config, store, shims.clone(), crate::events::Events::in_memory());
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(u64::from(nix::unistd::getuid().as_raw()));
    h.set_gid(u64::from(nix::unistd::getgid().as_raw()));
    h.set_cksum();
    tar.append_data(&mut h, "hello", &b"hi"[..]).unwrap();
    let opts = berth_store::ImportOptions { changes: vec!["CMD [\"sh\"]".into()], ..Default::default() };
    let id = d.store.import_image(&tar.into_inner().unwrap()[..], opts).unwrap();
    d.store.tag(&id, "test").unwrap();
    Env { d, shims, _tmp: tmp }
}

fn host(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
    let mut h = HostConfig { network_mode: Some("host".into()), ..Default::default() };
    f(&mut h);
    h
}

fn policy(name: RestartPolicyNameEnum, max: i64) -> Option<RestartPolicy> {
    Some(RestartPolicy { name: Some(name), maximum_retry_count: Some(max) })
}

impl Env {
    async fn create(&self, name: Option<&str>, host: HostConfig) -> Result<Arc<Container>, Error> {
        self.create_with(name, Vec::new(), host).await
    }

    /// Creates a container with anonymous volumes at `volumes` (`--mount type=volume,dst=PATH,volume-nocopy`: the
    /// copy of the image's content into a new volume mounts the image's layers, which needs root).
    async fn create_with(
        &self,
        name: Option<&str>,
        volumes: Vec<&str>,
        mut host: HostConfig,
    ) -> Result<Arc<Container>, Error> {
        let anonymous = volumes.into_iter().map(|dst| Mount {
            target: Some(dst.into()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions { no_copy: Some(true), ..Default::default() }),
            ..Default::default()
        });
        host.mounts.get_or_insert_default().extend(anonymous);
        let body = ContainerCreateBody {
            image: Some("test".into()),
            cmd: Some(vec!["sh".into(), "-c".into(), "exit 0".into()]),
            host_config: Some(host),
            ..Default::default()
        };
        let id = create(&self.d, name.map(str::to_string), body).await?;
        Ok(self.d.container(&id).unwrap())
    }

    async fn run(&self, host: HostConfig) -> Arc<Container> {
        let c = self.create(None, host).await.unwrap();
        start(&self.d, &c).await.unwrap();
        c
    }

    fn doc(&self, id: &str) -> Option<serde_json::Value> {
        self.d.store.get_doc(DOC_KIND, id).unwrap()
    }
}

/// Waits (bounded: the fake answers at once, so ten seconds means it never comes) until `pred` holds.
async fn until(c: &Container, what: &str, pred: impl Fn(&Record) -> bool) -> Record {
    let mut rx = c.subscribe();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = c.record();
            if pred(&r) {
                return r;
            }
            if rx.changed().await.is_err() {
                return c.record();
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{what}: still {:?}", c.record().state))
}

async fn removed(c: &Arc<Container>) {
    tokio::time::timeout(Duration::from_secs(10), wait(c, WaitCondition::Removed))
        .await
        .expect("the container is removed");
}

#[tokio::test(start_paused = true)]
async fn create_start_exit_start_stop_rm() {
    let t = env().await;
    let c = t.create(Some("web"), host(|_| {})).await.unwrap();
    assert_eq!(c.status(), Status::Created);
    assert!(container_dir(&t.d, &c.id).join("upper").is_dir());
    assert_eq!(t.doc(&c.id).unwrap()["state"]["status"], "created");

    start(&t.d, &c).await.unwrap();
    let rec = c.record();
    assert_eq!(rec.state.status, Status::Running);
    assert!(rec.state.pid > 10_000, "the PID the shim reported: {}", rec.state.pid);
    assert_eq!(t.shims.state(&c.id), Some(FakeState::Running));
    assert!(matches!(start(&t.d, &c).await, Err(Error::NotModified(_))));

    assert!(t.shims.exit(&c.id, 3));
    let rec = until(&c, "exit recorded", |r| r.state.status == Status::Exited).await;
    assert_eq!(rec.state.exit_code, 3);
    assert_eq!(rec.state.pid, 0);
    assert_ne!(rec.state.finished_at, berth_api::time::ZERO);
    assert!(!bundle_dir(&t.d, &c.id).exists(), "the bundle goes with the exit");
    assert_eq!(rec.restart_count, 0, "no restart policy");

    start(&t.d, &c).await.unwrap();
    assert_eq!(t.shims.spawns(&c.id), 2);
    stop(&t.d, &c, Some(10), None).await.unwrap();
    let rec = c.record();
    assert_eq!((rec.state.status, rec.state.exit_code), (Status::Exited, 128 + libc::SIGTERM as i64));
    assert!(matches!(stop(&t.d, &c, None, None).await, Err(Error::NotModified(_))));

    remove(&t.d, &c, false, false).await.unwrap();
    assert!(t.d.container(&c.id).is_err());
    assert!(t.doc(&c.id).is_none());
    assert!(!container_dir(&t.d, &c.id).exists());
    assert_eq!(t.shims.leftovers_ended(&c.id), 1);
}

#[tokio::test(start_paused = true)]
async fn a_running_container_is_removed_only_with_force() {
    let t = env().await;
    let c = t.run(host(|_| {})).await;
    let e = remove(&t.d, &c, false, false).await.unwrap_err();
    assert!(e.to_string().starts_with("You cannot remove a running container"), "{e}");
    pause(&t.d, &c, true).await.unwrap();
    let e = remove(&t.d, &c, false, false).await.unwrap_err();
    assert!(e.to_string().starts_with("You cannot remove a paused container"), "{e}");
    // Forced: resumed (a frozen program cannot die), killed, removed.
    remove(&t.d, &c, true, false).await.unwrap();
    assert_eq!(t.shims.state(&c.id), Some(FakeState::Exited));
    assert!(t.d.container(&c.id).is_err());
}

#[tokio::test(start_paused = true)]
async fn stop_sends_sigkill_after_the_timeout() {
    let t = env().await;
    let c = t.create(None, host(|_| {})).await.unwrap();
    t.shims.ignore_signal(&c.id, libc::SIGTERM);
    start(&t.d, &c).await.unwrap();
    stop(&t.d, &c, Some(5), None).await.unwrap();
    assert_eq!(c.record().state.exit_code, 137);
}

#[tokio::test(start_paused = true)]
async fn pause_resume_and_kill_of_a_paused_container() {
    let t = env().await;
    let c = t.run(host(|_| {})).await;
    pause(&t.d, &c, true).await.unwrap();
    assert_eq!((c.status(), t.shims.state(&c.id)), (Status::Paused, Some(FakeState::Paused)));
    assert!(pause(&t.d, &c, true).await.unwrap_err().to_string().contains("is already paused"));
    pause(&t.d, &c, false).await.unwrap();
    assert_eq!((c.status(), t.shims.state(&c.id)), (Status::Running, Some(FakeState::Running)));
    assert!(pause(&t.d, &c, false).await.unwrap_err().to_string().contains("is not paused"));
    pause(&t.d, &c, true).await.unwrap();
    // SIGKILL reaches a frozen program only once it is thawed: kill resumes it first.
    kill(&t.d, &c, None).await.unwrap();
    let rec = c.record();
    assert_eq!((rec.state.status, rec.state.exit_code), (Status::Exited, 137));
    assert!(matches!(kill(&t.d, &c, None).await, Err(Error::Conflict(_))));
    assert!(matches!(pause(&t.d, &c, true).await, Err(Error::Conflict(_))));
}

#[tokio::test(start_paused = true)]
async fn resize_goes_to_the_shim_of_a_running_container() {
    let t = env().await;
    let c = t.create(None, host(|_| {})).await.unwrap();
    assert!(matches!(resize(&t.d, &c, 24, 80).await, Err(Error::Conflict(_))));
    start(&t.d, &c).await.unwrap();
    resize(&t.d, &c, 24, 80).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn on_failure_restarts_up_to_its_maximum() {
    let t = env().await;
    let c = t.run(host(|h| h.restart_policy = policy(RestartPolicyNameEnum::ON_FAILURE, 2))).await;
    for n in 1..=2 {
        assert!(t.shims.exit(&c.id, 1));
        until(&c, "restarted", |r| r.state.status == Status::Running && r.restart_count == n).await;
        assert_eq!(t.shims.spawns(&c.id), n as usize + 1);
    }
    assert!(t.shims.exit(&c.id, 1));
    until(&c, "exited", |r| r.state.status == Status::Exited).await;
    // Longer than any back-off: no third restart.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let rec = c.record();
    assert_eq!((rec.state.status, rec.restart_count, rec.state.exit_code), (Status::Exited, 2, 1));
    assert_eq!(t.shims.spawns(&c.id), 3);

    // A success is not a failure.
    let c = t.run(host(|h| h.restart_policy = policy(RestartPolicyNameEnum::ON_FAILURE, 0))).await;
    assert!(t.shims.exit(&c.id, 0));
    until(&c, "exited", |r| r.state.status == Status::Exited).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!((c.status(), t.shims.spawns(&c.id)), (Status::Exited, 1));
}

#[tokio::test(start_paused = true)]
async fn restarting_is_running_for_wait_stop_and_rm() {
    let t = env().await;
    let c = t.run(host(|h| h.restart_policy = policy(RestartPolicyNameEnum::ALWAYS, 0))).await;
    assert!(t.shims.exit(&c.id, 3));
    let rec = until(&c, "restarting", |r| r.state.status == Status::Restarting).await;
    assert_eq!((rec.restart_count, rec.state.exit_code), (1, 3));
    // `wait` (not-running) of a restarting container ends at its next exit, as Docker's.
    let w = tokio::spawn({
        let c = c.clone();
        async move { wait(&c, WaitCondition::NotRunning).await }
    });
    until(&c, "restarted", |r| r.state.status == Status::Running).await;
    assert!(!w.is_finished());
    assert!(t.shims.exit(&c.id, 4));
    assert_eq!(w.await.unwrap().0, 4);
    // `rm` refuses it; `stop` cancels the pending restart for good.
    until(&c, "restarting again", |r| r.state.status == Status::Restarting).await;
    let e = remove(&t.d, &c, false, false).await.unwrap_err().to_string();
    assert!(e.starts_with("You cannot remove a restarting container"), "{e}");
    stop(&t.d, &c, Some(1), None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let rec = c.record();
    assert_eq!((rec.state.status, rec.state.exit_code, rec.manually_stopped), (Status::Exited, 4, true));
    assert_eq!(t.shims.spawns(&c.id), 2, "no start after the stop");
}

#[tokio::test(start_paused = true)]
async fn always_and_unless_stopped_restart_until_stopped() {
    let t = env().await;
    for name in [RestartPolicyNameEnum::ALWAYS, RestartPolicyNameEnum::UNLESS_STOPPED] {
        let c = t.run(host(|h| h.restart_policy = policy(name, 0))).await;
        assert!(t.shims.exit(&c.id, 0));
        until(&c, "restarted after a success", |r| r.state.status == Status::Running && r.restart_count == 1).await;
        t.shims.crash(&c.id);
        // `RestartCount` counts from the exit (the container is `restarting` until the start), as Docker's.
        let rec = until(&c, "counted after a lost shim", |r| r.restart_count == 2).await;
        assert_eq!(rec.state.status, Status::Restarting);
        until(&c, "restarted after a lost shim", |r| r.state.status == Status::Running).await;
        // An explicit stop (and kill) is final.
        stop(&t.d, &c, Some(1), None).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!((c.status(), t.shims.spawns(&c.id)), (Status::Exited, 3), "{name:?}");
        start(&t.d, &c).await.unwrap();
        kill(&t.d, &c, None).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!((c.status(), t.shims.spawns(&c.id)), (Status::Exited, 4), "{name:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_shim_is_recorded_as_255_and_its_leftovers_ended() {
    let t = env().await;
    let c = t.run(host(|_| {})).await;
    t.shims.crash(&c.id);
    let rec = until(&c, "exit recorded", |r| r.state.status == Status::Exited).await;
    assert_eq!(rec.state.exit_code, 255);
    assert_eq!(rec.state.error, "berth-shim exited unexpectedly");
    assert_eq!(t.shims.leftovers_ended(&c.id), 1, "what the shim ran is killed");
}

#[tokio::test(start_paused = true)]
async fn auto_remove_removes_the_container_and_its_anonymous_volumes_on_exit() {
    let t = env().await;
    let h = host(|h| {
        h.auto_remove = Some(true);
        h.binds = Some(vec!["named:/named:nocopy".into()]);
    });
    let c = t.create_with(None, vec!["/anon"], h).await.unwrap();
    let anon = c.record().mounts.iter().find(|m| m.destination == "/anon").unwrap().name.clone();
    start(&t.d, &c).await.unwrap();
    assert!(t.shims.exit(&c.id, 0));
    removed(&c).await;
    assert!(t.d.container(&c.id).is_err());
    assert!(t.doc(&c.id).is_none());
    let names: Vec<String> = crate::volumes::list(&t.d).await.unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, vec!["named".to_string()], "the anonymous volume {anon} goes, the named one stays");
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_gets_dockers_exit_code_and_releases_what_it_took() {
    let t = env().await;
    let c = t.create(None, host(|_| {})).await.unwrap();
    t.shims.fail_next_spawn("exec: \"nosuch\": executable file not found in $PATH");
    let e = start(&t.d, &c).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert!(e.to_string().starts_with("failed to create task for container"), "{e}");
    let rec = c.record();
    assert_eq!((rec.state.status, rec.state.exit_code), (Status::Created, 127));
    assert!(rec.state.error.contains("executable file not found"));
    assert!(!bundle_dir(&t.d, &c.id).exists());
    // It can be started once the cause is gone.
    start(&t.d, &c).await.unwrap();
    assert_eq!(c.status(), Status::Running);

    // `--rm`: a container that cannot start is removed, as Docker does.
    let c = t.create(None, host(|h| h.auto_remove = Some(true))).await.unwrap();
    t.shims.fail_next_spawn("exec: \"nosuch\": executable file not found in $PATH");
    start(&t.d, &c).await.unwrap_err();
    removed(&c).await;
    assert!(t.doc(&c.id).is_none());
}

#[tokio::test(start_paused = true)]
async fn attach_before_start_gets_its_stream_when_the_container_starts() {
    let t = env().await;
    let c = t.create(None, host(|_| {})).await.unwrap();
    let rx = attach_at_start(&c, AttachStreams { stdin: false, stdout: true, stderr: true });
    start(&t.d, &c).await.unwrap();
    let _stream = rx.await.expect("the stream, opened before the program ran");
    assert_eq!(t.shims.attached(&c.id), 1);
    assert!(t.shims.exit(&c.id, 0));
    until(&c, "exited", |r| r.state.status == Status::Exited).await;
    assert_eq!(t.shims.attached(&c.id), 0, "the shim closes its streams when it goes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_name_one_wins() {
    let t = Arc::new(env().await);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.create(Some("/web"), host(|_| {})).await.map(|c| c.id.clone()) })
        })
        .collect();
    let mut won = Vec::new();
    let mut lost = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => won.push(id),
            Err(e) => lost.push(e),
        }
    }
    assert_eq!(won.len(), 1, "exactly one create gets the name: {won:?}");
    let winner = &won[0];
    assert_eq!(lost.len(), 15);
    for e in &lost {
        assert!(e.is_conflict(), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "Conflict. The container name \"/web\" is already in use by container \"{winner}\". You have to \
                 remove (or rename) that container to be able to reuse that name."
            )
        );
    }
    assert_eq!(t.d.all_containers().len(), 1, "the losers leave nothing in the table");
    let dirs = std::fs::read_dir(t.d.config.data_root.join("containers")).unwrap().count();
    assert_eq!(dirs, 1, "nor a directory");

    // The name is free again once its container is removed.
    let c = t.d.container("web").unwrap();
    remove(&t.d, &c, false, false).await.unwrap();
    let again = t.create(Some("web"), host(|_| {})).await.unwrap();
    assert_eq!(t.d.container("/web").unwrap().id, again.id);
}

#[tokio::test(start_paused = true)]
async fn a_name_recorded_by_a_create_in_flight_is_refused_with_dockers_message() {
    let t = env().await;
    // A create between writing its record and entering the table: its name is taken in the store only.
    let other = "f".repeat(64);
    t.d.store.put_doc(DOC_KIND, &other, Some("web"), &serde_json::json!({})).unwrap();
    let conflict = format!(
        "Conflict. The container name \"/web\" is already in use by container \"{other}\". You have to remove (or \
         rename) that container to be able to reuse that name."
    );
    let e = t.create(Some("web"), host(|_| {})).await.err().expect("a conflict");
    assert_eq!(e.to_string(), conflict);
    let c = t.create(Some("c1"), host(|_| {})).await.unwrap();
    let e = rename(&t.d, &c, "web").await.unwrap_err();
    assert_eq!(e.to_string(), conflict);
    assert_eq!((c.name(), t.doc(&c.id).unwrap()["name"].as_str().unwrap()), ("c1".to_string(), "c1"));
}

#[tokio::test(start_paused = true)]
async fn rename_moves_the_name() {
    let t = env().await;
    let a = t.create(Some("a1"), host(|_| {})).await.unwrap();
    let b = t.create(Some("b1"), host(|_| {})).await.unwrap();
    let e = rename(&t.d, &b, "a1").await.unwrap_err();
    assert!(e.is_conflict() && e.to_string().contains(&a.id), "{e}");
    assert!(matches!(t.create(Some("a1"), host(|_| {})).await, Err(Error::Conflict(_))));
    rename(&t.d, &a, "a2").await.unwrap();
    assert_eq!(t.doc(&a.id).unwrap()["name"], "a2");
    let c = t.create(Some("a1"), host(|_| {})).await.unwrap();
    assert_eq!(t.d.container("a1").unwrap().id, c.id);
    assert_eq!(t.d.container("a2").unwrap().id, a.id);
}

#[tokio::test(start_paused = true)]
async fn a_volume_is_in_use_while_a_container_has_it() {
    let t = env().await;
    let bind = |h: &mut HostConfig| h.binds = Some(vec!["data:/data:nocopy".into()]);
    let a = t.create(None, host(bind)).await.unwrap();
    let b = t.create(None, host(bind)).await.unwrap();
    assert_eq!(crate::volumes::users(&t.d, "data").len(), 2);
    let in_use = |e: Error| e.is_conflict() && e.to_string().starts_with("remove data: volume is in use - [");
    // Created, running, exited, or removed with `-v` (a named volume is not one of its anonymous volumes): in use
    // while any container has it.
    assert!(in_use(crate::volumes::remove(&t.d, "data", false).await.unwrap_err()));
    start(&t.d, &a).await.unwrap();
    assert!(in_use(crate::volumes::remove(&t.d, "data", true).await.unwrap_err()));
    assert!(t.shims.exit(&a.id, 0));
    until(&a, "exited", |r| r.state.status == Status::Exited).await;
    assert!(in_use(crate::volumes::remove(&t.d, "data", false).await.unwrap_err()));
    remove(&t.d, &a, false, true).await.unwrap();
    assert_eq!(crate::volumes::users(&t.d, "data"), vec![b.id.clone()]);
    assert!(in_use(crate::volumes::remove(&t.d, "data", false).await.unwrap_err()));
    remove(&t.d, &b, false, false).await.unwrap();
    assert!(crate::volumes::users(&t.d, "data").is_empty());
    crate::volumes::remove(&t.d, "data", false).await.unwrap();
    assert!(crate::volumes::list(&t.d).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_anonymous_volume_shared_with_volumes_from_outlives_the_first_rm() {
    let t = env().await;
    let a = t.create_with(Some("a1"), vec!["/anon"], host(|_| {})).await.unwrap();
    let anon = a.record().mounts[0].name.clone();
    let b = t.create(None, host(|h| h.volumes_from = Some(vec!["a1".into()]))).await.unwrap();
    assert_eq!(crate::volumes::users(&t.d, &anon).len(), 2);
    remove(&t.d, &a, false, true).await.unwrap();
    assert!(crate::volumes::get(&t.d, &anon).await.is_ok(), "b still uses it");
    remove(&t.d, &b, false, true).await.unwrap();
    assert!(crate::volumes::get(&t.d, &anon).await.is_err(), "gone with its last container");
}

#[tokio::test(start_paused = true)]
async fn sizes_count_the_writable_layer_and_the_image() {
    let t = env().await;
    let c = t.create(None, host(|_| {})).await.unwrap();
    let image = t.d.store.resolve_image("test").unwrap().size as u64;
    assert_eq!(image, 2);
    assert_eq!(sizes(&t.d, &c.record()).await, (0, image));
    let upper = container_dir(&t.d, &c.id).join("upper");
    std::fs::create_dir_all(upper.join("a/b")).unwrap();
    std::fs::write(upper.join("a/b/f"), [0u8; 1000]).unwrap();
    std::fs::write(upper.join("g"), [0u8; 24]).unwrap();
    assert_eq!(sizes(&t.d, &c.record()).await, (1024, 1024 + image));
}

#[test]
fn legacy_mac_goes_to_the_primary_endpoint() {
    use berth_api::ApiVersion;
    use berth_api::models::{EndpointSettings, NetworkingConfig};
    let (old, new) = (ApiVersion { major: 1, minor: 38 }, ApiVersion { major: 1, minor: 44 });
    let body = |mode: &str, ep: Option<(&str, &str)>| ContainerCreateBody {
        host_config: Some(HostConfig { network_mode: Some(mode.into()), ..Default::default() }),
        networking_config: ep.map(|(n, m)| NetworkingConfig {
            endpoints_config: Some(
                [(n.to_string(), EndpointSettings { mac_address: Some(m.into()), ..Default::default() })].into(),
            ),
        }),
        ..Default::default()
    };
    let mac_of = |b: &ContainerCreateBody, n: &str| {
        b.networking_config
            .as_ref()
            .and_then(|c| c.endpoints_config.as_ref())
            .and_then(|e| e.get(n)?.mac_address.clone())
    };
    let mac = Some("02:00:00:00:00:01");
    // Before 1.44 it replaces the endpoint's; the default network is `bridge`.
    let mut b = body("", None);
    migrate_legacy_mac(&mut b, mac, old).unwrap();
    assert_eq!(mac_of(&b, "bridge").as_deref(), mac);
    let mut b = body("net", Some(("net", "02:00:00:00:00:02")));
    migrate_legacy_mac(&mut b, mac, old).unwrap();
    assert_eq!(mac_of(&b, "net").as_deref(), mac);
    // From 1.44 an endpoint's own address must agree, and the primary network must be named.
    let mut b = body("net", Some(("net", "02:00:00:00:00:02")));
    assert!(matches!(migrate_legacy_mac(&mut b, mac, new), Err(Error::InvalidArgument(m)) if m.contains("must match")));
    let mut b = body("net", Some(("other", "02:00:00:00:00:02")));
    assert!(migrate_legacy_mac(&mut b, mac, new).is_err());
    let mut b = body("net", None);
    migrate_legacy_mac(&mut b, mac, new).unwrap();
    assert_eq!(mac_of(&b, "net").as_deref(), mac);
    // Not with another container's network; nothing to do for host.
    assert!(migrate_legacy_mac(&mut body("container:x", None), mac, old).is_err());
    let mut b = body("host", None);
    migrate_legacy_mac(&mut b, mac, new).unwrap();
    assert!(b.networking_config.is_none());
}

#[test]
fn signals_parse_as_dockers() {
    for (s, n) in [
        ("SIGHUP", 1),
        ("HUP", 1),
        ("hup", 1),
        ("sighup", 1),
        ("1", 1),
        ("SIGCLD", libc::SIGCHLD),
        ("IOT", libc::SIGABRT),
        ("SIGRTMIN", 34),
        ("RTMIN+3", 37),
        ("sigrtmin+15", 49),
        ("SIGRTMAX-14", 50),
        ("RTMAX", 64),
        ("64", 64),
    ] {
        assert_eq!(parse_signal(s).ok(), Some(n), "{s}");
    }
    for s in ["0", "SIGFOO", "SIGRTMIN-1", "SIGRTMAX+1", "RTMIN+16", "RTMIN+03", "1.5", "SIGUNUSED", "SIG"] {
        assert!(
            matches!(parse_signal(s), Err(Error::InvalidArgument(m)) if m == format!("Invalid signal: {s}")),
            "{s}"
        );
    }
    for (s, shown) in [("65", "65"), ("32", "32"), ("-1", "18446744073709551615")] {
        assert!(
            matches!(parse_signal(s), Err(Error::Internal(m)) if m == format!("The linux daemon does not support signal {shown}")),
            "{s}"
        );
    }
}

/// A start and an exit that a waiter sees as one notification (it was not polled in between) still end a
/// `next-exit` wait: `berth run` of a command that exits at once waits this way.
#[tokio::test(start_paused = true)]
async fn next_exit_is_not_missed_when_start_and_exit_coalesce() {
    let t = env().await;
    let c = t.create(None, host(|_| {})).await.unwrap();
    let mut w = Box::pin(wait(&c, WaitCondition::NextExit));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(w.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "subscribed, nothing happened yet");
    start(&t.d, &c).await.unwrap();
    assert!(t.shims.exit(&c.id, 5));
    until(&c, "exited", |r| r.state.status == Status::Exited).await;
    let got = tokio::time::timeout(Duration::from_secs(10), w).await.expect("the wait ended");
    assert_eq!(got.0, 5);
}
