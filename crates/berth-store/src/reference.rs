//! Image references (`busybox`, `localhost:5000/a/b:v1`, `name@sha256:…`) with the grammar and
//! the normalisation of `github.com/distribution/reference` (`Parse`, `ParseNormalizedNamed`,
//! `ParseAnyReference`, `FamiliarString`, `TagNameOnly`), including its error texts, so that
//! names are accepted, stored and printed exactly as docker does.
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain '/'] path-component ['/' path-component]*
//! domain     := host [':' port]   (host: domain-name | '[' IPv6 ']')
//! tag        := [\w][\w.-]{0,127}
//! ```

use std::fmt;

use crate::error::{Result, StoreError};

/// The registry that familiar names belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy name of Docker Hub, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository path allowed.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

const ERR_INVALID_FORMAT: &str = "invalid reference format";
const ERR_NAME_UPPERCASE: &str = "repository name must be lowercase";
const ERR_NAME_EMPTY: &str = "repository name must have at least one component";

/// A named reference: a repository with an optional tag and an optional digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// What `ParseAnyReference` yields: a bare image id / digest, or a named reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyReference {
    /// `sha256:<hex>` or a bare 64-hex id (normalised to `sha256:<hex>`).
    Digest(String),
    /// A (normalised) named reference.
    Named(Reference),
}

impl Reference {
    /// Parses and normalises a reference the way docker does for user input
    /// (`ParseNormalizedNamed`): `busybox` → `docker.io/library/busybox`. The tag is not
    /// defaulted; see [`Reference::with_default_tag`].
    pub fn parse(s: &str) -> Result<Reference> {
        parse_normalized_named(s)
    }

    /// Parses without normalisation (`reference.Parse`): the domain is empty unless given.
    pub fn parse_raw(s: &str) -> Result<Reference> {
        parse(s)
    }

    /// The registry host (with port), e.g. `docker.io`, `localhost:5000`; empty only for
    /// references from [`Reference::parse_raw`] without one.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full repository name, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() { self.path.clone() } else { format!("{}/{}", self.domain, self.path) }
    }

    /// True if there is neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The same reference with tag `latest` if it had neither tag nor digest (`TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The repository without tag and digest (`TrimNamed`).
    pub fn trim(&self) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: None }
    }

    /// The same repository with tag `tag` (digest dropped); `tag` must be a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        if !is_tag(tag) {
            return Err(StoreError::InvalidArgument("invalid tag format".to_string()));
        }
        Ok(Reference { tag: Some(tag.to_string()), digest: None, ..self.trim() })
    }

    /// The same repository with digest `digest` (tag dropped).
    pub fn with_digest(&self, digest: &str) -> Result<Reference> {
        if !is_digest_pat(digest) {
            return Err(StoreError::InvalidArgument("invalid digest format".to_string()));
        }
        validate_go_digest(digest)?;
        Ok(Reference { tag: None, digest: Some(digest.to_string()), ..self.trim() })
    }

    /// The name as docker shows it: `docker.io/library/` and `docker.io/` stripped.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX)
                && !rest.contains('/')
            {
                return rest.to_string();
            }
            return self.path.clone();
        }
        self.name()
    }

    /// The whole reference as docker shows it, e.g. `busybox:latest`, `localhost:5000/a/b:v1`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        push_suffix(&mut s, self.tag.as_deref(), self.digest.as_deref());
        s
    }
}

fn push_suffix(s: &mut String, tag: Option<&str>, digest: Option<&str>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
}

impl fmt::Display for Reference {
    /// The full form, e.g. `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_suffix(&mut s, self.tag.as_deref(), self.digest.as_deref());
        f.write_str(&s)
    }
}

impl AnyReference {
    /// Parses an image id, a digest or a familiar name (`ParseAnyReference`).
    pub fn parse(s: &str) -> Result<AnyReference> {
        if is_identifier(s) {
            return Ok(AnyReference::Digest(format!("sha256:{s}")));
        }
        if let Some((alg, enc)) = s.split_once(':')
            && !alg.is_empty()
            && !enc.is_empty()
            && validate_go_digest(s).is_ok()
        {
            return Ok(AnyReference::Digest(s.to_string()));
        }
        Reference::parse(s).map(AnyReference::Named)
    }

    /// The text docker shows for it: familiar form, with `:latest` added to bare names as in
    /// docker's "No such image" messages.
    pub fn familiar_string_with_default_tag(&self) -> String {
        match self {
            AnyReference::Digest(d) => d.clone(),
            AnyReference::Named(r) => r.clone().with_default_tag().familiar_string(),
        }
    }
}

/// True for exactly 64 lowercase hex digits (an image id without `sha256:`).
pub fn is_identifier(s: &str) -> bool {
    crate::digest::is_sha256_hex(s)
}

/// `ParseNormalizedNamed`.
fn parse_normalized_named(s: &str) -> Result<Reference> {
    if is_identifier(s) {
        return Err(invalid(format!("invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = match remainder.find(':') {
        Some(i) => &remainder[..i],
        None => &remainder[..],
    };
    if remote.to_lowercase() != remote {
        return Err(invalid(format!("invalid reference format: repository name ({remote}) must be lowercase")));
    }
    parse(&format!("{domain}/{remainder}"))
}

/// `splitDockerDomain`: which part of a familiar name is the registry.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN.to_string(), format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, mut remote) = if maybe_domain == "localhost" {
        (maybe_domain.to_string(), maybe_remote.to_string())
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN.to_string(), maybe_remote.to_string())
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        (maybe_domain.to_string(), maybe_remote.to_string())
    } else {
        (DEFAULT_DOMAIN.to_string(), name.to_string())
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// `reference.Parse`.
fn parse(s: &str) -> Result<Reference> {
    if s.is_empty() {
        return Err(invalid(ERR_NAME_EMPTY));
    }
    let Some(r) = match_reference(s) else {
        let lower = s.to_lowercase();
        if lower != s && match_reference(&lower).is_some() {
            return Err(invalid(ERR_NAME_UPPERCASE));
        }
        return Err(invalid(ERR_INVALID_FORMAT));
    };
    if r.path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(invalid(format!("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")));
    }
    if let Some(d) = &r.digest {
        validate_go_digest(d)?;
    }
    Ok(r)
}

/// Matches the anchored `ReferenceRegexp` (leftmost-first, as Go's regexp does) and splits
/// the name into domain and path the way `anchoredNameRegexp` does.
fn match_reference(s: &str) -> Option<Reference> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest
        && !is_digest_pat(d)
    {
        return None;
    }
    // A ':' after the last '/' can only start the tag: path components have no ':'.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag
        && !is_tag(t)
    {
        return None;
    }
    let comps: Vec<&str> = name.split('/').collect();
    let (domain, path) =
        if comps.len() > 1 && is_domain_and_port(comps[0]) && comps[1..].iter().all(|c| is_path_component(c)) {
            (comps[0].to_string(), comps[1..].join("/"))
        } else if comps.iter().all(|c| is_path_component(c)) {
            (String::new(), name.to_string())
        } else {
            return None;
        };
    Some(Reference { domain, path, tag: tag.map(str::to_string), digest: digest.map(str::to_string) })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`: one component of a repository path.
pub fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `(?:domain-name | \[ipv6\]) (?::[0-9]+)?`
fn is_domain_and_port(s: &str) -> bool {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some(end) = inner.find(']') else { return false };
        let addr = &inner[..end];
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        ("", &inner[end + 1..])
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    if !port.is_empty() {
        let Some(digits) = port.strip_prefix(':') else { return false };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if s.starts_with('[') {
        return true;
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}`
pub fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    match b.first() {
        Some(&f) if word(f) => b.len() <= 128 && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-'),
        _ => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`
fn is_digest_pat(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else { return false };
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        matches!(b.first(), Some(f) if f.is_ascii_alphabetic()) && b.iter().all(|x| x.is_ascii_alphanumeric())
    })
}

/// A reference that does not parse, with docker's message.
fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidArgument(message.into())
}

/// go-digest's `Parse`/`Validate`: registered algorithms only, exact length, lowercase hex.
fn validate_go_digest(d: &str) -> Result<()> {
    const FORMAT: &str = "invalid checksum digest format";
    let Some((alg, enc)) = d.split_once(':') else { return Err(invalid(FORMAT)) };
    if alg.is_empty() || enc.is_empty() {
        return Err(invalid(FORMAT));
    }
    let size = match alg {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => return Err(invalid(if is_digest_pat(d) { "unsupported digest algorithm" } else { FORMAT })),
    };
    if enc.len() != size * 2 {
        return Err(invalid("invalid checksum digest length"));
    }
    if !enc.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(invalid(FORMAT));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

    fn norm(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => r.to_string(),
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str)] = &[
            ("busybox", "docker.io/library/busybox"),
            ("busybox:latest", "docker.io/library/busybox:latest"),
            ("busybox:1.36.1-musl", "docker.io/library/busybox:1.36.1-musl"),
            ("user/app", "docker.io/user/app"),
            ("user/app:v1", "docker.io/user/app:v1"),
            ("docker.io/busybox", "docker.io/library/busybox"),
            ("docker.io/library/busybox", "docker.io/library/busybox"),
            ("index.docker.io/busybox", "docker.io/library/busybox"),
            ("index.docker.io/user/app", "docker.io/user/app"),
            ("library/foo/bar", "docker.io/library/foo/bar"),
            ("localhost/x", "localhost/x"),
            ("localhost:5000/x", "localhost:5000/x"),
            ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
            ("host.tld/x", "host.tld/x"),
            ("test_com/foo", "docker.io/test_com/foo"),
            ("test-com:8080/foo", "test-com:8080/foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"),
            ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian"),
            ("192.168.0.1:80", "docker.io/library/192.168.0.1:80"),
            ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker"),
            ("Foo/bar", "Foo/bar"),
            ("dock__er/docker", "docker.io/dock__er/docker"),
            ("docker---rules/docker", "docker.io/docker---rules/docker"),
            ("a:_tag", "docker.io/library/a:_tag"),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), *want, "input {input}");
        }
        let with_digest = format!("busybox@{D}");
        assert_eq!(norm(&with_digest), format!("docker.io/library/busybox@{D}"));
        let both = format!("busybox:latest@{D}");
        let r = Reference::parse(&both).ok();
        assert_eq!(r.as_ref().map(|r| r.familiar_string()), Some(both.clone()));
        assert_eq!(r.as_ref().and_then(|r| r.tag()), Some("latest"));
        assert_eq!(r.as_ref().and_then(|r| r.digest()), Some(D));
    }

    #[test]
    fn invalid_references() {
        let bad: &[(&str, &str)] = &[
            ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
            ("docker.io/docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
            ("", "invalid reference format"),
            ("a b", "invalid reference format"),
            ("-docker", "invalid reference format"),
            ("-docker/docker", "invalid reference format"),
            ("docker-/docker", "invalid reference format"),
            ("docker///docker", "invalid reference format"),
            ("docker/", "invalid reference format"),
            ("____/____", "invalid reference format"),
            ("dock..er/docker", "invalid reference format"),
            ("dock_.er/docker", "invalid reference format"),
            ("dock___er/docker", "invalid reference format"),
            ("https://github.com/docker/docker", "invalid reference format"),
            ("[fc00::1]", "invalid reference format"),
            ("[fc00::1]:5000", "invalid reference format"),
            ("fc00::1:5000/debian", "invalid reference format"),
            ("[fe80::1%eth0]:5000/debian", "invalid reference format"),
            ("busybox:-tag", "invalid reference format"),
            ("busybox:", "invalid reference format"),
            ("busybox@sha256:abc", "invalid reference format"),
            ("busybox::tag", "invalid reference format"),
            (
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                "invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), cannot specify 64-byte hexadecimal strings",
            ),
        ];
        for (input, want) in bad {
            assert_eq!(norm(input), format!("ERR {want}"), "input {input:?}");
        }
        let long_tag = format!("busybox:{}", "a".repeat(129));
        assert_eq!(norm(&long_tag), "ERR invalid reference format");
        let ok_tag = format!("busybox:{}", "a".repeat(128));
        assert!(Reference::parse(&ok_tag).is_ok());
        let long_name = format!("{}/docker", "a_b".repeat(90));
        assert_eq!(norm(&long_name), "ERR repository name must not be more than 255 characters");
        let short_digest = format!("busybox@sha256:{}", "a".repeat(40));
        assert_eq!(norm(&short_digest), "ERR invalid checksum digest length");
        let upper_digest = format!("busybox@sha256:{}", "A".repeat(64));
        assert_eq!(norm(&upper_digest), "ERR invalid checksum digest format");
        let unknown_alg = format!("busybox@md5:{}", "a".repeat(32));
        assert_eq!(norm(&unknown_alg), "ERR unsupported digest algorithm");
        // The raw parser reports uppercase in general terms.
        assert_eq!(
            Reference::parse_raw("docker.io/library/Busybox").err().map(|e| e.to_string()),
            Some("repository name must be lowercase".to_string())
        );
    }

    #[test]
    fn familiar_forms() {
        let cases: &[(&str, &str, &str)] = &[
            ("busybox", "busybox", "busybox:latest"),
            ("docker.io/library/busybox:1", "busybox", "busybox:1"),
            ("user/app", "user/app", "user/app:latest"),
            ("docker.io/library/foo/bar", "library/foo/bar", "library/foo/bar:latest"),
            ("localhost:5000/a/b:v1", "localhost:5000/a/b", "localhost:5000/a/b:v1"),
            ("example.com/privatebase", "example.com/privatebase", "example.com/privatebase:latest"),
            ("other/library", "other/library", "other/library:latest"),
        ];
        for (input, name, tagged) in cases {
            let r = Reference::parse(input).ok();
            assert_eq!(r.as_ref().map(|r| r.familiar_name()).as_deref(), Some(*name), "input {input}");
            assert_eq!(r.map(|r| r.with_default_tag().familiar_string()).as_deref(), Some(*tagged), "input {input}");
        }
    }

    #[test]
    fn raw_parse_splits_domains_like_the_regexp() {
        let r = Reference::parse_raw("a/b:c").ok();
        assert_eq!(r.as_ref().map(|r| (r.domain(), r.path(), r.tag())), Some(("a", "b", Some("c"))));
        let r = Reference::parse_raw("foo").ok();
        assert_eq!(r.as_ref().map(|r| (r.domain(), r.path())), Some(("", "foo")));
        let r = Reference::parse_raw("localhost:5000").ok();
        assert_eq!(r.as_ref().map(|r| (r.path(), r.tag())), Some(("localhost", Some("5000"))));
        // A first component that is no domain but a valid path component stays in the path.
        let r = Reference::parse_raw("foo_bar.com/x").ok();
        assert_eq!(r.as_ref().map(|r| (r.domain(), r.path())), Some(("", "foo_bar.com/x")));
        assert!(Reference::parse_raw("").is_err_and(|e| e.to_string() == ERR_NAME_EMPTY));
    }

    #[test]
    fn any_reference() {
        let hex = &D["sha256:".len()..];
        assert_eq!(AnyReference::parse(hex).ok(), Some(AnyReference::Digest(D.to_string())));
        assert_eq!(AnyReference::parse(D).ok(), Some(AnyReference::Digest(D.to_string())));
        let short = AnyReference::parse("dbcc1").ok();
        assert_eq!(short.as_ref().map(|a| a.familiar_string_with_default_tag()).as_deref(), Some("dbcc1:latest"));
        // A short "sha256:<prefix>" is a repository "sha256" with a tag, as in docker.
        let s = AnyReference::parse("sha256:dbcc1").ok();
        assert_eq!(s.map(|a| a.familiar_string_with_default_tag()).as_deref(), Some("sha256:dbcc1"));
        assert!(AnyReference::parse("Busybox").is_err());
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("busybox:1").ok();
        let t = r.as_ref().and_then(|r| r.with_tag("2").ok());
        assert_eq!(t.map(|t| t.to_string()).as_deref(), Some("docker.io/library/busybox:2"));
        assert!(r.as_ref().is_some_and(|r| r.with_tag("-x").is_err()));
        let d = r.as_ref().and_then(|r| r.with_digest(D).ok());
        assert_eq!(d.map(|d| d.familiar_string()), Some(format!("busybox@{D}")));
        assert!(r.as_ref().is_some_and(|r| r.with_digest("foo").is_err()));
    }
}
