//! What every configuration section shares, whichever module owns the section: reading
//! `HOOKLINE_*` variables (secrets also from `*_FILE`), and the error that names a setting that
//! cannot run.
//!
//! It sits below the sections' owners (the providers under `sources/`, the store, dispatch) so
//! that each can read and check its own settings, and [`crate::config`] only layers them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration that cannot run, with what to fix. Messages name the setting or variable and
/// the problem, never any part of a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for hookline.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (never contains a secret: TOML errors quote only keys and positions).
        message: String,
    },
    /// An environment variable has a value that does not parse.
    #[error("invalid {var}: {message}")]
    Env {
        /// Variable name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A semantic problem.
    #[error("{0}")]
    Invalid(String),
}

/// Reads `HOOKLINE_*` variables from a map, so tests need not touch the process environment.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The variables.
    vars: &'a HashMap<String, String>,
}

impl<'a> Env<'a> {
    /// Reads from these variables.
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Env { vars }
    }

    /// A non-empty value.
    pub fn plain(&self, var: &str) -> Option<String> {
        self.vars
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A secret: from `VAR`, or from the file that `VAR_FILE` names.
    pub fn secret(&self, var: &str) -> Result<Option<String>, ConfigError> {
        if let Some(v) = self.plain(var) {
            return Ok(Some(v));
        }
        let file_var = format!("{var}_FILE");
        let Some(path) = self.plain(&file_var) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Env {
            var: file_var.clone(),
            message: format!("cannot read {path}: {e}"),
        })?;
        Ok(Some(text.trim().to_owned()).filter(|v| !v.is_empty()))
    }

    /// A value parsed with `FromStr`; the error names the variable but not the value.
    pub fn parsed<T>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.plain(var)
            .map(|v| {
                v.parse().map_err(|e: T::Err| ConfigError::Env {
                    var: var.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// A duration such as `5m` or `30s`.
    pub fn duration(&self, var: &str) -> Result<Option<Duration>, ConfigError> {
        self.plain(var)
            .map(|v| {
                humantime::parse_duration(&v).map_err(|e| ConfigError::Env {
                    var: var.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }
}

/// What a secret looks like in `Debug` output: whether it is set, never its value.
pub fn masked(secret: &Option<String>) -> &'static str {
    if secret.is_some() {
        "<set>"
    } else {
        "<none>"
    }
}

/// The fewest characters a token that alone authenticates requests may have (the liveDesk URL
/// token, the admin token): shorter ones can be guessed, and are usually a test value left in.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a token chosen by the operator cannot be used, whatever else its owner requires of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeakToken {
    /// It contains `<`, `>` or a space: the placeholder of an example file (`<openssl rand -hex
    /// 24>`), not a value.
    Placeholder,
    /// Fewer than [`MIN_TOKEN_LEN`] characters; how many it has.
    TooShort(usize),
}

impl WeakToken {
    /// Checks a token; `None` when it is long enough and no placeholder.
    pub fn check(token: &str) -> Option<WeakToken> {
        if token.contains(['<', '>']) || token.contains(char::is_whitespace) {
            Some(WeakToken::Placeholder)
        } else if token.chars().count() < MIN_TOKEN_LEN {
            Some(WeakToken::TooShort(token.chars().count()))
        } else {
            None
        }
    }
}

impl std::fmt::Display for WeakToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeakToken::Placeholder => write!(
                f,
                "it is a placeholder, not a token (it contains `<`, `>` or a space)"
            ),
            WeakToken::TooShort(len) => write!(
                f,
                "it is too short ({len} characters; at least {MIN_TOKEN_LEN})"
            ),
        }
    }
}

/// A short fingerprint of a secret: the first four hex digits of its SHA-256. It tells an
/// operator which of their secrets is configured (and the keys of a rotation apart) while showing
/// no character of the secret; 16 bits say nothing useful about a secret of 16 characters or more.
pub fn fingerprint(secret: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(secret)[..2])
}

/// Splits a list given as one string, separated by spaces and/or commas.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A list of CIDRs or single addresses (`10.0.0.0/8, 127.0.0.1`), from variable `var`.
pub fn parse_networks(var: &str, value: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    split_list(value)
        .iter()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::Env {
                    var: var.into(),
                    message: format!("{item:?} is not a CIDR or IP address"),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_spaces() {
        assert_eq!(split_list(" a,b  c,,d "), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn secrets_come_from_the_variable_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        let vars: HashMap<String, String> = [
            ("A".to_string(), " direct ".to_string()),
            ("B_FILE".to_string(), path.display().to_string()),
        ]
        .into();
        let env = Env::new(&vars);
        assert_eq!(env.secret("A").unwrap().as_deref(), Some("direct"));
        assert_eq!(env.secret("B").unwrap().as_deref(), Some("from-file"));
        assert_eq!(env.secret("C").unwrap(), None);
    }
}
