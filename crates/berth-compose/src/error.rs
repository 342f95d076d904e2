//! The crate's errors: each names the file and, where there is one, the key path and what was expected.

/// A compose error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No compose file where one was looked for.
    #[error(
        "no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml in {dir} and its parents)"
    )]
    NoFile {
        /// The directory the search started from.
        dir: String,
    },
    /// A file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{file}: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key holds a value the compose specification does not allow (or interpolation failed there).
    #[error("{file}: {}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
    Invalid {
        /// The file.
        file: String,
        /// The key path (`services.web.ports.0`).
        path: String,
        /// What is wrong, what was expected.
        message: String,
    },
    /// The project as a whole is inconsistent (a cycle, a reference to nothing).
    #[error("{0}")]
    Project(String),
}

/// A value of a short syntax (a command line, a port, a volume) that does not parse. Where it comes from a file, it
/// becomes an [`Error::Invalid`] there, with the key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// A command line with a quote that is not closed.
    #[error("unterminated quote in {0:?}")]
    UnterminatedQuote(String),
    /// A port whose `[` (IPv6 address) is not closed.
    #[error("invalid port {0:?}")]
    Port(String),
    /// A port with more than three `:`-separated parts.
    #[error("invalid port {0:?}: expected [[ip:]published:]target[/protocol]")]
    PortParts(String),
    /// A port (or one end of a range) that is not a number from 0 to 65535.
    #[error("invalid port {port:?}: {number:?} is not a port number")]
    PortNumber {
        /// The whole port.
        port: String,
        /// The part that is not a number.
        number: String,
    },
    /// A range whose end is before its start.
    #[error("invalid port range {0:?}")]
    PortRange(String),
    /// A published range and a target range of different sizes.
    #[error("invalid port {0:?}: the ranges differ in size")]
    PortRangeSizes(String),
    /// A volume with more than three `:`-separated parts.
    #[error("invalid volume {0:?}: expected [source:]target[:mode]")]
    VolumeParts(String),
    /// A volume with an empty part before its last `:` (`:/x`, what `${UNSET}:/x` becomes).
    #[error("invalid volume {0:?}: empty section between colons")]
    VolumeEmptySection(String),
    /// A volume without a target.
    #[error("invalid volume {0:?}: no target")]
    VolumeTarget(String),
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
