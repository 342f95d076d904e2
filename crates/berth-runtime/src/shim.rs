//! The protocol between `berthd` and `berth-shim`.
//!
//! `berthd` writes the OCI bundle (`config.json`) and [`ShimConfig`] (`shim.json`) into the container's bundle
//! directory and runs `berth-shim start <bundle>` with a pipe as its stdout. The shim detaches, mounts the root file
//! system in a private mount namespace, creates the container (stopped before exec), listens on `<bundle>/shim.sock`,
//! and writes one [`Response`] line on the pipe (`Created` or `Error`).
//!
//! Each connection to `shim.sock` starts with one [`Request`] line. `Attach` turns the connection into a stream:
//! the shim writes the container's output framed with Docker's 8-byte multiplexed headers (stream 1 stdout, 2 stderr,
//! even for a TTY) and reads raw stdin bytes; a half-close from the client ends that client's stdin. Every other
//! request gets one [`Response`] line; `Wait` gets it when the container has exited.
//!
//! When the container exits, the shim writes [`ExitRecord`] to `exit_path` (atomically) before anything else, so a
//! daemon that was down learns the exit from the file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// File names inside a bundle directory.
pub const CONFIG_FILE: &str = "shim.json";
/// The shim's control socket inside the bundle.
pub const SOCKET_FILE: &str = "shim.sock";
/// The shim's own PID.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// The container init's host PID.
pub const INIT_PID_FILE: &str = "init.pid";

/// How the shim assembles the root file system: an overlay of read-only layers under a writable upper directory,
/// mounted on `<bundle>/rootfs` inside the shim's private mount namespace (so it can never leak onto the host).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootfsLayers {
    /// Read-only layers, top first (overlay's `lowerdir` order).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// With `berthd --userns-remap`: the layers are mounted idmapped, so that what is owned by `n` on disk appears
    /// owned by the host ID `n` maps to (the container's root is `uid`:`gid` on the host); the upper directory holds
    /// host IDs.
    #[serde(default)]
    pub idmap: Option<IdMap>,
    /// An `--rm` container's: the overlay is mounted `volatile` (Linux 5.10; without it elsewhere), which skips every
    /// sync of the upper layer's file system (its unmount's included), as Podman does for `--rm` containers: the
    /// writable layer goes at the container's exit, and a host crash takes the container with it anyway.
    #[serde(default)]
    pub volatile: bool,
}

/// A container's ID range on the host: container IDs `0..size` are host IDs `uid..uid+size` (`gid..gid+size`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

impl IdMap {
    /// The host IDs of container IDs (IDs outside the range are kept).
    pub fn to_host(&self, uid: u32, gid: u32) -> (u32, u32) {
        let shift = |id: u32, base: u32| if id < self.size { base.saturating_add(id) } else { id };
        (shift(uid, self.uid), shift(gid, self.gid))
    }

    /// The container IDs of host IDs of the range (others are kept).
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        let back = |id: u32, base: u32| if id >= base && id - base < self.size { id - base } else { id };
        (back(uid, self.uid), back(gid, self.gid))
    }

    /// The `uid_map` and `gid_map` lines of this range.
    pub fn maps(&self) -> (String, String) {
        (format!("0 {} {}\n", self.uid, self.size), format!("0 {} {}\n", self.gid, self.size))
    }
}

/// What the shim needs besides the OCI spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShimConfig {
    pub id: String,
    /// `berth` for the built-in runtime, else an OCI runtime binary.
    pub runtime: String,
    /// State directory for external runtimes.
    pub runtime_root: PathBuf,
    pub rootfs: RootfsLayers,
    pub tty: bool,
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client that sent stdin goes away.
    pub stdin_once: bool,
    /// Docker json-file log (`<id>-json.log`).
    pub log_path: PathBuf,
    /// How that log is kept (rotation, compression, or no log at all).
    #[serde(default)]
    pub log: LogPolicy,
    /// Where the shim records the exit.
    pub exit_path: PathBuf,
    /// Docker's `-u` value; resolved by the shim against the container's `/etc/passwd` and `/etc/group`.
    pub user: String,
    /// `HostConfig.GroupAdd`: supplementary groups (names of the container's `/etc/group`, or numbers) for the init
    /// and every exec.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// Initial terminal size (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// How the shim keeps a container's log: Docker's json-file driver's `max-size`, `max-file` and `compress` (the
/// `local` driver is the same writer with other defaults), or nothing at all (`none`). berthd validates the options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogPolicy {
    /// No log file (`--log-driver none`).
    #[serde(default)]
    pub disabled: bool,
    /// Rotate before writing an entry once the file has this many bytes; `None`: never.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Files kept, the one being written included (`<log>`, `<log>.1`, ... `<log>.<max_files - 1>`); 0 counts as 1.
    #[serde(default)]
    pub max_files: u32,
    /// Rotated files are gzip-compressed (`<log>.1.gz`, ...).
    #[serde(default)]
    pub compress: bool,
}

/// A request on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Let the created container exec its program.
    Start,
    /// Become a stream of the container's output (and input).
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Answer once the container has exited.
    Wait,
    /// Send a signal to the container's init (killing PID 1 of the container's PID namespace ends every process in it).
    Kill {
        signal: i32,
    },
    /// Resize the container's terminal.
    Resize {
        height: u16,
        width: u16,
    },
    /// Close the container's stdin.
    CloseStdin,
    Pause,
    Resume,
    /// Report the init's PID.
    State,
}

/// A reply from the shim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Created { pid: i32 },
    State { pid: i32, paused: bool },
    Exited(ExitRecord),
    Error { message: String },
}

/// How a container ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code, or 128 + signal number.
    pub exit_code: i32,
    /// RFC 3339 time of the exit.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// Set when the container never ran its program (the start failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An exec request for `berth-shim exec <bundle> <file>`: the OCI process, plus Docker's `-u` to resolve inside the
/// container. The helper reports on descriptor 3 one [`Response`] line (`Created` with the PID, or `Error`) and then
/// exits with the process's exit code. With `process.terminal`, the terminal is created inside the container and the
/// helper sends its master (`SCM_RIGHTS`) on descriptor 4, a Unix socket berthd gives an attached exec, before it
/// reports; a detached exec's helper keeps the master and discards its output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub process: oci_spec::runtime::Process,
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let r: Request =
            serde_json::from_str(r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#).expect("parse");
        assert_eq!(r, Request::Attach { stdin: true, stdout: true, stderr: false });
        let s = serde_json::to_string(&Response::Exited(ExitRecord {
            exit_code: 3,
            finished_at: "x".into(),
            oom_killed: false,
            error: None,
        }))
        .expect("json");
        assert_eq!(s, r#"{"status":"exited","exit_code":3,"finished_at":"x","oom_killed":false}"#);
        assert_eq!(serde_json::to_string(&Request::Kill { signal: 15 }).expect("json"), r#"{"op":"kill","signal":15}"#);
    }
}
