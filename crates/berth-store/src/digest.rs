//! Content digests (`sha256:<64 hex>`) and the typed identifiers built on them: image ids,
//! layer diff ids and chain ids (OCI image spec, "Layer ChainID").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Result, StoreError};

/// The algorithm prefix of every digest the store produces.
pub const SHA256_PREFIX: &str = "sha256:";

/// A validated sha256 digest, always `sha256:` followed by 64 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; anything else is `InvalidArgument`.
    pub fn parse(s: &str) -> Result<Digest> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(StoreError::InvalidArgument(format!("invalid digest {s:?}: missing algorithm")));
        };
        match alg {
            "sha256" => Digest::from_hex(hex),
            "sha384" | "sha512" => {
                Err(StoreError::InvalidArgument(format!("unsupported digest algorithm {alg:?} in {s:?}")))
            }
            _ => Err(StoreError::InvalidArgument(format!("invalid digest {s:?}: unknown algorithm {alg:?}"))),
        }
    }

    /// Builds a digest from 64 lowercase hex digits (no prefix).
    pub fn from_hex(hex: &str) -> Result<Digest> {
        if is_sha256_hex(hex) {
            Ok(Digest(format!("{SHA256_PREFIX}{hex}")))
        } else {
            Err(StoreError::InvalidArgument(format!("invalid sha256 digest {hex:?}: want 64 lowercase hex digits")))
        }
    }

    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut d = Digester::new();
        d.update(bytes);
        d.finish()
    }

    /// The full form, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0[SHA256_PREFIX.len()..]
    }

    /// The first 12 hex digits, as docker shows short ids.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

/// True if `s` is exactly 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 hashing that ends in a [`Digest`].
#[derive(Clone, Default)]
pub struct Digester(Sha256);

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digester")
    }
}

impl Digester {
    /// A fresh hasher.
    pub fn new() -> Digester {
        Digester(Sha256::new())
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest(format!("{SHA256_PREFIX}{}", hex::encode(self.0.finalize())))
    }
}

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Digest);

        impl $name {
            /// Parses `sha256:<64 hex>`.
            pub fn parse(s: &str) -> Result<$name> {
                Digest::parse(s).map($name)
            }
            /// The underlying digest.
            pub fn digest(&self) -> &Digest {
                &self.0
            }
            /// The full form, `sha256:<hex>`.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
            /// The 64 hex digits.
            pub fn hex(&self) -> &str {
                self.0.hex()
            }
            /// The first 12 hex digits.
            pub fn short(&self) -> &str {
                self.0.short()
            }
        }

        impl From<Digest> for $name {
            fn from(d: Digest) -> $name {
                $name(d)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<$name> {
                $name::parse(s)
            }
        }
    };
}

digest_id!(
    /// An image id: the digest of the image's config JSON.
    ImageId
);
digest_id!(
    /// A layer's diff id: the digest of its uncompressed tar.
    DiffId
);
digest_id!(
    /// A layer's chain id: identifies a layer together with everything below it.
    ChainId
);

impl ChainId {
    /// The OCI chain id of `diff` on top of `parent`: `diff` itself for a bottom layer, else
    /// `sha256(parent + " " + diff)`.
    pub fn compute(parent: Option<&ChainId>, diff: &DiffId) -> ChainId {
        match parent {
            None => ChainId(diff.0.clone()),
            Some(p) => ChainId(Digest::of(format!("{} {}", p.as_str(), diff.as_str()).as_bytes())),
        }
    }

    /// The chain ids of a stack of layers given bottom → top, in the same order.
    pub fn chain(diff_ids: &[DiffId]) -> Vec<ChainId> {
        let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
        for d in diff_ids {
            let next = ChainId::compute(out.last(), d);
            out.push(next);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest() {
        assert_eq!(Digest::of(b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&"a".repeat(64)).is_err());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(128))).is_err());
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&ok).map(|d| d.hex().len()).ok(), Some(64));
    }

    #[test]
    fn chain_ids_follow_the_oci_spec() {
        let a = DiffId::from(Digest::of(b"a"));
        let b = DiffId::from(Digest::of(b"b"));
        let chain = ChainId::chain(&[a.clone(), b.clone()]);
        assert_eq!(chain[0].as_str(), a.as_str());
        let want = Digest::of(format!("{} {}", a.as_str(), b.as_str()).as_bytes());
        assert_eq!(chain[1].as_str(), want.as_str());
    }
}
