//! Attached `up`, as Compose v2 runs it: the containers are created, "Attaching to ..." is printed, and each
//! container's output is followed from the moment it starts (a dependency that is slow to become healthy shows its
//! logs while the others wait), lines of all containers interleaved in arrival order with coloured `service-n |`
//! prefixes. Containers that start later (recreated, restarted, scaled by another command) are picked up from the
//! daemon's `GET /events`. The first Ctrl-C stops the project gracefully, with progress lines; a second one kills
//! it at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use berth_compose::Project;
use berth_compose::plan::{self, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};
use hyper::Method;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::ops::{prefix_of, prefix_text, stream_logs};
use super::up::{start_services, stop_container};
use super::{OneOff, containers, id, label, name, progress};
use crate::client::{ApiError, BodyReader, Client, empty, query};
use crate::commands::container_path;

/// How the attached `up` shows and ends.
#[derive(Debug, Clone)]
pub struct Options {
    /// Coloured prefixes.
    pub color: bool,
    /// Prefixes at all.
    pub prefix: bool,
    /// UNIX time (`secs.nanos`) the `up` began: the output and events since then are this run's.
    pub since: String,
    /// Stop everything when a container exits (`--abort-on-container-exit`, `--exit-code-from`).
    pub abort: bool,
    /// The service whose exit code is `up`'s (`--exit-code-from`).
    pub exit_code_from: Option<String>,
    /// `--timeout` for stopping.
    pub stop_timeout: Option<i64>,
    /// Told once the start phase is over (`up --watch` begins watching then: its initial sync needs running
    /// containers).
    pub started: Option<std::sync::Arc<tokio::sync::Notify>>,
}

/// The services whose output is shown, as Compose v2 chooses them: `--attach`, else every service with
/// `--attach-dependencies`, else the services named on the command line, else all targeted ones; minus `--no-attach`.
pub fn attached_services(
    project: &Project,
    targets: &BTreeSet<String>,
    named: &[String],
    attach: &[String],
    no_attach: &[String],
    dependencies: bool,
) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = attach.iter().cloned().collect();
    if dependencies {
        set.extend(targets.iter().cloned());
    }
    if set.is_empty() {
        set.extend(named.iter().cloned());
    }
    if set.is_empty() {
        set.extend(targets.iter().cloned());
    }
    set.retain(|s| project.services.contains_key(s) && !no_attach.contains(s));
    set
}

/// What a log stream's end means.
enum Ended {
    /// The container exited with this code (and is not being restarted by its policy).
    Exited(i64),
    /// It runs again (restarted before the stream was reopened): follow it on.
    Running,
    /// Its restart policy brings it back: its `start` event reopens the stream.
    Restarting,
}

/// Inspects a container whose log stream ended.
async fn ended(c: &Client, cid: &str) -> Ended {
    match c.get_json::<Value>(&format!("{}/json", container_path(cid))).await {
        Ok(v) if v.pointer("/State/Restarting").and_then(Value::as_bool) == Some(true) => Ended::Restarting,
        Ok(v) if v.pointer("/State/Running").and_then(Value::as_bool) == Some(true) => Ended::Running,
        Ok(v) => Ended::Exited(v.pointer("/State/ExitCode").and_then(Value::as_i64).unwrap_or(0)),
        // Removed meanwhile (recreated): its replacement's start event follows.
        Err(_) => Ended::Exited(-1),
    }
}

/// The current time as the `since` of `GET /logs`.
fn now_since() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The followers of the attached containers' output.
struct Followers {
    c: Client,
    project: String,
    opts: Options,
    width: usize,
    lock: Arc<Mutex<()>>,
    /// Colour index of each container name, in order of first sight.
    colors: HashMap<String, usize>,
    /// Containers whose stream is open.
    active: HashSet<String>,
    /// Containers followed at least once.
    seen: HashSet<String>,
    /// Containers whose restart policy will bring them back.
    restarting: HashSet<String>,
    /// Where a container's next stream starts (the end of its previous one).
    resume: HashMap<String, String>,
    tasks: tokio::task::JoinSet<(String, String, String, Result<()>)>,
}

impl Followers {
    fn prefix(&mut self, display: &str) -> String {
        if !self.opts.prefix {
            return String::new();
        }
        let n = self.colors.len();
        let i = *self.colors.entry(display.to_string()).or_insert(n);
        self.width = self.width.max(display.len());
        prefix_text(display, self.width, self.opts.color.then_some(i))
    }

    /// Opens the stream of a container (its summary or inspection `v`) unless it is open.
    fn follow(&mut self, cid: &str, v: &Value) {
        if self.active.contains(cid) {
            return;
        }
        let display = prefix_of(v, &self.project);
        let service = label(v, LABEL_SERVICE).unwrap_or("").to_string();
        let prefix = self.prefix(&display);
        let since = self.resume.get(cid).cloned().unwrap_or_else(|| self.opts.since.clone());
        let q = vec![
            ("stdout", "1".to_string()),
            ("stderr", "1".to_string()),
            ("follow", "1".to_string()),
            ("since", since),
        ];
        self.active.insert(cid.to_string());
        self.seen.insert(cid.to_string());
        self.restarting.remove(cid);
        let (c, cid) = (self.c.clone(), cid.to_string());
        self.tasks.spawn(async move {
            let r = stream_logs(c, cid.clone(), q, prefix).await;
            (cid, display, service, r)
        });
    }

    /// A status line in the container's colour (`web-1 exited with code 0`), as Compose's log consumer prints it.
    fn status(&mut self, display: &str, msg: &str) {
        let text = if self.opts.color {
            let n = self.colors.len();
            let i = *self.colors.entry(display.to_string()).or_insert(n);
            format!("\x1b[{}m{display}\x1b[0m {msg}", super::ops::color_code(i))
        } else {
            format!("{display} {msg}")
        };
        let _g = self.lock.lock();
        outln!("{text}");
    }
}

/// The `start` events of the project's containers since `since`, fed into a channel (the stream is opened before
/// anything starts, and `since` replays what started before it was).
async fn start_events(c: Client, project: String, since: String, tx: mpsc::UnboundedSender<Value>) -> Result<()> {
    let filters =
        json!({"type": ["container"], "event": ["start"], "label": [format!("{LABEL_PROJECT}={project}")]}).to_string();
    let q = [("since", since), ("filters", filters)];
    let resp = c.call(Method::GET, &format!("/events{}", query(&q)), empty(), false).await?;
    let mut lines = tokio::io::BufReader::new(BodyReader::new(resp.into_body())).lines();
    while let Some(l) = lines.next_line().await? {
        if let Ok(e) = serde_json::from_str::<Value>(&l)
            && tx.send(e).is_err()
        {
            break;
        }
    }
    Ok(())
}

/// What the start and stop phases tell the followers.
enum Phase {
    /// The start phase is over: these attached containers were started by it.
    Started(Vec<String>),
    /// The project was stopped: the streams end with what they follow, no restart is awaited.
    Stopped,
}

/// Follows the attached containers until every one the start phase started has been followed and all streams have
/// ended (nothing restarting). Each exit (not a restart) is reported on `exits` as (service, code).
async fn follow_all(
    mut f: Followers,
    attached: BTreeSet<String>,
    mut events: mpsc::UnboundedReceiver<Value>,
    mut phases: mpsc::UnboundedReceiver<Phase>,
    exits: mpsc::UnboundedSender<(String, i64)>,
) -> Result<()> {
    let mut expected: Option<Vec<String>> = None;
    let mut stopped = false;
    let mut events_open = true;
    let mut phases_open = true;
    loop {
        if let Some(exp) = &expected
            && f.active.is_empty()
            && (f.restarting.is_empty() || stopped)
            && exp.iter().all(|i| f.seen.contains(i))
        {
            return Ok(());
        }
        tokio::select! {
            e = events.recv(), if events_open => match e {
                None => events_open = false,
                Some(e) => {
                    let attrs = e.pointer("/Actor/Attributes").cloned().unwrap_or(Value::Null);
                    let attr = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let cid = e.pointer("/Actor/ID").and_then(Value::as_str).unwrap_or("").to_string();
                    // Service containers only: not one-off (`run`) nor hook helpers (their output is the start's).
                    let service_container = attr(LABEL_ONEOFF) != "True" && attr(plan::LABEL_HOOK).is_empty();
                    if service_container && attached.contains(&attr(LABEL_SERVICE)) && !cid.is_empty() {
                        let v = json!({"Names": [format!("/{}", attr("name"))], "Labels": attrs});
                        f.follow(&cid, &v);
                    }
                }
            },
            p = phases.recv(), if phases_open => match p {
                None => phases_open = false,
                Some(Phase::Started(ids)) => expected = Some(ids),
                Some(Phase::Stopped) => {
                    stopped = true;
                    expected.get_or_insert_with(Vec::new);
                }
            },
            Some(r) = f.tasks.join_next(), if !f.tasks.is_empty() => {
                let (cid, display, service, r) = r.context("log task")?;
                f.active.remove(&cid);
                // A stream cut short (the container removed by a recreation) is no error of `up`'s: what the
                // container does next is read from its state below.
                drop(r);
                f.resume.insert(cid.clone(), now_since());
                match ended(&f.c, &cid).await {
                    Ended::Running => {
                        let v = json!({"Names": [format!("/{}", display)], "Labels": {}});
                        f.follow(&cid, &v);
                    }
                    Ended::Restarting => {
                        f.restarting.insert(cid);
                    }
                    Ended::Exited(c) => {
                        if c >= 0 {
                            f.status(&display, &format!("exited with code {c}"));
                        }
                        let _ = exits.send((service, c));
                    }
                }
            },
        }
    }
}

/// Waits for a task that may not be there (then forever: the caller polls it only when it is).
async fn until_done<T>(h: &mut Option<tokio::task::JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match h.as_mut() {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

/// Stops the targeted services' containers, dependents first, with Compose's progress lines.
async fn stop_project(c: Client, project: Project, targets: BTreeSet<String>, timeout: Option<i64>) -> Result<()> {
    let mut order = plan::start_order(&project, Some(&targets));
    order.reverse();
    for s in order {
        let svc = project.services.get(&s);
        for ctr in containers(&c, &project.name, std::slice::from_ref(&s), OneOff::Exclude, false).await? {
            progress(&format!("Container {}", name(&ctr)), "Stopping");
            stop_container(&c, svc, &id(&ctr), timeout).await?;
            progress(&format!("Container {}", name(&ctr)), "Stopped");
        }
    }
    Ok(())
}

/// Kills the targeted services' running containers at once (the second Ctrl-C).
async fn kill_project(c: &Client, project: &Project, targets: &BTreeSet<String>) -> Result<()> {
    let services: Vec<String> = targets.iter().cloned().collect();
    for ctr in containers(c, &project.name, &services, OneOff::Exclude, false).await? {
        match c.post(&format!("{}/kill", container_path(&id(&ctr)))).await {
            Ok(_) => progress(&format!("Container {}", name(&ctr)), "Killed"),
            Err(e) if ApiError::is(&e, 404) || ApiError::is(&e, 409) => {}
            Err(e) => return Err(e.context(format!("kill {}", name(&ctr)))),
        }
    }
    Ok(())
}

/// Attached `up` after the containers were created: attaches, starts in dependency order, follows the output until
/// the containers exit, and handles Ctrl-C (graceful stop, then kill). Returns `up`'s exit code.
pub async fn up_attached(
    c: &Client,
    project: &Project,
    targets: &BTreeSet<String>,
    attached: BTreeSet<String>,
    opts: Options,
    wait_timeout: Duration,
) -> Result<i32> {
    let mut sigint = signal(SignalKind::interrupt()).context("handle SIGINT")?;
    let names: Vec<String> = attached.iter().cloned().collect();
    let list =
        if names.is_empty() { Vec::new() } else { containers(c, &project.name, &names, OneOff::Exclude, true).await? };
    let displays: Vec<String> = list.iter().map(|v| prefix_of(v, &project.name)).collect();
    eprintln!("Attaching to {}", displays.join(", "));
    let mut f = Followers {
        c: c.clone(),
        project: project.name.clone(),
        width: displays.iter().map(String::len).max().unwrap_or(0),
        opts: opts.clone(),
        lock: Arc::new(Mutex::new(())),
        colors: HashMap::new(),
        active: HashSet::new(),
        seen: HashSet::new(),
        restarting: HashSet::new(),
        resume: HashMap::new(),
        tasks: tokio::task::JoinSet::new(),
    };
    for (v, d) in list.iter().zip(&displays) {
        f.prefix(d);
        // Already running (not started by this `up`): followed from now on, as there is no start event to come.
        if v.get("State").and_then(Value::as_str) == Some("running") {
            f.follow(&id(v), v);
        }
    }
    let (etx, erx) = mpsc::unbounded_channel();
    let events = tokio::spawn(start_events(c.clone(), project.name.clone(), opts.since.clone(), etx));
    let (ptx, prx) = mpsc::unbounded_channel();
    let (xtx, mut xrx) = mpsc::unbounded_channel();
    let attached_ids: BTreeSet<String> = list.iter().map(id).collect();
    let follow = follow_all(f, attached, erx, prx, xtx);
    tokio::pin!(follow);
    let hooks = super::lifecycle::HookOutput { prefix: opts.prefix };
    let start = start_services(c, project, targets, wait_timeout, Some(&hooks));
    tokio::pin!(start);
    let stopper = || {
        let (c, project, targets, t) = (c.clone(), project.clone(), targets.clone(), opts.stop_timeout);
        tokio::spawn(async move {
            stop_project(c.clone(), project.clone(), targets.clone(), t).await?;
            // A start that was on its way when the start phase was dropped is stopped too.
            stop_project(c, project, targets, t).await
        })
    };
    let mut starting = true;
    let mut interrupted = false;
    let mut aborting = false;
    let mut code = 0;
    let mut stop: Option<tokio::task::JoinHandle<Result<()>>> = None;
    let mut exits_open = true;
    loop {
        tokio::select! {
            r = &mut follow => { r?; break; }
            r = &mut start, if starting => {
                starting = false;
                if let Some(n) = &opts.started {
                    n.notify_one();
                }
                // Only the attached containers keep `up` waiting.
                let mut mine: Vec<String> = r?.into_iter().filter(|i| attached_ids.contains(i)).collect();
                mine.sort();
                let _ = ptx.send(Phase::Started(mine));
                if aborting && stop.is_none() {
                    stop = Some(stopper());
                }
            }
            x = xrx.recv(), if exits_open => match x {
                None => exits_open = false,
                Some((service, c)) if opts.abort => {
                    // As Compose: the code is the first exited container's, or `--exit-code-from`'s.
                    let from = opts.exit_code_from.as_deref();
                    if from.is_none_or(|s| s == service) && (!aborting || from.is_some()) {
                        code = c.max(0) as i32;
                    }
                    if !aborting && !interrupted {
                        aborting = true;
                        eprintln!("Aborting on container exit...");
                        // As Compose, the start phase runs to its end (the containers it starts are stopped with
                        // the others); the stop begins then.
                        if !starting {
                            stop = Some(stopper());
                        }
                    }
                }
                Some(_) => {}
            },
            r = until_done(&mut stop), if stop.is_some() => {
                stop = None;
                r.context("stop task")??;
                let _ = ptx.send(Phase::Stopped);
                // Stopped: the streams end with the containers; bounded in case one hangs on.
                match tokio::time::timeout(Duration::from_secs(10), &mut follow).await {
                    Ok(r) => r?,
                    Err(_) => eprintln!("WARN[0000] the containers' output did not end after they stopped"),
                }
                break;
            }
            _ = sigint.recv() => {
                if interrupted || aborting {
                    kill_project(c, project, targets).await?;
                    interrupted = true;
                    break;
                }
                interrupted = true;
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                starting = false;
                stop = Some(stopper());
            }
        }
    }
    // A graceful stop still running when the output ended is waited for; a Ctrl-C meanwhile kills at once.
    if stop.is_some() {
        tokio::select! {
            r = until_done(&mut stop) => { r.context("stop task")??; }
            _ = sigint.recv() => {
                interrupted = true;
                kill_project(c, project, targets).await?;
            }
        }
    }
    events.abort();
    Ok(if interrupted { 130 } else { code })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn project(yaml: &str) -> Project {
        let dir = std::env::temp_dir().join(format!("berth-attach-{}-{}", std::process::id(), yaml.len()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        std::fs::write(dir.join("compose.yaml"), yaml).expect("the compose file");
        let opts = berth_compose::Options {
            working_dir: dir.clone(),
            project_name: Some("p".into()),
            environment: BTreeMap::new(),
            ..Default::default()
        };
        let p = berth_compose::load(&opts).expect("the project loads");
        let _ = std::fs::remove_dir_all(&dir);
        p
    }

    #[test]
    fn which_services_are_attached() {
        let p = project(
            "services:\n  db:\n    image: x\n  web:\n    image: x\n    depends_on: [db]\n  worker:\n    image: x\n",
        );
        let all: BTreeSet<String> = p.services.keys().cloned().collect();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        // Everything by default.
        assert_eq!(attached_services(&p, &all, &[], &[], &[], false), set(&["db", "web", "worker"]));
        // `up web` (targets web and db): web only, unless --attach-dependencies.
        let t = set(&["db", "web"]);
        assert_eq!(attached_services(&p, &t, &s(&["web"]), &[], &[], false), set(&["web"]));
        assert_eq!(attached_services(&p, &t, &s(&["web"]), &[], &[], true), set(&["db", "web"]));
        // --attach wins; --no-attach removes.
        assert_eq!(attached_services(&p, &all, &[], &s(&["db"]), &[], false), set(&["db"]));
        assert_eq!(attached_services(&p, &all, &[], &[], &s(&["db"]), false), set(&["web", "worker"]));
        // Unknown names are ignored.
        assert_eq!(attached_services(&p, &all, &[], &s(&["nope"]), &[], false), set(&[]));
    }
}
