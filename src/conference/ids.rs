//! Domain values the detector works with: ids that can only be built valid, times, identities.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest id ringside accepts from RingCentral; real ids are well under 100 characters.
pub const MAX_ID_LEN: usize = 256;

/// Why a value from the wire is not a usable id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("contains control characters")]
    Control,
}

macro_rules! opaque_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Accepts any opaque id RingCentral could send: non-empty, bounded, printable.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                if value.is_empty() {
                    return Err(IdError::Empty);
                }
                if value.len() > MAX_ID_LEN {
                    return Err(IdError::TooLong);
                }
                if value.chars().any(char::is_control) {
                    return Err(IdError::Control);
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// A `telephonySessionId`: an original call's session or a conference session.
    SessionId
);
opaque_id!(
    /// A party `id`; globally unique across sessions.
    PartyId
);
opaque_id!(
    /// A conference, keyed by its conference session's `telephonySessionId`.
    ConferenceId
);
opaque_id!(
    /// A participant, keyed by its conference-side party id (the id a kick needs).
    ParticipantId
);

impl From<&SessionId> for ConferenceId {
    fn from(id: &SessionId) -> Self {
        Self(id.0.clone())
    }
}

impl From<&ConferenceId> for SessionId {
    fn from(id: &ConferenceId) -> Self {
        Self(id.0.clone())
    }
}

impl From<&PartyId> for ParticipantId {
    fn from(id: &PartyId) -> Self {
        Self(id.0.clone())
    }
}

impl From<&ParticipantId> for PartyId {
    fn from(id: &ParticipantId) -> Self {
        Self(id.0.clone())
    }
}

/// One participant of one conference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParticipantKey {
    pub conference: ConferenceId,
    pub participant: ParticipantId,
}

/// A moment as milliseconds since the Unix epoch. The detector never reads a clock: every
/// `Timestamp` it sees came in with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses RFC 3339 (`2024-02-27T16:04:52.223Z`), as RingCentral sends `eventTime`.
    pub fn parse_rfc3339(value: &str) -> Option<Self> {
        let parsed =
            time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
                .ok()?;
        i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }

    pub fn from_offset_date_time(value: time::OffsetDateTime) -> Self {
        Self(i64::try_from(value.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
    }

    /// RFC 3339 with milliseconds and `Z`, the shape RingCentral uses.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(at) => {
                let format = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                at.format(&format).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Seconds from `earlier` to `self`, rounded to the nearest second (0 if `earlier` is
    /// later).
    pub fn secs_since(self, earlier: Timestamp) -> i64 {
        (self.0.saturating_sub(earlier.0))
            .max(0)
            .saturating_add(500)
            / 1000
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Who a party is, as far as RingCentral told us. Every part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub extension_id: Option<String>,
}

impl Identity {
    /// An identity from borrowed parts (the tests' shorthand).
    #[cfg(test)]
    pub(crate) fn of(
        name: Option<&str>,
        number: Option<&str>,
        extension: Option<&str>,
    ) -> Identity {
        Identity {
            name: name.map(str::to_owned),
            phone_number: number.map(str::to_owned),
            extension_id: extension.map(str::to_owned),
        }
    }

    pub fn is_unknown(&self) -> bool {
        self.name.is_none() && self.phone_number.is_none() && self.extension_id.is_none()
    }

    /// Whether two identities name the same line (same number or same extension).
    pub fn same_line(&self, other: &Identity) -> bool {
        let same =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a == b);
        same(&self.phone_number, &other.phone_number)
            || same(&self.extension_id, &other.extension_id)
    }

    /// `self`, with the parts it lacks taken from `fallback`.
    pub fn or(self, fallback: &Identity) -> Identity {
        Identity {
            name: self.name.or_else(|| fallback.name.clone()),
            phone_number: self.phone_number.or_else(|| fallback.phone_number.clone()),
            extension_id: self.extension_id.or_else(|| fallback.extension_id.clone()),
        }
    }
}

/// Who asked for a kick (a Discord member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The member's Discord user id.
    pub id: String,
    /// How to name them in an announcement.
    pub display: String,
}
