//! Resolving Docker's `-u user[:group]` against the container's own `/etc/passwd` and `/etc/group`, as Docker does.

use std::path::Path;

use crate::{Error, Result};

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as Docker 20.10 gives them: the primary group, the groups of `/etc/group` that list the
    /// user by name (when `-u` named no group), then `--group-add`'s; each once.
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
/// (`root/etc/passwd`, `root/etc/group`), adding `group_add` (`HostConfig.GroupAdd`: group names looked up in
/// `/etc/group`, numbers as they are). Missing files are treated as empty, like Docker.
pub fn resolve(root: &Path, spec: &str, group_add: &[String]) -> Result<User> {
    let passwd = read_in_root(root, "etc/passwd");
    let group = read_in_root(root, "etc/group");
    let mut user = resolve_in(&passwd, &group, spec)?;
    for g in additional_groups(&group, group_add)? {
        if !user.additional_gids.contains(&g) {
            user.additional_gids.push(g);
        }
    }
    Ok(user)
}

/// `--group-add` values as runc's `GetAdditionalGroups` resolves them: a name or number of `/etc/group`, else a
/// number as it is; anything else is Docker's error.
fn additional_groups(group: &str, names: &[String]) -> Result<Vec<u32>> {
    let groups = parse_group(group);
    names
        .iter()
        .map(|n| match groups.iter().find(|e| e.name == *n) {
            Some(e) => Ok(e.gid),
            None => n
                .parse::<u32>()
                .map_err(|_| Error::User(format!("Unable to find group {n}: no matching entries in group file"))),
        })
        .collect()
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
    // Docker (20.10.24 and later) puts the primary group first among the supplementary ones, so root's `id` shows
    // `groups=0(root),…`: a program that drops its primary group keeps its access through it.
    let mut additional_gids = vec![gid];
    if let (Some(n), None) = (&name, group_part) {
        for e in groups.iter().filter(|e| e.members.iter().any(|m| m == n)) {
            if !additional_gids.contains(&e.gid) {
                additional_gids.push(e.gid);
            }
        }
    }
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
        assert_eq!(u.additional_gids, vec![33, 50, 29]);
        let u = resolve_in(PASSWD, GROUP, "1000:1000").expect("numeric");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/"));
        assert_eq!(u.additional_gids, vec![1000]);
        let u = resolve_in(PASSWD, GROUP, "33:staff").expect("uid:group");
        assert_eq!((u.uid, u.gid), (33, 50));
        assert_eq!(u.additional_gids, vec![50]);
        let root = resolve_in(PASSWD, GROUP, "").expect("root");
        assert_eq!((root.uid, root.additional_gids), (0, vec![0]));
    }

    #[test]
    fn group_add_by_name_or_number() {
        // As Docker 20.10 (`-u 1000 --group-add wheel --group-add 1234` gave additionalGids [0, 10, 1234]).
        let group = "root:x:0:\nwheel:x:10:root\n";
        assert_eq!(
            additional_groups(group, &["wheel".into(), "1234".into(), "0".into()]).expect("ok"),
            vec![10, 1234, 0]
        );
        let e = additional_groups(group, &["nosuch".into()]).expect_err("unknown");
        assert_eq!(e.to_string(), "Unable to find group nosuch: no matching entries in group file");
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
