//! The live roster: the hot copy of every conference's view that `/participants`, `/kick`,
//! `GET /api/conferences` and the announcer read.
//!
//! Written only by the task that owns the detector, after each input; read from anywhere. Reads
//! clone what they need and never hold a map guard across an `.await`.

use super::detector::{ConferenceView, Detector, ParticipantView};
use super::ids::{ConferenceId, ParticipantKey};
use dashmap::DashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Roster {
    conferences: Arc<DashMap<ConferenceId, ConferenceView>>,
}

impl Roster {
    pub fn new() -> Self {
        Roster::default()
    }

    /// Copies the detector's view of the given conferences (removing the ones it forgot).
    pub fn sync(&self, detector: &Detector, changed: &[ConferenceId]) {
        for id in changed {
            match detector.view(id) {
                Some(view) => {
                    self.conferences.insert(id.clone(), view);
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
            self.conferences.insert(view.id.clone(), view);
        }
    }

    /// Conferences in progress, with only their live participants, oldest first.
    pub fn live(&self) -> Vec<ConferenceView> {
        let mut live: Vec<ConferenceView> = self
            .conferences
            .iter()
            .filter(|entry| !entry.ended)
            .map(|entry| {
                let mut view = entry.value().clone();
                view.participants.retain(|p| p.live);
                view
            })
            .collect();
        live.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        live
    }

    /// One conference as known now (ended ones too, until forgotten).
    pub fn conference(&self, id: &ConferenceId) -> Option<ConferenceView> {
        self.conferences.get(id).map(|entry| entry.value().clone())
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
