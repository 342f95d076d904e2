//! Registry commands: `pull`, `push`, `login`, `logout`. Credentials come from docker's `config.json` (so
//! `docker login` and `berth login` share them) and go to the daemon in the `X-Registry-Auth` header.

use std::io::{IsTerminal, Write};

use anyhow::{Context as _, Result};
use berth_api::auth::{Credentials, DockerConfig, normalize_server};
use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use super::image_path;
use crate::StatusError;
use crate::client::{Client, check, empty, json_body, query};

/// `berth pull`.
#[derive(Args, Debug)]
#[command(override_usage = "berth pull [OPTIONS] NAME[:TAG|@DIGEST]")]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Skip image verification (accepted; berth always verifies digests)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

/// `berth push`.
#[derive(Args, Debug)]
#[command(override_usage = "berth push [OPTIONS] NAME[:TAG]")]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Push a platform-specific manifest (accepted; berth keeps one platform per image)
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Skip image signing (accepted)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

/// `berth login`.
#[derive(Args, Debug)]
#[command(override_usage = "berth login [OPTIONS] [SERVER]")]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username", value_name = "USERNAME")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long = "password", value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// SERVER
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// `berth logout`.
#[derive(Args, Debug)]
#[command(override_usage = "berth logout [SERVER]")]
pub struct LogoutArgs {
    /// SERVER
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// `berth registry`.
#[derive(clap::Subcommand, Debug)]
pub enum RegistryCmd {
    /// Serve a registry (the OCI distribution API) from a directory, in the foreground
    Serve(ServeArgs),
    /// Delete the blobs no manifest references (run it while the registry is stopped)
    Gc(GcArgs),
}

/// `berth registry serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long = "addr", value_name = "HOST:PORT", default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// Directory that holds the registry's content
    #[arg(long = "root", value_name = "DIR", default_value = "/var/lib/berth-registry")]
    pub root: std::path::PathBuf,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key)
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Require basic auth against this htpasswd file (bcrypt entries: `htpasswd -B`)
    #[arg(long = "htpasswd", value_name = "FILE")]
    pub htpasswd: Option<std::path::PathBuf>,
    /// Realm of the basic-auth challenge
    #[arg(long = "realm", value_name = "REALM", default_value = "berth-registry")]
    pub realm: String,
    /// What goes to stderr: error, warn, info (one line per request), debug
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// `berth registry gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Directory that holds the registry's content
    #[arg(long = "root", value_name = "DIR", default_value = "/var/lib/berth-registry")]
    pub root: std::path::PathBuf,
    /// Keep blobs, links and uploads younger than this (pushes in progress); 0s: the registry must be stopped
    #[arg(long = "grace", value_name = "DURATION", default_value = "1h", value_parser = berth_api::units::go_duration)]
    pub grace: std::time::Duration,
    /// Only report what would be removed
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

pub async fn registry(cmd: RegistryCmd) -> Result<i32> {
    match cmd {
        RegistryCmd::Serve(a) => {
            let level = a.log_level.parse::<tracing_subscriber::filter::LevelFilter>().map_err(|_| {
                StatusError::exit(125, format!("invalid --log-level {:?} (error, warn, info, debug)", a.log_level))
            })?;
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_ansi(false).init();
            let config = berth_registry::server::Config {
                addr: a.addr.clone(),
                root: a.root.clone(),
                tls: a.tls_cert.zip(a.tls_key),
                htpasswd: a.htpasswd,
                realm: a.realm,
            };
            let server = berth_registry::server::Server::bind(&config)
                .await
                .map_err(|e| StatusError::exit(1, format!("registry: {e}")))?;
            let scheme = if server.is_tls() { "https" } else { "http" };
            let addr = server.local_addr().map(|a| a.to_string()).unwrap_or(a.addr);
            eprintln!("berth registry: serving {} on {scheme}://{addr}", a.root.display());
            server.run().await.map_err(|e| StatusError::exit(1, format!("registry: {addr}: {e}")))?;
            Ok(0)
        }
        RegistryCmd::Gc(a) => {
            let r = berth_registry::server::garbage_collect(&a.root, a.grace, a.dry_run)
                .map_err(|e| StatusError::exit(1, format!("registry gc: {}: {e}", a.root.display())))?;
            let verb = if a.dry_run { "would remove" } else { "removed" };
            outln!("{verb} {} blobs ({} bytes), {} abandoned uploads", r.blobs, r.bytes, r.uploads);
            Ok(0)
        }
    }
}

/// The registry a reference names (`localhost:5000/a` → `localhost:5000`; `busybox` → `docker.io`).
pub fn registry_of(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            normalize_server(first)
        }
        _ => "docker.io".into(),
    }
}

/// Splits `name[:tag|@digest]` into the repository and the tag or digest.
fn split_reference(name: &str) -> (String, Option<String>) {
    if let Some((n, d)) = name.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) => (name[..name.len() - tag.len() - 1].to_string(), Some(tag.to_string())),
        None => (name.to_string(), None),
    }
}

/// The fully qualified name docker prints after a pull (`busybox:latest` → `docker.io/library/busybox:latest`).
fn qualified(repo: &str, tag: &str) -> String {
    let sep = if tag.contains(':') { '@' } else { ':' };
    let reg = registry_of(repo);
    let full = if reg == "docker.io" {
        let path = repo.strip_prefix("docker.io/").unwrap_or(repo);
        if path.contains('/') { format!("docker.io/{path}") } else { format!("docker.io/library/{path}") }
    } else {
        repo.to_string()
    };
    format!("{full}{sep}{tag}")
}

/// The `X-Registry-Auth` header for a registry, from docker's `config.json`.
fn auth_header(registry: &str) -> Result<String> {
    let cfg = DockerConfig::load(&DockerConfig::default_path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cfg.get(registry).unwrap_or_default().to_header())
}

/// Shows docker's JSON message stream: one line per layer, redrawn in place on a terminal; without a terminal,
/// the status lines only (no progress bars). Returns the error message that ended the stream, if any.
struct Renderer {
    tty: bool,
    quiet: bool,
    ids: Vec<String>,
}

impl Renderer {
    fn show(&mut self, v: &Value) -> Option<String> {
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            return Some(e.to_string());
        }
        if self.quiet {
            return None;
        }
        let mut out = std::io::stdout();
        if let Some(s) = v["stream"].as_str() {
            let _ = write!(out, "{s}");
            return None;
        }
        let status = v["status"].as_str().unwrap_or("");
        let progress = v["progress"].as_str().unwrap_or("");
        match v["id"].as_str() {
            Some(id) if !id.is_empty() => {
                let has_progress = !progress.is_empty();
                if !self.tty && has_progress {
                    return None;
                }
                let line = if self.tty && has_progress {
                    format!("{id}: {status} {progress}")
                } else {
                    format!("{id}: {status}")
                };
                match self.ids.iter().position(|i| i == id) {
                    Some(pos) if self.tty => {
                        let up = self.ids.len() - pos;
                        let _ = write!(out, "\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r");
                    }
                    _ => {
                        if self.tty {
                            self.ids.push(id.to_string());
                        }
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            _ if !status.is_empty() => {
                self.ids.clear();
                let _ = writeln!(out, "{status}");
            }
            _ => {}
        }
        let _ = out.flush();
        None
    }
}

/// Reads a JSON message stream to its end.
async fn follow(resp: hyper::Response<hyper::body::Incoming>, quiet: bool) -> Result<()> {
    let mut r = Renderer { tty: std::io::stdout().is_terminal(), quiet, ids: Vec::new() };
    let mut failure = None;
    crate::client::json_messages(resp, |v| {
        if let Some(e) = r.show(v) {
            failure = Some(e);
        }
    })
    .await?;
    match failure {
        Some(e) => Err(StatusError::exit(1, e)),
        None => Ok(()),
    }
}

/// The repository and tag of a `pull`/`push` argument: docker's `latest` when none is given (and not `-a`).
fn repo_and_tag(name: &str, all_tags: bool, quiet: bool) -> Result<(String, Option<String>)> {
    let (repo, tag) = split_reference(name);
    if all_tags && tag.is_some() {
        return Err(StatusError::exit(1, "tag can't be used with --all-tags/-a"));
    }
    if tag.is_none() && !all_tags {
        if !quiet {
            outln!("Using default tag: latest");
        }
        return Ok((repo, Some("latest".into())));
    }
    Ok((repo, tag))
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<i32> {
    let (repo, tag) = repo_and_tag(&a.name, a.all_tags, a.quiet)?;
    pull_request(c, &repo, tag.as_deref(), a.platform.as_deref(), a.quiet).await?;
    match &tag {
        Some(t) => outln!("{}", qualified(&repo, t)),
        None => outln!("{}", qualified(&repo, "").trim_end_matches(':')),
    }
    Ok(0)
}

/// `POST /images/create` with the registry's credentials, its progress shown (unless `quiet`).
async fn pull_request(c: &Client, repo: &str, tag: Option<&str>, platform: Option<&str>, quiet: bool) -> Result<()> {
    let mut q = vec![("fromImage", repo.to_string())];
    if let Some(t) = tag {
        q.push(("tag", t.to_string()));
    }
    if let Some(p) = platform {
        q.push(("platform", p.to_string()));
    }
    let auth = auth_header(&registry_of(repo))?;
    let resp =
        c.send(Method::POST, &format!("/images/create{}", query(&q)), empty(), &[("x-registry-auth", &auth)]).await?;
    let resp = check(resp).await?;
    follow(resp, quiet).await
}

/// Pulls `image` (`latest` when it has no tag) for compose, showing the progress unless `quiet`.
pub async fn pull_with_progress(c: &Client, image: &str, quiet: bool) -> Result<()> {
    let (repo, tag) = split_reference(image);
    pull_request(c, &repo, Some(tag.as_deref().unwrap_or("latest")), None, quiet).await
}

/// Pulls `image` (with `:latest` when it names no tag) without showing progress (`run`, `create`).
pub async fn pull_quietly(c: &Client, image: &str) -> Result<()> {
    pull_with_progress(c, image, true).await
}

/// `POST /images/{name}/push` with the registry's credentials, its progress shown (unless `quiet`).
async fn push_request(c: &Client, repo: &str, tag: Option<&str>, quiet: bool) -> Result<()> {
    let q: Vec<(&str, String)> = tag.iter().map(|t| ("tag", t.to_string())).collect();
    let auth = auth_header(&registry_of(repo))?;
    let path = format!("{}/push{}", image_path(repo), query(&q));
    let resp = c.send(Method::POST, &path, empty(), &[("x-registry-auth", &auth)]).await?;
    let resp = check(resp).await?;
    follow(resp, quiet).await
}

/// Pushes `image` (`latest` when it has no tag) for compose, showing the progress unless `quiet`.
pub async fn push_with_progress(c: &Client, image: &str, quiet: bool) -> Result<()> {
    let (repo, tag) = split_reference(image);
    push_request(c, &repo, Some(tag.as_deref().unwrap_or("latest")), quiet).await
}

pub async fn push(c: &Client, a: PushArgs) -> Result<i32> {
    let (repo, tag) = repo_and_tag(&a.name, a.all_tags, a.quiet)?;
    push_request(c, &repo, tag.as_deref(), a.quiet).await?;
    if a.quiet {
        outln!("{}", a.name);
    }
    Ok(0)
}

fn read_line(prompt: &str, echo: bool) -> Result<String> {
    use std::io::BufRead;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let restore = if !echo && stdin.is_terminal() {
        let t = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &t {
            let mut quiet = t.clone();
            quiet.local_flags.remove(nix::sys::termios::LocalFlags::ECHO);
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet);
        }
        t
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = restore {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    r.context("read from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<i32> {
    let server = normalize_server(a.server.as_deref().unwrap_or(""));
    let mut cfg = DockerConfig::load(&DockerConfig::default_path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.password.is_some() && a.password_stdin {
        return Err(StatusError::exit(1, "--password and --password-stdin are mutually exclusive"));
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None if a.password_stdin => return Err(StatusError::exit(1, "Must provide --username with --password-stdin")),
        None => {
            let stored = cfg.get(&server).map(|c| c.username).unwrap_or_default();
            let shown = if stored.is_empty() { String::new() } else { format!(" ({stored})") };
            let u = read_line(&format!("Username{shown}: "), true)?;
            if u.is_empty() { stored } else { u }
        }
    };
    if username.is_empty() {
        return Err(StatusError::exit(1, "Error: Non-null Username Required"));
    }
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("read the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => read_line("Password: ", false)?,
    };
    if password.is_empty() {
        return Err(StatusError::exit(1, "Error: Password Required"));
    }
    let creds = Credentials { username, password, server_address: server.clone(), ..Default::default() };
    let resp = c.call(Method::POST, "/auth", json_body(&json!(creds))?, true).await?;
    let body = crate::client::read_body(resp).await?;
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut stored = creds.clone();
    if let Some(t) = v["IdentityToken"].as_str().filter(|t| !t.is_empty()) {
        stored.identity_token = t.to_string();
    }
    cfg.set(&server, &stored);
    cfg.save().map_err(|e| anyhow::anyhow!("Error saving credentials: {e}"))?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning.",
        cfg.path().display()
    );
    outln!();
    outln!("{}", v["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(0)
}

pub async fn logout(a: LogoutArgs) -> Result<i32> {
    let server = normalize_server(a.server.as_deref().unwrap_or(""));
    let mut cfg = DockerConfig::load(&DockerConfig::default_path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !cfg.remove(&server) {
        outln!("Not logged in to {server}");
        return Ok(0);
    }
    outln!("Removing login credentials for {}", berth_api::auth::config_key(&server));
    cfg.save().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("me/app"), "docker.io");
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_of("ghcr.io/a/b"), "ghcr.io");
        assert_eq!(split_reference("localhost:5000/app:v1"), ("localhost:5000/app".into(), Some("v1".into())));
        assert_eq!(split_reference("localhost:5000/app"), ("localhost:5000/app".into(), None));
        assert_eq!(split_reference("app@sha256:abc"), ("app".into(), Some("sha256:abc".into())));
        assert_eq!(qualified("busybox", "latest"), "docker.io/library/busybox:latest");
        assert_eq!(qualified("localhost:5000/a", "sha256:ab"), "localhost:5000/a@sha256:ab");
    }
}
