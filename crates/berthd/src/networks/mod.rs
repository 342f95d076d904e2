//! The network manager: networks (the predefined `bridge`, `host`, `none`, and user-defined bridge networks) as
//! documents in the store; the live attachments of running containers (addresses, veths, held host ports) in memory,
//! rebuilt from the containers' records when berthd starts; and what follows from them: the firewall rule set (one
//! atomic batch per change) and the embedded DNS names.
//!
//! One module per concern: `state` (the leaf: records, endpoints, live attachments), `manage`, `attach`, `connect`,
//! `view`. Everything public is re-exported here, so callers name `crate::networks::X`.

mod attach;
mod connect;
mod manage;
pub mod state;
mod view;

pub use attach::*;
pub use connect::*;
pub use manage::*;
pub use state::*;
pub use view::*;
