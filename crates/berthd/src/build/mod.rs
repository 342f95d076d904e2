//! The image builder behind `POST /build` (the classic endpoint the docker CLI uses when `/_ping` says
//! `Builder-Version: 1`).
//!
//! The context arrives as a tar and is unpacked into `<data-root>/build/<id>/context`, minus what `.dockerignore`
//! excludes. The Dockerfile is parsed by `berth-build`; the stages the target needs are built, each on a task of its
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

pub mod fs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use berth_api::models::{ContainerCreateBody, HostConfig};
use berth_build::shell::Lex;
use berth_build::{Command, Dockerfile, Form, Instruction};
use berth_store::{ChainId, DiffId, ImageId};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use crate::containers::{self, AttachStreams, BuildImage, WaitCondition};
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
}

/// The JSON message stream to the client.
#[derive(Clone)]
pub struct Out {
    tx: tokio::sync::mpsc::UnboundedSender<Value>,
    quiet: bool,
    /// What a quiet build held back (shown with its error).
    held: Arc<Mutex<String>>,
}

impl Out {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Value>, quiet: bool) -> Out {
        Out { tx, quiet, held: Arc::new(Mutex::new(String::new())) }
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
        let _ = self.tx.send(json!({"errorDetail": {"message": text}, "error": text}));
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
    let (ctx, text, ignore) = blocking(move || {
        let ctx2 = fs::receive_context_spooled(body, &ws2, &mem2)?;
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
        // A Dockerfile the client added to the context (`-f -`, `-f` outside it) is not part of it.
        if Path::new(&rel).file_name().is_some_and(|f| f.to_string_lossy().starts_with(".dockerfile.")) {
            let _ = std::fs::remove_file(ctx2.join(rel.trim_start_matches('/')));
        }
        Ok((ctx2, text, ignore))
    })
    .await?;
    if let Some(ignore) = ignore {
        let pats = berth_build::ignore::Patterns::parse(&ignore).map_err(|e| bad(format!(".dockerignore: {e}")))?;
        let ctx2 = ctx.clone();
        blocking(move || fs::apply_ignore(&ctx2, &|p| pats.matches(p), &|p| pats.may_contain_included(p))).await?;
    }
    tracing::debug!("build context ready in {:?}", t0.elapsed());
    let shown = Path::new(&file_name).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let df = berth_build::parse(&text).map_err(|e| bad(format!("{shown}:{}: {}", e.line, e.message)))?;
    if df.stages.is_empty() {
        return Err(bad(format!("{shown}: no build stage in current context: the file has no FROM")));
    }
    let mut guard = guard;
    guard.0 = None;
    guard.1 = None;
    Ok(Prepared { ws, ctx, mem, file_name: shown, df })
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

// ---------------------------------------------------------------------------------------------------------------
// Running a build

/// What a finished stage is.
#[derive(Debug, Clone)]
struct Built {
    /// The full image config.
    img: Value,
    chains: Vec<ChainId>,
    key: String,
}

impl Built {
    fn lower_dirs(&self, store: &berth_store::Store) -> Vec<PathBuf> {
        lower_dirs(store, &self.chains)
    }
}

/// The overlay lowerdirs of a layer chain (bottom first), top first; an empty directory for no layers.
fn lower_dirs(store: &berth_store::Store, chains: &[ChainId]) -> Vec<PathBuf> {
    if chains.is_empty() {
        return vec![store.empty_layer_dir()];
    }
    chains.iter().rev().map(|c| store.layer_dir(c)).collect()
}

type StageResult = Option<Result<Arc<Built>, String>>;

struct Ctx {
    d: Arc<Daemon>,
    opts: Options,
    prep: Prepared,
    out: Out,
    meta: Vec<(String, String)>,
    used_args: Mutex<BTreeSet<String>>,
    hashes: fs::HashCache,
    step: AtomicUsize,
    total: usize,
    results: Vec<tokio::sync::watch::Sender<StageResult>>,
    /// The stages this build runs (a stage outside it is never waited for).
    needed: BTreeSet<usize>,
    seq: AtomicUsize,
}

/// Variables for expansion: the config's `Env`, then the build arguments in scope.
struct Vars<'a> {
    env: Vec<(String, String)>,
    args: &'a [(String, String)],
}

impl berth_build::shell::Env for Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .or_else(|| self.args.iter().rev().find(|(k, _)| k == name))
            .map(|(_, v)| v.clone())
    }
}

struct MetaVars<'a>(&'a [(String, String)]);

impl berth_build::shell::Env for MetaVars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

fn env_pairs(config: &Value) -> Vec<(String, String)> {
    config["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_env(config: &mut Map<String, Value>, key: &str, value: &str) {
    let mut env: Vec<Value> = config.get("Env").and_then(Value::as_array).cloned().unwrap_or_default();
    let entry = json!(format!("{key}={value}"));
    match env.iter().position(|e| e.as_str().and_then(|s| s.split_once('=')).is_some_and(|(k, _)| k == key)) {
        Some(i) => env[i] = entry,
        None => env.push(entry),
    }
    config.insert("Env".into(), Value::Array(env));
}

fn now() -> String {
    berth_api::time::now()
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
    let cx = Arc::new(Ctx {
        d: d.clone(),
        opts,
        prep,
        out: out.clone(),
        meta,
        used_args: Mutex::new(BTreeSet::new()),
        hashes: fs::HashCache::default(),
        step: AtomicUsize::new(0),
        total,
        results,
        needed: needed.clone(),
        seq: AtomicUsize::new(0),
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

/// Waits for an earlier stage.
async fn stage_result(cx: &Ctx, i: usize) -> Result<Arc<Built>, Error> {
    if !cx.needed.contains(&i) {
        return Err(bad(format!(
            "stage {} is used in a way the build could not plan (a variable from the stage's own ENV or ARG in --from?): name stages by constants or meta ARGs",
            cx.prep.df.stages[i].name.clone().unwrap_or_else(|| i.to_string())
        )));
    }
    let mut rx = cx.results[i].subscribe();
    loop {
        if let Some(r) = rx.borrow().clone() {
            return r.map_err(|_| Error::Internal(format!("stage {i} failed")));
        }
        if rx.changed().await.is_err() {
            return Err(Error::Internal(format!("stage {i} did not finish")));
        }
    }
}

/// An image by name, pulled through the images manager when it is missing (or always with `--pull`), with the
/// daemon's registry settings; the pull's progress goes to the build's output.
async fn image_by_name(cx: &Ctx, name: &str, pull: bool) -> Result<berth_store::Image, Error> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let p = berth_registry::progress::Progress::new(tx);
    let out = cx.out.clone();
    let fwd = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            out.raw(v);
        }
    });
    let r = crate::images::pull::ensure(&cx.d, name, pull, &p).await;
    drop(p);
    let _ = fwd.await;
    r
}

/// The per-stage state while its instructions run.
struct State {
    img: Value,
    chains: Vec<ChainId>,
    key: String,
    args: Vec<(String, String)>,
    /// `CMD` was set in this stage (so that `ENTRYPOINT` leaves it).
    cmd_set: bool,
}

impl State {
    fn config(&self) -> &Value {
        &self.img["config"]
    }

    fn vars(&self) -> Vars<'_> {
        Vars { env: env_pairs(self.config()), args: &self.args }
    }

    fn shell(&self) -> Vec<String> {
        match self.config()["Shell"].as_array() {
            Some(a) if !a.is_empty() => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    fn form_argv(&self, f: &Form) -> Vec<String> {
        match f {
            Form::Exec(v) => v.clone(),
            Form::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn push_history(&mut self, created: &str, created_by: &str, empty: bool) {
        let mut h = json!({"created": created, "created_by": created_by});
        if empty {
            h["empty_layer"] = json!(true);
        }
        if !self.img["history"].is_array() {
            self.img["history"] = json!([]);
        }
        if let Some(a) = self.img["history"].as_array_mut() {
            a.push(h);
        }
        self.img["created"] = json!(created);
    }

    fn push_layer(&mut self, chain: ChainId, diff: &DiffId) {
        self.chains.push(chain);
        if !self.img["rootfs"].is_object() {
            self.img["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        if !self.img["rootfs"]["diff_ids"].is_array() {
            self.img["rootfs"]["diff_ids"] = json!([]);
        }
        if let Some(a) = self.img["rootfs"]["diff_ids"].as_array_mut() {
            a.push(json!(diff.as_str()));
        }
    }

    fn lower_dirs(&self, store: &berth_store::Store) -> Vec<PathBuf> {
        lower_dirs(store, &self.chains)
    }
}

fn where_(cx: &Ctx, line: usize) -> String {
    format!("{}:{line}", cx.prep.file_name)
}

async fn build_stage(cx: &Arc<Ctx>, index: usize) -> Result<Arc<Built>, Error> {
    let stage = &cx.prep.df.stages[index];
    let lex = Lex::new(cx.prep.df.escape);
    let n = cx.step.fetch_add(1, Ordering::SeqCst) + 1;
    cx.out.stream(format!("Step {n}/{} : {}\n", cx.total, stage.original));
    let base = lex
        .process_word(&stage.base, &MetaVars(&cx.meta))
        .map_err(|e| bad(format!("{}: {e}", where_(cx, stage.line))))?;
    if base.is_empty() {
        return Err(bad(format!("{}: base name ({}) should not be blank", where_(cx, stage.line), stage.base)));
    }
    if let Some(p) = stage.platform.as_deref() {
        let p = lex.process_word(p, &MetaVars(&cx.meta)).map_err(|e| bad(e.to_string()))?;
        check_platform(&p).map_err(|e| bad(format!("{}: {e}", where_(cx, stage.line))))?;
    }
    let (img, chains, key) = if base.eq_ignore_ascii_case("scratch") {
        let img = json!({
            "architecture": berth_store::image::host_architecture(),
            "os": "linux",
            "config": {"Env": [format!("PATH={DEFAULT_PATH}")]},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        (img, Vec::new(), fs::key_of(&json!(["FROM", "scratch"])))
    } else if let Some(i) =
        cx.prep.df.stages[..index].iter().position(|st| st.name.as_deref() == Some(&base.to_ascii_lowercase()))
    {
        let b = stage_result(cx, i).await?;
        (b.img.clone(), b.chains.clone(), fs::key_of(&json!(["FROM", "stage", b.key])))
    } else {
        let image = image_by_name(cx, &base, cx.opts.pull)
            .await
            .map_err(|e| Error::NotFound(format!("{}: {e}", where_(cx, stage.line))))?;
        let key = fs::key_of(&json!(["FROM", image.id.as_str()]));
        (image.config.clone(), image.layers.clone(), key)
    };
    cx.out.stream(format!(" ---> {}\n", &key[..12]));
    let mut st = State { img, chains, key, args: Vec::new(), cmd_set: false };
    // The base's ONBUILD triggers run first, and are not inherited.
    let triggers: Vec<String> = st.config()["OnBuild"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut instructions: Vec<Instruction> = Vec::new();
    if !triggers.is_empty() {
        cx.out.stream(format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ));
        for t in &triggers {
            let parsed = berth_build::parse(&format!("FROM scratch\n{t}"))
                .map_err(|e| bad(format!("ONBUILD trigger {t:?}: {}", e.message)))?;
            for mut i in parsed.stages.into_iter().flat_map(|s| s.instructions) {
                i.line = stage.line;
                instructions.push(i);
            }
        }
        config_mut(&mut st.img).remove("OnBuild");
    }
    for i in &instructions {
        step(cx, &mut st, i, index).await?;
    }
    for i in &stage.instructions {
        if cx.out.closed() {
            return Err(Error::Internal("the client went away: build cancelled".into()));
        }
        let n = cx.step.fetch_add(1, Ordering::SeqCst) + 1;
        cx.out.stream(format!("Step {n}/{} : {}\n", cx.total, i.original));
        let t0 = std::time::Instant::now();
        step(cx, &mut st, i, index).await?;
        berth_store::fault::point("build.after-step");
        tracing::debug!("step {n} ({}) took {:?}", i.original, t0.elapsed());
        cx.out.stream(format!(" ---> {}\n", &st.key[..12]));
    }
    Ok(Arc::new(Built { img: st.img, chains: st.chains, key: st.key }))
}

/// The cache record of a step.
fn record(created: &str, created_by: &str, empty: bool, layer: Option<&DiffId>) -> Value {
    json!({"created": created, "created_by": created_by, "empty_layer": empty, "diff_id": layer.map(|l| l.as_str())})
}

/// The layer a step's layer sits on, as its cache record names it.
fn parent_of(st: &State) -> Value {
    json!(st.chains.last().map(|c| c.as_str().to_string()))
}

/// Looks a step up in the cache (unless `--no-cache`).
async fn cached(cx: &Ctx, key: &str) -> Result<Option<berth_store::cache::CacheEntry>, Error> {
    if cx.opts.no_cache {
        return Ok(None);
    }
    let store = cx.d.store.clone();
    let k = key.to_string();
    blocking(move || store.cache_get(&k).map_err(Error::from)).await
}

async fn remember(cx: &Ctx, key: &str, chain: Option<ChainId>, rec: Value) -> Result<(), Error> {
    let store = cx.d.store.clone();
    let k = key.to_string();
    blocking(move || store.cache_put(&k, &berth_store::cache::CacheEntry { chain, record: rec }).map_err(Error::from))
        .await
}

/// A config-only step: cached for its history time only (the change itself is recomputed).
async fn meta_step(cx: &Ctx, st: &mut State, key: String, created_by: String) -> Result<(), Error> {
    let created = match cached(cx, &key).await? {
        Some(e) => {
            cx.out.stream(" ---> Using cache\n");
            e.record["created"].as_str().map(str::to_string).unwrap_or_else(now)
        }
        None => {
            let c = now();
            remember(cx, &key, None, record(&c, &created_by, true, None)).await?;
            c
        }
    };
    st.push_history(&created, &created_by, true);
    st.key = key;
    Ok(())
}

/// Applies a cached layer step; false when there is no usable entry.
async fn from_cache(cx: &Ctx, st: &mut State, key: &str) -> Result<bool, Error> {
    let Some(e) = cached(cx, key).await? else { return Ok(false) };
    let created = e.record["created"].as_str().map(str::to_string).unwrap_or_else(now);
    let by = e.record["created_by"].as_str().unwrap_or("").to_string();
    let diff = e.record["diff_id"].as_str().map(DiffId::parse).transpose().ok().flatten();
    // A layer made on another parent (an entry rewritten by a `--no-cache` build, or two builds racing) is a miss.
    if e.chain.is_some() && e.record["parent"] != parent_of(st) {
        return Ok(false);
    }
    match (e.chain, diff) {
        (Some(c), Some(d)) => {
            st.push_layer(c, &d);
            st.push_history(&created, &by, false);
        }
        (None, _) => st.push_history(&created, &by, true),
        _ => return Ok(false),
    }
    cx.out.stream(" ---> Using cache\n");
    st.key = key.to_string();
    Ok(true)
}

/// Commits a step's writable layer, records it in the cache and in the state.
async fn finish_layer_step(
    cx: &Ctx,
    st: &mut State,
    key: String,
    created_by: String,
    upper: PathBuf,
    unshift: Option<berth_runtime::shim::IdMap>,
) -> Result<(), Error> {
    let store = cx.d.store.clone();
    let parent = st.chains.last().cloned();
    let layer = blocking(move || fs::commit(&store, &upper, parent.as_ref(), unshift)).await?;
    let created = now();
    match layer {
        Some(l) => {
            let mut rec = record(&created, &created_by, false, Some(&l.diff_id));
            rec["parent"] = parent_of(st);
            remember(cx, &key, Some(l.chain_id.clone()), rec).await?;
            st.push_layer(l.chain_id.clone(), &l.diff_id);
            st.push_history(&created, &created_by, false);
        }
        None => {
            remember(cx, &key, None, record(&created, &created_by, true, None)).await?;
            st.push_history(&created, &created_by, true);
        }
    }
    st.key = key;
    Ok(())
}

fn step_dir(cx: &Ctx) -> Result<fs::StepDirs, Error> {
    let n = cx.seq.fetch_add(1, Ordering::SeqCst);
    fs::StepDirs::create(&cx.prep.ws.join("steps").join(n.to_string()))
}

fn json_words(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn go_duration(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

async fn step(cx: &Arc<Ctx>, st: &mut State, raw: &Instruction, stage: usize) -> Result<(), Error> {
    let lex = Lex::new(cx.prep.df.escape);
    let at = where_(cx, raw.line);
    let inst = {
        let vars = st.vars();
        raw.expand(&lex, &vars).map_err(|e| bad(format!("{at}: {e}")))?
    };
    let desc = format!("{:?}", inst.command);
    let key = fs::key_of(&json!([st.key, desc]));
    match &inst.command {
        Command::Env(pairs) => {
            let cfg = config_mut(&mut st.img);
            for (k, v) in pairs {
                set_env(cfg, k, v);
            }
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            meta_step(cx, st, key, format!("ENV {}", shown.join(" "))).await
        }
        Command::Arg(decls) => {
            let mut shown = Vec::new();
            for a in decls {
                let given = cx.opts.build_args.get(&a.name).cloned().flatten();
                if given.is_some()
                    && let Ok(mut u) = cx.used_args.lock()
                {
                    u.insert(a.name.clone());
                }
                let value = given
                    .or_else(|| a.default.clone())
                    .or_else(|| cx.meta.iter().rev().find(|(k, _)| *k == a.name).map(|(_, v)| v.clone()));
                st.args.retain(|(k, _)| *k != a.name);
                match value {
                    Some(v) => {
                        shown.push(format!("{}={v}", a.name));
                        st.args.push((a.name.clone(), v));
                    }
                    None => shown.push(a.name.clone()),
                }
            }
            // The values are part of every later step's key (through this one).
            let key = fs::key_of(&json!([st.key, desc, st.args]));
            meta_step(cx, st, key, format!("ARG {}", shown.join(" "))).await
        }
        Command::Label(pairs) => {
            let cfg = config_mut(&mut st.img);
            let mut labels = cfg.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
            for (k, v) in pairs {
                labels.insert(k.clone(), json!(v));
            }
            cfg.insert("Labels".into(), Value::Object(labels));
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            meta_step(cx, st, key, format!("LABEL {}", shown.join(" "))).await
        }
        Command::Expose(ports) => {
            let cfg = config_mut(&mut st.img);
            let mut exposed = cfg.get("ExposedPorts").and_then(Value::as_object).cloned().unwrap_or_default();
            let mut shown = Vec::new();
            for p in ports {
                for one in expand_ports(p).map_err(|e| bad(format!("{at}: {e}")))? {
                    shown.push(one.clone());
                    exposed.insert(one, json!({}));
                }
            }
            cfg.insert("ExposedPorts".into(), Value::Object(exposed));
            meta_step(cx, st, key, format!("EXPOSE {}", shown.join(" "))).await
        }
        Command::User(u) => {
            config_mut(&mut st.img).insert("User".into(), json!(u));
            meta_step(cx, st, key, format!("USER {u}")).await
        }
        Command::Volume(vols) => {
            let cfg = config_mut(&mut st.img);
            let mut v = cfg.get("Volumes").and_then(Value::as_object).cloned().unwrap_or_default();
            for p in vols {
                if p.is_empty() {
                    return Err(bad(format!("{at}: VOLUME specified can not be an empty string")));
                }
                v.insert(p.clone(), json!({}));
            }
            cfg.insert("Volumes".into(), Value::Object(v));
            meta_step(cx, st, key, format!("VOLUME [{}]", vols.join(" "))).await
        }
        Command::StopSignal(s) => {
            crate::containers::parse_signal(s).map_err(|_| bad(format!("{at}: Invalid signal: {s}")))?;
            config_mut(&mut st.img).insert("StopSignal".into(), json!(s));
            meta_step(cx, st, key, format!("STOPSIGNAL {s}")).await
        }
        Command::Shell(sh) => {
            config_mut(&mut st.img).insert("Shell".into(), json!(sh));
            meta_step(cx, st, key, format!("SHELL {}", json_words(sh))).await
        }
        Command::Cmd(f) => {
            let argv = st.form_argv(f);
            config_mut(&mut st.img).insert("Cmd".into(), json!(argv));
            st.cmd_set = true;
            meta_step(cx, st, key, format!("CMD {}", json_words(&argv))).await
        }
        Command::Entrypoint(f) => {
            let argv = st.form_argv(f);
            let cfg = config_mut(&mut st.img);
            cfg.insert("Entrypoint".into(), json!(argv));
            if !st.cmd_set {
                // An ENTRYPOINT resets the CMD the base image set (Docker's rule).
                cfg.insert("Cmd".into(), Value::Null);
            }
            meta_step(cx, st, key, format!("ENTRYPOINT {}", json_words(&argv))).await
        }
        Command::Healthcheck(h) => {
            let v = match h {
                berth_build::Healthcheck::None => json!({"Test": ["NONE"]}),
                berth_build::Healthcheck::Check { test, interval, timeout, start_period, start_interval, retries } => {
                    let test = match test {
                        Form::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        Form::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let mut v = json!({"Test": test});
                    for (k, d) in [
                        ("Interval", interval),
                        ("Timeout", timeout),
                        ("StartPeriod", start_period),
                        ("StartInterval", start_interval),
                    ] {
                        if let Some(d) = d {
                            v[k] = json!(go_duration(*d));
                        }
                    }
                    if let Some(r) = retries {
                        v["Retries"] = json!(r);
                    }
                    v
                }
            };
            config_mut(&mut st.img).insert("Healthcheck".into(), v.clone());
            meta_step(cx, st, key, format!("HEALTHCHECK {v}")).await
        }
        Command::Onbuild(_) => {
            let text = raw.original.split_once(char::is_whitespace).map(|x| x.1).unwrap_or("").trim().to_string();
            let cfg = config_mut(&mut st.img);
            let mut list = cfg.get("OnBuild").and_then(Value::as_array).cloned().unwrap_or_default();
            list.push(json!(text));
            cfg.insert("OnBuild".into(), Value::Array(list));
            meta_step(cx, st, key, format!("ONBUILD {text}")).await
        }
        Command::Maintainer(m) => {
            st.img["author"] = json!(m);
            meta_step(cx, st, key, format!("MAINTAINER {m}")).await
        }
        Command::Workdir(w) => {
            let cur = st.config()["WorkingDir"].as_str().unwrap_or("").to_string();
            let path = if w.starts_with('/') { fs::clean_abs(w) } else { fs::clean_abs(&format!("{cur}/{w}")) };
            config_mut(&mut st.img).insert("WorkingDir".into(), json!(path));
            let created_by = format!("WORKDIR {path}");
            if from_cache(cx, st, &key).await? {
                return Ok(());
            }
            let dirs = step_dir(cx)?;
            let lower = st.lower_dirs(&cx.d.store);
            let user = st.config()["User"].as_str().map(str::to_string);
            let p2 = path.clone();
            let dirs2 = fs::StepDirs {
                upper: dirs.upper.clone(),
                work: dirs.work.clone(),
                mnt: dirs.mnt.clone(),
                src: dirs.src.clone(),
            };
            blocking(move || fs::ensure_dir(lower, &dirs2, p2, user)).await?;
            finish_layer_step(cx, st, key, created_by, dirs.upper, None).await
        }
        Command::Run { cmd, mounts, network, security, heredocs } => {
            if security.as_deref().is_some_and(|s| s != "sandbox") {
                return Err(bad(format!(
                    "{at}: RUN --security={} is not supported",
                    security.as_deref().unwrap_or("")
                )));
            }
            run_step(cx, st, raw, &at, key, cmd, mounts, network.as_deref(), heredocs, stage).await
        }
        Command::Copy(args) => copy_step(cx, st, raw, &at, key, args, false, stage).await,
        Command::Add(args) => copy_step(cx, st, raw, &at, key, args, true, stage).await,
    }
}

/// `EXPOSE 80`, `80/udp`, `8000-8002` → `80/tcp`, ...
fn expand_ports(p: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| s.parse::<u16>().map_err(|_| format!("invalid containerPort: {p}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if hi < lo {
        return Err(format!("invalid port range: {p}"));
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

#[allow(clippy::too_many_arguments)]
async fn run_step(
    cx: &Arc<Ctx>,
    st: &mut State,
    raw: &Instruction,
    at: &str,
    key: String,
    cmd: &Form,
    mounts: &[berth_build::RunMount],
    network: Option<&str>,
    heredocs: &[berth_build::Heredoc],
    stage: usize,
) -> Result<(), Error> {
    let mut script_bind = None;
    let argv = match berth_build::run_line(cmd, heredocs) {
        berth_build::RunLine::Exec(v) => v,
        berth_build::RunLine::Shell(s) => st.form_argv(&Form::Shell(s)),
        berth_build::RunLine::Script { name, content } => {
            // A heredoc with a `#!` line runs as a program of its own, from a read-only file (as BuildKit does).
            let dir = cx.prep.ws.join("scripts").join(cx.seq.fetch_add(1, Ordering::SeqCst).to_string());
            std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(format!("mkdir {}: {e}", dir.display())))?;
            // The delimiter names the file inside the container only: never a host path.
            if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
                return Err(bad(format!("{at}: invalid here-document name {name:?} for a script")));
            }
            let file = dir.join("script");
            std::fs::write(&file, &content).map_err(|e| Error::Internal(format!("write {}: {e}", file.display())))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755));
            let target = format!("/dev/pipes/{name}");
            script_bind = Some(format!("{}:{target}:ro", file.display()));
            vec![target]
        }
    };
    // Build arguments in scope are in the step's environment (and so in its key); ENV wins over ARG.
    let env = env_pairs(st.config());
    let mut run_env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut arg_env = Vec::new();
    for (k, v) in &st.args {
        if !env.iter().any(|(e, _)| e == k) {
            arg_env.push(format!("{k}={v}"));
        }
    }
    for p in PROXY_ARGS {
        if let Some(Some(v)) = cx.opts.build_args.get(*p)
            && !st.args.iter().any(|(k, _)| k == p)
        {
            run_env.push(format!("{p}={v}"));
            if let Ok(mut u) = cx.used_args.lock() {
                u.insert(p.to_string());
            }
        }
    }
    run_env.extend(arg_env.iter().cloned());
    let network_mode = match network.or(cx.opts.network.as_deref()) {
        None | Some("") | Some("default") => "default".to_string(),
        Some(n @ ("none" | "host")) => n.to_string(),
        Some(n) => n.to_string(),
    };
    // Mounts: cache directories kept by the builder, binds of the context, tmpfs.
    let mut binds: Vec<String> = script_bind.into_iter().collect();
    let mut host_mounts = HostMounts(Vec::new());
    let mut tmpfs = HashMap::new();
    let mut targets = Vec::new();
    let mut mount_desc = Vec::new();
    for m in mounts {
        let target = if m.target.starts_with('/') {
            fs::clean_abs(&m.target)
        } else {
            let wd = st.config()["WorkingDir"].as_str().unwrap_or("/").to_string();
            fs::clean_abs(&format!("{wd}/{}", m.target))
        };
        targets.push(target.clone());
        match m.kind {
            berth_build::MountKind::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = build_root(&cx.d).join("cache-mounts").join(&fs::key_of(&json!(["cache", id]))[..32]);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::Internal(format!("cache mount {}: {e}", dir.display())))?;
                if let Some(m) = cx.d.config.userns_remap {
                    // The remapped RUN's root passes through to the cache and owns a new one.
                    let cache_root = build_root(&cx.d).join("cache-mounts");
                    crate::userns::let_through(&build_root(&cx.d), m)?;
                    crate::userns::let_through(&cache_root, m)?;
                    crate::userns::own_root_dir(&dir, m)?;
                }
                binds.push(format!("{}:{target}{}", dir.display(), if m.readonly { ":ro" } else { "" }));
                mount_desc.push(json!(["cache", id, target, m.readonly]));
            }
            berth_build::MountKind::Bind => {
                let src = m.source.clone().unwrap_or_else(|| "/".into());
                if let Some(from) = m.from.as_deref().filter(|f| !f.is_empty()) {
                    // Another stage's or an image's root, mounted read-only on the host for the step's time.
                    let (layers, from_key) = match cx.prep.df.stage(from) {
                        Some(i) if i < stage => {
                            let b = stage_result(cx, i).await?;
                            (b.lower_dirs(&cx.d.store), json!(["stage", b.key]))
                        }
                        Some(_) => {
                            return Err(bad(format!(
                                "{at}: --mount from={from}: a stage cannot mount itself or a later stage"
                            )));
                        }
                        None => {
                            let image = image_by_name(cx, from, false)
                                .await
                                .map_err(|e| bad(format!("{at}: --mount from={from}: {e}")))?;
                            (image.lower_dirs(), json!(["image", image.id.as_str()]))
                        }
                    };
                    let mnt = cx.prep.ws.join("mounts").join(cx.seq.fetch_add(1, Ordering::SeqCst).to_string());
                    std::fs::create_dir_all(&mnt)
                        .map_err(|e| Error::Internal(format!("mkdir {}: {e}", mnt.display())))?;
                    crate::archive::primitives::mount_overlay(&layers, None, &mnt)?;
                    host_mounts.0.push(mnt.clone());
                    let host = berth_runtime::mounts::secure_join(&mnt, Path::new(&src))
                        .map_err(|e| Error::Internal(format!("resolve {src}: {e}")))?;
                    if std::fs::symlink_metadata(&host).is_err() {
                        return Err(bad(format!("{at}: mount source {src} is not in {from}")));
                    }
                    binds.push(format!("{}:{target}:ro", host.display()));
                    mount_desc.push(json!(["bind-from", from_key, src, target]));
                    continue;
                }
                let rel = fs::clean_in_root(&src)
                    .ok_or_else(|| bad(format!("{at}: mount source {src} is outside the build context")))?;
                let host = berth_runtime::mounts::secure_join(&cx.prep.ctx, Path::new(&rel))
                    .map_err(|e| Error::Internal(format!("resolve {src}: {e}")))?;
                if std::fs::symlink_metadata(&host).is_err() {
                    return Err(bad(format!("{at}: mount source {src} is not in the build context")));
                }
                // Read-only, also with `rw`: the context is shared by the build's steps.
                binds.push(format!("{}:{target}:ro", host.display()));
                let hashes = {
                    let ctx = cx.prep.ctx.clone();
                    let cxc = cx.clone();
                    let r = rel.clone();
                    blocking(move || fs::hash_context_sources(&ctx, &[r], &cxc.hashes)).await?
                };
                mount_desc.push(json!(["bind", rel, target, hashes]));
            }
            berth_build::MountKind::Tmpfs => {
                let opts = m.size.map(|s| format!("size={s}")).unwrap_or_default();
                tmpfs.insert(target.clone(), opts);
                mount_desc.push(json!(["tmpfs", target, m.size]));
            }
            berth_build::MountKind::Secret | berth_build::MountKind::Ssh => {
                return Err(bad(format!(
                    "{at}: RUN --mount=type=secret and type=ssh are not supported (they need BuildKit's session)"
                )));
            }
        }
    }
    let key = fs::key_of(&json!([key, argv, arg_env, network_mode, mount_desc]));
    let shown_args =
        if arg_env.is_empty() { String::new() } else { format!("|{} {} ", arg_env.len(), arg_env.join(" ")) };
    let created_by = match cmd {
        Form::Shell(_) => format!("RUN {shown_args}{} # buildkit", argv.join(" ").trim_end()),
        Form::Exec(v) => format!("RUN {shown_args}{} # buildkit", json_words(v)),
    };
    if from_cache(cx, st, &key).await? {
        return Ok(());
    }
    // The step's image: the stage's config without what only a real container uses.
    let mut config = st.config().clone();
    if let Some(m) = config.as_object_mut() {
        for k in ["Entrypoint", "Cmd", "Volumes", "Healthcheck", "OnBuild", "ExposedPorts"] {
            m.remove(k);
        }
        m.insert("Env".into(), json!(run_env));
    }
    let mut img = st.img.clone();
    img["config"] = config;
    let image = BuildImage { id: format!("sha256:{}", st.key), config: img, lower_dirs: st.lower_dirs(&cx.d.store) };
    let body = ContainerCreateBody {
        image: Some(format!("sha256:{}", st.key)),
        cmd: Some(argv.clone()),
        entrypoint: Some(Vec::new()),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode),
            binds: Some(binds),
            tmpfs: Some(tmpfs),
            ..Default::default()
        }),
        labels: Some(HashMap::from([(STEP_LABEL.to_string(), raw.line.to_string())])),
        ..Default::default()
    };
    let id = containers::create_with(&cx.d, None, body, Some(image)).await?;
    let result = run_container(cx, &id).await;
    let c = cx.d.container(&id);
    let upper = containers::container_dir(&cx.d, &id).join("upper");
    let committed = match result {
        Ok(0) => {
            let lower = st.lower_dirs(&cx.d.store);
            let (u, t) = (upper.clone(), targets.clone());
            let _ = blocking(move || {
                fs::remove_mount_stubs(&u, &lower, &t);
                Ok(())
            })
            .await;
            // A RUN container is remapped with the daemon (`--userns-remap`): its upper directory holds host IDs.
            finish_layer_step(cx, st, key, created_by, upper, cx.d.config.userns_remap).await
        }
        Ok(code) => Err(bad(format!("{at}: The command '{}' returned a non-zero code: {code}", argv.join(" ")))),
        Err(e) => Err(e),
    };
    if let Ok(c) = c
        && let Err(e) = containers::remove(&cx.d, &c, true, true).await
    {
        tracing::warn!("remove build container {}: {e}", &id[..12]);
    }
    cx.out.stream(format!("Removing intermediate container {}\n", &id[..12]));
    committed
}

/// Mounts a step made on the host (`RUN --mount=type=bind,from=`), unmounted when the step ends.
struct HostMounts(Vec<PathBuf>);

impl Drop for HostMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            if let Err(e) = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!("unmount {}: {e}", m.display());
            }
        }
    }
}

/// Starts a step's container, streams its output, returns its exit code.
async fn run_container(cx: &Arc<Ctx>, id: &str) -> Result<i64, Error> {
    let c = cx.d.container(id)?;
    cx.out.stream(format!(" ---> Running in {}\n", &id[..12]));
    // Attached before the start, so that no output is missed.
    let attach = containers::attach_at_start(&c, AttachStreams { stdin: false, stdout: true, stderr: true });
    containers::start(&cx.d, &c).await?;
    if let Ok(mut s) = attach.await {
        // Docker's multiplexed frames: 8-byte header (stream, 0, 0, 0, big-endian length), then the payload.
        let mut header = [0u8; 8];
        loop {
            if s.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let mut buf = vec![0u8; len];
            if s.read_exact(&mut buf).await.is_err() {
                break;
            }
            cx.out.stream(String::from_utf8_lossy(&buf).into_owned());
        }
    }
    let (code, err) = containers::wait(&c, WaitCondition::NotRunning).await;
    if let Some(e) = err.filter(|_| code >= 125) {
        return Err(bad(format!("the step's container failed to run: {e}")));
    }
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
async fn copy_step(
    cx: &Arc<Ctx>,
    st: &mut State,
    raw: &Instruction,
    at: &str,
    key: String,
    args: &berth_build::CopyArgs,
    add: bool,
    stage: usize,
) -> Result<(), Error> {
    let what = if add { "ADD" } else { "COPY" };
    if !args.exclude.is_empty() {
        return Err(bad(format!("{at}: {what} --exclude is not supported yet")));
    }
    if args.parents {
        return Err(bad(format!("{at}: {what} --parents is not supported yet")));
    }
    let wd = st.config()["WorkingDir"].as_str().unwrap_or("").to_string();
    let dest = if args.dest.starts_with('/') {
        args.dest.clone()
    } else {
        let keep_slash = args.dest.ends_with('/') || args.dest == "." || args.dest.ends_with("/.");
        let mut d = fs::clean_abs(&format!("{wd}/{}", args.dest));
        if keep_slash && !d.ends_with('/') {
            d.push('/');
        }
        d
    };
    let chmod = match args.chmod.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(u32::from_str_radix(c, 8).map_err(|_| bad(format!("{at}: invalid chmod parameter: {c}")))?),
        None => None,
    };
    let heredoc_names: Vec<&str> = args.heredocs.iter().map(|h| h.name.as_str()).collect();
    let mut sources = Vec::new();
    let mut urls = Vec::new();
    for s in &args.sources {
        if heredoc_names.contains(&s.trim_start_matches("<<").trim_start_matches('-')) || s.starts_with("<<") {
            continue;
        }
        if add && (s.starts_with("http://") || s.starts_with("https://")) {
            urls.push(s.clone());
            continue;
        }
        if args.from.is_none() && add && (s.starts_with("git@") || s.ends_with(".git")) {
            return Err(bad(format!("{at}: ADD of a git repository ({s}) is not supported")));
        }
        sources.push(s.clone());
    }
    // Where the sources come from, and what that contributes to the key.
    let (root, from_key, from_context) = match args.from.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => match cx.prep.df.stage(f) {
            Some(i) if i < stage => {
                let b = stage_result(cx, i).await?;
                (fs::SourceRoot::Layers(b.lower_dirs(&cx.d.store)), json!(["stage", b.key]), false)
            }
            Some(_) => {
                return Err(bad(format!("{at}: {what} --from={f}: a stage cannot copy from itself or a later stage")));
            }
            None => {
                let image =
                    image_by_name(cx, f, false).await.map_err(|e| bad(format!("{at}: {what} --from={f}: {e}")))?;
                (fs::SourceRoot::Layers(image.lower_dirs()), json!(["image", image.id.as_str()]), false)
            }
        },
        None => {
            for s in &sources {
                if fs::clean_in_root(s).is_none() {
                    return Err(bad(format!("{at}: {what} failed: forbidden path outside the build context: {s} ()")));
                }
            }
            let ctx = cx.prep.ctx.clone();
            let srcs = sources.clone();
            let cxc = cx.clone();
            let hashes = blocking(move || fs::hash_context_sources(&ctx, &srcs, &cxc.hashes)).await?;
            (fs::SourceRoot::Dir(cx.prep.ctx.clone()), json!(["context", hashes]), true)
        }
    };
    let dirs = step_dir(cx)?;
    // Here-documents and downloads become files of the step's directory.
    let mut files = Vec::new();
    let mut file_keys = Vec::new();
    for (n, h) in args.heredocs.iter().enumerate() {
        let content = {
            let vars = st.vars();
            h.expanded_content(&vars).map_err(|e| bad(format!("{at}: {e}")))?
        };
        let p = dirs.src.parent().unwrap_or(Path::new("/")).join(format!("heredoc-{n}"));
        std::fs::write(&p, &content).map_err(|e| Error::Internal(format!("write {}: {e}", p.display())))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644));
        file_keys.push(json!([h.name, content]));
        files.push((p, h.name.clone()));
    }
    if let Some(sum) = args.checksum.as_deref().filter(|c| !c.is_empty()) {
        if urls.len() != 1 || !sources.is_empty() {
            return Err(bad(format!("{at}: checksum can't be specified for multiple sources or non-HTTP(S) sources")));
        }
        if !sum.starts_with("sha256:") {
            return Err(bad(format!("{at}: unsupported checksum {sum}: only sha256: is supported")));
        }
    }
    for (n, u) in urls.iter().enumerate() {
        let dest_dir = dirs.src.parent().unwrap_or(Path::new("/")).join(format!("url-{n}"));
        // berth-registry's client: TLS verified as for registries, redirects followed, connect and body timeouts,
        // the body streamed to the file.
        let got = berth_registry::client::download(u, Some(&cx.d.config.registry_certs_dir), &dest_dir)
            .await
            .map_err(|e| bad(format!("{at}: ADD {u}: {e}")))?;
        let (path, name, digest) = (got.path, got.name, got.sha256);
        if let Some(sum) = args.checksum.as_deref().filter(|c| !c.is_empty())
            && sum.strip_prefix("sha256:") != Some(digest.as_str())
        {
            return Err(bad(format!("{at}: ADD {u}: digest mismatch: expected {sum}, got sha256:{digest}")));
        }
        file_keys.push(json!([u, digest]));
        files.push((path, name));
    }
    let key = fs::key_of(&json!([key, from_key, file_keys, dest]));
    let shown = raw.original.split_once(char::is_whitespace).map(|x| x.1).unwrap_or("").trim().to_string();
    let created_by = format!("{what} {shown} # buildkit");
    if from_cache(cx, st, &key).await? {
        return Ok(());
    }
    let job = fs::CopyJob {
        root,
        sources: sources.iter().map(|s| fs::clean_abs(s)).collect(),
        files,
        dest,
        chown: args.chown.clone(),
        chmod,
        unpack_archives: add && args.unpack != Some(false),
        what,
        from_context,
    };
    let lower = st.lower_dirs(&cx.d.store);
    let upper = dirs.upper.clone();
    let at2 = at.to_string();
    blocking(move || fs::copy(lower, &dirs, job).map_err(|e| bad(format!("{at2}: {e}")))).await?;
    finish_layer_step(cx, st, key, created_by, upper, None).await
}

/// `POST /build/prune`.
pub async fn prune(d: &Arc<Daemon>, all: bool) -> Result<Value, Error> {
    let store = d.store.clone();
    let pruned = blocking(move || store.cache_prune(None).map_err(Error::from)).await?;
    if all {
        let _ = std::fs::remove_dir_all(build_root(d).join("cache-mounts"));
    }
    Ok(json!({"CachesDeleted": pruned.entries, "SpaceReclaimed": pruned.reclaimed}))
}
