//! Compose v2's commands on a service's container that are `berth`'s own commands on the container (`attach`, `cp`,
//! `commit`, `export`), `wait` and `scale`.

use anyhow::{Result, bail};
use clap::{ArgAction, Args};
use serde_json::Value;

use super::{OneOff, ProjectArgs, containers, id, number};
use crate::StatusError;
use crate::client::Client;
use crate::commands::{container, cp, transfer};

/// The container of `service` with replica number `index`, in any state.
async fn service_container(c: &Client, p: &ProjectArgs, service: &str, index: u64) -> Result<Value> {
    super::ops::service_container(c, p, service, index, false).await
}

/// `attach`'s flags.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching from a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N", default_value_t = 1)]
    pub index: u64,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", value_name = "BOOL", default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

/// `berth compose attach`: `berth attach` to the service's container.
pub async fn attach(c: &Client, p: &ProjectArgs, a: AttachArgs) -> Result<i32> {
    let ctr = service_container(c, p, &a.service, a.index).await?;
    container::attach(
        c,
        container::AttachArgs {
            detach_keys: a.detach_keys,
            no_stdin: a.no_stdin,
            sig_proxy: a.sig_proxy,
            container: id(&ctr),
        },
    )
    .await
}

/// `cp`'s flags.
#[derive(Args, Debug)]
#[command(
    override_usage = "berth compose cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n       berth compose cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH"
)]
pub struct CpArgs {
    /// Include containers created by the run command
    #[arg(long = "all")]
    pub all: bool,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N")]
    pub index: Option<u64>,
    /// SRC
    #[arg(value_name = "SRC")]
    pub src: String,
    /// DEST
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// `berth compose cp`: `berth cp` with the service's container; into a service, into each of its containers (or
/// the `--index` one), out of one, from its first (or the `--index` one).
pub async fn cp(c: &Client, p: &ProjectArgs, a: CpArgs) -> Result<i32> {
    let (service, path, into) = match (cp::split_container(&a.src), cp::split_container(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("unknown copy direction"),
        (Some((s, path)), None) => (s, path, false),
        (None, Some((s, path))) => (s, path, true),
    };
    let (project, pname) = super::ops::project_or_name(p, &[])?;
    if project.as_ref().is_some_and(|pr| !pr.services.contains_key(service)) {
        return Err(StatusError::exit(1, format!("no such service: {service}")));
    }
    let oneoff = if a.all { OneOff::Include } else { OneOff::Exclude };
    let mut list = containers(c, &pname, &[service.to_string()], oneoff, true).await?;
    match a.index {
        Some(i) => list.retain(|v| number(v) == i),
        None if !into => list.truncate(1),
        None => {}
    }
    if list.is_empty() {
        return Err(StatusError::exit(1, format!("no container found for service {service:?}")));
    }
    for ctr in &list {
        let target = format!("{}:{path}", id(ctr));
        let (src, dest) = if into { (a.src.clone(), target) } else { (target, a.dest.clone()) };
        let args = cp::CpArgs { archive: a.archive, follow_link: a.follow_link, quiet: true, src, dest };
        cp::cp(c, args).await?;
    }
    Ok(0)
}

/// `commit`'s flags.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author", value_name = "STRING")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N", default_value_t = 1)]
    pub index: u64,
    /// Commit message
    #[arg(short = 'm', long = "message", value_name = "STRING")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value = "true", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub pause: bool,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth compose commit`: `berth commit` of the service's container.
pub async fn commit(c: &Client, p: &ProjectArgs, a: CommitArgs) -> Result<i32> {
    let ctr = service_container(c, p, &a.service, a.index).await?;
    container::commit(
        c,
        container::CommitArgs {
            author: a.author,
            change: a.change,
            message: a.message,
            pause: a.pause,
            container: id(&ctr),
            reference: a.reference,
        },
    )
    .await
}

/// `export`'s flags.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N", default_value_t = 1)]
    pub index: u64,
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

/// `berth compose export`: `berth export` of the service's container.
pub async fn export(c: &Client, p: &ProjectArgs, a: ExportArgs) -> Result<i32> {
    let ctr = service_container(c, p, &a.service, a.index).await?;
    transfer::export(c, transfer::ExportArgs { output: a.output, container: id(&ctr) }).await
}

/// `wait`'s flags.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Drops project when the first container stops
    #[arg(long = "down-project")]
    pub down_project: bool,
    /// Services
    #[arg(value_name = "SERVICE", required = true)]
    pub services: Vec<String>,
}

/// `berth compose wait`: waits for the services' running containers (one-off ones too) to stop, printing each
/// one's status code as Compose does; exits with the last one's (after `down` with `--down-project`).
pub async fn wait(c: &Client, p: &ProjectArgs, a: WaitArgs) -> Result<i32> {
    let (_, pname) = super::ops::project_or_name(p, &[])?;
    let list = containers(c, &pname, &a.services, OneOff::Include, false).await?;
    if list.is_empty() {
        bail!("no containers for project {pname:?}");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for v in &list {
        let (c, cid) = (c.clone(), id(v));
        tasks.spawn(async move {
            let body = c.post(&format!("{}/wait", crate::commands::container_path(&cid))).await?;
            let v: Value = serde_json::from_slice(&body)?;
            anyhow::Ok((cid, v["StatusCode"].as_i64().unwrap_or(0)))
        });
    }
    let mut code = 0;
    while let Some(r) = tasks.join_next().await {
        let (cid, status) = r??;
        outln!("container {cid:?} exited with status code {status}");
        code = status;
    }
    if a.down_project {
        let down = super::up::DownArgs {
            volumes: false,
            rmi: None,
            remove_orphans: true,
            timeout: None,
            services: Vec::new(),
        };
        super::up::down(c, p, down).await?;
    }
    Ok(code as i32)
}

/// `scale`'s flags.
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// SERVICE=REPLICAS
    #[arg(value_name = "SERVICE=REPLICAS", required = true)]
    pub scale: Vec<String>,
}

/// `berth compose scale`: `up -d --scale` of the named services, existing containers left as they are.
pub async fn scale(c: &Client, p: &ProjectArgs, a: ScaleArgs) -> Result<i32> {
    let services: Vec<String> =
        a.scale.iter().map(|s| s.split_once('=').map_or(s.as_str(), |(n, _)| n).to_string()).collect();
    let up = super::up::UpArgs {
        detach: true,
        no_recreate: true,
        no_deps: a.no_deps,
        scale: a.scale,
        pull: "missing".into(),
        wait_timeout: 300,
        services,
        ..super::up::UpArgs::default()
    };
    super::up::up(c, p, up).await
}
