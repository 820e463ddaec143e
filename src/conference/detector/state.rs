//! The detector's durable state, row by row: one row per party, per conference and per link
//! (an original party and the participant it became). [`Detector::take_changes`] hands over the
//! rows changed since the last call, so a commit writes what its notifications touched, never
//! the whole state; [`Detector::from_rows`] rebuilds the detector from every row at start.

use super::{Conference, Detector, DetectorConfig, PartyTrack, Unsaved};
use crate::conference::ids::{ConferenceId, IdError, ParticipantKey, PartyId};

/// What a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowKind {
    /// A party of any session: its high-water mark, status and (while it can still matter) its
    /// caller.
    Party,
    /// A conference with its parties and participants (left ones included, until forgotten).
    Conference,
    /// An original party → the conference participant it became.
    Link,
}

impl RowKind {
    pub const ALL: [RowKind; 3] = [RowKind::Party, RowKind::Conference, RowKind::Link];

    /// The name the store keeps the row under.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Party => "party",
            RowKind::Conference => "conference",
            RowKind::Link => "link",
        }
    }

    pub fn parse(text: &str) -> Option<RowKind> {
        RowKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One changed row: its body as JSON, or `None` when the row is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub kind: RowKind,
    pub key: String,
    pub body: Option<String>,
}

/// A stored row that cannot be restored.
#[derive(Debug, thiserror::Error)]
#[error("the stored {kind} row {key:?} cannot be read: {reason}")]
pub struct RowError {
    kind: &'static str,
    key: String,
    reason: String,
}

impl Detector {
    /// Whether any row changed since the last [`Detector::take_changes`].
    pub fn has_changes(&self) -> bool {
        let Unsaved {
            parties,
            conferences,
            links,
        } = &self.unsaved;
        !(parties.is_empty() && conferences.is_empty() && links.is_empty())
    }

    /// The rows changed since the last call, and forgets that they changed. Serializing a row
    /// cannot fail for these types; if it ever did, nothing is forgotten and the error is
    /// answered, so the caller keeps its inbox rows unprocessed for a replay.
    pub fn take_changes(&mut self) -> Result<Vec<StateRow>, serde_json::Error> {
        let Unsaved {
            parties,
            conferences,
            links,
        } = &self.unsaved;
        let mut rows = Vec::with_capacity(parties.len() + conferences.len() + links.len());
        for id in parties {
            rows.push(row(RowKind::Party, id.as_str(), self.parties.get(id))?);
        }
        for id in conferences {
            rows.push(row(
                RowKind::Conference,
                id.as_str(),
                self.conferences.get(id),
            )?);
        }
        for id in links {
            rows.push(row(RowKind::Link, id.as_str(), self.links.get(id))?);
        }
        self.unsaved = Unsaved::default();
        Ok(rows)
    }

    /// Every row of the whole state (to move a state kept in one piece by an older ringside
    /// into rows). Forgets what changed: these rows hold it.
    pub fn all_rows(&mut self) -> Result<Vec<StateRow>, serde_json::Error> {
        self.unsaved = Unsaved {
            parties: self.parties.keys().cloned().collect(),
            conferences: self.conferences.keys().cloned().collect(),
            links: self.links.keys().cloned().collect(),
        };
        self.take_changes()
    }

    /// The detector the rows describe, under the current settings. Every conference is marked
    /// for the roster, nothing for saving.
    pub fn from_rows(
        config: DetectorConfig,
        rows: impl IntoIterator<Item = (RowKind, String, String)>,
    ) -> Result<Detector, RowError> {
        let mut detector = Detector::new(config);
        for (kind, key, body) in rows {
            let failed = |reason: String| RowError {
                kind: kind.as_str(),
                key: key.clone(),
                reason,
            };
            let json = |error: serde_json::Error| failed(error.to_string());
            let id = |error: IdError| failed(format!("its key {error}"));
            match kind {
                RowKind::Party => {
                    let track: PartyTrack = serde_json::from_str(&body).map_err(json)?;
                    detector
                        .parties
                        .insert(PartyId::parse(&key).map_err(id)?, track);
                }
                RowKind::Conference => {
                    let conference: Conference = serde_json::from_str(&body).map_err(json)?;
                    let key = ConferenceId::parse(&key).map_err(id)?;
                    detector.conferences.insert(key, conference);
                }
                RowKind::Link => {
                    let link: ParticipantKey = serde_json::from_str(&body).map_err(json)?;
                    detector
                        .links
                        .insert(PartyId::parse(&key).map_err(id)?, link);
                }
            }
        }
        detector.dirty = detector.conferences.keys().cloned().collect();
        Ok(detector)
    }
}

fn row<T: serde::Serialize>(
    kind: RowKind,
    key: &str,
    value: Option<&T>,
) -> Result<StateRow, serde_json::Error> {
    Ok(StateRow {
        kind,
        key: key.to_owned(),
        body: value.map(serde_json::to_string).transpose()?,
    })
}
