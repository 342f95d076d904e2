//! A container's writable layer seen from outside: as a new image (`POST /commit`, `docker commit`) and as a list of
//! changes (`GET /containers/{id}/changes`, `docker diff`).
//!
//! Both read the container's upper directory as it is, also while the container runs (Docker does the same; `commit`
//! pauses it first unless told not to). The mount points a start created (`/etc/hosts`, `/proc`, ...), which Docker
//! keeps in a layer of its own under the container's, are left out of both. The layer is the upper directory
//! archived with its overlay whiteouts and opaque directories as `.wh.` entries — the builder's `RUN` layers, but
//! copied instead of moved, since the container keeps its directory — and imported into the store like any layer.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::archive::primitives::{TarOptions, TarWriter, mount_stubs, piped};
use crate::containers::{self, Container, Status, container_dir};
use crate::daemon::Daemon;
use crate::error::Error;
use crate::task::blocking;

/// What `POST /commit` asks for.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    /// `repo` and `tag` joined (`name`, `name:tag`); none for an untagged image.
    pub reference: Option<String>,
    pub author: String,
    /// `-m`: the history entry's comment.
    pub comment: String,
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// Freeze a running container for the time of the commit (Docker's default).
    pub pause: bool,
    /// The request body: a container config replacing the container's (merged with it as Docker does).
    pub config: Option<Value>,
}

/// The paths of `upper` (relative) that are not the container's work: the mount points its start created, and the
/// directories copied up only to hold them (`etc` for `etc/hosts`).
fn not_the_containers(upper: &Path, lower: &[PathBuf], extra: &[String]) -> BTreeSet<String> {
    let mut skip: BTreeSet<String> = mount_stubs(upper, lower, extra).into_iter().collect();
    let mut parents: Vec<String> = skip.iter().filter_map(|s| s.rsplit_once('/').map(|(p, _)| p.to_string())).collect();
    // Deepest first, so that a parent's check sees its children's verdicts.
    parents.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    parents.dedup();
    for p in parents {
        let mut parent = Some(p);
        while let Some(dir) = parent {
            let only_stubs = std::fs::read_dir(upper.join(&dir))
                .map(|d| d.flatten().all(|e| skip.contains(&format!("{dir}/{}", e.file_name().to_string_lossy()))))
                .unwrap_or(false);
            let copied_up = lower.iter().any(|l| l.join(&dir).is_dir());
            if !only_stubs || !copied_up {
                break;
            }
            parent = dir.rsplit_once('/').map(|(p, _)| p.to_string());
            skip.insert(dir);
        }
    }
    skip
}

/// The container's writable layer. Its volumes' and binds' mount points stay in it, as in Docker's.
fn upper_of(d: &Daemon, id: &str) -> PathBuf {
    container_dir(d, id).join("upper")
}

/// `docker commit`: the container's writable layer as a new image on top of its image, its config changed by
/// `opts`. Returns the image ID.
pub async fn commit(d: &Arc<Daemon>, c: &Arc<Container>, opts: CommitOptions) -> Result<String, Error> {
    let rec = c.record();
    match rec.state.status {
        Status::Dead => return Err(Error::Conflict(format!("You cannot commit container {} which is Dead", c.id))),
        Status::Removing => {
            return Err(Error::Conflict(format!("You cannot commit container {} which is being removed", c.id)));
        }
        _ => {}
    }
    let reference = match &opts.reference {
        Some(r) => {
            let parsed = berth_store::Reference::parse(r).map_err(Error::from)?;
            if parsed.digest().is_some() {
                return Err(Error::InvalidArgument("cannot commit to digest reference".into()));
            }
            Some(parsed.with_default_tag())
        }
        None => None,
    };
    // The config first: bad changes fail before anything is paused or written.
    let container_config = serde_json::to_value(&rec.config).map_err(|e| Error::Internal(e.to_string()))?;
    let mut config = match opts.config.clone().filter(|v| !v.is_null()) {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::InvalidArgument("the config must be a JSON object".into())),
        None => container_config.as_object().cloned().unwrap_or_default(),
    };
    berth_store::change::apply_changes(&mut config, &opts.changes, "linux").map_err(Error::from)?;
    merge(&mut config, container_config.as_object().cloned().unwrap_or_default());

    let parent = crate::images::local::resolve(d, &rec.image_id).await?;
    let paused = opts.pause && rec.state.status == Status::Running;
    if paused {
        containers::pause(d, c, true).await?;
    }
    let result = make_image(d, c, &rec, &opts, reference, config, container_config, &parent).await;
    if paused {
        // The container may have been stopped meanwhile: then there is nothing to resume.
        if let Err(e) = containers::pause(d, c, false).await
            && c.status() == Status::Paused
        {
            tracing::warn!(container = %c.id, "commit: cannot unpause: {e}");
        }
    }
    result
}

/// The layer and the image of a commit, with their events.
#[allow(clippy::too_many_arguments)]
async fn make_image(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    rec: &containers::Record,
    opts: &CommitOptions,
    reference: Option<berth_store::Reference>,
    config: Map<String, Value>,
    container_config: Value,
    parent: &berth_store::Image,
) -> Result<String, Error> {
    let store = d.store.clone();
    let upper = upper_of(d, &c.id);
    let lower = rec.lower_dirs.clone();
    let unshift = crate::userns::of_container(d.config.userns_remap, rec.host_config.userns_mode.as_deref());
    let parent_chain = parent.layers.last().cloned();
    let layer = blocking(move || {
        let skip = not_the_containers(&upper, &lower, &[]);
        let empty = std::fs::read_dir(&upper)
            .map_err(|e| Error::Internal(format!("read {}: {e}", upper.display())))?
            .flatten()
            .all(|e| skip.contains(e.file_name().to_string_lossy().as_ref()));
        if empty {
            return Ok(None);
        }
        let root = nix::fcntl::open(
            &upper,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(crate::archive::primitives::sys("open the writable layer"))?;
        let layer = piped(
            move |w| {
                let skip_fn = move |name: &str, _: &nix::sys::stat::FileStat| skip.contains(name);
                let opts =
                    TarOptions { overlay_diff: true, unshift, skip: Some(Box::new(skip_fn)), ..Default::default() };
                let mut t = TarWriter::with_options(w, opts);
                t.add_children(root, "")?;
                t.finish()
            },
            |r| store.import_layer(r, parent_chain.as_ref()).map_err(Error::from),
        )?;
        berth_store::fault::point("commit.after-layer");
        Ok(Some(layer))
    })
    .await?;

    let created = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let cmd = rec.config.cmd.clone().unwrap_or_default().join(" ");
    let mut entry = Map::new();
    entry.insert("created".into(), json!(created));
    if !opts.author.is_empty() {
        entry.insert("author".into(), json!(opts.author));
    }
    entry.insert("created_by".into(), json!(cmd));
    if !opts.comment.is_empty() {
        entry.insert("comment".into(), json!(opts.comment));
    }
    if layer.is_none() {
        entry.insert("empty_layer".into(), json!(true));
    }
    let mut image = image_config(&parent.config, Value::Object(config), container_config, &c.id, &created);
    if !opts.author.is_empty() {
        image["author"] = json!(opts.author);
    }
    if let Some(l) = &layer {
        match image["rootfs"]["diff_ids"].as_array_mut() {
            Some(ids) => ids.push(json!(l.diff_id.as_str())),
            None => image["rootfs"] = json!({"type": "layers", "diff_ids": [l.diff_id.as_str()]}),
        }
    }
    match image["history"].as_array_mut() {
        Some(h) => h.push(Value::Object(entry)),
        None => image["history"] = json!([Value::Object(entry)]),
    }
    let bytes = serde_json::to_vec(&image).map_err(|e| Error::Internal(e.to_string()))?;
    let store = d.store.clone();
    let tags: Vec<String> = reference.iter().map(|r| r.to_string()).collect();
    let id = blocking(move || store.create_image_named(&bytes, &tags, &[]).map_err(Error::from)).await?;
    let id = id.to_string();
    let image_ref = reference.as_ref().map(|r| r.familiar_string()).unwrap_or_default();
    // Docker's order: the image's tag, then the container's commit (then the unpause).
    if !image_ref.is_empty() {
        crate::images::publish(d, "tag", &id, &image_ref);
    }
    c.publish(&d.events, "commit", &[("comment", &opts.comment), ("imageID", &id), ("imageRef", &image_ref)]);
    Ok(id)
}

/// The new image's config: the parent's platform and history, the merged container config, and where it came from
/// (moby's `image.NewChildImage`).
fn image_config(parent: &Value, config: Value, container_config: Value, container: &str, created: &str) -> Value {
    let mut image = json!({
        "architecture": parent.get("architecture").cloned().unwrap_or_else(|| json!(berth_store::image::host_architecture())),
        "os": parent.get("os").cloned().unwrap_or_else(|| json!("linux")),
        "config": config,
        "container": container,
        "container_config": container_config,
        "created": created,
        "rootfs": parent.get("rootfs").cloned().unwrap_or_else(|| json!({"type": "layers", "diff_ids": []})),
        "history": parent.get("history").cloned().unwrap_or_else(|| json!([])),
    });
    for k in ["variant", "os.version", "os.features"] {
        if let Some(v) = parent.get(k) {
            image[k] = v.clone();
        }
    }
    image
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// Fills what the user's config leaves out from the container's (moby's `daemon.merge`).
fn merge(user: &mut Map<String, Value>, container: Map<String, Value>) {
    let get = |k: &str| container.get(k).cloned().unwrap_or(Value::Null);
    if is_empty(user.get("User")) {
        user.insert("User".into(), get("User"));
    }
    for key in ["ExposedPorts", "Volumes"] {
        if is_empty(user.get(key)) {
            user.insert(key.into(), get(key));
        } else if let (Some(Value::Object(u)), Value::Object(c)) = (user.get_mut(key), get(key)) {
            for (k, v) in c {
                u.entry(k).or_insert(v);
            }
        }
    }
    if is_empty(user.get("Env")) {
        user.insert("Env".into(), get("Env"));
    } else if let (Some(Value::Array(u)), Value::Array(c)) = (user.get_mut("Env"), get("Env")) {
        let key = |e: &Value| e.as_str().map(|s| s.split('=').next().unwrap_or("").to_string()).unwrap_or_default();
        let have: BTreeSet<String> = u.iter().map(key).collect();
        u.extend(c.into_iter().filter(|e| !have.contains(&key(e))));
    }
    let labels = user.entry("Labels").or_insert_with(|| json!({}));
    if labels.is_null() {
        *labels = json!({});
    }
    if let (Some(l), Value::Object(c)) = (labels.as_object_mut(), get("Labels")) {
        for (k, v) in c {
            l.entry(k).or_insert(v);
        }
    }
    if is_empty(user.get("Entrypoint")) {
        if is_empty(user.get("Cmd")) {
            user.insert("Cmd".into(), get("Cmd"));
            if let Some(a) = container.get("ArgsEscaped") {
                user.insert("ArgsEscaped".into(), a.clone());
            }
        }
        if user.get("Entrypoint").is_none_or(Value::is_null) {
            user.insert("Entrypoint".into(), get("Entrypoint"));
        }
    }
    if let Value::Object(c) = get("Healthcheck") {
        match user.get_mut("Healthcheck") {
            Some(Value::Object(u)) => {
                for (k, v) in c {
                    if is_empty(u.get(&k)) || u.get(&k) == Some(&json!(0)) {
                        u.insert(k, v);
                    }
                }
            }
            _ => {
                user.insert("Healthcheck".into(), Value::Object(c));
            }
        }
    }
    for key in ["WorkingDir", "StopSignal"] {
        if is_empty(user.get(key)) {
            user.insert(key.into(), get(key));
        }
    }
    user.retain(|_, v| !v.is_null());
}

// ---------------------------------------------------------------------------------------------------------------
// Changes

/// One change of a container's file system, as `docker diff` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path in the container.
    pub path: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

/// `docker diff`: the changes of the container's writable layer against its image.
pub async fn changes(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<Vec<Change>, Error> {
    let rec = c.record();
    let upper = upper_of(d, &c.id);
    blocking(move || {
        let skip = not_the_containers(&upper, &rec.lower_dirs, &[]);
        walk_changes(&upper, &rec.lower_dirs, &skip)
    })
    .await
}

/// The changes of `upper` (an overlay upper directory) over `lower` (its layers, top first), as moby's `ChangesDirs`
/// finds them comparing the container's root with its image's (what dockerd 20.10 answers on hosts where overlay2
/// uses its "naive" diff): an entry the layers below lack is added (and everything under it); one they have is
/// modified when its mode, owner or device — or, not for a directory, its time or size — differ; a whiteout over an
/// entry below is a deletion, and so is an entry below hidden by an opaque directory (which is itself modified, as
/// it still exists); a directory with changes inside is modified too. Listed in path order, a directory before
/// what is in it.
pub fn walk_changes(upper: &Path, lower: &[PathBuf], skip: &BTreeSet<String>) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    walk(upper, "", lower, skip, false, &mut out)?;
    out.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    Ok(out)
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()) && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    xattr(path, "trusted.overlay.opaque").is_some_and(|v| v == b"y")
}

/// The entry `rel` as the layers below show it: the first layer that has it, unless that is a whiteout.
fn below(lower: &[PathBuf], rel: &str) -> Option<std::fs::Metadata> {
    lower.iter().find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok()).filter(|m| !is_whiteout(m))
}

/// The names the layers below show in the directory `rel` (down to the first layer where it is opaque).
fn names_below(lower: &[PathBuf], rel: &str) -> BTreeSet<String> {
    let (mut seen, mut hidden) = (BTreeSet::new(), BTreeSet::new());
    for l in lower {
        let dir = l.join(rel);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match e.metadata() {
                Ok(m) if is_whiteout(&m) => {
                    hidden.insert(name);
                }
                Ok(_) if !hidden.contains(&name) => {
                    seen.insert(name);
                }
                _ => {}
            }
        }
        if is_opaque(&dir) {
            break;
        }
    }
    seen
}

/// moby's `statDifferent`.
fn stat_different(old: &std::fs::Metadata, new: &std::fs::Metadata) -> bool {
    old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
        || (!old.is_dir() && (!same_time(old, new) || old.size() != new.size()))
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") }
}

/// Walks the directory `rel` of `upper`; `added`: it is new, so everything in it is.
fn walk(
    upper: &Path,
    rel: &str,
    lower: &[PathBuf],
    skip: &BTreeSet<String>,
    added: bool,
    out: &mut Vec<Change>,
) -> Result<(), Error> {
    let dir = upper.join(rel);
    let names: BTreeSet<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::Internal(format!("read {}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        let child = join(rel, name);
        if skip.contains(&child) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(upper.join(&child)) else { continue };
        let path = format!("/{child}");
        let old = if added { None } else { below(lower, &child) };
        if is_whiteout(&meta) {
            if old.is_some() {
                out.push(Change { path, kind: ChangeKind::Deleted });
            }
            continue;
        }
        let start = out.len();
        let marked = match &old {
            None => {
                out.push(Change { path: path.clone(), kind: ChangeKind::Added });
                true
            }
            Some(o) if stat_different(o, &meta) => {
                out.push(Change { path: path.clone(), kind: ChangeKind::Modified });
                true
            }
            Some(_) => false,
        };
        if meta.is_dir() {
            walk(upper, &child, lower, skip, old.as_ref().is_none_or(|o| !o.is_dir()), out)?;
            if out.len() > start && !marked {
                out.push(Change { path, kind: ChangeKind::Modified });
            }
        }
    }
    if !added && !rel.is_empty() && is_opaque(&dir) {
        for gone in names_below(lower, rel).difference(&names) {
            out.push(Change { path: format!("/{}", join(rel, gone)), kind: ChangeKind::Deleted });
        }
    }
    Ok(())
}

/// Go's `sameFsTime`: equal, or equal seconds when either side has no sub-second part.
fn same_time(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.mtime() == b.mtime() && (a.mtime_nsec() == b.mtime_nsec() || a.mtime_nsec() == 0 || b.mtime_nsec() == 0)
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let name = std::ffi::CString::new(name).ok()?;
    crate::archive::primitives::xattr_value(std::os::fd::AsFd::as_fd(&fd), &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(c: &[Change]) -> Vec<(String, ChangeKind)> {
        c.iter().map(|c| (c.path.clone(), c.kind)).collect()
    }

    #[test]
    fn added_modified_and_parents() {
        let t = tempfile::tempdir().expect("tmp");
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).expect("mkdir");
        std::fs::create_dir_all(lower.join("usr/bin")).expect("mkdir");
        std::fs::write(lower.join("etc/passwd"), "root").expect("write");
        std::fs::create_dir_all(upper.join("etc")).expect("mkdir");
        std::fs::write(upper.join("etc/passwd"), "root2").expect("write");
        std::fs::create_dir_all(upper.join("usr/bin")).expect("mkdir");
        std::fs::write(upper.join("usr/bin/tool"), "x").expect("write");
        std::fs::create_dir_all(upper.join("new/dir")).expect("mkdir");
        // A copied-up directory with the same mode and owner is not a change of its own, but one with changes
        // inside is.
        std::fs::create_dir_all(upper.join("var")).expect("mkdir");
        std::fs::create_dir_all(lower.join("var")).expect("mkdir");
        let got = walk_changes(&upper, std::slice::from_ref(&lower), &BTreeSet::new()).expect("walk");
        use ChangeKind::*;
        let want = vec![
            ("/etc".to_string(), Modified),
            ("/etc/passwd".to_string(), Modified),
            ("/new".to_string(), Added),
            ("/new/dir".to_string(), Added),
            ("/usr".to_string(), Modified),
            ("/usr/bin".to_string(), Modified),
            ("/usr/bin/tool".to_string(), Added),
        ];
        assert_eq!(kinds(&got), want);
    }

    #[test]
    fn stubs_and_their_copied_up_parents_are_not_changes() {
        let t = tempfile::tempdir().expect("tmp");
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).expect("mkdir");
        std::fs::create_dir_all(upper.join("etc")).expect("mkdir");
        std::fs::write(upper.join("etc/hosts"), "").expect("write");
        std::fs::write(upper.join(".dockerenv"), "").expect("write");
        std::fs::create_dir_all(upper.join("proc")).expect("mkdir");
        std::fs::create_dir_all(upper.join("tmp")).expect("mkdir");
        std::fs::write(upper.join("tmp/x"), "x").expect("write");
        let skip = not_the_containers(&upper, std::slice::from_ref(&lower), &[]);
        assert_eq!(skip.iter().cloned().collect::<Vec<_>>(), vec![".dockerenv", "etc", "etc/hosts", "proc"]);
        let got = walk_changes(&upper, std::slice::from_ref(&lower), &skip).expect("walk");
        use ChangeKind::*;
        assert_eq!(kinds(&got), vec![("/tmp".to_string(), Added), ("/tmp/x".to_string(), Added)]);
        // A real change in the copied-up directory shows it again.
        std::fs::write(upper.join("etc/motd"), "hi").expect("write");
        let skip = not_the_containers(&upper, std::slice::from_ref(&lower), &[]);
        assert!(!skip.contains("etc") && skip.contains("etc/hosts"));
    }

    #[test]
    fn whiteouts_and_opaque_directories_are_deletions() {
        let t = tempfile::tempdir().expect("tmp");
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("a")).expect("mkdir");
        std::fs::write(lower.join("a/gone"), "x").expect("write");
        std::fs::create_dir_all(upper.join("a")).expect("mkdir");
        let wh = upper.join("a/gone");
        if nix::sys::stat::mknod(&wh, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).is_err() {
            println!("SKIPPED: whiteouts need CAP_MKNOD");
            return;
        }
        std::fs::create_dir_all(lower.join("b")).expect("mkdir");
        std::fs::write(lower.join("b/old"), "x").expect("write");
        std::fs::create_dir_all(upper.join("b")).expect("mkdir");
        std::fs::write(upper.join("b/new"), "x").expect("write");
        let opq = std::ffi::CString::new(upper.join("b").as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: both strings are NUL-terminated and the value is 1 byte long.
        let r = unsafe { libc::setxattr(opq.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
        let got = walk_changes(&upper, std::slice::from_ref(&lower), &BTreeSet::new()).expect("walk");
        use ChangeKind::*;
        let want = vec![
            ("/a".to_string(), Modified),
            ("/a/gone".to_string(), Deleted),
            ("/b".to_string(), Modified),
            ("/b/new".to_string(), Added),
            ("/b/old".to_string(), Deleted),
        ];
        assert_eq!(kinds(&got), want);
    }

    #[test]
    fn merge_keeps_the_users_and_fills_the_rest() {
        let mut user = json!({"Cmd": ["sh"], "Env": ["A=1"], "Labels": {"x": "1"}}).as_object().cloned().expect("obj");
        let container = json!({"Cmd": ["top"], "Env": ["A=0", "B=2"], "Labels": {"x": "0", "y": "2"}, "User": "u",
            "WorkingDir": "/w", "Entrypoint": null})
        .as_object()
        .cloned()
        .expect("obj");
        merge(&mut user, container);
        assert_eq!(
            Value::Object(user),
            json!({"Cmd": ["sh"], "Env": ["A=1", "B=2"], "Labels": {"x": "1", "y": "2"}, "User": "u", "WorkingDir": "/w"})
        );
    }
}
