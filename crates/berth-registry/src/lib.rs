//! berth-registry: the distribution client (pull, push, login: token and basic auth, docker's `config.json`,
//! progress in docker's JSON message format) and Berth's own registry server.
//!
//! The client speaks HTTP/1.1 through hyper; it stores what it pulls through `berth-store` and knows nothing of
//! containers.

pub mod auth;
pub mod client;
mod error;
pub mod progress;
pub mod pull;
pub mod push;

pub use crate::auth::{Credentials, DockerConfig};
pub use crate::client::Registry;
pub use crate::error::{Error, Result};
