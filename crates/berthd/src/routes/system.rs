//! `/_ping`, `/version`, `/info`, `/system/df`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Daemonic, Version};
use crate::containers::{self, Status};
use crate::routes::{ApiError, ApiResult};
use crate::views;

pub async fn ping() -> Response {
    (
        [
            ("builder-version", "1"),
            ("cache-control", "no-cache, no-store, must-revalidate"),
            ("pragma", "no-cache"),
            ("content-type", "text/plain; charset=utf-8"),
        ],
        "OK",
    )
        .into_response()
}

pub async fn version() -> Json<Value> {
    Json(views::system::version(&views::system::Host::read()))
}

pub async fn info(d: Daemonic, Version(v): Version) -> ApiResult<Json<Value>> {
    let all = d.all_containers();
    let count = |s: &[Status]| all.iter().filter(|c| s.contains(&c.status())).count();
    let store = d.store.clone();
    let images = crate::task::blocking(move || store.list_images().map_err(crate::daemon::store_error)).await?;
    let counts = views::system::Counts {
        containers: all.len(),
        running: count(&[Status::Running]),
        paused: count(&[Status::Paused]),
        stopped: count(&[Status::Exited, Status::Created, Status::Dead]),
        images: images.len(),
    };
    let live = d.reloadable();
    let settings = views::system::Settings {
        engine_id: d.config.engine_id.clone(),
        debug: live.log_level >= tracing::Level::DEBUG,
        insecure_registries: live.insecure_registries,
        data_root: d.config.data_root.clone(),
        log_driver: d.config.log.driver.clone(),
        default_runtime: d.config.runtime.clone(),
        userns_remap: d.config.userns_remap.is_some(),
    };
    Ok(Json(views::system::info(counts, &views::system::Host::read(), &settings, v)))
}

pub async fn df(d: Daemonic, Version(v): Version) -> ApiResult<Json<Value>> {
    let store = d.store.clone();
    let images = crate::task::blocking(move || store.list_images().map_err(crate::daemon::store_error)).await?;
    let recs: Vec<_> = d.all_containers().iter().map(|c| c.record()).collect();
    let dd = d.0.clone();
    let now = std::time::SystemTime::now();
    let (img_json, ctr_json, layers) = tokio::task::spawn_blocking(move || {
        // SharedSize: the part of an image held by layers that other images use too.
        let mut uses: std::collections::HashMap<&berth_store::ChainId, usize> = std::collections::HashMap::new();
        for l in images.iter().flat_map(|i| &i.layers) {
            *uses.entry(l).or_default() += 1;
        }
        let shared = |i: &berth_store::Image| -> u64 {
            i.layers
                .iter()
                .filter(|l| uses.get(l).is_some_and(|n| *n > 1))
                .filter_map(|l| dd.store.layer(l).ok().flatten())
                .map(|l| l.size)
                .sum()
        };
        let imgs: Vec<Value> = images
            .iter()
            .map(|i| {
                let users = recs.iter().filter(|r| r.image_id == i.id.to_string()).count();
                views::image::usage(i, users as i64, shared(i) as i64, v)
            })
            .collect();
        let ctrs: Vec<Value> = recs
            .iter()
            .map(|r| {
                let facts = views::container::Facts::of(&dd, r);
                views::container::summary(r, &facts, now, Some(containers::sizes_blocking(&dd, r)), v)
            })
            .collect();
        // Every layer once, however many images share it.
        let layers = dd.store.disk_usage().unwrap_or(0);
        (imgs, ctrs, layers)
    })
    .await
    .map_err(|e| ApiError(berth_api::Error::Internal(e.to_string())))?;
    let volumes: Vec<Value> = crate::volumes::usage(&d)
        .await?
        .iter()
        .map(|(vol, size, refs)| views::volume::volume(vol, &d.volumes.mountpoint(&vol.name), Some((*size, *refs))))
        .collect();
    let store = d.store.clone();
    let cache = crate::task::blocking(move || store.cache_list().map_err(crate::daemon::store_error)).await?;
    let build_cache: Vec<Value> = cache
        .iter()
        .map(|(key, size, created, used)| views::system::cache_entry(key, *size, *created, *used))
        .collect();
    Ok(Json(views::system::df(layers, img_json, ctr_json, volumes, build_cache, v)))
}

pub async fn no_session() -> Response {
    ApiError(berth_api::Error::NotFound("page not found".into())).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    let _ = StatusCode::NOT_FOUND;
    ApiError(berth_api::Error::NotFound(format!("page not found: {}", uri.path()))).into_response()
}

/// The fallback's answer from a route that takes a path of any depth (`/plugins/{*path}`).
pub fn not_found_path<T>(path: &str) -> ApiResult<T> {
    Err(ApiError(berth_api::Error::NotFound(format!("page not found: {path}"))))
}
