//! berth-registry: the distribution client (pull, push, login: token and basic auth, docker's `config.json`,
//! progress in docker's JSON message format) and Berth's own registry server.
//!
//! The client speaks HTTP/1.1 through hyper; it stores what it pulls through `berth-store` and knows nothing of
//! containers. Features: `client` (default: pull and push into a store), `server` (the registry server, on axum,
//! with no store: the CLI builds only this).

pub mod auth;
pub mod client;
mod error;
pub mod progress;
#[cfg(feature = "client")]
pub mod pull;
#[cfg(feature = "client")]
pub mod push;
#[cfg(feature = "server")]
pub mod server;
pub mod tls;

pub use crate::auth::{Credentials, DockerConfig};
pub use crate::client::Registry;
pub use crate::error::{Error, Result};
