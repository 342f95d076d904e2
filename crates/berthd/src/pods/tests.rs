//! The pod manager on the fake shim (`containers::fake_shim`), with pods on the host's network (a namespace of their
//! own needs root): the holder and members' lifecycle, the refusals, start-up reconciliation, events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_api::models::{ContainerCreateBody, HostConfig};

use serde_json::json;

use super::*;
use crate::containers::env;

fn host_pod(name: &str) -> PodSpec {
    PodSpec { name: Some(name.into()), network: Some("host".into()), ..Default::default() }
}

async fn member(d: &Arc<Daemon>, pod: &str, name: &str) -> Result<Arc<Container>, Error> {
    let body = ContainerCreateBody {
        image: Some("test".into()),
        cmd: Some(vec!["sh".into()]),
        host_config: Some(HostConfig::default()),
        ..Default::default()
    };
    let id = create_member(d, pod, Some(name.into()), body).await?;
    d.container(&id)
}

fn actions(d: &Daemon, typ: &str, id: &str) -> Vec<String> {
    let sub = d.events.subscribe(Some(std::time::UNIX_EPOCH));
    sub.past.iter().filter(|e| e.typ == typ && e.id == id).map(|e| e.action.clone()).collect()
}

#[tokio::test]
async fn a_member_starts_its_holder_and_the_pod_acts_on_both() {
    let e = env().await;
    let d = &e.d;
    let id = create(d, host_pod("pp")).await.unwrap();
    let pod = find(d, "pp").await.unwrap();
    assert_eq!(pod.id, id);
    let holder = d.container(&pod.holder).unwrap();
    assert_eq!(holder.record().holder_of(), Some(id.as_str()));
    assert_eq!(state(d, pod.clone()).status, PodStatus::Created);
    let m = member(d, "pp", "mm").await.unwrap();
    let r = m.record();
    assert_eq!(r.pod(), Some(id.as_str()));
    let target = format!("container:{}", pod.holder);
    assert_eq!(r.host_config.network_mode.as_deref(), Some(target.as_str()));
    assert_eq!(r.host_config.ipc_mode.as_deref(), Some(target.as_str()));
    assert_eq!(r.host_config.uts_mode.as_deref(), Some(target.as_str()));
    assert_eq!(r.host_config.pid_mode, None, "pid is not shared by default");
    // Starting the member starts the holder first.
    containers::start(d, &m).await.unwrap();
    assert!(holder.is_running());
    let st = state(d, pod.clone());
    assert_eq!(st.status, PodStatus::Running);
    assert!(st.holder_pid > 0);
    assert_eq!(st.containers, vec![(m.id.clone(), "mm".to_string(), Status::Running)]);
    // A member that ends makes the pod degraded.
    e.shims.exit(&m.id, 3);
    crate::containers::wait(&m, crate::containers::WaitCondition::NotRunning).await;
    assert_eq!(state(d, pod.clone()).status, PodStatus::Degraded);
    // Stop: everything; start: everything.
    stop(d, "pp", Some(1)).await.unwrap();
    assert!(!holder.is_running() && !m.is_running());
    assert_eq!(state(d, pod.clone()).status, PodStatus::Exited);
    start(d, &id[..12]).await.unwrap();
    assert!(holder.is_running() && m.is_running());
    // The holder is the pod's: refused on its own, and not in the list's events.
    assert!(matches!(containers::remove(d, &holder, true, false).await, Err(Error::Conflict(_))));
    assert_eq!(actions(d, "container", &holder.id), Vec::<String>::new());
    assert!(actions(d, "container", &m.id).contains(&"start".to_string()));
    // rm: refused with a running member, done with force.
    assert!(matches!(remove(d, "pp", false).await, Err(Error::Conflict(_))));
    remove(d, "pp", true).await.unwrap();
    assert!(d.container(&m.id).is_err() && d.container(&holder.id).is_err());
    assert!(matches!(find(d, "pp").await, Err(Error::NotFound(_))));
    assert_eq!(actions(d, "pod", &id), ["create", "stop", "start", "remove"]);
}

#[tokio::test]
async fn refusals() {
    let e = env().await;
    let d = &e.d;
    create(d, host_pod("pp")).await.unwrap();
    assert!(matches!(create(d, host_pod("pp")).await, Err(Error::Conflict(_))));
    let bad_share = PodSpec { share: Some(vec!["ipc".into()]), ..host_pod("qq") };
    assert!(matches!(create(d, bad_share).await, Err(Error::InvalidArgument(_))));
    let bad_ns = PodSpec { share: Some(vec!["net,mnt".into()]), ..host_pod("qq") };
    assert!(matches!(create(d, bad_ns).await, Err(Error::InvalidArgument(_))));
    let no_net = PodSpec { network: Some("nosuchnet".into()), ..host_pod("qq") };
    assert!(matches!(create(d, no_net).await, Err(Error::InvalidArgument(_))), "the pod API's 400");
    let own_mode = ContainerCreateBody {
        image: Some("test".into()),
        host_config: Some(HostConfig { network_mode: Some("none".into()), ..Default::default() }),
        ..Default::default()
    };
    assert!(matches!(create_member(d, "pp", None, own_mode).await, Err(Error::InvalidArgument(_))));
    let body = ContainerCreateBody { image: Some("test".into()), ..Default::default() };
    assert!(matches!(create_member(d, "nosuchpod", None, body).await, Err(Error::InvalidArgument(_))));
    // Unnamed pods get generated names, each its own.
    let a = create(d, PodSpec { network: Some("host".into()), ..Default::default() }).await.unwrap();
    let b = create(d, PodSpec { network: Some("host".into()), ..Default::default() }).await.unwrap();
    assert_ne!(find(d, &a).await.unwrap().name, find(d, &b).await.unwrap().name);
    assert!(matches!(kill(d, "pp", None).await, Err(Error::Conflict(_))), "nothing runs");
}

#[tokio::test]
async fn start_up_removes_the_holder_of_a_pod_never_recorded() {
    let e = env().await;
    let d = &e.d;
    let id = create(d, host_pod("pp")).await.unwrap();
    let holder = find(d, "pp").await.unwrap().holder;
    // As a crash between the holder and the record leaves it.
    let store = d.store.clone();
    store.delete_doc(record::DOC_KIND, &id).unwrap();
    reconcile(d).await.unwrap();
    assert!(d.container(&holder).is_err());
    // A pod whose holder went (a removal cut short) gets a new one when started.
    create(d, host_pod("qq")).await.unwrap();
    let q = find(d, "qq").await.unwrap();
    let old = d.container(&q.holder).unwrap();
    containers::remove_any(d, &old, true, true).await.unwrap();
    start(d, "qq").await.unwrap();
    let q = find(d, "qq").await.unwrap();
    assert_ne!(q.holder, old.id);
    assert!(d.container(&q.holder).unwrap().is_running());
}

fn empty(d: &Daemon) -> Option<containers::BuildImage> {
    Some(containers::BuildImage { id: String::new(), config: json!({}), lower_dirs: vec![d.store.empty_layer_dir()] })
}

fn plain(labels: &[(&str, &str)]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("test".into()),
        labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        host_config: Some(HostConfig { network_mode: Some("host".into()), ..Default::default() }),
        ..Default::default()
    }
}

#[tokio::test]
async fn pod_labels_are_berthds_alone() {
    let e = env().await;
    let d = &e.d;
    let id = create(d, host_pod("pp")).await.unwrap();
    // The user's: refused, naming the label.
    for label in [containers::POD_LABEL, containers::POD_HOLDER_LABEL] {
        match containers::create(d, None, plain(&[(label, &id)])).await {
            Err(Error::InvalidArgument(m)) => assert!(m.contains(label), "{m}"),
            other => panic!("a user's {label}: {other:?}"),
        }
    }
    // A member's own labels cannot name another pod either.
    let body = ContainerCreateBody {
        host_config: Some(HostConfig::default()),
        ..plain(&[(containers::POD_HOLDER_LABEL, &id)])
    };
    assert!(matches!(create_member(d, "pp", None, body).await, Err(Error::InvalidArgument(_))));
    // An image's (a commit of a member, of a holder): dropped, the image's other labels kept.
    let image = containers::BuildImage {
        id: String::new(),
        config: json!({"config": {"Cmd": ["sh"], "Labels": {
            containers::POD_LABEL: id, containers::POD_HOLDER_LABEL: id, "keep": "1"}}}),
        lower_dirs: vec![d.store.empty_layer_dir()],
    };
    let c = containers::create_with(d, Some("img".into()), plain(&[]), Some(image)).await.unwrap();
    let r = d.container(&c).unwrap().record();
    assert_eq!((r.pod(), r.holder_of()), (None, None));
    assert_eq!(r.config.labels.unwrap().get("keep").map(String::as_str), Some("1"));
    let pod = find(d, "pp").await.unwrap();
    assert!(members(d, &pod).is_empty());
    // Start-up keeps it: it is no holder.
    reconcile(d).await.unwrap();
    assert!(d.container(&c).is_ok());
}

#[tokio::test]
async fn an_unrecorded_holder_is_adopted_or_removed_and_an_unreadable_pod_keeps_its_own() {
    let e = env().await;
    let d = &e.d;
    create(d, host_pod("pp")).await.unwrap();
    let pod = find(d, "pp").await.unwrap();
    // As a crash after ensure_holder made a new holder and before it saved the pod: the next start adopts it
    // (its fixed name would make a new one a 409).
    let old = d.container(&pod.holder).unwrap();
    containers::remove_any(d, &old, true, true).await.unwrap();
    let made = create_holder(d, &pod).await.unwrap();
    start(d, "pp").await.unwrap();
    assert_eq!(find(d, "pp").await.unwrap().holder, made);
    assert!(d.container(&made).unwrap().is_running());
    // A second holder of the pod, not the recorded one: start-up removes it and keeps the recorded one.
    let stray = containers::create_in_pod(
        d,
        Some("stray".into()),
        holder_body(&pod),
        empty(d),
        PodRole::Holder(pod.id.clone()),
    )
    .await
    .unwrap();
    reconcile(d).await.unwrap();
    assert!(d.container(&stray).is_err());
    assert!(d.container(&made).is_ok());
    // A pod document that does not parse: its holder is not an orphan.
    let bad = crate::names::new_id().unwrap();
    d.store.put_doc(record::DOC_KIND, &bad, Some("bad"), &json!({"id": bad, "name": 3})).unwrap();
    let kept =
        containers::create_in_pod(d, Some("kept".into()), holder_body(&pod), empty(d), PodRole::Holder(bad.clone()))
            .await
            .unwrap();
    reconcile(d).await.unwrap();
    assert!(d.container(&kept).is_ok());
}

#[tokio::test]
async fn the_holder_is_refused_alone_and_its_end_stops_the_members() {
    let e = env().await;
    let d = &e.d;
    create(d, host_pod("pp")).await.unwrap();
    let m = member(d, "pp", "mm").await.unwrap();
    containers::start(d, &m).await.unwrap();
    let holder = d.container(&find(d, "pp").await.unwrap().holder).unwrap();
    for action in ["stopped", "killed", "restarted", "paused", "renamed", "updated", "committed"] {
        match holder.record().refuse_holder(action) {
            Err(Error::Conflict(msg)) => assert!(msg.contains(&find(d, "pp").await.unwrap().id)),
            other => panic!("{action}: {other:?}"),
        }
    }
    assert!(m.record().refuse_holder("stopped").is_ok());
    // Killed from the host: the members lose their network and are stopped.
    e.shims.exit(&holder.id, 137);
    let stopped = tokio::time::timeout(
        std::time::Duration::from_secs(20), // a stop of the fake shim is immediate; generous for a loaded machine
        crate::containers::wait(&m, crate::containers::WaitCondition::NotRunning),
    )
    .await;
    assert!(stopped.is_ok(), "the member still runs after its holder ended");
}

#[tokio::test]
async fn a_member_created_while_its_pod_is_removed_is_not_left_behind() {
    let e = env().await;
    let d = &e.d;
    for i in 0..5 {
        let name = format!("p{i}");
        create(d, host_pod(&name)).await.unwrap();
        let body = ContainerCreateBody {
            image: Some("test".into()),
            cmd: Some(vec!["sh".into()]),
            host_config: Some(HostConfig::default()),
            ..Default::default()
        };
        let (made, removed) = tokio::join!(create_member(d, &name, None, body), remove(d, &name, true));
        removed.unwrap();
        if let Ok(id) = made {
            assert!(d.container(&id).is_err(), "member {id} of the removed pod {name} is left");
        }
    }
    assert!(d.all_containers().is_empty());
}
