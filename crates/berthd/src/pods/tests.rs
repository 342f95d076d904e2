//! The pod manager on the fake shim (`containers::fake_shim`), with pods on the host's network (a namespace of their
//! own needs root): the holder and members' lifecycle, the refusals, start-up reconciliation, events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_api::models::{ContainerCreateBody, HostConfig};

use super::*;
use crate::containers::env;

fn host_pod(name: &str) -> PodSpec {
    PodSpec { name: Some(name.into()), network: Some("host".into()), ..Default::default() }
}

async fn member(d: &Arc<Daemon>, pod: &str, name: &str) -> Result<Arc<Container>, Error> {
    let mut body = ContainerCreateBody {
        image: Some("test".into()),
        cmd: Some(vec!["sh".into()]),
        host_config: Some(HostConfig::default()),
        ..Default::default()
    };
    join(d, pod, &mut body).await?;
    let id = containers::create(d, Some(name.into()), body).await?;
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
    assert!(matches!(create(d, no_net).await, Err(Error::NotFound(_))));
    let mut own_mode = ContainerCreateBody {
        host_config: Some(HostConfig { network_mode: Some("none".into()), ..Default::default() }),
        ..Default::default()
    };
    assert!(matches!(join(d, "pp", &mut own_mode).await, Err(Error::InvalidArgument(_))));
    let mut body = ContainerCreateBody::default();
    assert!(matches!(join(d, "nosuchpod", &mut body).await, Err(Error::InvalidArgument(_))));
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
