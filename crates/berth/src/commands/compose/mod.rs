//! `berth compose`: Compose v2's commands on top of `berth-compose` (which loads and plans the project) and the
//! Engine API (so they drive a real dockerd as well as berthd). `up.rs` converges a project (networks, volumes,
//! images, containers in dependency order, healthy-waits) and takes it `down`; `ops.rs` holds the commands on a
//! project's containers (`ps`, `logs`, `exec`, `run`, `start`, `stop`, ...); `live.rs` the live view (`events`,
//! `stats`); `attach.rs` the attached `up`; `extra.rs` the commands that are `berth`'s own on a service's container
//! (`attach`, `cp`, `commit`, `export`), `wait` and `scale`; `build.rs` the classic `POST /build`; `watch.rs`
//! `develop.watch`; `lifecycle.rs` hooks, injected secrets/configs and files put into containers.

mod attach;
pub(crate) mod build;
mod extra;
pub(crate) mod lifecycle;
mod live;
mod ops;
pub(crate) mod up;
mod watch;

/// `compose logs`' prefixed streams, which `pod logs` shares.
pub(crate) use ops::{prefix_text, stream_logs};

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use berth_compose::plan::{LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};
use berth_compose::{Options, Project};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::{Client, query};

/// `berth compose`'s own flags.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first Compose file)
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Specify an alternate environment file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Specify a profile to enable
    #[arg(long = "profile", value_name = "NAME")]
    pub profile: Vec<String>,
    /// Control when to print ANSI control characters ("never"|"always"|"auto")
    #[arg(long = "ansi", value_name = "WHEN", default_value = "auto")]
    pub ansi: String,
    /// Set type of progress output (auto, tty, plain, json, quiet)
    #[arg(long = "progress", value_name = "TYPE")]
    pub progress: Option<String>,
}

/// `berth compose [OPTIONS] COMMAND`.
#[derive(Args, Debug)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(subcommand)]
    pub cmd: ComposeCmd,
}

/// The compose commands.
#[derive(Subcommand, Debug)]
pub enum ComposeCmd {
    /// Parse, resolve and render compose file in canonical format
    #[command(visible_alias = "convert")]
    Config(ops::ConfigArgs),
    /// Create and start containers
    Up(up::UpArgs),
    /// Stop and remove containers, networks
    Down(up::DownArgs),
    /// Creates containers for a service
    Create(up::CreateArgs),
    /// List containers
    Ps(ops::PsArgs),
    /// View output from containers
    Logs(ops::LogsArgs),
    /// Execute a command in a running container
    Exec(ops::ExecArgs),
    /// Run a one-off command on a service
    Run(ops::RunArgs),
    /// Build or rebuild services
    Build(build::BuildArgs),
    /// Pull service images
    Pull(ops::ImageArgs),
    /// Push service images
    Push(ops::ImageArgs),
    /// Start services
    Start(ops::ServicesArgs),
    /// Stop services
    Stop(ops::StopArgs),
    /// Restart service containers
    Restart(ops::StopArgs),
    /// Removes stopped service containers
    Rm(ops::RmArgs),
    /// Force stop service containers
    Kill(ops::KillArgs),
    /// Pause services
    Pause(ops::ServicesArgs),
    /// Unpause services
    Unpause(ops::ServicesArgs),
    /// Display the running processes
    Top(ops::ServicesArgs),
    /// List images used by the created containers
    Images(ops::ImagesArgs),
    /// Print the public port for a port binding
    Port(ops::PortArgs),
    /// List running compose projects
    Ls(ops::LsArgs),
    /// Receive real time events from containers
    Events(live::EventsArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(live::StatsArgs),
    /// Block until containers of all (or specified) services stop.
    Wait(extra::WaitArgs),
    /// Attach local standard input, output, and error streams to a service's running container
    Attach(extra::AttachArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(extra::CpArgs),
    /// Scale services
    Scale(extra::ScaleArgs),
    /// Create a new image from a service container's changes
    Commit(extra::CommitArgs),
    /// Export a service container's filesystem as a tar archive
    Export(extra::ExportArgs),
    /// Show the Docker Compose version information
    Version(VersionArgs),
    /// Watch build context for service and rebuild/refresh containers when files are updated
    Watch(watch::WatchArgs),
    /// Generate Kubernetes YAML for the project (one pod; see `berth kube generate`)
    Kube(crate::commands::kube::OutputArgs),
}

/// `version`'s flags.
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format the output. Values: [pretty | json]. (Default: pretty)
    #[arg(short = 'f', long = "format", value_name = "FORMAT", default_value = "pretty")]
    pub format: String,
    /// Shows only Compose's version number
    #[arg(long = "short")]
    pub short: bool,
}

/// The process's environment as a map.
fn environ() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// The loader's options the flags describe; `services` are the ones named on the command line.
pub fn options(p: &ProjectArgs, services: &[String]) -> Result<Options> {
    Ok(Options {
        files: p.file.clone(),
        project_name: p.project_name.clone(),
        project_directory: p.project_directory.clone(),
        env_files: p.env_file.clone(),
        profiles: p.profile.clone(),
        services: services.to_vec(),
        working_dir: std::env::current_dir().context("the current directory")?,
        environment: environ(),
        ..Options::default()
    })
}

/// Loads the project the flags describe; `services` are the ones named on the command line.
pub fn load(p: &ProjectArgs, services: &[String]) -> Result<Project> {
    load_with(&options(p, services)?)
}

/// Loads a project, warning about the variables it uses unset.
pub fn load_with(opts: &Options) -> Result<Project> {
    let project = berth_compose::load(opts)?;
    for v in &project.unset {
        eprintln!("WARN[0000] The \"{v}\" variable is not set. Defaulting to a blank string.");
    }
    Ok(project)
}

/// The project name alone, for commands that work without a file (`down -p x`, `ps -p x`).
pub fn project_name_only(p: &ProjectArgs) -> Option<String> {
    p.project_name.clone().or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok()).filter(|s| !s.is_empty())
}

/// Which of a project's containers to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneOff {
    /// Service containers only.
    Exclude,
    /// Both.
    Include,
}

/// A project's containers (`GET /containers/json` by label), sorted by service and number.
pub async fn containers(
    c: &Client,
    project: &str,
    services: &[String],
    oneoff: OneOff,
    all: bool,
) -> Result<Vec<Value>> {
    let mut labels = vec![format!("{LABEL_PROJECT}={project}")];
    match oneoff {
        OneOff::Exclude => labels.push(format!("{LABEL_ONEOFF}=False")),
        OneOff::Include => {}
    }
    let filters = json!({"label": labels}).to_string();
    let mut q = vec![("filters", filters)];
    if all {
        q.push(("all", "1".into()));
    }
    let list: Vec<Value> = c.get_json(&format!("/containers/json{}", query(&q))).await?;
    let mut list: Vec<Value> = list
        .into_iter()
        .filter(|v| services.is_empty() || services.iter().any(|s| Some(s.as_str()) == label(v, LABEL_SERVICE)))
        .collect();
    list.sort_by(|a, b| {
        (label(a, LABEL_SERVICE), number(a), name(a)).cmp(&(label(b, LABEL_SERVICE), number(b), name(b)))
    });
    Ok(list)
}

/// A label of a container summary or inspection.
pub fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("Labels").or_else(|| v.pointer("/Config/Labels")).and_then(|l| l.get(key)).and_then(Value::as_str)
}

/// The replica number of a container.
pub fn number(v: &Value) -> u64 {
    label(v, LABEL_NUMBER).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// A container summary's name without the `/`.
pub fn name(v: &Value) -> String {
    v.get("Names")
        .and_then(|n| n.get(0))
        .or_else(|| v.get("Name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// A container summary's ID.
pub fn id(v: &Value) -> String {
    v.get("Id").and_then(Value::as_str).unwrap_or("").to_string()
}

/// Whether colours are wanted on stdout.
pub fn colors(p: &ProjectArgs) -> bool {
    use std::io::IsTerminal;
    match p.ansi.as_str() {
        "never" => false,
        "always" => true,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// One line of progress, as Compose prints it on stderr (` ✔ Container x  Started`).
pub fn progress(what: &str, state: &str) {
    eprintln!(" \u{2714} {what}  {state}");
}

impl ComposeArgs {
    /// Whether the command needs no daemon (`config`, `version`).
    pub fn is_offline(&self) -> bool {
        matches!(self.cmd, ComposeCmd::Config(_) | ComposeCmd::Version(_) | ComposeCmd::Kube(_))
    }
}

/// The commands that need no daemon.
pub fn offline(a: ComposeArgs) -> Result<i32> {
    match a.cmd {
        ComposeCmd::Config(x) => ops::config(&a.project, x),
        ComposeCmd::Kube(x) => crate::commands::kube::compose_kube(&a.project, &x),
        ComposeCmd::Version(v) => {
            let version = berth_compose::plan::COMPOSE_VERSION;
            if v.short {
                outln!("{version}");
            } else if v.format == "json" {
                outln!("{}", json!({"version": format!("v{version}")}));
            } else if v.format == "pretty" {
                outln!("Docker Compose version v{version} (berth {})", env!("CARGO_PKG_VERSION"));
            } else {
                anyhow::bail!("ERROR: Invalid format type {:?}", v.format);
            }
            Ok(0)
        }
        _ => anyhow::bail!("this command needs the daemon"),
    }
}

/// `berth compose`.
pub async fn compose(c: &Client, a: ComposeArgs) -> Result<i32> {
    let p = &a.project;
    match a.cmd {
        ComposeCmd::Config(_) | ComposeCmd::Version(_) | ComposeCmd::Kube(_) => {
            offline(ComposeArgs { project: a.project.clone(), cmd: a.cmd })
        }
        ComposeCmd::Wait(x) => extra::wait(c, p, x).await,
        ComposeCmd::Attach(x) => extra::attach(c, p, x).await,
        ComposeCmd::Cp(x) => extra::cp(c, p, x).await,
        ComposeCmd::Scale(x) => extra::scale(c, p, x).await,
        ComposeCmd::Commit(x) => extra::commit(c, p, x).await,
        ComposeCmd::Export(x) => extra::export(c, p, x).await,
        ComposeCmd::Up(x) => up::up(c, p, x).await,
        ComposeCmd::Down(x) => up::down(c, p, x).await,
        ComposeCmd::Create(x) => up::create(c, p, x).await,
        ComposeCmd::Ps(x) => ops::ps(c, p, x).await,
        ComposeCmd::Logs(x) => ops::logs(c, p, x).await,
        ComposeCmd::Exec(x) => ops::exec(c, p, x).await,
        ComposeCmd::Run(x) => ops::run(c, p, x).await,
        ComposeCmd::Build(x) => build::build_cmd(c, p, x).await,
        ComposeCmd::Pull(x) => ops::pull(c, p, x).await,
        ComposeCmd::Push(x) => ops::push(c, p, x).await,
        ComposeCmd::Start(x) => ops::start(c, p, x).await,
        ComposeCmd::Stop(x) => ops::stop(c, p, x, false).await,
        ComposeCmd::Restart(x) => ops::stop(c, p, x, true).await,
        ComposeCmd::Rm(x) => ops::rm(c, p, x).await,
        ComposeCmd::Kill(x) => ops::kill(c, p, x).await,
        ComposeCmd::Pause(x) => ops::pause(c, p, x, true).await,
        ComposeCmd::Unpause(x) => ops::pause(c, p, x, false).await,
        ComposeCmd::Top(x) => ops::top(c, p, x).await,
        ComposeCmd::Images(x) => ops::images(c, p, x).await,
        ComposeCmd::Port(x) => ops::port(c, p, x).await,
        ComposeCmd::Ls(x) => ops::ls(c, x).await,
        ComposeCmd::Events(x) => live::events(c, p, x).await,
        ComposeCmd::Stats(x) => live::stats(c, p, x).await,
        ComposeCmd::Watch(x) => watch::watch_cmd(c, p, x).await,
    }
}
