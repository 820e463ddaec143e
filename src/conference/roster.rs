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
use super::ids::{ConferenceId, Identity, ParticipantKey};
use super::names::Names;
use super::watch::WatchList;
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Roster {
    conferences: Arc<DashMap<ConferenceId, Arc<ConferenceView>>>,
    /// Contacts and directory names, applied to every view handed out ([`Names::name`]).
    names: Arc<RwLock<Names>>,
    /// `[watch]`, matched against every name known for a caller ([`Roster::watched`]).
    watch: Arc<RwLock<WatchList>>,
    changes: Arc<Changes>,
}

/// The watchers of which conferences change ([`Roster::watch`]): each keeps a set, so it is
/// bounded by the number of conferences however many inputs arrive; nothing is kept for nobody.
#[derive(Debug, Default)]
struct Changes {
    watchers: Mutex<Vec<Weak<Watcher>>>,
}

#[derive(Debug, Default)]
struct Watcher {
    changed: Mutex<HashSet<ConferenceId>>,
    notify: Notify,
}

impl Changes {
    fn note<'a>(&self, ids: impl IntoIterator<Item = &'a ConferenceId> + Clone) {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        watchers.retain(|watcher| watcher.strong_count() > 0);
        for watcher in watchers.iter().filter_map(Weak::upgrade) {
            let mut noted = false;
            if let Ok(mut changed) = watcher.changed.lock() {
                for id in ids.clone() {
                    noted |= changed.insert(id.clone());
                }
            }
            if noted {
                watcher.notify.notify_one();
            }
        }
    }
}

/// One watcher of a roster's changes (the roster cards, the directory lookups).
#[derive(Debug)]
pub struct RosterChanges {
    watcher: Arc<Watcher>,
}

impl RosterChanges {
    /// The conferences whose view changed (or went) since the last call; waits for one.
    pub async fn changed(&self) -> Vec<ConferenceId> {
        loop {
            let taken: Vec<ConferenceId> = self
                .watcher
                .changed
                .lock()
                .map(|mut changed| changed.drain().collect())
                .unwrap_or_default();
            if !taken.is_empty() {
                return taken;
            }
            self.watcher.notify.notified().await;
        }
    }
}

impl Roster {
    pub fn new() -> Self {
        Roster::default()
    }

    /// Starts keeping which conferences change, for one more watcher (dropping it stops that).
    pub fn watch(&self) -> RosterChanges {
        let watcher = Arc::new(Watcher::default());
        self.changes
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&watcher));
        RosterChanges { watcher }
    }

    /// `identity` as ringside shows it: named by the contacts and the directory.
    pub fn named(&self, identity: &Identity) -> Identity {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .name(identity)
    }

    /// Replaces the contacts (a reload of `contacts.path`); every conference shows the new names.
    pub fn set_contacts(&self, contacts: Names) {
        self.names
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace_contacts(contacts);
        self.note_all();
    }

    /// Records the company directory's name for an extension; the conferences it is on show it.
    pub fn set_directory_name(&self, extension_id: &str, name: String) {
        self.names
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .set_directory_name(extension_id, name);
        let on: Vec<ConferenceId> = self
            .conferences
            .iter()
            .filter(|entry| {
                let has =
                    |identity: &Identity| identity.extension_id.as_deref() == Some(extension_id);
                entry.host.as_ref().is_some_and(has)
                    || entry.participants.iter().any(|p| has(&p.identity))
            })
            .map(|entry| entry.key().clone())
            .collect();
        self.changes.note(&on);
    }

    /// Replaces the watch list (at start, and when the settings file changes); every conference
    /// is looked at again, so a caller already on a call who is now watched gets an alert.
    pub fn set_watch_list(&self, list: WatchList) {
        let mut watch = self.watch.write().unwrap_or_else(PoisonError::into_inner);
        if *watch == list {
            return;
        }
        *watch = list;
        drop(watch);
        self.note_all();
    }

    /// The Discord roles a watch-list alert mentions now.
    pub fn alert_roles(&self) -> Vec<u64> {
        self.watch
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .alert_roles()
            .to_vec()
    }

    /// The live callers of a conference on the watch list (never its host), named as shown.
    pub fn watched(&self, id: &ConferenceId) -> Vec<ParticipantView> {
        let watch = self.watch.read().unwrap_or_else(PoisonError::into_inner);
        if watch.is_empty() {
            return Vec::new();
        }
        let Some(view) = self
            .conferences
            .get(id)
            .map(|entry| Arc::clone(entry.value()))
        else {
            return Vec::new();
        };
        if view.ended {
            return Vec::new();
        }
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        view.live()
            .filter(|p| {
                view.host_party
                    .as_ref()
                    .is_none_or(|host| host.as_str() != p.id.as_str())
            })
            .filter(|p| watch.matches(&p.identity, &names).is_some())
            .map(|p| ParticipantView {
                identity: names.name(&p.identity),
                ..p.clone()
            })
            .collect()
    }

    fn note_all(&self) {
        let ids: Vec<ConferenceId> = self.conferences.iter().map(|e| e.key().clone()).collect();
        self.changes.note(&ids);
    }

    /// A view with every identity named ([`Roster::named`]).
    fn with_names(&self, mut view: ConferenceView) -> ConferenceView {
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        if names.is_empty() {
            return view;
        }
        view.host = view.host.map(|host| names.name(&host));
        for participant in &mut view.participants {
            participant.identity = names.name(&participant.identity);
        }
        view
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
        self.note_all();
    }

    /// Conferences in progress, with only their live participants, oldest first.
    pub fn live(&self) -> Vec<ConferenceView> {
        self.live_shared()
            .into_iter()
            .map(|shared| {
                let mut view = ConferenceView::clone(&shared);
                view.participants.retain(|p| p.live);
                self.with_names(view)
            })
            .collect()
    }

    /// Conferences in progress as kept, oldest first, without copying them: their participants
    /// include those who left ([`ConferenceView::live`] filters them), and their identities are
    /// RingCentral's ([`Roster::named`] names them).
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
            .map(|view| self.with_names(view))
    }

    /// One participant as known now, live or recently left.
    pub fn participant(&self, key: &ParticipantKey) -> Option<ParticipantView> {
        self.conferences
            .get(&key.conference)
            .and_then(|entry| entry.participant(&key.participant).cloned())
            .map(|mut participant| {
                participant.identity = self.named(&participant.identity);
                participant
            })
    }

    pub fn len(&self) -> usize {
        self.conferences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conferences.is_empty()
    }
}
