//! [`ConferenceController`]: drives a [`ConferenceScript`] on the platform, mirroring every
//! scripted notification into the session state and delivering it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::state::{Inner, Shared};
use crate::simulator::{CallerRef, ConferenceScript, LeaveSignal, Person};

/// A conference the platform runs.
#[derive(Debug)]
pub(crate) struct ConferenceEntry {
    pub(crate) script: ConferenceScript,
    /// How many of the script's notifications were already applied.
    emitted: usize,
    /// Whether new notifications are delivered (off: applied to the state only, and lost).
    delivering: bool,
}

/// Runs `op` on conference `index`'s script, applies what it scripted to the session state,
/// and queues for delivery the notifications `deliver` picks (when the conference delivers);
/// the others are recorded as lost. Call with the state locked; the receiver fires once the
/// queued notifications were delivered.
pub(crate) fn perform<R>(
    shared: &Shared,
    inner: &mut Inner,
    index: usize,
    op: impl FnOnce(&mut ConferenceScript) -> R,
    deliver: impl Fn(&ConferenceScript, &Value) -> bool,
    not_before: Option<Instant>,
) -> (R, oneshot::Receiver<()>) {
    let entry = &mut inner.conferences[index];
    let result = op(&mut entry.script);
    let fresh: Vec<Value> = entry.script.notifications()[entry.emitted..]
        .iter()
        .map(|scripted| scripted.body.clone())
        .collect();
    entry.emitted += fresh.len();
    let mut outgoing = Vec::new();
    for notification in fresh {
        inner.sessions.apply(&notification);
        let entry = &inner.conferences[index];
        if entry.delivering && deliver(&entry.script, &notification) {
            outgoing.push(notification);
        } else {
            inner.lost.push(notification);
        }
    }
    (result, shared.enqueue(outgoing, not_before))
}

/// Whether a notification is about the conference session (not an original call).
fn on_conference(script: &ConferenceScript, notification: &Value) -> bool {
    notification
        .pointer("/body/telephonySessionId")
        .and_then(Value::as_str)
        == Some(script.conference_id())
}

/// A conference on the platform: each step scripts notifications, applies them to the session
/// state and delivers them (each async step returns once they were delivered). Get one from
/// [`PlatformHandle::conference`](super::PlatformHandle::conference).
///
/// Steps panic when they make no sense (as [`ConferenceScript`]'s do): they are test input.
#[derive(Debug, Clone)]
pub struct ConferenceController {
    shared: Arc<Shared>,
    index: usize,
}

impl ConferenceController {
    pub(crate) fn new(shared: Arc<Shared>, seed: u64, host: Person) -> Self {
        let script = ConferenceScript::new(seed, host, OffsetDateTime::now_utc());
        let index = {
            let mut inner = shared.lock();
            inner.conferences.push(ConferenceEntry {
                script,
                emitted: 0,
                delivering: true,
            });
            inner.conferences.len() - 1
        };
        Self { shared, index }
    }

    async fn run<R>(
        &self,
        op: impl FnOnce(&mut ConferenceScript) -> R,
        deliver: impl Fn(&ConferenceScript, &Value) -> bool,
    ) -> R {
        let (result, done) = {
            let mut inner = self.shared.lock();
            perform(&self.shared, &mut inner, self.index, op, deliver, None)
        };
        let _ = done.await;
        result
    }

    fn read<R>(&self, read: impl FnOnce(&ConferenceScript) -> R) -> R {
        read(&self.shared.lock().conferences[self.index].script)
    }

    /// Whether steps deliver their notifications. Off, the state still changes but the
    /// notifications are lost (a conference that ran before anyone subscribed).
    pub fn set_delivering(&self, on: bool) {
        self.shared.lock().conferences[self.index].delivering = on;
    }

    /// Starts the conference: its Host party `Answered`.
    pub async fn start(&self) {
        self.run(ConferenceScript::start, |_, _| true).await;
    }

    /// A plain two-party call from the host to `caller` (`Setup`, `Proceeding`, `Answered`).
    pub async fn call(&self, caller: Person) -> CallerRef {
        self.run(|script| script.call(caller), |_, _| true).await
    }

    /// Merges an answered call into the conference (`Gone`/`Conference`, then the
    /// `Participant` party `Answered`).
    pub async fn merge(&self, caller: CallerRef) {
        self.run(|script| script.merge(caller), |_, _| true).await;
    }

    /// [`call`](Self::call) then [`merge`](Self::merge).
    pub async fn call_and_merge(&self, caller: Person) -> CallerRef {
        self.run(|script| script.call_and_merge(caller), |_, _| true)
            .await
    }

    /// A call that never reaches the conference: rings, is answered, `talk` later hangs up.
    pub async fn two_party_call(&self, caller: Person, talk: Duration) -> CallerRef {
        self.run(|script| script.two_party_call(caller, talk), |_, _| true)
            .await
    }

    /// The caller hangs up. The state always shows both of their parties `Disconnected`;
    /// `signal` chooses which of those notifications are delivered (`Silent`: none, a silent
    /// disconnect). The withheld ones are in
    /// [`lost_notifications`](super::PlatformHandle::lost_notifications).
    pub async fn hang_up(&self, caller: CallerRef, signal: LeaveSignal) {
        self.run(
            |script| script.hang_up(caller, LeaveSignal::Both),
            |script, notification| {
                if on_conference(script, notification) {
                    signal.signals_conference()
                } else {
                    signal.signals_original()
                }
            },
        )
        .await;
    }

    /// The host leaves and the conference stays up for the callers (`keepConferenceAlive`).
    pub async fn host_leaves(&self) {
        self.run(ConferenceScript::host_leaves, |_, _| true).await;
    }

    /// The host ends the conference for everyone.
    pub async fn end(&self) {
        self.run(ConferenceScript::end, |_, _| true).await;
    }

    /// Moves the script clock (the notifications' `eventTime`) forward; real time is untouched.
    pub fn advance(&self, by: Duration) {
        self.shared.lock().conferences[self.index]
            .script
            .advance(by);
    }

    /// The caller's conference-side party id.
    ///
    /// # Panics
    /// If the caller was never merged.
    pub fn participant_id(&self, caller: CallerRef) -> String {
        self.read(|script| script.participant_id(caller).to_owned())
    }

    /// `(telephonySessionId, party id)` of the caller's original call leg.
    pub fn original_ids(&self, caller: CallerRef) -> (String, String) {
        self.read(|script| {
            let (session, party) = script.original_ids(caller);
            (session.to_owned(), party.to_owned())
        })
    }

    /// The conference session's `telephonySessionId`.
    pub fn conference_id(&self) -> String {
        self.read(|script| script.conference_id().to_owned())
    }

    /// The conference's Host party id.
    pub fn host_party_id(&self) -> String {
        self.read(|script| script.host_party_id().to_owned())
    }

    /// The host, with the extension id the payloads carry.
    pub fn host(&self) -> Person {
        self.read(|script| script.host().clone())
    }

    /// The caller as scripted.
    pub fn caller(&self, caller: CallerRef) -> Person {
        self.read(|script| script.caller(caller).clone())
    }

    /// Whether the caller is still on (not hung up, kicked or ended).
    pub fn is_present(&self, caller: CallerRef) -> bool {
        self.read(|script| script.is_present(caller))
    }

    /// Every notification scripted so far (delivered or not), oldest first.
    pub fn notifications(&self) -> Vec<Value> {
        self.read(|script| {
            script
                .notifications()
                .iter()
                .map(|scripted| scripted.body.clone())
                .collect()
        })
    }
}
