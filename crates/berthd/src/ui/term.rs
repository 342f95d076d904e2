//! The terminal of a container's page: an exec with a TTY (`/bin/sh`), its output to the browser as Server-Sent
//! Events, its keystrokes and resizes as POSTs (behind the session, `Origin` and CSRF checks like every other POST).
//! SSE and POST rather than a WebSocket: the rest of the dashboard is SSE already, and axum's `ws` would bring a
//! WebSocket stack (tungstenite, sha1) into berthd for this one page.
//!
//! The exec is the API's (created through it, so it shows in `exec_create`/`exec_start` events and inspects), relayed
//! by the same `exec::relay` as a hijacked `docker exec -it` connection, over an in-memory pipe instead of a socket.
//! When the page goes away (its event stream ends) the shell gets SIGHUP, as from a closed terminal window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::pages::seg;
use super::{Ui, UiError, checked};
use crate::exec::{self, ExecInstance};

/// At most this many terminals open at once (each is a shell in a container).
const MAX_TERMINALS: usize = 16;
/// A terminal whose page never connects its output within this long is closed.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// The in-memory pipe's buffer.
const PIPE: usize = 64 << 10;

/// One open terminal.
struct Term {
    inst: Arc<ExecInstance>,
    input: Arc<tokio::sync::Mutex<WriteHalf<DuplexStream>>>,
    /// Taken by the page's event stream (once).
    output: Option<ReadHalf<DuplexStream>>,
}

/// The open terminals, by exec ID.
#[derive(Default)]
pub struct Terminals {
    open: Mutex<HashMap<String, Term>>,
}

impl Terminals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Term>> {
        match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Forgets a terminal and hangs its shell up.
    fn close(&self, id: &str) {
        if let Some(t) = self.lock().remove(id) {
            exec::hang_up(&t.inst);
        }
    }
}

/// `POST /containers/{id}/terminal`: a shell with a TTY in the container; answers `{"Id": <exec ID>}`.
pub async fn open(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Result<Response, UiError> {
    if ui.terminals.lock().len() >= MAX_TERMINALS {
        return Err(UiError::new(StatusCode::TOO_MANY_REQUESTS, "too many terminals open; close one first"));
    }
    let config = serde_json::json!({
        "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": true,
        "Cmd": ["/bin/sh"], "Env": ["TERM=xterm"],
    });
    let path = format!("/containers/{}/exec", seg(&id));
    let resp = checked(ui.api_with(Method::POST, &path, config.to_string().into_bytes()).await).await?;
    let body = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let exec_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("Id").and_then(|i| i.as_str()).map(str::to_string))
        .ok_or_else(|| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the exec has no ID"))?;
    let d = ui.daemon().clone();
    let inst = exec::get(&d, &exec_id).map_err(|e| UiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let (io, child) =
        exec::start(&d, &inst, false).await.map_err(|e| UiError::new(StatusCode::CONFLICT, e.to_string()))?;
    let (ours, theirs) = tokio::io::duplex(PIPE);
    let (output, input) = tokio::io::split(ours);
    let relayed = inst.clone();
    tokio::spawn(async move {
        exec::relay(io, theirs, true, true, None, || {}, async {
            exec::finish(&d, &relayed, child).await;
        })
        .await;
    });
    ui.terminals
        .lock()
        .insert(exec_id.clone(), Term { inst, input: Arc::new(tokio::sync::Mutex::new(input)), output: Some(output) });
    // A page that never comes for the output leaves no shell behind.
    let (weak, watched) = (Arc::downgrade(&ui), exec_id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(CONNECT_WITHIN).await;
        if let Some(ui) = weak.upgrade() {
            let waiting = ui.terminals.lock().get(&watched).is_some_and(|t| t.output.is_some());
            if waiting {
                ui.terminals.close(&watched);
            }
        }
    });
    Ok(axum::Json(serde_json::json!({ "Id": exec_id })).into_response())
}

/// Closes the terminal when the page's stream is dropped.
struct HangUp {
    ui: Arc<Ui>,
    id: String,
}

impl Drop for HangUp {
    fn drop(&mut self) {
        self.ui.terminals.close(&self.id);
    }
}

/// The longest tail of `buf` that may be the start of an unfinished UTF-8 character.
fn unfinished_utf8(buf: &[u8]) -> usize {
    match std::str::from_utf8(buf) {
        Ok(_) => 0,
        Err(e) if e.error_len().is_none() => buf.len() - e.valid_up_to(),
        Err(_) => 0,
    }
}

/// `GET /sse/terminals/{exec}`: the terminal's output, `event: out` with the text as a JSON string (carriage
/// returns and escapes intact), then `event: exit` with the exit code.
pub async fn output(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Result<Response, UiError> {
    let (reader, inst) = {
        let mut open = ui.terminals.lock();
        let t = open.get_mut(&id).ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, "no such terminal"))?;
        let r = t.output.take().ok_or_else(|| UiError::new(StatusCode::CONFLICT, "this terminal is shown already"))?;
        (r, t.inst.clone())
    };
    let guard = HangUp { ui: ui.clone(), id };
    let stream = futures_util::stream::unfold(
        (reader, Vec::<u8>::new(), Some(guard), inst),
        |(mut reader, mut pending, guard, inst)| async move {
            let guard = guard?;
            let mut buf = vec![0u8; 16 << 10];
            match reader.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    pending.extend_from_slice(&buf[..n]);
                    let keep = unfinished_utf8(&pending);
                    let rest = pending.split_off(pending.len() - keep);
                    let text = String::from_utf8_lossy(&pending).into_owned();
                    let msg = super::sse::message("out", &serde_json::Value::String(text).to_string());
                    Some((msg, (reader, rest, Some(guard), inst)))
                }
                _ => {
                    // The relay closes its end once the exit is recorded.
                    let code = exec::exit_code(&inst).map_or_else(|| "null".to_string(), |c| c.to_string());
                    drop(guard);
                    Some((super::sse::message("exit", &code), (reader, pending, None, inst)))
                }
            }
        },
    );
    Ok(super::sse::respond(stream.boxed()))
}

/// `POST /terminals/{exec}/input`: keystrokes (the body, as they are).
pub async fn input(State(ui): State<Arc<Ui>>, Path(id): Path<String>, body: Bytes) -> Result<StatusCode, UiError> {
    let input = ui
        .terminals
        .lock()
        .get(&id)
        .map(|t| t.input.clone())
        .ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, "no such terminal"))?;
    let mut w = input.lock().await;
    w.write_all(&body).await.map_err(|e| UiError::new(StatusCode::GONE, format!("the terminal has closed: {e}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /terminals/{exec}/resize?h=&w=`.
pub async fn resize(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Result<StatusCode, UiError> {
    let q = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let dim = |k: &str| q.get(k).and_then(|v| v.parse::<u16>().ok()).filter(|v| *v > 0 && *v <= 1000);
    let (Some(h), Some(w)) = (dim("h"), dim("w")) else {
        return Err(UiError::new(StatusCode::BAD_REQUEST, "h and w: 1 to 1000"));
    };
    let inst = ui
        .terminals
        .lock()
        .get(&id)
        .map(|t| t.inst.clone())
        .ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, "no such terminal"))?;
    exec::resize(&inst, h, w).map_err(|e| UiError::new(StatusCode::CONFLICT, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_reads_is_held_back() {
        let s = "é".as_bytes();
        assert_eq!(unfinished_utf8(&[b'a', s[0]]), 1);
        assert_eq!(unfinished_utf8("aé".as_bytes()), 0);
        // Invalid bytes are not held (they show as replacement characters).
        assert_eq!(unfinished_utf8(&[b'a', 0xff, b'b']), 0);
    }
}
