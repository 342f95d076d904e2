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

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
