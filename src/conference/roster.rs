//! The live roster: the hot copy of every conference's view that `/participants`, `/kick`,
//! `GET /api/conferences` and the announcer read.
//!
//! Written only by the task that owns the detector, after each input; read from anywhere. Reads
//! clone what they need and never hold a map guard across an `.await`.
//!
//! Each view is kept behind an [`Arc`]: a reader that walks every conference (the full
//! `GET /api/conferences` listing, the reconciler's poll) takes a pointer per conference instead
//! of a deep copy of 10,000 views and their participants' strings.

use super::detector::{ConferenceView, Detector, ParticipantView};
use super::ids::{ConferenceId, ParticipantKey};
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Roster {
    conferences: Arc<DashMap<ConferenceId, Arc<ConferenceView>>>,
    changes: Arc<Changes>,
}

/// Which conferences changed since a watcher last looked ([`Roster::watch`]): a set, so it is
/// bounded by the number of conferences however many inputs arrive, and kept only once someone
/// watches.
#[derive(Debug, Default)]
struct Changes {
    watched: AtomicBool,
    changed: Mutex<HashSet<ConferenceId>>,
    notify: Notify,
}

impl Changes {
    fn note<'a>(&self, ids: impl IntoIterator<Item = &'a ConferenceId>) {
        if !self.watched.load(Ordering::Acquire) {
            return;
        }
        let mut noted = false;
        if let Ok(mut changed) = self.changed.lock() {
            for id in ids {
                noted |= changed.insert(id.clone());
            }
        }
        if noted {
            self.notify.notify_one();
        }
    }
}

/// The one watcher of a roster's changes (the roster cards).
#[derive(Debug)]
pub struct RosterChanges {
    changes: Arc<Changes>,
}

impl RosterChanges {
    /// The conferences whose view changed (or went) since the last call; waits for one.
    pub async fn changed(&self) -> Vec<ConferenceId> {
        loop {
            let taken: Vec<ConferenceId> = self
                .changes
                .changed
                .lock()
                .map(|mut changed| changed.drain().collect())
                .unwrap_or_default();
            if !taken.is_empty() {
                return taken;
            }
            self.changes.notify.notified().await;
        }
    }
}

impl Roster {
    pub fn new() -> Self {
        Roster::default()
    }

    /// Starts keeping which conferences change, for one watcher.
    pub fn watch(&self) -> RosterChanges {
        self.changes.watched.store(true, Ordering::Release);
        RosterChanges {
            changes: Arc::clone(&self.changes),
        }
    }

    /// Copies the detector's view of the given conferences (removing the ones it forgot).
    pub fn sync(&self, detector: &Detector, changed: &[ConferenceId]) {
        self.changes.note(changed);
        for id in changed {
            match detector.view(id) {
                Some(view) => {
                    self.conferences.insert(id.clone(), Arc::new(view));
                }
                None => {
                    self.conferences.remove(id);
                }
            }
        }
    }

    /// Replaces everything with the detector's views (at start, after a restore).
    pub fn rebuild(&self, detector: &Detector) {
        self.conferences.clear();
        for view in detector.views() {
            self.conferences.insert(view.id.clone(), Arc::new(view));
        }
        let ids: Vec<ConferenceId> = self.conferences.iter().map(|e| e.key().clone()).collect();
        self.changes.note(&ids);
    }

    /// Conferences in progress, with only their live participants, oldest first.
    pub fn live(&self) -> Vec<ConferenceView> {
        self.live_shared()
            .into_iter()
            .map(|shared| {
                let mut view = ConferenceView::clone(&shared);
                view.participants.retain(|p| p.live);
                view
            })
            .collect()
    }

    /// Conferences in progress as kept, oldest first, without copying them: their participants
    /// include those who left ([`ConferenceView::live`] filters them).
    pub fn live_shared(&self) -> Vec<Arc<ConferenceView>> {
        let mut live: Vec<Arc<ConferenceView>> = self
            .conferences
            .iter()
            .filter(|entry| !entry.ended)
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        live.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        live
    }

    /// The ids of the conferences in progress, in no particular order.
    pub fn live_ids(&self) -> Vec<ConferenceId> {
        self.conferences
            .iter()
            .filter(|entry| !entry.ended)
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// One conference as known now (ended ones too, until forgotten).
    pub fn conference(&self, id: &ConferenceId) -> Option<ConferenceView> {
        self.conferences
            .get(id)
            .map(|entry| ConferenceView::clone(entry.value()))
    }

    /// One participant as known now, live or recently left.
    pub fn participant(&self, key: &ParticipantKey) -> Option<ParticipantView> {
        self.conferences
            .get(&key.conference)
            .and_then(|entry| entry.participant(&key.participant).cloned())
    }

    pub fn len(&self) -> usize {
        self.conferences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conferences.is_empty()
    }
}
