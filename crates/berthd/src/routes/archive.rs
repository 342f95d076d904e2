//! `HEAD/GET/PUT /containers/{id}/archive`: what `docker cp` uses.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::Error;

use super::{Daemonic, Query, flag};
use crate::archive::{self, ExtractOptions, PathStat};
use crate::routes::ApiResult;

const STAT_HEADER: &str = "x-docker-container-path-stat";

fn path_param(q: &std::collections::HashMap<String, String>) -> Result<String, Error> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| Error::InvalidArgument("Path cannot be empty".into()))
}

fn with_stat(mut resp: Response, stat: &PathStat) -> Response {
    if let Ok(v) = HeaderValue::from_str(&stat.header()) {
        resp.headers_mut().insert(STAT_HEADER, v);
    }
    resp
}

pub async fn head(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let path = path_param(&q)?;
    let stat = archive::with_fs(&d, &c, move |fs| fs.stat(&path, &id)).await?;
    Ok(with_stat(StatusCode::OK.into_response(), &stat))
}

/// A writer that sends what it is given as body chunks (blocking; for the archive thread).
pub(super) struct ChannelWriter(pub(super) tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn get(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let c_events = c.clone();
    let path = path_param(&q)?;
    let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let d2 = d.0.clone();
    tokio::spawn(async move {
        let r = archive::with_fs(&d2, &c, move |fs| {
            let stat = fs.stat(&path, &id);
            let ok = stat.is_ok();
            let _ = stat_tx.send(stat);
            if ok {
                // 64 KiB chunks: a write per tar block would be a channel message per 512 bytes.
                let out = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx.clone()));
                if let Err(e) = fs.archive(&path, &id, out) {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
            Ok(())
        })
        .await;
        if let Err(e) = r {
            tracing::debug!("archive: {e}");
        }
    });
    let stat = match stat_rx.await {
        Ok(s) => s?,
        Err(_) => return Err(Error::Internal("the archive could not be read".into()).into()),
    };
    c_events.publish(&d.events, "archive-path", &[]);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let resp = ([("content-type", "application/x-tar")], Body::from_stream(stream)).into_response();
    Ok(with_stat(resp, &stat))
}

pub async fn put(d: Daemonic, Path(id): Path<String>, q: Query, req: Request<Body>) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    let path = path_param(&q)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: flag(&q, "noOverwriteDirNonDir"),
        copy_uid_gid: flag(&q, "copyUIDGID"),
    };
    let (body, drained) = super::body_reader(req.into_body());
    drained.then(archive::with_fs(&d, &c, move |fs| fs.extract(&path, &id, opts, body)).await).await?;
    c.publish(&d.events, "extract-to-dir", &[]);
    Ok(StatusCode::OK)
}

/// A streamed response body fed by a blocking writer: the writer and the body.
pub(super) fn streamed_body() -> (std::io::BufWriter<ChannelWriter>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    (std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx)), Body::from_stream(stream))
}

/// `GET /containers/{id}/export`.
pub async fn export(d: Daemonic, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let (out, body) = streamed_body();
    let tx = out.get_ref().0.clone();
    let d2 = d.0.clone();
    tokio::spawn(async move {
        if let Err(e) = archive::export(&d2, &c, out).await {
            tracing::warn!("export of {id}: {e}");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok(([("content-type", "application/x-tar")], body).into_response())
}
