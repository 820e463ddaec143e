//! The one error type of the config module.
//!
//! Every message is a single line that starts with `config:` and names the
//! setting (or file, or environment variable) at fault. Secret values are never
//! part of a message: errors about a secret describe the problem, not the value.

use std::fmt::Write as _;

/// Why the settings could not be loaded.
///
/// `Display` is always exactly one line, whatever the fields hold: line breaks
/// and other control characters in them are escaped when printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The settings file could not be read.
    #[error("config: cannot read {}: {}", one_line(.file), one_line(.reason))]
    Unreadable {
        /// The file, as given.
        file: String,
        /// What the operating system said.
        reason: String,
    },

    /// The settings file is not valid TOML.
    #[error(
        "config: {}: TOML syntax error{}: {}",
        one_line(.file),
        location(*.line, *.column),
        one_line(.reason)
    )]
    Syntax {
        /// The file, as given.
        file: String,
        /// 1-based line of the error, when the parser knows it.
        line: Option<usize>,
        /// 1-based column (in characters) of the error, when known.
        column: Option<usize>,
        /// What the TOML parser said.
        reason: String,
    },

    /// A key that ringside does not know, most likely a typo.
    #[error("config: unknown key {} ({})", one_line(.key), one_line(.origin))]
    UnknownKey {
        /// The dotted key, e.g. `discord.tokn`.
        key: String,
        /// Where it came from: `in FILE` or `from environment variable NAME`.
        origin: String,
    },

    /// One setting of an all-or-none group is set and another is not.
    #[error("config: {key} is missing ({group})")]
    Missing {
        /// The dotted key that is missing, e.g. `ringcentral.jwt`.
        key: &'static str,
        /// The keys that go together, e.g. `ringcentral.client_id, client_secret and jwt go together`.
        group: &'static str,
    },

    /// A setting has a value that is not acceptable.
    #[error("config: {}: {}", one_line(.key), one_line(.problem))]
    Invalid {
        /// The dotted key, e.g. `server.listen`.
        key: String,
        /// What is wrong with it (never the value of a secret).
        problem: String,
    },

    /// An environment variable with the `RINGSIDE_` prefix that is unusable.
    #[error("config: environment variable {}: {}", one_line(.name), one_line(.problem))]
    Environment {
        /// The variable's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    pub(super) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Flattens text onto one line: line breaks become `; `, other control
/// characters are escaped.
pub(super) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push_str("; ");
        }
        for c in line.chars() {
            if c.is_control() {
                let _ = write!(out, "{}", c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}
