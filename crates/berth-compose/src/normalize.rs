//! Normalisation of one parsed, interpolated and validated file to the long forms (`ports`, `volumes`,
//! `environment`, `depends_on`, `networks`, `command`, ...), as `docker compose config` prints them, and the merge
//! of several normalised files by Compose's rules: mappings merged key by key, sequences appended, `command`,
//! `entrypoint` and `healthcheck.test` replaced, and the unique resources (`ports`, `volumes`) merged by their key.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result, SyntaxError};

/// Splits a shell-like command line into words (quotes and backslashes as a POSIX shell does; no expansion).
pub fn shell_split(s: &str) -> std::result::Result<Vec<String>, SyntaxError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(SyntaxError::UnterminatedQuote(s.to_string())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(SyntaxError::UnterminatedQuote(s.to_string())),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(SyntaxError::UnterminatedQuote(s.to_string())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// A scalar as a string (numbers and booleans as YAML wrote them).
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `["A=1", "B"]` or `{A: 1, B: null}` as a mapping of strings (`null` for a bare key).
pub fn list_or_dict(v: &Value, sep: char) -> Map<String, Value> {
    let mut out = Map::new();
    match v {
        Value::Array(items) => {
            for item in items.iter().filter_map(scalar_string) {
                match item.split_once(sep) {
                    Some((k, val)) => out.insert(k.trim().to_string(), Value::String(val.to_string())),
                    None => out.insert(item.trim().to_string(), Value::Null),
                };
            }
        }
        Value::Object(m) => {
            for (k, val) in m {
                out.insert(k.clone(), scalar_string(val).map(Value::String).unwrap_or(Value::Null));
            }
        }
        _ => {}
    }
    out
}

fn string_list(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().filter_map(scalar_string).map(Value::String).collect()),
        other => match scalar_string(other) {
            Some(s) => json!([s]),
            None => json!([]),
        },
    }
}

/// Replaces a list_or_dict value at `key` of `m` by its mapping form.
fn dict_at(m: &mut Map<String, Value>, key: &str) {
    if let Some(v) = m.get(key) {
        let d = list_or_dict(v, '=');
        m.insert(key.into(), Value::Object(d));
    }
}

/// A boolean written as YAML or as a string after interpolation (`true`, `"false"`).
pub fn bool_value(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A mount's target without a trailing `/` (`/data/` is `/data`), as Compose cleans it.
fn clean_target(t: &str) -> String {
    let trimmed = t.trim_end_matches('/');
    if trimmed.is_empty() && t.starts_with('/') { "/".to_string() } else { trimmed.to_string() }
}

/// Makes `p` absolute against `base` (`~` is the home directory).
pub fn absolute(base: &Path, p: &str) -> String {
    if let Some(rest) = p.strip_prefix("~/").or(if p == "~" { Some("") } else { None })
        && let Ok(home) = std::env::var("HOME")
    {
        return Path::new(&home).join(rest).display().to_string();
    }
    let joined = if Path::new(p).is_absolute() { Path::new(p).to_path_buf() } else { base.join(p) };
    // Lexical clean-up of `.` and `..` (as Go's filepath.Clean).
    let mut parts: Vec<std::path::Component<'_>> = Vec::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) {
                    parts.pop();
                }
            }
            o => parts.push(o),
        }
    }
    parts.iter().collect::<std::path::PathBuf>().display().to_string()
}

/// One port of the short syntax `[[ip:]published:]target[/protocol]`, ranges expanded.
pub fn parse_port(s: &str) -> std::result::Result<Vec<Value>, SyntaxError> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (s, "tcp"),
    };
    let parts: Vec<&str> = if spec.starts_with('[') {
        // [::1]:8080:80
        let end = spec.find(']').ok_or_else(|| SyntaxError::Port(s.to_string()))?;
        let ip = &spec[1..end];
        let rest: Vec<&str> = spec[end + 1..].trim_start_matches(':').split(':').collect();
        std::iter::once(ip).chain(rest).collect()
    } else {
        spec.split(':').collect()
    };
    let (ip, published, target) = match parts.as_slice() {
        [t] => ("", "", *t),
        [p, t] => ("", *p, *t),
        [ip, p, t] => (*ip, *p, *t),
        _ => return Err(SyntaxError::PortParts(s.to_string())),
    };
    let range = |r: &str| -> std::result::Result<(u16, u16), SyntaxError> {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let number = |n: &str| -> std::result::Result<u16, SyntaxError> {
            n.parse().map_err(|_| SyntaxError::PortNumber { port: s.to_string(), number: r.to_string() })
        };
        let (a, b) = (number(a)?, number(b)?);
        if b < a {
            return Err(SyntaxError::PortRange(r.to_string()));
        }
        Ok((a, b))
    };
    let (t0, t1) = range(target)?;
    let pubs = if published.is_empty() { None } else { Some(range(published)?) };
    let mut out = Vec::new();
    for (i, t) in (t0..=t1).enumerate() {
        let mut m = Map::new();
        m.insert("mode".into(), json!("ingress"));
        if !ip.is_empty() {
            m.insert("host_ip".into(), json!(ip));
        }
        m.insert("target".into(), json!(t));
        match pubs {
            Some((p0, p1)) if p0 == p1 || t0 == t1 => {
                let p = if p0 == p1 { p0.to_string() } else { format!("{p0}-{p1}") };
                m.insert("published".into(), json!(p));
            }
            Some((p0, p1)) => {
                let p = u32::from(p0) + u32::try_from(i).unwrap_or(0);
                if p > u32::from(p1) {
                    return Err(SyntaxError::PortRangeSizes(s.to_string()));
                }
                m.insert("published".into(), json!(p.to_string()));
            }
            None => {}
        }
        m.insert("protocol".into(), json!(proto));
        out.push(Value::Object(m));
    }
    Ok(out)
}

/// One volume of the short syntax `[source:]target[:mode]`.
pub fn parse_volume(s: &str, base: &Path) -> std::result::Result<Value, SyntaxError> {
    let parts: Vec<&str> = s.split(':').collect();
    // `${UNSET}:/x` is `:/x`: an error, not an anonymous volume.
    if parts.len() > 1 && parts[..parts.len() - 1].iter().any(|p| p.is_empty()) {
        return Err(SyntaxError::VolumeEmptySection(s.to_string()));
    }
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [a, b] if b.starts_with('/') || !a.starts_with('/') && !b.contains(',') && !is_mode(b) => (*a, *b, ""),
        [t, m] => ("", *t, *m),
        [a, b, m] => (*a, *b, *m),
        _ => return Err(SyntaxError::VolumeParts(s.to_string())),
    };
    if target.is_empty() {
        return Err(SyntaxError::VolumeTarget(s.to_string()));
    }
    let mut m = Map::new();
    let is_path = source.starts_with('.') || source.starts_with('/') || source.starts_with('~');
    let typ = if source.is_empty() || !is_path { "volume" } else { "bind" };
    m.insert("type".into(), json!(typ));
    if !source.is_empty() {
        let src = if typ == "bind" { absolute(base, source) } else { source.to_string() };
        m.insert("source".into(), json!(src));
    }
    m.insert("target".into(), json!(clean_target(target)));
    let modes: Vec<&str> = mode.split(',').filter(|x| !x.is_empty()).collect();
    if modes.contains(&"ro") {
        m.insert("read_only".into(), json!(true));
    }
    if typ == "bind" {
        let mut b = Map::new();
        b.insert("create_host_path".into(), json!(true));
        if let Some(p) = modes.iter().find(|x| x.contains("private") || x.contains("shared") || x.contains("slave")) {
            b.insert("propagation".into(), json!(p));
        }
        if let Some(z) = modes.iter().find(|x| **x == "z" || **x == "Z") {
            b.insert("selinux".into(), json!(z));
        }
        m.insert("bind".into(), Value::Object(b));
    } else if modes.contains(&"nocopy") {
        m.insert("volume".into(), json!({"nocopy": true}));
    } else {
        m.insert("volume".into(), json!({}));
    }
    Ok(Value::Object(m))
}

fn is_mode(s: &str) -> bool {
    s.split(',').all(|m| {
        matches!(
            m,
            "ro" | "rw" | "z" | "Z" | "nocopy" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
        )
    })
}

/// Whether a value still holds a template (`config --no-interpolate`): a `$` that is not `$$`.
pub fn has_template(s: &str) -> bool {
    s.replace("$$", "").contains('$')
}

/// Normalises one service in place. `base` resolves relative paths; `file` and the path prefix go into errors.
/// With `keep_templates` (`config --no-interpolate`), a value that does not parse because it holds a template is
/// kept as written, as compose-go's canonical transform does when interpolation is skipped.
pub fn service(file: &str, name: &str, svc: &mut Map<String, Value>, base: &Path, keep_templates: bool) -> Result<()> {
    let bad = |key: &str, message: String| Error::Invalid {
        file: file.to_string(),
        path: format!("services.{name}.{key}"),
        message,
    };
    let lenient = |v: &str| keep_templates && has_template(v);
    if let Some(b) = svc.get_mut("build") {
        if let Some(ctx) = b.as_str().map(str::to_string) {
            *b = json!({"context": ctx});
        }
        if let Some(bm) = b.as_object_mut() {
            let ctx = bm.get("context").and_then(Value::as_str).unwrap_or(".").to_string();
            let is_url = ctx.contains("://") || ctx.starts_with("git@");
            bm.insert("context".into(), json!(if is_url { ctx } else { absolute(base, &ctx) }));
            if !bm.contains_key("dockerfile") && !bm.contains_key("dockerfile_inline") {
                bm.insert("dockerfile".into(), json!("Dockerfile"));
            }
            for key in ["args", "labels", "ssh", "additional_contexts"] {
                if let Some(v) = bm.get(key) {
                    let m = list_or_dict(v, '=');
                    bm.insert(key.into(), Value::Object(m));
                }
            }
        }
    }
    for key in ["command", "entrypoint"] {
        if let Some(Value::String(s)) = svc.get(key) {
            let words = shell_split(s).map_err(|e| bad(key, e.to_string()))?;
            svc.insert(key.into(), json!(words));
        }
    }
    for key in ["environment", "labels", "sysctls", "annotations"] {
        if let Some(v) = svc.get(key) {
            let m = list_or_dict(v, '=');
            svc.insert(key.into(), Value::Object(m));
        }
    }
    if let Some(v) = svc.get("extra_hosts") {
        let list: Vec<Value> = match v {
            Value::Object(m) => m
                .iter()
                .flat_map(|(k, v)| match v {
                    Value::Array(ips) => {
                        ips.iter().filter_map(scalar_string).map(|ip| json!(format!("{k}={ip}"))).collect()
                    }
                    o => vec![json!(format!("{k}={}", scalar_string(o).unwrap_or_default()))],
                })
                .collect(),
            Value::Array(items) => {
                // `host:ip` becomes `host=ip`; an entry that has its `=` already (config's output) stays.
                items
                    .iter()
                    .filter_map(scalar_string)
                    .map(|s| json!(if s.contains('=') { s } else { s.replacen(':', "=", 1) }))
                    .collect()
            }
            _ => Vec::new(),
        };
        svc.insert("extra_hosts".into(), Value::Array(list));
    }
    for key in ["dns", "dns_search", "dns_opt", "tmpfs", "cap_add", "cap_drop", "expose", "security_opt"] {
        if let Some(v) = svc.get(key) {
            let l = string_list(v);
            svc.insert(key.into(), l);
        }
    }
    // `env_file`: a path, a list of paths, or the long syntax (`path`, `required` true by default, `format`).
    if let Some(v) = svc.get("env_file").cloned() {
        let items = match v {
            Value::Array(a) => a,
            o => vec![o],
        };
        let mut l = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (path, required, format) = match item {
                Value::Object(m) => (m.get("path").and_then(scalar_string), m.get("required"), m.get("format")),
                o => (scalar_string(o), None, None),
            };
            let key = format!("env_file.{i}");
            let Some(path) = path else { return Err(bad(&key, "expected a path".into())) };
            let required = match required {
                None | Some(Value::Null) => json!(true),
                Some(Value::String(r)) if lenient(r) => json!(r),
                Some(r) => json!(
                    bool_value(r)
                        .ok_or_else(|| bad(&format!("{key}.required"), format!("expected a boolean, got {r}")))?
                ),
            };
            let mut e = Map::new();
            e.insert("path".into(), json!(absolute(base, &path)));
            e.insert("required".into(), required);
            if let Some(f) = format.and_then(scalar_string) {
                e.insert("format".into(), json!(f));
            }
            l.push(Value::Object(e));
        }
        svc.insert("env_file".into(), Value::Array(l));
    }
    // Lifecycle hooks: the command in exec form, the environment as a mapping.
    let hook = |h: &mut Value, at: &str| -> Result<()> {
        let Some(h) = h.as_object_mut() else { return Ok(()) };
        if let Some(Value::String(c)) = h.get("command") {
            let words = shell_split(c).map_err(|e| bad(&format!("{at}.command"), e.to_string()))?;
            h.insert("command".into(), json!(words));
        }
        if let Some(v) = h.get("environment") {
            let m = list_or_dict(v, '=');
            h.insert("environment".into(), Value::Object(m));
        }
        Ok(())
    };
    for key in ["pre_start", "post_start", "pre_stop"] {
        if let Some(Value::Array(hooks)) = svc.get_mut(key) {
            for (i, h) in hooks.iter_mut().enumerate() {
                hook(h, &format!("{key}.{i}"))?;
            }
        }
    }
    // `develop.watch`: paths relative to the project (as compose-go resolves them), patterns as lists.
    if let Some(Value::Array(rules)) = svc.get_mut("develop").and_then(|d| d.get_mut("watch")) {
        for (i, r) in rules.iter_mut().enumerate() {
            if let Some(e) = r.get_mut("exec") {
                hook(e, &format!("develop.watch.{i}.exec"))?;
            }
            let Some(r) = r.as_object_mut() else { continue };
            if let Some(p) = r.get("path").and_then(Value::as_str).map(str::to_string) {
                r.insert("path".into(), json!(absolute(base, &p)));
            }
            for k in ["ignore", "include"] {
                if let Some(Value::String(one)) = r.get(k) {
                    let one = one.clone();
                    r.insert(k.into(), json!([one]));
                }
            }
        }
    }
    // The other list_or_dict keys of a service.
    if let Some(d) = svc.get_mut("deploy").and_then(Value::as_object_mut) {
        dict_at(d, "labels");
        let devices =
            d.get_mut("resources").and_then(|r| r.pointer_mut("/reservations/devices")).and_then(Value::as_array_mut);
        for it in devices.into_iter().flatten().filter_map(Value::as_object_mut) {
            dict_at(it, "options");
        }
    }
    if let Some(Value::Array(items)) = svc.get_mut("gpus") {
        for it in items.iter_mut().filter_map(Value::as_object_mut) {
            dict_at(it, "options");
        }
    }
    if let Some(Value::Array(ports)) = svc.get("ports").cloned() {
        let mut out = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            match p {
                Value::Object(m) => {
                    let mut m = m.clone();
                    if let Some(t) = m.get("target").and_then(scalar_string)
                        && !lenient(&t)
                    {
                        let t: u16 = t.parse().map_err(|_| {
                            bad(&format!("ports.{i}.target"), format!("expected a port number, got {t:?}"))
                        })?;
                        m.insert("target".into(), json!(t));
                    }
                    if let Some(pb) = m.get("published").and_then(scalar_string) {
                        m.insert("published".into(), json!(pb));
                    }
                    m.entry("protocol").or_insert(json!("tcp"));
                    m.entry("mode").or_insert(json!("ingress"));
                    out.push(Value::Object(m));
                }
                other => {
                    let s = scalar_string(other).unwrap_or_default();
                    // A template's own `:` would be read as a separator: kept as written.
                    if lenient(&s) {
                        out.push(other.clone());
                        continue;
                    }
                    out.extend(parse_port(&s).map_err(|e| bad(&format!("ports.{i}"), e.to_string()))?);
                }
            }
        }
        svc.insert("ports".into(), Value::Array(out));
    }
    if let Some(Value::Array(vols)) = svc.get("volumes").cloned() {
        let mut out = Vec::new();
        for (i, v) in vols.iter().enumerate() {
            match v {
                Value::String(s) if lenient(s) => out.push(v.clone()),
                Value::String(s) => {
                    out.push(parse_volume(s, base).map_err(|e| bad(&format!("volumes.{i}"), e.to_string()))?)
                }
                Value::Object(m) => {
                    let mut m = m.clone();
                    if let Some(t) = m.get("target").and_then(Value::as_str) {
                        let t = clean_target(t);
                        m.insert("target".into(), json!(t));
                    }
                    if let Some(vo) = m.get_mut("volume").and_then(Value::as_object_mut) {
                        dict_at(vo, "labels");
                    }
                    if m.get("type").and_then(Value::as_str) == Some("bind")
                        && let Some(src) = m.get("source").and_then(Value::as_str)
                    {
                        let abs = absolute(base, src);
                        m.insert("source".into(), json!(abs));
                    }
                    out.push(Value::Object(m));
                }
                _ => {}
            }
        }
        svc.insert("volumes".into(), Value::Array(out));
    }
    if let Some(v) = svc.get("depends_on").cloned() {
        let mut m = Map::new();
        match v {
            Value::Array(names) => {
                for n in names.iter().filter_map(Value::as_str) {
                    m.insert(n.into(), json!({"condition": "service_started", "required": true}));
                }
            }
            Value::Object(o) => {
                for (n, d) in o {
                    let mut d = d.as_object().cloned().unwrap_or_default();
                    d.entry("condition").or_insert(json!("service_started"));
                    d.entry("required").or_insert(json!(true));
                    m.insert(n, Value::Object(d));
                }
            }
            _ => {}
        }
        svc.insert("depends_on".into(), Value::Object(m));
    }
    if let Some(Value::Array(nets)) = svc.get("networks").cloned() {
        let m: Map<String, Value> =
            nets.iter().filter_map(Value::as_str).map(|n| (n.to_string(), Value::Null)).collect();
        svc.insert("networks".into(), Value::Object(m));
    }
    if let Some(hc) = svc.get_mut("healthcheck").and_then(Value::as_object_mut)
        && let Some(Value::String(t)) = hc.get("test").cloned()
    {
        hc.insert("test".into(), json!(["CMD-SHELL", t]));
    }
    Ok(())
}

/// Normalises a whole file (after validation): its services, and the `external`/`name` of volumes and networks.
/// `keep_templates`: see [`service`].
pub fn file(file: &str, doc: &mut Value, base: &Path, keep_templates: bool) -> Result<()> {
    if let Some(services) = doc.get_mut("services").and_then(Value::as_object_mut) {
        for (name, svc) in services.iter_mut() {
            if svc.is_null() {
                *svc = json!({});
            }
            if let Some(m) = svc.as_object_mut() {
                service(file, name, m, base, keep_templates)?;
            }
        }
    }
    for key in ["networks", "volumes", "secrets", "configs"] {
        if let Some(items) = doc.get_mut(key).and_then(Value::as_object_mut) {
            for item in items.values_mut() {
                if item.is_null() {
                    *item = json!({});
                }
                if let Some(m) = item.as_object_mut() {
                    dict_at(m, "labels");
                }
                // A secret's or config's `file` is relative to the project.
                if let Some(m) = item.as_object_mut()
                    && let Some(f) = m.get("file").and_then(Value::as_str).map(str::to_string)
                {
                    m.insert("file".into(), json!(absolute(base, &f)));
                }
            }
        }
    }
    Ok(())
}

/// Keys whose value an overriding file replaces instead of merging.
fn replaced(path: &[&str]) -> bool {
    matches!(path, ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"])
}

/// The unique key of an entry of a service's `ports` or `volumes` (Compose's "unique resources").
fn unique_key(path: &[&str], v: &Value) -> Option<String> {
    match path {
        ["services", _, "ports"] => Some(format!(
            "{}:{}:{}/{}",
            v.get("host_ip").and_then(Value::as_str).unwrap_or(""),
            v.get("target").map(Value::to_string).unwrap_or_default(),
            v.get("published").and_then(Value::as_str).unwrap_or(""),
            v.get("protocol").and_then(Value::as_str).unwrap_or("tcp")
        )),
        ["services", _, "volumes"] => v.get("target").and_then(Value::as_str).map(str::to_string),
        ["services", _, "secrets" | "configs"] => match v {
            Value::String(s) => Some(s.clone()),
            o => o.get("target").or_else(|| o.get("source")).and_then(Value::as_str).map(str::to_string),
        },
        _ => None,
    }
}

/// Removes from `base` the values at the paths of a file's `!reset` and `!override` tags, before the file is merged
/// into it: a reset value is then absent, an overriding one replaces instead of merging.
pub fn apply_resets(base: &mut Value, resets: &[crate::yaml::Reset]) {
    for r in resets {
        let Some((last, parents)) = r.path.split_last() else { continue };
        let pointer: String = parents.iter().map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1"))).collect();
        if let Some(m) = base.pointer_mut(&pointer).and_then(Value::as_object_mut) {
            m.remove(last);
        }
    }
}

/// Merges the normalised `over` into `base` by Compose's rules.
pub fn merge(base: &mut Value, over: Value) {
    merge_at(base, over, &mut Vec::new());
}

fn merge_at(base: &mut Value, over: Value, path: &mut Vec<String>) {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    if replaced(&p) {
        *base = over;
        return;
    }
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                path.push(k.clone());
                match b.get_mut(&k) {
                    Some(existing) if !existing.is_null() => merge_at(existing, v, path),
                    _ => {
                        b.insert(k, v);
                    }
                }
                path.pop();
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            for item in o {
                match unique_key(&p, &item) {
                    Some(key) => {
                        if let Some(slot) = b.iter_mut().find(|e| unique_key(&p, e).as_deref() == Some(key.as_str())) {
                            *slot = item;
                        } else {
                            b.push(item);
                        }
                    }
                    None => {
                        if !b.contains(&item) {
                            b.push(item);
                        }
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            shell_split(r#"sh -c 'echo "a b"' x\ y "q\"t""#),
            Ok(vec!["sh".to_string(), "-c".into(), "echo \"a b\"".into(), "x y".into(), "q\"t".into()])
        );
        assert!(shell_split("'open").is_err());
        assert_eq!(shell_split("  "), Ok(vec![]));
    }

    #[test]
    fn ports_short_syntax() {
        let p = |s: &str| parse_port(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(p("80"), vec![json!({"mode": "ingress", "target": 80, "protocol": "tcp"})]);
        assert_eq!(
            p("8080:80/udp"),
            vec![json!({"mode": "ingress", "target": 80, "published": "8080", "protocol": "udp"})]
        );
        assert_eq!(
            p("127.0.0.1:8080:80"),
            vec![
                json!({"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"})
            ]
        );
        let r = p("9000-9001:80-81");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1]["published"], "9001");
        assert_eq!(r[1]["target"], 81);
        assert!(parse_port("a:b").is_err());
        assert!(parse_port("1:2:3:4").is_err());
    }

    #[test]
    fn volumes_short_syntax() {
        let base = Path::new("/proj");
        let v = |s: &str| parse_volume(s, base).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            v("data:/var/lib/db"),
            json!({"type": "volume", "source": "data", "target": "/var/lib/db", "volume": {}})
        );
        assert_eq!(
            v("./conf:/etc/conf:ro"),
            json!({"type": "bind", "source": "/proj/conf", "target": "/etc/conf", "read_only": true, "bind": {"create_host_path": true}})
        );
        assert_eq!(v("/anon"), json!({"type": "volume", "target": "/anon", "volume": {}}));
        assert_eq!(v("/anon:ro")["read_only"], true);
        assert_eq!(v("../up/x:/x")["source"], "/up/x");
    }

    #[test]
    fn short_syntax_messages() {
        let port = |s: &str| parse_port(s).map(drop).map_err(|e| e.to_string());
        assert_eq!(port("[::1:80"), Err("invalid port \"[::1:80\"".into()));
        assert_eq!(
            port("1:2:3:4"),
            Err("invalid port \"1:2:3:4\": expected [[ip:]published:]target[/protocol]".into())
        );
        assert_eq!(port("a:80"), Err("invalid port \"a:80\": \"a\" is not a port number".into()));
        assert_eq!(port("80-x"), Err("invalid port \"80-x\": \"80-x\" is not a port number".into()));
        assert_eq!(port("81-80"), Err("invalid port range \"81-80\"".into()));
        assert_eq!(port("1-2:1-3"), Err("invalid port \"1-2:1-3\": the ranges differ in size".into()));
        let volume = |s: &str| parse_volume(s, Path::new("/p")).map(drop).map_err(|e| e.to_string());
        assert_eq!(volume("a:b:c:d"), Err("invalid volume \"a:b:c:d\": expected [source:]target[:mode]".into()));
        assert_eq!(volume("a:"), Err("invalid volume \"a:\": no target".into()));
        assert_eq!(shell_split("a 'b").map_err(|e| e.to_string()), Err("unterminated quote in \"a 'b\"".into()));
    }

    #[test]
    fn merge_rules() {
        let mut base = json!({"services": {"web": {
            "image": "a", "command": ["x", "y"], "dns": ["1.1.1.1"],
            "environment": {"A": "1", "B": "2"},
            "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
            "volumes": [{"type": "volume", "source": "a", "target": "/data"}]
        }}});
        merge(
            &mut base,
            json!({"services": {"web": {
            "image": "b", "command": ["z"], "dns": ["8.8.8.8"],
            "environment": {"B": "3"},
            "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}, {"target": 81, "protocol": "tcp"}],
            "volumes": [{"type": "volume", "source": "b", "target": "/data"}]
        }, "db": {"image": "c"}}}),
        );
        let w = &base["services"]["web"];
        assert_eq!(w["image"], "b");
        assert_eq!(w["command"], json!(["z"]));
        assert_eq!(w["dns"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(w["environment"], json!({"A": "1", "B": "3"}));
        assert_eq!(w["ports"].as_array().map(Vec::len), Some(2));
        assert_eq!(w["volumes"], json!([{"type": "volume", "source": "b", "target": "/data"}]));
        assert_eq!(base["services"]["db"]["image"], "c");
    }

    #[test]
    fn services_to_long_form() {
        let mut doc = json!({"services": {"web": {
            "build": "./app", "command": "sh -c 'echo hi'", "environment": ["A=1", "B"],
            "depends_on": ["db"], "networks": ["front"], "healthcheck": {"test": "true"},
            "extra_hosts": ["h:10.0.0.1"], "dns": "1.1.1.1", "ports": ["80"]
        }, "db": null}});
        file("compose.yaml", &mut doc, Path::new("/p"), false).expect("normalise");
        let w = &doc["services"]["web"];
        assert_eq!(w["build"], json!({"context": "/p/app", "dockerfile": "Dockerfile"}));
        assert_eq!(w["command"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(w["environment"], json!({"A": "1", "B": null}));
        assert_eq!(w["depends_on"], json!({"db": {"condition": "service_started", "required": true}}));
        assert_eq!(w["networks"], json!({"front": null}));
        assert_eq!(w["healthcheck"]["test"], json!(["CMD-SHELL", "true"]));
        assert_eq!(w["extra_hosts"], json!(["h=10.0.0.1"]));
        assert_eq!(w["dns"], json!(["1.1.1.1"]));
        assert_eq!(doc["services"]["db"], json!({}));
    }
}
