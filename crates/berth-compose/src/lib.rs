//! Compose files for Berth: finding and loading them ([`load`]), `.env` files ([`dotenv`]), interpolation
//! ([`interpolate`]), validation against the compose specification ([`schema`]), merging several files and
//! normalising them to their long forms ([`normalize`]), the typed model ([`model`]), and the plan of the Engine
//! API objects a project consists of ([`plan`]: names, labels, create bodies, config hashes, dependency order).
//!
//! The crate does no I/O with a daemon: the `berth compose` commands (crates/berth) execute the plan through the
//! Engine API, so they drive a real dockerd as well as berthd.

pub mod dotenv;
pub mod error;
pub mod interpolate;
pub mod schema;
pub mod yaml;

pub use error::{Error, Result};
pub mod load;
pub mod model;
pub mod normalize;

pub use load::{Options, Project, load};
pub mod plan;

/// Renders a model as YAML (what `config` prints).
pub fn to_yaml(v: &serde_json::Value) -> Result<String> {
    serde_saphyr::to_string(v).map_err(|e| Error::Project(format!("render YAML: {e}")))
}
