//! Resolving Docker's `-u user[:group]` against the container's own `/etc/passwd` and `/etc/group`, as Docker does.

use std::path::Path;

use crate::{Error, Result};

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups of `/etc/group` that list the user by name.
    pub additional_gids: Vec<u32>,
    /// The home directory (`/` when the user has no passwd entry), for a default `HOME`.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Checks the syntax of a `-u` value without looking anything up (`name`, `uid`, `name:group`, `uid:gid`).
pub fn validate_spec(spec: &str) -> Result<()> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let ok = |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == ':' || c == '/');
    if !ok(user) || group.is_some_and(|g| !ok(g)) {
        return Err(Error::User(format!("invalid user specification: {spec:?}")));
    }
    Ok(())
}

/// Resolves `spec` (Docker's `user[:group]`, names or numbers; empty means root) using the files under `root`
/// (`root/etc/passwd`, `root/etc/group`). Missing files are treated as empty, like Docker.
pub fn resolve(root: &Path, spec: &str) -> Result<User> {
    let passwd = read_in_root(root, "etc/passwd");
    let group = read_in_root(root, "etc/group");
    resolve_in(&passwd, &group, spec)
}

/// Reads a small regular file of a container's root file system: symlinks resolve inside `root` (never to the
/// host's files), and anything that is not a regular file of at most 4 MiB (a FIFO, `/dev/zero`) reads as empty.
fn read_in_root(root: &Path, rel: &str) -> String {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
    use std::io::Read;
    let Ok(dir) = open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
    else {
        return String::new();
    };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(fd) = openat2(&dir, rel, how) else { return String::new() };
    let file = std::fs::File::from(fd);
    match file.metadata() {
        Ok(m) if m.is_file() && m.len() <= 4 << 20 => {}
        _ => return String::new(),
    }
    let mut text = String::new();
    let _ = file.take(4 << 20).read_to_string(&mut text);
    text
}

fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<User> {
    let spec = if spec.is_empty() { "0" } else { spec };
    validate_spec(spec)?;
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = users.iter().find(|e| e.name == user_part).or_else(|| {
        let uid: u32 = user_part.parse().ok()?;
        users.iter().find(|e| e.uid == uid)
    });
    let (uid, mut gid, home, name) = match (entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => {
            return Err(Error::User(format!("unable to find user {user_part}: no matching entries in passwd file")));
        }
    };
    if let Some(g) = group_part {
        gid = match groups.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g
                .parse()
                .map_err(|_| Error::User(format!("unable to find group {g}: no matching entries in group file")))?,
        };
    }
    let additional_gids = match (&name, group_part) {
        (Some(n), None) => {
            let mut v: Vec<u32> =
                groups.iter().filter(|e| e.members.iter().any(|m| m == n) && e.gid != gid).map(|e| e.gid).collect();
            v.dedup();
            v
        }
        _ => Vec::new(),
    };
    Ok(User { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbad line\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:www,bob\naudio:x:29:www\n";

    #[test]
    fn resolves_names_and_numbers() {
        let u = resolve_in(PASSWD, GROUP, "www").expect("www");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(u.additional_gids, vec![50, 29]);
        let u = resolve_in(PASSWD, GROUP, "1000:1000").expect("numeric");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/"));
        let u = resolve_in(PASSWD, GROUP, "33:staff").expect("uid:group");
        assert_eq!((u.uid, u.gid), (33, 50));
        assert!(u.additional_gids.is_empty());
        assert_eq!(resolve_in(PASSWD, GROUP, "").expect("root").uid, 0);
    }

    #[test]
    fn refuses_unknown_and_malformed() {
        let e = resolve_in(PASSWD, GROUP, "nope").expect_err("unknown");
        assert_eq!(e.to_string(), "unable to find user nope: no matching entries in passwd file");
        assert!(resolve_in(PASSWD, GROUP, "www:nogroup").is_err());
        assert!(validate_spec("a b").is_err());
        assert!(validate_spec(":1").is_err());
        assert!(validate_spec("1:").is_err());
        assert!(validate_spec("daemon:daemon").is_ok());
    }
}
