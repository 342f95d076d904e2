//! `build` and the builds `up --build` does: the classic `POST /build` exactly as the docker CLI sends it without
//! BuildKit (a tar of the context without what `.dockerignore` excludes, the query parameters `t`, `dockerfile`,
//! `buildargs`, `target`, `labels`, `pull`, `nocache`, `rm`), the JSON progress stream shown as it comes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use berth_compose::Project;
use berth_compose::model::Service;
use berth_compose::plan;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use serde_json::{Map, Value, json};

use super::{ProjectArgs, progress};
use crate::StatusError;
use crate::client::{Client, check, next_chunk, query};

/// `build`'s flags.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Set build-time variables for services
    #[arg(long = "build-arg", value_name = "KEY=VAL")]
    pub build_arg: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Services to build
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Options of one build beyond the file's.
#[derive(Debug, Default, Clone)]
pub struct BuildOptions {
    /// `--build-arg`.
    pub args: Vec<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `-q`.
    pub quiet: bool,
}

/// `berth compose build`.
pub async fn build_cmd(c: &Client, p: &ProjectArgs, a: BuildArgs) -> Result<i32> {
    let project = super::load(p, &a.services)?;
    for s in &a.services {
        if !project.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let opts = BuildOptions { args: a.build_arg, no_cache: a.no_cache, pull: a.pull, quiet: a.quiet };
    for s in project.services.values().filter(|s| a.services.is_empty() || a.services.contains(&s.name)) {
        if s.build.is_some() {
            build_service(c, &project, s, &opts).await?;
        }
    }
    Ok(0)
}

/// One `.dockerignore` rule.
#[derive(Debug, Clone)]
struct Rule {
    parts: Vec<String>,
    exclusion: bool,
}

/// Parses `.dockerignore` (moby's rules: `#` comments, `!` exceptions, paths cleaned, leading `/` dropped).
fn parse_ignore(text: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (exclusion, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let cleaned = berth_compose::normalize::absolute(Path::new("/"), pat);
        let parts: Vec<String> =
            cleaned.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        if !parts.is_empty() {
            rules.push(Rule { parts, exclusion });
        }
    }
    rules
}

/// Go's `filepath.Match` for one path component (`*`, `?`, `[...]`, `\` escapes).
fn match_component(pat: &[char], s: &[char]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| match_component(&pat[1..], &s[i..])),
        Some('?') => !s.is_empty() && match_component(&pat[1..], &s[1..]),
        Some('[') => {
            let Some(end) = pat.iter().position(|c| *c == ']') else { return false };
            let Some(&ch) = s.first() else { return false };
            let class = &pat[1..end];
            let (negate, class) = match class.first() {
                Some('^') | Some('!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= ch && ch <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == ch;
                    i += 1;
                }
            }
            hit != negate && match_component(&pat[end + 1..], &s[1..])
        }
        Some('\\') if pat.len() > 1 => s.first() == Some(&pat[1]) && match_component(&pat[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && match_component(&pat[1..], &s[1..]),
    }
}

/// Whether the pattern's components match a prefix of the path's (so a matched directory covers its content).
fn match_parts(pat: &[String], path: &[&str]) -> bool {
    match pat.first() {
        None => true,
        Some(p) if p == "**" => (0..=path.len()).any(|i| match_parts(&pat[1..], &path[i..])),
        Some(p) => {
            let Some(first) = path.first() else { return false };
            let pc: Vec<char> = p.chars().collect();
            let sc: Vec<char> = first.chars().collect();
            match_component(&pc, &sc) && match_parts(&pat[1..], &path[1..])
        }
    }
}

/// Whether `.dockerignore`'s rules exclude `rel` (the last matching rule decides).
fn excluded(rules: &[Rule], rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut out = false;
    for r in rules {
        if match_parts(&r.parts, &parts) {
            out = !r.exclusion;
        }
    }
    out
}

/// The context as a tar (in memory), without what `.dockerignore` excludes; the Dockerfile and `.dockerignore`
/// are always sent (as the docker CLI does). `extra` adds generated files (an inline Dockerfile).
fn context_tar(dir: &Path, keep: &[String], extra: Option<(&str, &[u8])>) -> Result<Vec<u8>> {
    let rules = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(t) => parse_ignore(&t),
        Err(_) => Vec::new(),
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .with_context(|| format!("read the build context {}", full.display()))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let rs = r.display().to_string();
            let always = keep.iter().any(|k| k == &rs);
            let ft = e.file_type().with_context(|| format!("stat {rs}"))?;
            if excluded(&rules, &rs) && !always {
                // An exception below an excluded directory still needs the walk.
                if !(ft.is_dir()
                    && rules.iter().any(|x| x.exclusion && x.parts.first().is_some_and(|p| rs.starts_with(p.as_str()))))
                {
                    continue;
                }
                stack.push(r);
                continue;
            }
            b.append_path_with_name(e.path(), &r).with_context(|| format!("add {rs} to the build context"))?;
            if ft.is_dir() {
                stack.push(r);
            }
        }
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).context("add the inline Dockerfile")?;
    }
    b.into_inner().context("finish the build context")
}

/// Builds one service's image with `POST /build`.
pub async fn build_service(c: &Client, project: &Project, svc: &Service, opts: &BuildOptions) -> Result<()> {
    let Some(build) = &svc.build else { return Ok(()) };
    let image = plan::image_name(&project.name, svc);
    if build.context.contains("://") || build.context.starts_with("git@") {
        bail!("service {:?}: remote build contexts ({}) are not supported", svc.name, build.context);
    }
    let ctx = PathBuf::from(&build.context);
    let (dockerfile, extra) = match (&build.dockerfile_inline, &build.dockerfile) {
        (Some(inline), _) => (".berth-compose.Dockerfile".to_string(), Some(inline.clone().into_bytes())),
        (None, Some(d)) => (d.clone(), None),
        (None, None) => ("Dockerfile".to_string(), None),
    };
    let keep = vec![dockerfile.clone(), ".dockerignore".to_string()];
    let tar = {
        let ctx = ctx.clone();
        let name = dockerfile.clone();
        tokio::task::spawn_blocking(move || context_tar(&ctx, &keep, extra.as_deref().map(|d| (name.as_str(), d))))
            .await
            .map_err(|e| anyhow!("build context: {e}"))??
    };
    let mut args: Map<String, Value> = build
        .args
        .iter()
        .filter_map(|(k, v)| v.clone().or_else(|| project.environment.get(k).cloned()).map(|v| (k.clone(), json!(v))))
        .collect();
    for a in &opts.args {
        match a.split_once('=') {
            Some((k, v)) => args.insert(k.to_string(), json!(v)),
            None => args.insert(a.clone(), json!(std::env::var(a).unwrap_or_default())),
        };
    }
    let labels: Map<String, Value> =
        build.labels.iter().map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default()))).collect();
    let mut q: Vec<(&str, String)> = vec![("t", image.clone())];
    for t in &build.tags {
        q.push(("t", t.clone()));
    }
    q.push(("dockerfile", dockerfile));
    if !args.is_empty() {
        q.push(("buildargs", Value::Object(args).to_string()));
    }
    if let Some(t) = &build.target {
        q.push(("target", t.clone()));
    }
    if !labels.is_empty() {
        q.push(("labels", Value::Object(labels).to_string()));
    }
    if opts.pull || build.pull.unwrap_or(false) {
        q.push(("pull", "1".into()));
    }
    if opts.no_cache || build.no_cache.unwrap_or(false) {
        q.push(("nocache", "1".into()));
    }
    q.push(("rm", "1".into()));
    if let Some(n) = &build.network {
        q.push(("networkmode", n.clone()));
    }
    if !build.extra_hosts.is_empty() {
        q.push(("extrahosts", build.extra_hosts.iter().map(|h| h.replacen('=', ":", 1)).collect::<Vec<_>>().join(",")));
    }
    q.push(("version", "1".into()));
    let body = Full::new(Bytes::from(tar)).map_err(|never| match never {}).boxed();
    let resp = c
        .send(
            Method::POST,
            &format!("/build{}", query(&q)),
            body,
            &[("content-type", "application/x-tar"), ("x-registry-config", "e30=")],
        )
        .await?;
    if resp.status().as_u16() == 404 {
        return Err(StatusError::exit(
            1,
            format!("service {:?}: the daemon has no image builder (POST /build answered 404)", svc.name),
        ));
    }
    let resp = check(resp).await.with_context(|| format!("service {:?}: build", svc.name))?;
    let mut body = resp.into_body();
    let mut pending = String::new();
    let show = |line: &str| -> Result<()> {
        let Ok(v) = serde_json::from_str::<Value>(line) else { return Ok(()) };
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            bail!("service {:?} failed to build: {}", svc.name, e.trim());
        }
        if !opts.quiet
            && let Some(s) = v.get("stream").and_then(Value::as_str)
        {
            let mut err = std::io::stderr();
            let _ = err.write_all(s.as_bytes());
        }
        Ok(())
    };
    while let Some(chunk) = next_chunk(&mut body).await? {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            show(line.trim())?;
        }
    }
    show(pending.trim())?;
    progress(&format!("Service {}", svc.name), "Built");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules() {
        let rules = parse_ignore("# c\nnode_modules\n*.log\n!keep.log\n/build/\n**/secret*\ndocs/**/*.md\n");
        assert!(excluded(&rules, "node_modules"));
        assert!(excluded(&rules, "node_modules/x/y.js"));
        assert!(excluded(&rules, "a.log"));
        assert!(!excluded(&rules, "keep.log"));
        assert!(!excluded(&rules, "sub/a.log"));
        assert!(excluded(&rules, "build/out"));
        assert!(excluded(&rules, "deep/er/secret.txt"));
        assert!(excluded(&rules, "secret"));
        assert!(excluded(&rules, "docs/a/b/c.md"));
        assert!(!excluded(&rules, "docs/a/b/c.txt"));
        assert!(!excluded(&rules, "src/main.rs"));
    }

    #[test]
    fn the_context_honours_dockerignore() {
        let d = tempfile::tempdir().expect("tempdir");
        for (f, t) in [
            ("Dockerfile", "FROM busybox\n"),
            (".dockerignore", "*.log\nDockerfile\ntmp\n"),
            ("a.txt", "a"),
            ("x.log", "x"),
            ("tmp/y", "y"),
            ("src/z", "z"),
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, t).expect("write");
        }
        let keep = vec!["Dockerfile".to_string(), ".dockerignore".to_string()];
        let tar = context_tar(d.path(), &keep, Some(("inline.Dockerfile", b"FROM x\n"))).expect("tar");
        let mut a = tar::Archive::new(&tar[..]);
        let mut names: Vec<String> = a
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec![".dockerignore", "Dockerfile", "a.txt", "inline.Dockerfile", "src", "src/z"]);
    }
}
