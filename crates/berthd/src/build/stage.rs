//! A build's context (`Ctx`), its stages (each on a task of its own, waiting for the stages it copies from) and
//! the cache: keys looked up and remembered, config-only steps, layers from cache.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use berth_build::shell::Lex;
use berth_build::{Form, Instruction};
use berth_store::{ChainId, DiffId};
use serde_json::{Map, Value, json};

use crate::daemon::Daemon;
use crate::task::blocking;

use super::*;

// Running a build

/// What a finished stage is.
#[derive(Debug, Clone)]
pub(super) struct Built {
    /// The full image config.
    pub(super) img: Value,
    pub(super) chains: Vec<ChainId>,
    pub(super) key: String,
}

impl Built {
    pub(super) fn lower_dirs(&self, store: &berth_store::Store) -> Vec<PathBuf> {
        lower_dirs(store, &self.chains)
    }
}

/// The overlay lowerdirs of a layer chain (bottom first), top first; an empty directory for no layers.
pub(super) fn lower_dirs(store: &berth_store::Store, chains: &[ChainId]) -> Vec<PathBuf> {
    if chains.is_empty() {
        return vec![store.empty_layer_dir()];
    }
    chains.iter().rev().map(|c| store.layer_dir(c)).collect()
}

pub(super) type StageResult = Option<Result<Arc<Built>, String>>;

pub(super) struct Ctx {
    pub(super) d: Arc<Daemon>,
    pub(super) opts: Options,
    pub(super) prep: Prepared,
    pub(super) out: Out,
    pub(super) meta: Vec<(String, String)>,
    pub(super) used_args: Mutex<BTreeSet<String>>,
    pub(super) hashes: fs::HashCache,
    pub(super) step: AtomicUsize,
    pub(super) total: usize,
    pub(super) results: Vec<tokio::sync::watch::Sender<StageResult>>,
    /// The stages this build runs (a stage outside it is never waited for).
    pub(super) needed: BTreeSet<usize>,
    pub(super) seq: AtomicUsize,
    /// `--cache-from`: the configs of the images that are the build's only cache (none: the builder's own cache).
    pub(super) sources: Option<Mutex<Vec<Value>>>,
}

/// Variables for expansion: the config's `Env`, then the build arguments in scope.
pub(super) struct Vars<'a> {
    pub(super) env: Vec<(String, String)>,
    pub(super) args: &'a [(String, String)],
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

pub(super) struct MetaVars<'a>(pub(super) &'a [(String, String)]);

impl berth_build::shell::Env for MetaVars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

pub(super) fn env_pairs(config: &Value) -> Vec<(String, String)> {
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

pub(super) fn set_env(config: &mut Map<String, Value>, key: &str, value: &str) {
    let mut env: Vec<Value> = config.get("Env").and_then(Value::as_array).cloned().unwrap_or_default();
    let entry = json!(format!("{key}={value}"));
    match env.iter().position(|e| e.as_str().and_then(|s| s.split_once('=')).is_some_and(|(k, _)| k == key)) {
        Some(i) => env[i] = entry,
        None => env.push(entry),
    }
    config.insert("Env".into(), Value::Array(env));
}

pub(super) fn now() -> String {
    berth_api::time::now()
}

/// Waits for an earlier stage.
pub(super) async fn stage_result(cx: &Ctx, i: usize) -> Result<Arc<Built>, Error> {
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
pub(super) async fn image_by_name(cx: &Ctx, name: &str, pull: bool) -> Result<berth_store::Image, Error> {
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
pub(super) struct State {
    pub(super) img: Value,
    pub(super) chains: Vec<ChainId>,
    pub(super) key: String,
    pub(super) args: Vec<(String, String)>,
    /// `CMD` was set in this stage (so that `ENTRYPOINT` leaves it).
    pub(super) cmd_set: bool,
}

impl State {
    pub(super) fn config(&self) -> &Value {
        &self.img["config"]
    }

    pub(super) fn vars(&self) -> Vars<'_> {
        Vars { env: env_pairs(self.config()), args: &self.args }
    }

    pub(super) fn shell(&self) -> Vec<String> {
        match self.config()["Shell"].as_array() {
            Some(a) if !a.is_empty() => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    pub(super) fn form_argv(&self, f: &Form) -> Vec<String> {
        match f {
            Form::Exec(v) => v.clone(),
            Form::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    pub(super) fn push_history(&mut self, created: &str, created_by: &str, empty: bool) {
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

    pub(super) fn push_layer(&mut self, chain: ChainId, diff: &DiffId) {
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

    pub(super) fn lower_dirs(&self, store: &berth_store::Store) -> Vec<PathBuf> {
        lower_dirs(store, &self.chains)
    }
}

pub(super) fn where_(cx: &Ctx, line: usize) -> String {
    format!("{}:{line}", cx.prep.file_name)
}

pub(super) async fn build_stage(cx: &Arc<Ctx>, index: usize) -> Result<Arc<Built>, Error> {
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
pub(super) fn record(created: &str, created_by: &str, empty: bool, layer: Option<&DiffId>) -> Value {
    json!({"created": created, "created_by": created_by, "empty_layer": empty, "diff_id": layer.map(|l| l.as_str())})
}

/// The layer a step's layer sits on, as its cache record names it.
pub(super) fn parent_of(st: &State) -> Value {
    json!(st.chains.last().map(|c| c.as_str().to_string()))
}

/// Looks a step up in the cache (unless `--no-cache`, or `--cache-from` names the cache).
pub(super) async fn cached(cx: &Ctx, key: &str) -> Result<Option<berth_store::cache::CacheEntry>, Error> {
    if cx.opts.no_cache || cx.sources.is_some() {
        return Ok(None);
    }
    let store = cx.d.store.clone();
    let k = key.to_string();
    blocking(move || store.cache_get(&k).map_err(Error::from)).await
}

pub(super) async fn remember(cx: &Ctx, key: &str, chain: Option<ChainId>, rec: Value) -> Result<(), Error> {
    let store = cx.d.store.clone();
    let k = key.to_string();
    blocking(move || store.cache_put(&k, &berth_store::cache::CacheEntry { chain, record: rec }).map_err(Error::from))
        .await
}

/// The classic builder's `--cache-from` (moby's `ImageCache.GetCache`): the next history entry of a source image
/// whose history so far is the stage's and whose layers start with the stage's, when the same instruction made it
/// (and its layer, if it has one). Once a source matched, the build sticks to it.
fn from_sources(cx: &Ctx, st: &State, created_by: &str) -> Option<(Value, Option<DiffId>)> {
    if cx.opts.no_cache {
        return None;
    }
    let mut sources = cx.sources.as_ref()?.lock().ok()?;
    let empty = Vec::new();
    let hist = st.img["history"].as_array().unwrap_or(&empty);
    let diffs = st.img["rootfs"]["diff_ids"].as_array().unwrap_or(&empty);
    let (n, m) = (hist.len(), diffs.len());
    let mut found = None;
    for s in sources.iter() {
        let (Some(sh), Some(sd)) = (s["history"].as_array(), s["rootfs"]["diff_ids"].as_array()) else { continue };
        if sh.len() <= n || sd.len() < m || sh[..n] != hist[..] || sd[..m] != diffs[..] {
            continue;
        }
        let next = &sh[n];
        if next["created_by"].as_str() != Some(created_by) {
            continue;
        }
        let diff = if next["empty_layer"].as_bool().unwrap_or(false) {
            None
        } else {
            match sd.get(m).and_then(Value::as_str).map(DiffId::parse) {
                Some(Ok(d)) => Some(d),
                _ => continue,
            }
        };
        found = Some((s.clone(), next.clone(), diff));
        break;
    }
    let (source, entry, diff) = found?;
    *sources = vec![source];
    Some((entry, diff))
}

/// A config-only step: cached for its history time only (the change itself is recomputed).
pub(super) async fn meta_step(cx: &Ctx, st: &mut State, key: String, created_by: String) -> Result<(), Error> {
    if let Some((entry, None)) = from_sources(cx, st, &created_by) {
        cx.out.stream(" ---> Using cache\n");
        st.push_history(entry["created"].as_str().unwrap_or(""), &created_by, true);
        st.key = key;
        return Ok(());
    }
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

/// Applies a cached layer step (`created_by`: its history entry's text); false when there is no usable entry.
pub(super) async fn from_cache(cx: &Ctx, st: &mut State, key: &str, created_by: &str) -> Result<bool, Error> {
    if let Some((entry, diff)) = from_sources(cx, st, created_by) {
        let created = entry["created"].as_str().unwrap_or("").to_string();
        match diff {
            Some(d) => {
                let chain = ChainId::compute(st.chains.last(), &d);
                let store = cx.d.store.clone();
                let c2 = chain.clone();
                if blocking(move || store.layer(&c2).map_err(Error::from)).await?.is_none() {
                    return Ok(false);
                }
                st.push_layer(chain, &d);
                st.push_history(&created, created_by, false);
            }
            None => st.push_history(&created, created_by, true),
        }
        cx.out.stream(" ---> Using cache\n");
        st.key = key.to_string();
        return Ok(true);
    }
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
pub(super) async fn finish_layer_step(
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

pub(super) fn step_dir(cx: &Ctx) -> Result<fs::StepDirs, Error> {
    let n = cx.seq.fetch_add(1, Ordering::SeqCst);
    fs::StepDirs::create(&cx.prep.ws.join("steps").join(n.to_string()))
}

pub(super) fn json_words(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub(super) fn go_duration(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
