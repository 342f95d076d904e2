//! The log configuration (`HostConfig.LogConfig`): the drivers Berth has (`json-file`, `local`, `none`), their options
//! checked as Docker checks them, the daemon's default driver and options merged in at create as dockerd's
//! `mergeAndVerifyLogConfig` does, and the [`LogPolicy`] the shim applies (rotation, compression).

use std::collections::HashMap;

use crate::error::Error;
use berth_api::models::{HostConfig, HostConfigLogConfig};
use berth_api::units::UnitError;
use berth_runtime::shim::LogPolicy;

// Configuration

pub const JSON_FILE: &str = "json-file";
pub const LOCAL: &str = "local";
pub const NONE: &str = "none";
/// Docker's built-in drivers that Berth does not have: refused with a message that says so.
pub(super) const NOT_IN_BERTH: &[&str] =
    &["syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"];
/// Options every driver takes (moby's `builtInLogOpts`).
pub(super) const BUILT_IN: &[&str] = &["mode", "max-buffer-size"];
/// Options of Docker's file drivers that add attributes to each entry: not implemented.
pub(super) const ATTRIBUTES: &[&str] = &["labels", "labels-regex", "env", "env-regex", "tag"];

/// A log driver or options Docker (or Berth) refuses, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogOptsError {
    /// `mode` is neither `blocking` nor `non-blocking`.
    #[error("logger: logging mode not supported: {0}")]
    Mode(String),
    /// `max-buffer-size` without `mode=non-blocking`.
    #[error("logger: max-buffer-size option is only supported with 'mode=non-blocking'")]
    BufferSizeMode,
    /// `max-buffer-size` is not a size.
    #[error("error parsing option max-buffer-size: {0}")]
    BufferSize(#[source] UnitError),
    /// One of Docker's drivers that Berth does not have.
    #[error("logger: the '{0}' log driver is not supported by Berth (its log drivers are json-file, local and none)")]
    NotInBerth(String),
    /// A driver Docker does not have either.
    #[error("logger: no log driver named '{0}' is registered")]
    UnknownDriver(String),
    /// An option that adds attributes to each entry.
    #[error("log opt '{0}' is not supported by Berth (its log entries carry no attributes)")]
    Attributes(String),
    /// An option the local driver does not take.
    #[error("unknown log opt '{0}' for log driver local")]
    UnknownLocalOpt(String),
    /// An option the json-file driver does not take.
    #[error("unknown log opt '{0}' for json-file log driver")]
    UnknownJsonFileOpt(String),
    /// The driver refused a value (Docker finds out when it starts the container, Berth at create).
    #[error("failed to initialize logging driver: {0}")]
    Driver(#[source] DriverOptError),
}

/// A value the json-file or local driver refuses, in the words of moby's drivers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverOptError {
    /// json-file's `max-size` is not a size.
    #[error("{0}")]
    Size(#[source] UnitError),
    /// json-file's `max-file` or `compress` is not a number or a boolean.
    #[error("{0}")]
    Value(#[source] StrconvError),
    /// local's `max-size` is not a size.
    #[error("invalid value for max-size: {value}: {source}")]
    LocalMaxSize {
        /// As given.
        value: String,
        /// Why.
        #[source]
        source: UnitError,
    },
    /// local's `max-file` is not a number.
    #[error("invalid value for max-file: {value}: {source}")]
    LocalMaxFile {
        /// As given.
        value: String,
        /// Why.
        #[source]
        source: StrconvError,
    },
    /// local's `compress` is not a boolean.
    #[error("invalid boolean value for compress: {0}")]
    LocalCompress(#[source] StrconvError),
    /// The values do not go together, or are out of range (`max-file cannot be less than 1`).
    #[error("{0}")]
    Invalid(&'static str),
}

/// Go's `strconv` errors, in Go's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrconvError {
    /// `strconv.Atoi` of a word that is not a number.
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    AtoiSyntax(String),
    /// `strconv.Atoi` of a number too large or too small for an int.
    #[error("strconv.Atoi: parsing {0:?}: value out of range")]
    AtoiRange(String),
    /// `strconv.ParseBool`.
    #[error("strconv.ParseBool: parsing {0:?}: invalid syntax")]
    ParseBool(String),
}

/// The daemon's default driver and options are refused (dockerd refuses to start then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to set log opts: {0}")]
pub struct LogConfigError(#[source] pub LogOptsError);

/// The daemon's default log driver and options (`--log-driver`, `--log-opt`, `log-driver`/`log-opts` of the
/// configuration file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub driver: String,
    pub opts: HashMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { driver: JSON_FILE.into(), opts: HashMap::new() }
    }
}

impl LogConfig {
    /// Checked as a container's would be (dockerd refuses to start with bad defaults too).
    pub fn new(driver: &str, opts: HashMap<String, String>) -> Result<LogConfig, LogConfigError> {
        let driver = if driver.is_empty() { JSON_FILE } else { driver };
        policy(driver, &opts).map_err(LogConfigError)?;
        Ok(LogConfig { driver: driver.into(), opts })
    }
}

/// Go's `strconv.Atoi`.
pub(super) fn go_atoi(s: &str) -> Result<i64, StrconvError> {
    s.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            StrconvError::AtoiRange(s.to_string())
        }
        _ => StrconvError::AtoiSyntax(s.to_string()),
    })
}

/// Go's `strconv.ParseBool`.
pub(super) fn go_bool(s: &str) -> Result<bool, StrconvError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(StrconvError::ParseBool(s.to_string())),
    }
}

/// Checks a driver and its options as Docker does (moby's `ValidateLogOpts`, then the driver's own parsing of the
/// values, which Docker does at start and Berth already at create) and gives what the shim applies.
pub fn policy(driver: &str, opts: &HashMap<String, String>) -> Result<LogPolicy, LogOptsError> {
    if driver == NONE {
        // Docker checks nothing for `none`.
        return Ok(LogPolicy { disabled: true, ..LogPolicy::default() });
    }
    let mode = opts.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(LogOptsError::Mode(mode.to_string()));
    }
    if let Some(s) = opts.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err(LogOptsError::BufferSizeMode);
        }
        berth_api::units::ram_in_bytes(s).map_err(LogOptsError::BufferSize)?;
    }
    let local = match driver {
        JSON_FILE => false,
        LOCAL => true,
        d if NOT_IN_BERTH.contains(&d) => {
            return Err(LogOptsError::NotInBerth(d.to_string()));
        }
        d => return Err(LogOptsError::UnknownDriver(d.to_string())),
    };
    let mut keys: Vec<&str> = opts.keys().map(String::as_str).filter(|k| !BUILT_IN.contains(k)).collect();
    keys.sort_unstable();
    for k in keys {
        match k {
            "max-size" | "max-file" | "compress" => {}
            _ if ATTRIBUTES.contains(&k) => {
                return Err(LogOptsError::Attributes(k.to_string()));
            }
            _ if local => return Err(LogOptsError::UnknownLocalOpt(k.to_string())),
            _ => return Err(LogOptsError::UnknownJsonFileOpt(k.to_string())),
        }
    }
    let init = LogOptsError::Driver;
    let invalid = |message| LogOptsError::Driver(DriverOptError::Invalid(message));
    if local {
        // moby's local driver: 20 MiB, 5 files, compressed, unless told otherwise.
        let mut p = LogPolicy { disabled: false, max_size: Some(20 << 20), max_files: 5, compress: true };
        if let Some(v) = opts.get("max-size") {
            let n = berth_api::units::from_human_size(v)
                .map_err(|source| init(DriverOptError::LocalMaxSize { value: v.clone(), source }))?;
            p.max_size = Some(n.max(0) as u64);
        }
        if let Some(v) = opts.get("max-file") {
            let n = go_atoi(v).map_err(|source| init(DriverOptError::LocalMaxFile { value: v.clone(), source }))?;
            if n < 0 {
                return Err(invalid("max-file must not be negative"));
            }
            p.max_files = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(v) = opts.get("compress") {
            p.compress = go_bool(v).map_err(|e| init(DriverOptError::LocalCompress(e)))?;
        }
        if p.compress && p.max_files <= 1 {
            return Err(invalid("compression cannot be enabled when max file count is 1"));
        }
        return Ok(p);
    }
    // moby's json-file driver.
    let mut p = LogPolicy { disabled: false, max_size: None, max_files: 1, compress: false };
    if let Some(v) = opts.get("max-size") {
        let n = berth_api::units::from_human_size(v).map_err(|e| init(DriverOptError::Size(e)))?;
        if n <= 0 {
            return Err(invalid("max-size must be a positive number"));
        }
        p.max_size = Some(n as u64);
    }
    if let Some(v) = opts.get("max-file") {
        let n = go_atoi(v).map_err(|e| init(DriverOptError::Value(e)))?;
        if n < 1 {
            return Err(invalid("max-file cannot be less than 1"));
        }
        p.max_files = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(v) = opts.get("compress") {
        p.compress = go_bool(v).map_err(|e| init(DriverOptError::Value(e)))?;
        if p.compress && (p.max_files == 1 || p.max_size.is_none()) {
            return Err(invalid("compress cannot be true when max-file is less than 2 or max-size is not set"));
        }
    }
    Ok(p)
}

/// dockerd's `mergeAndVerifyLogConfig`, at create: an empty type is the daemon's default driver, whose default
/// options fill in those not given; then everything is checked. The host config keeps the result (what `inspect`
/// shows).
pub fn merge_and_verify(default: &LogConfig, host: &mut HostConfig) -> Result<LogPolicy, Error> {
    let lc = host.log_config.get_or_insert_with(HostConfigLogConfig::default);
    let driver = lc.typ.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| default.driver.clone());
    let mut opts = lc.config.clone().unwrap_or_default();
    if driver == default.driver {
        for (k, v) in &default.opts {
            opts.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let p = policy(&driver, &opts).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    lc.typ = Some(driver);
    lc.config = Some(opts);
    Ok(p)
}

/// The policy of a created container (its options were checked at create).
pub fn policy_of(host: &HostConfig) -> Result<LogPolicy, Error> {
    let lc = host.log_config.clone().unwrap_or_default();
    let driver = lc.typ.filter(|t| !t.is_empty()).unwrap_or_else(|| JSON_FILE.into());
    policy(&driver, &lc.config.unwrap_or_default()).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// Whether the container's driver is json-file (whose file `inspect` shows as `LogPath`).
pub fn is_json_file(host: &HostConfig) -> bool {
    host.log_config.as_ref().and_then(|l| l.typ.as_deref()).is_none_or(|t| t.is_empty() || t == JSON_FILE)
}

/// Whether `logs` can read what the container's driver keeps (Docker: not for `none`, 501).
pub fn check_readable(host: &HostConfig) -> Result<(), Error> {
    if host.log_config.as_ref().and_then(|l| l.typ.as_deref()) == Some(NONE) {
        return Err(Error::NotImplemented("configured logging driver does not support reading".into()));
    }
    Ok(())
}
