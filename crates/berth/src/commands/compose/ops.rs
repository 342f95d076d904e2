//! The commands on a project's containers: `config`, `ps`, `logs` (prefixed, coloured, followed), `exec`, `run`,
//! `start`, `stop`, `restart`, `rm`, `kill`, `pause`, `unpause`, `top`, `images`, `port`, `pull`, `push`.

use anyhow::{Context as _, Result, anyhow, bail};
use berth_compose::Project;
use berth_compose::plan::{self, ContainerSpec, LABEL_SERVICE};
use clap::{ArgAction, Args};
use hyper::Method;
use serde_json::{Value, json};

use super::{OneOff, ProjectArgs, containers, id, label, name, number, progress};
use crate::StatusError;
use crate::client::{BodyReader, Client, empty, query};
use crate::commands::{container_path, exec as exec_cmd, image_path, run as run_cmd};
use crate::{formatter, stream};

/// `config`'s flags.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Format the output. Values: [yaml | json]
    #[arg(long = "format", value_name = "FORMAT", default_value = "yaml")]
    pub format: String,
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long = "services")]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long = "volumes")]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long = "networks")]
    pub networks: bool,
    /// Print model variables and default values
    #[arg(long = "variables")]
    pub variables: bool,
    /// Print environment used for interpolation
    #[arg(long = "environment")]
    pub environment: bool,
    /// Don't interpolate environment variables
    #[arg(long = "no-interpolate")]
    pub no_interpolate: bool,
    /// Don't check model consistency - warning: may produce invalid Compose output
    #[arg(long = "no-consistency")]
    pub no_consistency: bool,
    /// Don't resolve service env files
    #[arg(long = "no-env-resolution")]
    pub no_env_resolution: bool,
    /// Don't normalize compose model (accepted: the model is always normalised)
    #[arg(long = "no-normalize", hide = true)]
    pub no_normalize: bool,
    /// Don't resolve file paths (accepted: paths are always resolved)
    #[arg(long = "no-path-resolution", hide = true)]
    pub no_path_resolution: bool,
    /// Print the profile names, one per line
    #[arg(long = "profiles")]
    pub profiles: bool,
    /// Print the image names, one per line
    #[arg(long = "images")]
    pub images: bool,
    /// Print the service config hash, one per line ("*" for all services)
    #[arg(long = "hash", value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Save to file (default to stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// Services to show
    #[arg(value_name = "SERVICE")]
    pub service_names: Vec<String>,
}

/// `berth compose config`.
pub fn config(p: &ProjectArgs, a: ConfigArgs) -> Result<i32> {
    let mut opts = super::options(p, &a.service_names)?;
    // `--variables` lists the templates as written.
    opts.no_interpolate = a.no_interpolate || a.variables;
    opts.no_consistency = a.no_consistency;
    opts.no_env_resolution = a.no_env_resolution;
    let project = super::load_with(&opts)?;
    if a.quiet {
        return Ok(0);
    }
    let text = if a.services {
        lines(project.services.keys().cloned())
    } else if a.volumes {
        lines(project.volumes.keys().cloned())
    } else if a.networks {
        lines(project.networks.keys().cloned())
    } else if a.environment {
        lines(project.environment.iter().map(|(k, v)| format!("{k}={v}")))
    } else if a.variables {
        variables_text(&project, &a.format)?
    } else if a.profiles {
        let mut ps: Vec<String> =
            project.services.values().chain(project.disabled.values()).flat_map(|s| s.profiles.clone()).collect();
        ps.sort();
        ps.dedup();
        lines(ps.into_iter())
    } else if a.images {
        lines(project.services.values().map(|s| plan::image_name(&project.name, s)))
    } else if let Some(h) = &a.hash {
        let names: Vec<String> = if h == "*" {
            project.services.keys().cloned().collect()
        } else {
            h.split(',').map(str::to_string).collect()
        };
        lines(names.iter().map(|n| format!("{n} {}", plan::config_hash(&project, n))))
    } else {
        let mut model = project.model.clone();
        if !a.service_names.is_empty()
            && let Some(svcs) = model.get_mut("services").and_then(Value::as_object_mut)
        {
            let keep = plan::with_dependencies(&project, &a.service_names);
            svcs.retain(|k, _| keep.contains(k));
        }
        // Without interpolation the templates are printed as written (not re-escaped), as Compose does.
        berth_compose::config_text(&model, &a.format, !opts.no_interpolate)?
    };
    match &a.output {
        Some(f) => std::fs::write(f, &text).with_context(|| format!("write {f}"))?,
        None => out!("{text}"),
    }
    Ok(0)
}

/// `config --variables`: the variables the files' templates use, with Compose's columns (`--format json`: an
/// object by name, as compose-go's `Variable`s).
fn variables_text(project: &Project, format: &str) -> Result<String> {
    let mut vars = std::collections::BTreeMap::new();
    for f in &project.config_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        let (doc, _) = berth_compose::load::parse_yaml(&f.display().to_string(), &text)?;
        berth_compose::interpolate::variables(&doc, &mut vars);
    }
    let rows: Vec<Value> = vars
        .iter()
        .map(|(name, v)| {
            json!({"Name": name, "Required": v.required, "DefaultValue": v.default, "PresenceValue": v.alternate})
        })
        .collect();
    if format == "json" {
        let m: serde_json::Map<String, Value> =
            rows.iter().map(|r| (r["Name"].as_str().unwrap_or("").to_string(), r.clone())).collect();
        return Ok(format!("{}\n", serde_json::to_string_pretty(&m)?));
    }
    formatter::render(
        "table",
        "table {{.Name}}\t{{.Required}}\t{{.DefaultValue}}\t{{.PresenceValue}}",
        VARIABLES_HEADERS,
        &rows,
    )
}

const VARIABLES_HEADERS: formatter::Headers = &[
    ("Name", "NAME"),
    ("Required", "REQUIRED"),
    ("DefaultValue", "DEFAULT VALUE"),
    ("PresenceValue", "ALTERNATE VALUE"),
];

fn lines(items: impl Iterator<Item = String>) -> String {
    items.map(|s| format!("{s}\n")).collect()
}

/// The project a command acts on: the file's, or just a name (`-p`) when there is no file.
pub(super) fn project_or_name(p: &ProjectArgs, services: &[String]) -> Result<(Option<Project>, String)> {
    match super::load(p, services) {
        Ok(pr) => {
            let n = pr.name.clone();
            Ok((Some(pr), n))
        }
        Err(e) => match super::project_name_only(p) {
            Some(n)
                if e.downcast_ref::<berth_compose::Error>()
                    .is_some_and(|e| matches!(e, berth_compose::Error::NoFile { .. })) =>
            {
                Ok((None, n))
            }
            _ => Err(e),
        },
    }
}

/// `ps`'s flags.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Display services
    #[arg(long = "services")]
    pub services_only: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long = "format", value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Filter services by a property (status=running)
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Option<String>,
    /// Filter services by status
    #[arg(long = "status", value_name = "STATUS")]
    pub status: Vec<String>,
    /// Services to list
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

const PS_HEADERS: formatter::Headers = &[
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Service", "SERVICE"),
    ("CreatedAt", "CREATED"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Project", "PROJECT"),
    ("Publishers", "PUBLISHERS"),
    ("ExitCode", "EXIT CODE"),
    ("Health", "HEALTH"),
];

fn ports_text(ports: &Value) -> String {
    let mut out = Vec::new();
    for p in ports.as_array().into_iter().flatten() {
        let private = p["PrivatePort"].as_u64().unwrap_or(0);
        let typ = p["Type"].as_str().unwrap_or("tcp");
        match p["PublicPort"].as_u64() {
            Some(public) => {
                let ip = p["IP"].as_str().unwrap_or("0.0.0.0");
                let ip = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
                out.push(format!("{ip}:{public}->{private}/{typ}"));
            }
            None => out.push(format!("{private}/{typ}")),
        }
    }
    out.dedup();
    out.join(", ")
}

/// `berth compose ps`.
pub async fn ps(c: &Client, p: &ProjectArgs, a: PsArgs) -> Result<i32> {
    let (_, pname) = project_or_name(p, &[])?;
    let oneoff = if a.all { OneOff::Include } else { OneOff::Exclude };
    let mut list = containers(c, &pname, &a.services, oneoff, a.all || !a.status.is_empty()).await?;
    let mut statuses = a.status.clone();
    if let Some(f) = &a.filter
        && let Some(s) = f.strip_prefix("status=")
    {
        statuses.push(s.to_string());
    }
    if !statuses.is_empty() {
        list.retain(|v| v["State"].as_str().is_some_and(|s| statuses.iter().any(|x| x == s)));
    }
    if a.quiet {
        for v in &list {
            outln!("{}", id(v));
        }
        return Ok(0);
    }
    if a.services_only {
        let mut names: Vec<String> = list.iter().filter_map(|v| label(v, LABEL_SERVICE).map(str::to_string)).collect();
        names.dedup();
        for n in names {
            outln!("{n}");
        }
        return Ok(0);
    }
    let now = std::time::SystemTime::now();
    let rows: Vec<Value> = list
        .iter()
        .map(|v| {
            let created = v["Created"].as_i64().unwrap_or(0);
            let status = v["Status"].as_str().unwrap_or("").to_string();
            let health = if status.contains("(healthy)") {
                "healthy"
            } else if status.contains("(unhealthy)") {
                "unhealthy"
            } else if status.contains("(health: starting)") {
                "starting"
            } else {
                ""
            };
            json!({
                "ID": id(v).chars().take(12).collect::<String>(),
                "Name": name(v),
                "Image": v["Image"],
                "Command": format!("\"{}\"", crate::commands::ps::ellipsis(v["Command"].as_str().unwrap_or(""), 20)),
                "Service": label(v, LABEL_SERVICE).unwrap_or(""),
                "CreatedAt": crate::units::go_time_string(created),
                "RunningFor": crate::units::ago(created, now),
                "Status": status,
                "State": v["State"],
                "Ports": ports_text(&v["Ports"]),
                "Project": pname,
                "Labels": v["Labels"],
                "Publishers": v["Ports"].as_array().map(|ps| ps.iter().map(|p| json!({"URL": p["IP"], "TargetPort": p["PrivatePort"], "PublishedPort": p["PublicPort"], "Protocol": p["Type"]})).collect::<Vec<_>>()).unwrap_or_default(),
                "ExitCode": 0,
                "Health": health,
            })
        })
        .collect();
    let table = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}";
    out!("{}", formatter::render(&a.format, table, PS_HEADERS, &rows)?);
    Ok(0)
}

/// `logs`' flags.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long = "tail", value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N")]
    pub index: Option<u64>,
    /// Services to show
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Compose's colours for log prefixes, in its order.
const COLORS: [&str; 12] = ["36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91"];

/// One container's output as complete lines, each with the container's prefix, to stdout (stderr's lines too, as
/// Compose does). Lines gather and go out when the input has nothing more ready, each batch in one write under
/// stdout's lock, so the lines of several containers never mix.
struct Prefixed {
    prefix: String,
    /// The unfinished line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    out: Vec<u8>,
}

impl Prefixed {
    fn new(prefix: String) -> Prefixed {
        Prefixed { prefix, partial: [Vec::new(), Vec::new()], out: Vec::new() }
    }

    /// The unfinished lines, ended, and out.
    fn finish(&mut self) -> std::io::Result<()> {
        for i in 0..2 {
            if !self.partial[i].is_empty() {
                self.out.extend_from_slice(self.prefix.as_bytes());
                self.out.append(&mut self.partial[i]);
                self.out.push(b'\n');
            }
        }
        stream::Output::flush(self)
    }
}

impl stream::Output for Prefixed {
    fn write(&mut self, s: u8, data: &[u8]) -> std::io::Result<()> {
        let partial = &mut self.partial[usize::from(s == 2)];
        let mut rest = data;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.out.extend_from_slice(self.prefix.as_bytes());
            self.out.append(partial);
            self.out.extend_from_slice(&rest[..=i]);
            rest = &rest[i + 1..];
        }
        partial.extend_from_slice(rest);
        if self.out.len() >= 128 * 1024 {
            return stream::Output::flush(self);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = stream::write_out(1, &self.out);
        self.out.clear();
        r
    }
}

/// The log prefix of a container: `web-1  | ` (the service and number; padded to `width`).
pub(super) fn prefix_of(v: &Value, project: &str) -> String {
    let n = name(v);
    match label(v, LABEL_SERVICE) {
        Some(s) if n == format!("{project}-{s}-{}", number(v)) => format!("{s}-{}", number(v)),
        _ => n,
    }
}

/// The `i`-th of Compose's prefix colours.
pub(super) fn color_code(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// A log line's prefix: `name` padded to `width`, then `  | `, in the `color`-th of Compose's colours if any.
pub(crate) fn prefix_text(name: &str, width: usize, color: Option<usize>) -> String {
    match color {
        Some(i) => format!("\x1b[{}m{name:<width$}  |\x1b[0m ", COLORS[i % COLORS.len()]),
        None => format!("{name:<width$}  | "),
    }
}

/// Streams one container's `GET /logs` (query `q`) to stdout, each complete line with `prefix` (lines of several
/// containers interleave whole, in arrival order: [`Prefixed`] writes whole batches of lines); returns when the stream
/// ends.
pub(crate) async fn stream_logs(c: Client, cid: String, q: Vec<(&'static str, String)>, prefix: String) -> Result<()> {
    let tty = c
        .get_json::<Value>(&format!("{}/json", container_path(&cid)))
        .await
        .map(|i| i.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false))
        .unwrap_or(false);
    let path = format!("{}/logs{}", container_path(&cid), query(&q));
    let resp = c.call(Method::GET, &path, empty(), false).await?;
    let reader = BodyReader::new(resp.into_body());
    let mut out = Prefixed::new(prefix);
    let copied = if tty { stream::copy_raw(reader, &mut out).await } else { stream::demux(reader, &mut out).await };
    out.finish()?;
    copied?;
    Ok(())
}

/// How [`follow_logs`] shows the logs.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Coloured prefixes.
    pub color: bool,
    /// Prefixes at all.
    pub prefix: bool,
    /// Docker's timestamps.
    pub timestamps: bool,
    /// `--tail`.
    pub tail: String,
    /// Follow the streams until they end.
    pub follow: bool,
    /// Only this replica.
    pub index: Option<u64>,
    /// Return when the first stream ends (`up --abort-on-container-exit`).
    pub abort_on_exit: bool,
    /// Only output since this UNIX time (`up` shows this run's output, not the previous runs').
    pub since: Option<String>,
    /// The stop timeout for `abort_on_exit`.
    pub stop_timeout: Option<i64>,
}

/// Streams the logs of the project's containers (of `services`), each line prefixed; with `follow` until every
/// stream ends (the containers stopped), or the first one with `abort_on_exit`.
pub async fn follow_logs(c: &Client, project: &str, services: &[String], o: &LogOptions) -> Result<()> {
    let (color, with_prefix, timestamps, tail, follow) = (o.color, o.prefix, o.timestamps, o.tail.as_str(), o.follow);
    let mut list = containers(c, project, services, OneOff::Exclude, true).await?;
    if let Some(i) = o.index {
        list.retain(|v| number(v) == i);
    }
    let width = list.iter().map(|v| prefix_of(v, project).len()).max().unwrap_or(0);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, v) in list.iter().enumerate() {
        let prefix =
            if with_prefix { prefix_text(&prefix_of(v, project), width, color.then_some(i)) } else { String::new() };
        let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string()), ("tail", tail.to_string())];
        if follow {
            q.push(("follow", "1".into()));
        }
        if timestamps {
            q.push(("timestamps", "1".into()));
        }
        if let Some(t) = &o.since {
            q.push(("since", t.clone()));
        }
        tasks.spawn(stream_logs(c.clone(), id(v), q, prefix));
    }
    let mut aborted = false;
    while let Some(t) = tasks.join_next().await {
        t.map_err(|e| anyhow!("log task: {e}"))??;
        if o.abort_on_exit && !aborted {
            // One container ended: the others are stopped, and their streams drained to their end.
            aborted = true;
            eprintln!("Aborting on container exit...");
            for v in list.iter().rev() {
                super::up::stop_container(c, None, &id(v), o.stop_timeout).await?;
            }
        }
    }
    Ok(())
}

/// `berth compose logs`.
pub async fn logs(c: &Client, p: &ProjectArgs, a: LogsArgs) -> Result<i32> {
    let (_, pname) = project_or_name(p, &[])?;
    let opts = LogOptions {
        color: !a.no_color && super::colors(p),
        prefix: !a.no_log_prefix,
        timestamps: a.timestamps,
        tail: a.tail.clone(),
        follow: a.follow,
        index: a.index,
        abort_on_exit: false,
        since: None,
        stop_timeout: None,
    };
    follow_logs(c, &pname, &a.services, &opts).await?;
    Ok(0)
}

/// `exec`'s flags.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N", default_value_t = 1)]
    pub index: u64,
    /// Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Give extended privileges to the process
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Run the command as this user
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// SERVICE COMMAND [ARGS...]
    #[arg(value_name = "SERVICE", required = true, trailing_var_arg = true, num_args = 1.., action = ArgAction::Append)]
    pub args: Vec<String>,
}

/// The container of `service` with replica number `index` (`running`: only a running one), after checking that the
/// file (if there is one) has the service.
pub(super) async fn service_container(
    c: &Client,
    p: &ProjectArgs,
    service: &str,
    index: u64,
    running: bool,
) -> Result<Value> {
    let (project, pname) = project_or_name(p, &[])?;
    if project.as_ref().is_some_and(|pr| !pr.services.contains_key(service)) {
        return Err(StatusError::exit(1, format!("no such service: {service}")));
    }
    let list = containers(c, &pname, &[service.to_string()], OneOff::Exclude, !running).await?;
    list.into_iter().find(|v| number(v) == index).ok_or_else(|| {
        let what = if running { "is not running" } else { "has no" };
        StatusError::exit(1, format!("service {service:?} {what} container #{index}"))
    })
}

/// `berth compose exec`.
pub async fn exec(c: &Client, p: &ProjectArgs, a: ExecArgs) -> Result<i32> {
    let Some((service, cmd)) = a.args.split_first() else { bail!("exec needs a service and a command") };
    if cmd.is_empty() {
        bail!("exec needs a command to run in {service}");
    }
    let ctr = service_container(c, p, service, a.index, true).await?;
    let tty = !a.no_tty && stream::stdin_is_terminal();
    let args = exec_cmd::ExecArgs {
        detach: a.detach,
        detach_keys: None,
        env: a.env,
        env_file: Vec::new(),
        interactive: !a.detach,
        privileged: a.privileged,
        tty,
        user: a.user,
        workdir: a.workdir,
        args: std::iter::once(id(&ctr)).chain(cmd.iter().cloned()).collect(),
    };
    exec_cmd::exec(c, args).await
}

/// `run`'s flags.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Override the entrypoint of the image
    #[arg(long = "entrypoint", value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Automatically remove the container when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    pub service_ports: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive", default_value_t = true)]
    pub interactive: bool,
    /// Run as specified username or uid
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Build image before starting container
    #[arg(long = "build")]
    pub build: bool,
    /// SERVICE [COMMAND] [ARGS...]
    #[arg(value_name = "SERVICE", required = true, trailing_var_arg = true, num_args = 1.., action = ArgAction::Append)]
    pub args: Vec<String>,
}

/// `berth compose run`.
pub async fn run(c: &Client, p: &ProjectArgs, a: RunArgs) -> Result<i32> {
    let Some((service, cmd)) = a.args.split_first() else { bail!("run needs a service") };
    let project = super::load(p, std::slice::from_ref(service))?;
    let Some(svc) = project.services.get(service) else { bail!("no such service: {service}") };
    let mut wanted = std::collections::BTreeSet::new();
    wanted.insert(service.clone());
    if !a.no_deps {
        let deps: Vec<String> = svc.depends_on.keys().cloned().collect();
        if !deps.is_empty() {
            let up = super::up::UpArgs { detach: true, services: deps, ..super::up::UpArgs::default() };
            let mut up = up;
            up.pull = "missing".into();
            up.wait_timeout = 300;
            Box::pin(super::up::up(c, p, up)).await?;
        }
    }
    super::up::ensure_networks(c, &project, &wanted).await?;
    super::up::ensure_volumes(c, &project, &wanted).await?;
    let images = super::up::ensure_images(c, &project, &wanted, a.build, false, "missing").await?;
    let tty = !a.no_tty && !a.detach && stream::stdin_is_terminal();
    let stdin = a.interactive && !a.detach;
    let entrypoint = match &a.entrypoint {
        Some(e) => Some(berth_compose::normalize::shell_split(e).map_err(|e| anyhow!("--entrypoint: {e}"))?),
        None => None,
    };
    let spec = ContainerSpec {
        number: 1,
        oneoff: Some(plan::slug()),
        image_id: images.get(service).cloned().unwrap_or_default(),
        command: if cmd.is_empty() { None } else { Some(cmd.to_vec()) },
        entrypoint,
        env: a.env.clone(),
        service_ports: a.service_ports,
        tty: Some(tty),
        stdin_open: Some(stdin),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        auto_remove: false,
        name: a.name.clone(),
        replace: None,
    };
    let (cname, body) = plan::container_body(&project, svc, &spec)?;
    let resp = c.post_json(&format!("/containers/create{}", query(&[("name", cname.clone())])), &body).await?;
    let v: Value = serde_json::from_slice(&resp).context("decode the create answer")?;
    let cid = v["Id"].as_str().unwrap_or_default().to_string();
    super::lifecycle::inject_files(c, &project, svc, &cid).await?;
    if a.detach {
        c.post(&format!("{}/start", container_path(&cid))).await?;
        outln!("{cname}");
        return Ok(0);
    }
    let sess = run_cmd::Session {
        id: cid.clone(),
        tty,
        stdin,
        stdout: true,
        stderr: true,
        start: true,
        condition: "next-exit",
        sig_proxy: true,
        detach_keys: None,
    };
    let code = run_cmd::session(c, sess).await;
    if a.rm {
        super::up::remove_container(c, &cid, true).await?;
    }
    code
}

/// Flags of commands that take services only.
#[derive(Args, Debug)]
pub struct ServicesArgs {
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `stop`/`restart` flags.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<i64>,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `rm` flags.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long = "stop")]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `kill` flags.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short = 's', long = "signal", value_name = "SIGNAL", default_value = "SIGKILL")]
    pub signal: String,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Services in start order (all of the project's when none are named), for commands that walk them.
fn ordered(project: &Option<Project>, services: &[String]) -> Option<Vec<String>> {
    let pr = project.as_ref()?;
    let set =
        if services.is_empty() { pr.services.keys().cloned().collect() } else { services.iter().cloned().collect() };
    Some(plan::start_order(pr, Some(&set)))
}

/// Containers of the services in dependency order (reverse: dependents first).
async fn in_order(
    c: &Client,
    p: &ProjectArgs,
    services: &[String],
    reverse: bool,
    all: bool,
) -> Result<(Option<Project>, Vec<Value>)> {
    let (project, pname) = project_or_name(p, &[])?;
    let mut list = containers(c, &pname, services, OneOff::Exclude, all).await?;
    if let Some(order) = ordered(&project, services) {
        let rank =
            |v: &Value| label(v, LABEL_SERVICE).and_then(|s| order.iter().position(|o| o == s)).unwrap_or(usize::MAX);
        list.sort_by_key(|v| (rank(v), number(v)));
    }
    if reverse {
        list.reverse();
    }
    Ok((project, list))
}

/// `berth compose start`.
pub async fn start(c: &Client, p: &ProjectArgs, a: ServicesArgs) -> Result<i32> {
    let (project, list) = in_order(c, p, &a.services, false, true).await?;
    if list.is_empty() {
        bail!("no containers to start");
    }
    for v in &list {
        if let Some(pr) = &project
            && let Some(svc) = label(v, LABEL_SERVICE).and_then(|s| pr.services.get(s))
        {
            for (dep, d) in &svc.depends_on {
                super::up::wait_condition(c, pr, dep, &d.condition, std::time::Duration::from_secs(300)).await?;
            }
        }
        match c.post(&format!("{}/start", container_path(&id(v)))).await {
            Ok(_) => {
                progress(&format!("Container {}", name(v)), "Started");
                if let Some(svc) =
                    project.as_ref().and_then(|pr| label(v, LABEL_SERVICE).and_then(|s| pr.services.get(s)))
                {
                    super::lifecycle::post_start(c, svc, &id(v)).await?;
                }
            }
            Err(e) if crate::client::ApiError::is(&e, 304) => {}
            Err(e) => return Err(e.context(format!("start {}", name(v)))),
        }
    }
    Ok(0)
}

/// `berth compose stop` and `restart`.
pub async fn stop(c: &Client, p: &ProjectArgs, a: StopArgs, restart: bool) -> Result<i32> {
    let mut services = a.services.clone();
    if restart
        && !services.is_empty()
        && let Ok((Some(pr), _)) = project_or_name(p, &[])
    {
        // As Compose v2: restarting a service restarts the services that depend on it with `restart: true`.
        let mut i = 0;
        while i < services.len() {
            for d in super::up::restart_dependents(&pr, &services[i], None) {
                if !services.contains(&d) {
                    services.push(d);
                }
            }
            i += 1;
        }
    }
    let (project, list) = in_order(c, p, &services, !restart, restart).await?;
    for v in &list {
        let svc = project.as_ref().and_then(|pr| label(v, LABEL_SERVICE).and_then(|s| pr.services.get(s)));
        if restart {
            if let Some(svc) = svc {
                super::lifecycle::pre_stop(c, svc, &id(v)).await?;
            }
            let t = a.timeout.or_else(|| svc.and_then(plan::stop_timeout).map(|d| d.as_secs() as i64));
            let q: Vec<(&str, String)> = t.iter().map(|t| ("t", t.to_string())).collect();
            c.post(&format!("{}/restart{}", container_path(&id(v)), query(&q))).await?;
            progress(&format!("Container {}", name(v)), "Started");
            if let Some(svc) = svc {
                super::lifecycle::post_start(c, svc, &id(v)).await?;
            }
        } else {
            super::up::stop_container(c, svc, &id(v), a.timeout).await?;
            progress(&format!("Container {}", name(v)), "Stopped");
        }
    }
    Ok(0)
}

/// `berth compose rm`.
pub async fn rm(c: &Client, p: &ProjectArgs, a: RmArgs) -> Result<i32> {
    let (project, list) = in_order(c, p, &a.services, true, true).await?;
    let mut targets = Vec::new();
    for v in &list {
        let running = v["State"].as_str() == Some("running");
        if running && a.stop {
            let svc = project.as_ref().and_then(|pr| label(v, LABEL_SERVICE).and_then(|s| pr.services.get(s)));
            super::up::stop_container(c, svc, &id(v), None).await?;
        } else if running {
            continue;
        }
        targets.push(v);
    }
    if targets.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    if !a.force {
        let names: Vec<String> = targets.iter().map(|v| name(v)).collect();
        eprintln!("Going to remove {}", names.join(", "));
        if !crate::commands::prompt_for_confirmation("Are you sure?").await? {
            return Ok(0);
        }
    }
    for v in targets {
        super::up::remove_container(c, &id(v), a.volumes).await?;
        progress(&format!("Container {}", name(v)), "Removed");
    }
    Ok(0)
}

/// `berth compose kill`.
pub async fn kill(c: &Client, p: &ProjectArgs, a: KillArgs) -> Result<i32> {
    let (_, list) = in_order(c, p, &a.services, true, false).await?;
    for v in &list {
        c.post(&format!("{}/kill{}", container_path(&id(v)), query(&[("signal", a.signal.clone())]))).await?;
        progress(&format!("Container {}", name(v)), "Killed");
    }
    Ok(0)
}

/// `berth compose pause` / `unpause`.
pub async fn pause(c: &Client, p: &ProjectArgs, a: ServicesArgs, pause: bool) -> Result<i32> {
    let (_, list) = in_order(c, p, &a.services, false, false).await?;
    let what = if pause { "pause" } else { "unpause" };
    for v in &list {
        c.post(&format!("{}/{what}", container_path(&id(v)))).await?;
        progress(&format!("Container {}", name(v)), if pause { "Paused" } else { "Unpaused" });
    }
    Ok(0)
}

/// `berth compose top`.
pub async fn top(c: &Client, p: &ProjectArgs, a: ServicesArgs) -> Result<i32> {
    let (_, list) = in_order(c, p, &a.services, false, false).await?;
    for v in &list {
        let t: Value = c.get_json(&format!("{}/top", container_path(&id(v)))).await?;
        outln!("{}", name(v));
        let mut tw = crate::table::TabWriter::docker();
        let titles: Vec<&str> =
            t["Titles"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        tw.push(&format!("{}\n", titles.join("\t")));
        for row in t["Processes"].as_array().into_iter().flatten() {
            let cells: Vec<&str> =
                row.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            tw.push(&format!("{}\n", cells.join("\t")));
        }
        out!("{}", tw.finish());
        outln!();
    }
    Ok(0)
}

/// `images` flags.
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Format the output. Values: [table | json]
    #[arg(long = "format", value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

const IMAGES_HEADERS: formatter::Headers = &[
    ("ContainerName", "CONTAINER"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Size", "SIZE"),
];

/// `berth compose images`.
pub async fn images(c: &Client, p: &ProjectArgs, a: ImagesArgs) -> Result<i32> {
    let (_, list) = in_order(c, p, &a.services, false, true).await?;
    let mut rows = Vec::new();
    for v in &list {
        let iid = v["ImageID"].as_str().unwrap_or("").to_string();
        let img: Value = c.get_json(&format!("{}/json", image_path(&iid))).await.unwrap_or(Value::Null);
        let reference = v["Image"].as_str().unwrap_or("");
        let (repo, tag) = match reference.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (reference.to_string(), "latest".to_string()),
        };
        if a.quiet {
            outln!("{}", iid);
            continue;
        }
        rows.push(json!({
            "ContainerName": name(v),
            "Repository": repo,
            "Tag": tag,
            "ID": crate::commands::short_id(&iid),
            "Size": crate::units::human_size(img["Size"].as_f64().unwrap_or(0.0)),
        }));
    }
    if !a.quiet {
        let table = "table {{.ContainerName}}\t{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}";
        out!("{}", formatter::render(&a.format, table, IMAGES_HEADERS, &rows)?);
    }
    Ok(0)
}

/// `port` flags.
#[derive(Args, Debug)]
pub struct PortArgs {
    /// index of the container if service has multiple replicas
    #[arg(long = "index", value_name = "N", default_value_t = 1)]
    pub index: u64,
    /// tcp or udp
    #[arg(long = "protocol", value_name = "PROTO", default_value = "tcp")]
    pub protocol: String,
    /// The service
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The private port
    #[arg(value_name = "PRIVATE_PORT")]
    pub port: u16,
}

/// `berth compose port`.
pub async fn port(c: &Client, p: &ProjectArgs, a: PortArgs) -> Result<i32> {
    let ctr = service_container(c, p, &a.service, a.index, true).await?;
    let v: Value = c.get_json(&format!("{}/json", container_path(&id(&ctr)))).await?;
    let key = format!("{}/{}", a.port, a.protocol);
    let binding = v
        .pointer("/NetworkSettings/Ports")
        .and_then(|ps| ps.get(&key))
        .and_then(Value::as_array)
        .and_then(|b| b.first())
        .cloned();
    match binding {
        Some(b) => {
            let ip = b["HostIp"].as_str().unwrap_or("0.0.0.0");
            let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
            outln!("{ip}:{}", b["HostPort"].as_str().unwrap_or(""));
            Ok(0)
        }
        None => Err(StatusError::exit(1, format!("no port {key} for container {}", name(&ctr)))),
    }
}

/// `ls` flags.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only display project names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Format the output. Values: [table | json]
    #[arg(long = "format", value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Filter output based on conditions provided (`name=NAME`)
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `ls --filter`: Compose knows `name` only, matched as Docker's filters match names (the text anywhere in the
/// name, `^`/`$` anchoring it).
fn ls_filter(filters: &[String]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some(("name", v)) => names.push(v.to_string()),
            Some((k, _)) => return Err(StatusError::exit(1, format!("invalid filter '{k}'"))),
            None => return Err(StatusError::exit(1, format!("bad format of filter (expected name=value): {f}"))),
        }
    }
    Ok(names)
}

/// Whether a project name matches a `name` filter (a plain text or one anchored with `^`/`$`).
fn name_matches(pattern: &str, name: &str) -> bool {
    match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
        (Some(p), _) if p.ends_with('$') && !p.is_empty() => Some(name) == p.strip_suffix('$'),
        (Some(p), _) => name.starts_with(p),
        (_, Some(p)) => name.ends_with(p),
        _ => name.contains(pattern),
    }
}

const LS_HEADERS: formatter::Headers = &[("Name", "NAME"), ("Status", "STATUS"), ("ConfigFiles", "CONFIG FILES")];

/// `berth compose ls`: the projects the daemon's containers belong to (by their labels), with their states.
pub async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let names = ls_filter(&a.filter)?;
    let filters = json!({"label": [plan::LABEL_PROJECT]}).to_string();
    let list: Vec<Value> =
        c.get_json(&format!("/containers/json{}", query(&[("all", "1".into()), ("filters", filters)]))).await?;
    let mut projects: std::collections::BTreeMap<String, (std::collections::BTreeMap<String, usize>, String)> =
        std::collections::BTreeMap::new();
    for v in &list {
        let Some(p) = label(v, plan::LABEL_PROJECT) else { continue };
        let e = projects.entry(p.to_string()).or_default();
        *e.0.entry(v["State"].as_str().unwrap_or("unknown").to_string()).or_default() += 1;
        if e.1.is_empty() {
            e.1 = label(v, plan::LABEL_CONFIG_FILES).unwrap_or("").to_string();
        }
    }
    let rows: Vec<Value> = projects
        .iter()
        .filter(|(_, (states, _))| a.all || states.contains_key("running"))
        .filter(|(name, _)| names.iter().all(|n| name_matches(n, name)))
        .map(|(name, (states, files))| {
            let status: Vec<String> = states.iter().map(|(s, n)| format!("{s}({n})")).collect();
            json!({"Name": name, "Status": status.join(", "), "ConfigFiles": files})
        })
        .collect();
    if a.quiet {
        for r in &rows {
            outln!("{}", r["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    out!("{}", formatter::render(&a.format, "table {{.Name}}\t{{.Status}}\t{{.ConfigFiles}}", LS_HEADERS, &rows)?);
    Ok(0)
}

/// `pull`/`push` flags.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Pull without printing progress information
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Ignore images that can't be pulled or pushed
    #[arg(long = "ignore-pull-failures", visible_alias = "ignore-push-failures")]
    pub ignore_failures: bool,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Pulls one image with the CLI's progress display.
pub async fn pull_image(c: &Client, image: &str, quiet: bool) -> Result<()> {
    crate::commands::registry::pull_with_progress(c, image, quiet).await
}

/// `berth compose pull`.
pub async fn pull(c: &Client, p: &ProjectArgs, a: ImageArgs) -> Result<i32> {
    let project = super::load(p, &a.services)?;
    for s in project.services.values().filter(|s| a.services.is_empty() || a.services.contains(&s.name)) {
        let Some(image) = &s.image else { continue };
        if s.build.is_some() && s.pull_policy.as_deref() == Some("build") {
            continue;
        }
        match pull_image(c, image, a.quiet).await {
            Ok(()) => progress(&format!("{} ", s.name), "Pulled"),
            Err(e) if a.ignore_failures || s.build.is_some() => eprintln!("WARN[0000] {}: {e:#}", s.name),
            Err(e) => return Err(e.context(format!("service {:?}", s.name))),
        }
    }
    Ok(0)
}

/// `berth compose push`.
pub async fn push(c: &Client, p: &ProjectArgs, a: ImageArgs) -> Result<i32> {
    let project = super::load(p, &a.services)?;
    for s in project.services.values().filter(|s| a.services.is_empty() || a.services.contains(&s.name)) {
        if s.build.is_none() {
            continue;
        }
        let image = plan::image_name(&project.name, s);
        match crate::commands::registry::push_with_progress(c, &image, a.quiet).await {
            Ok(()) => progress(&format!("{} ", s.name), "Pushed"),
            Err(e) if a.ignore_failures => eprintln!("WARN[0000] {}: {e:#}", s.name),
            Err(e) => return Err(e.context(format!("service {:?}", s.name))),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_columns() {
        let ports = json!([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 53, "Type": "udp"}]);
        assert_eq!(ports_text(&ports), "0.0.0.0:8080->80/tcp, 53/udp");
    }

    #[test]
    fn ls_name_filter() {
        assert_eq!(ls_filter(&["name=web".into()]).expect("ok"), ["web"]);
        assert!(ls_filter(&["status=running".into()]).is_err());
        assert!(name_matches("app", "myapp-1"));
        assert!(name_matches("^my", "myapp"));
        assert!(!name_matches("^app", "myapp"));
        assert!(name_matches("app$", "myapp"));
        assert!(name_matches("^myapp$", "myapp"));
        assert!(!name_matches("^myapp$", "myapp2"));
    }

    #[test]
    fn prefixes() {
        let v = json!({"Names": ["/app-web-2"], "Labels": {LABEL_SERVICE: "web", "com.docker.compose.container-number": "2"}});
        assert_eq!(prefix_of(&v, "app"), "web-2");
        let v =
            json!({"Names": ["/custom"], "Labels": {LABEL_SERVICE: "web", "com.docker.compose.container-number": "1"}});
        assert_eq!(prefix_of(&v, "app"), "custom");
    }
}
