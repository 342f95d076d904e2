//! `exec`: create an exec instance, start it on a hijacked connection (or detached), pump the streams, and exit
//! with the process's exit code.

use anyhow::{Context as _, Result, bail};
use berth_api::models::ExecConfig;
use clap::{ArgAction, Args};
use serde_json::{Value, json};

use super::{container_path, opts};
use crate::StatusError;
use crate::client::{Client, encode_path};
use crate::stream;

/// `berth exec`.
#[derive(Args, Debug)]
#[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(value_name = "CONTAINER", required = true, trailing_var_arg = true, num_args = 1.., action = ArgAction::Append)]
    pub args: Vec<String>,
}

/// `berth exec`.
pub async fn exec(c: &Client, a: ExecArgs) -> Result<i32> {
    let Some((container, cmd)) = a.args.split_first() else { bail!("\"berth exec\" requires at least 2 arguments.") };
    if cmd.is_empty() {
        return Err(StatusError::exit(
            1,
            "\"berth exec\" requires at least 2 arguments.\nSee 'berth exec --help'.\n\nUsage:  berth exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\nExecute a command in a running container",
        ));
    }
    let env = opts::env_list(&a.env_file, &a.env)?;
    // docker looks the container up first (for its error message).
    let _: Value = c.get_json(&format!("{}/json", container_path(container))).await?;
    let attach = !a.detach;
    let stdin = attach && a.interactive;
    if a.tty && stdin && !stream::stdin_is_terminal() {
        bail!("the input device is not a TTY");
    }
    let console = if a.tty { stream::terminal_size().map(|(h, w)| vec![h as usize, w as usize]) } else { None };
    let cfg = ExecConfig {
        attach_stdin: Some(stdin),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        console_size: console.clone(),
        detach_keys: a.detach_keys.clone(),
        tty: Some(a.tty),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(cmd.to_vec()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
    };
    let body = c.post_json(&format!("{}/exec", container_path(container)), &cfg).await?;
    let created: Value = serde_json::from_slice(&body).context("decode the exec answer")?;
    let id = created["Id"].as_str().context("the daemon's exec answer has no Id")?.to_string();
    let exec_path = format!("/exec/{}", encode_path(&id));
    if a.detach {
        c.post_json(&format!("{exec_path}/start"), &json!({"Detach": true, "Tty": a.tty})).await?;
        return Ok(0);
    }
    let raw = if a.tty && stdin { stream::RawTerminal::enable() } else { None };
    let mut start = json!({"Detach": false, "Tty": a.tty});
    if let Some(cs) = console {
        start["ConsoleSize"] = json!(cs);
    }
    let conn = c.hijack(&format!("{exec_path}/start"), Some(&start)).await?;
    if a.tty {
        stream::monitor_size(c, format!("{exec_path}/resize"));
    }
    let pumped = stream::pump(conn, a.tty, stdin).await;
    drop(raw);
    pumped?;
    exit_code(c, &exec_path).await
}

/// The exec's exit code: the daemon has recorded it when the stream ends (one inspect, as the docker CLI does).
async fn exit_code(c: &Client, exec_path: &str) -> Result<i32> {
    let v: Value = c.get_json(&format!("{exec_path}/json")).await?;
    Ok(v["ExitCode"].as_i64().unwrap_or(0) as i32)
}
