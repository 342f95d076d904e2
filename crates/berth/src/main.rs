//! `berth`: the Berth command-line client, a drop-in for the `docker` CLI (`alias docker=berth`). It speaks the
//! Docker Engine API to `berthd` (or any Docker-compatible daemon) over a Unix socket.
//!
//! `main.rs` holds the command line (clap) and the dispatch; the commands live in [`commands`], the HTTP client
//! in [`client`], stream handling in [`stream`], Go templates in [`template`], lists in [`formatter`] and
//! [`table`], and docker's units in [`units`].

/// `print!` for the program's output: when stdout is a closed pipe the program ends as a Go program does (by
/// `SIGPIPE`), instead of panicking.
macro_rules! out {
    ($($t:tt)*) => { $crate::write_stdout(format_args!($($t)*)) };
}

/// `println!` with [`out!`]'s behaviour.
macro_rules! outln {
    () => { $crate::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => {{ $crate::write_stdout(format_args!($($t)*)); $crate::write_stdout(format_args!("\n")) }};
}

mod client;
mod commands;
mod formatter;
mod stream;
mod table;
mod template;
mod units;

use clap::{CommandFactory, Parser, Subcommand};

use crate::client::Client;
use crate::commands::{
    build, compose, container, context, cp, events, exec, image, inspect, kube, logs, network, pod, ps, registry, run,
    stats, system, transfer, volume,
};

/// An error that ends the program with a given exit status (docker's `cli.StatusError`); an empty message means
/// that everything was printed already.
#[derive(Debug)]
pub struct StatusError {
    /// The exit status.
    pub code: i32,
    /// What to print on stderr.
    pub message: String,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

impl StatusError {
    /// Exit with `code`, printing `message` (if any).
    pub fn exit(code: i32, message: impl Into<String>) -> anyhow::Error {
        StatusError { code, message: message.into() }.into()
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    override_usage = "berth [OPTIONS] COMMAND",
    disable_version_flag = true,
    after_help = "Run 'berth COMMAND --help' for more information on a command."
)]
struct Cli {
    /// Daemon socket to connect to: unix:///path, tcp://host:port or ssh://[user@]host[:port]
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    host: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    tls: bool,
    /// Use TLS and verify the remote (also DOCKER_TLS_VERIFY)
    #[arg(long)]
    tlsverify: bool,
    /// Trust certs signed only by this CA (default: $DOCKER_CERT_PATH or ~/.docker, ca.pem)
    #[arg(long, value_name = "PATH")]
    tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default: $DOCKER_CERT_PATH or ~/.docker, cert.pem)
    #[arg(long, value_name = "PATH")]
    tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default: $DOCKER_CERT_PATH or ~/.docker, key.pem)
    #[arg(long, value_name = "PATH")]
    tlskey: Option<std::path::PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Location of client config files
    #[arg(long, value_name = "DIR")]
    config: Option<String>,
    /// Name of the context to use to connect to the daemon
    #[arg(short = 'c', long, value_name = "NAME")]
    context: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::ImportArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(transfer::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Export a container's filesystem as a tar archive
    Export(transfer::ExportArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Authenticate to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Run Berth's own registry server
    Registry {
        #[command(subcommand)]
        cmd: registry::RegistryCmd,
    },
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Show the Berth version information
    Version(system::VersionArgs),
    /// Print the web dashboard's address with a one-time login link (berthd --ui)
    Ui,
    /// Attach local standard input, output, and error streams to a running container
    Attach(container::AttachArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::DiffArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Return low-level information on Berth objects
    Inspect(inspect::InspectArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Pause all processes within one or more containers
    Pause(container::Targets),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// Remove one or more images
    Rmi(image::RmiArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::Targets),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::Targets),
    /// Define and run multi-container applications
    #[command(arg_required_else_help = true)]
    Compose(compose::ComposeArgs),
    /// Manage containers
    #[command(arg_required_else_help = true)]
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// Manage images
    #[command(arg_required_else_help = true)]
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Manage networks
    #[command(arg_required_else_help = true)]
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Manage pods (Podman's): containers sharing one network namespace and published ports
    #[command(arg_required_else_help = true)]
    Pod {
        #[command(subcommand)]
        cmd: PodCmd,
    },
    /// Manage Berth
    #[command(arg_required_else_help = true)]
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Generate Kubernetes YAML from containers, pods or compose projects, and play it
    #[command(arg_required_else_help = true)]
    Kube {
        #[command(subcommand)]
        cmd: kube::KubeCmd,
    },
    /// Manage contexts (shared with the docker CLI)
    #[command(arg_required_else_help = true)]
    Context {
        #[command(subcommand)]
        cmd: context::ContextCmd,
    },
    /// Manage volumes
    #[command(arg_required_else_help = true)]
    Volume {
        #[command(subcommand)]
        cmd: VolumeCmd,
    },
    /// Manage builds
    #[command(arg_required_else_help = true)]
    Builder {
        #[command(subcommand)]
        cmd: BuilderCmd,
    },
}

#[derive(Subcommand, Debug)]
enum BuilderCmd {
    /// Remove build cache
    Prune(build::PruneArgs),
}

#[derive(Subcommand, Debug)]
enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(container::AttachArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::DiffArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(transfer::ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::TypedInspectArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Pause all processes within one or more containers
    Pause(container::Targets),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Remove one or more containers
    #[command(visible_aliases = ["remove"])]
    Rm(container::RmArgs),
    /// Remove all stopped containers
    Prune(system::ContainerPruneArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::Targets),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::Targets),
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(transfer::SaveArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Display detailed information on one or more images
    Inspect(inspect::TypedInspectArgs),
    /// List images
    #[command(visible_aliases = ["list"])]
    Ls(image::ImagesArgs),
    /// Remove one or more images
    #[command(visible_aliases = ["remove"])]
    Rm(image::RmiArgs),
    /// Remove unused images
    Prune(system::ImagePruneArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
}

#[derive(Subcommand, Debug)]
enum PodCmd {
    /// Create a pod (its namespace holder is Berth's own, no image needed)
    Create(pod::CreateArgs),
    /// Display detailed information on one or more pods
    Inspect(pod::InspectArgs),
    /// Send a signal to the running containers of one or more pods
    Kill(pod::KillArgs),
    /// Show the logs of a pod's containers, each line prefixed with the container's name
    Logs(pod::LogsArgs),
    /// List pods (`pod ps` is the same list, as Podman's; `berth ps --pod` lists the containers with their pod)
    #[command(visible_aliases = ["list", "ps"])]
    Ls(pod::LsArgs),
    /// Restart one or more pods (stop, then start)
    Restart(pod::StopArgs),
    /// Remove one or more pods with their containers
    #[command(visible_aliases = ["remove"])]
    Rm(pod::RmArgs),
    /// Start one or more pods: the namespace holder, then every container
    Start(pod::PodsArgs),
    /// Stop one or more pods: every container, then the namespace holder
    Stop(pod::StopArgs),
}

#[derive(Subcommand, Debug)]
enum NetworkCmd {
    /// Connect a container to a network
    Connect(network::ConnectArgs),
    /// Create a network
    Create(network::CreateArgs),
    /// Disconnect a container from a network
    Disconnect(network::DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(network::InspectArgs),
    /// List networks
    #[command(visible_aliases = ["list"])]
    Ls(network::LsArgs),
    /// Remove all unused networks
    Prune(network::PruneArgs),
    /// Remove one or more networks
    #[command(visible_aliases = ["remove"])]
    Rm(network::RmArgs),
}

#[derive(Subcommand, Debug)]
enum VolumeCmd {
    /// Create a volume
    Create(volume::CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(volume::InspectArgs),
    /// List volumes
    Ls(volume::LsArgs),
    /// Remove unused local volumes
    Prune(volume::PruneArgs),
    /// Remove one or more volumes
    Rm(volume::RmArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCmd {
    /// Show berth disk usage
    Df(system::DfArgs),
    /// Remove unused data
    Prune(system::SystemPruneArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Proxy the stdio stream to the daemon connection (what `ssh://` hosts run on the remote side)
    #[command(name = "dial-stdio")]
    DialStdio,
}

/// Exit status of clap's usage errors, as docker's for a bad flag.
const USAGE_EXIT: i32 = 125;

/// Whether clap's "unexpected argument" is a flag (docker: 125) rather than one argument too many (docker: 1).
fn unknown_is_flag(e: &clap::Error) -> bool {
    use clap::error::{ContextKind, ContextValue};
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(a)) => a.starts_with('-'),
        _ => true,
    }
}

fn parse_cli() -> Cli {
    match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    out!("{}", e.render());
                    std::process::exit(0);
                }
                // docker: a wrong number of arguments is a plain error (1), a bad flag a usage error (125).
                ErrorKind::MissingRequiredArgument | ErrorKind::TooFewValues | ErrorKind::MissingSubcommand => 1,
                ErrorKind::UnknownArgument if !unknown_is_flag(&e) => 1,
                _ => USAGE_EXIT,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}

fn main() {
    let cli = parse_cli();
    if cli.version {
        outln!("Berth version {}, build berth", env!("CARGO_PKG_VERSION"));
        return;
    }
    let Some(cmd) = cli.cmd else {
        let _ = Cli::command().print_help();
        outln!();
        return;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let tls = client::TlsOptions {
        tls: cli.tls,
        verify: cli.tlsverify,
        ca: cli.tlscacert,
        cert: cli.tlscert,
        key: cli.tlskey,
    };
    let code = rt.block_on(async move {
        if let Cmd::Context { cmd } = cmd {
            return context::run(cmd, cli.context.as_deref()).unwrap_or_else(|e| report(&e));
        }
        let (host, tls) = match endpoint(cli.host, cli.context.as_deref(), tls) {
            Ok(ht) => ht,
            Err(e) => return report(&e),
        };
        match dispatch(host, &tls, cmd).await {
            Ok(code) => code,
            Err(e) => report(&e),
        }
    });
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Exit at once: a blocking read of stdin may still be pending in the runtime.
    std::process::exit(code);
}

/// Writes to stdout; a closed pipe ends the program with `SIGPIPE` (what `head` expects of a producer).
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // SAFETY: restoring the default disposition and raising the signal has no memory-safety preconditions.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        std::process::exit(1);
    }
}

/// Prints an error docker's way and returns the exit status.
fn report(e: &anyhow::Error) -> i32 {
    if let Some(s) = e.downcast_ref::<StatusError>() {
        if !s.message.is_empty() {
            eprintln!("{}", s.message);
        }
        return s.code;
    }
    eprintln!("{e:#}");
    1
}

/// The daemon to speak to: `-H`, else `DOCKER_HOST`, else the context's (`--context`, `DOCKER_CONTEXT`,
/// `currentContext`), with the flags' TLS options or the context's.
fn endpoint(
    host: Option<String>,
    ctx: Option<&str>,
    tls: client::TlsOptions,
) -> anyhow::Result<(Option<String>, client::TlsOptions)> {
    if host.is_some() && ctx.is_some() {
        anyhow::bail!("conflicting options: cannot specify both --host and --context");
    }
    let env_host = std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty());
    if host.is_some() || (env_host && ctx.is_none()) {
        return Ok((host, tls));
    }
    match context::endpoint(&context::current(ctx))? {
        Some((h, t)) => Ok((Some(h), t)),
        None => Ok((host, tls)),
    }
}

async fn connect(host: Option<String>, tls: &client::TlsOptions) -> anyhow::Result<Client> {
    let mut c = Client::new(host, tls)?;
    c.negotiate().await?;
    Ok(c)
}

async fn dispatch(host: Option<String>, tls: &client::TlsOptions, cmd: Cmd) -> anyhow::Result<i32> {
    // `version` prints the client's part even without a daemon.
    if let Cmd::Version(a) = cmd {
        let mut c = Client::new(host, tls)?;
        let reachable = c.negotiate().await;
        return system::version(&c, reachable, a).await;
    }
    // `logout` only edits the client's configuration.
    if let Cmd::Logout(a) = cmd {
        return registry::logout(a).await;
    }
    // `registry` is a server of its own, no daemon involved.
    if let Cmd::Registry { cmd } = cmd {
        return registry::registry(cmd).await;
    }
    // `compose config` and `compose version` need no daemon.
    let cmd = match cmd {
        Cmd::Compose(a) if a.is_offline() => return compose::offline(a),
        Cmd::Kube { cmd } if cmd.is_offline() => return kube::offline(cmd),
        other => other,
    };
    // `system dial-stdio` relays bytes; HTTP is the caller's (an `ssh://` client on another host).
    if let Cmd::System { cmd: SystemCmd::DialStdio } = cmd {
        return system::dial_stdio(&Client::new(host, tls)?).await;
    }
    let c = connect(host, tls).await?;
    match cmd {
        Cmd::Run(a) => run::run(&c, a).await,
        Cmd::Build(a) => build::build(&c, a).await,
        Cmd::Builder { cmd: BuilderCmd::Prune(a) } => build::prune(&c, a).await,
        Cmd::Exec(a) => exec::exec(&c, a).await,
        Cmd::Ps(a) => ps::ps(&c, a).await,
        Cmd::Stats(a) => stats::stats(&c, a).await,
        Cmd::Images(a) => image::images(&c, a).await,
        Cmd::Import(a) => image::import(&c, a).await,
        Cmd::Save(a) => transfer::save(&c, a).await,
        Cmd::Load(a) => transfer::load(&c, a).await,
        Cmd::Export(a) => transfer::export(&c, a).await,
        Cmd::Pull(a) => registry::pull(&c, a).await,
        Cmd::Push(a) => registry::push(&c, a).await,
        Cmd::Login(a) => registry::login(&c, a).await,
        Cmd::Logout(_) | Cmd::Registry { .. } => Ok(0),
        Cmd::Info(a) => system::info(&c, a).await,
        Cmd::Events(a) => events::events(&c, a).await,
        Cmd::Version(_) => Ok(0),
        Cmd::Ui => system::ui(&c).await,
        Cmd::Attach(a) => container::attach(&c, a).await,
        Cmd::Cp(a) => cp::cp(&c, a).await,
        Cmd::Create(a) => run::create(&c, a).await,
        Cmd::History(a) => image::history(&c, a).await,
        Cmd::Inspect(a) => inspect::inspect(&c, a).await,
        Cmd::Kill(a) => container::kill(&c, a).await,
        Cmd::Logs(a) => logs::logs(&c, a).await,
        Cmd::Pause(a) => container::pause(&c, a, true).await,
        Cmd::Port(a) => container::port(&c, a).await,
        Cmd::Rename(a) => container::rename(&c, a).await,
        Cmd::Restart(a) => container::restart(&c, a).await,
        Cmd::Update(a) => container::update(&c, a).await,
        Cmd::Rm(a) => container::rm(&c, a).await,
        Cmd::Rmi(a) => image::rmi(&c, a).await,
        Cmd::Start(a) => container::start(&c, a).await,
        Cmd::Stop(a) => container::stop(&c, a).await,
        Cmd::Tag(a) => image::tag(&c, a).await,
        Cmd::Top(a) => container::top(&c, a).await,
        Cmd::Commit(a) => container::commit(&c, a).await,
        Cmd::Diff(a) => container::diff(&c, a).await,
        Cmd::Unpause(a) => container::pause(&c, a, false).await,
        Cmd::Wait(a) => container::wait(&c, a).await,
        Cmd::Compose(a) => compose::compose(&c, a).await,
        Cmd::Kube { cmd } => kube::kube(&c, cmd).await,
        Cmd::Container { cmd } => match cmd {
            ContainerCmd::Attach(a) => container::attach(&c, a).await,
            ContainerCmd::Cp(a) => cp::cp(&c, a).await,
            ContainerCmd::Create(a) => run::create(&c, a).await,
            ContainerCmd::Exec(a) => exec::exec(&c, a).await,
            ContainerCmd::Export(a) => transfer::export(&c, a).await,
            ContainerCmd::Inspect(a) => inspect::inspect(&c, a.with_type("container")).await,
            ContainerCmd::Kill(a) => container::kill(&c, a).await,
            ContainerCmd::Logs(a) => logs::logs(&c, a).await,
            ContainerCmd::Ls(a) => ps::ps(&c, a).await,
            ContainerCmd::Stats(a) => stats::stats(&c, a).await,
            ContainerCmd::Pause(a) => container::pause(&c, a, true).await,
            ContainerCmd::Port(a) => container::port(&c, a).await,
            ContainerCmd::Rename(a) => container::rename(&c, a).await,
            ContainerCmd::Restart(a) => container::restart(&c, a).await,
            ContainerCmd::Update(a) => container::update(&c, a).await,
            ContainerCmd::Rm(a) => container::rm(&c, a).await,
            ContainerCmd::Prune(a) => system::container_prune(&c, a).await,
            ContainerCmd::Run(a) => run::run(&c, a).await,
            ContainerCmd::Start(a) => container::start(&c, a).await,
            ContainerCmd::Stop(a) => container::stop(&c, a).await,
            ContainerCmd::Top(a) => container::top(&c, a).await,
            ContainerCmd::Commit(a) => container::commit(&c, a).await,
            ContainerCmd::Diff(a) => container::diff(&c, a).await,
            ContainerCmd::Unpause(a) => container::pause(&c, a, false).await,
            ContainerCmd::Wait(a) => container::wait(&c, a).await,
        },
        Cmd::Image { cmd } => match cmd {
            ImageCmd::History(a) => image::history(&c, a).await,
            ImageCmd::Build(a) => build::build(&c, a).await,
            ImageCmd::Import(a) => image::import(&c, a).await,
            ImageCmd::Load(a) => transfer::load(&c, a).await,
            ImageCmd::Save(a) => transfer::save(&c, a).await,
            ImageCmd::Pull(a) => registry::pull(&c, a).await,
            ImageCmd::Push(a) => registry::push(&c, a).await,
            ImageCmd::Inspect(a) => inspect::inspect(&c, a.with_type("image")).await,
            ImageCmd::Ls(a) => image::images(&c, a).await,
            ImageCmd::Rm(a) => image::rmi(&c, a).await,
            ImageCmd::Prune(a) => system::image_prune(&c, a).await,
            ImageCmd::Tag(a) => image::tag(&c, a).await,
        },
        Cmd::Network { cmd } => match cmd {
            NetworkCmd::Connect(a) => network::connect(&c, a).await,
            NetworkCmd::Create(a) => network::create(&c, a).await,
            NetworkCmd::Disconnect(a) => network::disconnect(&c, a).await,
            NetworkCmd::Inspect(a) => inspect::inspect(&c, a.into_inspect()).await,
            NetworkCmd::Ls(a) => network::ls(&c, a).await,
            NetworkCmd::Prune(a) => network::prune(&c, a).await,
            NetworkCmd::Rm(a) => network::rm(&c, a).await,
        },
        Cmd::Pod { cmd } => match cmd {
            PodCmd::Create(a) => pod::create(&c, a).await,
            PodCmd::Inspect(a) => pod::inspect(&c, a).await,
            PodCmd::Kill(a) => pod::each(&c, &a.pods, "kill", &[("signal", a.signal.clone())]).await,
            PodCmd::Logs(a) => pod::logs(&c, a).await,
            PodCmd::Ls(a) => pod::ls(&c, a).await,
            PodCmd::Restart(a) => pod::each(&c, &a.pods, "restart", &pod::time_query(a.time)).await,
            PodCmd::Rm(a) => pod::rm(&c, a).await,
            PodCmd::Start(a) => pod::each(&c, &a.pods, "start", &[]).await,
            PodCmd::Stop(a) => pod::each(&c, &a.pods, "stop", &pod::time_query(a.time)).await,
        },
        Cmd::Volume { cmd } => match cmd {
            VolumeCmd::Create(a) => volume::create(&c, a).await,
            VolumeCmd::Inspect(a) => volume::inspect(&c, a).await,
            VolumeCmd::Ls(a) => volume::ls(&c, a).await,
            VolumeCmd::Prune(a) => volume::prune(&c, a).await,
            VolumeCmd::Rm(a) => volume::rm(&c, a).await,
        },
        Cmd::Context { .. } => Ok(0),
        Cmd::System { cmd } => match cmd {
            SystemCmd::Df(a) => system::df(&c, a).await,
            SystemCmd::Prune(a) => system::system_prune(&c, a).await,
            SystemCmd::Info(a) => system::info(&c, a).await,
            SystemCmd::Events(a) => events::events(&c, a).await,
            SystemCmd::DialStdio => Ok(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        match Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())) {
            Ok(c) => c,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn run_stops_parsing_at_the_image() {
        let Some(Cmd::Run(r)) =
            parse(&["run", "--rm", "-e", "A=1", "-it", "busybox", "sh", "-c", "echo -e x", "--rm"]).cmd
        else {
            panic!("not run")
        };
        assert!(r.opts.rm && r.opts.interactive && r.opts.tty);
        assert_eq!(r.opts.env, vec!["A=1"]);
        assert_eq!(r.args, vec!["busybox", "sh", "-c", "echo -e x", "--rm"]);
        let Some(Cmd::Run(r)) = parse(&["run", "busybox", "-e", "X"]).cmd else { panic!("not run") };
        assert!(r.opts.env.is_empty());
        assert_eq!(r.args, vec!["busybox", "-e", "X"]);
    }

    #[test]
    fn exec_and_flags() {
        let Some(Cmd::Exec(e)) =
            parse(&["exec", "-i", "-e", "X=1", "-w", "/tmp", "-u", "65534", "host", "sh", "-c", "exit 7"]).cmd
        else {
            panic!("not exec")
        };
        assert_eq!(e.args, vec!["host", "sh", "-c", "exit 7"]);
        assert!(e.interactive);
        let Some(Cmd::Ps(p)) = parse(&["ps", "-aq", "--filter", "status=exited", "-f", "name=x"]).cmd else {
            panic!("not ps")
        };
        assert!(p.all && p.quiet);
        assert_eq!(p.filter.len(), 2);
        let Some(Cmd::Stop(s)) = parse(&["stop", "-t", "1", "a", "b"]).cmd else { panic!("not stop") };
        assert_eq!(s.time, Some(1));
        assert_eq!(s.containers, vec!["a", "b"]);
        let Some(Cmd::Run(r)) = parse(&["run", "-h", "box", "--sig-proxy=false", "-m", "512m", "busybox"]).cmd else {
            panic!("not run")
        };
        assert_eq!(r.opts.hostname.as_deref(), Some("box"));
        assert!(!r.sig_proxy);
        let Some(Cmd::Import(i)) = parse(&["import", "-c", "CMD [\"sh\"]", "-", "busybox:latest"]).cmd else {
            panic!("not import")
        };
        assert_eq!(i.source, "-");
        let Some(Cmd::Container { cmd: ContainerCmd::Ls(_) }) = parse(&["container", "ps"]).cmd else {
            panic!("not ls")
        };
    }

    #[test]
    fn network_commands() {
        let Some(Cmd::Network { cmd: NetworkCmd::Create(n) }) = parse(&[
            "network",
            "create",
            "-d",
            "bridge",
            "--subnet",
            "10.0.0.0/8,fd00::/64",
            "--gateway",
            "10.0.0.1",
            "--label",
            "a=1",
            "--label",
            "b",
            "-o",
            "x=y",
            "--internal",
            "--ipv6",
            "net",
        ])
        .cmd
        else {
            panic!("not network create")
        };
        assert_eq!(n.subnet, vec!["10.0.0.0/8", "fd00::/64"]);
        assert_eq!((n.label.len(), n.internal, n.ipv6, n.ipv4), (2, true, Some(true), None));
        assert_eq!((n.driver.as_str(), n.ipam_driver.as_str(), n.name.as_str()), ("bridge", "default", "net"));
        let Some(Cmd::Network { cmd: NetworkCmd::Create(n) }) = parse(&["network", "create", "--ipv4=false", "n"]).cmd
        else {
            panic!("not network create")
        };
        assert_eq!(n.ipv4, Some(false));
        assert!(Cli::try_parse_from(["berth", "network", "create", "--label", "=x", "n"]).is_err());
        let Some(Cmd::Network { cmd: NetworkCmd::Connect(c) }) =
            parse(&["network", "connect", "--alias", "a,b", "--alias", "c", "--ip", "10.0.0.5", "net", "web"]).cmd
        else {
            panic!("not network connect")
        };
        assert_eq!(c.alias, vec!["a", "b", "c"]);
        assert_eq!((c.network.as_str(), c.container.as_str()), ("net", "web"));
        let Some(Cmd::Network { cmd: NetworkCmd::Ls(l) }) =
            parse(&["network", "list", "-q", "-f", "driver=bridge"]).cmd
        else {
            panic!("not network ls")
        };
        assert!(l.quiet && l.filter == vec!["driver=bridge"]);
        let Some(Cmd::Network { cmd: NetworkCmd::Rm(r) }) = parse(&["network", "remove", "-f", "a", "b"]).cmd else {
            panic!("not network rm")
        };
        assert!(r.force && r.networks == vec!["a", "b"]);
        let Some(Cmd::Network { cmd: NetworkCmd::Prune(p) }) =
            parse(&["network", "prune", "-f", "--filter", "until=1h"]).cmd
        else {
            panic!("not network prune")
        };
        assert!(p.force && p.filter == vec!["until=1h"]);
        assert!(Cli::try_parse_from(["berth", "network", "prune", "extra"]).is_err());
        let Some(Cmd::Network { cmd: NetworkCmd::Inspect(i) }) = parse(&["network", "inspect", "-v", "a", "b"]).cmd
        else {
            panic!("not network inspect")
        };
        let i = i.into_inspect();
        assert!(i.verbose && i.typ.as_deref() == Some("network") && i.names.len() == 2);
        let Some(Cmd::Network { cmd: NetworkCmd::Disconnect(d) }) =
            parse(&["network", "disconnect", "-f", "n", "c"]).cmd
        else {
            panic!("not network disconnect")
        };
        assert!(d.force);
        let Some(Cmd::Port(p)) = parse(&["port", "web", "80/udp"]).cmd else { panic!("not port") };
        assert_eq!((p.container.as_str(), p.port.as_deref()), ("web", Some("80/udp")));
        let Some(Cmd::Container { cmd: ContainerCmd::Port(p) }) = parse(&["container", "port", "web"]).cmd else {
            panic!("not container port")
        };
        assert!(p.port.is_none());
    }

    #[test]
    fn extra_arguments_are_not_bad_flags() {
        let err = |args: &[&str]| match Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => e,
        };
        assert!(!unknown_is_flag(&err(&["network", "create", "a", "b"])));
        assert!(!unknown_is_flag(&err(&["network", "prune", "extra"])));
        assert!(unknown_is_flag(&err(&["network", "ls", "--bogus"])));
    }

    #[test]
    fn compose_flags_before_and_after_the_command() {
        let Some(Cmd::Compose(c)) = parse(&[
            "compose",
            "-f",
            "a.yaml",
            "-f",
            "b.yaml",
            "-p",
            "x",
            "--profile",
            "dev",
            "logs",
            "-f",
            "-t",
            "web",
        ])
        .cmd
        else {
            panic!("not compose")
        };
        assert_eq!(c.project.file.len(), 2);
        assert_eq!(c.project.project_name.as_deref(), Some("x"));
        let compose::ComposeCmd::Logs(l) = c.cmd else { panic!("not logs") };
        assert!(l.follow && l.timestamps && l.services == vec!["web"]);
        let Some(Cmd::Compose(c)) =
            parse(&["compose", "exec", "-T", "--index", "2", "web", "sh", "-c", "echo -e x"]).cmd
        else {
            panic!("not compose")
        };
        let compose::ComposeCmd::Exec(e) = c.cmd else { panic!("not exec") };
        assert!(e.no_tty && e.index == 2 && e.args == vec!["web", "sh", "-c", "echo -e x"]);
        let Some(Cmd::Compose(c)) = parse(&["compose", "up", "-d", "--scale", "web=3", "--wait", "web"]).cmd else {
            panic!("not compose")
        };
        assert!(!c.is_offline() && matches!(c.cmd, compose::ComposeCmd::Up(ref u) if u.detach && u.wait));
    }

    #[test]
    fn kube_flags() {
        let Some(Cmd::Kube { cmd: kube::KubeCmd::Play(p) }) =
            parse(&["kube", "play", "--start=false", "--replace", "--publish", "127.0.0.1:8080:80", "app.yaml"]).cmd
        else {
            panic!("not kube play")
        };
        assert!(!p.start && p.replace && !p.build && p.publish == vec!["127.0.0.1:8080:80"] && p.file == "app.yaml");
        let Some(Cmd::Kube { cmd: kube::KubeCmd::Play(p) }) = parse(&["kube", "play", "--start", "-"]).cmd else {
            panic!("not kube play")
        };
        assert!(p.start && p.file == "-");
        let Some(Cmd::Kube { cmd }) = parse(&["kube", "generate", "-f", "compose.yaml", "--type", "job", "-s"]).cmd
        else {
            panic!("not kube")
        };
        assert!(cmd.is_offline());
        let Some(Cmd::Kube { cmd: kube::KubeCmd::Generate(g) }) = parse(&["kube", "generate", "web", "db"]).cmd else {
            panic!("not kube generate")
        };
        assert!(g.names == vec!["web", "db"] && g.output.typ == "pod" && !g.output.service);
        let Some(Cmd::Compose(c)) = parse(&["compose", "kube", "--service"]).cmd else { panic!("not compose") };
        assert!(c.is_offline());
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
