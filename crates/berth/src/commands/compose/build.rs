//! `build` and the builds `up --build` does: `POST /build` as `berth build` sends it (`build::post_build`: Berth's
//! context protocol, or to another daemon a tar of the context without what `.dockerignore` excludes, as the docker
//! CLI sends it without BuildKit), the query parameters `t`, `dockerfile`,
//! `buildargs`, `target`, `labels`, `pull`, `nocache`, `rm`, and `cachefrom`/`platform` from `cache_from` and
//! `platforms`; the BuildKit-only keys refused by `plan::classic_build`), the JSON progress stream shown by `build_view` as
//! `berth build` shows it (`--progress`), steps labelled with the service.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use berth_compose::Project;
use berth_compose::model::Service;
use berth_compose::plan;
use clap::Args;
use serde_json::{Map, Value, json};

use super::{ProjectArgs, progress};
use crate::StatusError;
use crate::client::{Client, check};
use crate::commands::build_view;

/// `build`'s flags.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Set build-time variables for services
    #[arg(long = "build-arg", value_name = "KEY=VAL")]
    pub build_arg: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Services to build
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Options of one build beyond the file's.
#[derive(Debug, Default, Clone)]
pub struct BuildOptions {
    /// `--build-arg`.
    pub args: Vec<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--progress` (`auto` when empty).
    pub progress: String,
}

/// `berth compose build`.
pub async fn build_cmd(c: &Client, p: &ProjectArgs, a: BuildArgs) -> Result<i32> {
    let project = super::load(p, &a.services)?;
    for s in &a.services {
        if !project.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let progress = p.progress.clone().unwrap_or_default();
    let opts = BuildOptions { args: a.build_arg, no_cache: a.no_cache, pull: a.pull, quiet: a.quiet, progress };
    // What the builder cannot do is refused before anything is built.
    for s in project.services.values().filter(|s| a.services.is_empty() || a.services.contains(&s.name)) {
        plan::classic_build(s)?;
    }
    for s in project.services.values().filter(|s| a.services.is_empty() || a.services.contains(&s.name)) {
        if s.build.is_some() {
            build_service(c, &project, s, &opts).await?;
        }
    }
    Ok(0)
}

/// Builds one service's image with `POST /build`.
pub async fn build_service(c: &Client, project: &Project, svc: &Service, opts: &BuildOptions) -> Result<()> {
    let Some(build) = &svc.build else { return Ok(()) };
    let image = plan::image_name(&project.name, svc);
    let classic = plan::classic_build(svc)?;
    let ctx = PathBuf::from(&build.context);
    let (dockerfile, extra) = match (&build.dockerfile_inline, &build.dockerfile) {
        // A name of its own each time, as `berth build -f -`'s: berthd removes such a Dockerfile after the build
        // and never keeps it (a kept one of the same size would be taken for unchanged).
        (Some(inline), _) => {
            (format!(".dockerfile.{}", crate::commands::build::random_name()), Some(inline.clone().into_bytes()))
        }
        (None, Some(d)) => (d.clone(), None),
        (None, None) => ("Dockerfile".to_string(), None),
    };
    let mut args: Map<String, Value> = build
        .args
        .iter()
        .filter_map(|(k, v)| v.clone().or_else(|| project.environment.get(k).cloned()).map(|v| (k.clone(), json!(v))))
        .collect();
    for a in &opts.args {
        match a.split_once('=') {
            Some((k, v)) => args.insert(k.to_string(), json!(v)),
            None => args.insert(a.clone(), json!(std::env::var(a).unwrap_or_default())),
        };
    }
    let labels: Map<String, Value> =
        build.labels.iter().map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default()))).collect();
    let mut q: Vec<(&str, String)> = vec![("t", image.clone())];
    for t in &build.tags {
        q.push(("t", t.clone()));
    }
    let dockerfile_name = dockerfile.clone();
    q.push(("dockerfile", dockerfile));
    if !args.is_empty() {
        q.push(("buildargs", Value::Object(args).to_string()));
    }
    if let Some(t) = &build.target {
        q.push(("target", t.clone()));
    }
    if !labels.is_empty() {
        q.push(("labels", Value::Object(labels).to_string()));
    }
    if opts.pull || build.pull.unwrap_or(false) {
        q.push(("pull", "1".into()));
    }
    if opts.no_cache || build.no_cache.unwrap_or(false) {
        q.push(("nocache", "1".into()));
    }
    q.push(("rm", "1".into()));
    if let Some(n) = &build.network {
        q.push(("networkmode", n.clone()));
    }
    if !build.extra_hosts.is_empty() {
        q.push(("extrahosts", build.extra_hosts.iter().map(|h| h.replacen('=', ":", 1)).collect::<Vec<_>>().join(",")));
    }
    if !classic.cache_from.is_empty() {
        q.push(("cachefrom", json!(classic.cache_from).to_string()));
    }
    if let Some(p) = &classic.platform {
        q.push(("platform", p.clone()));
    }
    q.push(("version", "1".into()));
    let extra = extra.map(|d| (dockerfile_name.clone(), d));
    let resp = crate::commands::build::post_build(c, &q, ctx, dockerfile_name, extra).await?;
    if resp.status().as_u16() == 404 {
        return Err(StatusError::exit(
            1,
            format!("service {:?}: the daemon has no image builder (POST /build answered 404)", svc.name),
        ));
    }
    let resp = check(resp).await.with_context(|| format!("service {:?}: build", svc.name))?;
    let mode = build_view::Mode::parse(&opts.progress, opts.quiet)?;
    let mut view = build_view::View::new(mode, Some(svc.name.clone()));
    crate::client::json_messages(resp, |v| view.message(v)).await?;
    if let Some(e) = view.failure.take() {
        view.fail();
        bail!("service {:?} failed to build: {}", svc.name, e.trim());
    }
    let tags: Vec<String> = std::iter::once(image).chain(build.tags.iter().cloned()).collect();
    view.done(&tags);
    progress(&format!("Service {}", svc.name), "Built");
    Ok(())
}
