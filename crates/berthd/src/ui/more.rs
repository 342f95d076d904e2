//! The pages added for images (an image's layers, pull), compose projects and the networks' picture.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use super::auth::Session;
use super::pages::{container_link, esc, page, post_button, s, seg, short, size, strs, table, unix_time};
use super::{Ui, UiError, checked};

/// The label compose puts on everything of a project (docker-compose 1.x and Compose v2 alike).
pub const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";
const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
const CONFIG_FILES: &str = "com.docker.compose.project.config_files";

fn label<'a>(c: &'a Value, key: &str) -> &'a str {
    c.pointer(&format!("/Labels/{}", key.replace('~', "~0").replace('/', "~1"))).and_then(Value::as_str).unwrap_or("")
}

/// `/images/{id}`: tags, layers, the history lines, the containers that use it.
pub async fn image(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let inspect = ui.api_json(&format!("/images/{}/json", seg(&id))).await?;
    let history = ui.api_json(&format!("/images/{}/history", seg(&id))).await?;
    let containers = ui.api_json("/containers/json?all=1").await?;
    let full = s(&inspect, "Id");
    let tags: Vec<String> = strs(&inspect, "RepoTags").into_iter().map(esc).collect();
    let mut c = format!(
        "<p><code>{}</code> · {} · {}/{} · created {}</p><p>Tags: {}</p>",
        esc(full),
        esc(&size(inspect.get("Size").and_then(Value::as_f64).unwrap_or(0.0))),
        esc(s(&inspect, "Os")),
        esc(s(&inspect, "Architecture")),
        esc(s(&inspect, "Created")),
        if tags.is_empty() { "none".to_string() } else { tags.join(", ") },
    );
    let users: Vec<String> =
        containers.as_array().into_iter().flatten().filter(|c| s(c, "ImageID") == full).map(container_link).collect();
    let _ = write!(
        c,
        "<section><h2>Used by</h2><p>{}</p></section>",
        if users.is_empty() { "No container.".to_string() } else { users.join(", ") }
    );
    let rows: Vec<Vec<String>> = history
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let by = s(h, "CreatedBy");
            // Dockerfile steps as `docker history` shows them, without the shell's wrapper.
            let by = by.strip_prefix("/bin/sh -c #(nop) ").unwrap_or(by);
            vec![
                h.get("Created").and_then(Value::as_i64).map(unix_time).unwrap_or_default(),
                format!("<code>{}</code>", esc(by)),
                esc(&size(h.get("Size").and_then(Value::as_f64).unwrap_or(0.0))),
                esc(s(h, "Comment")),
            ]
        })
        .collect();
    c.push_str("<section><h2>History</h2>");
    table(&mut c, "history, newest first", &["Created", "Created by", "Size", "Comment"], &rows);
    let layers: Vec<Vec<String>> = inspect
        .pointer("/RootFS/Layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .enumerate()
        .map(|(i, l)| vec![(i + 1).to_string(), format!("<code>{}</code>", esc(l))])
        .collect();
    c.push_str("</section><section><h2>Layers</h2>");
    table(&mut c, "layers (diff IDs), base first", &["#", "Diff ID"], &layers);
    c.push_str("</section>");
    let title = inspect.pointer("/RepoTags/0").and_then(Value::as_str).unwrap_or(short(full));
    Ok(page(&format!("Image {title}"), "/images", &session, "image", "", &c))
}

/// `POST /images/pull` (body: the reference): the API's pull, its progress passed on as JSON lines.
pub async fn pull(State(ui): State<Arc<Ui>>, body: Bytes) -> Result<Response, UiError> {
    let reference = String::from_utf8_lossy(&body).trim().to_string();
    if reference.is_empty() || reference.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UiError::new(StatusCode::BAD_REQUEST, "an image reference, such as busybox:latest"));
    }
    // `name[:tag]` or `name@digest`; a colon before the last slash is a registry's port.
    let (name, tag) = match reference.split_once('@') {
        Some((n, d)) => (n.to_string(), d.to_string()),
        None => match reference.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
            _ => (reference.clone(), "latest".to_string()),
        },
    };
    let path = format!("/images/create?fromImage={}&tag={}", seg(&name), seg(&tag));
    let resp = checked(ui.api(Method::POST, &path).await).await?;
    Ok(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], Body::new(resp.into_body()))
        .into_response())
}

/// A compose project as its containers' labels show it.
#[derive(Default)]
struct Project {
    containers: Vec<Value>,
    working_dir: String,
    config_files: String,
}

async fn projects(ui: &Ui) -> Result<BTreeMap<String, Project>, UiError> {
    let filters = serde_json::json!({ "label": [PROJECT] }).to_string();
    let list = ui.api_json(&format!("/containers/json?all=1&filters={}", seg(&filters))).await?;
    let mut out: BTreeMap<String, Project> = BTreeMap::new();
    for c in list.as_array().into_iter().flatten() {
        let p = out.entry(label(c, PROJECT).to_string()).or_default();
        if p.working_dir.is_empty() {
            p.working_dir = label(c, WORKING_DIR).to_string();
            p.config_files = label(c, CONFIG_FILES).to_string();
        }
        p.containers.push(c.clone());
    }
    Ok(out)
}

fn project_buttons(name: &str, csrf: &str, back: &str) -> String {
    [("start", "Start"), ("stop", "Stop"), ("restart", "Restart"), ("down", "Down")]
        .iter()
        .map(|(a, l)| {
            let class = if *a == "down" { "act-down act-remove".to_string() } else { format!("act-{a}") };
            post_button(&format!("/compose/{}/{a}", seg(name)), l, &class, &format!("{l} project {name}"), csrf, back)
        })
        .collect()
}

/// Services of a project: replicas and how many run.
fn services(p: &Project) -> Vec<Vec<String>> {
    let mut by: BTreeMap<&str, (usize, usize, BTreeSet<&str>)> = BTreeMap::new();
    for c in &p.containers {
        let e = by.entry(label(c, SERVICE)).or_default();
        e.0 += 1;
        if s(c, "State") == "running" {
            e.1 += 1;
        }
        e.2.insert(s(c, "Image"));
    }
    by.into_iter()
        .map(|(svc, (n, running, images))| {
            vec![esc(svc), format!("{running}/{n}"), images.into_iter().map(esc).collect::<Vec<_>>().join(", ")]
        })
        .collect()
}

const COMPOSE_NOTE: &str = "<p class=\"hint\">The daemon knows a project by its containers' labels only: Start, \
    Stop and Restart act on its containers; Down removes its containers and networks (its volumes stay, as \
    <code>docker-compose down</code> without <code>-v</code>). Creating a project, or bringing it up again after \
    Down, needs its compose file: run <code>docker-compose up -d</code> in its directory.</p>";

/// `/compose`: the projects.
pub async fn compose(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
) -> Result<Html<String>, UiError> {
    let projects = projects(&ui).await?;
    let mut c = String::from(COMPOSE_NOTE);
    if projects.is_empty() {
        c.push_str("<p>No compose project: no container has the label <code>com.docker.compose.project</code>.</p>");
    }
    for (name, p) in &projects {
        let running = p.containers.iter().filter(|c| s(c, "State") == "running").count();
        let _ = write!(
            c,
            "<section class=\"project\"><h2><a href=\"/compose/{}\">{}</a> <small>{running}/{} running</small></h2>\
             <p class=\"hint\">{}</p><div class=\"actions\">{}</div>",
            seg(name),
            esc(name),
            p.containers.len(),
            esc(&if p.working_dir.is_empty() {
                String::new()
            } else {
                format!("{} ({})", p.working_dir, p.config_files)
            }),
            project_buttons(name, &session.csrf, "/compose"),
        );
        table(&mut c, &format!("services of {name}"), &["Service", "Running", "Image"], &services(p));
        c.push_str("</section>");
    }
    Ok(page("Compose projects", "/compose", &session, "compose", "", &c))
}

/// `/compose/{project}`: its services, containers and their logs together.
pub async fn project(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut all = projects(&ui).await?;
    let p = all.remove(&name).ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, format!("no project {name:?}")))?;
    let back = format!("/compose/{}", seg(&name));
    let mut c = format!("<div class=\"actions\">{}</div>{COMPOSE_NOTE}", project_buttons(&name, &session.csrf, &back));
    table(&mut c, "services", &["Service", "Running", "Image"], &services(&p));
    let rows: Vec<Vec<String>> = p
        .containers
        .iter()
        .map(|k| {
            vec![
                container_link(k),
                esc(label(k, SERVICE)),
                format!("<span class=\"state state-{0}\">{0}</span>", esc(s(k, "State"))),
                esc(s(k, "Status")),
            ]
        })
        .collect();
    table(&mut c, "containers", &["Container", "Service", "State", "Status"], &rows);
    let _ = write!(
        c,
        "<section aria-labelledby=\"logs-h\"><h2 id=\"logs-h\">Logs of every container</h2><div class=\"toolbar\">\
         <label><input type=\"checkbox\" id=\"follow\" checked> Follow</label>\
         <label><input type=\"checkbox\" id=\"timestamps\"> Timestamps</label>\
         <label for=\"logsearch\">Search</label><input id=\"logsearch\" type=\"search\" autocomplete=\"off\"></div>\
         <pre id=\"logs\" class=\"logs\" tabindex=\"0\" aria-label=\"Logs of the project's containers\" \
         data-src=\"/sse/compose/{}/logs\"></pre></section>",
        seg(&name)
    );
    Ok(page(&format!("Project {name}"), "/compose", &session, "project", &name, &c))
}

/// `POST /compose/{project}/{action}`: start, stop, restart its containers (all at once), or `down`: remove them and
/// the project's networks.
pub async fn project_action(
    State(ui): State<Arc<Ui>>,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, UiError> {
    let p = projects(&ui).await?.remove(&name).unwrap_or_default();
    let ids: Vec<String> = p.containers.iter().map(|c| s(c, "Id").to_string()).collect();
    let (method, suffix) = match action.as_str() {
        "start" | "stop" | "restart" => (Method::POST, format!("/{action}")),
        "down" => (Method::DELETE, "?force=1".to_string()),
        other => return Err(UiError::new(StatusCode::NOT_FOUND, format!("no action {other:?}"))),
    };
    if action == "down" {
        // As `docker-compose down`: each is stopped first (its stop signal and timeout), then removed; one already
        // stopped answers 304, which is no error here.
        let stops = ids.iter().map(|id| {
            let (ui, path) = (ui.clone(), format!("/containers/{}/stop", seg(id)));
            async move {
                let _ = ui.api(Method::POST, &path).await;
            }
        });
        futures_util::future::join_all(stops).await;
    }
    let calls = ids.iter().map(|id| {
        let (ui, method, path) = (ui.clone(), method.clone(), format!("/containers/{}{suffix}", seg(id)));
        async move { checked(ui.api(method, &path).await).await }
    });
    let results = futures_util::future::join_all(calls).await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    if action == "down" {
        let filters = serde_json::json!({ "label": [format!("{PROJECT}={name}")] }).to_string();
        let nets = ui.api_json(&format!("/networks?filters={}", seg(&filters))).await?;
        for n in nets.as_array().into_iter().flatten() {
            checked(ui.api(Method::DELETE, &format!("/networks/{}", seg(s(n, "Id")))).await).await?;
        }
    }
    let back = super::form_field(&body, "back").filter(|b| super::pages::local_path(b));
    let back = if action == "down" { "/compose".to_string() } else { back.unwrap_or_else(|| "/compose".into()) };
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response())
}

/// `/sse/compose/{project}/logs`: the logs of every container of the project, each line after its container's name.
pub async fn project_logs(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> Result<Response, UiError> {
    let p = projects(&ui).await?.remove(&name).unwrap_or_default();
    let mut streams = Vec::new();
    for c in &p.containers {
        let cname = c
            .get("Names")
            .and_then(|n| n.get(0))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let lines = super::sse::log_lines(&ui, s(c, "Id"), "&follow=1&tail=100").await?;
        streams.push(
            lines
                .flat_map(move |batch| {
                    let prefixed: Vec<Bytes> = batch
                        .into_iter()
                        .map(|mut l| {
                            // "<timestamp> <name> | text"
                            l.text = match l.text.split_once(' ') {
                                Some((ts, rest)) => format!("{ts} {cname} | {rest}"),
                                None => format!("{cname} | {}", l.text),
                            };
                            l.message()
                        })
                        .collect();
                    futures_util::stream::iter(prefixed)
                })
                .boxed(),
        );
    }
    Ok(super::sse::respond(futures_util::stream::select_all(streams)))
}

/// The networks as a picture: the containers in a row on top, each network a line below, a drop from a container to
/// each network it is on, labelled with its address and aliases. Drawn here (SVG), so the page needs no script for it.
pub fn network_picture(networks: &[Value], containers: &[Value]) -> String {
    const BOX_W: usize = 170;
    const TOP: usize = 90;
    const GAP: usize = 64;
    // Containers on at least one network, in the list's order (newest first).
    let on: Vec<&Value> = containers
        .iter()
        .filter(|c| c.pointer("/NetworkSettings/Networks").and_then(Value::as_object).is_some_and(|m| !m.is_empty()))
        .collect();
    // (Room on the right for the last drop's label.)
    let width = (20 + on.len() * BOX_W + 200).max(640);
    let height = TOP + networks.len().max(1) * GAP + 10;
    let mut svg = format!(
        "<svg class=\"netmap\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"group\" \
         aria-labelledby=\"netmap-t\"><title id=\"netmap-t\">Which containers are on which networks (the table below \
         says the same)</title>"
    );
    let bus_y = |j: usize| TOP + j * GAP + GAP / 2;
    for (j, n) in networks.iter().enumerate() {
        let y = bus_y(j);
        let subnet = n.pointer("/IPAM/Config/0/Subnet").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            svg,
            "<line class=\"bus\" x1=\"10\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"></line>\
             <text class=\"net\" x=\"12\" y=\"{}\">{} {}</text>",
            width - 10,
            y + 18,
            esc(s(n, "Name")),
            esc(subnet)
        );
    }
    for (i, c) in on.iter().enumerate() {
        let x = 10 + i * BOX_W;
        let cx = x + BOX_W / 2 - 10;
        let name = c.get("Names").and_then(|n| n.get(0)).and_then(Value::as_str).unwrap_or("").trim_start_matches('/');
        let state = s(c, "State");
        let _ = write!(
            svg,
            "<a href=\"/containers/{}\"><rect class=\"box state-{}\" x=\"{x}\" y=\"10\" width=\"{}\" height=\"36\" \
             rx=\"4\"></rect><text class=\"cname\" x=\"{}\" y=\"33\">{}</text></a>",
            seg(s(c, "Id")),
            esc(state),
            BOX_W - 20,
            x + 8,
            esc(&name.chars().take(18).collect::<String>())
        );
        let nets = c.pointer("/NetworkSettings/Networks").and_then(Value::as_object);
        for (net, ep) in nets.into_iter().flatten() {
            let Some(j) = networks.iter().position(|n| s(n, "Name") == net) else { continue };
            let y = bus_y(j);
            let ip = s(ep, "IPAddress");
            let aliases = strs(ep, "Aliases");
            let mut text = ip.to_string();
            if !aliases.is_empty() {
                text.push_str(&format!(" ({})", aliases.join(", ")));
            }
            let _ = write!(
                svg,
                "<line class=\"drop\" x1=\"{cx}\" y1=\"46\" x2=\"{cx}\" y2=\"{y}\"></line>\
                 <circle class=\"joint\" cx=\"{cx}\" cy=\"{y}\" r=\"4\"></circle>\
                 <text class=\"addr\" x=\"{}\" y=\"{}\">{}</text>",
                cx + 6,
                y - 6,
                esc(&text.chars().take(28).collect::<String>())
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picture_escapes_and_links() {
        let nets = vec![serde_json::json!({"Name": "front<", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24"}]}})];
        let cs = vec![serde_json::json!({
            "Id": "abc", "Names": ["/web"], "State": "running",
            "NetworkSettings": {"Networks": {"front<": {"IPAddress": "10.1.0.2", "Aliases": ["db&"]}}}
        })];
        let svg = network_picture(&nets, &cs);
        assert!(svg.contains("front&lt; 10.1.0.0/24"), "{svg}");
        assert!(svg.contains("10.1.0.2 (db&amp;)"), "{svg}");
        assert!(svg.contains("href=\"/containers/abc\""), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1);
    }
}
