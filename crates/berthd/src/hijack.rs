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

#[cfg(test)]
mod tests {
    use super::*;

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
