//! The container's streams on the client side: Docker's 8-byte multiplexed frames split back into stdout and
//! stderr, stdin copied to a hijacked connection (half-closed at EOF), the local terminal in raw mode, terminal
//! size changes forwarded to the daemon, and signals proxied to the container.

use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Result, anyhow};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::client::{Client, Hijacked, query};

/// Stream ids of the multiplexed stream's frames that docker's `stdcopy` knows.
const SYSTEMERR: u8 = 3;

/// Where a container's output goes: bytes of stream 1 (stdout) or 2 (stderr), and a flush when the input has
/// nothing more ready. Writes in between may be kept back; the order of the bytes across both streams is kept.
pub trait Output {
    fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
}

/// Bytes gathered before they go out in one `write`, whatever the input's frames were.
const OUT_BATCH: usize = 128 * 1024;
/// How much is read from the connection at a time.
const IN_BUF: usize = 256 * 1024;

/// This process's stdout and stderr: every streaming command's output goes through here. The bytes gather in one
/// buffer (one stream at a time: a change of stream writes what the other one had first, so their order is the
/// input's) and go out in large `write`s from the task that reads the stream, with no other thread involved
/// (tokio's `stdout` hands every write to a blocking thread: ~1,000 futex calls per write were what `berth logs`
/// spent its time on). A write may block the reading task while the terminal or pipe is full, which is when there
/// is nothing better to do.
pub struct StdOutput {
    buf: Vec<u8>,
    stream: u8,
}

impl StdOutput {
    pub fn new() -> StdOutput {
        StdOutput { buf: Vec::with_capacity(OUT_BATCH), stream: 1 }
    }
}

impl Default for StdOutput {
    fn default() -> Self {
        StdOutput::new()
    }
}

/// All of `data` to the descriptor `fd` (held by its std lock), straight with `write(2)`; one left non-blocking by
/// whoever handed it to us is waited for rather than failing with `EAGAIN`.
fn write_fd(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(nix::Error::EAGAIN) => {
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Output for StdOutput {
    fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        if stream != self.stream || self.buf.len() + data.len() > OUT_BATCH {
            self.flush()?;
            self.stream = stream;
        }
        if data.len() >= OUT_BATCH {
            return write_out(stream, data);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = write_out(self.stream, &self.buf);
        self.buf.clear();
        r
    }
}

/// Writes `data` to stdout (stream 1) or stderr (2) at once, in order with what the rest of the CLI printed.
pub fn write_out(stream: u8, data: &[u8]) -> std::io::Result<()> {
    if stream == berth_api::stream::STDERR {
        let err = std::io::stderr().lock();
        write_fd(err.as_fd(), data)
    } else {
        // Under std's stdout lock, with its buffer emptied first: what the rest of the CLI prints stays in order.
        let mut out = std::io::stdout().lock();
        std::io::Write::flush(&mut out)?;
        write_fd(out.as_fd(), data)
    }
}

/// Output collected in memory, as (stream, bytes) pieces in order.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Collected {
    pub pieces: Vec<(u8, Vec<u8>)>,
    pub flushes: usize,
}

#[cfg(test)]
impl Output for Collected {
    fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        match self.pieces.last_mut() {
            Some((s, v)) if *s == stream => v.extend_from_slice(data),
            _ => self.pieces.push((stream, data.to_vec())),
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

/// Reads what `from` has into `buf`; when it has nothing ready, `out` is flushed before waiting for more (so a
/// terminal or `-f` sees each burst of output as soon as it has arrived, not each frame). `Ok(0)` at the end.
pub async fn read_or_flush(
    from: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    out: &mut impl Output,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut rb = tokio::io::ReadBuf::new(buf);
        match std::pin::Pin::new(&mut *from).poll_read(cx, &mut rb) {
            std::task::Poll::Ready(r) => std::task::Poll::Ready(r.map(|()| rb.filled().len())),
            std::task::Poll::Pending => match out.flush() {
                Ok(()) => std::task::Poll::Pending,
                Err(e) => std::task::Poll::Ready(Err(e)),
            },
        }
    })
    .await
}

/// Splits a multiplexed stream into stdout and stderr (streams 1 and 2 of `out`) until its end; `out` is flushed
/// whatever the end.
pub async fn demux(mut from: impl AsyncRead + Unpin, out: &mut impl Output) -> Result<()> {
    let r = demux_inner(&mut from, out).await;
    let f = out.flush();
    r?;
    Ok(f?)
}

async fn demux_inner(from: &mut (impl AsyncRead + Unpin), out: &mut impl Output) -> Result<()> {
    let mut buf = vec![0u8; IN_BUF];
    // Bytes of `buf` not yet handled: `buf[start..end]`.
    let (mut start, mut end) = (0usize, 0usize);
    // The frame being read: its stream and how much of its payload is still to come.
    let (mut stream, mut left) = (0u8, 0usize);
    let mut system = Vec::new();
    loop {
        while start < end {
            if left == 0 {
                if end - start < 8 {
                    break;
                }
                let mut header = [0u8; 8];
                header.copy_from_slice(&buf[start..start + 8]);
                start += 8;
                (stream, left) = berth_api::stream::parse_header(&header);
                if !matches!(stream, berth_api::stream::STDIN | berth_api::stream::STDOUT | berth_api::stream::STDERR)
                    && stream != SYSTEMERR
                {
                    return Err(anyhow!("unrecognized input header: {stream}"));
                }
                if left == 0 && stream == SYSTEMERR {
                    return Err(anyhow!("error from daemon in stream: "));
                }
                continue;
            }
            let n = left.min(end - start);
            let data = &buf[start..start + n];
            match stream {
                SYSTEMERR => system.extend_from_slice(data),
                berth_api::stream::STDERR => out.write(2, data)?,
                _ => out.write(1, data)?,
            }
            start += n;
            left -= n;
            if left == 0 && stream == SYSTEMERR {
                return Err(anyhow!("error from daemon in stream: {}", String::from_utf8_lossy(&system)));
            }
        }
        // Keep the piece of a header, read more after it.
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        let n = read_or_flush(from, &mut buf[end..], out).await?;
        if n == 0 {
            if end == 0 && left == 0 {
                return Ok(());
            }
            if left > 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            return Err(anyhow!("unexpected EOF in the middle of a stream frame header"));
        }
        end += n;
    }
}

/// Copies a raw (TTY) stream to stream 1 of `out` until its end; `out` is flushed whatever the end.
pub async fn copy_raw(mut from: impl AsyncRead + Unpin, out: &mut impl Output) -> Result<()> {
    let mut buf = vec![0u8; IN_BUF];
    let r = async {
        loop {
            let n = read_or_flush(&mut from, &mut buf, out).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            out.write(1, &buf[..n])?;
        }
    }
    .await;
    let f = out.flush();
    r?;
    Ok(f?)
}

/// Writes a container's output (multiplexed unless `tty`) to this process's stdout and stderr.
pub async fn copy_output(from: impl AsyncRead + Unpin, tty: bool) -> Result<()> {
    let mut out = StdOutput::new();
    if tty { copy_raw(from, &mut out).await } else { demux(from, &mut out).await }
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
        input.extend(frame_header(1, 2));
        input.extend(b"y\n");
        let mut out = Collected::default();
        demux(&input[..], &mut out).await.expect("demux");
        // In order across the streams, consecutive frames of one stream joined.
        assert_eq!(out.pieces, vec![(1, b"out\n".to_vec()), (2, b"err\n".to_vec()), (1, b"x\ny\n".to_vec())]);
    }

    #[tokio::test]
    async fn demux_reports_truncation_and_system_errors() {
        let mut input = frame_header(1, 10).to_vec();
        input.extend(b"abc");
        let mut out = Collected::default();
        assert!(demux(&input[..], &mut out).await.is_err());
        // What came before the cut is written.
        assert_eq!(out.pieces, vec![(1, b"abc".to_vec())]);
        let mut input = frame_header(3, 4).to_vec();
        input.extend(b"boom");
        let e = demux(&input[..], &mut Collected::default()).await.expect_err("system error");
        assert!(e.to_string().contains("boom"));
        let e = demux(&frame_header(1, 1)[..5], &mut Collected::default()).await.expect_err("cut header");
        assert!(e.to_string().contains("frame header"), "{e}");
    }

    /// Frames split anywhere (headers too) by the reads give the same output, and a flush happens only when the
    /// input has nothing ready, not per frame.
    #[tokio::test]
    async fn demux_batches_across_reads() {
        let mut input = Vec::new();
        let mut want_out = Vec::new();
        for i in 0..5000 {
            let line = format!("line {i}\n");
            input.extend(frame_header(1, line.len()));
            input.extend(line.as_bytes());
            want_out.extend(line.as_bytes());
        }
        input.extend(frame_header(2, 4));
        input.extend(b"end\n");
        let (client, mut server) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            server.write_all(&input).await.expect("write");
        });
        let mut out = Collected::default();
        demux(client, &mut out).await.expect("demux");
        writer.await.expect("writer");
        assert_eq!(out.pieces, vec![(1, want_out), (2, b"end\n".to_vec())]);

        // All there at once: one flush, at the end.
        let mut input = Vec::new();
        for _ in 0..1000 {
            input.extend(frame_header(1, 3));
            input.extend(b"ab\n");
        }
        let mut out = Collected::default();
        demux(&input[..], &mut out).await.expect("demux");
        assert_eq!(out.flushes, 1);
        assert_eq!(out.pieces[0].1.len(), 3000);
    }

    /// A burst is flushed as soon as the input has nothing more ready (a TTY, `-f`).
    #[tokio::test]
    async fn raw_flushes_when_input_waits() {
        use tokio::io::AsyncWriteExt;
        let (client, mut server) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut out = Collected::default();
            copy_raw(client, &mut out).await.map(|()| out)
        });
        server.write_all(b"prompt$ ").await.expect("write");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        server.write_all(b"ls\r\n").await.expect("write");
        drop(server);
        let out = reader.await.expect("join").expect("copy");
        assert_eq!(out.pieces, vec![(1, b"prompt$ ls\r\n".to_vec())]);
        // At least once while waiting for the second piece, and at the end.
        assert!(out.flushes >= 2, "{}", out.flushes);
    }
}
