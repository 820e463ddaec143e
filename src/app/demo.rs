//! `ringside demo`: the whole pipeline with no accounts. The built-in RingCentral simulator plays
//! a scripted conference into ringside's own webhook over HTTP; the announcements appear on
//! standard output exactly as local mode prints them, with the participant list mid-call.

use crate::config::Settings;
use crate::discord::announcer::MemorySink;
use crate::discord::render;
use crate::simulator::{self, DemoScript};
use anyhow::Context as _;
use secrecy::ExposeSecret;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Time between two notifications of the script, so the demo reads like a call, only faster.
const PACE: Duration = Duration::from_millis(120);
/// The coalescing window the demo runs with (the service default is longer).
const DEMO_COALESCE_MS: u64 = 300;

/// Runs the demo; `settings` supply privacy choices, everything else is the demo's own.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let mut settings = settings.clone();
    settings.server.listen = ([127, 0, 0, 1], 0).into();
    settings.server.admin_listen = settings.server.listen;
    settings.server.api_token = None;
    settings.store.path = dir.join("ringside.sqlite3");
    settings.announce.coalesce_ms = DEMO_COALESCE_MS;
    settings.ringcentral.credentials = None;
    settings.ringcentral.verification_token = None;
    settings.discord.bot = None;

    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
    let running = super::start(&settings, Arc::new(MemorySink::forwarding(lines_tx))).await?;
    let printer = tokio::spawn(async move {
        while let Some(line) = lines_rx.recv().await {
            println!("{line}");
        }
    });

    eprintln!(
        "ringside demo: the built-in RingCentral simulator plays a conference into {}\n",
        running.webhook_url()
    );
    let DemoScript { script, kick, .. } = simulator::demo_script(time::OffsetDateTime::now_utc());
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the simulator's HTTP client")?;
    let url = running.webhook_url();
    let token = running.verification_token().expose_secret().to_owned();
    let notifications = script.notifications();

    simulator::play(&client, &url, &token, &notifications[..kick.start], PACE).await?;
    settle(&settings).await;
    println!("\n/participants");
    for view in running.roster.live() {
        for line in render::participants(&view, settings.privacy.phone_numbers) {
            println!("{line}");
        }
    }
    println!();
    let _ = std::io::stdout().flush();
    simulator::play(&client, &url, &token, &notifications[kick.start..], PACE).await?;

    running.shutdown().await?;
    let _ = printer.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Waits out the coalescing window so everything played so far has been announced.
async fn settle(settings: &Settings) {
    tokio::time::sleep(Duration::from_millis(settings.announce.coalesce_ms + 250)).await;
}

/// A private directory for the demo's store, removed at the end.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let suffix: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("ringside-demo-{suffix}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
