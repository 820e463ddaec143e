//! The announcer: takes detector events in order, waits out the coalescing window, renders them
//! from the roster at send time and hands the text to a sink.
//!
//! In local mode the sink is standard output (one line per announcement). Waiting before
//! rendering is what lets an identity learned a moment after a join show in the join's line.

use crate::conference::{ConferenceEvent, Roster};
use crate::config::PhoneNumbers;
use crate::discord::render;
use crate::store::Store;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

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

/// Settings the announcer runs with.
#[derive(Debug, Clone, Copy)]
pub struct AnnouncerSettings {
    pub coalesce: Duration,
    pub phone_numbers: PhoneNumbers,
}

/// An event to announce, with its outbox row (marked delivered once the sink took it).
pub type Outgoing = (Option<i64>, ConferenceEvent);

/// Runs until `events` closes or `shutdown` fires; either way every event already received is
/// announced before it returns (a graceful stop loses nothing).
pub async fn run(
    mut events: mpsc::UnboundedReceiver<Outgoing>,
    roster: Roster,
    sink: Arc<dyn Sink>,
    settings: AnnouncerSettings,
    mut shutdown: watch::Receiver<bool>,
    store: Option<Store>,
) {
    let mut pending: VecDeque<(Instant, Outgoing)> = VecDeque::new();
    let mut closing = false;
    loop {
        let due = pending
            .front()
            .map(|(arrived, _)| *arrived + settings.coalesce);
        tokio::select! {
            received = events.recv(), if !closing => match received {
                Some(event) => pending.push_back((Instant::now(), event)),
                None => closing = true,
            },
            _ = sleep_until(due), if due.is_some() => {
                let now = Instant::now();
                let mut ready = Vec::new();
                while pending.front().is_some_and(|(arrived, _)| *arrived + settings.coalesce <= now) {
                    if let Some((_, event)) = pending.pop_front() {
                        ready.push(event);
                    }
                }
                send(&ready, &roster, sink.as_ref(), settings, store.as_ref()).await;
            }
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    closing = true;
                    events.close();
                }
            }
        }
        if closing {
            while let Ok(event) = events.try_recv() {
                pending.push_back((Instant::now(), event));
            }
            let ready: Vec<Outgoing> = pending.drain(..).map(|(_, event)| event).collect();
            send(&ready, &roster, sink.as_ref(), settings, store.as_ref()).await;
            return;
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

async fn send(
    events: &[Outgoing],
    roster: &Roster,
    sink: &dyn Sink,
    settings: AnnouncerSettings,
    store: Option<&Store>,
) {
    if events.is_empty() {
        return;
    }
    let lines: Vec<String> = events
        .iter()
        .map(|(_, event)| render::line(event, roster, settings.phone_numbers))
        .collect();
    let count = lines.len() as u64;
    match sink.send(lines).await {
        Ok(()) => {
            metrics::counter!("ringside_announcements_sent_total").increment(count);
            let delivered: Vec<i64> = events.iter().filter_map(|(id, _)| *id).collect();
            if let Some(store) = store
                && let Err(error) = store.mark_delivered(delivered).await
            {
                // Announced again after a crash, at worst.
                tracing::warn!(%error, "could not mark announcements delivered");
            }
        }
        Err(error) => {
            metrics::counter!("ringside_announcements_failed_total").increment(count);
            tracing::error!(%error, "could not write announcements; they stay in the outbox");
        }
    }
}
