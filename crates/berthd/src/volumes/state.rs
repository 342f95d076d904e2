//! A volume as stored, the daemon's volume state (mount counts, locks), and what a new volume is made of: the types
//! the rest of berthd (a container's mounts, the daemon) names without the volume manager.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

pub(crate) const DOC_KIND: &str = "volume";
/// The label Docker puts on anonymous volumes (`volume prune` without `--all` removes only those).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
pub(super) const LOCAL: &str = "local";

/// A volume, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    pub labels: Option<HashMap<String, String>>,
    /// The local driver's options (`type`, `device`, `o`).
    pub options: Option<HashMap<String, String>>,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels.as_ref().is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }

    /// Whether the local driver mounts something at `_data` (Docker: a `type` or a `device` option).
    pub(super) fn needs_mount(&self) -> bool {
        self.options.as_ref().is_some_and(|o| o.contains_key("type") || o.contains_key("device"))
    }
}

/// The daemon's volume manager.
pub struct Volumes {
    pub(super) root: PathBuf,
    /// Serialises volume creation and removal with container creation and removal, so that a volume is never removed
    /// while a container that is being created is about to use it.
    pub lock: tokio::sync::Mutex<()>,
    /// Running containers per volume whose file system the daemon mounts at `_data`.
    pub(super) active: std::sync::Mutex<HashMap<String, usize>>,
    /// Set once start-up reconciliation has counted the containers that kept running.
    pub(super) ready: AtomicBool,
    /// Held while a volume's users are counted and its file system mounted or unmounted, so that a start never
    /// finds the count up but the file system not there yet (or being taken away).
    pub(super) mounting: tokio::sync::Mutex<()>,
}

impl Volumes {
    pub fn new(data_root: &Path) -> Volumes {
        Volumes {
            root: data_root.join("volumes"),
            lock: tokio::sync::Mutex::new(()),
            active: std::sync::Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            mounting: tokio::sync::Mutex::new(()),
        }
    }

    /// `<data-root>/volumes/<name>/_data`.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }
}

/// What a new volume is made of.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub name: String,
    pub driver: String,
    pub options: HashMap<String, String>,
    pub labels: Option<HashMap<String, String>>,
}
