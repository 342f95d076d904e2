//! An exec instance and its state, as the daemon keeps them (the type the daemon's table names).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use berth_api::models::ExecConfig;

/// The state of one exec.
#[derive(Debug, Default)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
    /// The pty master of a TTY exec, for resizes.
    pub pty: Option<OwnedFd>,
}

/// An exec instance.
#[derive(Debug)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
}

impl ExecInstance {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, ExecState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}
