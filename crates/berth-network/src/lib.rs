//! Berth's networking: address management ([`ipam`]), a synchronous rtnetlink client ([`netlink`]), pinned network
//! namespaces and the interfaces in them ([`netns`]), the firewall rules as one atomic batch ([`firewall`]), held
//! host ports for published ports ([`ports`]) and the embedded DNS server of user-defined networks ([`dns`]); all of
//! it behind one trait, [`kernel::Kernel`], for berthd's network manager (implemented by [`kernel::Host`]).
//!
//! This crate knows nothing of containers' lifecycles: berthd decides what exists; this crate makes the kernel agree.

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod kernel;
pub mod netlink;
pub mod netns;
pub mod ports;

/// What can go wrong while setting up networks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    /// No free address or subnet left.
    #[error("{0}")]
    Exhausted(String),
    /// A host port is taken.
    #[error("{0}")]
    PortInUse(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0}: {1}")]
    Os(String, #[source] std::io::Error),
    #[error("firewall: {0}")]
    Firewall(String),
}
