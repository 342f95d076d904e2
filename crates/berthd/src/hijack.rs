//! Docker's connection hijack: `Upgrade: tcp` answered with `101 Switching Protocols`, after which the connection
//! carries the container's streams (raw for a TTY, 8-byte multiplexed frames otherwise).

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use berth_api::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Answers a hijack request with 101 and returns the future that yields the raw connection.
pub fn upgrade(req: &mut Request<Body>, tty: bool) -> Result<(Response<Body>, hyper::upgrade::OnUpgrade), Error> {
    let wants_upgrade =
        req.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        return Err(Error::InvalidArgument("this endpoint needs an HTTP upgrade (Upgrade: tcp)".into()));
    }
    let on_upgrade = hyper::upgrade::on(req);
    let content_type = if tty { berth_api::stream::RAW } else { berth_api::stream::MULTIPLEXED };
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "tcp")
        .header("content-type", content_type)
        .body(Body::empty())
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((resp, on_upgrade))
}

/// A hijacked connection as the streams use it.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// The hijacked connection, once the client has read the head of the 101 (on a Unix socket; up to 200 ms), so that
/// the stream that follows arrives apart from it. docker-py reads a hijacked stream from the raw socket, behind its
/// HTTP reader, and loses whatever came in one read with the head (a non-streaming attach's logs, sent at once).
/// Other connections (TLS) are returned as they are.
pub async fn settle(u: hyper::upgrade::Upgraded) -> Box<dyn Conn> {
    type Unix = hyper_util::rt::TokioIo<tokio::net::UnixStream>;
    let parts = match u.downcast::<Unix>() {
        Ok(p) => p,
        Err(u) => return Box::new(hyper_util::rt::TokioIo::new(u)),
    };
    let sock = parts.io.into_inner();
    {
        use std::os::fd::AsFd;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        while berth_runtime::sys::unread_output(sock.as_fd()).is_ok_and(|n| n > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    Box::new(Rewound { prefix: parts.read_buf, io: sock })
}

/// A Unix connection with the bytes hyper had read past the request (the client's first input) in front of it.
struct Rewound {
    prefix: bytes::Bytes,
    io: tokio::net::UnixStream,
}

impl AsyncRead for Rewound {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Copies multiplexed frames from `from` to `to`; with `raw`, writes only their payloads (a TTY's raw stream).
pub async fn copy_frames(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    raw: bool,
) -> std::io::Result<()> {
    if !raw {
        tokio::io::copy(&mut from, &mut to).await?;
        return to.flush().await;
    }
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let (_, mut len) = berth_api::stream::parse_header(&header);
        while len > 0 {
            let n = len.min(buf.len());
            from.read_exact(&mut buf[..n]).await?;
            to.write_all(&buf[..n]).await?;
            len -= n;
        }
        to.flush().await?;
    }
    Ok(())
}

/// Docker's default detach sequence: `ctrl-p,ctrl-q`.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Parses a detach key sequence as Docker's `term.ToBytes` does: comma-separated keys, each a single character,
/// `ctrl-@`, `ctrl-a` … `ctrl-z`, `ctrl-[`, `ctrl-\\`, `ctrl-]`, `ctrl-^`, `ctrl-_` or `DEL`. An empty spec is the
/// default sequence.
pub fn parse_detach_keys(spec: &str) -> Option<Vec<u8>> {
    if spec.is_empty() {
        return Some(DEFAULT_DETACH_KEYS.to_vec());
    }
    const CTRL: &[u8] = b"@abcdefghijklmnopqrstuvwxyz[\\]^_";
    spec.split(',')
        .map(|key| match key.as_bytes() {
            [c] => Some(*c),
            b"DEL" => Some(127),
            [b'c', b't', b'r', b'l', b'-', c] => CTRL.iter().position(|x| x == c).and_then(|i| u8::try_from(i).ok()),
            _ => None,
        })
        .collect()
}

/// Finds a detach sequence in a stream of input as Docker's escape proxy does: the bytes that may start the sequence
/// are held back until it is complete (detach) or broken (they are passed on after all).
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// Appends to `out` what of `input` goes on to the container; true once the whole sequence has been read (what
    /// follows it is dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        false
    }
}

/// How an attach's input ended.
#[derive(Debug, PartialEq, Eq)]
pub enum InputEnd {
    /// The client closed its side (or went away).
    Closed,
    /// The client typed the detach sequence.
    Detached,
}

/// Copies a client's input to `to`, watching for the detach sequence `keys` (none: a plain copy).
pub async fn copy_input(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    keys: Option<Vec<u8>>,
) -> std::io::Result<InputEnd> {
    let mut scanner = keys.map(DetachScanner::new);
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::new();
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(InputEnd::Closed);
        }
        let detached = match &mut scanner {
            Some(s) => {
                out.clear();
                let d = s.feed(&buf[..n], &mut out);
                to.write_all(&out).await?;
                d
            }
            None => {
                to.write_all(&buf[..n]).await?;
                false
            }
        };
        to.flush().await?;
        if detached {
            return Ok(InputEnd::Detached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_dockers() {
        assert_eq!(parse_detach_keys(""), Some(vec![0x10, 0x11]));
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Some(vec![0x10, 0x11]));
        assert_eq!(parse_detach_keys("ctrl-x,a"), Some(vec![0x18, b'a']));
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-[,ctrl-_,DEL"), Some(vec![0, 27, 31, 127]));
        for bad in ["ctrl-", "ctrl-p,", "ab", "CTRL-P", "ctrl-1", ","] {
            assert_eq!(parse_detach_keys(bad), None, "{bad}");
        }
    }

    #[test]
    fn scanner_holds_back_a_prefix_and_passes_a_broken_one() {
        let mut s = DetachScanner::new(vec![0x18, b'a']);
        let mut out = Vec::new();
        assert!(!s.feed(b"q\x18", &mut out));
        assert_eq!(out, b"q");
        assert!(!s.feed(b"b\x18\x18", &mut out));
        assert_eq!(out, b"q\x18b\x18");
        assert!(s.feed(b"a-dropped", &mut out));
        assert_eq!(out, b"q\x18b\x18");
        let mut s = DetachScanner::new(DEFAULT_DETACH_KEYS.to_vec());
        let mut out = Vec::new();
        assert!(s.feed(b"abc\n\x10\x11", &mut out));
        assert_eq!(out, b"abc\n");
    }

    #[tokio::test]
    async fn input_copy_stops_at_the_sequence() {
        let mut out = Vec::new();
        let end = copy_input(&b"hi\x10x\x10\x11rest"[..], &mut out, Some(DEFAULT_DETACH_KEYS.to_vec())).await;
        assert_eq!(end.expect("copy"), InputEnd::Detached);
        assert_eq!(out, b"hi\x10x");
        let mut out = Vec::new();
        let end = copy_input(&b"hi\x10\x11"[..], &mut out, None).await;
        assert_eq!(end.expect("copy"), InputEnd::Closed);
        assert_eq!(out, b"hi\x10\x11");
    }

    #[tokio::test]
    async fn raw_copy_strips_headers() {
        let mut input = Vec::new();
        input.extend(berth_api::stream::frame_header(1, 3));
        input.extend(b"abc");
        input.extend(berth_api::stream::frame_header(2, 2));
        input.extend(b"de");
        let mut out = Vec::new();
        copy_frames(&input[..], &mut out, true).await.expect("copy");
        assert_eq!(out, b"abcde");
        let mut out = Vec::new();
        copy_frames(&input[..], &mut out, false).await.expect("copy");
        assert_eq!(out, input);
    }
}
