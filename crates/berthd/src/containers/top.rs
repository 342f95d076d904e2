//! `top`: the processes of a running container, as `ps` shows them.

use std::sync::Arc;

use crate::error::Error;

use super::*;

/// `GET /containers/{id}/top`: `ps` output for the container's processes: the column titles and a row per process.
pub async fn top(c: &Arc<Container>, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>), Error> {
    if !c.is_running() {
        return Err(Error::Conflict(format!("Container {} is not running", c.id)));
    }
    let cg = berth_runtime::cgroups::Cgroup::open(&format!("berth/{}", c.id))
        .map_err(|e| Error::Internal(format!("cgroup: {e}")))?;
    let pids: Vec<i32> = cg.procs().map_err(|e| Error::Internal(format!("cgroup: {e}")))?;
    let args: Vec<String> =
        if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.split_whitespace().map(str::to_string).collect() };
    let out = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| Error::Internal(format!("ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::Internal(format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| Error::InvalidArgument("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok((titles.into_iter().map(str::to_string).collect(), procs))
}
