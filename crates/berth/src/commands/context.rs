//! `berth context`: named daemon endpoints in the docker CLI's own layout, so both CLIs share them:
//! `<config dir>/contexts/meta/<sha256 of the name>/meta.json` and the TLS files in
//! `<config dir>/contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem`; the current one is `currentContext` of
//! `config.json` (`--context` and `DOCKER_CONTEXT` override it; `-H` and `DOCKER_HOST` override every context).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use berth_api::auth::DockerConfig;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::TlsOptions;
use crate::table::align;

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Create a context
    Create(CreateArgs),
    /// List contexts
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Set the current docker context
    Use {
        /// The context
        name: String,
    },
    /// Remove one or more contexts
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of a context in use
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Display detailed information on one or more contexts
    Inspect {
        /// Format the output using the given Go template
        #[arg(short = 'f', long = "format", value_name = "STRING")]
        format: Option<String>,
        names: Vec<String>,
    },
    /// Print the name of the current context
    Show,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The context's name
    pub name: String,
    /// Description of the context
    #[arg(long, default_value = "")]
    pub description: String,
    /// set the docker endpoint: host=...,ca=...,cert=...,key=...,skip-tls-verify=true|false
    #[arg(long, value_name = "stringToString")]
    pub docker: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only show context names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output (only `json` besides the table)
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
}

/// The client configuration directory (`DOCKER_CONFIG`, else `~/.docker`).
fn config_dir() -> PathBuf {
    DockerConfig::default_path().parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

fn meta_dir(name: &str) -> PathBuf {
    config_dir().join("contexts").join("meta").join(id(name))
}

fn tls_dir(name: &str) -> PathBuf {
    config_dir().join("contexts").join("tls").join(id(name)).join("docker")
}

fn valid_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if !ok || name == "default" {
        bail!("context name {name:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"");
    }
    Ok(())
}

/// A stored context's `meta.json`.
fn load_meta(name: &str) -> Result<Value> {
    let p = meta_dir(name).join("meta.json");
    let data = std::fs::read(&p).map_err(|_| anyhow::anyhow!("context {name:?} does not exist"))?;
    serde_json::from_slice(&data).with_context(|| format!("{}", p.display()))
}

/// Every stored context's name, sorted.
fn names() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(config_dir().join("contexts").join("meta")) {
        for e in rd.flatten() {
            if let Ok(data) = std::fs::read(e.path().join("meta.json"))
                && let Ok(v) = serde_json::from_slice::<Value>(&data)
                && let Some(n) = v["Name"].as_str()
            {
                out.push(n.to_string());
            }
        }
    }
    out.sort();
    out
}

/// The context in force: `--context`, else `DOCKER_CONTEXT`, else `currentContext` (`default` when none).
pub fn current(flag: Option<&str>) -> String {
    if let Some(f) = flag.filter(|f| !f.is_empty()) {
        return f.to_string();
    }
    if let Some(e) = std::env::var("DOCKER_CONTEXT").ok().filter(|e| !e.is_empty()) {
        return e;
    }
    DockerConfig::load(&DockerConfig::default_path()).ok().and_then(|c| c.current_context()).unwrap_or("default".into())
}

/// The host and TLS options of context `name` (`None` for `default`: the environment's and the defaults).
pub fn endpoint(name: &str) -> Result<Option<(String, TlsOptions)>> {
    if name == "default" {
        return Ok(None);
    }
    let meta = load_meta(name)?;
    let ep = &meta["Endpoints"]["docker"];
    let host = ep["Host"].as_str().unwrap_or_default().to_string();
    let dir = tls_dir(name);
    let file = |f: &str| Some(dir.join(f)).filter(|p| p.exists());
    let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
    let has_tls = ca.is_some() || cert.is_some();
    let skip = ep["SkipTLSVerify"].as_bool().unwrap_or(false);
    let tls = TlsOptions { tls: has_tls || skip, verify: has_tls && !skip, ca, cert, key };
    Ok(Some((host, tls)))
}

pub fn run(cmd: ContextCmd, flag: Option<&str>) -> Result<i32> {
    match cmd {
        ContextCmd::Create(a) => create(a),
        ContextCmd::Ls(a) => ls(a, flag),
        ContextCmd::Use { name } => {
            if name != "default" {
                load_meta(&name)?;
            }
            let mut conf = DockerConfig::load(&DockerConfig::default_path())?;
            conf.set_current_context(Some(&name));
            conf.save()?;
            outln!("{name}");
            if std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
                eprintln!("Warning: DOCKER_HOST environment variable overrides the active context.");
            }
            Ok(0)
        }
        ContextCmd::Rm { force, names } => {
            let cur = current(flag);
            for n in &names {
                load_meta(n)?;
                if *n == cur && !force {
                    bail!("context {n:?} is in use, set -f flag to force remove");
                }
                let _ = std::fs::remove_dir_all(meta_dir(n));
                let _ = std::fs::remove_dir_all(tls_dir(n).parent().unwrap_or(&tls_dir(n)));
                if *n == cur {
                    let mut conf = DockerConfig::load(&DockerConfig::default_path())?;
                    conf.set_current_context(None);
                    conf.save()?;
                }
                outln!("{n}");
            }
            Ok(0)
        }
        ContextCmd::Inspect { format, names } => {
            let names = if names.is_empty() { vec![current(flag)] } else { names };
            let mut out = Vec::new();
            for n in &names {
                out.push(inspect_one(n)?);
            }
            match format {
                Some(f) => {
                    for v in &out {
                        let line = crate::template::Template::parse(&f)
                            .and_then(|t| t.execute(v))
                            .map_err(|e| anyhow::anyhow!("template: {}", e.0))?;
                        outln!("{line}");
                    }
                }
                None => outln!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
            }
            Ok(0)
        }
        ContextCmd::Show => {
            outln!("{}", current(flag));
            Ok(0)
        }
    }
}

fn inspect_one(name: &str) -> Result<Value> {
    if name == "default" {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| crate::client::DEFAULT_HOST.to_string());
        return Ok(json!({"Name": "default", "Metadata": {}, "Endpoints": {"docker": {"Host": host,
            "SkipTLSVerify": false}}, "TLSMaterial": {}, "Storage": {"MetadataPath": "<IN MEMORY>",
            "TLSPath": "<IN MEMORY>"}}));
    }
    let mut v = load_meta(name)?;
    let dir = tls_dir(name);
    let files: Vec<&str> = ["ca.pem", "cert.pem", "key.pem"].into_iter().filter(|f| dir.join(f).exists()).collect();
    v["TLSMaterial"] = if files.is_empty() { json!({}) } else { json!({"docker": files}) };
    v["Storage"] = json!({"MetadataPath": meta_dir(name), "TLSPath": dir.parent().unwrap_or(&dir)});
    Ok(v)
}

fn create(a: CreateArgs) -> Result<i32> {
    valid_name(&a.name)?;
    if meta_dir(&a.name).join("meta.json").exists() {
        bail!("context {:?} already exists", a.name);
    }
    let mut host = None;
    let mut files: Vec<(&str, PathBuf)> = Vec::new();
    let mut skip = false;
    for kv in a.docker.as_deref().unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').with_context(|| format!("--docker {kv:?}: want key=value"))?;
        match k {
            "host" => host = Some(v.to_string()),
            "ca" => files.push(("ca.pem", PathBuf::from(v))),
            "cert" => files.push(("cert.pem", PathBuf::from(v))),
            "key" => files.push(("key.pem", PathBuf::from(v))),
            "skip-tls-verify" => skip = v.parse().with_context(|| format!("skip-tls-verify={v:?}"))?,
            _ => bail!("unrecognized config key: {k}"),
        }
    }
    let host = match host {
        Some(h) => h,
        None => std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| crate::client::DEFAULT_HOST.to_string()),
    };
    // Checked as a client of it would be: a host berth can speak to, TLS files that load.
    let tls = TlsOptions {
        tls: !files.is_empty() || skip,
        verify: !files.is_empty() && !skip,
        ca: files.iter().find(|(n, _)| *n == "ca.pem").map(|(_, p)| p.clone()),
        cert: files.iter().find(|(n, _)| *n == "cert.pem").map(|(_, p)| p.clone()),
        key: files.iter().find(|(n, _)| *n == "key.pem").map(|(_, p)| p.clone()),
    };
    crate::client::Client::new(Some(host.clone()), &tls)?;
    let meta = json!({"Name": a.name, "Metadata": {"Description": a.description},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}}});
    let mdir = meta_dir(&a.name);
    std::fs::create_dir_all(&mdir).with_context(|| format!("create {}", mdir.display()))?;
    let tdir = tls_dir(&a.name);
    for (n, from) in &files {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&tdir).with_context(|| format!("create {}", tdir.display()))?;
        std::fs::copy(from, tdir.join(n)).with_context(|| format!("copy {}", from.display()))?;
        std::fs::set_permissions(tdir.join(n), std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(mdir.join("meta.json"), serde_json::to_vec(&meta)?)
        .with_context(|| format!("write {}", mdir.display()))?;
    outln!("{}", a.name);
    eprintln!("Successfully created context \"{}\"", a.name);
    Ok(0)
}

fn ls(a: LsArgs, flag: Option<&str>) -> Result<i32> {
    let cur = current(flag);
    let mut all = vec!["default".to_string()];
    all.extend(names());
    if a.quiet {
        for n in &all {
            outln!("{n}");
        }
        return Ok(0);
    }
    let mut rows = Vec::new();
    for n in &all {
        let v = inspect_one(n)?;
        rows.push(v);
    }
    if a.format.as_deref() == Some("json") {
        for (n, v) in all.iter().zip(&rows) {
            let line = json!({"Name": n, "Current": *n == cur,
                "Description": v["Metadata"]["Description"].as_str().unwrap_or_default(),
                "DockerEndpoint": v["Endpoints"]["docker"]["Host"]});
            outln!("{line}");
        }
        return Ok(0);
    }
    let mut text = String::from("NAME\tDESCRIPTION\tDOCKER ENDPOINT\tERROR\n");
    for (n, v) in all.iter().zip(&rows) {
        let mark = if *n == cur { " *" } else { "" };
        let desc = if n == "default" {
            "Current DOCKER_HOST based configuration"
        } else {
            v["Metadata"]["Description"].as_str().unwrap_or_default()
        };
        let host = v["Endpoints"]["docker"]["Host"].as_str().unwrap_or_default();
        text.push_str(&format!("{n}{mark}\t{desc}\t{host}\t\n"));
    }
    out!("{}", align(&text, 0, 3));
    Ok(0)
}
