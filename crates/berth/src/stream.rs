//! The container's streams on the client side: Docker's 8-byte multiplexed frames split back into stdout and
//! stderr, stdin copied to a hijacked connection (half-closed at EOF), the local terminal in raw mode, terminal
//! size changes forwarded to the daemon, and signals proxied to the container.

use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Result, anyhow};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::client::{Client, Hijacked, query};

/// Stream ids of the multiplexed stream's frames that docker's `stdcopy` knows.
const SYSTEMERR: u8 = 3;

/// Splits a multiplexed stream into `stdout` and `stderr` until its end.
pub async fn demux(
    mut from: impl AsyncRead + Unpin,
    mut stdout: impl AsyncWrite + Unpin,
    mut stderr: impl AsyncWrite + Unpin,
) -> Result<()> {
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // A clean end comes between frames.
        let mut got = 0;
        while got < header.len() {
            let n = from.read(&mut header[got..]).await?;
            if n == 0 {
                if got == 0 {
                    return Ok(());
                }
                return Err(anyhow!("unexpected EOF in the middle of a stream frame header"));
            }
            got += n;
        }
        let (stream, mut len) = berth_api::stream::parse_header(&header);
        let mut system = Vec::new();
        while len > 0 {
            let n = len.min(buf.len());
            from.read_exact(&mut buf[..n]).await?;
            match stream {
                berth_api::stream::STDIN | berth_api::stream::STDOUT => stdout.write_all(&buf[..n]).await?,
                berth_api::stream::STDERR => stderr.write_all(&buf[..n]).await?,
                SYSTEMERR => system.extend_from_slice(&buf[..n]),
                other => return Err(anyhow!("unrecognized input header: {other}")),
            }
            len -= n;
        }
        if stream == SYSTEMERR {
            return Err(anyhow!("error from daemon in stream: {}", String::from_utf8_lossy(&system)));
        }
        match stream {
            berth_api::stream::STDERR => stderr.flush().await?,
            _ => stdout.flush().await?,
        }
    }
}

/// Copies a raw (TTY) stream to stdout until its end.
pub async fn copy_raw(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) -> Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}

/// Writes a container's output (multiplexed unless `tty`) to this process's stdout and stderr.
pub async fn copy_output(from: impl AsyncRead + Unpin, tty: bool) -> Result<()> {
    if tty {
        copy_raw(from, tokio::io::stdout()).await
    } else {
        demux(from, tokio::io::stdout(), tokio::io::stderr()).await
    }
}

/// Runs a hijacked session: output to stdout/stderr until the daemon ends it; with `stdin`, this process's stdin
/// goes to the container and the connection is half-closed at its end.
pub async fn pump(conn: Hijacked, tty: bool, stdin: bool) -> Result<()> {
    let (read, mut write) = tokio::io::split(conn);
    let input = async move {
        if stdin {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write.write_all(&buf[..n]).await.is_err() || write.flush().await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = write.shutdown().await;
        }
        // Keep the write half (and with it the connection) open until the output ends.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        r = copy_output(read, tty) => r.or_else(ended),
        _ = input => Ok(()),
    }
}

/// A connection the daemon reset or closed under us after the container's end is just the end of the session.
fn ended(e: anyhow::Error) -> Result<()> {
    match e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
        Some(
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted,
        ) => Ok(()),
        _ => Err(e),
    }
}

/// The local terminal in raw mode for as long as this lives.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode (`None` when stdin is not a terminal).
    pub fn enable() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        if !nix::unistd::isatty(fd).unwrap_or(false) {
            return None;
        }
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false)
}

fn size_of(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    // SAFETY: winsize is plain old data; TIOCGWINSZ writes one into the valid pointer we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: see above; the descriptor is borrowed for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The terminal's size as (height, width), from stdout or else stdin.
pub fn terminal_size() -> Option<(u16, u16)> {
    size_of(std::io::stdout().as_fd()).or_else(|| size_of(std::io::stdin().as_fd()))
}

/// Sends the terminal's size to `resize_path` (`/containers/{id}/resize` or `/exec/{id}/resize`) now and at every
/// `SIGWINCH`, in the background.
pub fn monitor_size(client: &Client, resize_path: String) {
    let client = client.clone();
    tokio::spawn(async move {
        let send = |c: Client, p: String| async move {
            if let Some((h, w)) = terminal_size() {
                let _ = c.post(&format!("{p}{}", query(&[("h", h.to_string()), ("w", w.to_string())]))).await;
            }
        };
        send(client.clone(), resize_path.clone()).await;
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            send(client.clone(), resize_path.clone()).await;
        }
    });
}

/// Forwards the signals a user sends to this process (INT, TERM, HUP, QUIT, USR1, USR2) to the container, as
/// docker's `--sig-proxy` does.
pub fn proxy_signals(client: &Client, id: &str) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    for (kind, name) in kinds {
        let Ok(mut s) = signal(kind) else { continue };
        let client = client.clone();
        let path =
            format!("/containers/{}/kill{}", crate::client::encode_path(id), query(&[("signal", name.to_string())]));
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = client.post(&path).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::stream::frame_header;

    #[tokio::test]
    async fn demux_splits_streams() {
        let mut input = Vec::new();
        input.extend(frame_header(1, 4));
        input.extend(b"out\n");
        input.extend(frame_header(2, 4));
        input.extend(b"err\n");
        input.extend(frame_header(1, 0));
        input.extend(frame_header(1, 2));
        input.extend(b"x\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demux(&input[..], &mut out, &mut err).await.expect("demux");
        assert_eq!(out, b"out\nx\n");
        assert_eq!(err, b"err\n");
    }

    #[tokio::test]
    async fn demux_reports_truncation_and_system_errors() {
        let mut input = frame_header(1, 10).to_vec();
        input.extend(b"abc");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert!(demux(&input[..], &mut out, &mut err).await.is_err());
        let mut input = frame_header(3, 4).to_vec();
        input.extend(b"boom");
        let e = demux(&input[..], &mut out, &mut err).await.expect_err("system error");
        assert!(e.to_string().contains("boom"));
    }
}
