//! The image builder behind `POST /build` (the classic endpoint the docker CLI uses when `/_ping` says
//! `Builder-Version: 1`).
//!
//! The context arrives as a tar and is unpacked into `<data-root>/build/<id>/context`, or (`berth build`, Berth's
//! context protocol) updates a context kept between builds ([`kept`]), minus what `.dockerignore` excludes. The Dockerfile is parsed by `berth-build`; the stages the target needs are built, each on a task of its
//! own, so independent stages run in parallel. A step is one of:
//! - a config change (`ENV`, `LABEL`, `CMD`, ...): applied to the stage's image config, with a history entry;
//! - `RUN`: a container of the step's image (created like any other, its writable layer kept), whose output is
//!   streamed; its writable layer becomes the step's layer;
//! - `COPY`/`ADD`/`WORKDIR`: the step's root mounted in a private namespace and written to (see [`fs`]).
//!
//! Every step has a cache key: the digest of the previous step's key and of everything the step depends on (the
//! instruction after expansion, the build arguments it sees, the content, modes and names of the files it copies, the
//! stage or image it copies from). The store keeps, per key, the step's history entry and its layer; a rebuild that
//! finds every key reuses them and produces the same image ID. `builder prune` drops the entries.

mod context;
mod copy;
pub mod fs;
pub mod kept;
mod run;
mod stage;
mod step;

use copy::*;
use run::*;
use stage::*;
use step::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use berth_build::Dockerfile;
use berth_build::shell::Lex;
use berth_store::ImageId;
use serde_json::{Map, Value, json};

use crate::containers::{self};
use crate::daemon::Daemon;
use crate::task::blocking;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The query of `POST /build`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub tags: Vec<String>,
    pub dockerfile: String,
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    pub network: Option<String>,
    pub platform: Option<String>,
    /// `extrahosts`: `host:ip` entries for the `RUN` steps' `/etc/hosts` (`--add-host`).
    pub extra_hosts: Vec<String>,
    /// `cachefrom`: the images whose history is the only cache (the classic builder's `--cache-from`).
    pub cache_from: Vec<String>,
    /// `berthcontext`: the body is Berth's context protocol for this kept context (see [`kept`]), not a tar.
    pub kept_context: Option<String>,
}

/// The JSON message stream to the client.
#[derive(Clone)]
pub struct Out {
    tx: tokio::sync::mpsc::UnboundedSender<Value>,
    quiet: bool,
    /// What a quiet build held back (shown with its error).
    held: Arc<Mutex<String>>,
    /// The exit code of the `RUN` that failed the build (the error's `errorDetail.code`).
    code: Arc<Mutex<Option<i64>>>,
}

impl Out {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Value>, quiet: bool) -> Out {
        Out { tx, quiet, held: Arc::new(Mutex::new(String::new())), code: Arc::new(Mutex::new(None)) }
    }

    /// A `RUN`'s standard error: a message of its own, red on a terminal, as the classic builder sends it.
    pub fn stderr(&self, s: &str) {
        self.stream(format!("\x1b[91m{s}\x1b[0m"));
    }

    /// Records the exit code of the `RUN` that fails the build.
    fn failed_with(&self, code: i64) {
        if let Ok(mut c) = self.code.lock() {
            *c = Some(code);
        }
    }

    pub fn stream(&self, s: impl Into<String>) {
        let s = s.into();
        if self.quiet {
            if let Ok(mut h) = self.held.lock() {
                h.push_str(&s);
            }
            return;
        }
        let _ = self.tx.send(json!({"stream": s}));
    }

    fn raw(&self, v: Value) {
        let _ = self.tx.send(v);
    }

    pub fn error(&self, msg: &str) {
        let mut text = msg.to_string();
        if self.quiet
            && let Ok(h) = self.held.lock()
            && !h.is_empty()
        {
            text = format!("{}\n{msg}", h.trim_end());
        }
        let mut detail = json!({"message": text});
        if let Some(code) = self.code.lock().ok().and_then(|c| *c) {
            detail["code"] = json!(code);
        }
        let _ = self.tx.send(json!({"errorDetail": detail, "error": text}));
    }

    fn closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A parsed build, ready to run: the context is unpacked and the Dockerfile read.
pub struct Prepared {
    ws: PathBuf,
    /// The context: below the exec root (a tmpfs in production), so that unpacking thousands of small files costs
    /// no disk writes.
    ctx: PathBuf,
    /// The directory below the exec root that a tmpfs for the context is mounted on.
    mem: PathBuf,
    file_name: String,
    df: Dockerfile,
    /// A kept context (`ctx` is its tree), locked while the build runs.
    kept: Option<kept::Kept>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.ws);
        fs::remove_context_dir(&self.mem);
    }
}

/// The builder's directory under the data root.
pub fn build_root(d: &Daemon) -> PathBuf {
    d.config.data_root.join("build")
}

/// Removes what a build that was cut short (berthd killed) left: its workspace, including stale mounts. At start-up,
/// and when uninstalling (`berthd --remove-networking`).
pub fn clean_leftovers(data_root: &Path, exec_root: &Path) {
    for root in [data_root.join("build"), exec_root.join("build")] {
        let Ok(entries) = std::fs::read_dir(&root) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("ws-") {
                // A killed build's `--mount=from=` roots are still mounted there.
                if let Ok(mounts) = std::fs::read_dir(e.path().join("mounts")) {
                    for m in mounts.flatten() {
                        let _ = nix::mount::umount2(&m.path(), nix::mount::MntFlags::MNT_DETACH);
                    }
                }
                // And its context's tmpfs.
                fs::remove_context_dir(&e.path());
            }
        }
    }
}

/// Removes the step containers of builds that berthd's end cut short.
pub async fn remove_step_containers(d: &Arc<Daemon>) {
    for c in d.all_containers() {
        let rec = c.record();
        if rec.config.labels.as_ref().is_some_and(|l| l.contains_key(STEP_LABEL))
            && let Err(e) = containers::remove(d, &c, true, true).await
        {
            tracing::warn!("remove build container {}: {e}", &c.id[..12]);
        }
    }
}

/// The label of a build step's container.
const STEP_LABEL: &str = "com.berth.build.step";

/// Refuses a platform other than the host's (the only one this builder builds for).
fn check_platform(p: &str) -> Result<(), Error> {
    let host = format!("linux/{}", berth_store::image::host_architecture());
    if p.is_empty() || p == host || p == "linux" || p.starts_with(&format!("{host}/")) {
        return Ok(());
    }
    Err(bad(format!("platform {p} is not supported: this builder builds for {host}")))
}

fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

/// Receives the context and parses the Dockerfile: errors here are the request's.
pub async fn prepare(
    d: &Arc<Daemon>,
    opts: &Options,
    body: impl std::io::Read + Send + 'static,
) -> Result<Prepared, Error> {
    let name = format!("ws-{}", &crate::names::new_id()?[..16]);
    let ws = build_root(d).join(&name);
    let mem = d.config.exec_root.join("build").join(&name);
    for dir in [&ws, &mem] {
        std::fs::create_dir_all(dir).map_err(|e| Error::Internal(format!("mkdir {}: {e}", dir.display())))?;
    }
    if let Some(p) = opts.platform.as_deref() {
        check_platform(p)?;
    }
    let file_name = if opts.dockerfile.is_empty() { "Dockerfile".to_string() } else { opts.dockerfile.clone() };
    let name = file_name.clone();
    let guard = WsGuard(Some(ws.clone()), Some(mem.clone()));
    let t0 = std::time::Instant::now();
    let (ws2, mem2) = (ws.clone(), mem.clone());
    let key = opts.kept_context.clone();
    let data_root = d.config.data_root.clone();
    let (ctx, text, kept) = blocking(move || {
        let (ctx2, mut kept) = match key {
            Some(k) => {
                let kept = kept::sync(&data_root, &k, body)?;
                (kept.tree.clone(), Some(kept))
            }
            None => (fs::receive_context_spooled(body, &ws2, &mem2)?, None),
        };
        tracing::debug!("build context received in {:?} into {}", t0.elapsed(), ctx2.display());
        let rel = fs::clean_in_root(&name)
            .ok_or_else(|| bad(format!("the Dockerfile ({name}) must be within the build context")))?;
        let text = fs::read_small(&ctx2, &rel)
            .map_err(|e| bad(format!("Cannot locate specified Dockerfile: {name}: {e}")))?
            .ok_or_else(|| bad(format!("Cannot locate specified Dockerfile: {name}")))?;
        let ignore = match fs::read_small(&ctx2, &format!("{rel}.dockerignore"))
            .map_err(|e| bad(format!("{name}.dockerignore: {e}")))?
        {
            Some(t) => Some(t),
            None => fs::read_small(&ctx2, ".dockerignore").map_err(|e| bad(format!(".dockerignore: {e}")))?,
        };
        let pats = match ignore {
            Some(t) => Some(berth_build::ignore::Patterns::parse(&t).map_err(|e| bad(format!(".dockerignore: {e}")))?),
            None => None,
        };
        // A Dockerfile the client added to the context (`-f -`, `-f` outside it) is not part of it.
        let added = Path::new(&rel).file_name().is_some_and(|f| f.to_string_lossy().starts_with(".dockerfile."));
        let changes = added || pats.is_some();
        if let Some(k) = &kept
            && changes
        {
            // The kept tree changes: its index goes until it says what is left.
            k.invalidate();
        }
        let mut removed = Vec::new();
        if added {
            fs::remove_in_root(&ctx2, &rel);
            removed.push(rel.trim_start_matches('/').to_string());
        }
        if let Some(pats) = pats {
            removed.extend(fs::apply_ignore(&ctx2, &|p| pats.matches(p), &|p| pats.may_contain_included(p))?);
        }
        if let Some(k) = kept.as_mut()
            && changes
        {
            k.forget(&removed)?;
        }
        Ok((ctx2, text, kept))
    })
    .await?;
    tracing::debug!("build context ready in {:?}", t0.elapsed());
    let shown = Path::new(&file_name).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let df = berth_build::parse(&text).map_err(|e| bad(format!("{shown}:{}: {}", e.line, e.message)))?;
    if df.stages.is_empty() {
        return Err(bad(format!("{shown}: no build stage in current context: the file has no FROM")));
    }
    let mut guard = guard;
    guard.0 = None;
    guard.1 = None;
    Ok(Prepared { ws, ctx, mem, file_name: shown, df, kept })
}

/// Removes a workspace (and its context directory) unless disarmed.
struct WsGuard(Option<PathBuf>, Option<PathBuf>);

impl Drop for WsGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
        if let Some(p) = &self.1 {
            fs::remove_context_dir(p);
        }
    }
}

/// Runs a prepared build to its image; messages go to `out`.
pub async fn run(d: Arc<Daemon>, opts: Options, prep: Prepared, out: Out) -> Result<ImageId, Error> {
    let df = &prep.df;
    let lex = Lex::new(df.escape);
    let mut meta: Vec<(String, String)> = Vec::new();
    for a in &df.meta_args {
        let given = opts.build_args.get(&a.name).cloned().flatten();
        let value = match given {
            Some(v) => Some(v),
            None => match &a.default {
                Some(def) => Some(lex.process_word(def, &MetaVars(&meta)).map_err(|e| bad(e.to_string()))?),
                None => None,
            },
        };
        if let Some(v) = value {
            meta.push((a.name.clone(), v));
        }
    }
    let target = match opts.target.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => df.stage(t).ok_or_else(|| bad(format!("failed to reach build target {t} in Dockerfile")))?,
        None => df.stages.len() - 1,
    };
    // The stages the target needs.
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if !needed.insert(s) {
            continue;
        }
        for r in df.stage_refs(s, &lex, &MetaVars(&meta)) {
            if let berth_build::dockerfile::StageRef::Stage(i) = r
                && i < s
            {
                todo.push(i);
            }
        }
    }
    let total = needed.iter().map(|&s| 1 + df.stages[s].instructions.len()).sum();
    let results = (0..df.stages.len()).map(|_| tokio::sync::watch::channel(None).0).collect();
    // `--cache-from`: images not here are skipped, as the classic builder does.
    let sources = if opts.cache_from.is_empty() {
        None
    } else {
        let mut found = Vec::new();
        for name in &opts.cache_from {
            let store = d.store.clone();
            let n = name.clone();
            match blocking(move || store.resolve_image(&n).map_err(Error::from)).await {
                Ok(i) => found.push(i.config),
                Err(e) => tracing::warn!("build: cache source {name} skipped: {e}"),
            }
        }
        Some(Mutex::new(found))
    };
    let hashes = match &prep.kept {
        Some(k) => {
            out.stream(format!(
                "Build context: {} file{} received ({} bytes), {} entries in all\n",
                k.received.0,
                if k.received.0 == 1 { "" } else { "s" },
                k.received.1,
                k.entries()
            ));
            fs::HashCache::with_known(k.known_hashes())
        }
        None => fs::HashCache::default(),
    };
    let cx = Arc::new(Ctx {
        d: d.clone(),
        opts,
        prep,
        out: out.clone(),
        meta,
        used_args: Mutex::new(BTreeSet::new()),
        hashes,
        step: AtomicUsize::new(0),
        total,
        results,
        needed: needed.clone(),
        seq: AtomicUsize::new(0),
        sources,
    });
    let mut tasks = Vec::new();
    for &s in &needed {
        let cx2 = cx.clone();
        tasks.push(tokio::spawn(async move {
            // Whatever happens to the task (a panic included), the stages waiting for this one hear of it.
            let guard = Published(cx2.clone(), s);
            let r = build_stage(&cx2, s).await;
            let shared = r.as_ref().map(|b| b.clone()).map_err(|e| e.to_string());
            cx2.results[s].send_replace(Some(shared));
            drop(guard);
            r
        }));
    }
    let mut final_result = None;
    let mut first_error: Option<Error> = None;
    for (t, &s) in tasks.into_iter().zip(needed.iter()) {
        match t.await {
            Ok(Ok(b)) if s == target => final_result = Some(b),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Internal(format!("build task failed: {e}")));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let built = final_result.ok_or_else(|| Error::Internal("the target stage did not finish".into()))?;
    let mut img = built.img.clone();
    if !cx.opts.labels.is_empty() {
        let cfg = config_mut(&mut img);
        let mut labels = cfg.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
        for (k, v) in &cx.opts.labels {
            labels.insert(k.clone(), json!(v));
        }
        cfg.insert("Labels".into(), Value::Object(labels));
    }
    let unused: Vec<String> = {
        let used = cx.used_args.lock().map(|u| u.clone()).unwrap_or_default();
        cx.opts
            .build_args
            .keys()
            .filter(|k| {
                !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()) && !cx.meta.iter().any(|(m, _)| m == *k)
            })
            .cloned()
            .collect()
    };
    if !unused.is_empty() {
        out.stream(format!("[Warning] One or more build-args [{}] were not consumed\n", unused.join(" ")));
    }
    let bytes = serde_json::to_vec(&img).map_err(|e| Error::Internal(format!("image config: {e}")))?;
    let store = d.store.clone();
    let tags = cx.opts.tags.clone();
    berth_store::fault::point("build.before-image");
    let id = blocking(move || store.create_image_named(&bytes, &tags, &[]).map_err(Error::from)).await?;
    out.raw(json!({"aux": {"ID": id.to_string()}}));
    if cx.opts.quiet {
        let _ = out.tx.send(json!({"stream": format!("{id}\n")}));
    }
    out.stream(format!("Successfully built {}\n", &id.hex()[..12]));
    for t in &cx.opts.tags {
        let shown = berth_store::Reference::parse(t)
            .map(|r| r.with_default_tag().familiar_string())
            .unwrap_or_else(|_| t.clone());
        out.stream(format!("Successfully tagged {shown}\n"));
    }
    Ok(id)
}

fn config_mut(img: &mut Value) -> &mut Map<String, Value> {
    if !img["config"].is_object() {
        img["config"] = json!({});
    }
    match img.get_mut("config").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable_config(),
    }
}

#[allow(clippy::panic)]
fn unreachable_config() -> ! {
    // `config` was made an object just above.
    panic!("image config is not an object")
}

/// Tells a stage's waiters that it ended without a result, unless it published one.
struct Published(Arc<Ctx>, usize);

impl Drop for Published {
    fn drop(&mut self) {
        self.0.results[self.1].send_if_modified(|r| {
            if r.is_none() {
                *r = Some(Err("the stage's task ended".into()));
                true
            } else {
                false
            }
        });
    }
}

/// `POST /build/prune`.
pub async fn prune(d: &Arc<Daemon>, all: bool) -> Result<Value, Error> {
    let store = d.store.clone();
    let pruned = blocking(move || store.cache_prune(None).map_err(Error::from)).await?;
    if all {
        let _ = std::fs::remove_dir_all(build_root(d).join("cache-mounts"));
    }
    // Kept contexts (those no build holds).
    let data_root = d.config.data_root.clone();
    let (_, kept_bytes) = blocking(move || Ok::<_, Error>(kept::prune(&data_root))).await?;
    let reclaimed = pruned.reclaimed + kept_bytes;
    d.events.publish_prune("builder", reclaimed);
    Ok(json!({"CachesDeleted": pruned.entries, "SpaceReclaimed": reclaimed}))
}
