//! `berth-shim`: one small process per container (and a short-lived helper per exec).
//!
//! * `berth-shim start <bundle>` creates the container described by the bundle and monitors it: it holds the
//!   container's stdio, writes the json-file log, serves attach and control requests on `<bundle>/shim.sock`, reaps
//!   the init process and records its exit. It detaches from `berthd`, so containers outlive the daemon.
//! * `berth-shim exec <bundle> <request.json>` runs one process inside the running container, with this helper's own
//!   stdio, and exits with that process's exit code.
//!
//! The protocol is documented in `berth_runtime::shim`.

mod exec;
mod log;
mod monitor;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

fn main() {
    use berth_runtime::sys::{CloseMode, close_from};
    let args: Vec<String> = std::env::args().collect();
    // berthd runs us from a sealed copy through `/proc/self/fd/N`, which names the process `N`: `berth-shim` in `ps`.
    let _ = nix::sys::prctl::set_name(c"berth-shim");
    // Nothing but what berthd means to give: stdio, and for an exec its report pipe (3) and console socket (4).
    // Whatever else berthd (or whoever started berthd) left open would live as long as the container.
    match args.get(1).map(String::as_str) {
        Some("exec") => close_from(exec::FIRST_UNUSED_FD, CloseMode::Close),
        _ => close_from(3, CloseMode::Close),
    }
    let result = match args.get(1).map(String::as_str) {
        Some("start") if args.len() == 3 => monitor::run(PathBuf::from(&args[2])),
        Some("exec") if args.len() == 4 => exec::run(PathBuf::from(&args[2]), PathBuf::from(&args[3])),
        _ => usage(),
    };
    if let Err(e) = result {
        // Not `eprintln!`: it panics when stderr (berthd's log, maybe gone) cannot be written.
        let _ = writeln!(std::io::stderr(), "berth-shim: {e:#}");
        std::process::exit(1);
    }
}

fn usage() -> Result<()> {
    bail!("usage: berth-shim start BUNDLE | berth-shim exec BUNDLE REQUEST (berth-shim is started by berthd)")
}

/// Reads and parses a JSON file.
fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))
}

/// Resolves Docker's `-u` value against the files under `root` and writes the result into `process`
/// (uid, gid, supplementary groups with `group_add`, and `HOME` when the environment has none).
fn apply_user(
    process: &mut oci_spec::runtime::Process,
    root: &std::path::Path,
    spec: &str,
    group_add: &[String],
) -> Result<()> {
    let user = berth_runtime::user::resolve(root, spec, group_add)?;
    let u = process.user_mut();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    u.set_additional_gids(Some(user.additional_gids));
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
        process.set_env(Some(env));
    }
    Ok(())
}
