//! `berth events` / `berth system events`: the daemon's events, replayed from `--since` and followed until `--until`
//! (or interrupted), one line each as the docker CLI prints them, or through `--format`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::Value;

use crate::client::{BodyReader, Client, empty, query};
use crate::commands::opts;
use crate::units::api_timestamp;
use crate::{formatter, stream};

/// `berth events`.
#[derive(Args, Debug)]
#[command(override_usage = "berth events [OPTIONS]")]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since", value_name = "STRING")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until", value_name = "STRING")]
    pub until: Option<String>,
}

/// The docker CLI's line: `2026-12-06T10:00:00.123456789Z container create <id> (image=busybox, name=web)`.
fn default_line(e: &Value) -> String {
    let nanos = e["timeNano"].as_i64().unwrap_or(0).max(0) as u64;
    let t = berth_api::time::rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos));
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let mut line = format!("{t} {} {} {}", s("/Type"), s("/Action"), s("/Actor/ID"));
    if let Some(a) = e.pointer("/Actor/Attributes").and_then(Value::as_object).filter(|a| !a.is_empty()) {
        let mut kv: Vec<String> = a.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
        kv.sort();
        line += &format!(" ({})", kv.join(", "));
    }
    line
}

pub async fn events(c: &Client, a: EventsArgs) -> Result<i32> {
    let now = SystemTime::now();
    let mut q = Vec::new();
    if let Some(s) = &a.since {
        q.push(("since", api_timestamp(s, now)?));
    }
    if let Some(u) = &a.until {
        q.push(("until", api_timestamp(u, now)?));
    }
    if let Some(f) = opts::filters(&a.filter)? {
        q.push(("filters", f));
    }
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(formatter::parse("{{json .}}")?),
        Some(t) => Some(formatter::parse(t)?),
    };
    follow(c, &q, |e| {
        Ok(Some(match &template {
            Some(t) => t.execute(e)?,
            None => default_line(e),
        }))
    })
    .await?;
    Ok(0)
}

/// Follows `GET /events` with the query `q` until the stream ends, writing the line `line` makes of each event (if
/// any) to stdout; the lines go out as soon as the stream has nothing more ready (through the CLI's one output path,
/// `stream::StdOutput`).
pub async fn follow(
    c: &Client,
    q: &[(&str, String)],
    mut line: impl FnMut(&Value) -> Result<Option<String>>,
) -> Result<()> {
    let resp = c.call(Method::GET, &format!("/events{}", query(q)), empty(), false).await?;
    let mut body = BodyReader::new(resp.into_body());
    let mut out = stream::StdOutput::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let result = async {
        loop {
            let n = stream::read_or_flush(&mut body, &mut buf, &mut out).await?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
            let Some(end) = pending.iter().rposition(|b| *b == b'\n') else { continue };
            for l in pending[..end].split(|b| *b == b'\n') {
                let Ok(e) = serde_json::from_slice::<Value>(l) else { continue };
                if let Some(mut text) = line(&e)? {
                    text.push('\n');
                    stream::Output::write(&mut out, 1, text.as_bytes())?;
                }
            }
            pending.drain(..=end);
        }
    }
    .await;
    stream::Output::flush(&mut out)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_line() {
        let e = serde_json::json!({
            "Type": "container", "Action": "create", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
            "time": 1, "timeNano": 1_000_000_005i64,
        });
        assert_eq!(default_line(&e), "1970-01-01T00:00:01.000000005Z container create abc (image=busybox, name=web)");
    }
}
