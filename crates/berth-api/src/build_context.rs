//! Berth's build context protocol (`berth build`, `berth compose build`): the CLI sends the context's file list
//! first, berthd answers which regular files it does not already hold for that context (kept per context key under
//! its data root), and the build request then carries the list again and only those files' bytes.
//!
//! - `POST /berth/build/context?key=K`, body a [`Manifest`] (JSON) → a [`Need`].
//! - `POST /build?…&berthcontext=K`, body: one line of JSON (a [`Manifest`] with `send` set), `\n`, then for each
//!   index in `send` (ascending) exactly `entries[i].size` bytes, the file's content.
//!
//! The classic `POST /build` (a tar of the context) stays what the docker CLI and the SDKs use.

use serde::{Deserialize, Serialize};

/// The kind of a context entry (other file types are not sent: the CLI falls back to the classic tar for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One file, directory or symlink of the context, as `lstat` describes it on the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative, `/`-separated, without `.`, `..` or empty components; its parent is listed before it as a `dir`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub size: u64,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime: i64,
    /// Change time and inode: never applied, only compared (a rewrite that keeps size and mtime changes them).
    #[serde(default)]
    pub ctime: i64,
    #[serde(default)]
    pub ino: u64,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
}

/// The context's list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The client's clock when it began to list (nanoseconds since the epoch): a file changed less than
    /// [`racy_window`] before it could change again without its times showing it.
    pub listed: i64,
    pub entries: Vec<Entry>,
    /// The indices of the regular files whose bytes follow (the build request only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send: Vec<usize>,
}

/// The daemon's answer: the indices of the regular files it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Need {
    pub need: Vec<usize>,
}

/// How close to the listing a change must be for the file's times not to be trusted: Linux stamps files with its
/// coarse clock (a tick of 1–10 ms); a file system with whole-second times (no nanoseconds) gets two seconds.
pub fn racy_window(e: &Entry) -> i64 {
    if e.ctime % 1_000_000_000 == 0 && e.mtime % 1_000_000_000 == 0 { 2_000_000_000 } else { 20_000_000 }
}

/// Whether `e`, listed at `listed`, changed too recently for its times to vouch for its content.
pub fn is_racy(e: &Entry, listed: i64) -> bool {
    e.ctime.max(e.mtime) > listed.saturating_sub(racy_window(e))
}

/// Checks a context path: relative, clean, no NUL, at most 4096 bytes.
pub fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 4096 || p.contains('\0') {
        return Err(format!("invalid path {p:?}"));
    }
    if p.starts_with('/') {
        return Err(format!("invalid path {p:?}: absolute"));
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("invalid path {p:?}: not a clean relative path"));
    }
    // Linux's NAME_MAX: a longer name can be neither kept nor copied.
    if p.split('/').any(|c| c.len() > 255) {
        return Err(format!("invalid path {p:?}: a name longer than 255 bytes"));
    }
    Ok(())
}

impl Manifest {
    /// Checks what a client sent: clean unique paths, each one's parent listed before it as a directory (so no
    /// path goes through a symlink), permission bits only, symlinks with a target, `send` ascending, in range and
    /// naming regular files.
    pub fn check(&self) -> Result<(), String> {
        let mut kinds: std::collections::HashMap<&str, Kind> = std::collections::HashMap::new();
        for e in &self.entries {
            check_path(&e.path)?;
            if let Some((parent, _)) = e.path.rsplit_once('/')
                && kinds.get(parent) != Some(&Kind::Dir)
            {
                return Err(format!("invalid path {:?}: its parent is not a directory listed before it", e.path));
            }
            if e.mode & !0o7777 != 0 {
                return Err(format!("invalid mode {:o} of {:?}", e.mode, e.path));
            }
            match e.kind {
                Kind::Symlink if e.link.is_empty() || e.link.contains('\0') || e.link.len() > 4096 => {
                    return Err(format!("invalid symlink target of {:?}", e.path));
                }
                Kind::File | Kind::Dir if !e.link.is_empty() => {
                    return Err(format!("{:?} is not a symlink but has a link target", e.path));
                }
                Kind::Dir | Kind::Symlink if e.size != 0 => {
                    return Err(format!("{:?} is not a regular file but has a size", e.path));
                }
                _ => {}
            }
            if kinds.insert(&e.path, e.kind).is_some() {
                return Err(format!("{:?} is listed twice", e.path));
            }
        }
        let mut last = None;
        for &i in &self.send {
            if last.is_some_and(|l| l >= i) {
                return Err("send: indices must be ascending".into());
            }
            match self.entries.get(i) {
                Some(e) if e.kind == Kind::File => {}
                _ => return Err(format!("send: {i} is not a regular file of the list")),
            }
            last = Some(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, kind: Kind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o644,
            mtime: 1,
            ctime: 1,
            ino: 1,
            uid: 0,
            gid: 0,
            link: if kind == Kind::Symlink { "x".into() } else { String::new() },
        }
    }

    fn m(entries: Vec<Entry>) -> Manifest {
        Manifest { listed: 0, entries, send: vec![] }
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "", "a\0b"] {
            assert!(check_path(p).is_err(), "{p:?}");
        }
        assert!(check_path("a/b.c/..d").is_ok());
        // Through a symlink, or a parent not listed (or listed after).
        assert!(m(vec![e("l", Kind::Symlink), e("l/x", Kind::File)]).check().is_err());
        assert!(m(vec![e("d/x", Kind::File), e("d", Kind::Dir)]).check().is_err());
        assert!(m(vec![e("f", Kind::File), e("f/x", Kind::File)]).check().is_err());
        assert!(m(vec![e("d", Kind::Dir), e("d/x", Kind::File)]).check().is_ok());
        assert!(m(vec![e("d", Kind::Dir), e("d", Kind::Dir)]).check().is_err());
        let mut bad_mode = e("f", Kind::File);
        bad_mode.mode = 0o100644;
        assert!(m(vec![bad_mode]).check().is_err());
        let mut s = m(vec![e("d", Kind::Dir), e("f", Kind::File)]);
        s.send = vec![0];
        assert!(s.check().is_err(), "a directory has no bytes to send");
        s.send = vec![1, 1];
        assert!(s.check().is_err());
        s.send = vec![1];
        assert!(s.check().is_ok());
    }

    #[test]
    fn recent_changes_are_racy() {
        let mut f = e("f", Kind::File);
        f.mtime = 10_000_000_000 + 5;
        f.ctime = 10_000_000_000 + 5;
        assert!(is_racy(&f, 10_010_000_000));
        assert!(!is_racy(&f, 10_100_000_000));
        // Whole-second times: two seconds.
        f.mtime = 10_000_000_000;
        f.ctime = 10_000_000_000;
        assert!(is_racy(&f, 11_000_000_000));
        assert!(!is_racy(&f, 12_500_000_000));
    }
}
