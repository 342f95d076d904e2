//! The container manager: create, start, stop, kill, pause, remove, rename, wait; the record of each container in the
//! store; the conversation with its shim; and reconciliation with the shims that kept running while berthd was down.
//!
//! One module per concern: `record` (the leaf: types, paths, persistence), `create`, `shim`, `lifecycle`, `remove`,
//! `view`. Everything public is re-exported here, so callers name `crate::containers::X`.

mod create;
mod lifecycle;
pub mod record;
mod remove;
mod shim;
mod view;

pub use create::*;
pub use lifecycle::*;
pub use record::*;
pub use remove::*;
pub use shim::*;
pub use view::*;
