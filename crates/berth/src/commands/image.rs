//! Image commands: `images`, `import`, `tag`, `rmi`, `history`.

use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use super::{image_path, opts, short_id};
use crate::StatusError;
use crate::client::{ChannelBody, Client, next_chunk, query};
use crate::formatter::{self, Headers};
use crate::units::{ago, go_time_string, human_size, human_size4};

/// `berth images`.
#[derive(Args, Debug)]
#[command(override_usage = "berth images [OPTIONS] [REPOSITORY[:TAG]]")]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// List multi-platform images as a tree (accepted, shown as a table)
    #[arg(long = "tree")]
    pub tree: bool,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth import`.
#[derive(Args, Debug)]
#[command(override_usage = "berth import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message", value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// file|URL|-
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth tag`.
#[derive(Args, Debug)]
#[command(override_usage = "berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `berth rmi`.
#[derive(Args, Debug)]
#[command(override_usage = "berth rmi [OPTIONS] IMAGE [IMAGE...]")]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// IMAGE...
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// `berth history`.
#[derive(Args, Debug)]
#[command(override_usage = "berth history [OPTIONS] IMAGE")]
pub struct HistoryArgs {
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", value_name = "BOOL", default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// IMAGE
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

const IMAGE_HEADERS: Headers = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

const IMAGES_DEFAULT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_DIGESTS: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// Splits `repo:tag` at the tag's colon (not a registry port's).
fn split_tag(reference: &str) -> (String, String) {
    match reference.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (reference.to_string(), "<none>".to_string()),
    }
}

/// The rows of one image: one per tag (`<none>` when it has none).
fn image_rows(i: &Value, trunc: bool, now: SystemTime) -> Vec<Value> {
    let id = i["Id"].as_str().unwrap_or("");
    let created = i["Created"].as_i64().unwrap_or(0);
    let size = i["Size"].as_f64().unwrap_or(0.0);
    let digests: Vec<String> =
        i["RepoDigests"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    let digest_of = |repo: &str| -> String {
        digests
            .iter()
            .find_map(|d| d.split_once('@').filter(|(r, _)| *r == repo).map(|(_, dg)| dg.to_string()))
            .unwrap_or_else(|| "<none>".into())
    };
    let base = |repo: String, tag: String, digest: String| {
        json!({
            "ID": if trunc { short_id(id) } else { id.to_string() },
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            "CreatedSince": if created > 0 { ago(created, now) } else { "N/A".into() },
            "CreatedAt": go_time_string(created),
            "Size": human_size(size),
            "VirtualSize": human_size4(i["VirtualSize"].as_f64().unwrap_or(size)),
            "SharedSize": match i["SharedSize"].as_i64() { Some(s) if s >= 0 => human_size(s as f64), _ => "N/A".into() },
            "UniqueSize": match i["SharedSize"].as_i64() { Some(s) if s >= 0 => human_size(size - s as f64), _ => "N/A".into() },
            "Containers": match i["Containers"].as_i64() { Some(n) if n >= 0 => n.to_string(), _ => "N/A".into() },
        })
    };
    let tags: Vec<String> = i["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>:<none>")
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for t in &tags {
        let (repo, tag) = split_tag(t);
        let d = digest_of(&repo);
        rows.push(base(repo, tag, d));
    }
    if rows.is_empty() {
        for d in &digests {
            if let Some((repo, dg)) = d.split_once('@') {
                rows.push(base(repo.to_string(), "<none>".into(), dg.to_string()));
            }
        }
    }
    if rows.is_empty() {
        rows.push(base("<none>".into(), "<none>".into(), "<none>".into()));
    }
    rows
}

/// `berth images`.
pub async fn images(c: &Client, a: ImagesArgs) -> Result<i32> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = opts::filters(&filters)? {
        q.push(("filters", f));
    }
    let list: Vec<Value> = c.get_json(&format!("/images/json{}", query(&q))).await?;
    let now = SystemTime::now();
    if a.quiet {
        let mut seen = Vec::new();
        for i in &list {
            let id = i["Id"].as_str().unwrap_or("");
            let shown = if a.no_trunc { id.to_string() } else { short_id(id) };
            if !seen.contains(&shown) {
                outln!("{shown}");
                seen.push(shown);
            }
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().flat_map(|i| image_rows(i, !a.no_trunc, now)).collect();
    let default = if a.digests { IMAGES_DIGESTS } else { IMAGES_DEFAULT };
    out!("{}", formatter::render(a.format.as_deref().unwrap_or(""), default, IMAGE_HEADERS, &rows)?);
    Ok(0)
}

/// `berth import`: streams the tar (a file or stdin) to the daemon and prints the new image's ID.
pub async fn import(c: &Client, a: ImportArgs) -> Result<i32> {
    let mut q = vec![("fromSrc", "-".to_string())];
    if a.source.starts_with("http://") || a.source.starts_with("https://") {
        q[0].1 = a.source.clone();
    }
    if let Some(r) = &a.reference {
        let (repo, tag) = match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
            _ => (r.clone(), String::new()),
        };
        q.push(("repo", repo));
        if !tag.is_empty() {
            q.push(("tag", tag));
        }
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    // docker sends each change as its own `changes` parameter; berthd reads one newline-separated value.
    if !a.change.is_empty() {
        q.push(("changes", a.change.join("\n")));
    }
    let (tx, body) = ChannelBody::channel();
    let source = a.source.clone();
    if q[0].1 == "-" {
        let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if source == "-" {
            Box::new(tokio::io::stdin())
        } else {
            Box::new(tokio::fs::File::open(&source).await.with_context(|| format!("open {source}"))?)
        };
        tokio::spawn(super::transfer::pump(reader, tx));
    } else {
        drop(tx);
    }
    let resp = c.call(Method::POST, &format!("/images/create{}", query(&q)), body, false).await?;
    let mut body = resp.into_body();
    let mut text = String::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut id = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("decode the import progress {line:?}"))?;
        if let Some(e) = v
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
            .or(v.get("error").and_then(Value::as_str))
        {
            return Err(StatusError::exit(1, e.to_string()));
        }
        if let Some(s) = v.get("status").and_then(Value::as_str) {
            id = Some(s.to_string());
        }
    }
    match id {
        Some(id) => {
            outln!("{id}");
            Ok(0)
        }
        None => bail!("the daemon did not report the imported image"),
    }
}

/// `berth tag`.
pub async fn tag(c: &Client, a: TagArgs) -> Result<i32> {
    let (repo, tag) = match a.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (a.target.clone(), "latest".to_string()),
    };
    if repo.is_empty() {
        bail!("invalid reference format");
    }
    c.post(&format!("{}/tag{}", image_path(&a.source), query(&[("repo", repo), ("tag", tag)]))).await?;
    Ok(0)
}

/// `berth rmi`: prints the daemon's `Untagged:` / `Deleted:` lines.
pub async fn rmi(c: &Client, a: RmiArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    let q = query(&q);
    let mut errors = Vec::new();
    for image in &a.images {
        match c.delete(&format!("{}{q}", image_path(image))).await {
            Ok(body) => {
                let list: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                for item in list {
                    if let Some(u) = item["Untagged"].as_str() {
                        outln!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        outln!("Deleted: {d}");
                    }
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() { Ok(0) } else { Err(StatusError::exit(1, errors.join("\n"))) }
}

const HISTORY_HEADERS: Headers = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

const HISTORY_DEFAULT: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// `berth history`.
pub async fn history(c: &Client, a: HistoryArgs) -> Result<i32> {
    let list: Vec<Value> = c.get_json(&format!("{}/history", image_path(&a.image))).await?;
    let now = SystemTime::now();
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let by = if trunc { super::ps::ellipsis(&by, 45) } else { by };
            let size = h["Size"].as_f64().unwrap_or(0.0);
            json!({
                "ID": if id == "<missing>" || !trunc { id.to_string() } else { short_id(id) },
                "CreatedSince": if a.human { ago(created, now) } else { go_time_string(created) },
                "CreatedAt": go_time_string(created),
                "CreatedBy": by,
                "Size": if a.human { human_size(size) } else { format!("{}", size as i64) },
                "Comment": h["Comment"],
                "Tags": h["Tags"],
            })
        })
        .collect();
    let format = if a.quiet { "{{.ID}}".to_string() } else { a.format.clone().unwrap_or_default() };
    out!("{}", formatter::render(&format, HISTORY_DEFAULT, HISTORY_HEADERS, &rows)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_rows_per_tag() {
        let i = json!({"Id": "sha256:0123456789abcdef0123", "RepoTags": ["busybox:latest", "localhost:5000/b:v1"], "Created": 0, "Size": 4260000});
        let rows = image_rows(&i, true, SystemTime::now());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[1]["Repository"], "localhost:5000/b");
        assert_eq!(rows[1]["Tag"], "v1");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Size"], "4.26MB");
        let out = formatter::render("", IMAGES_DEFAULT, IMAGE_HEADERS, &rows[..1]).expect("render");
        assert!(out.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED   SIZE\nbusybox      latest    0123456789ab   N/A       4.26MB\n"), "{out}");
        let none = image_rows(&json!({"Id": "sha256:ab", "RepoTags": []}), true, SystemTime::now());
        assert_eq!(none[0]["Repository"], "<none>");
    }
}
