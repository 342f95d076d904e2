//! Exec instances: `GET /exec/{id}/json`, `POST /containers/{id}/exec`.

use berth_api::models::{ExecInspectResponse, ProcessConfig};
use serde::Serialize;
use serde_json::Value;

use super::render::{Nulls, render};
use crate::exec::ExecInstance;

/// `GET /exec/{id}/json`.
pub fn inspect(inst: &ExecInstance) -> Value {
    let (running, exit_code, pid) = match inst.state.lock() {
        Ok(st) => (st.running, st.exit_code, st.pid),
        Err(p) => {
            let st = p.into_inner();
            (st.running, st.exit_code, st.pid)
        }
    };
    let cfg = &inst.config;
    let cmd = cfg.cmd.clone().unwrap_or_default();
    let model = ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: Some(cfg.detach_keys.clone().unwrap_or_default()),
        id: Some(inst.id.clone()),
        running: Some(running),
        exit_code,
        process_config: Some(ProcessConfig {
            privileged: Some(cfg.privileged.unwrap_or(false)),
            user: Some(cfg.user.clone().unwrap_or_default()),
            tty: Some(cfg.tty.unwrap_or(false)),
            entrypoint: Some(cmd.first().cloned().unwrap_or_default()),
            arguments: Some(cmd.get(1..).unwrap_or_default().to_vec()),
        }),
        open_stdin: Some(cfg.attach_stdin.unwrap_or(false)),
        open_stderr: Some(cfg.attach_stderr.unwrap_or(false)),
        open_stdout: Some(cfg.attach_stdout.unwrap_or(false)),
        container_id: Some(inst.container_id.clone()),
        pid: Some(pid),
    };
    // `ExitCode` is `null` until the process has exited.
    const NULLS: Nulls = &[(&[], &["ExitCode"])];
    render(&model, NULLS)
}

/// `POST /containers/{id}/exec` (bollard's `IdResponse` names its field `id`; Docker sends `Id`).
#[derive(Serialize)]
struct Created {
    #[serde(rename = "Id")]
    id: String,
}

/// `POST /containers/{id}/exec`.
pub fn created(id: String) -> Value {
    render(&Created { id }, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::check::has;

    #[test]
    fn exec_inspect_has_docker_fields() {
        let inst = ExecInstance {
            id: "e1".into(),
            container_id: "c1".into(),
            config: berth_api::models::ExecConfig { cmd: Some(vec!["ls".into(), "-l".into()]), ..Default::default() },
            state: std::sync::Mutex::new(crate::exec::ExecState::default()),
        };
        let v = inspect(&inst);
        has(
            &v,
            &[
                ("CanRemove", "b"),
                ("DetachKeys", "s"),
                ("ID", "s"),
                ("Running", "b"),
                ("ExitCode", "0"),
                ("ProcessConfig/tty", "b"),
                ("ProcessConfig/entrypoint", "s"),
                ("ProcessConfig/arguments", "a"),
                ("ProcessConfig/privileged", "b"),
                ("ProcessConfig/user", "s"),
                ("OpenStdin", "b"),
                ("OpenStderr", "b"),
                ("OpenStdout", "b"),
                ("ContainerID", "s"),
                ("Pid", "n"),
            ],
        );
        assert_eq!(v["ProcessConfig"]["arguments"], serde_json::json!(["-l"]));
        assert_eq!(created("x".into()), serde_json::json!({"Id": "x"}));
    }
}
