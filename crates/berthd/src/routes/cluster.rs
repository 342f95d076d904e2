//! `/swarm`, `/services`, `/nodes`, `/tasks`, `/secrets`, `/configs` and `/plugins`: Berth runs neither swarm mode
//! nor managed plugins, so these answer as a Docker 20.10 that is not part of a swarm and has no plugins installed
//! (moby's `daemon/cluster` and `plugin` errors): 503 "This node is not a swarm manager..." for the cluster's objects,
//! an empty plugin list and "plugin not found" for the plugins. Creating or joining a swarm and installing a plugin
//! are refused with 501, as operations this daemon does not have.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use berth_api::Error;
use serde_json::Value;

use super::Query;
use crate::filters::Filters;
use crate::routes::ApiResult;

/// moby's `errNoManager` for a node outside any swarm.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" \
                                 to connect this node to swarm and try again.";
/// moby's `errNoSwarm` (a leave outside any swarm).
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";
/// The answer to `swarm init`/`swarm join` that got past Docker's own checks.
const NO_SWARM_MODE: &str = "Berth does not support swarm mode: this node cannot create or join a swarm";
/// The answer to installing a plugin.
const NO_PLUGINS: &str = "Berth does not support managed plugins";

fn not_a_manager() -> Error {
    Error::Unavailable(NOT_A_MANAGER.into())
}

/// Decodes a JSON request body as moby's swarm handlers do: an empty body is `got EOF while reading request body`.
fn body(raw: &[u8]) -> Result<Value, Error> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::InvalidArgument("got EOF while reading request body".into()));
    }
    serde_json::from_slice(raw).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// moby's `validateAddr` for an init's or join's `ListenAddr`: only an empty one is refused.
fn listen_addr(req: &Value) -> Result<(), Error> {
    match req.get("ListenAddr").and_then(Value::as_str).unwrap_or("") {
        "" => Err(Error::InvalidArgument("invalid ListenAddr \"\": invalid empty address".into())),
        _ => Ok(()),
    }
}

/// `POST /swarm/init`: Docker's checks of the request, then a refusal.
pub async fn init(raw: Bytes) -> ApiResult<Json<Value>> {
    let req = body(&raw)?;
    listen_addr(&req)?;
    let name = req.pointer("/Spec/Name").and_then(Value::as_str).unwrap_or("");
    if !name.is_empty() && name != "default" {
        return Err(Error::InvalidArgument("swarm spec must be named \"default\"".into()).into());
    }
    Err(Error::NotImplemented(NO_SWARM_MODE.into()).into())
}

/// `POST /swarm/join`: Docker's checks of the request, then a refusal.
pub async fn join(raw: Bytes) -> ApiResult<Json<Value>> {
    let req = body(&raw)?;
    listen_addr(&req)?;
    if req.get("RemoteAddrs").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        return Err(Error::InvalidArgument("at least 1 RemoteAddr is required to join".into()).into());
    }
    Err(Error::NotImplemented(NO_SWARM_MODE.into()).into())
}

/// `POST /swarm/leave`.
pub async fn leave() -> ApiResult<Json<Value>> {
    Err(Error::Unavailable(NOT_IN_A_SWARM.into()).into())
}

/// `POST /swarm/update` and `POST /{services,nodes,secrets,configs}/{id}/update` (`kind`: `swarm`, `service`, ...):
/// the body, then the `version`, are checked first, as Docker does.
pub async fn update(kind: &'static str, q: Query, raw: Bytes) -> ApiResult<Json<Value>> {
    body(&raw)?;
    let version = q.get("version").map(String::as_str).unwrap_or("");
    if version.parse::<u64>().is_err() {
        return Err(Error::InvalidArgument(format!(
            "invalid {kind} version '{version}': strconv.ParseUint: parsing \"{version}\": invalid syntax"
        ))
        .into());
    }
    Err(not_a_manager().into())
}

/// The create and unlock requests that carry a body: a bad body is a 400, as in Docker.
pub async fn with_body(raw: Bytes) -> ApiResult<Json<Value>> {
    body(&raw)?;
    Err(not_a_manager().into())
}

/// The lists: their `filters` must parse, then no swarm.
pub async fn list(q: Query) -> ApiResult<Json<Value>> {
    Filters::from_query(&q)?;
    Err(not_a_manager().into())
}

/// Inspecting or removing a service, node, task, secret or config; the swarm and its unlock key.
pub async fn object() -> ApiResult<Json<Value>> {
    Err(not_a_manager().into())
}

/// `GET /services/{id}/logs`, `GET /tasks/{id}/logs`: Docker asks for a stream before anything else.
pub async fn logs(q: Query) -> ApiResult<Json<Value>> {
    if !super::flag(&q, "stdout") && !super::flag(&q, "stderr") {
        return Err(Error::InvalidArgument("Bad parameters: you must choose at least one stream".into()).into());
    }
    Err(not_a_manager().into())
}

/// `GET /plugins`: none installed (the filters Docker accepts are checked).
pub async fn plugins(q: Query) -> ApiResult<Json<Value>> {
    let f = Filters::from_query(&q)?;
    f.accept(&["capability", "enabled"])?;
    let enabled = f.get("enabled");
    if f.contains("enabled") && !enabled.iter().any(|v| v == "true" || v == "false") {
        return Err(Error::InvalidArgument(format!("invalid filter 'enabled=[{}]'", enabled.join(" "))).into());
    }
    Ok(Json(Value::Array(Vec::new())))
}

/// `GET /plugins/privileges`, `POST /plugins/pull`, `POST /plugins/create`: installing a plugin.
pub async fn install() -> ApiResult<Json<Value>> {
    Err(Error::NotImplemented(NO_PLUGINS.into()).into())
}

fn no_plugin(name: &str) -> ApiResult<Json<Value>> {
    Err(Error::NotFound(format!("plugin \"{name}\" not found")).into())
}

/// `GET /plugins/{name}/json`: none is installed.
pub async fn plugin_get(Path(path): Path<String>) -> ApiResult<Json<Value>> {
    match path.strip_suffix("/json") {
        Some(name) => no_plugin(name),
        None => super::system::not_found_path(&format!("/plugins/{path}")),
    }
}

/// The `enable`, `disable`, `push`, `upgrade` and `set` operations of one plugin: none is installed.
pub async fn plugin_post(Path(path): Path<String>) -> ApiResult<Json<Value>> {
    match ["/enable", "/disable", "/push", "/upgrade", "/set"].iter().find_map(|s| path.strip_suffix(s)) {
        Some(name) => no_plugin(name),
        None => super::system::not_found_path(&format!("/plugins/{path}")),
    }
}

/// `DELETE /plugins/{name}`.
pub async fn plugin_delete(Path(name): Path<String>) -> ApiResult<Json<Value>> {
    no_plugin(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_requests_are_checked_as_docker_checks_them() {
        assert_eq!(body(b" ").expect_err("empty").to_string(), "got EOF while reading request body");
        assert!(listen_addr(&serde_json::json!({"ListenAddr": "0.0.0.0:2377"})).is_ok());
        assert!(listen_addr(&serde_json::json!({})).is_err());
    }
}
