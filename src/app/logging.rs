//! Logs go to standard error, human-readable by default or JSON lines.

use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Log targets held to errors whatever `RUST_LOG` says, because they can print secrets:
/// serenity's REST client records each request's route (interaction callbacks and `@original`
/// edits carry the interaction token in it) as a span field and in a warning, and its websocket
/// client warns with a whole undecodable gateway payload (an interaction's token included).
/// ringside logs Discord failures itself, without them.
const QUIET_TARGETS: &[&str] = &["serenity::http", "serenity::gateway::ws"];

/// The filter: `RUST_LOG`, else `default_level`, with [`QUIET_TARGETS`] held to errors.
fn filter(default_level: &str) -> EnvFilter {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    for target in QUIET_TARGETS {
        if let Ok(directive) = format!("{target}=error").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
pub fn init(format: LogFormat, default_level: &str) {
    let filter = filter(default_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serenity_targets_that_can_print_tokens_stay_quiet_even_at_trace() {
        let shown = filter("trace").to_string();
        for target in QUIET_TARGETS {
            assert!(shown.contains(&format!("{target}=error")), "{shown}");
        }
    }
}
