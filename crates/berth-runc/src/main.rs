//! `berth-runc`: Berth's built-in runtime (`berth_runtime::builtin`, the code `berth-shim` runs) behind runc's command
//! line, so that containerd's `containerd-shim-runc-v2` (and CRI-O, Kubernetes' nodes, `ctr --runc-binary`) can use
//! it where they use runc.
//!
//! As with runc, each command is one short process: `create` sets the container up and exits, leaving its init (now
//! a child of the caller's subreaper, containerd's shim) blocked on `<root>/<id>/exec.fifo` until `start` opens it;
//! the container's state is `<root>/<id>/state.json`; errors go to `--log` (text or JSON lines, which containerd
//! reads) and stderr, with exit code 1.

mod container;
mod log;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Where containers' state lives unless `--root` says otherwise.
const DEFAULT_ROOT: &str = "/run/berth-runc";

#[derive(Parser, Debug)]
#[command(
    name = "berth-runc",
    about = "Berth's container runtime with runc's command line (for containerd, CRI-O, `ctr --runc-binary`)",
    long_about = "Berth's built-in container runtime (the one berth-shim uses) with runc's command line: an OCI bundle \
                  in, a container out. `create` leaves the container's init waiting (status `created`) and exits; \
                  `start` lets it exec the program. The init is re-parented to the caller's subreaper (containerd's \
                  shim), which reaps it. State is kept under --root. Cgroups are managed directly through cgroupfs \
                  (v1, v2 and hybrid hosts, where v1 is used); the systemd cgroup driver is not supported.",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for the containers' state (tmpfs recommended).
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Where to write the log (default: stderr).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Format of the log: `text` (logrus-like `time=... level=... msg=...`) or `json` (one object a line, as
    /// containerd reads it).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Also log debug messages.
    #[arg(long)]
    debug: bool,
    /// Refused by `create` and `run`: Berth manages cgroups through cgroupfs only (set `SystemdCgroup = false` in
    /// containerd's runc options). Accepted, and meaningless, with the other commands.
    #[arg(long)]
    systemd_cgroup: bool,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// The OCI bundle: the directory of `config.json`.
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// A Unix socket to which the master of the container's terminal is sent (`SCM_RIGHTS`), when
    /// `process.terminal` is true.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Write the init's PID (as the host sees it) to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Accepted for compatibility; Berth always uses pivot_root (a ramdisk root is not supported).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for compatibility; Berth never creates a session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Extra descriptors to pass on (only 0 is supported).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// The container's ID (letters, digits, `_`, `+`, `-`, `.`).
    id: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container; its init waits for `start`.
    Create(CreateArgs),
    /// Let a created container's init execute the user's program.
    Start { id: String },
    /// Create and start a container; without --detach, wait for it, delete it and exit with its status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container runs.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Do not delete the container after it exits (without --detach).
        #[arg(long)]
        keep: bool,
    },
    /// Print the container's state as JSON (runc's fields).
    State { id: String },
    /// Send a signal (default SIGTERM; a name with or without SIG, or a number) to the container's init, or with --all
    /// to every process of its cgroup.
    Kill {
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a stopped (or created) container's state and cgroup; --force kills a running one first.
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// Run a process in a running container: from a process JSON (--process) or from the command after the ID.
    Exec(container::ExecArgs),
    /// List the container's processes (`--format json`: their PIDs; `table`: `ps` rows, with `ps`'s options after
    /// the ID).
    Ps {
        #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a running container's resources.
    Update(container::UpdateArgs),
    /// Print what this runtime supports, as JSON (runc's `features` format).
    Features,
    /// List the containers under --root.
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Write a default `config.json` into the bundle directory.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// Not supported (rootless containers).
        #[arg(long)]
        rootless: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let logger = log::Logger::open(cli.log.as_deref(), cli.log_format == "json", cli.debug);
    if cli.version {
        println!(
            "berth-runc version {}\nspec: {}\nlibseccomp: {}",
            env!("CARGO_PKG_VERSION"),
            oci_spec::runtime::VERSION,
            container::libseccomp_version()
        );
        return;
    }
    let Some(command) = cli.command else {
        logger.fatal(&anyhow::anyhow!("a command is required: see berth-runc --help"));
    };
    logger.debug(&format!("berth-runc {command:?}"));
    let ctx = container::Ctx { root: cli.root, systemd_cgroup: cli.systemd_cgroup };
    let result = match command {
        Command::Create(a) => container::create(&ctx, &a).map(|_| 0),
        Command::Start { id } => container::start(&ctx, &id).map(|()| 0),
        Command::Run { create, detach, keep } => container::run(&ctx, &create, detach, keep),
        Command::State { id } => container::state(&ctx, &id).map(|()| 0),
        Command::Kill { all, id, signal } => container::kill(&ctx, &id, signal.as_deref(), all).map(|()| 0),
        Command::Delete { force, id } => container::delete(&ctx, &id, force).map(|()| 0),
        Command::Exec(a) => container::exec(&ctx, &a),
        Command::Ps { format, id, ps_args } => container::ps(&ctx, &id, &format, &ps_args).map(|()| 0),
        Command::Pause { id } => container::pause(&ctx, &id).map(|()| 0),
        Command::Resume { id } => container::resume(&ctx, &id).map(|()| 0),
        Command::Update(a) => container::update(&ctx, &a).map(|()| 0),
        Command::Features => container::features().map(|()| 0),
        Command::List { format, quiet } => container::list(&ctx, &format, quiet).map(|()| 0),
        Command::Spec { bundle, rootless } => container::spec(&bundle, rootless).map(|()| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => logger.fatal(&e),
    }
}
