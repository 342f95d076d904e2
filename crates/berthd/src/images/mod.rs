//! The images manager: what the image endpoints and the builder ask of the store beyond plain reads — listing with
//! Docker's filters, Docker's removal rules (what `rmi` untags, deletes or refuses), prune, and the registry side:
//! [`pull`] (the `POST /images/create?fromImage=` route and the builder's `FROM` go through the same code), [`push`],
//! and [`registry`] (the one way to make a registry client, with the daemon's trust settings; `login`).
//!
//! Removals and prunes hold `Daemon::image_use` exclusively, so a container being created never loses the layers it
//! is about to use.

pub mod local;
pub mod pull;
pub mod push;
pub mod registry;

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use berth_store::Image;

use crate::daemon::Daemon;
use crate::filters::{Filters, path_match};
use crate::task::blocking;

/// The filters `GET /images/json` accepts (Docker's).
pub const LIST_FILTERS: &[&str] = &["before", "dangling", "label", "label!", "reference", "since", "until"];
/// The filters `POST /images/prune` accepts (Docker's).
pub const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// One line of a removal's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A tag was removed (`Untagged`).
    Untagged(String),
    /// An image or layer was deleted (`Deleted`).
    Deleted(String),
}

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<Removed>,
    /// Bytes of the images deleted.
    pub reclaimed: i64,
}

/// The first 12 hex digits of an ID (as Docker's messages show it).
fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// When the image was created (the epoch when its config does not say).
fn created(i: &Image) -> SystemTime {
    i.config["created"].as_str().and_then(berth_api::time::parse).unwrap_or(UNIX_EPOCH)
}

/// Docker's `reference` filter for one reference (`busybox:latest`, `busybox@sha256:...`): Go's `path.Match` of a
/// pattern against the familiar string or the familiar name.
fn reference_matches(patterns: &[String], reference: &str) -> Result<bool, Error> {
    let name = match reference.split_once('@') {
        Some((n, _)) => n,
        None => match reference.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => reference,
        },
    };
    for p in patterns {
        if path_match(p, reference)? || path_match(p, name)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The list filters with their images and times resolved.
#[derive(Debug)]
struct ListFilter<'a> {
    f: &'a Filters,
    dangling: Option<bool>,
    before: Option<SystemTime>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    all: bool,
}

/// What a listing shows of one image: its tags and digests (under `reference` only those that match).
type Shown = (Vec<String>, Vec<String>);

impl ListFilter<'_> {
    /// `None` leaves the image out; `used`: a container runs on it.
    fn apply(
        &self,
        created: SystemTime,
        tags: &[String],
        digests: &[String],
        labels: &serde_json::Value,
        used: bool,
    ) -> Result<Option<Shown>, Error> {
        let t = created;
        if self.before.is_some_and(|b| t >= b)
            || self.since.is_some_and(|s| t <= s)
            || self.until.is_some_and(|u| t >= u)
        {
            return Ok(None);
        }
        if self.dangling.is_some_and(|want| want != tags.is_empty()) || !self.f.match_labels_json(labels) {
            return Ok(None);
        }
        let (mut tags, mut digests) = (tags.to_vec(), digests.to_vec());
        if self.f.contains("reference") {
            let patterns = self.f.get("reference");
            let keep = |refs: Vec<String>| -> Result<Vec<String>, Error> {
                let mut kept = Vec::new();
                for r in refs {
                    if reference_matches(patterns, &r)? {
                        kept.push(r);
                    }
                }
                Ok(kept)
            };
            (tags, digests) = (keep(tags)?, keep(digests)?);
            if tags.is_empty() && digests.is_empty() {
                return Ok(None);
            }
        }
        // Docker's intermediate images: untagged ones that containers use are listed only with `all`.
        if !self.all && tags.is_empty() && self.dangling.is_none() && used {
            return Ok(None);
        }
        Ok(Some((tags, digests)))
    }
}

/// Docker 20.10's check of a repository a tag is given to: its first component is a registry only with a `.` or
/// `:` in it or as `localhost`, so an upper-case first component (`UPPER/case`) is a repository name that must be
/// lower case (newer references read it as a registry host).
pub fn check_tag_repository(repo: &str) -> Result<(), Error> {
    if let Some((first, _)) = repo.split_once('/')
        && !first.contains(['.', ':'])
        && first != "localhost"
        && first.to_lowercase() != first
    {
        return Err(Error::InvalidArgument("invalid reference format: repository name must be lowercase".into()));
    }
    Ok(())
}

/// `GET /images/json`: the images newest first, filtered as Docker does (`before`/`since`: created before/after the
/// named image; `until`: created before a time; `reference`: a glob on the familiar references, and only the
/// matching tags and digests are listed; `dangling`; `label`, `label!`). Without `all`, untagged images that
/// containers use are left out (Docker's intermediate images).
pub async fn list(d: &Daemon, f: &Filters, all: bool) -> Result<Vec<Image>, Error> {
    f.accept(LIST_FILTERS)?;
    let mut lf = ListFilter {
        f,
        dangling: f.bool("dangling")?,
        before: None,
        since: None,
        until: f.time("until", SystemTime::now())?,
        all,
    };
    // With several values the last one counts, as in Docker's walk over them.
    for name in f.get("before") {
        lf.before = Some(created(&local::resolve(d, name).await?));
    }
    for name in f.get("since") {
        lf.since = Some(created(&local::resolve(d, name).await?));
    }
    for p in f.get("reference") {
        path_match(p, "")?;
    }
    let store = d.store.clone();
    let mut images = blocking(move || store.list_images().map_err(Error::from)).await?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created_unix()));
    let used: HashSet<String> = d.all_containers().iter().map(|c| c.record().image_id).collect();
    let mut out = Vec::new();
    for mut i in images {
        let shown = lf.apply(created(&i), &i.repo_tags, &i.repo_digests, &i.labels(), used.contains(i.id.as_str()))?;
        if let Some((tags, digests)) = shown {
            (i.repo_tags, i.repo_digests) = (tags, digests);
            out.push(i);
        }
    }
    Ok(out)
}

/// `DELETE /images/{name}` with Docker's rules: by a tag while other tags remain, only untags; an image a running
/// container uses cannot be deleted; one a stopped container uses, or that has several tags, only with `force`
/// (which then untags and keeps the layers the containers run on).
pub async fn remove(d: &Daemon, name: &str, force: bool) -> Result<Vec<Removed>, Error> {
    let (id, out) = remove_inner(d, name, force).await?;
    publish_removed(d, &id, &out);
    Ok(out)
}

async fn remove_inner(d: &Daemon, name: &str, force: bool) -> Result<(String, Vec<Removed>), Error> {
    let _no_new_users = d.image_use.write().await;
    let i = local::resolve(d, name).await?;
    let id = i.id.to_string();
    // Removing by a tag while other tags remain only untags.
    let by_tag = !id.trim_start_matches("sha256:").starts_with(name.trim_start_matches("sha256:"));
    let users: Vec<_> = d.all_containers().into_iter().filter(|c| c.record().image_id == id).collect();
    if let Some(running) = users.iter().find(|c| c.is_running())
        && (!by_tag || i.repo_tags.len() <= 1)
    {
        return Err(Error::Conflict(format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            short(&id),
            short(&running.id)
        )));
    }
    let store = d.store.clone();
    if by_tag && (i.repo_tags.len() > 1 || (!users.is_empty() && force)) {
        let tag = familiar_tag(name);
        let t2 = tag.clone();
        blocking(move || store.untag(&t2).map_err(Error::from)).await?;
        return Ok((id, vec![Removed::Untagged(tag)]));
    }
    if let Some(user) = users.first() {
        if !force {
            return Err(Error::Conflict(if by_tag {
                format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    short(&user.id),
                    short(&id)
                )
            } else {
                format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short(&id),
                    short(&user.id)
                )
            }));
        }
        // Forced while containers use it: untag everything, keep the layers those containers run on.
        let tags = i.repo_tags.clone();
        let out = tags.iter().cloned().map(Removed::Untagged).collect();
        blocking(move || {
            for t in &tags {
                store.untag(t).map_err(Error::from)?;
            }
            Ok(())
        })
        .await?;
        return Ok((id, out));
    }
    if !by_tag && i.repo_tags.len() > 1 && !force {
        return Err(Error::Conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&id)
        )));
    }
    let mut out: Vec<Removed> = i.repo_tags.iter().cloned().map(Removed::Untagged).collect();
    let iid = i.id.clone();
    let deleted = blocking(move || store.remove_image(&iid).map_err(Error::from)).await?;
    out.extend(deleted.into_iter().map(Removed::Deleted));
    Ok((id, out))
}

/// Publishes an image event with Docker's attribute `name`.
pub fn publish(d: &Daemon, action: &str, id: &str, name: &str) {
    d.events.publish("image", action, id, crate::events::attrs(&[("name", name)]));
}

/// The events of removing image `image_id`, as Docker's: `untag` for each tag, then `delete` if the image itself
/// went (not its layers, which the answer lists too); both name the image ID.
fn publish_removed(d: &Daemon, image_id: &str, removed: &[Removed]) {
    for r in removed {
        match r {
            Removed::Untagged(_) => publish(d, "untag", image_id, image_id),
            Removed::Deleted(id) if id == image_id => publish(d, "delete", id, id),
            Removed::Deleted(_) => {}
        }
    }
}

/// `busybox` → `busybox:latest` (the form tags are listed in).
fn familiar_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') { name.to_string() } else { format!("{name}:latest") }
}

/// `POST /images/prune`: removes the dangling (untagged) images, or with `dangling=false` every image, that no
/// container uses, created before `until` and matching the `label`/`label!` filters.
pub async fn prune(d: &Daemon, f: &Filters) -> Result<Pruned, Error> {
    f.accept(PRUNE_FILTERS)?;
    let all = f.bool("dangling")? == Some(false);
    let until = f.time("until", SystemTime::now())?;
    let f = f.clone();
    let _no_new_users = d.image_use.write().await;
    let store = d.store.clone();
    let used: HashSet<String> = d.all_containers().iter().map(|c| c.record().image_id).collect();
    let pruned = blocking(move || {
        let mut out = Pruned::default();
        let mut events = Vec::new();
        for i in store.list_images().map_err(Error::from)? {
            if used.contains(&i.id.to_string()) || (!all && !i.repo_tags.is_empty()) {
                continue;
            }
            if until.is_some_and(|u| created(&i) >= u) || !f.match_labels_json(&i.labels()) {
                continue;
            }
            let mut gone: Vec<Removed> = i.repo_tags.iter().cloned().map(Removed::Untagged).collect();
            // What was freed: the layers that went with it (not those other images still share).
            let sizes: HashMap<String, u64> =
                i.layers.iter().filter_map(|c| Some((c.to_string(), store.layer(c).ok().flatten()?.size))).collect();
            let removed = store.remove_image(&i.id).map_err(Error::from)?;
            out.reclaimed += removed.iter().filter_map(|r| sizes.get(r)).sum::<u64>() as i64;
            gone.extend(removed.into_iter().map(Removed::Deleted));
            events.push((i.id.to_string(), gone.clone()));
            out.removed.extend(gone);
        }
        Ok((out, events))
    })
    .await?;
    let (pruned, events) = pruned;
    for (id, gone) in &events {
        publish_removed(d, id, gone);
    }
    d.events.publish_prune("image", pruned.reclaimed.max(0) as u64);
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_tags() {
        let m = |p: &str, r: &str| reference_matches(&[p.to_string()], r).expect("pattern");
        assert!(m("busybox", "busybox:latest"));
        assert!(m("busybox:1*", "busybox:1.36") && !m("busybox:2*", "busybox:1.36"));
        assert!(m("*/app", "me/app:v1") && !m("*", "me/app:v1") && m("*/*", "me/app:v1"));
        assert!(m("localhost:5000/a", "localhost:5000/a:v1") && m("localhost:5000/*", "localhost:5000/a:v1"));
        assert!(m("busybox", "busybox@sha256:abc") && !m("busybox:latest", "busybox@sha256:abc"));
        assert!(reference_matches(&["[".to_string()], "busybox:latest").is_err());
        assert_eq!(familiar_tag("busybox"), "busybox:latest");
        assert_eq!(familiar_tag("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(familiar_tag("a:v1"), "a:v1");
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(secs)
    }

    /// Applies `filters` (with `before`/`since` already resolved to times) to images created at 100, 200 and 300.
    fn listed(filters: &str, before: Option<u64>, since: Option<u64>, all: bool) -> Result<Vec<Vec<String>>, Error> {
        let f = Filters::parse(filters)?;
        f.accept(LIST_FILTERS)?;
        let lf = ListFilter {
            f: &f,
            dangling: f.bool("dangling")?,
            until: f.time("until", at(1000))?,
            before: before.map(at),
            since: since.map(at),
            all,
        };
        let images = [
            (100, vec!["old:v1".to_string(), "me/app:v1".to_string()], serde_json::json!({"tier": "db"}), false),
            (200, vec![], serde_json::json!({}), true),
            (300, vec!["new:latest".to_string()], serde_json::json!({"tier": "web", "x": ""}), false),
        ];
        let mut out = Vec::new();
        for (t, tags, labels, used) in images {
            if let Some((tags, _)) = lf.apply(at(t), &tags, &[], &labels, used)? {
                out.push(if tags.is_empty() { vec![format!("<none>@{t}")] } else { tags });
            }
        }
        Ok(out)
    }

    fn names(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|t| t.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn list_filters() {
        let old: &[&str] = &["old:v1", "me/app:v1"];
        let none: &[&str] = &["<none>@200"];
        let new: &[&str] = &["new:latest"];
        assert_eq!(listed("{}", None, None, false).expect("none"), names(&[old, new]));
        assert_eq!(listed("{}", None, None, true).expect("all"), names(&[old, none, new]));
        assert_eq!(listed(r#"{"before":["new"]}"#, Some(300), None, true).expect("before"), names(&[old, none]));
        assert_eq!(listed(r#"{"since":["old"]}"#, None, Some(100), false).expect("since"), names(&[new]));
        assert_eq!(listed(r#"{"until":["250"]}"#, None, None, true).expect("until"), names(&[old, none]));
        // 1000 - 12 minutes = 280; 1000 - 14 minutes = 160.
        assert_eq!(listed(r#"{"until":["12m"]}"#, None, None, true).expect("until"), names(&[old, none]));
        assert_eq!(listed(r#"{"until":["14m"]}"#, None, None, true).expect("until"), names(&[old]));
        assert_eq!(listed(r#"{"dangling":["true"]}"#, None, None, false).expect("dangling"), names(&[none]));
        assert_eq!(listed(r#"{"dangling":["false"]}"#, None, None, false).expect("tagged"), names(&[old, new]));
        assert_eq!(listed(r#"{"reference":["*/*"]}"#, None, None, false).expect("ref"), names(&[&["me/app:v1"]]));
        assert_eq!(
            listed(r#"{"reference":["new","old:v*"]}"#, None, None, false).expect("refs"),
            names(&[&["old:v1"], new])
        );
        assert_eq!(listed(r#"{"label":["tier=web"]}"#, None, None, false).expect("label"), names(&[new]));
        assert_eq!(listed(r#"{"label":["x"]}"#, None, None, false).expect("label"), names(&[new]));
        assert_eq!(listed(r#"{"label!":["tier=web"]}"#, None, None, false).expect("label!"), names(&[old]));
        let bad = |f: &str| match listed(f, None, None, false) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{f}: {other:?}"),
        };
        assert_eq!(bad(r#"{"bogus":["1"]}"#), "invalid filter 'bogus'");
        assert_eq!(bad(r#"{"dangling":["yes"]}"#), "invalid filter 'dangling=yes'");
        assert!(bad(r#"{"until":["later"]}"#).starts_with("invalid filter 'until=later'"));
        assert!(bad(r#"{"reference":["["]}"#).contains("syntax error in pattern"));
        assert_eq!(bad(r#"{"status":["running"]}"#), "invalid filter 'status'");
    }
}
