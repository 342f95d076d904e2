//! The commands, one module per family. Helpers shared by several commands live here.

pub mod build;
pub mod build_view;
pub mod compose;
pub mod container;
pub mod context;
pub mod cp;
pub mod events;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod kube;
pub mod logs;
pub mod network;
pub mod opts;
pub mod pod;
pub mod ps;
pub mod registry;
pub mod run;
pub mod stats;
pub mod system;
pub mod transfer;
pub mod volume;

use std::future::Future;

use anyhow::Result;

use crate::StatusError;
use crate::client::encode_path;

/// `/containers/{name}` for a name or ID.
pub fn container_path(name: &str) -> String {
    format!("/containers/{}", encode_path(name))
}

/// `/images/{name}` for a reference or ID.
pub fn image_path(name: &str) -> String {
    format!("/images/{}", encode_path(name))
}

/// `/networks/{name}` for a name or ID.
pub fn network_path(name: &str) -> String {
    format!("/networks/{}", encode_path(name))
}

/// docker's `PromptForConfirmation`: prints `message [y/N] ` on stdout and reads one line of stdin; only `y`
/// (any case) confirms, end of input does not.
pub async fn prompt_for_confirmation(message: &str) -> Result<bool> {
    use tokio::io::AsyncBufReadExt;
    out!("{message} [y/N] ");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin()).read_line(&mut line).await?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

/// Runs `f` for each target like docker's multi-target commands: prints each target that succeeded, then all
/// errors together (exit 1 when any failed).
pub async fn for_each<F, Fut>(targets: &[String], mut f: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut errors = Vec::new();
    for t in targets {
        match f(t.clone()).await {
            Ok(()) => outln!("{t}"),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() { Ok(0) } else { Err(StatusError::exit(1, errors.join("\n"))) }
}

/// The 12-character short form of an ID (`sha256:` dropped).
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}
