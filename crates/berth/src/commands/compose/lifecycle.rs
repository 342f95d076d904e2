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

/// Runs one hook in container `cid` and waits for it, as Compose v2's detached runHook: exec created with the
/// hook's user, privileges, working directory and environment, started detached, its state polled every 100 ms
/// (the Engine API has no exec wait); a non-zero exit is an error.
pub async fn run_hook(c: &Client, svc: &Service, cid: &str, hook: &Hook) -> Result<()> {
    let env = plan::env_list(&hook.environment);
    let mut body = json!({
        "Cmd": hook.command,
        "Env": env,
        "Privileged": hook.privileged.unwrap_or(false),
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": svc.tty.unwrap_or(false),
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
    c.post_json(&format!("/exec/{exec}/start"), &json!({"Detach": true, "Tty": svc.tty.unwrap_or(false)})).await?;
    loop {
        let st: Value = c.get_json(&format!("/exec/{exec}/json")).await?;
        if st["Running"].as_bool() != Some(true) {
            let code = st["ExitCode"].as_i64().unwrap_or(-1);
            if code != 0 {
                bail!("{:?} hook exited with status {code}", hook.command);
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the service's `post_start` hooks in a container that has just started; the first failure is the
/// start's failure (Compose v2).
pub async fn post_start(c: &Client, svc: &Service, cid: &str) -> Result<()> {
    for h in &svc.post_start {
        run_hook(c, svc, cid, h).await.with_context(|| format!("service {:?}: post_start hook", svc.name))?;
    }
    Ok(())
}

/// Runs the service's `pre_stop` hooks before a container is stopped. As Compose v2: a container that is not
/// running (or gone) skips them; another failure stops the stop.
pub async fn pre_stop(c: &Client, svc: &Service, cid: &str) -> Result<()> {
    for h in &svc.pre_stop {
        match run_hook(c, svc, cid, h).await {
            Ok(()) => {}
            Err(e) if ApiError::is(&e, 404) || ApiError::is(&e, 409) => return Ok(()),
            Err(e) => return Err(e.context(format!("service {:?}: pre_stop hook", svc.name))),
        }
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
