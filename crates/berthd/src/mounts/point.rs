//! One mount of a container as its record keeps it: the type the rest of berthd names without the mount planner.

use serde::{Deserialize, Serialize};

use crate::volumes::state::CreateOptions;

/// What is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Volume,
    Bind,
    Tmpfs,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Volume => "volume",
            Kind::Bind => "bind",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, as recorded (Docker's `MountPoint`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MountPoint {
    #[serde(rename = "type")]
    pub typ: Kind,
    /// The volume's name.
    pub name: String,
    /// A bind's host path, or the volume's `_data` directory.
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// Copy the image's content into the volume when it is empty (not `nocopy`).
    pub copy_data: bool,
    /// A volume the user named (`-v name:/x`, `--mount source=name`): `rm -v` keeps it.
    pub named: bool,
    /// A bind source created when missing at start (`-v`; `--mount` refuses a missing source instead).
    pub create_source: bool,
    /// `bind-recursive=disabled`: a plain bind without the mounts below the source.
    pub non_recursive: bool,
    /// `bind-recursive=readonly` (`ReadOnlyForceRecursive`): the mounts below the source are read-only too.
    pub recursive_ro: bool,
    /// Mount options of a `--mount type=tmpfs`.
    pub tmpfs_options: String,
    /// Options and labels for a volume that does not exist yet (`--mount` volume options).
    #[serde(skip)]
    pub create: Option<CreateOptions>,
}
