//! `logs`: the container's log, multiplexed (split into stdout and stderr here) unless it has a TTY.

use std::time::SystemTime;

use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::container_path;
use crate::client::{BodyReader, Client, empty, query};
use crate::stream;
use crate::units::api_timestamp;

/// `berth logs`.
#[derive(Args, Debug)]
#[command(override_usage = "berth logs [OPTIONS] CONTAINER")]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "since", value_name = "TIME")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "until", value_name = "TIME")]
    pub until: Option<String>,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth logs`.
pub async fn logs(c: &Client, a: LogsArgs) -> Result<i32> {
    let info: Value = c.get_json(&format!("{}/json", container_path(&a.container))).await?;
    let tty = info.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
    let now = SystemTime::now();
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if let Some(s) = &a.since {
        q.push(("since", api_timestamp(s, now)?));
    }
    if let Some(u) = &a.until {
        q.push(("until", api_timestamp(u, now)?));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.follow {
        q.push(("follow", "1".into()));
    }
    if a.details {
        q.push(("details", "1".into()));
    }
    q.push(("tail", a.tail.clone()));
    let resp =
        c.call(Method::GET, &format!("{}/logs{}", container_path(&a.container), query(&q)), empty(), false).await?;
    stream::copy_output(BodyReader::new(resp.into_body()), tty).await?;
    Ok(0)
}
