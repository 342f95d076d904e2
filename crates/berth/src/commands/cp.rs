//! `berth cp`: files between a container and the local file system, through the archive endpoints, with docker's
//! rules for where things land (copy into an existing directory, as a new name, `dir/.` for a directory's content).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde::Deserialize;

use super::container_path;
use crate::client::{ApiError, ChannelBody, Client, check, empty, next_chunk, query};
use crate::units::human_size;

/// `berth cp`.
#[derive(Args, Debug)]
#[command(
    override_usage = "berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    long_about = "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout."
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// SRC_PATH
    #[arg(value_name = "SRC")]
    pub src: String,
    /// DEST_PATH
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// The container side of a `cp` argument (`name:path`; compose's `service:path`), docker's way: a local path with a `/` before the first
/// colon, or starting with `.`, is not a container reference.
pub(crate) fn split_container(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

/// `X-Docker-Container-Path-Stat`.
#[derive(Debug, Deserialize, Default)]
struct PathStat {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
}

fn stat_header(resp: &hyper::Response<hyper::body::Incoming>) -> PathStat {
    resp.headers()
        .get("x-docker-container-path-stat")
        .and_then(|v| v.to_str().ok())
        .and_then(berth_api::base64::decode)
        .and_then(|j| serde_json::from_slice(&j).ok())
        .unwrap_or_default()
}

fn archive_path(container: &str, path: &str, extra: &[(&str, String)]) -> String {
    let mut q = vec![("path", path.to_string())];
    q.extend(extra.iter().cloned());
    format!("{}/archive{}", container_path(container), query(&q))
}

/// Docker's error for a missing container path (a HEAD answer has no body to tell).
fn no_such_path(e: anyhow::Error, container: &str, path: &str) -> anyhow::Error {
    if ApiError::is(&e, 404) && e.to_string().ends_with("Not Found") {
        anyhow!("Error: No such container:path: {container}:{path}")
    } else {
        e
    }
}

async fn stat(c: &Client, container: &str, path: &str) -> Result<PathStat> {
    let resp = c.send(Method::HEAD, &archive_path(container, path, &[]), empty(), &[]).await?;
    let resp = check(resp).await.map_err(|e| no_such_path(e, container, path))?;
    Ok(stat_header(&resp))
}

pub async fn cp(c: &Client, a: CpArgs) -> Result<i32> {
    match (split_container(&a.src), split_container(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((container, path)), None) => from_container(c, &a, container, path).await,
        (None, Some((container, path))) => to_container(c, &a, container, path).await,
    }
}

/// Rewrites the first component `from` of archive names to `to` (docker's `RebaseArchiveEntries`).
fn rebase(name: &Path, from: &str, to: &str) -> PathBuf {
    let mut comps = name.components().filter(|c| !matches!(c, Component::CurDir));
    match comps.next() {
        Some(Component::Normal(first)) if first == from => {
            let mut p = PathBuf::from(to);
            p.extend(comps);
            p
        }
        _ if from == "." => Path::new(to).join(name),
        _ => name.to_path_buf(),
    }
}

/// A blocking reader over chunks sent from the async side.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.buf = b,
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// Extracts `tar` into `dir`, renaming the top entry `from` to `to`; nothing may land outside `dir`.
fn extract_local(tar: impl Read, dir: &Path, from: &str, to: &str, owners: bool) -> Result<()> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(owners);
    archive.set_overwrite(true);
    let root = dir.canonicalize().with_context(|| format!("{}", dir.display()))?;
    for entry in archive.entries().context("read the archive")? {
        let mut entry = entry.context("read the archive")?;
        let name = entry.path().context("read the archive")?.into_owned();
        let rel = rebase(&name, from, to);
        if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            bail!("invalid archive entry {}", name.display());
        }
        let rel: PathBuf = rel.components().filter(|c| !matches!(c, Component::CurDir)).collect();
        let target = root.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("mkdir {}", parent.display()))?;
            let real = parent.canonicalize().with_context(|| format!("{}", parent.display()))?;
            if !real.starts_with(&root) {
                bail!("archive entry {} would be written outside {}", name.display(), root.display());
            }
        }
        let kind = entry.header().entry_type();
        // What is there already, not following a symlink: a directory entry over a symlink to a directory must
        // replace the link, not change the directory it points at.
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            let real_dir = m.file_type().is_dir();
            if kind.is_dir() && real_dir {
                entry.unpack(&target).map(drop).with_context(|| format!("extract {}", target.display()))?;
                continue;
            }
            if real_dir { std::fs::remove_dir_all(&target) } else { std::fs::remove_file(&target) }
                .with_context(|| format!("replace {}", target.display()))?;
        }
        if kind.is_hard_link() {
            // The link's target is another entry of the same archive: renamed like the entries, inside `root`.
            let link = entry.link_name().context("read the archive")?.unwrap_or_default().into_owned();
            let rel_link = rebase(&link, from, to);
            if rel_link.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
                bail!("invalid hard link {} in the archive", link.display());
            }
            let source = root.join(&rel_link);
            let inside = source.parent().and_then(|p| p.canonicalize().ok()).is_some_and(|p| p.starts_with(&root));
            if !inside {
                bail!("hard link {} would point outside {}", link.display(), root.display());
            }
            std::fs::hard_link(&source, &target)
                .with_context(|| format!("link {} to {}", target.display(), source.display()))?;
            continue;
        }
        entry.unpack(&target).with_context(|| format!("extract {}", target.display()))?;
    }
    Ok(())
}

async fn from_container(c: &Client, a: &CpArgs, container: &str, path: &str) -> Result<i32> {
    let mut path = path.to_string();
    let mut rebase_name = None;
    if a.follow_link {
        let st = stat(c, container, &path).await?;
        if !st.link_target.is_empty() {
            // Archive what the link points at, under the link's own name.
            rebase_name = Some(st.name.clone());
            path = st.link_target;
        }
    }
    let resp = c.call(Method::GET, &archive_path(container, &path, &[]), empty(), false).await?;
    let st = stat_header(&resp);
    let mut body = resp.into_body();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(8);
    let to_stdout = a.dest == "-";
    let dest = PathBuf::from(&a.dest);
    let src_base = rebase_name.clone().unwrap_or_else(|| st.name.clone());
    let archive_base = st.name.clone();
    let owners = a.archive;
    let is_dir = st.is_dir();
    let dest_text = a.dest.clone();
    let worker = tokio::task::spawn_blocking(move || -> Result<()> {
        let reader = ChunkReader { rx, buf: Bytes::new() };
        if to_stdout {
            let mut reader = reader;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut reader, &mut out).context("write the archive")?;
            return out.flush().context("write the archive");
        }
        let trailing_slash = dest_text.ends_with('/');
        match std::fs::metadata(&dest) {
            Ok(m) if m.is_dir() => extract_local(reader, &dest, &archive_base, &src_base, owners),
            Ok(_) if is_dir => bail!("cannot copy a directory to a file"),
            Ok(_) | Err(_) => {
                if trailing_slash && !dest.exists() {
                    bail!("destination directory \"{}\" does not exist", dest.display());
                }
                let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    bail!("destination directory \"{}\" does not exist", parent.display());
                }
                let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                extract_local(reader, parent, &archive_base, &name, owners)
            }
        }
    });
    let mut total = 0u64;
    while let Some(chunk) = next_chunk(&mut body).await? {
        total += chunk.len() as u64;
        if tx.send(chunk).is_err() {
            break;
        }
    }
    drop(tx);
    worker.await.map_err(|e| anyhow!("copy: {e}"))??;
    if !a.quiet && !to_stdout {
        eprintln!("Successfully copied {} to {}", human_size(total as f64), a.dest);
    }
    Ok(0)
}

/// Writes a tar of the local `src` with its top entry named `name` (`.` entries for a directory's content).
fn tar_local(src: &Path, name: &str, follow: bool, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let meta = if follow { std::fs::metadata(src) } else { std::fs::symlink_metadata(src) }
        .with_context(|| format!("lstat {}", src.display()))?;
    if meta.is_dir() {
        b.append_dir_all(name, src).with_context(|| format!("archive {}", src.display()))?;
    } else if follow {
        let mut f = std::fs::File::open(src).with_context(|| format!("open {}", src.display()))?;
        b.append_file(name, &mut f).with_context(|| format!("archive {}", src.display()))?;
    } else {
        b.append_path_with_name(src, name).with_context(|| format!("archive {}", src.display()))?;
    }
    b.into_inner().map(drop).context("write the archive")
}

async fn to_container(c: &Client, a: &CpArgs, container: &str, path: &str) -> Result<i32> {
    let mut flags = vec![("noOverwriteDirNonDir", "true".to_string())];
    if a.archive {
        flags.push(("copyUIDGID", "true".to_string()));
    }
    let (tx, body) = ChannelBody::channel();
    if a.src == "-" {
        // A tar on stdin goes into the destination directory as it is.
        tokio::spawn(super::transfer::pump(Box::new(tokio::io::stdin()), tx));
        let resp = c.send(Method::PUT, &archive_path(container, path, &flags), body, &[]).await?;
        check(resp).await?;
        return Ok(0);
    }
    let src = PathBuf::from(&a.src);
    std::fs::symlink_metadata(&src).map_err(|_| anyhow!("could not find the file {} on the local host", a.src))?;
    let src_is_dir = std::fs::metadata(&src).map(|m| m.is_dir()).unwrap_or(false);
    let contents = a.src.ends_with("/.");
    let src_name = if contents {
        ".".to_string()
    } else {
        src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into())
    };
    // Where the archive goes and what its top entry is called, as docker decides it.
    let (dir, name) = match stat(c, container, path).await {
        Ok(st) if st.is_dir() || (!st.link_target.is_empty() && path.ends_with('/')) => (path.to_string(), src_name),
        Ok(_) if src_is_dir => bail!("cannot copy a directory to a file"),
        Ok(_) => parent_and_name(path),
        Err(e) if ApiError::is(&e, 404) || e.to_string().starts_with("Error: No such container:path") => {
            if path.ends_with('/') && !src_is_dir {
                bail!("destination \"{container}:{path}\" must be a directory");
            }
            parent_and_name(path)
        }
        Err(e) => return Err(e),
    };
    let follow = a.follow_link;
    let writer = tokio::task::spawn_blocking(move || {
        struct Sender(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, u64);
        impl Write for Sender {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.1 += buf.len() as u64;
                self.0
                    .blocking_send(Ok(Bytes::copy_from_slice(buf)))
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the daemon went away"))?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sender = Sender(tx, 0);
        let r = tar_local(&src, &name, follow, std::io::BufWriter::with_capacity(64 * 1024, &mut sender));
        r.map(|()| sender.1)
    });
    let resp = c.send(Method::PUT, &archive_path(container, &dir, &flags), body, &[]).await?;
    let checked = check(resp).await;
    let total = writer.await.map_err(|e| anyhow!("copy: {e}"))?;
    checked?;
    let total = total?;
    if !a.quiet {
        eprintln!("Successfully copied {} to {}", human_size(total as f64), a.dest);
    }
    Ok(0)
}

/// `/a/b` → (`/a`, `b`).
fn parent_and_name(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/".into() } else { p.to_string() }, n.to_string()),
        None => (".".into(), trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_arguments() {
        assert_eq!(split_container("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_container("/tmp/a:b"), None);
        assert_eq!(split_container("./a:b"), None);
        assert_eq!(split_container("local-file"), None);
        assert_eq!(parent_and_name("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(parent_and_name("/x"), ("/".into(), "x".into()));
    }

    #[test]
    fn rebasing() {
        assert_eq!(rebase(Path::new("dir/a/b"), "dir", "new"), PathBuf::from("new/a/b"));
        assert_eq!(rebase(Path::new("./a"), ".", "new"), PathBuf::from("new/a"));
        assert_eq!(rebase(Path::new("other"), "dir", "new"), PathBuf::from("other"));
    }
}
