//! The pages: HTML rendered from what the Engine API answers (its `views/` output), escaped everywhere.

use std::fmt::Write;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::auth::Session;
use super::{Ui, UiError, checked, form_field};

/// HTML-escapes text (element content and quoted attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment, percent-encoded (container names and IDs are safe already; this is for the rest).
pub(super) fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The strings of a JSON array field (none when it is absent or not an array).
pub(super) fn strs<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

pub(super) fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// Bytes as `docker` prints sizes (decimal units).
pub(super) fn size(n: f64) -> String {
    // (An empty sum is -0.0.)
    berth_api::units::human_size(n.max(0.0))
}

const NAV: &[(&str, &str)] = &[
    ("/", "Containers"),
    ("/images", "Images"),
    ("/volumes", "Volumes"),
    ("/compose", "Compose"),
    ("/networks", "Networks"),
    ("/events", "Events"),
    ("/system", "System"),
];

/// A whole page. `page` names it for the script (`data-page`), `id` is the container's on its page.
pub(super) fn page(title: &str, active: &str, session: &Session, page: &str, id: &str, content: &str) -> Html<String> {
    let mut nav = String::new();
    for (href, label) in NAV {
        let current = if *href == active { " aria-current=\"page\"" } else { "" };
        let _ = write!(nav, "<li><a href=\"{href}\"{current}>{label}</a></li>");
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"csrf-token\" content=\"{csrf}\"><title>{t} · Berth</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head>\
         <body data-page=\"{page}\" data-id=\"{id}\"><header><span class=\"brand\">Berth</span>\
         <nav aria-label=\"Main\"><ul>{nav}</ul></nav>\
         <form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Log out</button></form></header><main><h1>{t}</h1>{content}</main></body></html>",
        csrf = esc(&session.csrf),
        t = esc(title),
        page = esc(page),
        id = esc(id),
    ))
}

/// A button that posts to `action` (a path of the dashboard), then comes `back`.
pub(super) fn post_button(action: &str, label: &str, class: &str, aria: &str, csrf: &str, back: &str) -> String {
    let destroys = class.split(' ').any(|c| matches!(c, "act-remove" | "act-kill" | "act-prune"));
    let confirm = if destroys { " data-confirm=\"1\"" } else { "" };
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\"{confirm}>\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"back\" value=\"{}\">\
         <button type=\"submit\" class=\"{class}\" aria-label=\"{}\">{}</button></form>",
        esc(action),
        esc(csrf),
        esc(back),
        esc(aria),
        esc(label),
    )
}

/// A button that posts an action on a container.
fn action_button(id: &str, action: &str, label: &str, csrf: &str, back: &str) -> String {
    let aria = format!("{label} {}", short(id));
    post_button(&format!("/containers/{}/{action}", seg(id)), label, &format!("act-{action}"), &aria, csrf, back)
}

fn actions_for(id: &str, state: &str, csrf: &str, back: &str) -> String {
    let list: &[(&str, &str)] = match state {
        "running" => &[("stop", "Stop"), ("restart", "Restart"), ("pause", "Pause"), ("kill", "Kill")],
        "paused" => &[("unpause", "Unpause"), ("kill", "Kill")],
        "restarting" => &[("stop", "Stop"), ("kill", "Kill")],
        _ => &[("start", "Start"), ("remove", "Remove")],
    };
    list.iter().map(|(a, l)| action_button(id, a, l, csrf, back)).collect()
}

/// The containers' rows: one per container, with its inspect's health and restart count.
async fn rows(ui: &Ui, session: &Session, host: &str) -> Result<String, UiError> {
    let list = ui.api_json("/containers/json?all=1").await?;
    let mut out = String::new();
    let host_name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    for c in list.as_array().into_iter().flatten() {
        let id = s(c, "Id");
        let name =
            c.get("Names").and_then(|n| n.get(0)).and_then(Value::as_str).unwrap_or_default().trim_start_matches('/');
        let state = s(c, "State");
        // The list has the health (API 1.52 on); the restart count is the record's (the inspect's `RestartCount`), read
        // directly rather than through an inspect per container; a container removed meanwhile shows 0.
        let health = c.pointer("/Health/Status").and_then(Value::as_str).filter(|h| *h != "none").unwrap_or("");
        let restarts = ui.daemon().container(id).map(|c| c.record().restart_count).unwrap_or(0);
        let mut ports = String::new();
        for p in c.get("Ports").and_then(Value::as_array).into_iter().flatten() {
            let private = p.get("PrivatePort").and_then(Value::as_u64).unwrap_or(0);
            let typ = s(p, "Type");
            match p.get("PublicPort").and_then(Value::as_u64) {
                Some(public) => {
                    let ip = s(p, "IP");
                    let target = if ip.is_empty() || ip == "0.0.0.0" || ip == "::" { host_name } else { ip };
                    if typ == "tcp" && !ip.contains(':') {
                        let _ = write!(
                            ports,
                            "<a href=\"http://{}:{public}/\" rel=\"noreferrer\">{}:{public}→{private}/{typ}</a> ",
                            esc(target),
                            esc(ip)
                        );
                    } else {
                        let _ = write!(ports, "{}:{public}→{private}/{} ", esc(ip), esc(typ));
                    }
                }
                None => {
                    let _ = write!(ports, "{private}/{} ", esc(typ));
                }
            }
        }
        let _ = write!(
            out,
            "<tr data-name=\"{n}\" data-state=\"{st}\" data-image=\"{img}\" data-id=\"{fid}\">\
             <td><a href=\"/containers/{idq}\">{n}</a><br><code>{sid}</code></td><td>{img}</td>\
             <td><span class=\"state state-{st}\">{st}</span></td><td>{status}</td><td>{health}</td>\
             <td class=\"num\">{restarts}</td><td>{ports}</td><td class=\"spark\">{spark}</td>\
             <td class=\"actions\">{acts}</td></tr>",
            n = esc(name),
            st = esc(state),
            img = esc(s(c, "Image")),
            idq = seg(id),
            sid = esc(short(id)),
            status = esc(s(c, "Status")),
            health = esc(health),
            acts = actions_for(id, state, &session.csrf, "/"),
            fid = esc(id),
            spark = if state == "running" {
                format!(
                    "<span class=\"sparkline\"><svg class=\"spark cpu\" viewBox=\"0 0 60 16\" \
                     preserveAspectRatio=\"none\" role=\"img\" aria-label=\"CPU of {n}\"><polyline points=\"\">\
                     </polyline></svg><output class=\"cpu-now\"></output></span><span class=\"sparkline\">\
                     <svg class=\"spark mem\" viewBox=\"0 0 60 16\" preserveAspectRatio=\"none\" role=\"img\" \
                     aria-label=\"Memory of {n}\"><polyline points=\"\"></polyline></svg>\
                     <output class=\"mem-now\"></output></span>",
                    n = esc(name)
                )
            } else {
                String::new()
            },
        );
    }
    if out.is_empty() {
        out.push_str("<tr><td colspan=\"9\">No containers.</td></tr>");
    }
    Ok(out)
}

fn host(headers: &HeaderMap) -> &str {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost")
}

/// `/`: the containers, live.
pub async fn containers(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Html<String>, UiError> {
    let rows = rows(&ui, &session, host(&headers)).await?;
    let content = format!(
        "<div class=\"toolbar\" role=\"search\"><label for=\"filter\">Search</label>\
         <input id=\"filter\" type=\"search\" placeholder=\"name or image\" autocomplete=\"off\">\
         <label for=\"state\">State</label><select id=\"state\"><option value=\"\">all</option>\
         <option>running</option><option>exited</option><option>created</option><option>paused</option>\
         <option>restarting</option><option>dead</option></select>\
         <span id=\"live\" class=\"live\" aria-live=\"polite\"></span></div>\
         <table id=\"containers\"><caption class=\"sr\">Containers</caption><thead><tr><th scope=\"col\">Name</th>\
         <th scope=\"col\">Image</th><th scope=\"col\">State</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Health</th><th scope=\"col\">Restarts</th><th scope=\"col\">Ports</th>\
         <th scope=\"col\">CPU, memory</th><th scope=\"col\">Actions</th></tr></thead><tbody>{rows}</tbody></table>"
    );
    Ok(page("Containers", "/", &session, "containers", "", &content))
}

/// `/fragments/containers`: the rows alone, for the live update.
pub async fn container_rows(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Html<String>, UiError> {
    Ok(Html(rows(&ui, &session, host(&headers)).await?))
}

/// A JSON value as a tree of `<details>` (objects and lists) and `key: value` lines.
fn tree(out: &mut String, v: &Value, depth: usize) {
    let entries: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        _ => return,
    };
    out.push_str("<ul class=\"tree\">");
    for (k, v) in entries {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let open = if depth == 0 { " open" } else { "" };
                let _ = write!(out, "<li><details{open}><summary>{}</summary>", esc(&k));
                tree(out, v, depth + 1);
                out.push_str("</details></li>");
            }
            Value::Array(a) if !a.is_empty() => {
                let _ = write!(out, "<li><details><summary>{} [{}]</summary>", esc(&k), a.len());
                tree(out, v, depth + 1);
                out.push_str("</details></li>");
            }
            other => {
                let text = match other {
                    Value::String(s) => format!("\"{s}\""),
                    o => o.to_string(),
                };
                let _ = write!(
                    out,
                    "<li><span class=\"k\">{}</span>: <span class=\"v\">{}</span></li>",
                    esc(&k),
                    esc(&text)
                );
            }
        }
    }
    out.push_str("</ul>");
}

pub(super) fn table(out: &mut String, caption: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<table><caption>{}</caption><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(out, "<tr><td colspan=\"{}\">None.</td></tr>", head.len());
    }
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            // Cells come escaped (some hold markup).
            let _ = write!(out, "<td>{c}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// `/containers/{id}`: actions, live logs, processes, inspect.
pub async fn container(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let inspect = ui.api_json(&format!("/containers/{}/json", seg(&id))).await?;
    let full = s(&inspect, "Id").to_string();
    let name = s(&inspect, "Name").trim_start_matches('/').to_string();
    let state = inspect.pointer("/State/Status").and_then(Value::as_str).unwrap_or_default();
    let back = format!("/containers/{}", seg(&full));
    let mut c = format!(
        "<p><span class=\"state state-{st}\">{st}</span> <code>{sid}</code> · {img}</p><div class=\"actions\">{acts}</div>",
        st = esc(state),
        sid = esc(short(&full)),
        img = esc(inspect.pointer("/Config/Image").and_then(Value::as_str).unwrap_or_default()),
        acts = actions_for(&full, state, &session.csrf, &back),
    );
    let _ = write!(
        c,
        "<section aria-labelledby=\"logs-h\"><h2 id=\"logs-h\">Logs</h2><div class=\"toolbar\">\
         <label><input type=\"checkbox\" id=\"follow\" checked> Follow</label>\
         <label><input type=\"checkbox\" id=\"timestamps\"> Timestamps</label>\
         <label for=\"logsearch\">Search</label><input id=\"logsearch\" type=\"search\" autocomplete=\"off\">\
         <a id=\"download\" href=\"/containers/{}/logs.txt\" download>Download</a></div>\
         <pre id=\"logs\" class=\"logs\" tabindex=\"0\" aria-label=\"Container logs\" aria-live=\"off\"></pre></section>",
        seg(&full)
    );
    if state == "running" || state == "paused" {
        c.push_str(
            "<section id=\"resources\" aria-labelledby=\"res-h\" data-samples=\"0\"><h2 id=\"res-h\">Resources \
             <small>(the last two minutes)</small></h2><div class=\"charts\">\
             <figure><figcaption>CPU <output id=\"cpu-now\">…</output></figcaption>\
             <svg id=\"cpu-chart\" class=\"chart\" viewBox=\"0 0 120 40\" preserveAspectRatio=\"none\" role=\"img\" \
             aria-label=\"CPU use over time\"><polyline points=\"\"></polyline></svg></figure>\
             <figure><figcaption>Memory <output id=\"mem-now\">…</output></figcaption>\
             <svg id=\"mem-chart\" class=\"chart\" viewBox=\"0 0 120 40\" preserveAspectRatio=\"none\" role=\"img\" \
             aria-label=\"Memory use over time\"><polyline points=\"\"></polyline></svg></figure>\
             <figure><figcaption>Network <output id=\"net-now\">…</output></figcaption>\
             <svg id=\"net-chart\" class=\"chart\" viewBox=\"0 0 120 40\" preserveAspectRatio=\"none\" role=\"img\" \
             aria-label=\"Network bytes per second over time\"><polyline points=\"\"></polyline></svg></figure>\
             </div></section>",
        );
        if state == "running" {
            c.push_str(
                "<section aria-labelledby=\"term-h\"><h2 id=\"term-h\">Terminal</h2><div class=\"toolbar\">\
                 <button type=\"button\" id=\"term-open\">Open a shell</button> \
                 <span id=\"term-status\" role=\"status\">/bin/sh with a TTY, in the container</span></div>\
                 <pre id=\"term\" class=\"term\" tabindex=\"0\" role=\"textbox\" aria-multiline=\"true\" \
                 aria-label=\"Terminal: a shell in the container\" data-state=\"closed\"></pre></section>",
            );
        }
        match ui.api_json(&format!("/containers/{}/top", seg(&full))).await {
            Ok(top) => {
                let titles = strs(&top, "Titles");
                let rows: Vec<Vec<String>> = top
                    .get("Processes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| p.as_array().into_iter().flatten().map(|x| esc(x.as_str().unwrap_or_default())).collect())
                    .collect();
                c.push_str("<section><h2>Processes</h2>");
                table(&mut c, "top", &titles, &rows);
                c.push_str("</section>");
            }
            Err(e) => {
                let _ = write!(c, "<section><h2>Processes</h2><p class=\"error\">{}</p></section>", esc(&e.message));
            }
        }
    }
    panels(&mut c, &inspect);
    // The environment's values only where asked for (above), not in the tree.
    let mut shown = inspect.clone();
    if let Some(Value::Array(env)) = shown.pointer_mut("/Config/Env") {
        for e in env.iter_mut() {
            let key = e.as_str().and_then(|v| v.split_once('=')).map(|(k, _)| k.to_string());
            if let Some(k) = key {
                *e = Value::String(format!("{k}=(see Environment)"));
            }
        }
    }
    c.push_str("<section><h2>Inspect</h2>");
    tree(&mut c, &shown, 0);
    c.push_str("</section>");
    let title = if name.is_empty() { short(&full).to_string() } else { name };
    Ok(page(&title, "/", &session, "container", &full, &c))
}

/// A container's mounts, networks and environment (each value hidden until its name is opened).
fn panels(c: &mut String, inspect: &Value) {
    let mounts: Vec<Vec<String>> = inspect
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let name = s(m, "Name");
            let source = if name.is_empty() { s(m, "Source") } else { name };
            vec![
                esc(s(m, "Type")),
                esc(source),
                esc(s(m, "Destination")),
                esc(s(m, "Mode")),
                if m.get("RW") == Some(&Value::Bool(true)) { "rw".into() } else { "ro".into() },
            ]
        })
        .collect();
    c.push_str("<section><h2>Mounts</h2>");
    table(c, "mounts", &["Type", "Source", "Destination", "Mode", "Access"], &mounts);
    let networks: Vec<Vec<String>> = inspect
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, n)| {
            let aliases: Vec<String> = strs(n, "Aliases").into_iter().map(esc).collect();
            let ip = s(n, "IPAddress");
            let prefix = n.get("IPPrefixLen").and_then(Value::as_i64).unwrap_or(0);
            vec![
                esc(name),
                if ip.is_empty() { String::new() } else { esc(&format!("{ip}/{prefix}")) },
                esc(s(n, "Gateway")),
                esc(s(n, "MacAddress")),
                aliases.join(", "),
            ]
        })
        .collect();
    c.push_str("</section><section><h2>Networks</h2>");
    table(c, "networks", &["Network", "Address", "Gateway", "MAC", "Aliases"], &networks);
    c.push_str("</section><section><h2>Environment</h2><ul class=\"env\">");
    for e in inspect.pointer("/Config/Env").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        let _ = write!(c, "<li><details><summary>{}</summary><code>{}</code></details></li>", esc(k), esc(v));
    }
    c.push_str("</ul><p class=\"hint\">Values show when a name is opened.</p></section>");
}

/// `POST /containers/{id}/{action}` (a page's button): the API's call, then back to the page (`back`), or the error.
pub async fn action(
    State(ui): State<Arc<Ui>>,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, UiError> {
    let id = seg(&id);
    let (method, path) = match action.as_str() {
        "start" | "stop" | "restart" | "pause" | "unpause" | "kill" => {
            (Method::POST, format!("/containers/{id}/{action}"))
        }
        "remove" => (Method::DELETE, format!("/containers/{id}?force=1")),
        other => return Err(UiError::new(StatusCode::NOT_FOUND, format!("no action {other:?}"))),
    };
    checked(ui.api(method, &path).await).await?;
    let back = form_field(&body, "back").filter(|b| local_path(b));
    // A removed container's page is gone: back to the list.
    let back = if action == "remove" { "/".to_string() } else { back.unwrap_or_else(|| "/".into()) };
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response())
}

/// `POST /images/{id}/remove` (untag or delete, as `docker rmi` without `-f`: an image in use is refused) and
/// `POST /images/prune` (dangling images): the API's calls, then back to the images.
pub async fn image_action(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Result<Response, UiError> {
    checked(ui.api(Method::DELETE, &format!("/images/{}", seg(&id))).await).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/images")]).into_response())
}

pub async fn image_prune(State(ui): State<Arc<Ui>>) -> Result<Response, UiError> {
    checked(ui.api(Method::POST, "/images/prune").await).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/images")]).into_response())
}

/// A path of this site, never another's: `//host` and `/\\host` are other hosts to a browser (an open redirect).
pub(super) fn local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.chars().any(char::is_control)
}

/// `/events`: the live feed.
pub async fn events(Extension(session): Extension<Session>) -> Html<String> {
    let content = "<p>The last hour, then live.</p><table id=\"events\"><caption class=\"sr\">Events</caption>\
                   <thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Type</th><th scope=\"col\">Action</th>\
                   <th scope=\"col\">Object</th><th scope=\"col\">Attributes</th></tr></thead><tbody></tbody></table>";
    page("Events", "/events", &session, "events", "", content)
}

/// `/system`: version, info, disk usage.
pub async fn system(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
) -> Result<Html<String>, UiError> {
    let (version, info, df) =
        (ui.api_json("/version").await?, ui.api_json("/info").await?, ui.api_json("/system/df").await?);
    let mut c = String::new();
    let pick = |v: &Value, keys: &[&str]| -> Vec<Vec<String>> {
        keys.iter()
            .filter_map(|k| v.get(*k).map(|x| (k, x)))
            .map(|(k, x)| vec![esc(k), esc(&x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))])
            .collect()
    };
    // Disk usage as `docker system df` sums it, with a bar per kind.
    let arr = |k: &str| df.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let num = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let images = arr("Images");
    let containers = arr("Containers");
    let volumes = arr("Volumes");
    let cache = arr("BuildCache");
    let kinds = [
        (
            "Images",
            images.len(),
            images.iter().filter(|i| num(i, "/Containers") > 0.0).count(),
            num(&df, "/LayersSize"),
        ),
        (
            "Containers",
            containers.len(),
            containers.iter().filter(|c| s(c, "State") == "running").count(),
            containers.iter().map(|c| num(c, "/SizeRw")).sum(),
        ),
        (
            "Local volumes",
            volumes.len(),
            volumes.iter().filter(|v| num(v, "/UsageData/RefCount") > 0.0).count(),
            volumes.iter().map(|v| num(v, "/UsageData/Size").max(0.0)).sum(),
        ),
        (
            "Build cache",
            cache.len(),
            cache.iter().filter(|b| b.get("InUse") == Some(&Value::Bool(true))).count(),
            cache.iter().map(|b| num(b, "/Size")).sum(),
        ),
    ];
    let total: f64 = kinds.iter().map(|k| k.3).sum::<f64>().max(1.0);
    let rows: Vec<Vec<String>> = kinds
        .iter()
        .map(|(k, n, active, bytes)| {
            vec![
                esc(k),
                n.to_string(),
                active.to_string(),
                esc(&size(*bytes)),
                format!(
                    "<progress max=\"{total:.0}\" value=\"{bytes:.0}\" aria-label=\"{} share of disk use\"></progress>",
                    esc(k)
                ),
            ]
        })
        .collect();
    c.push_str("<section><h2>Disk usage</h2>");
    table(&mut c, "system df", &["Type", "Total", "Active", "Size", "Share"], &rows);
    c.push_str("</section><section><h2>Version</h2>");
    let v = pick(&version, &["Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "KernelVersion", "GitCommit"]);
    table(&mut c, "version", &["Setting", "Value"], &v);
    c.push_str("</section><section><h2>Info</h2>");
    let i = pick(
        &info,
        &[
            "Name",
            "ServerVersion",
            "Containers",
            "ContainersRunning",
            "ContainersPaused",
            "ContainersStopped",
            "Images",
            "Driver",
            "LoggingDriver",
            "CgroupDriver",
            "CgroupVersion",
            "DefaultRuntime",
            "OperatingSystem",
            "KernelVersion",
            "NCPU",
            "MemTotal",
            "DockerRootDir",
        ],
    );
    table(&mut c, "info", &["Setting", "Value"], &i);
    c.push_str("</section>");
    Ok(page("System", "/system", &session, "system", "", &c))
}

/// `/images`.
pub async fn images(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
) -> Result<Html<String>, UiError> {
    let list = ui.api_json("/images/json").await?;
    // Which containers use each image.
    let containers = ui.api_json("/containers/json?all=1").await?;
    let mut users: std::collections::HashMap<&str, Vec<String>> = std::collections::HashMap::new();
    for c in containers.as_array().into_iter().flatten() {
        users.entry(s(c, "ImageID")).or_default().push(container_link(c));
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let tags = strs(i, "RepoTags");
            let id = s(i, "Id");
            // One button per tag (untag), or the image itself when it has none.
            let targets: Vec<&str> = if tags.is_empty() { vec![id] } else { tags.clone() };
            let buttons: String = targets
                .iter()
                .map(|t| {
                    let what = if t.starts_with("sha256:") { short(t) } else { t };
                    let label = if tags.len() > 1 { format!("Remove {what}") } else { "Remove".to_string() };
                    post_button(
                        &format!("/images/{}/remove", seg(t)),
                        &label,
                        "act-remove",
                        &format!("Remove {what}"),
                        &session.csrf,
                        "/images",
                    )
                })
                .collect();
            vec![
                if tags.is_empty() {
                    "&lt;none&gt;".into()
                } else {
                    tags.iter().map(|t| esc(t)).collect::<Vec<_>>().join("<br>")
                },
                format!("<a href=\"/images/{}\"><code>{}</code></a>", seg(id), esc(short(id))),
                esc(&size(i.get("Size").and_then(Value::as_f64).unwrap_or(0.0))),
                i.get("Created").and_then(Value::as_i64).map(unix_time).unwrap_or_default(),
                users.get(id).map(|u| u.join(", ")).unwrap_or_default(),
                buttons,
            ]
        })
        .collect();
    let mut c = String::from(
        "<form id=\"pull\" class=\"toolbar\"><label for=\"pull-ref\">Pull an image</label>\
         <input id=\"pull-ref\" name=\"ref\" placeholder=\"registry:5000/name:tag\" autocomplete=\"off\" required>\
         <button type=\"submit\" id=\"pull-go\">Pull</button><span id=\"pull-status\" role=\"status\"></span></form>\
         <ul id=\"pull-progress\" class=\"progress\" aria-label=\"Pull progress\"></ul><div class=\"toolbar\">",
    );
    c.push_str(&post_button(
        "/images/prune",
        "Prune dangling images",
        "act-prune",
        "Prune dangling images",
        &session.csrf,
        "/images",
    ));
    c.push_str("</div>");
    table(&mut c, "Images", &["Tags", "ID", "Size", "Created", "Used by", "Actions"], &rows);
    Ok(page("Images", "/images", &session, "images", "", &c))
}

pub(super) fn unix_time(t: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    esc(&humantime::format_rfc3339_seconds(t).to_string())
}

/// A link to a container's page, from its list entry.
pub(super) fn container_link(c: &Value) -> String {
    let name = c.get("Names").and_then(|n| n.get(0)).and_then(Value::as_str).unwrap_or_default();
    format!("<a href=\"/containers/{}\">{}</a>", seg(s(c, "Id")), esc(name.trim_start_matches('/')))
}

/// `/volumes`: with the containers that mount each.
pub async fn volumes(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
) -> Result<Html<String>, UiError> {
    let list = ui.api_json("/volumes").await?;
    let containers = ui.api_json("/containers/json?all=1").await?;
    // Sizes as `docker system df -v` measures them (-1: not measured).
    let df = ui.api_json("/system/df?type=volume").await?;
    let sizes: std::collections::HashMap<&str, f64> = df
        .get("Volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| (s(v, "Name"), v.pointer("/UsageData/Size").and_then(Value::as_f64).unwrap_or(-1.0)))
        .collect();
    let mut users: std::collections::HashMap<&str, Vec<String>> = std::collections::HashMap::new();
    for c in containers.as_array().into_iter().flatten() {
        for m in c.get("Mounts").and_then(Value::as_array).into_iter().flatten().filter(|m| s(m, "Type") == "volume") {
            users.entry(s(m, "Name")).or_default().push(container_link(c));
        }
    }
    let rows: Vec<Vec<String>> = list
        .get("Volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                esc(s(v, "Name")),
                esc(s(v, "Driver")),
                esc(s(v, "Mountpoint")),
                match sizes.get(s(v, "Name")) {
                    Some(n) if *n >= 0.0 => esc(&size(*n)),
                    _ => "unknown".into(),
                },
                esc(s(v, "CreatedAt")),
                users.get(s(v, "Name")).map(|u| u.join(", ")).unwrap_or_default(),
            ]
        })
        .collect();
    let mut c = String::new();
    table(&mut c, "Volumes", &["Name", "Driver", "Mountpoint", "Size", "Created", "Used by"], &rows);
    Ok(page("Volumes", "/volumes", &session, "volumes", "", &c))
}

/// `/networks`: with the containers on each and their addresses.
pub async fn networks(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
) -> Result<Html<String>, UiError> {
    let list = ui.api_json("/networks").await?;
    let mut rows = Vec::new();
    for n in list.as_array().into_iter().flatten() {
        // The list leaves the containers out (as Docker's); the inspect has them.
        let detail = ui.api_json(&format!("/networks/{}", seg(s(n, "Id")))).await.unwrap_or_else(|_| n.clone());
        let subnets: Vec<String> = detail
            .pointer("/IPAM/Config")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| esc(s(c, "Subnet")))
            .collect();
        let members: Vec<String> = detail
            .get("Containers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(id, c)| {
                format!("<a href=\"/containers/{}\">{}</a> {}", seg(id), esc(s(c, "Name")), esc(s(c, "IPv4Address")))
            })
            .collect();
        rows.push(vec![
            esc(s(n, "Name")),
            format!("<code>{}</code>", esc(short(s(n, "Id")))),
            esc(s(n, "Driver")),
            subnets.join("<br>"),
            members.join("<br>"),
        ]);
    }
    let containers = ui.api_json("/containers/json?all=1").await?;
    let mut c = String::from("<figure class=\"netmap\">");
    c.push_str(&super::more::network_picture(
        list.as_array().map(Vec::as_slice).unwrap_or_default(),
        containers.as_array().map(Vec::as_slice).unwrap_or_default(),
    ));
    c.push_str("</figure>");
    table(&mut c, "Networks", &["Name", "ID", "Driver", "Subnets", "Containers"], &rows);
    Ok(page("Networks", "/networks", &session, "networks", "", &c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_here() {
        assert!(local_path("/") && local_path("/containers/abc"));
        for bad in ["//evil.example", "/\\evil.example", "https://evil.example", "evil", "", "/\t/evil"] {
            assert!(!local_path(bad), "{bad}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
        assert_eq!(size(1234.0), "1.23kB", "go-units HumanSize: three significant digits");
        assert_eq!(size(12_300_000.0), "12.3MB");
        assert_eq!(size(-0.0), "0B");
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn the_tree_escapes_keys_and_values() {
        let mut out = String::new();
        tree(&mut out, &serde_json::json!({"<k>": {"a": "<script>"}, "n": [1, 2]}), 0);
        assert!(!out.contains("<script>") && !out.contains("<k>"), "{out}");
        assert!(out.contains("&lt;script&gt;"));
        assert!(out.contains("n [2]"));
    }
}
