//! A started ringside: what it exposes (addresses, the roster, the store, each side's handles)
//! and its graceful stop, which runs the stages in order under one deadline.

use super::SHUTDOWN_GRACE;
use super::supervise::{Supervisor, Watched};
use crate::conference::{Detector, Roster};
use crate::pipeline::{Announcement, DetectorInputs, Kicker, Progress};
use crate::store::Store;
use crate::util::shutdown::StopSender;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a started ringside exposes to its caller (the binary, the demo, the tests).
pub struct Running {
    pub public_addr: SocketAddr,
    /// `None` when the operator routes share the public listener.
    pub admin_addr: Option<SocketAddr>,
    pub roster: Roster,
    pub store: Store,
    /// Feeds the detector (reconciliation, kicks).
    pub inputs: DetectorInputs,
    /// How far the pipeline has got: [`Running::idle`] waits on it.
    pub progress: Progress,
    /// The RingCentral side, when credentials are configured.
    pub ringcentral: Option<crate::ringcentral::Handles>,
    /// The Discord side, when a bot is configured (`None`: local mode).
    pub discord: Option<crate::discord::Handles>,
    /// Set only when ringside generated the token and no RingCentral group is configured: the
    /// one case where showing it is safe (it protects nothing real yet).
    pub shown_verification_token: Option<String>,
    pub(super) verification_token: SecretString,
    pub supervisor: Supervisor,
    pub(super) tasks: Tasks,
}

/// Everything the graceful stop waits for, in the order it stops them.
pub(super) struct Tasks {
    pub stop: StopSender,
    pub servers: Vec<(&'static str, Watched<std::io::Result<()>>)>,
    /// The subscription manager, the reconciler and the gateway client (supervised), and
    /// registering the commands (one-shot: not supervised).
    pub background: Vec<(&'static str, Watched<()>)>,
    pub pipeline: Watched<Detector>,
    pub announcer: Watched<()>,
    /// Ends when the store thread ends; never awaited.
    pub store_thread: Watched<()>,
    /// Keeps the announcer's channel open while ringside runs, so that the announcer ends only
    /// on a stop (after the detector task let go of its sender), never because the detector
    /// task died: that death is the detector's, and is reported as such.
    pub events_keepalive: mpsc::UnboundedSender<Announcement>,
}

impl Running {
    /// The webhook address on the public listener.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/ringcentral", self.public_addr)
    }

    /// The verification token notifications must carry (for the in-process demo and tests).
    pub fn verification_token(&self) -> &SecretString {
        &self.verification_token
    }

    /// Resolves once every notification handed to ringside so far has been applied and every
    /// announcement it produced has been written or delivered (or parked): the signal tests and
    /// the demo wait on instead of sleeping.
    pub async fn idle(&self) {
        self.progress.idle().await
    }

    /// The kick port, when RingCentral credentials are configured.
    pub fn kicker(&self) -> Option<Arc<dyn Kicker>> {
        self.ringcentral.as_ref().map(|side| side.kicker.clone())
    }

    /// Graceful stop: stop accepting, drain the detector and the announcer, close the store.
    /// Every stage shares one deadline ([`SHUTDOWN_GRACE`] from now), so the process exits within
    /// the 10 s the README promises however the time is spent; what the announcer could not send
    /// by then stays in the store and is sent (with the same nonces) at the next start.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        self.supervisor.stopping();
        let tasks = self.tasks;
        tasks.stop.stop();
        // What did not finish in time, said in one line at the end (a store that cannot write
        // makes every stage late, and has said so already).
        let mut late: Vec<&'static str> = Vec::new();
        for (name, mut server) in tasks.servers {
            match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(Ok(Some(Ok(())) | None)) => {}
                Ok(Ok(Some(Err(error)))) => {
                    tracing::warn!(%error, listener = name, "listener stopped with an error")
                }
                Ok(Err(error)) => tracing::warn!(%error, listener = name, "listener task failed"),
                Err(_) => {
                    late.push(name);
                    server.abort();
                }
            }
        }
        // Interactions stopped arriving with the listeners; kicks already confirmed finish and
        // their replies are edited (they need the detector, which drains after this).
        if let Some(discord) = &self.discord
            && tokio::time::timeout_at(deadline, discord.responder.wait_follow_ups())
                .await
                .is_err()
        {
            late.push("a confirmed kick");
        }
        for (name, mut task) in tasks.background {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                late.push(name);
                task.abort();
            }
        }
        let mut pipeline = tasks.pipeline;
        match tokio::time::timeout_at(deadline, &mut pipeline).await {
            Ok(Ok(Some(_detector))) => {}
            Ok(Ok(None)) => tracing::warn!("the detector task had already ended"),
            Ok(Err(error)) => tracing::warn!(%error, "detector task failed"),
            Err(_) => {
                late.push("the detector (the rest of the inbox is replayed at the next start)");
                pipeline.abort();
            }
        }
        drop(tasks.events_keepalive);
        let mut announcer = tasks.announcer;
        if tokio::time::timeout_at(deadline, &mut announcer)
            .await
            .is_err()
        {
            late.push("the announcer (the rest is sent at the next start)");
            announcer.abort();
        }
        drop(tasks.store_thread);
        // The store finishes what is queued; a store that cannot write may take long to fail
        // each write, so its close is bounded too. What it did not flush is replayed or resent
        // at the next start; the stop still succeeds.
        match tokio::time::timeout_at(deadline + STORE_CLOSE_GRACE, self.store.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => late.push("the store"),
        }
        if !late.is_empty() {
            tracing::warn!(
                unfinished = %late.join(", "),
                "stopped before everything was flushed; nothing is lost: it is replayed or resent at the next start"
            );
        }
        Ok(())
    }
}

/// How long past the shared deadline the store may take to close.
const STORE_CLOSE_GRACE: Duration = Duration::from_millis(1500);
