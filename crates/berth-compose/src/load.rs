//! Loading a project: finding the files (`compose.yaml`, `compose.yml`, `docker-compose.yml`,
//! `docker-compose.yaml`, in the working directory or its parents, plus an `override` file next to it), the
//! project directory and name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`, the directory's name; normalised as Compose
//! does), the `.env` or `--env-file` variables, and per file: YAML (anchors and `<<` merge keys applied),
//! interpolation, validation against the specification, normalisation; then the merge, the profiles, the names
//! of networks and volumes, `env_file`s, and the checks of references and `depends_on` cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::model::{Resource, Service};
use crate::{dotenv, interpolate, normalize, schema, yaml};

/// The default file names, in Compose's order of preference.
pub const FILE_NAMES: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// The override files that are loaded after a default file found in the same directory.
pub const OVERRIDE_NAMES: [&str; 4] =
    ["compose.override.yaml", "compose.override.yml", "docker-compose.override.yml", "docker-compose.override.yaml"];

/// What the command line said.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-f` (none: `COMPOSE_FILE`, else the default names).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (none: `<project dir>/.env` if it exists).
    pub env_files: Vec<PathBuf>,
    /// `--profile` (none: `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// Services named on the command line: they are enabled whatever their profiles.
    pub services: Vec<String>,
    /// The directory to search from (normally the current one).
    pub working_dir: PathBuf,
    /// The process's environment.
    pub environment: BTreeMap<String, String>,
    /// `config --no-interpolate`: `${...}` is kept as written.
    pub no_interpolate: bool,
    /// `config --no-consistency`: references between services, networks, volumes, secrets and configs are not
    /// checked.
    pub no_consistency: bool,
    /// `config --no-env-resolution`: the model keeps `env_file` and `environment` as written (not merged, bare keys
    /// not looked up).
    pub no_env_resolution: bool,
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project's name.
    pub name: String,
    /// The project directory (absolute).
    pub working_dir: PathBuf,
    /// The files, absolute, in order.
    pub config_files: Vec<PathBuf>,
    /// Every file read: the project's, and those `include:` and `extends: {file:}` brought in.
    pub all_files: Vec<PathBuf>,
    /// The `.env` files that were read.
    pub env_files: Vec<PathBuf>,
    /// The variables interpolation used (the process's environment over the `.env` files).
    pub environment: BTreeMap<String, String>,
    /// The active profiles.
    pub profiles: Vec<String>,
    /// The enabled services.
    pub services: BTreeMap<String, Service>,
    /// Services that are defined but disabled by their profiles.
    pub disabled: BTreeMap<String, Service>,
    /// Top-level networks (with `default` when a service uses it), engine names filled in.
    pub networks: BTreeMap<String, Resource>,
    /// Top-level volumes, engine names filled in.
    pub volumes: BTreeMap<String, Resource>,
    /// The normalised model of the enabled services, as `config` prints it; the hashes are computed from it.
    pub model: Value,
    /// Variables that were used without being set (Compose warns about each).
    pub unset: Vec<String>,
}

/// Compose's normalisation of a project name: lower case, only `a-z 0-9 _ -`, starting with a letter or digit.
pub fn normalize_project_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

/// Whether `s` is a valid project name as given explicitly (`-p`, `COMPOSE_PROJECT_NAME`, `name:`).
pub fn is_valid_project_name(s: &str) -> bool {
    !s.is_empty() && normalize_project_name(s) == s
}

/// Finds the default file in `dir` or its parents; returns it and the override file next to it, if any.
pub fn find_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        if let Some(f) = FILE_NAMES.iter().map(|n| cur.join(n)).find(|p| p.is_file()) {
            let mut files = vec![f];
            if let Some(o) = OVERRIDE_NAMES.iter().map(|n| cur.join(n)).find(|p| p.is_file()) {
                files.push(o);
            }
            return Ok(files);
        }
        d = cur.parent();
    }
    Err(Error::NoFile { dir: dir.display().to_string() })
}

/// The variables of the environment over those of the `.env` files.
struct Env<'a> {
    os: &'a BTreeMap<String, String>,
    dotenv: &'a BTreeMap<String, String>,
}

impl interpolate::Lookup for Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.os.get(name).or_else(|| self.dotenv.get(name)).cloned()
    }
}

/// Parses YAML into JSON values as Compose v2 reads it (see [`crate::yaml`]): anchors, aliases and `<<` merge keys
/// applied, `!reset`/`!override` returned apart.
pub fn parse_yaml(file: &str, text: &str) -> Result<(Value, Vec<yaml::Reset>)> {
    let d = yaml::parse(text).map_err(|message| Error::Yaml { file: file.to_string(), message })?;
    match d.value {
        // As compose-go: a file with nothing in it (or only comments) is no project.
        Value::Null => {
            Err(Error::Invalid { file: file.to_string(), path: String::new(), message: "empty compose file".into() })
        }
        v @ Value::Object(_) => Ok((v, d.resets)),
        other => Err(Error::Invalid {
            file: file.to_string(),
            path: String::new(),
            message: format!("expected a mapping at the top level, got {other}"),
        }),
    }
}

/// Loads, validates and normalises a project.
pub fn load(opts: &Options) -> Result<Project> {
    let os = &opts.environment;
    // The first `.env` files: every `--env-file`, else the `.env` of the directory Compose starts in. They
    // configure Compose (`COMPOSE_FILE`, `COMPOSE_PROFILES`...) and hold interpolation variables; each is read with
    // the environment and the files before it visible.
    let start_dir =
        opts.project_directory.as_ref().map(|p| opts.working_dir.join(p)).unwrap_or(opts.working_dir.clone());
    let explicit = !opts.env_files.is_empty();
    let mut env_files: Vec<PathBuf> = if explicit {
        opts.env_files
            .iter()
            .map(|f| PathBuf::from(normalize::absolute(&opts.working_dir, &f.display().to_string())))
            .collect()
    } else {
        let dot = PathBuf::from(normalize::absolute(&start_dir, ".env"));
        if dot.is_file() { vec![dot] } else { Vec::new() }
    };
    let mut first_vars = BTreeMap::new();
    for f in &env_files {
        let vars = dotenv::read(f, &Env { os, dotenv: &first_vars })?;
        first_vars.extend(vars);
    }
    let compose_file = os.get("COMPOSE_FILE").or_else(|| first_vars.get("COMPOSE_FILE"));
    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| opts.working_dir.join(f)).collect()
    } else if let Some(cf) = compose_file.filter(|s| !s.is_empty()) {
        let sep = os
            .get("COMPOSE_PATH_SEPARATOR")
            .or_else(|| first_vars.get("COMPOSE_PATH_SEPARATOR"))
            .and_then(|s| s.chars().next())
            .unwrap_or(':');
        cf.split(sep).filter(|s| !s.is_empty()).map(|f| opts.working_dir.join(f)).collect()
    } else {
        find_files(&start_dir)?
    };
    let files: Vec<PathBuf> =
        files.iter().map(|f| PathBuf::from(normalize::absolute(Path::new("/"), &f.display().to_string()))).collect();
    let working_dir = match &opts.project_directory {
        Some(p) => PathBuf::from(normalize::absolute(&opts.working_dir, &p.display().to_string())),
        None => files.first().and_then(|f| f.parent()).map(Path::to_path_buf).unwrap_or(opts.working_dir.clone()),
    };
    // Without --env-file, the project directory's own `.env` (when the project is elsewhere) is layered under the
    // first one, as Compose v2 does.
    let mut dotenv_vars = BTreeMap::new();
    let project_dot = working_dir.join(".env");
    if !explicit && !env_files.contains(&project_dot) && project_dot.is_file() {
        dotenv_vars = dotenv::read(&project_dot, &Env { os, dotenv: &first_vars })?;
        env_files.insert(0, project_dot);
    }
    dotenv_vars.extend(first_vars);
    let env = Env { os, dotenv: &dotenv_vars };
    let mut unset = BTreeSet::new();
    let mut merged = json!({});
    let mut all_files: Vec<PathBuf> = Vec::new();
    for f in &files {
        let mut reader = FileReader {
            env: &env,
            unset: &mut unset,
            cwd: &opts.working_dir,
            resets: BTreeMap::new(),
            interpolate: !opts.no_interpolate,
        };
        let mut doc = reader.read(f, &working_dir)?;
        resolve_extends(&mut reader, &mut doc, f)?;
        for inc in includes(&mut reader, &mut doc, f, &working_dir, &mut Vec::new())? {
            normalize::merge(&mut merged, inc);
        }
        normalize::apply_resets(&mut merged, reader.resets.get(f).map(Vec::as_slice).unwrap_or_default());
        normalize::merge(&mut merged, doc);
        for read in reader.resets.keys() {
            if !all_files.contains(read) {
                all_files.push(read.clone());
            }
        }
    }
    let environment: BTreeMap<String, String> =
        dotenv_vars.iter().chain(os.iter()).map(|(k, v)| (k.clone(), v.clone())).collect();
    let first = files.first().map(|f| display_name(f, &opts.working_dir)).unwrap_or_default();
    let name = project_name(opts, &environment, &merged, &working_dir, &first)?;
    let profiles: Vec<String> = if !opts.profiles.is_empty() {
        opts.profiles.clone()
    } else {
        environment
            .get("COMPOSE_PROFILES")
            .map(|p| p.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    let mut project = build_project(name, working_dir, files, env_files, environment, profiles, merged, opts)?;
    project.unset = unset.into_iter().collect();
    project.all_files = all_files;
    Ok(project)
}

/// Reads files the way the project's files are read: parsed, interpolated, validated, normalised.
struct FileReader<'a> {
    env: &'a dyn interpolate::Lookup,
    unset: &'a mut BTreeSet<String>,
    cwd: &'a Path,
    /// The `!reset`/`!override` tags of each file read.
    resets: BTreeMap<PathBuf, Vec<yaml::Reset>>,
    /// Whether `${...}` is replaced (not with `config --no-interpolate`).
    interpolate: bool,
}

impl FileReader<'_> {
    /// One file; relative paths in it resolve against `base`.
    fn read(&mut self, f: &Path, base: &Path) -> Result<Value> {
        let shown = display_name(f, self.cwd);
        let text = std::fs::read_to_string(f).map_err(|source| Error::Read { file: shown.clone(), source })?;
        let (mut doc, resets) = parse_yaml(&shown, &text)?;
        self.resets.insert(f.to_path_buf(), resets);
        let unset = &mut *self.unset;
        if self.interpolate {
            interpolate::interpolate_file(&shown, &mut doc, self.env, &mut |n| {
                unset.insert(n.to_string());
            })?;
        }
        schema::validate(&doc).map_err(|v| Error::Invalid { file: shown.clone(), path: v.path, message: v.message })?;
        normalize::file(&shown, &mut doc, base, !self.interpolate)?;
        Ok(doc)
    }
}

/// Replaces every service's `extends` by the service it extends (from this file or another, recursively), with
/// the service's own keys merged over it by the usual rules.
fn resolve_extends(reader: &mut FileReader<'_>, doc: &mut Value, file: &Path) -> Result<()> {
    let names: Vec<String> =
        doc.get("services").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let snapshot = doc.clone();
    for n in names {
        let resolved = extended(reader, &snapshot, file, &n, &mut Vec::new())?;
        if let Some(slot) = doc.get_mut("services").and_then(|s| s.get_mut(&n)) {
            *slot = resolved;
        }
    }
    Ok(())
}

fn extended(
    reader: &mut FileReader<'_>,
    doc: &Value,
    file: &Path,
    name: &str,
    stack: &mut Vec<String>,
) -> Result<Value> {
    let shown = display_name(file, reader.cwd);
    let svc = doc.get("services").and_then(|s| s.get(name)).cloned().ok_or_else(|| Error::Invalid {
        file: shown.clone(),
        path: format!("services.{name}"),
        message: "no such service to extend".into(),
    })?;
    let Some(ext) = svc.get("extends").cloned() else { return Ok(svc) };
    let key = format!("{}:{name}", file.display());
    if stack.contains(&key) {
        stack.push(key);
        return Err(Error::Project(format!("circular reference with extends: {}", stack.join(" -> "))));
    }
    stack.push(key);
    let (base_name, base_file) = match &ext {
        Value::String(s) => (s.clone(), None),
        o => (
            o.get("service").and_then(Value::as_str).unwrap_or_default().to_string(),
            o.get("file").and_then(Value::as_str).map(str::to_string),
        ),
    };
    let base = match base_file {
        Some(f) => {
            let dir = file.parent().unwrap_or(Path::new("/"));
            let path = PathBuf::from(normalize::absolute(dir, &f));
            let other_dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            let other = reader.read(&path, &other_dir)?;
            extended(reader, &other, &path, &base_name, stack)?
        }
        None => extended(reader, doc, file, &base_name, stack)?,
    };
    stack.pop();
    let mut own = svc;
    if let Some(m) = own.as_object_mut() {
        m.remove("extends");
    }
    let mut merged = json!({"services": {name: base}});
    // The service's own `!reset`/`!override` apply to what it extends.
    let own_resets: Vec<yaml::Reset> = reader
        .resets
        .get(file)
        .into_iter()
        .flatten()
        .filter(|r| r.path.len() > 2 && r.path[0] == "services" && r.path[1] == name)
        .cloned()
        .collect();
    normalize::apply_resets(&mut merged, &own_resets);
    normalize::merge(&mut merged, json!({"services": {name: own}}));
    Ok(merged["services"][name].take())
}

/// The variables of an included project: the including one's, then those of its `env_file`s for the names it
/// leaves unset (compose-go's `environment.Clone().Merge(envFromFile)`).
struct Layered<'a> {
    first: &'a dyn interpolate::Lookup,
    more: BTreeMap<String, String>,
}

impl interpolate::Lookup for Layered<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.first.get(name).or_else(|| self.more.get(name).cloned())
    }
}

/// The files a file's `include:` names, read as compose-go's ApplyInclude does: paths, a relative
/// `project_directory` and `env_file`s relative to `workdir` (the including project's directory); the included
/// project's directory is `project_directory`, else its first file's; its variables are the including project's
/// over its `env_file`s (by default its directory's `.env`, when there is one; a named one must exist). Each is
/// read relative to its project directory, its own `extends` and `include`s resolved, and taken out of `doc`; a
/// service both included and defined is an error, as in Compose.
fn includes(
    reader: &mut FileReader<'_>,
    doc: &mut Value,
    file: &Path,
    workdir: &Path,
    stack: &mut Vec<PathBuf>,
) -> Result<Vec<Value>> {
    let Some(list) = doc.as_object_mut().and_then(|m| m.remove("include")) else { return Ok(Vec::new()) };
    stack.push(file.to_path_buf());
    let shown = display_name(file, reader.cwd);
    let mut out = Vec::new();
    for (i, item) in list.as_array().into_iter().flatten().enumerate() {
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(p)) => vec![p.clone()],
                Some(Value::Array(ps)) => ps.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                _ => Vec::new(),
            }
        };
        let (paths, project_dir, env_files) = match item {
            Value::String(p) => (vec![p.clone()], None, Vec::new()),
            o => (
                strings(o.get("path")),
                o.get("project_directory").and_then(Value::as_str).map(str::to_string),
                strings(o.get("env_file")),
            ),
        };
        let paths: Vec<PathBuf> = paths.iter().map(|p| PathBuf::from(normalize::absolute(workdir, p))).collect();
        let Some(main) = paths.first() else { continue };
        let base = match &project_dir {
            Some(pd) => PathBuf::from(normalize::absolute(workdir, pd)),
            None => main.parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        let env_files: Vec<PathBuf> = if env_files.is_empty() {
            Some(base.join(".env")).filter(|f| f.is_file()).into_iter().collect()
        } else {
            let mut l = Vec::new();
            for f in &env_files {
                let p = PathBuf::from(normalize::absolute(workdir, f));
                if !p.is_file() {
                    return Err(Error::Invalid {
                        file: shown.clone(),
                        path: format!("include.{i}.env_file"),
                        message: format!("env file {} not found", p.display()),
                    });
                }
                l.push(p);
            }
            l
        };
        let mut more = BTreeMap::new();
        for f in &env_files {
            let vars = dotenv::read(f, &Layered { first: reader.env, more: more.clone() })?;
            more.extend(vars);
        }
        let layered = Layered { first: reader.env, more };
        let mut sub = FileReader {
            env: &layered,
            unset: &mut *reader.unset,
            cwd: reader.cwd,
            resets: std::mem::take(&mut reader.resets),
            interpolate: reader.interpolate,
        };
        let mut read_all = || -> Result<Value> {
            let mut merged = json!({});
            for path in &paths {
                if stack.contains(path) {
                    return Err(Error::Project(format!(
                        "include cycle: {} includes {}",
                        file.display(),
                        path.display()
                    )));
                }
                let mut inc = sub.read(path, &base)?;
                resolve_extends(&mut sub, &mut inc, path)?;
                for n in includes(&mut sub, &mut inc, path, &base, stack)? {
                    normalize::merge(&mut merged, n);
                }
                normalize::apply_resets(&mut merged, sub.resets.get(path).map(Vec::as_slice).unwrap_or_default());
                normalize::merge(&mut merged, inc);
            }
            Ok(merged)
        };
        let inc = read_all();
        reader.resets = std::mem::take(&mut sub.resets);
        let inc = inc?;
        if let (Some(theirs), Some(ours)) =
            (inc.get("services").and_then(Value::as_object), doc.get("services").and_then(Value::as_object))
            && let Some(clash) = theirs.keys().find(|k| ours.contains_key(*k))
        {
            return Err(Error::Invalid {
                file: shown.clone(),
                path: format!("services.{clash}"),
                message: format!(
                    "conflicts with the service {clash:?} imported from {}",
                    display_name(main, reader.cwd)
                ),
            });
        }
        out.push(inc);
    }
    stack.pop();
    Ok(out)
}

fn display_name(f: &Path, cwd: &Path) -> String {
    f.strip_prefix(cwd).map(|p| p.display().to_string()).unwrap_or_else(|_| f.display().to_string())
}

fn project_name(
    opts: &Options,
    env: &BTreeMap<String, String>,
    merged: &Value,
    working_dir: &Path,
    first: &str,
) -> Result<String> {
    let explicit = opts
        .project_name
        .clone()
        .filter(|s| !s.is_empty())
        .map(|n| (n, "the project name (-p)"))
        .or_else(|| {
            env.get("COMPOSE_PROJECT_NAME").filter(|s| !s.is_empty()).map(|n| (n.clone(), "COMPOSE_PROJECT_NAME"))
        })
        .or_else(|| {
            merged.get("name").and_then(normalize::scalar_string).filter(|s| !s.is_empty()).map(|n| (n, "name"))
        });
    if let Some((n, source)) = explicit {
        if !is_valid_project_name(&n) {
            let message = format!(
                "invalid project name {n:?} (from {source}): must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
            );
            return Err(if source == "name" {
                Error::Invalid { file: first.to_string(), path: "name".into(), message }
            } else {
                Error::Project(message)
            });
        }
        return Ok(n);
    }
    let base = working_dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let n = normalize_project_name(&base);
    if n.is_empty() {
        return Err(Error::Project(format!(
            "project name {base:?} (the directory's name) is empty once normalised: name the project with -p or name:"
        )));
    }
    Ok(n)
}

#[allow(clippy::too_many_arguments)]
fn build_project(
    name: String,
    working_dir: PathBuf,
    config_files: Vec<PathBuf>,
    env_files: Vec<PathBuf>,
    environment: BTreeMap<String, String>,
    profiles: Vec<String>,
    mut merged: Value,
    opts: &Options,
) -> Result<Project> {
    let targeted = &opts.services;
    let empty = Map::new();
    let all = merged.get("services").and_then(Value::as_object).unwrap_or(&empty).clone();
    for t in targeted {
        if !all.contains_key(t) {
            return Err(Error::Project(format!("no such service: {t}")));
        }
    }
    // Profiles: a service with profiles runs only when one of them is active (or it is named).
    let enabled_by_profile = |svc: &Value, n: &str| -> bool {
        let ps: Vec<&str> = svc
            .get("profiles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ps.is_empty()
            || targeted.iter().any(|t| t == n)
            || profiles.iter().any(|p| p == "*" || ps.contains(&p.as_str()))
    };
    let mut enabled: BTreeSet<String> =
        all.iter().filter(|(n, s)| enabled_by_profile(s, n)).map(|(n, _)| n.clone()).collect();
    // The dependencies of named services are enabled too.
    let mut stack: Vec<String> = targeted.to_vec();
    while let Some(n) = stack.pop() {
        if let Some(deps) = all.get(&n).and_then(|s| s.get("depends_on")).and_then(Value::as_object) {
            for d in deps.keys() {
                if all.contains_key(d) && enabled.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
    }
    let mut services = BTreeMap::new();
    let mut disabled = BTreeMap::new();
    for (n, v) in &all {
        let typed = serde_json::from_value(v.clone()).or_else(|e| {
            // Without interpolation a template stands where the typed model wants a number or a boolean: the
            // typed model (used for the references) is read without the templated values, `config` prints them
            // as written.
            if opts.no_interpolate { serde_json::from_value(without_templates(v)) } else { Err(e) }
        });
        let mut svc: Service = typed.map_err(|e| Error::Invalid {
            file: config_files.first().map(|f| f.display().to_string()).unwrap_or_default(),
            path: format!("services.{n}"),
            message: e.to_string(),
        })?;
        svc.name = n.clone();
        if !opts.no_interpolate {
            check_values(config_files.first().map(|f| f.display().to_string()).unwrap_or_default().as_str(), &svc)?;
        }
        // No `networks:` and no `network_mode:` is the default network, in the typed model as in config's.
        if svc.networks.is_none() && svc.network_mode.is_none() {
            svc.networks = Some(BTreeMap::from([("default".to_string(), None)]));
        }
        // env_file entries go into the environment (the service's own `environment` wins); a missing file is an
        // error unless `required: false`.
        if !opts.no_env_resolution
            && let Some(Value::Array(efs)) = v.get("env_file")
        {
            let mut from_files = BTreeMap::new();
            for ef in efs {
                let Some(path) = ef.get("path").and_then(Value::as_str) else { continue };
                let required = match ef.get("required") {
                    Some(Value::Bool(b)) => *b,
                    // A template (only without interpolation): whether the file must exist is not known.
                    Some(Value::String(_)) => false,
                    _ => true,
                };
                let format = ef.get("format").and_then(Value::as_str);
                let text = match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::Project(format!("service {n:?}: env file {path} not found")));
                    }
                    Err(e) => return Err(Error::Project(format!("service {n:?}: env file {path}: {e}"))),
                };
                let vars = match format {
                    None => dotenv::parse(path, &text, &environment)?,
                    Some("raw") => dotenv::parse_raw(&text),
                    Some(f) => {
                        return Err(Error::Project(format!(
                            "service {n:?}: env file {path}: unsupported format {f:?} (expected raw or none)"
                        )));
                    }
                };
                from_files.extend(vars);
            }
            for (k, val) in from_files {
                svc.environment.entry(k).or_insert(Some(val));
            }
        }
        // A bare `KEY` takes the variable's value; an unset one stays null (Compose v2 sends `KEY` without `=`,
        // which removes the image's variable of that name).
        for (k, val) in svc.environment.iter_mut().filter(|_| !opts.no_env_resolution) {
            if val.is_none() {
                *val = environment.get(k).cloned();
            }
        }
        if svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
            return Err(Error::Invalid {
                file: config_files.first().map(|f| f.display().to_string()).unwrap_or_default(),
                path: format!("services.{n}"),
                message: "has neither an image nor a build context specified: at least one must be provided".into(),
            });
        }
        if enabled.contains(n) {
            services.insert(n.clone(), svc)
        } else {
            disabled.insert(n.clone(), svc)
        };
    }
    // References (not with `--no-consistency`).
    let consistent = !opts.no_consistency;
    for s in services.values().filter(|_| consistent) {
        for (d, dep) in &s.depends_on {
            if !services.contains_key(d) && dep.required.unwrap_or(true) {
                let why = if disabled.contains_key(d) { "disabled by its profiles" } else { "undefined" };
                return Err(Error::Project(format!("service {:?} depends on {why} service {d:?}", s.name)));
            }
        }
    }
    if consistent {
        check_consistency(&services)?;
    }
    check_cycles(&services)?;
    let resources = |key: &str| -> Result<BTreeMap<String, Resource>> {
        let mut out = BTreeMap::new();
        if let Some(m) = merged.get(key).and_then(Value::as_object) {
            for (k, v) in m {
                let typed = serde_json::from_value(v.clone()).or_else(|e| {
                    if opts.no_interpolate { serde_json::from_value(without_templates(v)) } else { Err(e) }
                });
                let mut r: Resource = typed.map_err(|e| Error::Invalid {
                    file: config_files.first().map(|f| f.display().to_string()).unwrap_or_default(),
                    path: format!("{key}.{k}"),
                    message: e.to_string(),
                })?;
                let given = v.get("name").and_then(Value::as_str).map(str::to_string);
                r.name = match given {
                    Some(n) => n,
                    None if r.is_external() => k.clone(),
                    None => format!("{name}_{k}"),
                };
                out.insert(k.clone(), r);
            }
        }
        Ok(out)
    };
    let mut networks = resources("networks")?;
    let mut volumes = resources("volumes")?;
    let uses_default = services.values().any(|s| s.network_list().iter().any(|(n, _)| n == "default"));
    if uses_default && !networks.contains_key("default") {
        networks.insert("default".into(), Resource { name: format!("{name}_default"), ..Resource::default() });
    }
    for s in services.values().filter(|_| consistent) {
        for (n, _) in s.network_list() {
            if !networks.contains_key(&n) {
                return Err(Error::Invalid {
                    file: config_files.first().map(|f| f.display().to_string()).unwrap_or_default(),
                    path: format!("services.{}.networks", s.name),
                    message: format!("service {:?} refers to undefined network {n}: invalid compose project", s.name),
                });
            }
        }
        for (kind, list) in [("secret", &s.secrets), ("config", &s.configs)] {
            for item in list {
                let src = item.as_str().or_else(|| item.get("source").and_then(Value::as_str)).unwrap_or_default();
                if merged.get(format!("{kind}s")).and_then(|m| m.get(src)).is_none() {
                    return Err(Error::Project(format!(
                        "service {:?} refers to undefined {kind} {src}: invalid compose project",
                        s.name
                    )));
                }
            }
        }
        for v in &s.volumes {
            if v.typ == "volume"
                && let Some(src) = &v.source
                && !volumes.contains_key(src)
            {
                return Err(Error::Project(format!(
                    "service {:?} refers to undefined volume {src}: invalid compose project",
                    s.name
                )));
            }
        }
    }
    // The model `config` prints: the enabled services, environment resolved, names filled in.
    if let Some(m) = merged.as_object_mut() {
        m.insert("name".into(), json!(name));
        if let Some(svcs) = m.get_mut("services").and_then(Value::as_object_mut) {
            svcs.retain(|k, _| services.contains_key(k));
            for (k, v) in svcs.iter_mut() {
                if let (Some(obj), Some(s)) = (v.as_object_mut(), services.get(k)) {
                    if !opts.no_env_resolution && (!s.environment.is_empty() || obj.contains_key("environment")) {
                        let mut env = json!(s.environment);
                        // Without interpolation the templates the typed model left out stay as written.
                        if let (true, Some(own), Some(e)) = (
                            opts.no_interpolate,
                            obj.get("environment").and_then(Value::as_object),
                            env.as_object_mut(),
                        ) {
                            for (k, v) in own {
                                if matches!(v, Value::String(t) if normalize::has_template(t)) {
                                    e.insert(k.clone(), v.clone());
                                }
                            }
                        }
                        obj.insert("environment".into(), env);
                    }
                    if !obj.contains_key("networks") && s.network_mode.is_none() {
                        obj.insert("networks".into(), json!({"default": null}));
                    }
                }
            }
        }
        let mut nets = m.get("networks").and_then(Value::as_object).cloned().unwrap_or_default();
        for (k, r) in &networks {
            let e = nets.entry(k.clone()).or_insert(json!({}));
            if let Some(o) = e.as_object_mut() {
                o.insert("name".into(), json!(r.name));
            }
        }
        if !nets.is_empty() {
            m.insert("networks".into(), Value::Object(nets));
        }
        if let Some(vols) = m.get_mut("volumes").and_then(Value::as_object_mut) {
            for (k, r) in &volumes {
                if let Some(o) = vols.get_mut(k).and_then(Value::as_object_mut) {
                    o.insert("name".into(), json!(r.name));
                }
            }
        }
    }
    // Keep only what the enabled services use of the networks Compose added.
    networks.retain(|k, _| k != "default" || uses_default);
    volumes.retain(|_, _| true);
    Ok(Project {
        name,
        working_dir,
        all_files: config_files.clone(),
        config_files,
        env_files,
        environment,
        profiles,
        services,
        disabled,
        networks,
        volumes,
        model: merged,
        unset: Vec::new(),
    })
}

/// Values compose-go parses while it loads, so that a bad one is an error of the file and not of a later `up`:
/// durations (Go's syntax), byte sizes, `scale` against `deploy.replicas`, `dockerfile` with `dockerfile_inline`,
/// `build.platforms` that leave out the service's `platform`.
fn check_values(file: &str, svc: &Service) -> Result<()> {
    let bad = |key: &str, message: String| Error::Invalid {
        file: file.to_string(),
        path: format!("services.{}.{key}", svc.name),
        message,
    };
    let durations = [
        ("healthcheck.interval", svc.healthcheck.as_ref().and_then(|h| h.interval.clone())),
        ("healthcheck.timeout", svc.healthcheck.as_ref().and_then(|h| h.timeout.clone())),
        ("healthcheck.start_period", svc.healthcheck.as_ref().and_then(|h| h.start_period.clone())),
        ("healthcheck.start_interval", svc.healthcheck.as_ref().and_then(|h| h.start_interval.clone())),
        ("stop_grace_period", svc.stop_grace_period.clone()),
    ];
    for (key, v) in durations {
        if let Some(v) = v {
            berth_api::units::go_duration(&v).map_err(|e| bad(key, format!("invalid duration {v:?}: {e}")))?;
        }
    }
    let limits = svc.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let sizes = [
        ("mem_limit", svc.mem_limit.clone()),
        ("memswap_limit", svc.memswap_limit.clone()),
        ("mem_reservation", svc.mem_reservation.clone()),
        ("shm_size", svc.shm_size.clone()),
        ("deploy.resources.limits.memory", limits.and_then(|r| r.limits.as_ref()).and_then(|l| l.memory.clone())),
        (
            "deploy.resources.reservations.memory",
            limits.and_then(|r| r.reservations.as_ref()).and_then(|l| l.memory.clone()),
        ),
    ];
    for (key, v) in sizes {
        // `memswap_limit: -1` is "unlimited".
        if let Some(v) = v.filter(|v| v != "-1") {
            berth_api::units::ram_in_bytes(&v).map_err(|e| bad(key, format!("invalid size {v:?}: {e}")))?;
        }
    }
    if let (Some(scale), Some(replicas)) = (svc.scale, svc.deploy.as_ref().and_then(|d| d.replicas))
        && scale != replicas
    {
        return Err(bad(
            "scale",
            format!("can't set distinct values on 'scale' ({scale}) and 'deploy.replicas' ({replicas})"),
        ));
    }
    if let Some(b) = &svc.build {
        if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
            return Err(bad("build", "dockerfile and dockerfile_inline are mutually exclusive".into()));
        }
        if let Some(p) = &svc.platform
            && !b.platforms.is_empty()
            && !b.platforms.contains(p)
        {
            return Err(bad("build.platforms", format!("must include the service's platform {p:?}")));
        }
    }
    Ok(())
}

/// compose-go's consistency checks between services: `network_mode` with `networks`, a `service:X` of
/// `network_mode`, `ipc`, `pid` or `volumes_from` naming no service, two services with one `container_name`.
fn check_consistency(services: &BTreeMap<String, Service>) -> Result<()> {
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for s in services.values() {
        // (Without `networks:` the typed model has the default network only when there is no `network_mode`.)
        if s.network_mode.is_some() && s.networks.is_some() {
            return Err(Error::Project(format!(
                "service {:?} declares mutually exclusive `network_mode` and `networks`: invalid compose project",
                s.name
            )));
        }
        let refs = [("network_mode", s.network_mode.as_deref()), ("ipc", s.ipc.as_deref()), ("pid", s.pid.as_deref())];
        let from = s.volumes_from.iter().map(|v| ("volumes_from", Some(v.as_str())));
        for (key, v) in refs.into_iter().chain(from) {
            let Some(v) = v else { continue };
            let target = match key {
                "volumes_from" if !v.starts_with("container:") => Some(v.split(':').next().unwrap_or(v)),
                "volumes_from" => None,
                _ => v.strip_prefix("service:"),
            };
            if let Some(t) = target
                && !services.contains_key(t)
            {
                return Err(Error::Project(format!(
                    "service {:?} refers to undefined service {t} in {key}: invalid compose project",
                    s.name
                )));
            }
        }
        if let Some(c) = &s.container_name
            && let Some(other) = names.insert(c.as_str(), s.name.as_str())
        {
            return Err(Error::Project(format!(
                "container name {c:?} is already in use by service {other}: invalid compose project"
            )));
        }
    }
    Ok(())
}

/// A value without the strings that still hold a template (and without the entries holding them), but for
/// `image` (a string wherever it is).
fn without_templates(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, x)| *k == "image" || !matches!(x, Value::String(s) if normalize::has_template(s)))
                .map(|(k, x)| (k.clone(), without_templates(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| !matches!(x, Value::String(s) if normalize::has_template(s)))
                .map(without_templates)
                .collect(),
        ),
        o => o.clone(),
    }
}

/// Fails on a cycle in `depends_on`, naming it.
pub fn check_cycles(services: &BTreeMap<String, Service>) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        n: &str,
        services: &BTreeMap<String, Service>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        match marks.get(n) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].to_vec();
                cycle.push(n.to_string());
                return Err(Error::Project(format!("dependency cycle detected: {}", cycle.join(" -> "))));
            }
            None => {}
        }
        marks.insert(n.to_string(), Mark::Visiting);
        stack.push(n.to_string());
        if let Some(s) = services.get(n) {
            for d in s.depends_on.keys() {
                visit(d, services, marks, stack)?;
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        Ok(())
    }
    let mut marks = BTreeMap::new();
    for n in services.keys() {
        visit(n, services, &mut marks, &mut Vec::new())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::Builder::new().prefix("My_App.1").tempdir().expect("tempdir");
        for (name, text) in files {
            let p = d.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(p, text).expect("write");
        }
        d
    }

    fn opts(d: &Path) -> Options {
        Options { working_dir: d.to_path_buf(), ..Options::default() }
    }

    fn load_err(o: &Options) -> String {
        match load(o) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        }
    }

    const APP: &str = r#"
x-common: &common
  restart: unless-stopped
  labels:
    team: core
services:
  web:
    <<: *common
    build: ./web
    ports: ["${WEB_PORT:-8080}:80", {target: 443, published: "8443"}]
    environment:
      DB_HOST: db
      GREETING: ${GREETING:?set GREETING in .env}
    depends_on:
      db: {condition: service_healthy}
      redis:
        condition: service_started
  db:
    <<: *common
    image: busybox
    volumes: [dbdata:/data]
    healthcheck: {test: "test -f /data/ready", interval: 1s, retries: 30}
  redis:
    image: busybox
    command: sh -c 'echo redis'
  debug:
    image: busybox
    profiles: [debug]
volumes:
  dbdata:
  shared: {external: true}
"#;

    #[test]
    fn a_realistic_project() {
        let d = dir_with(&[("compose.yaml", APP), (".env", "GREETING=hello\nWEB_PORT=9090\n")]);
        let p = load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
        // The directory's name, normalised (lower case, no dots).
        assert!(p.name.starts_with("my_app1"), "{}", p.name);
        let web = &p.services["web"];
        assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
        assert_eq!(web.labels["team"].as_deref(), Some("core"));
        assert_eq!(web.ports[0].published.as_deref(), Some("9090"));
        assert_eq!(web.ports[1].target, 443);
        assert_eq!(web.environment["GREETING"].as_deref(), Some("hello"));
        assert_eq!(web.build.as_ref().map(|b| b.context.clone()), Some(d.path().join("web").display().to_string()));
        assert_eq!(web.depends_on["db"].condition, "service_healthy");
        assert_eq!(p.services["redis"].command, Some(vec!["sh".into(), "-c".into(), "echo redis".into()]));
        assert!(!p.services.contains_key("debug") && p.disabled.contains_key("debug"));
        assert_eq!(p.volumes["dbdata"].name, format!("{}_dbdata", p.name));
        assert_eq!(p.volumes["shared"].name, "shared");
        assert_eq!(p.networks["default"].name, format!("{}_default", p.name));
        assert_eq!(crate::plan::start_order(&p, None), vec!["db", "redis", "web"]);
        // `config`'s model has the names and the long forms.
        assert_eq!(p.model["networks"]["default"]["name"], format!("{}_default", p.name));
        assert_eq!(p.model["services"]["db"]["volumes"][0]["type"], "volume");
        assert!(p.model.get("x-common").is_some());
    }

    #[test]
    fn project_names() {
        let d = dir_with(&[("compose.yaml", "name: fromfile\nservices: {a: {image: busybox}}\n")]);
        assert_eq!(load(&opts(d.path())).map(|p| p.name).ok().as_deref(), Some("fromfile"));
        let mut o = opts(d.path());
        o.environment.insert("COMPOSE_PROJECT_NAME".into(), "fromenv".into());
        assert_eq!(load(&o).map(|p| p.name).ok().as_deref(), Some("fromenv"));
        o.project_name = Some("flag".into());
        assert_eq!(load(&o).map(|p| p.name).ok().as_deref(), Some("flag"));
        o.project_name = Some("Bad Name".into());
        assert!(load_err(&o).contains("invalid project name \"Bad Name\""));
        assert_eq!(normalize_project_name("-My.App_2"), "myapp_2");
    }

    #[test]
    fn file_discovery_overrides_and_several_files() {
        let d = dir_with(&[
            ("docker-compose.yml", "services: {a: {image: one, dns: [1.1.1.1]}}\n"),
            ("docker-compose.override.yml", "services: {a: {image: two, dns: [8.8.8.8]}}\n"),
            ("extra.yaml", "services: {b: {image: three}}\n"),
            ("sub/dir/.keep", ""),
        ]);
        // Found from a subdirectory too (the search goes up).
        let p = load(&opts(&d.path().join("sub/dir"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["a"].image.as_deref(), Some("two"));
        assert_eq!(p.services["a"].dns, vec!["1.1.1.1", "8.8.8.8"]);
        assert_eq!(p.config_files.len(), 2);
        let mut o = opts(d.path());
        o.files = vec!["docker-compose.yml".into(), "extra.yaml".into()];
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["a"].image.as_deref(), Some("one"));
        assert!(p.services.contains_key("b"));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(load_err(&opts(empty.path())).starts_with("no configuration file provided"));
    }

    #[test]
    fn env_files_and_profiles() {
        let d = dir_with(&[
            (
                "compose.yaml",
                "services:\n  a: {image: \"busybox:${TAG}\", env_file: [a.env]}\n  b: {image: busybox, profiles: [dev]}\n",
            ),
            (".env", "TAG=default\n"),
            ("other.env", "TAG=other\nCOMPOSE_PROFILES=dev\n"),
            ("a.env", "FROM_FILE=1\n"),
        ]);
        let p = load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["a"].image.as_deref(), Some("busybox:default"));
        assert_eq!(p.services["a"].environment["FROM_FILE"].as_deref(), Some("1"));
        assert!(!p.services.contains_key("b"));
        let mut o = opts(d.path());
        o.env_files = vec!["other.env".into()];
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["a"].image.as_deref(), Some("busybox:other"));
        assert!(p.services.contains_key("b"));
        // The environment wins over .env.
        let mut o = opts(d.path());
        o.environment.insert("TAG".into(), "env".into());
        o.profiles = vec!["dev".into()];
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["a"].image.as_deref(), Some("busybox:env"));
        assert!(p.services.contains_key("b"));
        // COMPOSE_FILE from the environment or the .env.
        let d2 = dir_with(&[("x.yaml", "services: {x: {image: busybox}}\n"), (".env", "COMPOSE_FILE=x.yaml\n")]);
        assert!(load(&opts(d2.path())).is_ok_and(|p| p.services.contains_key("x")));
        // A named service is enabled whatever its profiles.
        let mut o = opts(d.path());
        o.services = vec!["b".into()];
        assert!(load(&o).is_ok_and(|p| p.services.contains_key("b")));
    }

    #[test]
    fn extends_in_the_file_and_from_another() {
        let d = dir_with(&[
            (
                "compose.yaml",
                "services:\n  base: {image: busybox, environment: {A: \"1\", B: \"1\"}, ports: [\"80\"]}\n  web:\n    extends: base\n    environment: {B: \"2\"}\n  api:\n    extends: {file: lib/common.yaml, service: common}\n    command: [\"own\"]\n",
            ),
            (
                "lib/common.yaml",
                "services:\n  common: {image: alpine, command: [\"theirs\"], volumes: [\"./data:/data\"]}\n",
            ),
        ]);
        let p = load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
        let web = &p.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox"));
        assert_eq!(web.environment["A"].as_deref(), Some("1"));
        assert_eq!(web.environment["B"].as_deref(), Some("2"));
        assert_eq!(web.ports.len(), 1);
        let api = &p.services["api"];
        assert_eq!((api.image.as_deref(), api.command.clone()), (Some("alpine"), Some(vec!["own".to_string()])));
        // A relative path of the extended file is relative to that file.
        assert_eq!(api.volumes[0].source.as_deref(), Some(d.path().join("lib/data").display().to_string().as_str()));
        let d = dir_with(&[("compose.yaml", "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n")]);
        assert!(load_err(&opts(d.path())).starts_with("circular reference with extends"));
    }

    #[test]
    fn include_other_projects() {
        let d = dir_with(&[
            ("compose.yaml", "include:\n  - db/compose.yaml\nservices:\n  web: {image: busybox, depends_on: [db]}\n"),
            ("db/compose.yaml", "services:\n  db: {image: busybox, volumes: [\"./init:/init\"]}\n"),
        ]);
        let p = load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.services["db"].volumes[0].source.as_deref(),
            Some(d.path().join("db/init").display().to_string().as_str())
        );
        assert!(p.model.get("include").is_none());
        let d = dir_with(&[
            ("compose.yaml", "include: [other.yaml]\nservices:\n  db: {image: busybox}\n"),
            ("other.yaml", "services:\n  db: {image: busybox}\n"),
        ]);
        assert!(
            load_err(&opts(d.path()))
                .contains("services.db: conflicts with the service \"db\" imported from other.yaml")
        );
    }

    #[test]
    fn include_env_file_and_project_directory() {
        // The included project's own `.env` (its directory's) fills what the including project leaves unset.
        let d = dir_with(&[
            ("compose.yaml", "include:\n  - db/compose.yaml\nservices:\n  web: {image: \"busybox:${TAG}\"}\n"),
            (".env", "TAG=1.36\nDB_TAG=from-project\n"),
            (
                "db/compose.yaml",
                "services:\n  db: {image: \"busybox:${DB_TAG}\", environment: [\"PORT=${DB_PORT}\"]}\n",
            ),
            ("db/.env", "DB_TAG=from-include\nDB_PORT=5432\n"),
        ]);
        let p = load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["web"].image.as_deref(), Some("busybox:1.36"));
        // The including project's variables win over the included env file's.
        assert_eq!(p.services["db"].image.as_deref(), Some("busybox:from-project"));
        // Every file read is known (`config --variables` reads them all).
        assert_eq!(p.all_files, [d.path().join("compose.yaml"), d.path().join("db/compose.yaml")]);
        assert_eq!(p.services["db"].environment["PORT"].as_deref(), Some("5432"));
        // Named env files (relative to the including project), and a project_directory the included file's
        // relative paths resolve against.
        let d = dir_with(&[
            (
                "compose.yaml",
                "include:\n  - path: parts/db.yaml\n    env_file: [conf/db.env, conf/more.env]\n    project_directory: data\nservices: {}\n",
            ),
            (
                "parts/db.yaml",
                "services:\n  db:\n    image: \"busybox:${A}\"\n    command: [\"${B}\"]\n    volumes: [\"./x:/x\"]\n",
            ),
            ("conf/db.env", "A=a1\nB=b1\n"),
            ("conf/more.env", "B=b2-${A}\n"),
            ("data/.env", "A=ignored\n"),
        ]);
        let p = load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.services["db"].image.as_deref(), Some("busybox:a1"));
        assert_eq!(p.services["db"].command.as_deref(), Some(&["b2-a1".to_string()][..]));
        assert_eq!(
            p.services["db"].volumes[0].source.as_deref(),
            Some(d.path().join("data/x").display().to_string().as_str())
        );
        // A named env file that is missing is an error naming it.
        let d = dir_with(&[
            ("compose.yaml", "include:\n  - {path: db.yaml, env_file: nope.env}\n"),
            ("db.yaml", "services:\n  db: {image: busybox}\n"),
        ]);
        let e = load_err(&opts(d.path()));
        assert!(e.contains("include.0.env_file") && e.contains("nope.env"), "{e}");
    }

    #[test]
    fn no_interpolate_keeps_templates_where_values_are_typed() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  web:\n    image: busybox:${TAG:-latest}\n    ports: [\"${PORT:-8080}:80\", {target: \"${T:-80}\", published: 81}]\n    volumes: [\"${DATA:-./data}:/data\"]\n    scale: ${N:-1}\n    read_only: ${RO:-false}\n    mem_limit: ${MEM:-64m}\n    env_file: [{path: a.env, required: \"${REQ:-false}\"}]\n    healthcheck: {test: x, retries: \"${R:-3}\"}\n    environment: {A: \"${A}\", B: b}\n",
        )]);
        let mut o = opts(d.path());
        // Interpolated, it loads (the defaults apply).
        if let Err(e) = load(&o) {
            panic!("{e}");
        }
        o.no_interpolate = true;
        o.no_env_resolution = true;
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        let web = &p.model["services"]["web"];
        assert_eq!(web["ports"][0], json!("${PORT:-8080}:80"));
        assert_eq!(web["ports"][1]["target"], json!("${T:-80}"));
        assert_eq!(web["volumes"][0], json!("${DATA:-./data}:/data"));
        assert_eq!(web["scale"], json!("${N:-1}"));
        assert_eq!(web["read_only"], json!("${RO:-false}"));
        assert_eq!(web["env_file"][0]["required"], json!("${REQ:-false}"));
        assert_eq!(web["image"], json!("busybox:${TAG:-latest}"));
        let mut o2 = opts(d.path());
        o2.no_interpolate = true;
        let p = load(&o2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.model["services"]["web"]["environment"]["A"], json!("${A}"));
        // What does not parse without a template is still an error.
        let d = dir_with(&[("compose.yaml", "services:\n  web: {image: x, ports: [\"a:b:c:d\"]}\n")]);
        let mut o = opts(d.path());
        o.no_interpolate = true;
        assert!(load_err(&o).contains("services.web.ports.0"));
    }

    #[test]
    fn files_compose_v2_rejects_are_rejected() {
        let err = |text: &str| {
            let d = dir_with(&[("compose.yaml", text)]);
            load_err(&opts(d.path()))
        };
        let cases: &[(&str, &str)] = &[
            ("", "empty compose file"),
            ("# only a comment\n", "empty compose file"),
            (
                "services:\n  a: {image: x, network_mode: host, networks: [default]}\n",
                "mutually exclusive `network_mode` and `networks`",
            ),
            (
                "services:\n  a: {build: {context: ., dockerfile: D, dockerfile_inline: \"FROM x\"}}\n",
                "services.a.build: dockerfile and dockerfile_inline are mutually exclusive",
            ),
            (
                "services:\n  a: {image: x, container_name: c}\n  b: {image: x, container_name: c}\n",
                "container name \"c\" is already in use by service a",
            ),
            (
                "services:\n  a: {image: x, scale: 2, deploy: {replicas: 3}}\n",
                "services.a.scale: can't set distinct values on 'scale' (2) and 'deploy.replicas' (3)",
            ),
            (
                "services:\n  a: {image: x, network_mode: \"service:zz\"}\n",
                "service \"a\" refers to undefined service zz in network_mode",
            ),
            (
                "services:\n  a: {image: x, volumes_from: [\"zz:ro\"]}\n",
                "refers to undefined service zz in volumes_from",
            ),
            (
                "services:\n  a: {image: x, platform: linux/arm64, build: {context: ., platforms: [linux/amd64]}}\n",
                "services.a.build.platforms: must include the service's platform \"linux/arm64\"",
            ),
            (
                "services:\n  a: {image: x, healthcheck: {test: x, interval: 5 minutes}}\n",
                "services.a.healthcheck.interval: invalid duration \"5 minutes\"",
            ),
            ("services:\n  a: {image: x, mem_limit: lots}\n", "services.a.mem_limit: invalid size \"lots\""),
            (
                "services:\n  a: {image: x, networks: [nope]}\n",
                "compose.yaml: services.a.networks: service \"a\" refers to undefined network nope",
            ),
            ("services:\n  a: {image: x, prots: []}\n", "unknown key \"prots\" (did you mean \"ports\"?)"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // What is consistent loads: the same values, a file's own network_mode without networks, `-1` swap.
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  a: {image: x, scale: 2, deploy: {replicas: 2}, memswap_limit: -1, stop_grace_period: 1m30s}\n  b: {image: x, network_mode: \"service:a\", volumes_from: [a]}\n",
        )]);
        load(&opts(d.path())).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn bad_input_names_file_key_and_expectation() {
        let case = |text: &str| {
            let d = dir_with(&[("compose.yaml", text)]);
            load_err(&opts(d.path()))
        };
        assert_eq!(
            case("services:\n  web:\n    image: busybox\n    ports: [true]\n"),
            "compose.yaml: services.web.ports.0: expected a number or a string or a mapping, got a boolean"
        );
        assert!(
            case("services:\n  web:\n    image: busybox\n    imgae: x\n")
                .starts_with("compose.yaml: services.web.imgae: unknown key \"imgae\"")
        );
        assert_eq!(
            case("services:\n  web:\n    image: ${IMAGE:?IMAGE must be set}\n"),
            "compose.yaml: services.web.image: required variable IMAGE is missing a value: IMAGE must be set"
        );
        assert_eq!(
            case(
                "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n"
            ),
            "dependency cycle detected: a -> b -> c -> a"
        );
        assert_eq!(
            case("services:\n  a: {image: x, depends_on: [nope]}\n"),
            "service \"a\" depends on undefined service \"nope\""
        );
        assert!(case("services:\n  a: {image: x, volumes: [\"data:/d\"]}\n").contains("undefined volume data"));
        assert!(case("services:\n  a: {}\n").contains("neither an image nor a build context"));
        assert!(case("services: [a]\n").starts_with("compose.yaml: services: expected a mapping, got a list"));
        assert!(case("services:\n  a: {image: x\n").starts_with("compose.yaml: "));
        assert!(
            case("services:\n  a: {image: x, ports: [\"1:2:3:4\"]}\n")
                .starts_with("compose.yaml: services.a.ports.0: invalid port")
        );
    }

    fn load_ok(o: &Options) -> Project {
        load(o).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `config`'s YAML of a project, loaded again from a file next to the first: the same model.
    fn reloaded(p: &Project, dir: &Path) -> Project {
        let text = crate::config_text(&p.model, "yaml", true).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("config.out.yaml"), &text).expect("write");
        let o =
            Options { files: vec![dir.join("config.out.yaml")], working_dir: dir.to_path_buf(), ..Options::default() };
        let again = load(&o).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again.model, p.model, "{text}");
        again
    }

    #[test]
    fn a_dollar_that_starts_no_variable_is_text() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  a:\n    image: busybox\n    command: sh -c 'echo $(date) $1 $@ 5$ $ end'\n    healthcheck:\n      test: [\"CMD-SHELL\", \"test $$(cat /x) = 1 || exit $1\"]\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM busybox\n        RUN echo $(uname) $@ > /x\n",
        )]);
        let p = load_ok(&opts(d.path()));
        let a = &p.services["a"];
        assert_eq!(a.command.as_ref().map(|c| c[2].as_str()), Some("echo $(date) $1 $@ 5$ $ end"));
        assert_eq!(a.healthcheck.as_ref().map(|h| h.test[1].as_str()), Some("test $(cat /x) = 1 || exit $1"));
        assert_eq!(
            a.build.as_ref().and_then(|b| b.dockerfile_inline.as_deref()),
            Some("FROM busybox\nRUN echo $(uname) $@ > /x\n")
        );
        // config writes every `$` as `$$`, so its output loads to the same values.
        let text = crate::config_text(&p.model, "yaml", true).expect("yaml");
        assert!(text.contains("$$(date) $$1 $$@ 5$$ $$ end"), "{text}");
        reloaded(&p, d.path());
        let json = crate::config_text(&p.model, "json", true).expect("json");
        assert!(json.contains("test $$(cat /x) = 1 || exit $$1"), "{json}");
        // A `${` that does not close, or names nothing, is still an error.
        let d = dir_with(&[("compose.yaml", "services:\n  a: {image: \"x${1}\"}\n")]);
        assert!(load_err(&opts(d.path())).contains("invalid template"));
    }

    #[test]
    fn develop_watch_rules() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  web:\n    build: ./app\n    develop:\n      watch:\n        - {path: ./app/src, action: sync, target: /app/src, ignore: node_modules/, initial_sync: true}\n        - path: ./app/conf\n          action: sync+exec\n          target: /etc/app\n          include: ['*.conf']\n          exec: {command: kill -HUP 1, user: root, environment: [A=1]}\n        - {path: package.json, action: rebuild}\n",
        )]);
        let p = load_ok(&opts(d.path()));
        let w = &p.services["web"].develop.as_ref().expect("develop").watch;
        let base = d.path().display().to_string();
        assert_eq!(w[0].path, format!("{base}/app/src"));
        assert_eq!((w[0].ignore.clone(), w[0].initial_sync), (vec!["node_modules/".to_string()], Some(true)));
        assert_eq!(w[1].include, ["*.conf"]);
        let exec = w[1].exec.as_ref().expect("exec");
        assert_eq!(exec.command, ["kill", "-HUP", "1"]);
        assert_eq!(exec.environment.get("A"), Some(&Some("1".to_string())));
        assert_eq!((w[2].path.clone(), w[2].action.as_str()), (format!("{base}/package.json"), "rebuild"));
        // An unknown action is the schema's error.
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n    develop: {watch: [{path: ., action: teleport}]}\n",
        )]);
        assert!(load(&opts(d.path())).is_err());
    }

    #[test]
    fn hooks_and_provider_services() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  web:\n    image: busybox\n    pre_start:\n      - command: echo before\n    post_start:\n      - command: [\"sh\", \"-c\", \"chown 1000 /data\"]\n        user: root\n        privileged: true\n        environment: [A=1, B]\n    pre_stop:\n      - {command: ./flush.sh, working_dir: /app}\n    depends_on: [model]\n  model:\n    provider:\n      type: model\n      options: {model: ai/smollm2, context-size: 1024, flags: [a, b]}\n",
        )]);
        let p = load_ok(&opts(d.path()));
        let web = &p.services["web"];
        assert_eq!(web.pre_start[0].command, ["echo", "before"]);
        let post = &web.post_start[0];
        assert_eq!(post.command, ["sh", "-c", "chown 1000 /data"]);
        assert_eq!((post.user.as_deref(), post.privileged), (Some("root"), Some(true)));
        assert_eq!(post.environment, BTreeMap::from([("A".into(), Some("1".into())), ("B".into(), None)]));
        assert_eq!(web.pre_stop[0].working_dir.as_deref(), Some("/app"));
        // Kept in config's model.
        assert_eq!(p.model["services"]["web"]["post_start"][0]["command"], json!(["sh", "-c", "chown 1000 /data"]));
        let model = &p.services["model"];
        assert_eq!(model.provider.as_ref().map(|p| p.typ.as_str()), Some("model"));
        assert_eq!(model.provider.as_ref().map(|p| p.options["context-size"].clone()), Some(json!(1024)));
        // Not run: refused before anything is created, naming the service.
        let all: BTreeSet<String> = p.services.keys().cloned().collect();
        let e = crate::plan::check_supported(&p, &all).expect_err("provider").to_string();
        assert_eq!(
            e,
            "service \"model\" uses provider \"model\": provider services are not supported by berth compose yet"
        );
        assert!(crate::plan::check_supported(&p, &BTreeSet::from(["web".to_string()])).is_ok());
        assert!(crate::plan::container_body(&p, model, &crate::plan::ContainerSpec::default()).is_err());
        reloaded(&p, d.path());
    }

    #[test]
    fn labels_in_list_form_everywhere() {
        let d = dir_with(&[
            (
                "compose.yaml",
                "services:\n  a:\n    image: x\n    labels: [a=1]\n    deploy: {labels: [d=1, e], resources: {reservations: {devices: [{capabilities: [gpu], options: [virtualization=false]}]}}}\n    gpus: [{driver: nvidia, options: [a=b]}]\n    volumes: [{type: volume, source: v, target: /v, volume: {labels: [vl=1]}}]\n    secrets: [s]\n    build: {context: ., ssh: [default], additional_contexts: [\"base=../base\"], labels: [\"b=2\"]}\nnetworks:\n  default:\n    labels: [com.example.tier=front, bare]\nvolumes:\n  v:\n    labels: [\"com.example.keep=yes\"]\nsecrets:\n  s: {file: ./s.txt, labels: [x=y]}\nconfigs:\n  c: {file: ./c.txt, labels: [x=y]}\n",
            ),
            ("s.txt", "secret\n"),
        ]);
        let p = load_ok(&opts(d.path()));
        assert_eq!(p.networks["default"].labels["com.example.tier"].as_deref(), Some("front"));
        assert_eq!(p.networks["default"].labels["bare"], None);
        assert_eq!(p.volumes["v"].labels["com.example.keep"].as_deref(), Some("yes"));
        assert_eq!(p.model["secrets"]["s"]["labels"], json!({"x": "y"}));
        assert_eq!(p.model["configs"]["c"]["labels"], json!({"x": "y"}));
        let a = &p.model["services"]["a"];
        assert_eq!(a["deploy"]["labels"], json!({"d": "1", "e": null}));
        assert_eq!(
            a["deploy"]["resources"]["reservations"]["devices"][0]["options"],
            json!({"virtualization": "false"})
        );
        assert_eq!(a["gpus"][0]["options"], json!({"a": "b"}));
        assert_eq!(a["volumes"][0]["volume"]["labels"], json!({"vl": "1"}));
        assert_eq!(a["build"]["ssh"], json!({"default": null}));
        assert_eq!(a["build"]["additional_contexts"], json!({"base": "../base"}));
        let n = crate::plan::network_body(&p, "default").expect("network");
        assert_eq!(n["Labels"]["com.example.tier"], "front");
        reloaded(&p, d.path());
    }

    #[test]
    fn env_file_long_syntax() {
        let d = dir_with(&[
            (
                "compose.yaml",
                "services:\n  a:\n    image: x\n    env_file:\n      - base.env\n      - path: ./raw.env\n        format: raw\n      - path: ./missing.env\n        required: false\n      - {path: over.env, required: \"${OVER_REQUIRED:-true}\"}\n    environment: {KEEP: own}\n",
            ),
            ("base.env", "A=1\nQ=\"quoted ${A}\"\nKEEP=from-file\n"),
            ("raw.env", "# comment\nR='as is' $A\nS=\"x\"\n"),
            ("over.env", "A=2\n"),
        ]);
        let p = load_ok(&opts(d.path()));
        let env = &p.services["a"].environment;
        assert_eq!(env["A"].as_deref(), Some("2"));
        assert_eq!(env["Q"].as_deref(), Some("quoted 1"));
        assert_eq!(env["R"].as_deref(), Some("'as is' $A"));
        assert_eq!(env["S"].as_deref(), Some("\"x\""));
        assert_eq!(env["KEEP"].as_deref(), Some("own"));
        let ef = &p.model["services"]["a"]["env_file"];
        assert_eq!(ef[1]["format"], "raw");
        assert_eq!((ef[2]["required"].clone(), ef[0]["required"].clone()), (json!(false), json!(true)));
        reloaded(&p, d.path());
        // A required file that is missing is one error naming the service and the file.
        std::fs::remove_file(d.path().join("over.env")).expect("rm");
        let e = load_err(&opts(d.path()));
        assert!(e.starts_with("service \"a\": env file /") && e.ends_with("/over.env not found"), "{e}");
        let mut o = opts(d.path());
        o.environment.insert("OVER_REQUIRED".into(), "false".into());
        assert_eq!(load_ok(&o).services["a"].environment["A"].as_deref(), Some("1"));
        std::fs::write(d.path().join("over.env"), "A=3\n").expect("write");
        let text = std::fs::read_to_string(d.path().join("compose.yaml"))
            .expect("read")
            .replace("format: raw", "format: toml");
        std::fs::write(d.path().join("compose.yaml"), text).expect("write");
        assert!(load_err(&opts(d.path())).contains("unsupported format \"toml\""));
    }

    #[test]
    fn yaml_1_2_scalars_as_compose_v2() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    environment:\n      YES: yes\n      ON: on\n      N: n\n      BIG: 1e3\n      INF: .inf\n      VERSION: 1.10\n      HALF: 0.5\n      OCT: 0755\n    labels:\n      flag: off\n    networks: [n, y, on]\n    volumes:\n      - {type: bind, source: ./c, target: /c, bind: {create_host_path: true}}\n      - {type: tmpfs, target: /t, tmpfs: {size: 1m, mode: 01777}}\n    configs:\n      - {source: conf, target: /etc/conf, mode: 0440}\n    user: \"0440\"\nnetworks: {n: {}, y: {}, on: {}}\nconfigs:\n  conf: {file: ./c}\n",
        )]);
        let p = load_ok(&opts(d.path()));
        let a = &p.services["a"];
        let env = |k: &str| a.environment[k].clone().unwrap_or_default();
        assert_eq!(
            [env("YES"), env("ON"), env("N"), env("BIG"), env("INF"), env("VERSION"), env("HALF"), env("OCT")],
            ["yes", "on", "n", "1e3", ".inf", "1.10", "0.5", "493"]
        );
        assert_eq!(a.labels["flag"].as_deref(), Some("off"));
        let nets: Vec<String> = a.network_list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(nets, ["n", "on", "y"]);
        assert_eq!(a.volumes[1].tmpfs.as_ref().and_then(|t| t.mode), Some(0o1777));
        assert_eq!(p.model["services"]["a"]["configs"][0]["mode"], json!(288));
        assert_eq!(a.user.as_deref(), Some("0440"));
        reloaded(&p, d.path());
    }

    #[test]
    fn reset_and_override_tags() {
        let d = dir_with(&[
            (
                "compose.yaml",
                "services:\n  base:\n    image: busybox\n    ports: [\"80:80\"]\n    environment: {A: \"1\", B: \"1\"}\n    dns: [1.1.1.1]\n  web:\n    extends: base\n    ports: !reset []\n    environment: !override {C: \"3\"}\n",
            ),
            (
                "compose.override.yaml",
                "services:\n  base:\n    ports: !reset null\n    environment: !override {B: \"2\"}\n    dns: !override [8.8.8.8]\n    command: !reset\n  web:\n    environment: {D: \"4\"}\n",
            ),
        ]);
        let p = load_ok(&opts(d.path()));
        let base = &p.services["base"];
        assert!(base.ports.is_empty());
        assert_eq!(base.environment, BTreeMap::from([("B".into(), Some("2".into()))]));
        assert_eq!(base.dns, ["8.8.8.8"]);
        let web = &p.services["web"];
        assert!(web.ports.is_empty(), "{:?}", web.ports);
        assert_eq!(web.environment, BTreeMap::from([("C".into(), Some("3".into())), ("D".into(), Some("4".into()))]));
        assert_eq!(web.dns, ["1.1.1.1"]);
    }

    #[test]
    fn an_unset_bare_variable_stays_null() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    environment:\n      - EMPTY\n      - FROM_ENV\n      - SET=1\n",
        )]);
        let mut o = opts(d.path());
        o.environment.insert("FROM_ENV".into(), "env".into());
        let p = load_ok(&o);
        let a = &p.services["a"];
        assert_eq!(a.environment["EMPTY"], None);
        assert_eq!(a.environment["FROM_ENV"].as_deref(), Some("env"));
        assert_eq!(p.model["services"]["a"]["environment"]["EMPTY"], Value::Null);
        // Sent as `EMPTY` without `=`: the engine removes the image's EMPTY, as Compose v2 asks.
        let (_, body) = crate::plan::container_body(&p, a, &crate::plan::ContainerSpec::default()).expect("body");
        assert_eq!(body["Env"], json!(["EMPTY", "FROM_ENV=env", "SET=1"]));
        let again = reloaded(&p, d.path());
        assert_eq!(again.services["a"].environment["EMPTY"], None);
    }

    #[test]
    fn dotenv_of_the_working_directory_over_the_projects() {
        let d = dir_with(&[
            ("proj/compose.yaml", "services:\n  db: {image: \"postgres:${PG}\", labels: {other: \"${OTHER}\"}}\n"),
            ("proj/.env", "PG=9.2\nOTHER=from-project\n"),
            ("cwd/.env", "COMPOSE_FILE=../proj/compose.yaml\nPG=9.3\n"),
            ("cwd/alt.env", "COMPOSE_FILE=../proj/compose.yaml;../proj/extra.yaml\nCOMPOSE_PATH_SEPARATOR=;\nPG=10\n"),
            ("proj/extra.yaml", "services:\n  extra: {image: busybox}\n"),
        ]);
        let p = load_ok(&opts(&d.path().join("cwd")));
        assert_eq!(p.services["db"].image.as_deref(), Some("postgres:9.3"));
        assert_eq!(p.services["db"].labels["other"].as_deref(), Some("from-project"));
        assert_eq!(p.working_dir, d.path().join("proj"));
        assert_eq!(p.env_files, [d.path().join("proj/.env"), d.path().join("cwd/.env")]);
        // COMPOSE_FILE from --env-file; the project's .env is then not read.
        let mut o = opts(&d.path().join("cwd"));
        o.env_files = vec!["alt.env".into()];
        let p = load_ok(&o);
        assert_eq!(p.services["db"].image.as_deref(), Some("postgres:10"));
        assert!(p.services.contains_key("extra"));
        assert_eq!(p.services["db"].labels["other"].as_deref(), Some(""));
        // The environment still wins over both.
        let mut o = opts(&d.path().join("cwd"));
        o.environment.insert("PG".into(), "env".into());
        assert_eq!(load_ok(&o).services["db"].image.as_deref(), Some("postgres:env"));
    }

    #[test]
    fn volume_targets_and_empty_sources() {
        let d = dir_with(&[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    volumes: [\"./d:/data/\", \"cache:/cache//\", {type: bind, source: ./e, target: /e/}, \"/:/host\"]\nvolumes: {cache: {}}\n",
        )]);
        let p = load_ok(&opts(d.path()));
        let targets: Vec<&str> = p.services["a"].volumes.iter().map(|v| v.target.as_str()).collect();
        assert_eq!(targets, ["/data", "/cache", "/e", "/host"]);
        let d = dir_with(&[("compose.yaml", "services:\n  a: {image: x, volumes: [\"${UNSET}:/x\"]}\n")]);
        assert_eq!(
            load_err(&opts(d.path())),
            "compose.yaml: services.a.volumes.0: invalid volume \":/x\": empty section between colons"
        );
    }
}
