//! The container as the API shows it (inspect, list, top) and its sizes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::Error;
use serde_json::{Value, json};

use crate::daemon::Daemon;

use super::*;

/// Docker's human status: `Up 5 minutes`, `Exited (0) 2 seconds ago`, `Created`.
pub fn status_text(rec: &Record, now: SystemTime) -> String {
    let since = |t: &str| {
        berth_api::time::parse(t)
            .and_then(|t| now.duration_since(t).ok())
            .map(berth_api::time::human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    let health = match rec.state.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)",
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        _ => "",
    };
    match rec.state.status {
        Status::Running => format!("Up {}{health}", since(&rec.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&rec.state.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if rec.state.started_at == berth_api::time::ZERO => "Created".into(),
        Status::Exited => format!("Exited ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
    }
}

/// `GET /containers/{id}/json`.
pub fn inspect(d: &Daemon, c: &Container) -> Value {
    let rec = c.record();
    let dir = container_dir(d, &rec.id);
    let s = &rec.state;
    let status = s.status;
    let exec_ids: Vec<String> = d
        .execs
        .lock()
        .map(|m| m.values().filter(|e| e.container_id == rec.id).map(|e| e.id.clone()).collect())
        .unwrap_or_default();
    let lower: Vec<String> = rec.lower_dirs.iter().map(|p| p.display().to_string()).collect();
    let mut v = json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": status.as_str(),
            "Running": matches!(status, Status::Running | Status::Paused),
            "Paused": status == Status::Paused,
            "Restarting": status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            "Health": s.health,
        },
        "Image": rec.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        // Docker shows it for json-file only.
        "LogPath": if crate::logs::is_json_file(&rec.host_config) { log_path(d, &rec.id) } else { PathBuf::new() },
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) },
        "HostConfig": rec.host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": bundle_dir(d, &rec.id).join("rootfs"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            }
        },
        "Mounts": crate::mounts::view(&rec.mounts),
        "Config": rec.config,
        "NetworkSettings": crate::networks::settings(d, &rec),
    });
    // Docker has `State.Health` only for a container with a healthcheck.
    if s.health.is_none()
        && let Some(state) = v.get_mut("State").and_then(Value::as_object_mut)
    {
        state.remove("Health");
    }
    v
}

/// The `Command` of a list entry as moby writes it: the path, then the arguments, each one that holds a space in
/// single quotes (`sh -c 'echo hi'`).
pub(super) fn list_command(path: &str, args: &[String]) -> String {
    let mut out = path.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// One entry of `GET /containers/json`.
pub fn summary(d: &Daemon, rec: &Record, now: SystemTime, size: Option<(u64, u64)>) -> Value {
    let command = list_command(&rec.path, &rec.args);
    let mut v = json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image,
        "ImageID": rec.image_id,
        "Command": command,
        "Created": berth_api::time::parse(&rec.created).map(berth_api::time::unix).unwrap_or(0),
        "Ports": crate::networks::list_ports(rec),
        "Labels": rec.config.labels.clone().unwrap_or_default(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec, now),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": crate::networks::settings(d, rec)["Networks"].clone()},
        "Mounts": crate::mounts::view(&rec.mounts),
    });
    if let Some((rw, root)) = size {
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(root);
    }
    v
}

/// `GET /containers/{id}/top`: `ps` output for the container's processes.
pub async fn top(c: &Arc<Container>, ps_args: &str) -> Result<Value, Error> {
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
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_commands_quote_arguments_with_spaces() {
        assert_eq!(list_command("sh", &["-c".into(), "echo hi; sleep 1".into()]), "sh -c 'echo hi; sleep 1'");
        assert_eq!(list_command("sleep", &["100".into()]), "sleep 100");
        assert_eq!(list_command("true", &[]), "true");
    }
}
