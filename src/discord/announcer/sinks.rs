//! Where local-mode announcements go: standard output, or memory (the demo and the tests).

use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Where rendered announcements go.
pub trait Sink: Send + Sync + 'static {
    fn send(&self, lines: Vec<String>) -> SinkFuture<'_>;
}

/// What [`Sink::send`] returns (a boxed future keeps the trait usable as `dyn Sink`).
pub type SinkFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>>;

/// Local mode: one line per announcement on standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn send(&self, lines: Vec<String>) -> SinkFuture<'_> {
        Box::pin(async move {
            let mut text = String::new();
            for line in lines {
                text.push_str(&line);
                text.push('\n');
            }
            let mut stdout = tokio::io::stdout();
            stdout.write_all(text.as_bytes()).await?;
            stdout.flush().await
        })
    }
}

/// Keeps every line in memory (the demo and tests read them back).
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    lines: Arc<Mutex<Vec<String>>>,
    notify: Option<mpsc::UnboundedSender<String>>,
}

impl MemorySink {
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// Also forwards each line to `notify` as it is sent.
    pub fn forwarding(notify: mpsc::UnboundedSender<String>) -> Self {
        MemorySink {
            lines: Arc::default(),
            notify: Some(notify),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }
}

impl Sink for MemorySink {
    fn send(&self, lines: Vec<String>) -> SinkFuture<'_> {
        if let Ok(mut kept) = self.lines.lock() {
            kept.extend(lines.iter().cloned());
        }
        if let Some(notify) = &self.notify {
            for line in lines {
                let _ = notify.send(line);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
