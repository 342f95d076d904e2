//! The network manager's bookkeeping against the fake kernel: no root, no host changes, milliseconds.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_api::models::{
    ContainerConfig, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig, NetworkCreateRequest,
    PortBinding,
};
use berth_network::firewall::{Backend, Proto};
use berth_network::ipam::{AddressPool, Subnet};
use berth_store::Store;

use super::fake::{Fake, Op};
use super::*;
use crate::containers::record::{Record, State as RunState, Status};
use crate::error::Error;
use berth_network::kernel::Kernel;

struct Env {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    fake: Arc<Fake>,
    n: Networks,
}

fn config() -> NetConfig {
    NetConfig {
        bridge: "berth-test0".into(),
        bridge_from_flag: false,
        bip: None,
        pools: AddressPool::docker_defaults(),
        table: "berth_test".into(),
        dns: Vec::new(),
        firewall: Backend::None,
    }
}

/// A started network manager on a fake host (`prepare` sets the host up first).
async fn env_with(prepare: impl FnOnce(&Fake)) -> Env {
    let dir = tempfile::tempdir().expect("test files");
    let store = Arc::new(Store::open(&dir.path().join("data")).expect("store"));
    let fake = Fake::new();
    prepare(&fake);
    let n = Networks::with_kernel(config(), &dir.path().join("exec"), fake.clone());
    n.load(&store).await.expect("loaded");
    Env { dir, store, fake, n }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

impl Env {
    /// The same data root after a restart of berthd, on a fresh fake host.
    async fn restarted(&self) -> Networks {
        let n = Networks::with_kernel(config(), &self.dir.path().join("exec"), self.fake.clone());
        n.load(&self.store).await.expect("loaded");
        n
    }

    async fn create(&self, name: &str, subnet: Option<&str>) -> Result<NetworkRecord, Error> {
        let id = self.n.create(&self.store, request(name, subnet)).await?;
        Ok(self.n.find(&id).expect("found"))
    }

    /// Attaches a container (its files go to a directory of its own).
    async fn attach(&self, rec: &Record) -> Result<NetState, Error> {
        let dir = self.dir.path().join("c").join(&rec.id);
        std::fs::create_dir_all(&dir).expect("test files");
        self.n.attach(rec, &dir, &[]).await.map(|(s, _)| s)
    }

    /// Every address in use on every network.
    fn used(&self) -> Vec<Ipv4Addr> {
        lock(&self.n.state).nets.values().flat_map(|n| n.used.iter().copied()).collect()
    }
}

fn request(name: &str, subnet: Option<&str>) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.into(),
        ipam: subnet.map(|s| Ipam {
            config: Some(vec![IpamConfig { subnet: Some(s.into()), ..Default::default() }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The HTTP status a client gets for `e`.
fn status(e: Error) -> (u16, String) {
    let a = berth_api::Error::from(e);
    (a.status(), a.to_string())
}

fn container(n: u8, name: &str) -> Record {
    Record {
        id: format!("{n:02x}").repeat(32),
        name: name.into(),
        created: String::new(),
        image: "busybox".into(),
        image_id: String::new(),
        path: "sh".into(),
        args: Vec::new(),
        config: ContainerConfig { hostname: Some(name.into()), ..Default::default() },
        host_config: HostConfig::default(),
        state: RunState {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            oom_killed: false,
            health: None,
        },
        restart_count: 0,
        manually_stopped: false,
        runtime: "berth".into(),
        lower_dirs: Vec::new(),
        mounts: Vec::new(),
        net: NetState::default(),
    }
}

/// A container on the networks `nets` (their endpoints as `create` makes them).
fn on(n: &Networks, num: u8, name: &str, nets: &[(&str, Option<EndpointSettings>)]) -> Record {
    let mut rec = container(num, name);
    for (net, cfg) in nets {
        let r = n.find(net).expect("found");
        rec.net.endpoints.push(endpoint_for(&r, cfg.as_ref()).expect("ok"));
    }
    rec
}

fn with_ip(ip: &str) -> Option<EndpointSettings> {
    Some(EndpointSettings {
        ipam_config: Some(EndpointIpamConfig { ipv4_address: Some(ip.into()), ..Default::default() }),
        ..Default::default()
    })
}

fn publish(rec: &mut Record, container_port: &str, host_port: &str) {
    let b = PortBinding { host_ip: None, host_port: Some(host_port.into()) };
    rec.host_config.port_bindings.get_or_insert_with(HashMap::new).insert(container_port.into(), Some(vec![b]));
}

/// The container as it runs, with the network state `attach` gave it.
fn running(mut rec: Record, net: NetState) -> Record {
    rec.net = net;
    rec.state.status = Status::Running;
    rec
}

fn namespace_of(e: &Env, rec: &Record) -> Option<Vec<String>> {
    e.fake.recorded().namespaces.get(&e.n.netns_path(&rec.id)).map(|v| v.iter().map(|i| i.name.clone()).collect())
}

fn dns_names(e: &Env) -> Vec<(String, Ipv4Addr, Vec<String>)> {
    let mut v: Vec<_> =
        e.fake.recorded().dns_entries.iter().map(|x| (x.network_name.clone(), x.ip, x.names.clone())).collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_predefined_networks_exist_once_and_stay() {
    let e = env().await;
    let bridge = e.n.find("bridge").expect("found");
    assert_eq!((bridge.driver.as_str(), bridge.bridge.as_str()), ("bridge", "berth-test0"));
    assert_eq!(bridge.bridge_created, Some(true));
    let subnet = bridge.subnet.expect("a subnet");
    assert_eq!(subnet.to_string(), "172.17.0.0/16", "the first default pool");
    let made = e.fake.recorded().bridges.get("berth-test0").cloned().expect("ok");
    assert_eq!((made.gateway, made.prefix), (Ipv4Addr::new(172, 17, 0, 1), 16));
    assert!(e.fake.recorded().dns.is_empty(), "no embedded DNS on the default bridge");
    assert_eq!(e.n.find("host").expect("found").driver, "host");
    assert_eq!(e.n.find("none").expect("found").driver, "null");
    for name in ["bridge", "host", "none"] {
        let err = e.n.remove(&e.store, name).await.expect_err("refused");
        assert_eq!(status(err), (403, format!("{name} is a pre-defined network and cannot be removed")));
    }
    for driver in ["host", "null"] {
        let mut req = request("another", None);
        req.driver = Some(driver.into());
        let err = e.n.create(&e.store, req).await.expect_err("refused");
        assert_eq!(status(err), (403, format!("only one instance of \"{driver}\" network is allowed")));
    }
    // A restart finds them again, with the same IDs.
    let ids: Vec<String> = ["bridge", "host", "none"].iter().map(|n| e.n.find(n).expect("found").id).collect();
    let again = e.restarted().await;
    let ids2: Vec<String> = ["bridge", "host", "none"].iter().map(|n| again.find(n).expect("found").id).collect();
    assert_eq!(ids, ids2);
    assert_eq!(again.all().len(), 3);
}

#[tokio::test]
async fn the_default_bridge_is_refused_on_a_host_interface_that_is_no_bridge() {
    let dir = tempfile::tempdir().expect("test files");
    let store = Arc::new(Store::open(&dir.path().join("data")).expect("store"));
    let fake = Fake::new();
    fake.host_link("berth-test0", false);
    let n = Networks::with_kernel(config(), dir.path(), fake.clone());
    let err = n.load(&store).await.expect_err("refused");
    assert!(err.to_string().contains("existing interface berth-test0 is not a bridge"), "{err}");
    assert_eq!(fake.recorded().host_links.get("berth-test0"), Some(&false), "left alone");
}

#[tokio::test]
async fn create_picks_free_subnets_and_names_are_unique() {
    // 172.18.0.0/16 is a route of the host's: never picked.
    let e = env_with(|f| f.recorded().host_routes.push(Subnet::parse("172.18.0.0/16", true).expect("ok"))).await;
    let a = e.create("a", None).await.expect("created");
    let b = e.create("b", None).await.expect("created");
    assert_eq!(a.subnet.expect("a subnet").to_string(), "172.19.0.0/16");
    assert_eq!(b.subnet.expect("a subnet").to_string(), "172.20.0.0/16");
    assert_ne!(a.id, b.id);
    assert_eq!(a.bridge, format!("br-{}", &a.id[..12]));
    {
        let rec = e.fake.recorded();
        assert_eq!(rec.bridges[&a.bridge].gateway, Ipv4Addr::new(172, 19, 0, 1));
        assert_eq!(rec.dns.get(&Ipv4Addr::new(172, 19, 0, 1)), Some(&a.id), "embedded DNS on the gateway");
        let nets: Vec<String> = rec.last_rules().networks.iter().map(|r| r.bridge.clone()).collect();
        assert!(nets.contains(&a.bridge) && nets.contains(&b.bridge), "{nets:?}");
    }
    let err = e.create("a", None).await.expect_err("refused");
    assert_eq!(status(err), (409, "network with name a already exists".into()));
    // Only `/` and control characters are refused (as Docker): spaces and punctuation are fine.
    for bad in ["a/b", "tab\there"] {
        let err = e.create(bad, None).await.expect_err("refused");
        assert_eq!(status(err).0, 400, "{bad}");
    }
    assert_eq!(e.create("my net -1", None).await.expect("a name with spaces").name, "my net -1");
    // Found by name, ID and unique ID prefix.
    assert_eq!(e.n.find(&a.id[..6]).expect("found").name, "a");
    // Persisted: a restart finds both with their subnets.
    let again = e.restarted().await;
    assert_eq!(again.find("b").expect("found").subnet, b.subnet);
}

#[tokio::test]
async fn overlapping_subnets_are_refused_as_docker_does() {
    let e = env_with(|f| f.recorded().host_addresses.push(Ipv4Addr::new(10, 9, 0, 1))).await;
    e.create("a", Some("10.1.0.0/16")).await.expect("created");
    let err = e.create("b", Some("10.1.2.0/24")).await.expect_err("refused");
    assert_eq!(status(err), (403, "Pool overlaps with other one on this address space".into()));
    let err = e.create("c", Some("172.17.5.0/24")).await.expect_err("refused");
    assert_eq!(status(err).0, 403, "overlaps the default bridge");
    let err = e.create("lo", Some("127.0.0.0/24")).await.expect_err("refused");
    let (code, msg) = status(err);
    assert_eq!(code, 400);
    assert!(msg.contains("overlaps the loopback network"), "{msg}");
    let err = e.create("gw", Some("10.9.0.0/16")).await.expect_err("refused");
    let (code, msg) = status(err);
    assert_eq!(code, 400);
    assert!(msg.contains("is an address of a host interface"), "{msg}");
    let names: Vec<String> = e.n.all().into_iter().map(|r| r.name).collect();
    assert_eq!(names.len(), 4, "only a was added: {names:?}");
}

#[tokio::test]
async fn a_failed_create_leaves_no_network_bridge_or_record() {
    let e = env().await;
    let bridges = e.fake.recorded().bridges.len();
    e.fake.fail(Op::BringUpBridge);
    assert!(e.create("net-a", None).await.is_err());
    e.fake.heal(Op::BringUpBridge);
    // The bridge is made, the firewall refuses: the bridge and its DNS server go again.
    e.fake.fail(Op::ApplyRules);
    assert!(e.create("net-b", None).await.is_err());
    e.fake.heal(Op::ApplyRules);
    assert!(e.n.find("net-a").is_err() && e.n.find("net-b").is_err());
    assert_eq!(e.fake.recorded().bridges.len(), bridges);
    assert!(e.fake.recorded().dns.is_empty());
    assert_eq!(e.restarted().await.all().len(), 3, "no record stored");
    // The name and the subnet are free again.
    assert_eq!(e.create("net-a", None).await.expect("created").subnet.expect("created").to_string(), "172.18.0.0/16");
}

#[tokio::test]
async fn attach_allocates_addresses_and_release_frees_them() {
    let e = env().await;
    let net = e.create("app", Some("10.5.0.0/24")).await.expect("created");
    let alias = Some(EndpointSettings { aliases: Some(vec!["db".into()]), ..Default::default() });
    let a = on(&e.n, 1, "one", &[("bridge", None), ("app", alias)]);
    let b = on(&e.n, 2, "two", &[("app", None)]);
    let sa = e.attach(&a).await.expect("attached");
    let sb = e.attach(&b).await.expect("attached");
    let ip = |s: &NetState, i: usize| s.endpoints[i].ip.expect("an address");
    assert_eq!(ip(&sa, 0), Ipv4Addr::new(172, 17, 0, 2));
    assert_eq!(ip(&sa, 1), Ipv4Addr::new(10, 5, 0, 2));
    assert_eq!(ip(&sb, 0), Ipv4Addr::new(10, 5, 0, 3), "no address twice");
    assert_eq!(sa.endpoints[1].gateway, Some(Ipv4Addr::new(10, 5, 0, 1)));
    assert_eq!(sa.endpoints[1].network_id, net.id);
    assert_eq!(sa.sandbox, e.n.netns_path(&a.id).display().to_string());
    // Their namespaces, with one veth per network on the network's bridge.
    assert_eq!(namespace_of(&e, &a), Some(vec!["eth0".into(), "eth1".into()]));
    let bridges: Vec<String> =
        e.fake.recorded().namespaces[&e.n.netns_path(&a.id)].iter().map(|i| i.bridge.clone()).collect();
    assert_eq!(bridges, vec!["berth-test0".to_string(), net.bridge.clone()]);
    // Names on the user-defined network only (with the alias); the default bridge has none.
    let short = |r: &Record| r.id[..12].to_string();
    assert_eq!(
        dns_names(&e),
        vec![
            ("app".into(), ip(&sa, 1), vec!["one".into(), short(&a), "db".into()]),
            ("app".into(), ip(&sb, 0), vec!["two".into(), short(&b)]),
        ]
    );
    // `/etc/hosts` and the embedded resolver.
    let dir = e.dir.path().join("c").join(&a.id);
    assert!(std::fs::read_to_string(dir.join("hosts")).expect("test files").contains("10.5.0.2\tone\n"));
    assert!(std::fs::read_to_string(dir.join("resolv.conf")).expect("test files").starts_with("nameserver 10.5.0.1\n"));

    e.n.release(&a.id, Vec::new).await;
    assert_eq!(namespace_of(&e, &a), None);
    assert_eq!(dns_names(&e).len(), 1);
    assert_eq!(e.used(), vec![ip(&sb, 0)]);
    // Released twice is harmless; the freed address is the next one given.
    e.n.release(&a.id, Vec::new).await;
    let c = e.attach(&on(&e.n, 3, "three", &[("app", None)])).await.expect("attached");
    assert_eq!(ip(&c, 0), Ipv4Addr::new(10, 5, 0, 2));
}

#[tokio::test]
async fn a_static_ip_is_given_once_and_only_on_user_subnets() {
    let e = env().await;
    e.create("fixed", Some("10.6.0.0/24")).await.expect("created");
    let a = on(&e.n, 1, "one", &[("fixed", with_ip("10.6.0.50"))]);
    assert_eq!(e.attach(&a).await.expect("attached").endpoints[0].ip, Some(Ipv4Addr::new(10, 6, 0, 50)));
    let b = on(&e.n, 2, "two", &[("fixed", with_ip("10.6.0.50"))]);
    let (code, msg) = status(e.attach(&b).await.expect_err("refused"));
    assert_eq!((code, msg.as_str()), (409, "Address already in use: 10.6.0.50"));
    assert_eq!(namespace_of(&e, &b), None);
    assert_eq!(e.used(), vec![Ipv4Addr::new(10, 6, 0, 50)]);
    // Out of the subnet, or on a network without a user subnet: refused when the container is created.
    let fixed = e.n.find("fixed").expect("found");
    assert_eq!(status(endpoint_for(&fixed, with_ip("10.7.0.5").as_ref()).expect_err("refused")).0, 400);
    let auto = e.create("auto", None).await.expect("created");
    let (code, msg) = status(endpoint_for(&auto, with_ip("172.18.0.9").as_ref()).expect_err("refused"));
    assert_eq!(code, 400);
    assert!(msg.starts_with("user specified IP address is supported only"), "{msg}");
}

#[tokio::test]
async fn published_ports_are_held_and_ruled_while_attached() {
    let e = env().await;
    let mut a = on(&e.n, 1, "web", &[("bridge", None)]);
    publish(&mut a, "80/tcp", "8080");
    publish(&mut a, "53/udp", "");
    let sa = e.attach(&a).await.expect("attached");
    let ports: Vec<(Proto, u16, u16)> = sa.ports.iter().map(|p| (p.proto, p.container_port, p.host_port)).collect();
    assert_eq!(ports[0], (Proto::Udp, 53, 32768), "a free port when none is given");
    assert_eq!(ports[1], (Proto::Tcp, 80, 8080));
    assert_eq!(e.fake.held_ports().len(), 2);
    let rules = e.fake.recorded().last_rules();
    let dnat: Vec<(u16, Ipv4Addr, u16)> =
        rules.ports.iter().map(|p| (p.host_port, p.container_ip, p.container_port)).collect();
    assert_eq!(dnat, vec![(8080, Ipv4Addr::new(172, 17, 0, 2), 80), (32768, Ipv4Addr::new(172, 17, 0, 2), 53)]);

    // The same host port for another container: Docker's error, and nothing of it is kept.
    let mut b = on(&e.n, 2, "web2", &[("bridge", None)]);
    publish(&mut b, "79/tcp", "9090");
    publish(&mut b, "80/tcp", "8080");
    let (code, msg) = status(e.attach(&b).await.expect_err("refused"));
    assert_eq!(code, 500);
    assert!(msg.ends_with("Bind for 0.0.0.0:8080 failed: port is already allocated"), "{msg}");
    assert_eq!(e.fake.held_ports().len(), 2, "9090 was let go again");
    assert_eq!(e.used(), vec![Ipv4Addr::new(172, 17, 0, 2)]);
    assert_eq!(namespace_of(&e, &b), None);

    e.n.release(&a.id, Vec::new).await;
    assert!(e.fake.held_ports().is_empty());
    assert!(e.fake.recorded().last_rules().ports.is_empty());
    // Now it can have them.
    assert_eq!(e.attach(&b).await.expect("attached").ports.len(), 2);
}

#[tokio::test]
async fn a_failure_half_way_through_attach_leaves_nothing() {
    for op in [Op::CreateNamespace, Op::ApplyRules, Op::ReservePort] {
        let e = env().await;
        e.create("app", None).await.expect("created");
        let rules_before = e.fake.recorded().last_rules();
        let mut a = on(&e.n, 1, "one", &[("bridge", None), ("app", None)]);
        publish(&mut a, "80/tcp", "8080");
        e.fake.fail(op);
        assert!(e.attach(&a).await.is_err(), "{op:?}");
        e.fake.heal(op);
        assert!(e.used().is_empty(), "{op:?}: addresses freed");
        assert!(e.fake.held_ports().is_empty(), "{op:?}: ports released");
        assert_eq!(namespace_of(&e, &a), None, "{op:?}: namespace removed");
        assert!(dns_names(&e).is_empty(), "{op:?}: no names");
        assert!(lock(&e.n.state).attached.is_empty(), "{op:?}");
        assert_eq!(e.fake.recorded().last_rules(), rules_before, "{op:?}: rules as before");
        // And it starts when the fault is gone.
        assert_eq!(e.attach(&a).await.expect("attached").endpoints.len(), 2, "{op:?}");
    }
}

#[tokio::test]
async fn a_network_in_use_cannot_be_removed() {
    let e = env().await;
    let net = e.create("app", None).await.expect("created");
    let a = on(&e.n, 1, "one", &[("app", None)]);
    e.attach(&a).await.expect("attached");
    let (code, msg) = status(e.n.remove(&e.store, "app").await.expect_err("refused"));
    assert_eq!(code, 409);
    assert_eq!(msg, format!("error while removing network: network app id {} has active endpoints", net.id));
    assert!(e.fake.recorded().bridges.contains_key(&net.bridge));
    e.n.release(&a.id, Vec::new).await;
    e.n.remove(&e.store, "app").await.expect("ok");
    assert!(e.n.find("app").is_err());
    let rec = e.fake.recorded();
    assert!(!rec.bridges.contains_key(&net.bridge), "its bridge deleted");
    assert!(rec.dns.is_empty(), "its DNS server stopped");
    assert!(!rec.last_rules().networks.iter().any(|r| r.bridge == net.bridge), "its rules gone");
}

#[tokio::test]
async fn an_existing_bridge_keeps_its_address_as_the_default_network() {
    // A bridge that is there before Berth (one the records do not say Berth made, e.g. left by a data root that is
    // gone) keeps its address: the default network takes its subnet, as dockerd's `-b` without `--bip`, rather than
    // a second address on an interface that is not Berth's.
    let e = env_with(|f| {
        f.host_link("berth-test0", true);
        f.host_link_address("berth-test0", Ipv4Addr::new(10, 77, 0, 1), 24);
    })
    .await;
    let bridge = e.n.find("bridge").expect("found");
    assert_eq!(bridge.bridge_created, Some(false));
    assert_eq!(bridge.subnet.map(|s| s.to_string()).as_deref(), Some("10.77.0.0/24"));
    assert_eq!(bridge.gateway, Some(Ipv4Addr::new(10, 77, 0, 1)));
    let made = e.fake.recorded().bridges.get("berth-test0").cloned().expect("brought up");
    assert_eq!((made.gateway, made.prefix, made.created), (Ipv4Addr::new(10, 77, 0, 1), 24, false), "no other address");
    // And again after a restart.
    let again = e.restarted().await;
    assert_eq!(again.find("bridge").expect("found").subnet.map(|s| s.to_string()).as_deref(), Some("10.77.0.0/24"));
}

#[tokio::test]
async fn a_bridge_berth_did_not_create_is_never_deleted() {
    let e = env_with(|f| f.host_link("hostbr0", true)).await;
    let mut req = request("given", Some("10.8.0.0/24"));
    req.options = Some(HashMap::from([("com.docker.network.bridge.name".into(), "hostbr0".into())]));
    let (code, msg) = status(e.n.create(&e.store, req).await.expect_err("refused"));
    assert_eq!(code, 409);
    assert!(msg.contains("already exists and was not created by berth"), "{msg}");
    assert_eq!(e.fake.recorded().host_links.get("hostbr0"), Some(&true), "still there");
    assert!(e.n.find("given").is_err());
}

#[tokio::test]
async fn connect_and_disconnect_a_running_container() {
    let e = env().await;
    e.create("app", Some("10.5.0.0/24")).await.expect("created");
    let mut a = on(&e.n, 1, "one", &[("bridge", None)]);
    publish(&mut a, "80/tcp", "8080");
    let a = running(a.clone(), e.attach(&a).await.expect("attached"));
    let app = e.n.find("app").expect("found");

    let ep = e.n.connect_running(&a, &app, endpoint_for(&app, None).expect("ok")).await.expect("ok");
    assert_eq!((ep.ip, ep.ifname.as_str()), (Some(Ipv4Addr::new(10, 5, 0, 2)), "eth1"));
    assert_eq!(namespace_of(&e, &a), Some(vec!["eth0".into(), "eth1".into()]));
    assert_eq!(dns_names(&e), vec![("app".into(), Ipv4Addr::new(10, 5, 0, 2), vec!["one".into(), a.id[..12].into()])]);
    let iface = e.fake.recorded().namespaces[&e.n.netns_path(&a.id)][1].clone();
    assert_eq!(iface.default_gateway, None, "the default route stays on the first network");

    // A failed connect keeps nothing.
    let other = e.create("other", None).await.expect("created");
    e.fake.fail(Op::AddInterfaces);
    assert!(e.n.connect_running(&a, &other, endpoint_for(&other, None).expect("ok")).await.is_err());
    e.fake.heal(Op::AddInterfaces);
    assert_eq!(e.used().len(), 2);

    let dropped = e.n.disconnect_running(&a.id, &ep).await.expect("ok");
    assert!(dropped.is_empty(), "its ports are on the default bridge");
    assert_eq!(namespace_of(&e, &a), Some(vec!["eth0".into()]));
    assert!(dns_names(&e).is_empty());
    assert_eq!(e.used(), vec![Ipv4Addr::new(172, 17, 0, 2)]);
    // Disconnecting the network its ports point at drops them.
    let first = a.net.endpoints[0].clone();
    let dropped = e.n.disconnect_running(&a.id, &first).await.expect("ok");
    assert_eq!(dropped.iter().map(|p| p.host_port).collect::<Vec<_>>(), vec![8080]);
    assert!(e.fake.held_ports().is_empty());
    assert!(e.fake.recorded().last_rules().ports.is_empty());
    assert!(e.used().is_empty());
}

#[tokio::test]
async fn restore_takes_back_the_addresses_and_ports_of_survivors() {
    let e = env().await;
    e.create("app", None).await.expect("created");
    let mut a = on(&e.n, 1, "one", &[("app", None)]);
    publish(&mut a, "80/tcp", "8080");
    let a = running(a.clone(), e.attach(&a).await.expect("attached"));
    // A namespace whose container is gone.
    let stray = container(9, "gone");
    let stray_ns = e.n.netns_path(&stray.id);
    e.fake.create_namespace(&stray_ns, Vec::new()).expect("ok");

    // berthd restarts (the old one's ports die with it); the container kept running.
    let mut held = e.fake.held_ports();
    lock(&e.n.state).held.clear();
    assert!(e.fake.held_ports().is_empty());
    let n = e.restarted().await;
    n.restore(std::slice::from_ref(&a)).await;
    assert_eq!(e.fake.held_ports(), std::mem::take(&mut held), "its port is held again");
    let rules = e.fake.recorded().last_rules();
    assert_eq!(rules.ports.len(), 1);
    assert_eq!(rules.ports[0].container_ip, a.net.endpoints[0].ip.expect("an address"));
    assert!(e.fake.recorded().namespaces.contains_key(&n.netns_path(&a.id)), "its namespace kept");
    assert!(!e.fake.recorded().namespaces.contains_key(&stray_ns), "the stray one removed");
    assert_eq!(e.fake.recorded().dns_entries.len(), 1);
    // Its address is not given again.
    let dir = e.dir.path().join("c2");
    std::fs::create_dir_all(&dir).expect("test files");
    let (b, _) = n.attach(&on(&n, 2, "two", &[("app", None)]), &dir, &[]).await.expect("attached");
    assert_ne!(b.endpoints[0].ip, a.net.endpoints[0].ip);
    // And its port neither.
    let mut c = on(&n, 3, "three", &[("app", None)]);
    publish(&mut c, "80/tcp", "8080");
    assert!(n.attach(&c, &dir, &[]).await.is_err());
    // Once it ends, all of it is free.
    n.release(&a.id, Vec::new).await;
    assert!(e.fake.held_ports().iter().all(|p| p.2 != 8080));
    assert!(!e.fake.recorded().namespaces.contains_key(&n.netns_path(&a.id)));
}

#[tokio::test]
async fn release_removes_at_once_the_veths_of_a_namespace_another_container_joined() {
    let e = env().await;
    let a = on(&e.n, 1, "one", &[("bridge", None)]);
    let a = running(a.clone(), e.attach(&a).await.expect("attached"));
    let veth = a.net.endpoints[0].host_ifname.clone();
    // Alone: the veth goes with the namespace.
    e.n.release(&a.id, Vec::new).await;
    assert!(e.fake.recorded().removed_interfaces.is_empty());
    // Joined by another running container (`--network container:one`), which keeps the namespace alive.
    let a = running(a.clone(), e.attach(&a).await.expect("attached"));
    let mut joiner = container(2, "two");
    joiner.host_config.network_mode = Some("container:one".into());
    joiner.state.status = Status::Running;
    e.n.release(&a.id, move || vec![joiner]).await;
    assert_eq!(e.fake.recorded().removed_interfaces, vec![veth]);
    assert!(e.used().is_empty());
}

#[tokio::test]
async fn a_network_whose_bridge_became_a_host_interface_stays_down() {
    let e = env().await;
    let net = e.create("app", None).await.expect("created");
    // While berthd is down, someone deletes the bridge and makes an interface of that name that is no bridge.
    e.fake.recorded().bridges.remove(&net.bridge);
    e.fake.host_link(&net.bridge, false);
    let n = e.restarted().await;
    let dir = e.dir.path().join("c3");
    std::fs::create_dir_all(&dir).expect("test files");
    let a = on(&n, 1, "one", &[("app", None)]);
    let (code, msg) = status(n.attach(&a, &dir, &[]).await.expect_err("refused"));
    assert_eq!(code, 409);
    assert!(msg.starts_with("network app is unusable"), "{msg}");
    assert!(lock(&n.state).nets.values().all(|x| x.used.is_empty()));
    assert_eq!(e.fake.recorded().host_links.get(&net.bridge), Some(&false), "left alone");
    // It stays out of the firewall; removing the network leaves the host's interface alone too.
    n.restore(&[]).await;
    assert!(!e.fake.recorded().last_rules().networks.iter().any(|r| r.bridge == net.bridge));
    n.remove(&e.store, "app").await.expect("removed");
    assert_eq!(e.fake.recorded().host_links.get(&net.bridge), Some(&false), "still left alone");
}

#[tokio::test]
async fn a_renamed_container_answers_to_its_new_name() {
    let e = env().await;
    e.create("app", None).await.expect("created");
    let a = on(&e.n, 1, "old", &[("app", None)]);
    e.attach(&a).await.expect("attached");
    assert_eq!(dns_names(&e)[0].2[0], "old");
    e.n.renamed(&a.id, "new");
    assert_eq!(dns_names(&e)[0].2, vec!["new".to_string(), a.id[..12].to_string()]);
    // Once it ends, no name is left.
    e.n.release(&a.id, Vec::new).await;
    assert!(dns_names(&e).is_empty());
}
