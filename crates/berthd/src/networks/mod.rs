//! The network manager: networks (the predefined `bridge`, `host`, `none`, and user-defined bridge networks) as
//! documents in the store; the live attachments of running containers (addresses, veths, held host ports) in memory,
//! rebuilt from the containers' records when berthd starts; and what follows from them: the firewall rule set (one
//! atomic batch per change) and the embedded DNS names.
//!
//! One module per concern: `state` (the leaf: records, endpoints, live attachments), `manage`, `attach`, `connect`,
//! `links` (Docker's legacy links)
//! (how they look to the API is `crate::views`). Everything public is re-exported here, so callers name `crate::networks::X`. Everything done to the host
//! (namespaces, links, firewall, DNS sockets, host ports) goes through `berth_network::kernel::Kernel`; `fake` is its
//! in-memory double for the unit tests (`tests`). The daemon's entry points take the `Daemon`; the work is in
//! `Networks`' methods, which take what they need of the rest (the store, other containers' records) as parameters.

mod attach;
mod connect;
#[cfg(test)]
pub mod fake;
pub mod links;
mod manage;
pub mod state;

pub use attach::*;
pub use connect::*;
pub use manage::*;
pub use state::*;

#[cfg(test)]
mod tests;
