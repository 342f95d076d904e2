//! `watch` and `up --watch`: Compose v2's `develop.watch` rules. The host paths are watched with inotify (nix's
//! wrapper, already a dependency with its `inotify` feature: no watcher crate, no polling thread), one watch per
//! directory, added as directories appear. Changes are batched as Compose batches them (a batch ends after a quiet
//! period of 500 ms), then each service's rules act on the batch: `sync` copies the changed files into the
//! running containers through the archive API (deleted ones are removed with `rm -rf` by exec), `sync+restart`
//! restarts the containers after syncing, `sync+exec` runs the rule's command, `restart` restarts, `rebuild`
//! builds the service's image and recreates its containers. `ignore`/`include` take `.dockerignore` patterns
//! relative to the rule's path; the build context's `.dockerignore`, editors' temporary files and `.git` are
//! always ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_build::ignore::Patterns;
use berth_compose::Project;
use berth_compose::model::{Service, WatchRule};
use clap::Args;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;

use super::up::{Converge, ImagePolicy, converge, ensure_images};
use super::{OneOff, ProjectArgs, containers, id, name};
use crate::commands::container_path;

/// How long a batch of changes waits for more (Compose v2's quietPeriod).
pub const QUIET_PERIOD: Duration = Duration::from_millis(500);

/// Paths nobody wants synced: editors' swap and backup files, and the Git directory (as Compose ignores them).
const ALWAYS_IGNORED: &[&str] =
    &[".git", "**/.git", "**/*.swp", "**/*.swx", "**/*~", "**/.#*", "**/#*#", "**/4913", "**/.goutputstream-*"];

/// `watch`'s flags.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Do not build & start services before watching
    #[arg(long = "no-up")]
    pub no_up: bool,
    /// Prune dangling images on rebuild
    #[arg(long = "prune", value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub prune: bool,
    /// Services to watch
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `berth compose watch`.
pub async fn watch_cmd(c: &crate::client::Client, p: &ProjectArgs, a: WatchArgs) -> Result<i32> {
    let project = super::load(p, &a.services)?;
    check(&project, &a.services)?;
    if !a.no_up {
        let up = super::up::UpArgs {
            detach: true,
            services: a.services.clone(),
            pull: "missing".into(),
            wait_timeout: 300,
            ..super::up::UpArgs::default()
        };
        Box::pin(super::up::up(c, p, up)).await?;
    }
    tokio::select! {
        r = watch(c, &project, &a.services, a.prune) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}

/// The services to watch: the named ones (or all) that have `develop.watch` rules; none is an error, as in
/// Compose v2.
fn check<'a>(project: &'a Project, services: &[String]) -> Result<Vec<&'a Service>> {
    let list: Vec<&Service> = project
        .services
        .values()
        .filter(|s| services.is_empty() || services.contains(&s.name))
        .filter(|s| s.develop.as_ref().is_some_and(|d| !d.watch.is_empty()))
        .collect();
    if list.is_empty() {
        bail!("none of the selected services is configured for watch, consider setting a 'develop' section");
    }
    for s in &list {
        for r in s.develop.iter().flat_map(|d| &d.watch) {
            if !["sync", "rebuild", "restart", "sync+restart", "sync+exec"].contains(&r.action.as_str()) {
                bail!("service {:?}: unknown watch action {:?}", s.name, r.action);
            }
            if r.action.starts_with("sync") && r.target.is_none() {
                bail!("service {:?}: watch rule on {} ({}) has no target", s.name, r.path, r.action);
            }
            if r.action == "sync+exec" && r.exec.is_none() {
                bail!("service {:?}: watch rule on {} (sync+exec) has no exec command", s.name, r.path);
            }
            if r.action == "rebuild" && s.build.is_none() {
                bail!(
                    "service {:?}: watch rule on {} is rebuild, but the service has no build section",
                    s.name,
                    r.path
                );
            }
        }
    }
    Ok(list)
}

/// A rule with its patterns compiled.
struct Rule<'a> {
    rule: &'a WatchRule,
    ignore: Patterns,
    include: Option<Patterns>,
    /// The service's build context and its `.dockerignore` ("rules from .dockerignore apply").
    context: Option<(PathBuf, Patterns)>,
}

impl Rule<'_> {
    fn new<'a>(rule: &'a WatchRule, svc: &Service) -> Result<Rule<'a>> {
        let mut ignore: Vec<String> = ALWAYS_IGNORED.iter().map(|s| s.to_string()).collect();
        ignore.extend(rule.ignore.iter().cloned());
        let ignore = Patterns::from_lines(&ignore).map_err(|e| anyhow!("watch ignore patterns: {e}"))?;
        let include = if rule.include.is_empty() {
            None
        } else {
            Some(Patterns::from_lines(&rule.include).map_err(|e| anyhow!("watch include patterns: {e}"))?)
        };
        let context = match &svc.build {
            Some(b) if !b.context.contains("://") => {
                let dir = PathBuf::from(&b.context);
                match std::fs::read_to_string(dir.join(".dockerignore")) {
                    Ok(text) => Some((dir, Patterns::parse(&text).map_err(|e| anyhow!(".dockerignore: {e}"))?)),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        Ok(Rule { rule, ignore, include, context })
    }

    /// The path of `changed` relative to the rule's path, when the rule covers it ("" for the path itself).
    fn relative(&self, changed: &Path) -> Option<String> {
        let rel = changed.strip_prefix(&self.rule.path).ok()?;
        let rel = rel.to_string_lossy().to_string();
        if !rel.is_empty() && self.ignore.matches(&rel) {
            return None;
        }
        if let Some((dir, pats)) = &self.context
            && let Ok(in_ctx) = changed.strip_prefix(dir)
            && pats.matches(&in_ctx.to_string_lossy())
        {
            return None;
        }
        if let Some(inc) = &self.include
            && !rel.is_empty()
            && !inc.matches(&rel)
        {
            return None;
        }
        Some(rel)
    }

    /// The container path of a relative path.
    fn target(&self, rel: &str) -> String {
        let t = self.rule.target.as_deref().unwrap_or("/");
        if rel.is_empty() { t.to_string() } else { format!("{}/{rel}", t.trim_end_matches('/')) }
    }
}

/// Groups changed paths by what each service must do: files to sync per rule, and whether to rebuild/restart.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    /// (rule index, relative path) to sync.
    sync: Vec<(usize, String)>,
    /// Rules (index) whose after-sync step runs (`sync+restart`, `sync+exec`, `restart`).
    after: BTreeSet<usize>,
    /// A rebuild is due.
    rebuild: bool,
}

/// What a batch of changed paths means for one service's rules (the first rule covering a path takes it).
fn plan_batch(rules: &[Rule<'_>], changed: &BTreeSet<PathBuf>) -> Plan {
    let mut plan = Plan::default();
    for p in changed {
        for (i, r) in rules.iter().enumerate() {
            let Some(rel) = r.relative(p) else { continue };
            match r.rule.action.as_str() {
                "rebuild" => plan.rebuild = true,
                "restart" => {
                    plan.after.insert(i);
                }
                _ => {
                    plan.sync.push((i, rel));
                    if r.rule.action != "sync" {
                        plan.after.insert(i);
                    }
                }
            }
            break;
        }
    }
    plan
}

/// An inotify instance as tokio wants it (`AsRawFd`).
struct Ino(Inotify);

impl std::os::fd::AsRawFd for Ino {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsFd::as_fd(&self.0).as_raw_fd()
    }
}

/// The inotify watches of the rules' paths.
struct Watcher {
    fd: AsyncFd<Ino>,
    dirs: HashMap<WatchDescriptor, PathBuf>,
}

const MASK: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ATTRIB);

impl Watcher {
    fn new() -> Result<Watcher> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).context("inotify_init")?;
        // SAFETY: `Inotify` owns its descriptor (an `OwnedFd` it never replaces), so `as_raw_fd` names the same open
        // descriptor for as long as the `AsyncFd` holds it.
        let fd = unsafe { AsyncFd::register_with_interest(Ino(ino), tokio::io::Interest::READABLE) }
            .map_err(|e| anyhow!("register inotify: {e}"))?;
        Ok(Watcher { fd, dirs: HashMap::new() })
    }

    /// Watches `dir` and the directories under it; returns the files found (they may have appeared before the
    /// watch did).
    fn add_tree(&mut self, dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            match self.fd.get_ref().0.add_watch(&d, MASK) {
                Ok(wd) => {
                    self.dirs.insert(wd, d.clone());
                }
                Err(e) => {
                    eprintln!("WARN[0000] cannot watch {}: {}", d.display(), e.desc());
                    continue;
                }
            }
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        files
    }

    /// Waits for changes and returns the changed paths of one batch (ended by [`QUIET_PERIOD`] without events).
    async fn batch(&mut self) -> Result<BTreeSet<PathBuf>> {
        let mut changed = BTreeSet::new();
        loop {
            let ready = if changed.is_empty() {
                Some(self.fd.readable().await.context("inotify")?)
            } else {
                tokio::time::timeout(QUIET_PERIOD, self.fd.readable()).await.ok().transpose().context("inotify")?
            };
            let Some(mut guard) = ready else { return Ok(changed) };
            let events = match self.fd.get_ref().0.read_events() {
                Ok(ev) => ev,
                Err(nix::errno::Errno::EAGAIN) => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => return Err(anyhow!("read inotify events: {}", e.desc())),
            };
            drop(guard);
            for ev in events {
                let Some(dir) = self.dirs.get(&ev.wd).cloned() else { continue };
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                let Some(n) = ev.name else { continue };
                let p = dir.join(n);
                let is_dir = ev.mask.contains(AddWatchFlags::IN_ISDIR);
                if is_dir && ev.mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                    changed.extend(self.add_tree(&p));
                }
                changed.insert(p);
            }
        }
    }
}

/// A tar of the host paths (files, directories with their content, symlinks as links) at container paths.
fn tar_paths(entries: &[(PathBuf, String)]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for (host, target) in entries {
        let name = target.trim_start_matches('/');
        let meta = std::fs::symlink_metadata(host).with_context(|| format!("stat {}", host.display()))?;
        if meta.is_dir() {
            b.append_dir_all(name, host).with_context(|| format!("tar {}", host.display()))?;
        } else {
            b.append_path_with_name(host, name).with_context(|| format!("tar {}", host.display()))?;
        }
    }
    b.into_inner().context("finish tar")
}

/// The running containers of a service.
async fn running(c: &crate::client::Client, project: &Project, svc: &str) -> Result<Vec<String>> {
    Ok(containers(c, &project.name, &[svc.to_string()], OneOff::Exclude, false).await?.iter().map(id).collect())
}

/// Copies the given (rule, relative path) pairs into the service's running containers; paths gone from the host
/// are removed in the containers.
async fn sync(
    c: &crate::client::Client,
    project: &Project,
    svc: &Service,
    rules: &[Rule<'_>],
    items: &[(usize, String)],
) -> Result<()> {
    let mut copy = Vec::new();
    let mut gone = Vec::new();
    for (i, rel) in items {
        let r = &rules[*i];
        let host = if rel.is_empty() { PathBuf::from(&r.rule.path) } else { Path::new(&r.rule.path).join(rel) };
        let target = r.target(rel);
        if std::fs::symlink_metadata(&host).is_ok() {
            copy.push((host, target));
        } else {
            gone.push(target);
        }
    }
    let data = if copy.is_empty() { None } else { Some(tar_paths(&copy)?) };
    for cid in running(c, project, &svc.name).await? {
        if let Some(d) = &data {
            super::lifecycle::put_archive(c, &cid, "/", d.clone(), false).await?;
        }
        if !gone.is_empty() {
            let mut cmd = vec!["rm".to_string(), "-rf".to_string()];
            cmd.extend(gone.iter().cloned());
            let hook = berth_compose::model::Hook { command: cmd, ..Default::default() };
            super::lifecycle::run_hook(c, svc, &cid, &hook, None).await?;
        }
    }
    Ok(())
}

/// Restarts the service's containers (and runs its hooks, as `restart` does).
async fn restart(c: &crate::client::Client, project: &Project, svc: &Service) -> Result<()> {
    for ctr in containers(c, &project.name, std::slice::from_ref(&svc.name), OneOff::Exclude, true).await? {
        super::lifecycle::pre_stop(c, svc, &id(&ctr)).await?;
        c.post(&format!("{}/restart", container_path(&id(&ctr)))).await?;
        super::lifecycle::post_start(c, svc, &id(&ctr), None).await?;
        super::progress(&format!("Container {}", name(&ctr)), "Restarted");
    }
    Ok(())
}

/// Builds the service's image and recreates its containers; the services that restart with it
/// (`depends_on.restart`) are stopped by the recreation and started again here.
async fn rebuild(
    c: &crate::client::Client,
    project: &Project,
    svc: &Service,
    targets: &BTreeSet<String>,
    prune: bool,
) -> Result<()> {
    let one: BTreeSet<String> = [svc.name.clone()].into();
    let image_name = berth_compose::plan::image_name(&project.name, svc);
    let before = super::up::image_id(c, &image_name).await?;
    let images = ensure_images(c, project, &one, &ImagePolicy { build: true, ..Default::default() }).await?;
    // The replaced image, removed once the recreation has freed it.
    let replaced = before.filter(|old| prune && images.get(&svc.name) != Some(old));
    let how = Converge { start: true, targets: Some(targets.clone()), ..Converge::default() };
    let image = images.get(&svc.name).cloned().unwrap_or_default();
    converge(c, project, svc, svc.replicas(), &image, &how).await?;
    let deps = super::up::restart_dependents(project, &svc.name, Some(targets));
    if !deps.is_empty() {
        let images = ensure_images(c, project, &deps.iter().cloned().collect(), &ImagePolicy::default()).await?;
        for d in deps {
            let Some(ds) = project.services.get(&d) else { continue };
            let image = images.get(&d).cloned().unwrap_or_default();
            converge(c, project, ds, ds.replicas(), &image, &how).await?;
        }
    }
    if let Some(old) = replaced {
        prune_dangling(c, &old).await;
    }
    Ok(())
}

/// `--prune`: the image a rebuild replaced is removed when it is left dangling (no tag; one a container still uses
/// is refused by the daemon and stays), as Compose's pruneDanglingImagesOnRebuild.
async fn prune_dangling(c: &crate::client::Client, old: &str) {
    let Ok(v) = c.get_json::<serde_json::Value>(&format!("/images/{old}/json")).await else { return };
    let tagged = v["RepoTags"].as_array().is_some_and(|t| !t.is_empty());
    if !tagged {
        // A conflict (a container runs it) or a race with another removal is no error of the watch.
        let _ = c.delete(&format!("/images/{old}")).await;
    }
}

/// The creation time of the service's image (the initial sync copies what changed since).
async fn image_created(c: &crate::client::Client, project: &Project, svc: &Service) -> Option<std::time::SystemTime> {
    let image = berth_compose::plan::image_name(&project.name, svc);
    let v: serde_json::Value = c.get_json(&format!("{}/json", crate::commands::image_path(&image))).await.ok()?;
    let (secs, nanos) = crate::units::parse_rfc3339ish(v["Created"].as_str()?)?;
    let secs = u64::try_from(secs).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::new(secs, nanos))
}

/// The files Compose's initial sync copies for one rule: those under its path (or the path itself) modified after
/// `since` (the image's creation: older ones are in the image already), not ignored by the rule, not under a bind
/// mount of the service (a bind mount shows the host's files anyway).
fn initial_files(rule: &Rule<'_>, svc: &Service, since: std::time::SystemTime) -> Vec<String> {
    let binds: Vec<&str> = svc.volumes.iter().filter(|v| v.typ == "bind").filter_map(|v| v.source.as_deref()).collect();
    let mounted = |p: &Path| binds.iter().any(|b| p.starts_with(b));
    let newer = |m: &std::fs::Metadata| m.modified().is_ok_and(|t| t > since);
    let root = PathBuf::from(&rule.rule.path);
    let mut out = Vec::new();
    let Ok(meta) = std::fs::symlink_metadata(&root) else { return out };
    if !meta.is_dir() {
        if newer(&meta) && !mounted(&root) && rule.relative(&root).is_some() {
            out.push(String::new());
        }
        return out;
    }
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Some(rel) = rule.relative(&p) else { continue };
            if mounted(&p) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            if m.is_dir() {
                stack.push(p);
            } else if newer(&m) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// Acts on one service's plan of a batch.
async fn apply(
    c: &crate::client::Client,
    project: &Project,
    svc: &Service,
    rules: &[Rule<'_>],
    plan: &Plan,
    targets: &BTreeSet<String>,
    prune: bool,
) -> Result<()> {
    if plan.rebuild {
        eprintln!("Rebuilding service(s) [\"{}\"] after changes were detected...", svc.name);
        rebuild(c, project, svc, targets, prune).await?;
        eprintln!("service(s) [\"{}\"] successfully built", svc.name);
        return Ok(());
    }
    if !plan.sync.is_empty() {
        eprintln!("Syncing service \"{}\" after {} changes were detected", svc.name, plan.sync.len());
        sync(c, project, svc, rules, &plan.sync).await?;
    }
    let mut restarted = false;
    for i in &plan.after {
        let r = rules[*i].rule;
        match (r.action.as_str(), &r.exec) {
            ("sync+exec", Some(h)) => {
                for cid in running(c, project, &svc.name).await? {
                    super::lifecycle::run_hook(c, svc, &cid, h, None).await?;
                }
            }
            _ if !restarted => {
                restart(c, project, svc).await?;
                eprintln!("service(s) [\"{}\"] restarted", svc.name);
                restarted = true;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Watches the services' rules until an error the loop cannot survive (Ctrl-C ends it from outside). Errors of
/// one batch (a failed build, a stopped container) are printed and watching goes on, as Compose does.
/// `prune`: remove the images rebuilds leave dangling.
pub async fn watch(c: &crate::client::Client, project: &Project, services: &[String], prune: bool) -> Result<()> {
    let list = check(project, services)?;
    let targets: BTreeSet<String> = project.services.keys().cloned().collect();
    let mut compiled: BTreeMap<String, Vec<Rule<'_>>> = BTreeMap::new();
    for s in &list {
        let rules = s.develop.iter().flat_map(|d| &d.watch).map(|r| Rule::new(r, s)).collect::<Result<Vec<_>>>()?;
        compiled.insert(s.name.clone(), rules);
    }
    let mut w = Watcher::new()?;
    let mut roots: BTreeSet<PathBuf> = BTreeSet::new();
    for rules in compiled.values() {
        for r in rules {
            let p = PathBuf::from(&r.rule.path);
            // A watched file is watched through its directory.
            let dir = if p.is_dir() { p } else { p.parent().map(Path::to_path_buf).unwrap_or(p) };
            roots.insert(dir);
        }
    }
    for r in &roots {
        if !r.exists() {
            bail!("watch path {} does not exist", r.display());
        }
        w.add_tree(r);
    }
    // initial_sync: what each sync rule that asks for it has newer than the service's image, before changes are
    // watched (Compose's initialSyncFiles).
    for s in &list {
        let rules = &compiled[&s.name];
        let wanted = |r: &Rule<'_>| r.rule.initial_sync.unwrap_or(false) && r.rule.action.starts_with("sync");
        if !rules.iter().any(wanted) {
            continue;
        }
        let since = image_created(c, project, s).await.unwrap_or(std::time::UNIX_EPOCH);
        let items: Vec<(usize, String)> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| wanted(r))
            .flat_map(|(i, r)| initial_files(r, s, since).into_iter().map(move |f| (i, f)))
            .collect();
        if !items.is_empty() {
            sync(c, project, s, rules, &items).await.with_context(|| format!("service {:?}: initial sync", s.name))?;
        }
    }
    eprintln!("Watch enabled");
    loop {
        let changed = w.batch().await?;
        for s in &list {
            let rules = &compiled[&s.name];
            let plan = plan_batch(rules, &changed);
            if plan == Plan::default() {
                continue;
            }
            if let Err(e) = apply(c, project, s, rules, &plan, &targets, prune).await {
                eprintln!("Error: service {:?}: {e:#}", s.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, action: &str, ignore: &[&str]) -> WatchRule {
        WatchRule {
            path: path.into(),
            action: action.into(),
            target: Some("/app".into()),
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            ..WatchRule::default()
        }
    }

    #[test]
    fn a_batch_maps_to_syncs_restarts_and_rebuilds() {
        let a = rule("/p/src", "sync", &["node_modules/", "*.log"]);
        let b = rule("/p/conf", "sync+restart", &[]);
        let c = rule("/p/package.json", "rebuild", &[]);
        let svc = Service::default();
        let rules: Vec<Rule<'_>> = [&a, &b, &c].into_iter().map(|r| Rule::new(r, &svc).expect("rule")).collect();
        let paths = |ps: &[&str]| ps.iter().map(PathBuf::from).collect::<BTreeSet<_>>();
        let p = plan_batch(
            &rules,
            &paths(&["/p/src/a.js", "/p/src/node_modules/x/y.js", "/p/src/debug.log", "/p/src/.x.swp", "/p/other"]),
        );
        assert_eq!(p, Plan { sync: vec![(0, "a.js".into())], after: BTreeSet::new(), rebuild: false });
        assert_eq!(rules[0].target("a.js"), "/app/a.js");
        let p = plan_batch(&rules, &paths(&["/p/conf/x.ini"]));
        assert_eq!(p, Plan { sync: vec![(1, "x.ini".into())], after: [1].into(), rebuild: false });
        let p = plan_batch(&rules, &paths(&["/p/package.json", "/p/src/b.js"]));
        assert!(p.rebuild);
        // A rule on a file: the path itself, synced to the target.
        assert_eq!(rules[2].relative(Path::new("/p/package.json")).as_deref(), Some(""));
        assert_eq!(rules[0].target(""), "/app");
    }

    #[test]
    fn initial_sync_takes_what_is_newer_than_the_image() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("src");
        std::fs::create_dir_all(root.join("lib")).expect("mkdir");
        std::fs::create_dir_all(root.join("node_modules/x")).expect("mkdir");
        std::fs::create_dir_all(root.join("mounted")).expect("mkdir");
        for f in ["old.js", "new.js", "lib/new.js", "node_modules/x/new.js", "mounted/new.js", "debug.log"] {
            std::fs::write(root.join(f), "x").expect("write");
        }
        let since = std::time::SystemTime::now() - Duration::from_secs(60);
        let old = std::fs::File::options().write(true).open(root.join("old.js")).expect("open");
        old.set_modified(since - Duration::from_secs(3600)).expect("set mtime");
        let r = rule(&root.display().to_string(), "sync", &["node_modules/", "*.log"]);
        let mut svc = Service::default();
        svc.volumes.push(berth_compose::model::ServiceVolume {
            typ: "bind".into(),
            source: Some(root.join("mounted").display().to_string()),
            target: "/m".into(),
            ..Default::default()
        });
        let compiled = Rule::new(&r, &svc).expect("rule");
        assert_eq!(initial_files(&compiled, &svc, since), ["lib/new.js", "new.js"]);
        // A rule on one file: the path itself when it is newer, nothing when it is not.
        let one = rule(&root.join("new.js").display().to_string(), "sync", &[]);
        assert_eq!(initial_files(&Rule::new(&one, &svc).expect("rule"), &svc, since), [""]);
        let one = rule(&root.join("old.js").display().to_string(), "sync", &[]);
        assert!(initial_files(&Rule::new(&one, &svc).expect("rule"), &svc, since).is_empty());
    }
}
