//! A pod's record (its document in the store) and what a create asks for: the leaf types of the pod manager.

use std::collections::HashMap;

use berth_api::models::PortMap;
use serde::{Deserialize, Serialize};

pub(crate) const DOC_KIND: &str = "pod";

/// The namespaces a pod shares by default (Podman's).
pub const DEFAULT_SHARE: [&str; 3] = ["net", "ipc", "uts"];

/// `POST /berth/pods/create`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodSpec {
    pub name: Option<String>,
    pub labels: Option<HashMap<String, String>>,
    /// Docker's `HostConfig.PortBindings` shape.
    pub port_bindings: Option<PortMap>,
    /// `bridge` (the default), `none`, `host` or a network's name.
    pub network: Option<String>,
    /// Of `net`, `ipc`, `uts`, `pid`; `net` always.
    pub share: Option<Vec<String>>,
    pub hostname: Option<String>,
    pub dns: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
}

/// Everything berthd keeps about a pod (one document in the store). Its state is its containers' (the holder and
/// the members), never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub labels: HashMap<String, String>,
    pub share: Vec<String>,
    pub hostname: String,
    pub network: String,
    pub port_bindings: PortMap,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// The namespace holder's container ID.
    pub holder: String,
}

impl PodRecord {
    pub fn shares(&self, ns: &str) -> bool {
        self.share.iter().any(|s| s == ns)
    }
}

/// A pod's status, as Podman computes it from its containers' (the holder's included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStatus {
    Created,
    Running,
    Degraded,
    Exited,
    Stopped,
}

impl PodStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PodStatus::Created => "Created",
            PodStatus::Running => "Running",
            PodStatus::Degraded => "Degraded",
            PodStatus::Exited => "Exited",
            PodStatus::Stopped => "Stopped",
        }
    }

    /// Podman's rule (`createPodStatusResults`): any running → Running if all are, else Degraded; all stopped →
    /// Exited; some stopped → Stopped; else Created. A paused container counts as running.
    pub fn of(states: &[crate::containers::Status]) -> PodStatus {
        use crate::containers::Status as S;
        let count = |f: &dyn Fn(S) -> bool| states.iter().filter(|s| f(**s)).count();
        let running = count(&|s| matches!(s, S::Running | S::Paused | S::Restarting));
        let stopped = count(&|s| matches!(s, S::Exited | S::Dead | S::Removing));
        match () {
            _ if running > 0 && running == states.len() => PodStatus::Running,
            _ if running > 0 => PodStatus::Degraded,
            _ if stopped > 0 && stopped == states.len() => PodStatus::Exited,
            _ if stopped > 0 => PodStatus::Stopped,
            _ => PodStatus::Created,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::Status as S;

    #[test]
    fn status_as_podman() {
        assert_eq!(PodStatus::of(&[]), PodStatus::Created);
        assert_eq!(PodStatus::of(&[S::Created, S::Created]), PodStatus::Created);
        assert_eq!(PodStatus::of(&[S::Running, S::Running]), PodStatus::Running);
        assert_eq!(PodStatus::of(&[S::Running, S::Exited]), PodStatus::Degraded);
        assert_eq!(PodStatus::of(&[S::Exited, S::Exited]), PodStatus::Exited);
        assert_eq!(PodStatus::of(&[S::Exited, S::Created]), PodStatus::Stopped);
    }
}
