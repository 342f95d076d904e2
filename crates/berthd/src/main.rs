//! `berthd`, the Berth daemon: serves the Docker Engine API over a Unix socket and owns all state under its data root.
//!
//! HTTP routes (in `routes/`) parse requests into typed calls on the managers (`containers`, `exec`, images in
//! `berth-store`); the managers never see HTTP. Containers are run by one `berth-shim` per container, so they outlive
//! this process.

#![recursion_limit = "256"]

mod archive;
mod containers;
mod daemon;
mod exec;
mod hijack;
mod logs;
mod mounts;
mod names;
mod routes;
mod server;
mod spec;
mod volumes;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

/// The Berth daemon: a Docker-compatible container engine.
#[derive(Debug, Parser)]
#[command(name = "berthd", version, about)]
struct Args {
    /// Socket to serve the Engine API on.
    #[arg(short = 'H', long, default_value = "unix:///run/berth/berth.sock")]
    host: String,
    /// Where images, containers and the database live.
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Where runtime state lives (bundles, shim sockets); normally on a tmpfs.
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Default runtime: `berth` (built in) or an OCI runtime binary such as `runc` or `crun`.
    #[arg(long, default_value = "berth")]
    runtime: String,
    /// The berth-shim binary (default: `berth-shim` next to this binary, else in PATH).
    #[arg(long)]
    shim: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_max_level(args.log_level).with_writer(std::io::stderr).init();
    let socket = args
        .host
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .with_context(|| format!("unsupported --host {:?}: only unix:// sockets are served", args.host))?;
    let shim = match args.shim {
        Some(p) => p,
        None => default_shim()?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start tokio")?;
    rt.block_on(async move {
        let daemon = daemon::Daemon::open(daemon::Config {
            data_root: args.data_root,
            exec_root: args.exec_root,
            runtime: args.runtime,
            shim,
        })
        .await?;
        server::serve(daemon, &socket).await
    })
}

/// `berth-shim` beside our own executable, else from `PATH`.
fn default_shim() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locate berthd")?;
    let beside = exe.with_file_name("berth-shim");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("berth-shim")).find(|p| p.is_file()))
        .context("berth-shim not found beside berthd nor in PATH (use --shim)")
}
