//! `GET /events`: `since`, `until`, `filters`; the history, then live events, one JSON object per line.

use axum::Extension;
use axum::response::{IntoResponse, Response};
use berth_api::{ApiVersion, Error};
use futures_util::StreamExt;

use super::{Daemonic, Query};
use crate::events;
use crate::filters::Filters;
use crate::routes::ApiResult;
use crate::views;

fn time(q: &Query, key: &str) -> Result<Option<std::time::SystemTime>, Error> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => berth_api::time::parse_since(v, std::time::SystemTime::now())
            .map(Some)
            .ok_or_else(|| Error::InvalidArgument(format!("invalid value for {key}: {v:?}"))),
    }
}

pub async fn events(d: Daemonic, q: Query, version: Option<Extension<ApiVersion>>) -> ApiResult<Response> {
    let version = version.map(|v| v.0).unwrap_or(berth_api::API_VERSION);
    let f = Filters::from_query(&q)?;
    events::filter::check(&f)?;
    let (since, until) = (time(&q, "since")?, time(&q, "until")?);
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        let p = |k: &str| q.get(k).cloned().unwrap_or_default();
        return Err(Error::InvalidArgument(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            p("since"),
            p("until")
        ))
        .into());
    }
    let stream = events::watch(&d.events, since, until, f).map(move |e| {
        let mut line = views::event::render(&e, version).to_string();
        line.push('\n');
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line))
    });
    Ok(([("content-type", "application/json")], axum::body::Body::from_stream(stream)).into_response())
}
