//! The container manager: create, start, stop, kill, pause, remove, rename, wait; the record of each container in the
//! store; the conversation with its shim; and reconciliation with the shims that kept running while berthd was down.
//!
//! One module per concern: `record` (the leaf types), `persist` (paths and the record in the store), `shim_client`
//! (the leaf seam in front of the shims), `create`, `shim`, `lifecycle`, `remove`, `size`, `top`, `filter` (the list
//! and prune filters); how they look to the API is `crate::views`. Unit tests in `tests` on the in-memory
//! `fake_shim`. Everything public is re-exported here, so callers name `crate::containers::X`.

mod create;
#[cfg(test)]
pub(crate) mod fake_shim;
pub mod filter;
mod lifecycle;
mod oom;
pub mod persist;
pub mod record;
mod remove;
mod restart;
mod shim;
pub mod shim_client;
mod shm;
mod size;
#[cfg(test)]
mod tests;
mod top;
mod update;

pub use create::*;
pub use lifecycle::*;
pub use persist::*;
pub use record::*;
pub use remove::*;
pub use shim::*;
pub use shim_client::*;
pub use size::*;
/// The fake-shim daemon of the unit tests, for other managers' unit tests (`pods`).
#[cfg(test)]
pub(crate) use tests::env;
pub use top::*;
pub use update::*;
