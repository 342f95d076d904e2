//! Pods as `GET /berth/pods/json` and `/berth/pods/{id}/json` show them (Berth's own endpoints; the shape is fixed in
//! the pod API the CLI, `kube` and the dashboard share).

use serde_json::{Value, json};

use crate::pods::PodState;

/// A pod: `Id`, `Name`, `Created`, `Status`, `Labels`, `Share`, `Hostname`, `Network`, `PortBindings`, `InfraPid` (0
/// when not running), `InfraContainerId`, `IPAddress`, `Containers` (the members: `Id`, `Name`, `State`).
pub fn pod(s: &PodState) -> Value {
    let p = &s.pod;
    json!({
        "Id": p.id,
        "Name": p.name,
        "Created": p.created,
        "Status": s.status.as_str(),
        "Labels": p.labels,
        "Share": p.share,
        "Hostname": p.hostname,
        "Network": p.network,
        "PortBindings": p.port_bindings,
        "Dns": p.dns,
        "ExtraHosts": p.extra_hosts,
        "InfraPid": s.holder_pid,
        "InfraContainerId": p.holder,
        "IPAddress": s.ip,
        "Containers": s.containers.iter().map(|(id, name, state)| json!({
            "Id": id,
            "Name": name,
            "State": state.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// `POST /berth/pods/create`'s answer.
pub fn created(id: String) -> Value {
    json!({"Id": id, "Warnings": []})
}
