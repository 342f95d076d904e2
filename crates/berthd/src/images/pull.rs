//! Pulls, for `POST /images/create?fromImage=` and the builder's `FROM` (and `--from=<image>`): one way to pull,
//! through [`super::registry::registry`] (the daemon's `--registry-certs-dir` and `--insecure-registry`).
//!
//! A pull resolves its first manifest and config before anything is streamed ([`start`]), so an unknown image,
//! refused credentials or an unreachable registry are the caller's errors; [`Pull::run`] then downloads, reporting
//! progress in docker's JSON messages, a later failure being its last message.

use std::sync::Arc;

use crate::error::Error;
use berth_registry::progress::{Progress, error_message};
use berth_registry::pull::{self, Platform, Resolved};
use berth_registry::{Credentials, Registry};
use berth_store::{Image, Reference};
use serde_json::json;

use super::registry::registry;
use crate::daemon::Daemon;

/// What `POST /images/create?fromImage=` asks for.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage`.
    pub image: String,
    /// `tag`: a tag or a digest; none (and none in `image`) pulls every tag.
    pub tag: Option<String>,
    /// `os[/arch[/variant]]`; none: the host's.
    pub platform: Option<String>,
    pub creds: Credentials,
}

/// A pull whose first image is resolved; [`Pull::run`] fetches it (and the other tags of `pull -a`).
#[derive(Debug)]
pub struct Pull {
    reg: Arc<Registry>,
    reference: Reference,
    refs: Vec<Reference>,
    first: Resolved,
    platform: Platform,
    all_tags: bool,
}

/// Resolves what `req` names, up to the first image's manifest and config.
pub async fn start(d: &Daemon, req: PullRequest) -> Result<Pull, Error> {
    let name = match &req.tag {
        Some(t) if t.contains(':') => format!("{}@{t}", req.image),
        Some(t) => format!("{}:{t}", req.image),
        None => req.image.clone(),
    };
    let r = Reference::parse(&name).map_err(Error::from)?;
    let all_tags = req.tag.is_none() && r.tag().is_none() && r.digest().is_none();
    let platform = match req.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(Error::from)?,
        None => Platform::host(),
    };
    let reg = Arc::new(registry(d, r.domain(), req.creds, vec![pull::pull_scope(&r)])?);
    let refs: Vec<Reference> = if all_tags {
        let tags = pull::list_tags(&reg, &r).await.map_err(Error::from)?;
        tags.iter().filter_map(|t| r.with_tag(t).ok()).collect()
    } else {
        vec![r.clone()]
    };
    let first = match refs.first() {
        Some(f) => pull::resolve(&reg, f, &platform).await.map_err(Error::from)?,
        None => return Err(Error::NotFound(format!("no tags in repository {}", r.familiar_name()))),
    };
    Ok(Pull { reg, reference: r, refs, first, platform, all_tags })
}

impl Pull {
    /// Fetches every image of the pull into the store, reporting on `p`; an error ends the pull as its last message.
    pub async fn run(self, d: &Daemon, p: &Progress) {
        let Pull { reg, reference: r, refs, first, platform, all_tags } = self;
        let header_id =
            if all_tags { r.familiar_name() } else { r.tag().or(r.digest()).unwrap_or("latest").to_string() };
        p.send(json!({"status": format!("Pulling from {}", r.path()), "id": header_id}));
        let mut resolved = Some(first);
        for (i, rr) in refs.iter().enumerate() {
            let res = match resolved.take() {
                Some(res) => Ok(res),
                None => pull::resolve(&reg, rr, &platform).await,
            };
            let res = match res {
                Ok(res) => res,
                Err(e) => {
                    p.send(error_message(&e.to_string()));
                    return;
                }
            };
            if i > 0 {
                p.send(json!({"status": format!("Pulling from {}", r.path()), "id": rr.tag().unwrap_or("")}));
            }
            match pull::fetch(d.store.clone(), reg.clone(), &res, p).await {
                Ok((_, new)) => {
                    pull::final_status(p, &res, new);
                    super::publish(d, "pull", &rr.familiar_string(), &rr.familiar_string());
                }
                Err(e) => {
                    p.send(error_message(&e.to_string()));
                    return;
                }
            }
        }
    }
}

/// An image by name for the builder (`FROM`, `--from=<image>`): the local one, pulled (anonymously, for the host's
/// platform, progress on `p`) when it is missing, or always with `always` (`--pull`), in which case a registry out
/// of reach leaves the local image, as Docker's classic builder does.
pub async fn ensure(d: &Daemon, name: &str, always: bool, p: &Progress) -> Result<Image, Error> {
    let local = match super::local::resolve(d, name).await {
        Ok(i) if !always => return Ok(i),
        Ok(i) => Some(i),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let r = Reference::parse(name).map_err(Error::from)?.with_default_tag();
    let reg = Arc::new(registry(d, r.domain(), Credentials::default(), vec![pull::pull_scope(&r)])?);
    let pulled = async {
        let res = pull::resolve(&reg, &r, &Platform::host()).await?;
        pull::fetch(d.store.clone(), reg.clone(), &res, p).await
    }
    .await;
    match (pulled, local) {
        (Ok(_), _) => {
            super::publish(d, "pull", &r.familiar_string(), &r.familiar_string());
            super::local::resolve(d, &r.to_string()).await
        }
        (Err(_), Some(i)) => Ok(i),
        (Err(berth_registry::Error::NotFound(m)), None) => Err(Error::NotFound(m)),
        // A registry out of reach says so (name resolution, connection), as Docker's builder does.
        (Err(e @ berth_registry::Error::Unavailable(_)), None) => Err(Error::Registry(e)),
        (Err(e), None) => Err(Error::NotFound(format!(
            "pull access denied for {name}, repository does not exist or may require 'docker login': {e}"
        ))),
    }
}
