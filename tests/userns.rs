//! `berthd --userns-remap`: container root is a subordinate ID of the host. A private daemon remaps to a user this
//! test creates (with its own range in /etc/subuid and /etc/subgid, removed again on drop).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_integration::*;

/// The tests edit /etc/passwd, /etc/subuid and /etc/subgid: one at a time.
static HOST_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A user with a subordinate ID range of 65536, and the files' previous contents to put back.
struct RemapUser {
    name: String,
    start: u32,
    saved: Vec<(&'static str, Option<String>)>,
}

impl RemapUser {
    fn create() -> RemapUser {
        let name = format!("bun{}", std::process::id() % 100000);
        let out = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home", "--shell", "/bin/false", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd: {}", String::from_utf8_lossy(&out.stderr));
        let mut saved = Vec::new();
        let mut start = 300_000u32;
        for f in ["/etc/subuid", "/etc/subgid"] {
            let old = std::fs::read_to_string(f).ok();
            for l in old.iter().flat_map(|t| t.lines()) {
                let v: Vec<&str> = l.split(':').collect();
                if let [_, s, c] = v[..]
                    && let (Ok(s), Ok(c)) = (s.parse::<u32>(), c.parse::<u32>())
                {
                    start = start.max(s + c);
                }
            }
            saved.push((f, old));
        }
        let u = RemapUser { name, start, saved };
        for (f, old) in &u.saved {
            let mut text = old.clone().unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{}:{}:65536\n", u.name, u.start));
            std::fs::write(f, text).unwrap();
        }
        u
    }
}

impl Drop for RemapUser {
    fn drop(&mut self) {
        for (f, old) in &self.saved {
            match old {
                Some(t) => {
                    let _ = std::fs::write(f, t);
                }
                None => {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// `Uid:` of /proc/<pid>/status: real, effective, saved, file system.
fn host_uids(pid: &str) -> Vec<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().skip(1).map(|u| u.parse().unwrap()).collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn remapped_root_is_not_host_root() {
    require_root();
    if !Path::new("/usr/sbin/useradd").exists() {
        skip_missing_tool("no useradd to create the remapped user");
        return;
    }
    let _serial = HOST_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let user = RemapUser::create();
    let start = user.start;
    let mut d = Berthd::start_with(&["--userns-remap", &user.name]);
    d.busybox();

    // Root inside, the range in uid_map.
    let out = d.ok(&["run", "--rm", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0"], "{out}");
    assert_eq!(lines[1], ["0", &start.to_string(), "65536"], "{out}");
    assert_eq!(lines[2], ["0", &start.to_string(), "65536"], "{out}");

    // Image files are root's inside (idmapped layers), and writable by container root (the upper layer too).
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "stat -c '%u:%g' /bin/busybox /etc/passwd / && echo x > /etc/new && stat -c '%u:%g' /etc/new",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0:0"; 4], "{out}");

    // A root-only host file bound in: unreadable by remapped root, readable with --userns host.
    let secret = d.dir.join("secret");
    std::fs::write(&secret, "top secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bind = format!("{}:/secret", secret.display());
    let out = d.berth(&["run", "--rm", "-v", &bind, "busybox", "cat", "/secret"]);
    assert!(!out.status.success(), "remapped root read a root-only host file: {}", stdout(&out));
    assert!(
        stderr(&out).contains("Permission denied") || stdout(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.ok(&["run", "--rm", "--userns", "host", "-v", &bind, "busybox", "cat", "/secret"]), "top secret\n");

    // Namespaced sysctls still apply (the network's are written from outside the user namespace).
    let out = d.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmni=1234",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shmmni",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1", "1234"], "{out}");

    // External runtimes are refused for remapped containers (they could not mount /sys), allowed with --userns host.
    let out = d.berth(&["create", "--runtime", "runc", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot run a container with --userns-remap"), "{}", stderr(&out));

    // --privileged needs --userns host.
    let out = d.berth(&["run", "--rm", "--privileged", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("privileged mode is incompatible with user namespaces"), "{}", stderr(&out));
    d.ok(&["run", "--rm", "--privileged", "--userns", "host", "busybox", "true"]);

    // A named volume written by container root holds the subordinate ID on the host.
    d.ok(&["run", "--rm", "-v", "unsvol:/data", "busybox", "sh", "-c", "echo hi > /data/f && mkdir /data/d"]);
    let data = d.dir.join("data/volumes/unsvol/_data");
    for p in [data.clone(), data.join("f"), data.join("d")] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (start, start), "{}", p.display());
    }
    // Copied up from the image: shifted, so root's inside.
    let out = d.ok(&["run", "--rm", "-v", "unsetc:/etc", "busybox", "stat", "-c", "%u", "/etc/passwd"]);
    assert_eq!(out.trim(), "0");
    assert_eq!(std::fs::metadata(d.dir.join("data/volumes/unsetc/_data/passwd")).unwrap().uid(), start);

    // A running container: its processes run as the subordinate ID on the host; exec joins its user namespace.
    let id = d.ok(&["run", "-d", "busybox", "sleep", "300"]).trim().to_string();
    let pid = d.inspect(&id, "{{.State.Pid}}");
    assert_eq!(host_uids(&pid), [start; 4]);
    let out = d.ok(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map; ls /proc/1/root >/dev/null && echo ok"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines, [vec!["0"], vec!["0", &start.to_string(), "65536"], vec!["ok"]], "{out}");
    // /proc, /sys, /dev and the network work inside.
    // (/sys is the container's network namespace's: no host interface in it.)
    let out =
        d.ok(&["exec", &id, "sh", "-c", "ls /sys/class/net; echo > /dev/null && ip addr show eth0 | grep -c 'inet '"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["eth0", "lo", "1"], "{out}");
    // Another remapped container in its network namespace, and one in the host's.
    let out = d.ok(&["run", "--rm", "--network", &format!("container:{id}"), "busybox", "ls", "/sys/class/net"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["eth0", "lo"], "{out}");
    let out = d.ok(&["run", "--rm", "--network", "host", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0", &start.to_string(), "65536"], "{out}");
    // Logs and cp.
    d.ok(&["exec", &id, "sh", "-c", "echo from-exec > /tmp/f"]);
    let host_copy = d.dir.join("copied");
    d.ok(&["cp", &format!("{id}:/tmp/f"), host_copy.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&host_copy).unwrap(), "from-exec\n");
    // cp in: owned by container root inside, by the subordinate ID on the host.
    let host_file = d.dir.join("to-copy");
    std::fs::write(&host_file, "in\n").unwrap();
    d.ok(&["cp", host_file.to_str().unwrap(), &format!("{id}:/tmp/in")]);
    assert_eq!(d.ok(&["exec", &id, "stat", "-c", "%u:%g", "/tmp/in"]).trim(), "0:0");
    // export: the container's IDs in the archive, never the host's.
    let tar = d.dir.join("export.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), &id]);
    let listing = Command::new("tar").args(["--numeric-owner", "-tvf"]).arg(&tar).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(listing.contains(" 0/0 ") && listing.contains("tmp/in"), "{listing}");
    assert!(!listing.contains(&start.to_string()), "host IDs in the export: {listing}");
    d.ok(&["rm", "-f", &id]);

    // A build's RUN runs remapped; its layer holds the container's IDs.
    let out =
        d.berth_input(&["build", "-q", "-t", "remapbuilt", "-"], b"FROM busybox\nRUN touch /made && id -u > /who\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.ok(&["run", "--rm", "--userns", "host", "remapbuilt", "sh", "-c", "stat -c %u:%g /made; cat /who"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0:0", "0"], "{out}");
    // Its cache mounts are writable by its root.
    let out = d.berth_input(
        &["build", "-q", "-t", "remapcache", "-"],
        b"FROM busybox\nRUN --mount=type=cache,target=/c touch /c/x && stat -c %u /c/x > /cached\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ok(&["run", "--rm", "remapcache", "cat", "/cached"]).trim(), "0");

    // A daemon restart (kill -9) keeps a running remapped container reachable.
    let id = d.ok(&["run", "-d", "busybox", "sleep", "300"]).trim().to_string();
    d.restart();
    let out = d.ok(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0", &start.to_string(), "65536"], "{out}");
    d.ok(&["rm", "-f", &id]);

    let id = d.ok(&["run", "-d", "busybox", "sh", "-c", "echo logged; id -u"]).trim().to_string();
    assert_eq!(d.ok(&["wait", &id]).trim(), "0");
    assert_eq!(d.ok(&["logs", &id]), "logged\n0\n");
    d.ok(&["rm", "-f", &id]);
    // Nothing of the idmapped layers or the sysfs the shims mounted reaches the host.
    let (pins, volumes) = (d.dir.join("run/netns"), d.dir.join("data/volumes"));
    let left: Vec<String> =
        mounts_under(&d.dir).into_iter().filter(|m| Path::new(m) != pins && Path::new(m) != volumes).collect();
    assert!(left.is_empty(), "mounts left on the host: {left:?}");
    drop(d);
    drop(user);
}

/// Saves files to put back on drop, and removes the user `berthremap` if the test made it.
struct HostFiles {
    saved: Vec<(&'static str, Option<String>)>,
    user_existed: bool,
}

impl Drop for HostFiles {
    fn drop(&mut self) {
        for (f, old) in &self.saved {
            match old {
                Some(t) => {
                    let _ = std::fs::write(f, t);
                }
                None => {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
        if !self.user_existed {
            let _ = Command::new("userdel").arg("berthremap").output();
        }
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn default_remap_creates_berthremap_with_a_range() {
    require_root();
    if !Path::new("/usr/sbin/useradd").exists() {
        skip_missing_tool("no useradd for berthd to create berthremap");
        return;
    }
    let _serial = HOST_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let user_existed = Command::new("id").arg("berthremap").output().unwrap().status.success();
    let saved = ["/etc/subuid", "/etc/subgid"].into_iter().map(|f| (f, std::fs::read_to_string(f).ok())).collect();
    let _restore = HostFiles { saved, user_existed };
    let d = Berthd::start_with(&["--userns-remap", "default"]);
    d.busybox();
    let line = |f: &str| {
        let text = std::fs::read_to_string(f).unwrap();
        text.lines().find(|l| l.starts_with("berthremap:")).map(str::to_string).unwrap_or_default()
    };
    let (subuid, subgid) = (line("/etc/subuid"), line("/etc/subgid"));
    let fields: Vec<&str> = subuid.split(':').collect();
    assert_eq!(fields.len(), 3, "/etc/subuid: {subuid:?}");
    assert_eq!(fields[2], "65536");
    assert!(fields[1].parse::<u32>().unwrap() >= 100_000);
    assert!(Command::new("id").arg("berthremap").output().unwrap().status.success());
    let out = d.ok(&["run", "--rm", "busybox", "cat", "/proc/self/uid_map", "/proc/self/gid_map"]);
    let want = |l: &str| format!("0 {}", l.split(':').skip(1).collect::<Vec<_>>().join(" "));
    let got: Vec<String> = out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(got, [want(&subuid), want(&subgid)], "{out}");
    // A second start finds the user and its ranges: no second line.
    drop(d);
    let d = Berthd::start_with(&["--userns-remap", "default"]);
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("berthremap:")).count(), 1, "{f}: {text}");
    }
    drop(d);
}
