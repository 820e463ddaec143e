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
/// edits carry the interaction token in it) as a span field and in a warning; its websocket
/// client warns with a whole undecodable gateway payload, and its shard spans record whole
/// gateway events (an interaction's token included) in every line they wrap. Every target
/// under `serenity::gateway` is held, so a new one cannot slip through. ringside logs Discord
/// failures itself, without them.
const QUIET_TARGETS: &[&str] = &["serenity::http", "serenity::gateway"];

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

    /// The shard's spans (`serenity::gateway::shard`) and the websocket client
    /// (`serenity::gateway::ws`) are both under a held target.
    #[test]
    fn every_target_under_serenity_gateway_is_held() {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let writer = {
            let seen = seen.clone();
            move || Capture(seen.clone())
        };
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_filter(filter("trace")),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "serenity::gateway::shard", "recv_event", event = "token-in-span");
            let _entered = span.enter();
            tracing::warn!(target: "serenity::gateway::ws", "token-in-warning");
            tracing::info!(target: "ringside::discord", "ordinary line");
        });
        let text = seen.lock().unwrap().join("");
        assert!(text.contains("ordinary line"), "{text}");
        assert!(!text.contains("token-in"), "{text}");
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(bytes).into_owned());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
