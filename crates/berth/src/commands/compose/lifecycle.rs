//! What Compose v2 does around a container's life besides creating, starting and stopping it: the `post_start`
//! and `pre_stop` hooks (run in the container through exec), the secrets and configs from `environment:` or
//! `content:` (written into the container as a tar through the archive API after it is created), and files put
//! into a running container (`watch`'s sync).

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_compose::Project;
use berth_compose::model::{Hook, Service};
use berth_compose::plan::{self, InjectedFile};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{ApiError, Client, check, query};
use crate::commands::container_path;

/// Hooks' output in an attached `up`: shown as Compose v2's log printer shows it (`web-1 ->  | line`, a
/// `pre_start` helper's as `web pre_start[0] ->  | line`). Without one (`up -d`, `start`...) hooks run detached and
/// only a failure is reported (a `pre_start` failure with the last lines of its output, as Compose).
#[derive(Debug, Clone, Default)]
pub struct HookOutput {
    /// Prefix the lines (`--no-log-prefix` does not).
    pub prefix: bool,
}

impl HookOutput {
    fn prefix_for(&self, source: &str) -> String {
        if self.prefix { super::ops::prefix_text(&format!("{source} ->"), 0, None) } else { String::new() }
    }
}

/// How many bytes of a hook's output are kept for its failure's message.
const TAIL_BYTES: usize = 4096;

/// A hook's output: its whole lines printed when attached, its end kept for an error message.
struct HookSink {
    shown: Option<super::ops::Prefixed>,
    tail: Vec<u8>,
}

impl HookSink {
    fn new(out: Option<&HookOutput>, source: &str) -> HookSink {
        HookSink { shown: out.map(|o| super::ops::Prefixed::new(o.prefix_for(source))), tail: Vec::new() }
    }

    /// The last lines of the output (up to five), for an error.
    fn tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.tail);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match &mut self.shown {
            Some(p) => p.finish(),
            None => Ok(()),
        }
    }
}

impl crate::stream::Output for HookSink {
    fn write(&mut self, s: u8, data: &[u8]) -> std::io::Result<()> {
        self.tail.extend_from_slice(data);
        if self.tail.len() > TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
        }
        match &mut self.shown {
            Some(p) => p.write(s, data),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.shown {
            Some(p) => crate::stream::Output::flush(p),
            None => Ok(()),
        }
    }
}

/// The display name of a container in hook lines (`web-1`), from its inspection.
async fn display_of(c: &Client, cid: &str) -> String {
    match c.get_json::<Value>(&format!("{}/json", container_path(cid))).await {
        Ok(v) => {
            let project = super::label(&v, berth_compose::plan::LABEL_PROJECT).unwrap_or("").to_string();
            super::ops::prefix_of(&v, &project)
        }
        Err(_) => cid.chars().take(12).collect(),
    }
}

/// Runs one hook in container `cid` and waits for it, as Compose v2's runHook. Detached (`out` is `None`): exec
/// created with the hook's user, privileges, working directory and environment, started detached, its state polled
/// every 100 ms (the Engine API has no exec wait). Attached: its output read from the exec's stream and shown as
/// the container's hook lines. A non-zero exit is an error.
pub async fn run_hook(c: &Client, svc: &Service, cid: &str, hook: &Hook, out: Option<&HookOutput>) -> Result<()> {
    let env = plan::env_list(&hook.environment);
    let tty = svc.tty.unwrap_or(false);
    let mut body = json!({
        "Cmd": hook.command,
        "Env": env,
        "Privileged": hook.privileged.unwrap_or(false),
        "AttachStdout": out.is_some(),
        "AttachStderr": out.is_some(),
        "Tty": tty,
    });
    if let Some(u) = &hook.user {
        body["User"] = json!(u);
    }
    if let Some(w) = &hook.working_dir {
        body["WorkingDir"] = json!(w);
    }
    let resp = c.post_json(&format!("{}/exec", container_path(cid)), &body).await?;
    let v: Value = serde_json::from_slice(&resp).context("decode the exec answer")?;
    let exec = v["Id"].as_str().ok_or_else(|| anyhow!("exec create answered no Id"))?.to_string();
    if let Some(o) = out {
        let display = display_of(c, cid).await;
        let conn = c.hijack(&format!("/exec/{exec}/start"), Some(&json!({"Detach": false, "Tty": tty}))).await?;
        let mut sink = HookSink::new(Some(o), &display);
        let copied = if tty {
            crate::stream::copy_raw(conn, &mut sink).await
        } else {
            crate::stream::demux(conn, &mut sink).await
        };
        sink.finish()?;
        copied?;
        let st: Value = c.get_json(&format!("/exec/{exec}/json")).await?;
        let code = st["ExitCode"].as_i64().unwrap_or(-1);
        if code != 0 {
            bail!("{} hook exited with status {code}", svc.name);
        }
        return Ok(());
    }
    c.post_json(&format!("/exec/{exec}/start"), &json!({"Detach": true, "Tty": tty})).await?;
    loop {
        let st: Value = c.get_json(&format!("/exec/{exec}/json")).await?;
        if st["Running"].as_bool() != Some(true) {
            let code = st["ExitCode"].as_i64().unwrap_or(-1);
            if code != 0 {
                bail!("{} hook exited with status {code}", svc.name);
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the service's `post_start` hooks in a container that has just started; the first failure is the
/// start's failure (Compose v2).
pub async fn post_start(c: &Client, svc: &Service, cid: &str, out: Option<&HookOutput>) -> Result<()> {
    for h in &svc.post_start {
        run_hook(c, svc, cid, h, out).await.with_context(|| format!("service {:?}: post_start hook", svc.name))?;
    }
    Ok(())
}

/// Runs the service's `pre_stop` hooks before a container is stopped. As Compose v2: a container that is not
/// running (or gone) skips them; another failure stops the stop.
pub async fn pre_stop(c: &Client, svc: &Service, cid: &str) -> Result<()> {
    for h in &svc.pre_stop {
        match run_hook(c, svc, cid, h, None).await {
            Ok(()) => {}
            Err(e) if ApiError::is(&e, 404) || ApiError::is(&e, 409) => return Ok(()),
            Err(e) => return Err(e.context(format!("service {:?}: pre_stop hook", svc.name))),
        }
    }
    Ok(())
}

/// The helper containers of the service's `pre_start` hooks still there (a failed hook's is kept for inspection).
async fn pre_start_helpers(c: &Client, project: &str, service: &str) -> Result<Vec<Value>> {
    let filters = json!({"label": [
        format!("{}={project}", plan::LABEL_PROJECT),
        format!("{}={service}", plan::LABEL_SERVICE),
        format!("{}=pre_start", plan::LABEL_HOOK),
    ]})
    .to_string();
    c.get_json(&format!("/containers/json{}", query(&[("all", "1".into()), ("filters", filters)]))).await
}

/// Runs the service's `pre_start` hooks, in order, before its containers start, as Compose v2 does: each in a
/// helper container ([`plan::pre_start_body`]) sharing the volumes of `source` (the service's first container that
/// is about to start), its output followed from before its start, waited for; a non-zero exit fails the start
/// (the helper is kept for inspection, and removed by the next run or `down`), a successful helper is removed with
/// its anonymous volumes.
pub async fn pre_start(
    c: &Client,
    project: &Project,
    svc: &Service,
    source: &str,
    out: Option<&HookOutput>,
) -> Result<()> {
    if svc.pre_start.is_empty() {
        return Ok(());
    }
    // A previous run's failed helpers go first (their names are this run's).
    for old in pre_start_helpers(c, &project.name, &svc.name).await? {
        super::up::remove_container(c, &super::id(&old), true).await?;
    }
    let image_id = super::up::image_id(c, &plan::image_name(&project.name, svc)).await?.unwrap_or_default();
    for i in 0..svc.pre_start.len() {
        let (name, body) = plan::pre_start_body(project, svc, i, source, &image_id)?;
        let resp = c
            .post_json(&format!("/containers/create{}", query(&[("name", name.clone())])), &body)
            .await
            .with_context(|| format!("service {:?} pre_start[{i}]: create {name}", svc.name))?;
        let v: Value = serde_json::from_slice(&resp).context("decode the create answer")?;
        let hid = v["Id"].as_str().ok_or_else(|| anyhow!("container create answered no Id"))?.to_string();
        // Attached before the start (Berth and dockerd connect an attach to a created container at its start), so
        // nothing a quick hook prints is lost.
        let q = [("stream", "1".to_string()), ("stdout", "1".into()), ("stderr", "1".into())];
        let conn = c.hijack(&format!("{}/attach{}", container_path(&hid), query(&q)), None).await;
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                super::up::remove_container(c, &hid, true).await?;
                return Err(e.context(format!("service {:?} pre_start[{i}]: attach", svc.name)));
            }
        };
        if let Err(e) = c.post(&format!("{}/start", container_path(&hid))).await {
            super::up::remove_container(c, &hid, true).await?;
            return Err(e.context(format!("service {:?} pre_start[{i}]: start", svc.name)));
        }
        let mut sink = HookSink::new(out, &format!("{} pre_start[{i}]", svc.name));
        let copied = crate::stream::demux(conn, &mut sink).await;
        sink.finish()?;
        copied?;
        let w: Value = serde_json::from_slice(
            &c.post(&format!("{}/wait{}", container_path(&hid), query(&[("condition", "not-running".into())]))).await?,
        )
        .context("decode the wait answer")?;
        let code = w["StatusCode"].as_i64().unwrap_or(-1);
        if code != 0 {
            let tail = sink.tail();
            let short: String = hid.chars().take(12).collect();
            if tail.is_empty() {
                bail!(
                    "service {:?} pre_start[{i}] exited with code {code} (hook container {short} retained for inspection)",
                    svc.name
                );
            }
            bail!(
                "service {:?} pre_start[{i}] exited with code {code}: {tail} (hook container {short} retained for inspection)",
                svc.name
            );
        }
        super::up::remove_container(c, &hid, true).await?;
    }
    Ok(())
}

/// A tar of regular files at absolute container paths (stored relative to `/`), with their owners and modes.
pub fn tar_of(files: &[InjectedFile]) -> Result<Vec<u8>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(f.target.trim_start_matches('/')).with_context(|| format!("tar path {}", f.target))?;
        h.set_size(f.content.len() as u64);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_mtime(now);
        h.set_cksum();
        b.append(&h, f.content.as_slice()).context("write tar")?;
    }
    b.into_inner().context("finish tar")
}

/// `PUT /containers/{id}/archive?path=DIR` with a tar held in memory.
pub async fn put_archive(c: &Client, cid: &str, dir: &str, tar: Vec<u8>, copy_uid_gid: bool) -> Result<()> {
    let mut q = vec![("path", dir.to_string())];
    if copy_uid_gid {
        q.push(("copyUIDGID", "1".into()));
    }
    let body = Full::new(Bytes::from(tar)).map_err(|never| match never {}).boxed();
    let resp = c
        .send(
            Method::PUT,
            &format!("{}/archive{}", container_path(cid), query(&q)),
            body,
            &[("content-type", "application/x-tar")],
        )
        .await?;
    check(resp).await?;
    Ok(())
}

/// Writes the service's secrets and configs from `environment:`/`content:` into a created container (Compose
/// v2's injectSecrets/injectConfigs), one archive each; prints Compose's warning for the file-based ones whose
/// `uid`/`gid`/`mode` a bind mount cannot honour.
pub async fn inject_files(c: &Client, project: &Project, svc: &Service, cid: &str) -> Result<()> {
    let (files, warnings) = plan::injected_files(project, svc)?;
    for w in warnings {
        eprintln!("WARN[0000] {w}");
    }
    for f in files {
        let copy = f.copy_uid_gid;
        let target = f.target.clone();
        put_archive(c, cid, "/", tar_of(std::slice::from_ref(&f))?, copy)
            .await
            .with_context(|| format!("service {:?}: write {target}", svc.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_has_the_files_at_their_paths_with_owner_and_mode() {
        let f = InjectedFile {
            target: "/run/secrets/pw".into(),
            content: b"hunter2".to_vec(),
            uid: 1000,
            gid: 1001,
            mode: 0o440,
            copy_uid_gid: true,
        };
        let data = tar_of(&[f]).expect("tar");
        let mut a = tar::Archive::new(data.as_slice());
        let mut entries = a.entries().expect("entries");
        let mut e = entries.next().expect("one entry").expect("entry");
        assert_eq!(e.path().expect("path").to_str(), Some("run/secrets/pw"));
        let h = e.header();
        assert_eq!((h.uid().ok(), h.gid().ok(), h.mode().ok()), (Some(1000), Some(1001), Some(0o440)));
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).expect("read");
        assert_eq!(s, "hunter2");
        assert!(entries.next().is_none());
    }
}
