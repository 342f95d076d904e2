//! `build` and `builder prune`: a context directory goes with Berth's context protocol (`post_build`: the file list,
//! then only what the daemon does not keep already), a tar on STDIN to `POST /build` as docker's CLI sends it; the daemon's message stream is shown by
//! `build_view` (BuildKit-like steps, or the classic stream with `--progress=classic`).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hyper::Method;
use serde_json::Value;

use berth_api::build_context::{Entry, Kind, Manifest, Need, is_racy, racy_window};

use crate::StatusError;
use crate::client::{ChannelBody, Client, check, query};
use crate::commands::build_view;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from STDIN)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Set type of progress output ("auto", "plain", "tty", "quiet", "classic")
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Remove intermediate containers after a successful build (always done)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers (always done)
    #[arg(long)]
    pub force_rm: bool,
    /// Build context: a directory (berthd keeps it: a rebuild sends only the files that changed), or "-" for a tar
    /// (or a lone Dockerfile) on STDIN
    pub context: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `key=value` pairs; a lone `key` takes the value from the environment (docker's rule for `--build-arg`).
fn pairs(items: &[String], from_env: bool) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for i in items {
        match i.split_once('=') {
            Some((k, v)) => {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
            None if from_env => {
                if let Ok(v) = std::env::var(i) {
                    m.insert(i.clone(), Value::String(v));
                }
            }
            None => {
                m.insert(i.clone(), Value::String(String::new()));
            }
        }
    }
    m
}

/// Visits the context directory's entries (sorted, parents first) with `.dockerignore` applied; the Dockerfile and
/// `.dockerignore` always go (the daemon needs them; it keeps them out of COPY if excluded). Both ways of sending a
/// context (`pack`, `list_context`) walk it with this.
fn walk_context(
    dir: &Path,
    dockerfile_rel: &str,
    visit: &mut dyn FnMut(&str, &std::fs::DirEntry) -> Result<()>,
) -> Result<()> {
    let ignore_text = std::fs::read_to_string(dir.join(format!("{dockerfile_rel}.dockerignore")))
        .or_else(|_| std::fs::read_to_string(dir.join(".dockerignore")))
        .ok();
    let pats = match &ignore_text {
        Some(t) => Some(berth_build::ignore::Patterns::parse(t).map_err(|e| anyhow::anyhow!(".dockerignore: {e}"))?),
        None => None,
    };
    fn walk(
        visit: &mut dyn FnMut(&str, &std::fs::DirEntry) -> Result<()>,
        base: &Path,
        rel: &str,
        pats: Option<&berth_build::ignore::Patterns>,
        keep: &[&str],
    ) -> Result<()> {
        let here = if rel.is_empty() { base.to_path_buf() } else { base.join(rel) };
        let mut entries: Vec<_> = std::fs::read_dir(&here)
            .with_context(|| format!("read {}", here.display()))?
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("read {}", here.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let sub = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let ft = e.file_type().with_context(|| format!("stat {sub}"))?;
            let excluded = pats.is_some_and(|p| p.matches(&sub)) && !keep.contains(&sub.as_str());
            if excluded && !(ft.is_dir() && pats.is_some_and(|p| p.may_contain_included(&sub))) {
                continue;
            }
            if !excluded {
                visit(&sub, &e)?;
            }
            if ft.is_dir() {
                walk(visit, base, &sub, pats, keep)?;
            }
        }
        Ok(())
    }
    let keep = [dockerfile_rel, ".dockerignore"];
    walk(visit, dir, "", pats.as_ref(), &keep)
}

/// Packs the context directory into a tar: `.dockerignore` applied, the Dockerfile added under `extra` when it
/// lives elsewhere.
pub(crate) fn pack<W: Write>(out: W, dir: &Path, dockerfile_rel: &str, extra: Option<(&str, &[u8])>) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    walk_context(dir, dockerfile_rel, &mut |sub, e| {
        b.append_path_with_name(e.path(), sub).with_context(|| format!("archive {sub}"))
    })?;
    if let Some((name, data)) = extra {
        let mut h = file_header(data.len());
        b.append_data(&mut h, name, data).context("archive the Dockerfile")?;
    }
    b.into_inner().context("archive the context")
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The context as Berth's protocol lists it (`berth_api::build_context`), with where each regular file's bytes
/// are; `None` when it holds what the protocol does not carry (a FIFO, a socket, a device, a symlink whose target
/// is not UTF-8): then it goes as a tar.
fn list_context(
    dir: &Path,
    dockerfile_rel: &str,
    extra: Option<(&str, &[u8])>,
) -> Result<Option<(Manifest, Vec<PathBuf>)>> {
    use std::os::unix::fs::MetadataExt;
    // A file changed within the racy window of the listing would be sent again by the next build: when some are,
    // list again once that window has passed (at most a few tens of milliseconds).
    for attempt in 0..2 {
        let listed = now_ns();
        let mut entries = Vec::new();
        let mut paths = Vec::new();
        let mut supported = true;
        let mut listed_dirs: std::collections::HashSet<String> = std::collections::HashSet::new();
        walk_context(dir, dockerfile_rel, &mut |sub, e| {
            // A file a `.dockerignore` lets through from an excluded directory (`*` then `!src/main.py`): its
            // directories go first (the protocol wants each parent listed before its children; the tar has none,
            // and extraction makes them).
            let mut at = 0;
            while let Some(i) = sub[at..].find('/') {
                let parent = &sub[..at + i];
                if listed_dirs.insert(parent.to_string()) {
                    let pmd = std::fs::symlink_metadata(dir.join(parent)).with_context(|| format!("stat {parent}"))?;
                    entries.push(Entry {
                        path: parent.to_string(),
                        kind: Kind::Dir,
                        size: 0,
                        mode: pmd.mode() & 0o7777,
                        mtime: pmd.mtime() * 1_000_000_000 + pmd.mtime_nsec(),
                        ctime: pmd.ctime() * 1_000_000_000 + pmd.ctime_nsec(),
                        ino: pmd.ino(),
                        uid: pmd.uid(),
                        gid: pmd.gid(),
                        link: String::new(),
                    });
                    paths.push(dir.join(parent));
                }
                at += i + 1;
            }
            let md = e.metadata().with_context(|| format!("stat {sub}"))?;
            let ft = md.file_type();
            let (kind, link) = if ft.is_file() {
                (Kind::File, String::new())
            } else if ft.is_dir() {
                if !listed_dirs.insert(sub.to_string()) {
                    return Ok(());
                }
                (Kind::Dir, String::new())
            } else if ft.is_symlink() {
                match std::fs::read_link(e.path())
                    .with_context(|| format!("readlink {sub}"))?
                    .into_os_string()
                    .into_string()
                {
                    Ok(t) => (Kind::Symlink, t),
                    Err(_) => {
                        supported = false;
                        return Ok(());
                    }
                }
            } else {
                supported = false;
                return Ok(());
            };
            entries.push(Entry {
                path: sub.to_string(),
                kind,
                size: if kind == Kind::File { md.size() } else { 0 },
                mode: md.mode() & 0o7777,
                mtime: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
                ctime: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
                ino: md.ino(),
                uid: md.uid(),
                gid: md.gid(),
                link,
            });
            paths.push(e.path());
            Ok(())
        })?;
        if !supported {
            return Ok(None);
        }
        if let Some((name, data)) = extra {
            entries.push(Entry {
                path: name.to_string(),
                kind: Kind::File,
                size: data.len() as u64,
                mode: 0o600,
                mtime: 0,
                ctime: 0,
                ino: 0,
                uid: 0,
                gid: 0,
                link: String::new(),
            });
            paths.push(PathBuf::new());
        }
        let recent = entries
            .iter()
            .filter(|e| e.kind == Kind::File && is_racy(e, listed) && racy_window(e) < 1_000_000_000)
            .map(|e| e.ctime.max(e.mtime) + racy_window(e))
            .max();
        match recent {
            Some(until) if attempt == 0 => {
                let wait = (until - now_ns()).clamp(0, 100_000_000);
                std::thread::sleep(std::time::Duration::from_nanos(wait as u64 + 1_000_000));
            }
            _ => return Ok(Some((Manifest { listed, entries, send: Vec::new() }, paths))),
        }
    }
    Ok(None)
}

/// What tells this client apart: the machine's ID, else an ID of this client's own, made once in its configuration
/// directory. Containers have no machine ID (most CI jobs run in one): two of them building the same path against
/// one berthd must not share a kept context.
fn client_id() -> String {
    if let Ok(m) = std::fs::read_to_string("/etc/machine-id")
        && !m.trim().is_empty()
    {
        return m.trim().to_string();
    }
    let path = berth_api::auth::DockerConfig::default_path()
        .parent()
        .map(|d| d.join("berth-client-id"))
        .unwrap_or_else(|| PathBuf::from(".berth-client-id"));
    if let Ok(id) = std::fs::read_to_string(&path)
        && id.trim().len() == 32
    {
        return id.trim().to_string();
    }
    let mut r = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut r));
    let id = hex::encode(r);
    // Kept when it can be: otherwise this build's context is simply not found again by the next.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&path, &id);
    id
}

/// The kept context's key: this client (its machine) and the context directory.
fn context_key(dir: &Path) -> Result<String> {
    use sha2::Digest as _;
    let canon = dir.canonicalize().with_context(|| format!("resolve {}", dir.display()))?;
    let mut h = sha2::Sha256::new();
    h.update(b"berth-context\0");
    h.update(client_id().as_bytes());
    h.update(b"\0");
    h.update(canon.as_os_str().as_encoded_bytes());
    Ok(hex::encode(h.finalize()))
}

/// Sends a build of the context directory `dir` to `POST /build?q`: with Berth's context protocol (the file list
/// first, then only the files the daemon does not keep already) when the daemon has it, else as a tar (a daemon
/// that is not berthd answers 404 to the list). The answer is not checked.
pub(crate) async fn post_build(
    c: &Client,
    q: &[(&str, String)],
    dir: PathBuf,
    rel: String,
    extra: Option<(String, Vec<u8>)>,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let listing = {
        let (dir, rel, extra) = (dir.clone(), rel.clone(), extra.clone());
        tokio::task::spawn_blocking(move || {
            let listed = list_context(&dir, &rel, extra.as_ref().map(|(n, d)| (n.as_str(), d.as_slice())))?;
            Ok::<_, anyhow::Error>(match listed {
                Some(l) => Some((l, context_key(&dir)?)),
                None => None,
            })
        })
        .await
        .context("list the build context")??
    };
    let kept = match listing {
        Some(((m, paths), key)) => match c.post_json(&format!("/berth/build/context?key={key}"), &m).await {
            Ok(b) => {
                let need: Need = serde_json::from_slice(&b).context("decode the daemon's list of needed files")?;
                Some((m, paths, key, need.need))
            }
            // Not berthd (dockerd answers 404; a proxy in front of one may refuse a path it does not know).
            Err(e) if [403, 404, 405, 501].iter().any(|code| crate::client::ApiError::is(&e, *code)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let (tx, body) = ChannelBody::channel();
    let mut q = q.to_vec();
    let content_type = if kept.is_some() { "application/x-berth-context" } else { "application/x-tar" };
    let packing = match kept {
        Some((mut m, paths, key, need)) => {
            q.push(("berthcontext", key));
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut w = ChanWriter { tx, buf: Vec::with_capacity(CHUNK) };
                m.send = need;
                serde_json::to_writer(&mut w, &m).context("send the context")?;
                w.write_all(b"\n").context("send the context")?;
                for &i in &m.send {
                    let e = &m.entries[i];
                    let copied = if paths[i].as_os_str().is_empty() {
                        let data = extra.as_ref().map(|(_, d)| d.as_slice()).unwrap_or_default();
                        w.write_all(data).context("send the context")?;
                        data.len() as u64
                    } else {
                        // The file listed, not what may have been put in its place since (a link elsewhere).
                        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
                        let f = std::fs::OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&paths[i])
                            .with_context(|| format!("open {}", e.path))?;
                        let md = f.metadata().with_context(|| format!("stat {}", e.path))?;
                        if !md.is_file() || md.ino() != e.ino || md.size() != e.size {
                            anyhow::bail!("{} changed while it was sent: build again", e.path);
                        }
                        std::io::copy(&mut f.take(e.size), &mut w).with_context(|| format!("send {}", e.path))?
                    };
                    if copied != e.size {
                        anyhow::bail!("{} changed while it was sent: build again", e.path);
                    }
                }
                w.flush().context("send the context")
            })
        }
        None => tokio::task::spawn_blocking(move || -> Result<()> {
            let w = ChanWriter { tx, buf: Vec::with_capacity(CHUNK) };
            let mut w = pack(w, &dir, &rel, extra.as_ref().map(|(n, d)| (n.as_str(), d.as_slice())))?;
            w.flush().context("send the context")
        }),
    };
    let resp = c
        .send(
            Method::POST,
            &format!("/build{}", query(&q)),
            body,
            &[("content-type", content_type), ("x-registry-config", "e30=")],
        )
        .await;
    if let Ok(Err(e)) = packing.await {
        return Err(e);
    }
    resp
}

/// Where the context comes from: a tar as it is, or a directory to archive.
enum Source {
    Tar(Vec<u8>),
    Dir { dir: PathBuf, rel: String, extra: Option<(String, Vec<u8>)> },
}

const CHUNK: usize = 256 * 1024;

/// Sends what is written as request body chunks.
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the daemon stopped reading the context"))
    }
}

/// A tar entry for a file of `len` bytes that the client makes up (a Dockerfile from elsewhere).
fn file_header(len: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len as u64);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

pub(crate) fn random_name() -> String {
    let mut r = [0u8; 6];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut r));
    r.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<i32> {
    let (source, dockerfile) = if a.context == "-" {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input).context("read the context from STDIN")?;
        let is_tar = input.len() >= 262 && &input[257..262] == b"ustar" || input.starts_with(&[0x1f, 0x8b]);
        if is_tar {
            (Source::Tar(input), a.file.clone().unwrap_or_default())
        } else {
            // A lone Dockerfile: a context with nothing else.
            let mut b = tar::Builder::new(Vec::new());
            let mut h = file_header(input.len());
            b.append_data(&mut h, "Dockerfile", &input[..]).context("archive the Dockerfile")?;
            (Source::Tar(b.into_inner().context("archive the Dockerfile")?), "Dockerfile".to_string())
        }
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            return Err(StatusError::exit(1, format!("unable to prepare context: path {:?} not found", a.context)));
        }
        match a.file.as_deref() {
            Some("-") => {
                let mut text = Vec::new();
                std::io::stdin().read_to_end(&mut text).context("read the Dockerfile from STDIN")?;
                let name = format!(".dockerfile.{}", random_name());
                (Source::Dir { dir, rel: name.clone(), extra: Some((name.clone(), text)) }, name)
            }
            Some(f) => {
                let path = PathBuf::from(f);
                let canon_dir = dir.canonicalize().with_context(|| format!("resolve {}", dir.display()))?;
                let canon = path.canonicalize().map_err(|_| {
                    StatusError::exit(1, format!("unable to prepare context: the Dockerfile {f} cannot be read"))
                })?;
                match canon.strip_prefix(&canon_dir) {
                    Ok(rel) => {
                        let rel = rel.display().to_string();
                        (Source::Dir { dir, rel: rel.clone(), extra: None }, rel)
                    }
                    Err(_) => {
                        let text = std::fs::read(&canon).with_context(|| format!("read {f}"))?;
                        let name = format!(".dockerfile.{}", random_name());
                        (Source::Dir { dir, rel: name.clone(), extra: Some((name.clone(), text)) }, name)
                    }
                }
            }
            None => {
                if !dir.join("Dockerfile").exists() {
                    return Err(StatusError::exit(
                        1,
                        format!(
                            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                            dir.join("Dockerfile").display()
                        ),
                    ));
                }
                (Source::Dir { dir, rel: "Dockerfile".into(), extra: None }, "Dockerfile".to_string())
            }
        }
    };
    let mut q: Vec<(&str, String)> = a.tags.iter().map(|t| ("t", t.clone())).collect();
    if !dockerfile.is_empty() {
        q.push(("dockerfile", dockerfile));
    }
    if !a.build_args.is_empty() {
        q.push(("buildargs", Value::Object(pairs(&a.build_args, true)).to_string()));
    }
    if !a.labels.is_empty() {
        q.push(("labels", Value::Object(pairs(&a.labels, false)).to_string()));
    }
    if let Some(t) = &a.target {
        q.push(("target", t.clone()));
    }
    if a.no_cache {
        q.push(("nocache", "1".into()));
    }
    if a.pull {
        q.push(("pull", "1".into()));
    }
    if a.quiet {
        q.push(("q", "1".into()));
    }
    if a.network != "default" {
        q.push(("networkmode", a.network.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    q.push(("rm", "1".into()));
    let resp = match source {
        Source::Tar(t) => {
            let (tx, body) = ChannelBody::channel();
            let sending = tokio::task::spawn_blocking(move || -> Result<()> {
                let mut w = ChanWriter { tx, buf: Vec::with_capacity(CHUNK) };
                w.write_all(&t).context("send the context")?;
                w.flush().context("send the context")
            });
            let resp = c.call(Method::POST, &format!("/build{}", query(&q)), body, false).await;
            if let Ok(Err(e)) = sending.await {
                return Err(e);
            }
            resp?
        }
        Source::Dir { dir, rel, extra } => check(post_build(c, &q, dir, rel, extra).await?).await?,
    };
    let mode = build_view::Mode::parse(&a.progress, a.quiet)?;
    let mut view = build_view::View::new(mode, None);
    crate::client::json_messages(resp, |v| view.message(v)).await?;
    if let Some(e) = view.failure.take() {
        view.fail();
        return Err(StatusError::exit(1, e));
    }
    view.done(&a.tags);
    let image_id = view.image.take();
    let Some(id) = image_id else {
        return Err(StatusError::exit(1, "the build ended without an image"));
    };
    if a.quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("write {}", f.display()))?;
    }
    Ok(0)
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force && std::io::stdin().is_terminal() {
        eprint!("WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("read the answer")?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let q = if a.all { "?all=1" } else { "" };
    let out = c.post(&format!("/build/prune{q}")).await?;
    let v: Value = serde_json::from_slice(&out).context("decode the prune answer")?;
    if let Some(ids) = v["CachesDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted build cache objects:");
        for id in ids {
            println!("{}", id.as_str().unwrap_or(""));
        }
        println!();
    }
    let bytes = v["SpaceReclaimed"].as_u64().unwrap_or(0);
    println!("Total reclaimed space: {}", crate::units::human_size(bytes as f64));
    Ok(0)
}
