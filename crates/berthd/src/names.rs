//! Container names: validation and Docker-style generated names (`adjective_scientist`).

use crate::error::Error;

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "exciting",
    "festive",
    "focused",
    "friendly",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "hungry",
    "inspiring",
    "intelligent",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bell",
    "bhabha",
    "blackwell",
    "bohr",
    "borg",
    "bose",
    "brattain",
    "cannon",
    "carson",
    "cerf",
    "chandrasekhar",
    "clarke",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jennings",
    "johnson",
    "kalam",
    "kepler",
    "knuth",
    "lamarr",
    "leakey",
    "lovelace",
    "lumiere",
    "mayer",
    "mcclintock",
    "meitner",
    "mendel",
    "morse",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "ramanujan",
    "ritchie",
    "rubin",
    "sammet",
    "shannon",
    "shockley",
    "sinoussi",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "villani",
    "wiles",
    "williams",
    "wozniak",
    "wright",
    "yalow",
];

/// Checks a user-given container name (without the leading `/`).
pub fn validate(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A random `adjective_name`, with a number appended on `retry` > 0.
pub fn generate(seed: &[u8], retry: usize) -> String {
    let a = usize::from(seed[0]) | (usize::from(seed[1]) << 8);
    let b = usize::from(seed[2]) | (usize::from(seed[3]) << 8);
    let base = format!("{}_{}", LEFT[a % LEFT.len()], RIGHT[b % RIGHT.len()]);
    if retry == 0 { base } else { format!("{base}{}", seed[4] % 10) }
}

/// A generated name (`what`: "container", "pod") that `taken` says is free, made again with a number appended
/// while it is taken (at most ten tries, as Docker).
pub fn generate_unique(what: &str, mut taken: impl FnMut(&str) -> Result<bool, Error>) -> Result<String, Error> {
    for retry in 0..10 {
        let mut seed = [0u8; 5];
        getrandom::fill(&mut seed).map_err(|e| Error::Internal(format!("random: {e}")))?;
        let n = generate(&seed, retry);
        if !taken(&n)? {
            return Ok(n);
        }
    }
    Err(Error::Internal(format!("could not generate a unique {what} name")))
}

/// A new random 64-hex-digit ID.
pub fn new_id() -> Result<String, Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate("web").is_ok());
        assert!(validate("my_app-1.2").is_ok());
        assert!(validate("-bad").is_err());
        assert!(validate("a").is_err());
        assert!(validate("sp ace").is_err());
        let g = generate(&[1, 2, 3, 4, 5], 0);
        assert!(g.contains('_') && validate(&g).is_ok());
        assert_eq!(new_id().expect("id").len(), 64);
    }
}
