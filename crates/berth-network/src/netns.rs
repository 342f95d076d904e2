//! Network namespaces kept alive by a bind mount (`<exec-root>/netns/<container id>`, like `ip netns add`), and the
//! interfaces inside them. Each operation runs on a short-lived thread of its own: `unshare`/`setns` change the
//! calling thread's namespace, which must never happen to a thread of the async runtime.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::Error;
use crate::netlink::Netlink;

/// One interface to create in a container's namespace.
#[derive(Debug, Clone)]
pub struct Interface {
    /// The host end's name (`vb…`), enslaved to `bridge`.
    pub host_name: String,
    pub bridge: String,
    /// The name inside (`eth0`, `eth1`, …).
    pub name: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    /// The default route goes through this gateway (only on one interface).
    pub default_gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
}

fn os(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let what = what.into();
    move |e| Error::Os(what, std::io::Error::from(e))
}

/// Runs `f` on a new thread (which may change its namespaces) and returns its result.
fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(f)
        .map_err(|e| Error::Os("spawn a thread".into(), e))?
        .join()
        .map_err(|_| Error::Netlink("network namespace thread panicked".into()))?
}

/// Creates a network namespace pinned at `path` with loopback up and `ifaces` configured. On failure nothing is
/// left: the namespace (and with it every interface created inside) is released.
pub fn create(path: &Path, ifaces: Vec<Interface>) -> Result<(), Error> {
    let path = path.to_path_buf();
    on_own_thread(move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Os(format!("create {}", dir.display()), e))?;
        }
        release_pin(&path);
        // The host's netlink socket, opened before the thread leaves the host's namespace.
        let mut host = Netlink::open()?;
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(os("unshare the network namespace"))?;
        File::create(&path).map_err(|e| Error::Os(format!("create {}", path.display()), e))?;
        let pinned =
            nix::mount::mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>);
        if let Err(e) = pinned {
            let _ = std::fs::remove_file(&path);
            return Err(os(format!("pin the network namespace at {}", path.display()))(e));
        }
        let r = configure(&mut host, &ifaces, true);
        if r.is_err() {
            for i in &ifaces {
                let _ = host.delete_veth_named(&i.host_name);
            }
            release_pin(&path);
        }
        r
    })
}

/// Adds interfaces to an existing namespace (`network connect` on a running container).
pub fn add(path: &Path, ifaces: Vec<Interface>) -> Result<(), Error> {
    let path = path.to_path_buf();
    on_own_thread(move || {
        let mut host = Netlink::open()?;
        let ns = File::open(&path).map_err(|e| Error::Os(format!("open {}", path.display()), e))?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(os("join the network namespace"))?;
        let r = configure(&mut host, &ifaces, false);
        if r.is_err() {
            for i in &ifaces {
                let _ = host.delete_veth_named(&i.host_name);
            }
        }
        r
    })
}

/// In the thread that is in the container's namespace: creates the veths from the host side (peer straight into
/// this namespace) and sets addresses and routes from the inside.
fn configure(host: &mut Netlink, ifaces: &[Interface], new_ns: bool) -> Result<(), Error> {
    let mut inner = Netlink::open()?;
    if new_ns {
        // Loopback is always index 1 in a new namespace.
        inner.set_up(1)?;
    }
    if ifaces.is_empty() {
        return Ok(());
    }
    let me = File::open("/proc/thread-self/ns/net").map_err(|e| Error::Os("open own network namespace".into(), e))?;
    for i in ifaces {
        let bridge =
            host.link_index(&i.bridge)?.ok_or_else(|| Error::Netlink(format!("bridge {} does not exist", i.bridge)))?;
        match host.create_veth(&i.host_name, bridge, &i.name, me.as_raw_fd(), i.mac, i.mtu) {
            // The host end of this container's previous veth, in a namespace the kernel has not finished
            // destroying yet (a quick restart): delete it now and try again.
            Err(Error::Os(_, e)) if e.raw_os_error() == Some(libc::EEXIST) => {
                host.delete_veth_named(&i.host_name)?;
                host.create_veth(&i.host_name, bridge, &i.name, me.as_raw_fd(), i.mac, i.mtu)?;
            }
            r => r?,
        }
        // Hairpin on the bridge port: with br_netfilter loaded a container's traffic to its own published port is
        // bridged back out of the port it came in through. (The host's sysfs shows the host's interfaces.)
        let _ = std::fs::write(format!("/sys/class/net/{}/brport/hairpin_mode", i.host_name), "1");
        let idx = inner
            .link_index(&i.name)?
            .ok_or_else(|| Error::Netlink(format!("{} did not appear in the container", i.name)))?;
        inner.add_address(idx, i.ip, i.prefix)?;
        inner.set_up(idx)?;
        if let Some(gw) = i.default_gateway {
            inner.add_default_route(idx, gw)?;
        }
    }
    Ok(())
}

/// Removes interfaces from a namespace by their host ends (`network disconnect`); deleting one end of a veth pair
/// deletes both.
pub fn remove_interfaces(host_names: &[String]) -> Result<(), Error> {
    let mut host = Netlink::open()?;
    // Every one is tried: one that cannot go must not keep the others.
    let mut first_error = None;
    for n in host_names {
        if let Err(e) = host.delete_veth_named(n) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Releases a container's namespace once its processes are gone: the pin goes now, and the kernel destroys the
/// namespace with its veths shortly after, on its own time (deleting a veth synchronously waits for RCU grace
/// periods, ~20 ms that a `run --rm` would otherwise spend).
pub fn unpin(path: &Path) {
    release_pin(path);
}

fn release_pin(path: &Path) {
    let _ = nix::mount::umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Deletes a container's namespace: its veths first (so the host ends vanish now, not when the kernel gets round to
/// destroying the namespace), then the pin. Safe to call for a namespace that is gone.
pub fn destroy(path: &Path, host_names: &[String]) -> Result<(), Error> {
    let r = remove_interfaces(host_names);
    release_pin(path);
    r
}

/// Makes `dir` a mount point of its own with shared propagation, as `ip netns` does with `/run/netns`: a process
/// that copied the mount table (a shim's mount namespace, a slave of the host's) then sees what berthd unmounts
/// below it (a namespace pin, a volume's file system) disappear too, instead of keeping it alive.
pub fn shared_mount_point(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Os(format!("create {}", dir.display()), e))?;
    let canon = dir.canonicalize().map_err(|e| Error::Os(format!("resolve {}", dir.display()), e))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let is_mount = info.lines().any(|l| l.split(' ').nth(4) == Some(canon.to_string_lossy().as_ref()));
    if !is_mount {
        nix::mount::mount(Some(&canon), &canon, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(os(format!("bind {} onto itself", canon.display())))?;
    }
    nix::mount::mount(None::<&str>, &canon, None::<&str>, MsFlags::MS_SHARED, None::<&str>)
        .map_err(os(format!("make {} shared", canon.display())))
}

/// Undoes [`shared_mount_point`] (uninstalling: `berthd --remove-networking`): unmounts `dir` (and whatever is still
/// mounted below it) if its top mount is a bind of the directory onto itself, which is what `shared_mount_point`
/// makes. A file system that someone else mounted there is left alone. Returns whether it unmounted.
pub fn release_shared_mount_point(dir: &Path) -> Result<bool, Error> {
    let Ok(canon) = dir.canonicalize() else { return Ok(false) };
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::Os("read mountinfo".into(), e))?;
    if !is_bind_onto_itself(&info, &canon) {
        return Ok(false);
    }
    nix::mount::umount2(&canon, MntFlags::MNT_DETACH).map_err(os(format!("unmount {}", canon.display())))?;
    Ok(true)
}

/// Whether the top mount at `path` in `mountinfo` is a bind of `path` onto itself: same device as the mount it
/// covers, and the same directory of that device (mountinfo's `root` field).
fn is_bind_onto_itself(mountinfo: &str, path: &Path) -> bool {
    // id, parent id, major:minor, root, mount point
    let lines: Vec<Vec<String>> = mountinfo
        .lines()
        .map(|l| l.split(' ').take(5).map(unescape_mountinfo).collect::<Vec<_>>())
        .filter(|f| f.len() == 5)
        .collect();
    let Some(top) = lines.iter().rev().find(|f| Path::new(&f[4]) == path) else { return false };
    let Some(below) = lines.iter().find(|f| f[0] == top[1]) else { return false };
    let Ok(rel) = path.strip_prefix(&below[4]) else { return false };
    top[2] == below[2] && Path::new(&top[3]) == Path::new(&below[3]).join(rel)
}

/// A path field of `/proc/self/mountinfo`: spaces, tabs, newlines and backslashes are octal escapes there.
pub fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// The pinned namespaces under `dir` (file name = container ID).
pub fn pinned(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_onto_itself() {
        let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                    25 22 0:21 / /run rw - tmpfs tmpfs rw\n\
                    90 22 8:1 /var/lib/b\\040x/volumes /var/lib/b\\040x/volumes rw shared:5 - ext4 /dev/sda1 rw\n\
                    91 25 0:21 /b/netns /run/b/netns rw shared:6 - tmpfs tmpfs rw\n\
                    92 22 8:17 / /srv/disk rw - ext4 /dev/sdb1 rw\n\
                    93 22 8:1 /elsewhere /srv/other rw - ext4 /dev/sda1 rw\n";
        assert!(is_bind_onto_itself(info, Path::new("/var/lib/b x/volumes")));
        assert!(is_bind_onto_itself(info, Path::new("/run/b/netns")));
        assert!(!is_bind_onto_itself(info, Path::new("/srv/disk")), "another file system mounted there");
        assert!(!is_bind_onto_itself(info, Path::new("/srv/other")), "a bind of another directory");
        assert!(!is_bind_onto_itself(info, Path::new("/var/lib")), "not a mount point");
        assert!(!is_bind_onto_itself(info, Path::new("/")), "the root covers nothing");
    }

    /// As root: a bridge, a pinned namespace with a veth on it, addresses and routes inside; then all gone.
    #[test]
    #[ignore = "needs root: test.sh runs it with --include-ignored"]
    fn pinned_namespace_with_a_veth() {
        let tag = std::process::id() % 100_000;
        let bridge = format!("btst{tag}");
        let dir = tempfile::tempdir().expect("tempdir");
        shared_mount_point(dir.path()).expect("prepare");
        let mut nl = Netlink::open().expect("netlink");
        let (br, _) = nl.ensure_bridge(&bridge, None, crate::netlink::BridgeUse::New).expect("bridge");
        nl.add_address(br, Ipv4Addr::new(10, 213, 7, 1), 24).expect("address");
        nl.add_address(br, Ipv4Addr::new(10, 213, 7, 1), 24).expect("address again is fine");
        assert_eq!(nl.addresses(br).expect("addrs"), vec![(Ipv4Addr::new(10, 213, 7, 1), 24)]);
        let ns = dir.path().join("c1");
        let iface = Interface {
            host_name: format!("vbt{tag}"),
            bridge: bridge.clone(),
            name: "eth0".into(),
            ip: Ipv4Addr::new(10, 213, 7, 2),
            prefix: 24,
            mac: crate::ipam::mac_for(Ipv4Addr::new(10, 213, 7, 2)),
            default_gateway: Some(Ipv4Addr::new(10, 213, 7, 1)),
            mtu: None,
        };
        let r = create(&ns, vec![iface.clone()]);
        let inside = std::process::Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["ip", "-o", "-4", "addr"])
            .output();
        let route =
            std::process::Command::new("nsenter").arg(format!("--net={}", ns.display())).args(["ip", "route"]).output();
        let host_end = nl.link_index(&iface.host_name).expect("lookup");
        // A namespace made with the same host name (a quick restart while the kernel still destroys the old one)
        // replaces the stale host end.
        let again = create(&dir.path().join("c2"), vec![iface.clone()]);
        let _ = destroy(&dir.path().join("c2"), std::slice::from_ref(&iface.host_name));
        let destroyed = destroy(&ns, std::slice::from_ref(&iface.host_name));
        let gone = nl.link_index(&iface.host_name).expect("lookup");
        let _ = nl.delete_link(br);
        let _ = nix::mount::umount2(dir.path(), MntFlags::MNT_DETACH);
        r.expect("create");
        destroyed.expect("destroy");
        again.expect("a stale host end is replaced");
        let inside = String::from_utf8_lossy(&inside.expect("nsenter").stdout).to_string();
        assert!(inside.contains("lo") && inside.contains("10.213.7.2/24") && inside.contains("eth0"), "{inside}");
        let route = String::from_utf8_lossy(&route.expect("nsenter").stdout).to_string();
        assert!(route.contains("default via 10.213.7.1 dev eth0"), "{route}");
        assert!(host_end.is_some());
        assert!(gone.is_none(), "the veth is gone with the namespace");
        assert!(!ns.exists() && !dir.path().join("c2").exists());
    }
}
