//! `ringside demo`: the whole pipeline with no accounts. ringside signs in to the built-in
//! RingCentral platform fake, subscribes its webhook (handshake included), and the fake plays a
//! conference: a host and three callers join, `/participants` lists them, one caller is removed
//! through the kick port (the same one `/kick` uses), one hangs up, and the host ends it. The
//! announcements appear on standard output exactly as local mode prints them.

use crate::conference::{Actor, ParticipantId, ParticipantKey};
use crate::config::{RingCentralCredentials, Settings};
use crate::discord::announcer::MemorySink;
use crate::discord::render;
use crate::ringcentral::kick::{KickOutcome, KickRequest};
use crate::ringcentral::subscription::SubscriptionHealth;
use crate::simulator::platform::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT};
use crate::simulator::{LeaveSignal, Person, Platform, PlatformOptions};
use anyhow::Context as _;
use secrecy::SecretString;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Real time between two steps of the call, so the demo reads like a call, only faster.
const PACE: Duration = Duration::from_millis(400);
/// The coalescing window the demo runs with (the service default is longer).
const DEMO_COALESCE_MS: u64 = 300;
/// How long the demo waits for its subscription before giving up.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(15);
/// The seed of the demo's conference ids.
const DEMO_SEED: u64 = 122;

/// Runs the demo; `settings` supply privacy choices, everything else is the demo's own.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let dir = private_dir()?;
    let platform = Platform::start(PlatformOptions::new())
        .await
        .context("starting the built-in RingCentral platform")?;
    let listen = free_local_port()?;
    let mut settings = settings.clone();
    settings.server.listen = listen;
    settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
    settings.server.public_url = Some(format!("http://{listen}"));
    settings.server.api_token = None;
    settings.store.path = dir.join("ringside.sqlite3");
    settings.announce.coalesce_ms = DEMO_COALESCE_MS;
    settings.ringcentral.server_url = platform.base_url();
    settings.ringcentral.credentials = Some(RingCentralCredentials {
        client_id: DEFAULT_CLIENT_ID.to_owned(),
        client_secret: SecretString::from(DEFAULT_CLIENT_SECRET),
        jwt: SecretString::from(DEFAULT_JWT),
    });
    settings.ringcentral.verification_token = None;
    settings.ringcentral.host_extensions.clear();
    settings.ringcentral.reconcile_interval_secs = 2;
    settings.ringcentral.kick_confirm_secs = 3;
    settings.discord.bot = None;

    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
    let running = super::start(&settings, Arc::new(MemorySink::forwarding(lines_tx))).await?;
    let printer = tokio::spawn(async move {
        while let Some(line) = lines_rx.recv().await {
            println!("{line}");
        }
    });
    if let Some(health) = &running.subscription {
        let mut health = health.clone();
        tokio::time::timeout(
            SUBSCRIBE_TIMEOUT,
            health.wait_for(|h| matches!(h, SubscriptionHealth::Active { .. })),
        )
        .await
        .context("the demo's subscription did not become active")?
        .context("the subscription manager stopped")?;
    }
    eprintln!(
        "ringside demo: subscribed {} at the built-in RingCentral platform {}\n",
        running.webhook_url(),
        platform.base_url()
    );

    let host = Person::with_extension("Agent 122", "+16505550122", "62295300122");
    let conference = platform.conference(DEMO_SEED, host);
    conference.start().await;
    let mut callers = Vec::new();
    for (person, wait) in [
        (
            Person::with_extension("Paco Vu", "11119", "62288300119"),
            20,
        ),
        (Person::new("Dana Whitfield", "+14155550142"), 180),
        (Person::new("Ravi Anand", "+442071838750"), 150),
    ] {
        conference.advance(Duration::from_secs(wait));
        callers.push(conference.call_and_merge(person).await);
        tokio::time::sleep(PACE).await;
    }
    settle(&settings).await;

    println!("\n/participants");
    for view in running.roster.live() {
        for line in render::participants(&view, settings.privacy.phone_numbers) {
            println!("{line}");
        }
    }
    println!();

    conference.advance(Duration::from_secs(240));
    let paco = ParticipantKey {
        conference: crate::conference::ConferenceId::parse(&conference.conference_id())?,
        participant: ParticipantId::parse(&conference.participant_id(callers[0]))?,
    };
    let moderator = Actor {
        id: "demo".into(),
        display: "@moderator".into(),
    };
    println!("/kick caller:Paco Vu reason:not on the guest list");
    let outcome = match &running.kicker {
        Some(kicker) => {
            kicker
                .kick(KickRequest {
                    participant: paco,
                    by: moderator,
                    reason: Some("not on the guest list".into()),
                })
                .await
        }
        None => KickOutcome::Failed {
            reason: "no kick port".into(),
        },
    };
    println!("{}\n", kick_reply(&outcome));
    let _ = std::io::stdout().flush();
    settle(&settings).await;

    conference.advance(Duration::from_secs(180));
    conference.hang_up(callers[1], LeaveSignal::Both).await;
    tokio::time::sleep(PACE).await;
    conference.advance(Duration::from_secs(120));
    conference.end().await;
    settle(&settings).await;

    running.shutdown().await?;
    let _ = printer.await;
    platform.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What the member who ran `/kick` is told.
fn kick_reply(outcome: &KickOutcome) -> String {
    match outcome {
        KickOutcome::Removed => "  → Removed Paco Vu from the call.".into(),
        KickOutcome::AlreadyGone => "  → Paco Vu had already left the call.".into(),
        KickOutcome::Host => "  → The host cannot be removed.".into(),
        KickOutcome::Failed { reason } => format!("  → Paco Vu was not removed: {reason}."),
    }
}

/// Waits out the coalescing window so everything played so far has been announced.
async fn settle(settings: &Settings) {
    tokio::time::sleep(Duration::from_millis(settings.announce.coalesce_ms + 400)).await;
}

/// A free port on the loopback interface (the webhook address must be known before start).
fn free_local_port() -> anyhow::Result<std::net::SocketAddr> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(probe.local_addr()?)
}

/// A private directory for the demo's store, removed at the end.
fn private_dir() -> anyhow::Result<std::path::PathBuf> {
    let suffix = super::random_hex(8)?;
    let dir = std::env::temp_dir().join(format!("ringside-demo-{suffix}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
