//! Moving images and file systems in and out: `save`, `load`, `export`.

use std::io::{IsTerminal, Write};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::{container_path, image_path};
use crate::StatusError;
use crate::client::{ChannelBody, Client, empty, next_chunk, query};

/// `berth save`.
#[derive(Args, Debug)]
#[command(override_usage = "berth save [OPTIONS] IMAGE [IMAGE...]")]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// Save only the given platform (accepted; berth keeps one platform per image)
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Vec<String>,
    /// IMAGE
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// `berth load`.
#[derive(Args, Debug)]
#[command(override_usage = "berth load [OPTIONS]")]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Load only the given platform (accepted; berth loads the host's)
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Vec<String>,
}

/// `berth export`.
#[derive(Args, Debug)]
#[command(override_usage = "berth export [OPTIONS] CONTAINER")]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

const TERMINAL: &str = "cowardly refusing to save to a terminal. Use the -o flag or redirect";

/// Streams the answer to `GET path` to `output` (a file written aside and renamed into place, so a failure leaves
/// no half-written file) or to stdout.
async fn download(c: &Client, path: &str, output: Option<&str>) -> Result<i32> {
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(StatusError::exit(1, TERMINAL));
    }
    let resp = c.call(Method::GET, path, empty(), false).await?;
    let mut body = resp.into_body();
    match output {
        Some(file) => {
            let dest = std::path::Path::new(file);
            let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = dir.join(format!(".{name}.berth-tmp-{}", std::process::id()));
            // Written straight with `write(2)` as chunks arrive (the connection is read on the runtime's other
            // thread meanwhile), not synced: as the docker CLI, which writes a temporary file and renames it.
            let result = async {
                let mut f = std::fs::File::create(&tmp)
                    .with_context(|| format!("failed to save to {file}: cannot create {}", tmp.display()))?;
                while let Some(chunk) = next_chunk(&mut body).await? {
                    f.write_all(&chunk).with_context(|| format!("failed to save to {file}"))?;
                }
                drop(f);
                std::fs::rename(&tmp, dest).with_context(|| format!("failed to save to {file}"))
            }
            .await;
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => {
            let mut out = crate::stream::StdOutput::new();
            while let Some(chunk) = next_chunk(&mut body).await? {
                crate::stream::Output::write(&mut out, 1, &chunk)?;
            }
            crate::stream::Output::flush(&mut out)?;
        }
    }
    Ok(0)
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<i32> {
    let path = if a.images.len() == 1 {
        format!("{}/get", image_path(&a.images[0]))
    } else {
        let pairs: Vec<(&str, String)> = a.images.iter().map(|i| ("names", i.clone())).collect();
        format!("/images/get{}", query(&pairs))
    };
    download(c, &path, a.output.as_deref()).await
}

pub async fn export(c: &Client, a: ExportArgs) -> Result<i32> {
    download(c, &format!("{}/export", container_path(&a.container)), a.output.as_deref()).await
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<i32> {
    let reader: Box<dyn std::io::Read + Send> = match &a.input {
        Some(f) => Box::new(std::fs::File::open(f).with_context(|| format!("open {f}"))?),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(StatusError::exit(1, "requested load from stdin, but stdin is empty"));
            }
            Box::new(std::io::stdin())
        }
    };
    let (tx, body) = ChannelBody::channel();
    tokio::task::spawn_blocking(move || pump_blocking(reader, tx));
    let q = if a.quiet { "?quiet=1" } else { "" };
    let resp = c.call(Method::POST, &format!("/images/load{q}"), body, false).await?;
    let mut body = resp.into_body();
    let mut text = String::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("decode the load progress {line:?}"))?;
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            return Err(StatusError::exit(1, e.to_string()));
        }
        if let Some(s) = v["stream"].as_str() {
            print!("{s}");
        }
    }
    let _ = std::io::stdout().flush();
    Ok(0)
}

/// Copies a file (or stdin) into a request body channel from a blocking thread, in large reads.
fn pump_blocking(mut reader: Box<dyn std::io::Read + Send>, tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) {
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                break;
            }
        };
        buf.truncate(n);
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            break;
        }
    }
}

/// Copies `reader` into a request body channel.
pub async fn pump(
    mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    loop {
        let mut buf = vec![0u8; 256 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                buf.truncate(n);
                if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                break;
            }
        }
    }
}
