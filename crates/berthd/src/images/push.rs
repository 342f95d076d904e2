//! Pushes (`POST /images/{name}/push`): which local images a push sends, checked before anything is streamed
//! ([`start`]), then [`Push::run`] with docker's progress messages.

use std::sync::Arc;

use crate::error::Error;
use berth_registry::progress::{Progress, error_message};
use berth_registry::{Credentials, Registry};
use berth_store::{Image, Reference};

use super::registry::registry;
use crate::daemon::Daemon;
use crate::task::blocking;

/// A push whose images are known; [`Push::run`] sends them.
#[derive(Debug)]
pub struct Push {
    reg: Arc<Registry>,
    reference: Reference,
    work: Vec<(Reference, Image)>,
}

/// Resolves what `name` (with `tag`; neither: every local tag of the repository, `push -a`) names to local images:
/// a missing one is Docker's 404 `An image does not exist locally with the tag: ...`.
pub async fn start(d: &Daemon, name: &str, tag: Option<String>, creds: Credentials) -> Result<Push, Error> {
    let r = Reference::parse(name).map_err(Error::from)?;
    let store = d.store.clone();
    let targets: Vec<Reference> = match tag.as_deref().or(r.tag()) {
        Some(t) => vec![r.with_tag(t).map_err(Error::from)?],
        None => {
            let s = store.clone();
            let images = blocking(move || s.list_images().map_err(Error::from)).await?;
            let mut v: Vec<Reference> = images
                .iter()
                .flat_map(|i| i.repo_tags.iter())
                .filter_map(|t| Reference::parse(t).ok())
                .filter(|t| t.name() == r.name())
                .collect();
            v.sort_by_key(|t| t.to_string());
            v
        }
    };
    let missing = |t: String| Error::NotFound(format!("An image does not exist locally with the tag: {t}"));
    let mut work = Vec::new();
    for t in &targets {
        let (s, n) = (store.clone(), t.to_string());
        match blocking(move || s.resolve_image(&n).map_err(Error::from)).await {
            Ok(i) => work.push((t.clone(), i)),
            Err(e) if e.is_not_found() => return Err(missing(t.familiar_string())),
            Err(e) => return Err(e),
        }
    }
    if work.is_empty() {
        return Err(missing(r.familiar_name()));
    }
    let mut scopes = vec![berth_registry::push::push_scope(&r)];
    for (_, i) in &work {
        for s in berth_registry::push::mount_scopes(&store, i, r.domain(), r.path()) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
    }
    let reg = Arc::new(registry(d, r.domain(), creds, scopes)?);
    Ok(Push { reg, reference: r, work })
}

impl Push {
    /// Sends every image, reporting on `p`; an error ends the push as its last message.
    pub async fn run(self, d: &Daemon, p: &Progress) {
        p.status(format!("The push refers to repository [{}]", self.reference.name()));
        for (t, image) in self.work {
            if let Err(e) = berth_registry::push::push(d.store.clone(), self.reg.clone(), &image, &t, p).await {
                p.send(error_message(&e.to_string()));
                return;
            }
            super::publish(d, "push", &t.familiar_string(), &t.familiar_string());
        }
    }
}
