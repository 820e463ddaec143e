//! Where settings come from: the TOML file, then `RINGSIDE_*` environment
//! variables on top, merged with figment into the raw settings.
//!
//! figment's own `Env` provider guesses types from the text of a variable
//! (`0123` becomes the number 123, `true` a boolean, `[1,2]` an array), which
//! would silently change string settings such as a client id. So environment
//! variables are read by [`env_layer`] here instead, which hands every value
//! over as the exact string it is; lists and numbers are parsed later, per key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::error::ConfigError;
use super::raw::{RawSettings, SECTIONS};

/// Environment variables naming settings start with this.
pub(super) const ENV_PREFIX: &str = "RINGSIDE_";
/// Environment variable holding the settings file path.
pub(super) const ENV_CONFIG_FILE: &str = "RINGSIDE_CONFIG";
/// The settings file used when none is named and it exists.
pub(super) const DEFAULT_FILE: &str = "config/ringside.toml";

/// Picks the settings file: the explicit one, else `RINGSIDE_CONFIG` (when not
/// empty), else [`DEFAULT_FILE`] when `exists` says it does, else none.
pub(super) fn choose_file(
    explicit: Option<&Path>,
    env: &[(String, String)],
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_owned());
    }
    if let Some((_, path)) = env
        .iter()
        .rev()
        .find(|(name, value)| name == ENV_CONFIG_FILE && !value.is_empty())
    {
        return Some(PathBuf::from(path));
    }
    let default = Path::new(DEFAULT_FILE);
    exists(default).then(|| default.to_owned())
}

/// The process's `RINGSIDE_*` variables. Others are left alone; a `RINGSIDE_*`
/// variable that is not valid UTF-8 is an error rather than silently skipped.
pub(super) fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let lossy_name = name.to_string_lossy();
        if !has_prefix(&lossy_name) {
            continue;
        }
        match (name.to_str(), value.into_string()) {
            (Some(name), Ok(value)) => vars.push((name.to_owned(), value)),
            _ => {
                return Err(ConfigError::Environment {
                    name: lossy_name.into_owned(),
                    problem: "is not valid UTF-8".into(),
                });
            }
        }
    }
    Ok(vars)
}

fn has_prefix(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(ENV_PREFIX))
}

/// The settings set by environment variables, and which variable set which key.
pub(super) struct EnvLayer {
    dict: Dict,
    /// `(dotted key, variable name)`, e.g. `("discord.token", "RINGSIDE_DISCORD__TOKEN")`.
    origins: Vec<(String, String)>,
}

/// Reads `RINGSIDE_<SECTION>__<KEY>` variables (prefix in any case) into
/// `section.key` string values. Other `RINGSIDE_*` variables (such as
/// `RINGSIDE_CONFIG`) are not settings and are ignored, except names that
/// look like a setting with a single underscore (`RINGSIDE_DISCORD_TOKEN`),
/// which are rejected so the mistake does not pass silently.
pub(super) fn env_layer(env: &[(String, String)]) -> Result<EnvLayer, ConfigError> {
    let mut sections: BTreeMap<String, Dict> = BTreeMap::new();
    let mut origins = Vec::new();
    for (name, value) in env {
        if !has_prefix(name) {
            continue;
        }
        let rest = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        let Some((section, key)) = rest.split_once("__") else {
            if let Some(section) = SECTIONS
                .iter()
                .find(|s| rest == **s || rest.starts_with(&format!("{s}_")))
            {
                let upper = section.to_ascii_uppercase();
                return Err(ConfigError::Environment {
                    name: name.clone(),
                    problem: format!(
                        "is not a setting name (put a double underscore between section and key, e.g. {ENV_PREFIX}{upper}__{})",
                        rest.get(section.len() + 1..)
                            .filter(|k| !k.is_empty())
                            .unwrap_or("<KEY>")
                            .to_ascii_uppercase()
                    ),
                });
            }
            continue;
        };
        if section.is_empty() || key.is_empty() || key.contains("__") {
            return Err(ConfigError::Environment {
                name: name.clone(),
                problem: format!("is not a setting name (expected {ENV_PREFIX}<SECTION>__<KEY>)"),
            });
        }
        sections
            .entry(section.to_owned())
            .or_default()
            .insert(key.to_owned(), Value::from(value.clone()));
        origins.push((format!("{section}.{key}"), name.clone()));
    }
    let dict = sections
        .into_iter()
        .map(|(section, keys)| (section, Value::from(keys)))
        .collect();
    Ok(EnvLayer { dict, origins })
}

/// Reads and parses the settings file.
pub(super) fn file_layer(path: &Path) -> Result<Dict, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    toml_layer(&file, &text)
}

/// Parses settings file text; `file` names it in errors.
pub(super) fn toml_layer(file: &str, text: &str) -> Result<Dict, ConfigError> {
    Toml::from_str::<Dict>(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ConfigError::Syntax {
            file: file.to_owned(),
            line,
            column,
            reason: e.message().to_owned(),
        }
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A figment provider for an already-read layer.
struct Layer(Dict);

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named("ringside settings")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// Merges the file (if any) and the environment, the environment winning, and
/// checks that every key is one ringside knows.
pub(super) fn merge(
    file: Option<(&Path, Dict)>,
    env: EnvLayer,
) -> Result<RawSettings, ConfigError> {
    let mut figment = Figment::new();
    let file_name = file.as_ref().map(|(path, _)| path.display().to_string());
    if let Some((_, dict)) = file {
        figment = figment.merge(Layer(dict));
    }
    figment
        .merge(Layer(env.dict))
        .extract::<RawSettings>()
        .map_err(|e| from_figment(e, file_name.as_deref(), &env.origins))
}

/// Turns figment's error into ours, without the offending value: it may be a
/// secret.
fn from_figment(
    error: figment::Error,
    file: Option<&str>,
    origins: &[(String, String)],
) -> ConfigError {
    use figment::error::{Actual, Kind};

    let key = error.path.join(".");
    let describe = |actual: &Actual| match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        Actual::Unit | Actual::Option => "nothing",
        _ => "an unsupported value",
    };
    match &error.kind {
        Kind::UnknownField(..) => {
            let origin = origins
                .iter()
                .find(|(k, _)| *k == key || k.starts_with(&format!("{key}.")))
                .map(|(_, name)| format!("from environment variable {name}"))
                .or_else(|| file.map(|f| format!("in {f}")))
                .unwrap_or_else(|| "in the settings".into());
            ConfigError::UnknownKey { key, origin }
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            let problem = if error.path.len() == 1 {
                format!("must be a table ([{key}]), not {}", describe(actual))
            } else {
                format!("expected {expected}, found {}", describe(actual))
            };
            ConfigError::invalid(key, problem)
        }
        Kind::Message(message) => ConfigError::invalid(key, message.clone()),
        Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
            ConfigError::invalid(key, format!("{} is not supported here", describe(actual)))
        }
        other => ConfigError::invalid(key, other.to_string()),
    }
}
