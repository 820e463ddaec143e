//! RingCentral's wire model: the JSON RingCentral sends to the webhook and answers on REST calls.
//!
//! Lenient on purpose (reference §0.1, §9): every enum-like field is open (known variants plus
//! `Other(String)`, compared case-insensitively), every field is optional, unknown fields are
//! ignored and ids are opaque strings. What ringside *requires* of a notification is checked
//! later, in [`crate::conference::input`], so that an unusable notification can be quarantined
//! instead of refused (a 4xx gets the subscription blacklisted).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares an open enum: known variants matched case-insensitively, anything else kept verbatim.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($variant,)+
            /// A value this version of ringside does not know; kept as sent.
            Other(String),
        }

        impl $name {
            /// Parses a wire value; never fails.
            pub fn parse(value: &str) -> Self {
                $(
                    if value.eq_ignore_ascii_case($text) $(|| value.eq_ignore_ascii_case($alias))* {
                        return Self::$variant;
                    }
                )+
                Self::Other(value.to_owned())
            }

            /// The value as RingCentral spells it (or as it was received, for `Other`).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(value) => value,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Ok(Self::parse(&value))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

open_enum!(
    /// `status.code` of a party (reference §1.5). The guide spells two codes differently from
    /// the spec (`Voicemail`, `VMScreening`); both spellings are accepted.
    StatusCode {
        Setup => "Setup",
        Proceeding => "Proceeding",
        Answered => "Answered",
        Disconnected => "Disconnected",
        Gone => "Gone",
        Parked => "Parked",
        Hold => "Hold",
        VoiceMail => "VoiceMail" | "Voicemail",
        FaxReceive => "FaxReceive",
        Tds => "Tds",
        VoiceMailScreening => "VoiceMailScreening" | "VMScreening",
    }
);

open_enum!(
    /// `status.reason` (reference §1.5): only the values ringside acts on are named.
    StatusReason {
        Conference => "Conference",
        AttendedTransfer => "AttendedTransfer",
        BlindTransfer => "BlindTransfer",
        Supervising => "Supervising",
        Pickup => "Pickup",
        CallSwitch => "CallSwitch",
        Undefined => "Undefined",
    }
);

open_enum!(
    /// `origin.type` of a session (reference §1.6).
    OriginType {
        Call => "Call",
        RingOut => "RingOut",
        RingMe => "RingMe",
        Conference => "Conference",
        GreetingsRecording => "GreetingsRecording",
        VerificationCall => "VerificationCall",
        Zoom => "Zoom",
        CallOut => "CallOut",
        TestCall => "TestCall",
    }
);

open_enum!(
    /// `direction` of a party, seen from RingCentral.
    Direction {
        Inbound => "Inbound",
        Outbound => "Outbound",
    }
);

open_enum!(
    /// `conferenceRole` of a party in a server-side conference.
    ConferenceRole {
        Host => "Host",
        Participant => "Participant",
    }
);

/// The webhook envelope (reference §1.2). `body` stays raw until the kind is known.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub uuid: String,
    pub event: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// A telephony-session notification (the envelope with its body typed).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyNotification {
    pub uuid: String,
    pub event: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    pub body: TelephonyBody,
}

/// `body` of a telephony-session notification (reference §1.3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyBody {
    /// Kept as raw JSON: its range is checked when the notification is validated, so that a
    /// negative or fractional value quarantines the notification instead of failing the parse.
    #[serde(default)]
    pub sequence: Option<serde_json::Value>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub telephony_session_id: Option<String>,
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub parties: Vec<Party>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub extension_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(rename = "type", default)]
    pub kind: Option<OriginType>,
}

/// A party, as notifications and REST session reads carry it (reference §1.4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub extension_id: Option<String>,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub to: Option<Endpoint>,
    #[serde(default)]
    pub from: Option<Endpoint>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub missed_call: Option<bool>,
    #[serde(default)]
    pub stand_alone: Option<bool>,
    #[serde(default)]
    pub muted: Option<bool>,
    #[serde(default)]
    pub conference_role: Option<ConferenceRole>,
    #[serde(default)]
    pub owner: Option<Owner>,
}

/// `to` / `from` of a party.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub extension_id: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
}

/// The deprecated `owner` of a REST `CallParty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub extension_id: Option<String>,
}

/// `status` of a party (reference §1.5).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub code: Option<StatusCode>,
    #[serde(default)]
    pub reason: Option<StatusReason>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub peer_id: Option<PeerId>,
    #[serde(default)]
    pub rcc: Option<bool>,
    #[serde(default)]
    pub mobile_pickup_data: Option<MobilePickupData>,
}

/// `status.peerId`: the linked session and party.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerId {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub telephony_session_id: Option<String>,
    #[serde(default)]
    pub party_id: Option<String>,
}

/// `status.mobilePickupData`; the spec spells `srvlvl`, real payloads `srvLvl`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobilePickupData {
    #[serde(default)]
    pub cc_mailboxes: Vec<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default, alias = "srvlvl")]
    pub srv_lvl: Option<String>,
    #[serde(default)]
    pub srv_lvl_ext: Option<String>,
}

/// A `GET /telephony/sessions/{id}` answer (`CallSessionObject`, reference §5.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSession {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub parties: Vec<Party>,
    #[serde(default)]
    pub creation_time: Option<String>,
    #[serde(default)]
    pub voice_call_token: Option<String>,
}

/// The answer to `POST /telephony/conference` (reference §2.1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceCreated {
    pub session: CallSession,
}

/// What kind of notification an envelope's `event` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `/restapi/v1.0/account/…/telephony/sessions` (account or extension filter).
    TelephonySessions,
    /// The subscription renewal reminder (`/restapi/v1.0/subscription/…`).
    SubscriptionReminder,
    /// Anything else: acknowledged and ignored.
    Other,
}

impl EventKind {
    /// Classifies by `event`. With an account-level filter the event names an extension
    /// (reference §0.4), so telephony events are recognised by their path, not an exact match.
    pub fn of(event: &str) -> Self {
        let path = event.split('?').next().unwrap_or(event);
        if path.starts_with("/restapi/v1.0/account/") && path.ends_with("/telephony/sessions") {
            Self::TelephonySessions
        } else if path.starts_with("/restapi/v1.0/subscription/") {
            Self::SubscriptionReminder
        } else {
            Self::Other
        }
    }
}
