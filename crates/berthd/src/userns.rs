//! `berthd --userns-remap`: containers' root is a subordinate ID of the host (dockerd's `--userns-remap`).
//!
//! `default` is the user and group `berthremap` (dockerd's `dockremap`), created with a range of 65536 subordinate IDs
//! in `/etc/subuid` and `/etc/subgid` when missing; `USER[:GROUP]` uses that user's (and group's) first ranges.
//! Container ID `n` is host ID `start + n`; the image layers are mounted idmapped by the shim, volumes are owned by
//! the remapped root, bind mounts are left as they are (so container root is not host root on them).

use std::path::{Path, PathBuf};

use berth_runtime::shim::IdMap;

use crate::error::Error;
use berth_api::models::HostConfig;

/// The user (and group) `default` stands for.
pub const DEFAULT_USER: &str = "berthremap";
/// The size of the range given to a user created for `default`.
const DEFAULT_RANGE: u32 = 65536;

/// Why `--userns-remap`'s value cannot be resolved to an ID range.
#[derive(Debug, thiserror::Error)]
pub enum RemapError {
    /// `USER:` or `:GROUP`.
    #[error("invalid --userns-remap {0:?}: USER[:GROUP]")]
    Syntax(String),
    /// `/etc/subuid` or `/etc/subgid` could not be read.
    #[error("read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The user (or group) has no range in the file.
    #[error("no subordinate ID range for {name:?} in {}", .path.display())]
    NoRange {
        /// The user or group.
        name: String,
        /// `/etc/subuid` or `/etc/subgid`.
        path: PathBuf,
    },
    /// `useradd` could not be run.
    #[error("run useradd: {0}")]
    RunUseradd(#[source] std::io::Error),
    /// `useradd` failed; its standard error.
    #[error("useradd {user}: {stderr}", user = DEFAULT_USER)]
    Useradd {
        /// What it said.
        stderr: String,
    },
    /// The range of `berthremap` could not be added to the file.
    #[error(transparent)]
    Write(berth_runtime::Error),
    /// The file could not be made world-readable again.
    #[error("chmod {}: {source}", .path.display())]
    Chmod {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `--userns-remap`'s value to the containers' ID range, creating `berthremap` for `default`.
pub fn resolve(value: &str) -> Result<IdMap, RemapError> {
    let (user, group) = match value {
        "default" => {
            ensure_default_user()?;
            (DEFAULT_USER.to_string(), DEFAULT_USER.to_string())
        }
        v => match v.split_once(':') {
            Some((u, g)) if !u.is_empty() && !g.is_empty() => (u.to_string(), g.to_string()),
            Some(_) => return Err(RemapError::Syntax(v.to_string())),
            None => (v.to_string(), v.to_string()),
        },
    };
    let (uid, usize) = first_range(Path::new("/etc/subuid"), &user, uid_of(&user))?;
    let (gid, gsize) = first_range(Path::new("/etc/subgid"), &group, gid_of(&group))?;
    Ok(IdMap { uid, gid, size: usize.min(gsize) })
}

fn uid_of(user: &str) -> Option<u32> {
    nix::unistd::User::from_name(user).ok().flatten().map(|u| u.uid.as_raw())
}

fn gid_of(group: &str) -> Option<u32> {
    nix::unistd::Group::from_name(group).ok().flatten().map(|g| g.gid.as_raw())
}

/// The first `start:count` range of `name` (or of its numeric ID) in a subordinate ID file.
fn first_range(file: &Path, name: &str, id: Option<u32>) -> Result<(u32, u32), RemapError> {
    let text = std::fs::read_to_string(file).map_err(|source| RemapError::Read { path: file.into(), source })?;
    parse_ranges(&text)
        .into_iter()
        .find(|(n, _, _)| n == name || id.is_some_and(|i| *n == i.to_string()))
        .map(|(_, s, c)| (s, c))
        .filter(|(_, c)| *c > 0)
        .ok_or_else(|| RemapError::NoRange { name: name.to_string(), path: file.into() })
}

/// `name:start:count` lines (others are skipped).
fn parse_ranges(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (n, s, c) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
            Some((n.to_string(), s, c))
        })
        .collect()
}

/// Creates the user and group `berthremap` (a system account without a home or shell) and gives it a range in
/// `/etc/subuid` and `/etc/subgid` after every range there, as dockerd does for `dockremap`.
fn ensure_default_user() -> Result<(), RemapError> {
    if uid_of(DEFAULT_USER).is_none() {
        let out = std::process::Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home", "--shell", "/bin/false", DEFAULT_USER])
            .output()
            .map_err(RemapError::RunUseradd)?;
        if !out.status.success() {
            return Err(RemapError::Useradd { stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
        }
    }
    for file in [Path::new("/etc/subuid"), Path::new("/etc/subgid")] {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(RemapError::Read { path: file.into(), source }),
        };
        let ranges = parse_ranges(&text);
        if ranges.iter().any(|(n, _, _)| n == DEFAULT_USER) {
            continue;
        }
        let start = ranges.iter().map(|(_, s, c)| s.saturating_add(*c)).max().unwrap_or(0).max(100_000);
        let mut text = text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{DEFAULT_USER}:{start}:{DEFAULT_RANGE}\n"));
        // Its message names the file.
        berth_runtime::sys::replace_file(file, text.as_bytes(), true).map_err(RemapError::Write)?;
        // replace_file writes 0600: these files are world-readable.
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(|source| RemapError::Chmod { path: file.into(), source })?;
    }
    Ok(())
}

/// The ID range of a container: the daemon's, unless it opts out with `--userns host`.
pub fn of_container(remap: Option<IdMap>, userns_mode: Option<&str>) -> Option<IdMap> {
    remap.filter(|_| userns_mode != Some("host"))
}

/// Checks `--userns`, `--privileged` and the runtime at create, as Docker does (the runtime: Berth's own only).
pub fn check_create(remap: Option<IdMap>, host: &HostConfig, runtime: &str) -> Result<(), Error> {
    let userns_mode = host.userns_mode.as_deref();
    let privileged = host.privileged.unwrap_or(false);
    match userns_mode {
        None | Some("") | Some("host") => {}
        Some(m) => return Err(Error::InvalidArgument(format!("invalid USER mode: {m}"))),
    }
    if privileged && of_container(remap, userns_mode).is_some() {
        return Err(Error::InvalidArgument(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace \
             when running privileged mode"
                .into(),
        ));
    }
    if runtime != "berth" && of_container(remap, userns_mode).is_some() {
        // An external runtime cannot mount /sys in a user namespace that does not own the network namespace
        // berthd made; the built-in runtime binds one the shim mounts there.
        return Err(Error::InvalidArgument(format!(
            "runtime {runtime} cannot run a container with --userns-remap: use the built-in runtime or --userns host"
        )));
    }
    Ok(())
}

/// Makes a directory on the way to a remapped container's files passable (not listable) by its root: group of the
/// remapped root, mode 0710 (dockerd's layout of `<data-root>/<uid>.<gid>`).
pub fn let_through(dir: &Path, remap: IdMap) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Internal(format!("chgrp {}: {e}", dir.display()));
    std::os::unix::fs::chown(dir, None, Some(remap.gid)).map_err(io)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o710)).map_err(io)
}

/// Gives a directory owned by host root (0:0) to the remapped root (a container's upper directory at its first
/// remapped start); any other owner is kept.
pub fn own_root_dir(dir: &Path, remap: IdMap) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let io = |e: std::io::Error| Error::Internal(format!("chown {}: {e}", dir.display()));
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if (meta.uid(), meta.gid()) == (0, 0) {
        std::os::unix::fs::lchown(dir, Some(remap.uid), Some(remap.gid)).map_err(io)?;
    }
    Ok(())
}

/// Changes the owners of every entry of a tree (symlinks not followed) by `map`, keeping setuid/setgid bits.
pub fn chown_tree(dir: &Path, map: impl Fn(u32, u32) -> (u32, u32)) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let io = |p: &Path, e: std::io::Error| Error::Internal(format!("chown {}: {e}", p.display()));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| io(&p, e))?;
        let (uid, gid) = map(meta.uid(), meta.gid());
        if (uid, gid) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(|e| io(&p, e))?;
            if meta.mode() & 0o6000 != 0 && !meta.file_type().is_symlink() {
                // chown clears setuid and setgid bits: put them back.
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777))
                    .map_err(|e| io(&p, e))?;
            }
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).map_err(|e| io(&p, e))? {
                stack.push(e.map_err(|e| io(&p, e))?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_lines_are_skipped() {
        let r = parse_ranges("a:100000:65536\n# x\nb:1:2:3\nbad\nc:x:1\n");
        assert_eq!(r, vec![("a".into(), 100000, 65536), ("b".into(), 1, 2)]);
    }

    #[test]
    fn remap_errors_say_what_is_wrong() {
        let text = |e: RemapError| e.to_string();
        assert_eq!(resolve("a:").map_err(text).err().as_deref(), Some("invalid --userns-remap \"a:\": USER[:GROUP]"));
        let missing = Path::new("/nonexistent-berth-test/subuid");
        assert_eq!(
            first_range(missing, "a", None).map_err(text).err().as_deref(),
            Some("read /nonexistent-berth-test/subuid: No such file or directory (os error 2)")
        );
        let none = RemapError::NoRange { name: "a".into(), path: "/etc/subuid".into() };
        assert_eq!(none.to_string(), "no subordinate ID range for \"a\" in /etc/subuid");
        assert_eq!(RemapError::Useradd { stderr: "no".into() }.to_string(), "useradd berthremap: no");
    }

    #[test]
    fn privileged_needs_userns_host() {
        let m = Some(IdMap { uid: 100000, gid: 100000, size: 65536 });
        let host = |mode: Option<&str>, privileged: bool| HostConfig {
            userns_mode: mode.map(str::to_string),
            privileged: Some(privileged),
            ..Default::default()
        };
        assert!(check_create(m, &host(None, true), "berth").is_err());
        assert!(check_create(m, &host(Some("host"), true), "berth").is_ok());
        assert!(check_create(None, &host(None, true), "berth").is_ok());
        assert!(check_create(m, &host(Some("bogus"), false), "berth").is_err());
        assert!(check_create(m, &host(None, false), "runc").is_err());
        assert!(check_create(m, &host(Some("host"), false), "runc").is_ok());
        assert!(check_create(None, &host(None, false), "runc").is_ok());
    }
}
