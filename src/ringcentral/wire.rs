//! RingCentral's wire model: the JSON RingCentral sends to the webhook and answers on REST calls.
//!
//! Lenient on purpose (`docs/ringcentral.md` §0.1, §9): every enum-like field is open (known variants plus
//! `Other(String)`, compared case-insensitively), every field is optional, unknown fields are
//! ignored and ids are opaque strings. What ringside *requires* of a notification is checked
//! later, in [`crate::conference::input`], so that an unusable notification can be quarantined
//! instead of refused (a 4xx gets the subscription blacklisted).
//!
//! Ids are opaque strings, but RingCentral writes some of them as JSON numbers (`ownerId`,
//! `accountId` and `extensionId` in several event kinds and REST answers): every id field takes
//! a string or a number ([`lenient_id`]), so a number never turns a notification into a 400.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Deserializing ids written as a JSON string or a JSON number (kept as its decimal text).
pub mod lenient_id {
    use serde::Deserializer;
    use serde::de::{self, Visitor};
    use std::fmt;

    struct IdVisitor;

    impl<'de> Visitor<'de> for IdVisitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an id (a string or a number)")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(Some(value.to_owned()))
        }

        fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
            Ok(Some(value))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            Ok(Some(value.to_string()))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            Ok(Some(value.to_string()))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            Ok(Some(value.to_string()))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_any(IdVisitor)
        }
    }

    /// An optional id: a string, a number, or `null`.
    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }

    /// A required id: a string or a number.
    pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        option(deserializer)?.ok_or_else(|| de::Error::custom("an id is null"))
    }
}

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
    /// `status.code` of a party (`docs/ringcentral.md` §1.5). The guide spells two codes differently from
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
    /// `status.reason` (`docs/ringcentral.md` §1.5): only the values ringside acts on are named.
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
    /// `origin.type` of a session (`docs/ringcentral.md` §1.6).
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

/// The webhook envelope (`docs/ringcentral.md` §1.2). `body` stays raw until the kind is known.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub uuid: String,
    pub event: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub subscription_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub owner_id: Option<String>,
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// The envelope with its body left unparsed, borrowed from the request: what the one decode of a
/// notification ([`crate::pipeline::decode`]) reads first, so that the body is parsed once, as
/// the type its `event` names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawEnvelope<'a> {
    pub uuid: String,
    pub event: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(borrow)]
    pub body: &'a serde_json::value::RawValue,
}

/// A telephony-session notification (the envelope with its body typed).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyNotification {
    pub uuid: String,
    pub event: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub subscription_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub owner_id: Option<String>,
    pub body: TelephonyBody,
}

/// `body` of a telephony-session notification (`docs/ringcentral.md` §1.3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyBody {
    /// Kept as raw JSON: its range is checked when the notification is validated, so that a
    /// negative or fractional value quarantines the notification instead of failing the parse.
    #[serde(default)]
    pub sequence: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub telephony_session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub server_id: Option<String>,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub parties: Vec<Party>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub extension_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(rename = "type", default)]
    pub kind: Option<OriginType>,
}

/// A party, as notifications and REST session reads carry it (`docs/ringcentral.md` §1.4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
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
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub extension_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub device_id: Option<String>,
}

/// The deprecated `owner` of a REST `CallParty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub extension_id: Option<String>,
}

/// `status` of a party (`docs/ringcentral.md` §1.5).
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
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub telephony_session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
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

/// A `GET /telephony/sessions/{id}` answer (`CallSessionObject`, `docs/ringcentral.md` §5.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSession {
    #[serde(default, deserialize_with = "lenient_id::option")]
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

/// The answer to `POST /telephony/conference` (`docs/ringcentral.md` §2.1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceCreated {
    pub session: CallSession,
}

/// What kind of notification an envelope's `event` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// `/restapi/v1.0/account/…/telephony/sessions` (account or extension filter).
    TelephonySessions,
    /// The subscription renewal reminder (`/restapi/v1.0/subscription/…`).
    SubscriptionReminder,
    /// Anything else: acknowledged and ignored.
    Other,
}

impl NotificationKind {
    /// Classifies by `event`. With an account-level filter the event names an extension
    /// (`docs/ringcentral.md` §0.4), so telephony events are recognised by their path, not an exact match.
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

// ----- REST shapes of the platform API ringside calls (`docs/ringcentral.md` §3–§6) -----------------------

open_enum!(
    /// `status` of a subscription. `Suspended` appears in specs up to early 2024.
    SubscriptionStatus {
        Active => "Active",
        Blacklisted => "Blacklisted",
        Suspended => "Suspended",
    }
);

/// `POST /restapi/oauth/token` answer (`TokenInfo`, `docs/ringcentral.md` §4.1). Its `Debug` hides the
/// tokens.
#[derive(Clone, Default, Deserialize)]
pub struct TokenInfo {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds the access token lives; RingCentral's value is used as given.
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_token_expires_in: Option<u64>,
    /// Space-separated app permissions.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub owner_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub endpoint_id: Option<String>,
}

/// `deliveryMode` of a webhook subscription. Its `Debug` hides the verification token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Sent on create only; RingCentral never returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_token: Option<String>,
}

impl std::fmt::Debug for TokenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInfo")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("owner_id", &self.owner_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeliveryMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryMode")
            .field("transport_type", &self.transport_type)
            .field("address", &self.address)
            .field(
                "verification_token",
                &self.verification_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// `POST /restapi/v1.0/subscription` body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubscription {
    pub event_filters: Vec<String>,
    pub delivery_mode: DeliveryMode,
    pub expires_in: u32,
}

/// A filter RingCentral did not enable (a missing app permission, usually).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisabledFilter {
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistedData {
    #[serde(default)]
    pub blacklisted_at: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `SubscriptionInfo` (`docs/ringcentral.md` §3.1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionInfo {
    #[serde(deserialize_with = "lenient_id::required")]
    pub id: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub event_filters: Vec<String>,
    #[serde(default)]
    pub disabled_filters: Vec<DisabledFilter>,
    #[serde(default)]
    pub expiration_time: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub status: Option<SubscriptionStatus>,
    #[serde(default)]
    pub creation_time: Option<String>,
    #[serde(default)]
    pub delivery_mode: Option<DeliveryMode>,
    #[serde(default)]
    pub blacklisted_data: Option<BlacklistedData>,
}

/// `GET /restapi/v1.0/subscription` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscriptionList {
    #[serde(default)]
    pub records: Vec<SubscriptionInfo>,
}

/// One call in a presence record's `activeCalls` (`docs/ringcentral.md` §5.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveCall {
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub telephony_session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub party_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub telephony_status: Option<String>,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub to_name: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_name: Option<String>,
}

impl ActiveCall {
    /// Conference legs show `to: "conference"` (`docs/ringcentral.md` §5.2).
    pub fn is_conference_leg(&self) -> bool {
        self.to
            .as_deref()
            .is_some_and(|to| to.eq_ignore_ascii_case("conference"))
    }
}

/// The extension a presence record describes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceExtension {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub extension_number: Option<String>,
}

/// One extension's presence with `detailedTelephonyState=true`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceRecord {
    #[serde(default)]
    pub extension: Option<PresenceExtension>,
    #[serde(default)]
    pub telephony_status: Option<String>,
    #[serde(default)]
    pub active_calls: Vec<ActiveCall>,
}

/// `GET /restapi/v1.0/account/~/presence` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PresenceList {
    #[serde(default)]
    pub records: Vec<PresenceRecord>,
}

/// `GET /restapi/v1.0/account/~/extension/{extensionId}` answer (`docs/ringcentral.md` §12.2):
/// `id` is a JSON number there; a queue or IVR has a `name` and no `contact` names; an
/// `Unassigned` extension may have no name at all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRecord {
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub contact: Option<ExtensionContact>,
    #[serde(default, deserialize_with = "lenient_id::option")]
    pub extension_number: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionContact {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

/// The longest name ringside takes from the directory, in characters: longer ones are cut, so
/// a strange record cannot blow up a line or a card.
pub const MAX_DIRECTORY_NAME_CHARS: usize = 100;

impl ExtensionRecord {
    /// The name to show (`docs/ringcentral.md` §12.5): `name`, else the contact's first and last
    /// name, else `ext <extensionNumber>`, else none. Blank parts count as absent.
    pub fn display_name(&self) -> Option<String> {
        let present = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let contact = self.contact.as_ref().and_then(|contact| {
            let parts: Vec<String> = [&contact.first_name, &contact.last_name]
                .into_iter()
                .filter_map(present)
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        present(&self.name)
            .or(contact)
            .or_else(|| present(&self.extension_number).map(|number| format!("ext {number}")))
            .map(|name| name.chars().take(MAX_DIRECTORY_NAME_CHARS).collect())
    }
}

/// A RingCentral error body (`docs/ringcentral.md` §5.1, errors guide). OAuth errors use `error` /
/// `error_description` instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
    #[serde(default, rename = "error")]
    pub oauth_error: Option<String>,
    #[serde(default, rename = "error_description")]
    pub oauth_error_description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorItem {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub parameter_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_written_as_numbers_read_as_their_decimal_text() {
        let notification: TelephonyNotification = serde_json::from_value(json!({
            "uuid": "u-1", "event": "/restapi/v1.0/account/37439510/telephony/sessions",
            "subscriptionId": "sub-1", "ownerId": 400131508008u64,
            "body": {
                "sequence": 3, "sessionId": 1234, "telephonySessionId": "s-1",
                "accountId": 37439510, "extensionId": 400131508008u64,
                "parties": [{
                    "id": "p-1", "accountId": 37439510, "extensionId": 400131508008u64,
                    "to": {"phoneNumber": "+16505550100", "extensionId": 101, "deviceId": 802},
                    "status": {"code": "Gone", "reason": "Conference",
                               "peerId": {"sessionId": 55, "telephonySessionId": "s-2", "partyId": "p-2"}}
                }]
            }
        }))
        .expect("numbers are ids too");
        assert_eq!(notification.owner_id.as_deref(), Some("400131508008"));
        let body = &notification.body;
        assert_eq!(body.session_id.as_deref(), Some("1234"));
        assert_eq!(body.account_id.as_deref(), Some("37439510"));
        assert_eq!(body.extension_id.as_deref(), Some("400131508008"));
        let party = &body.parties[0];
        assert_eq!(party.extension_id.as_deref(), Some("400131508008"));
        let to = party.to.as_ref().unwrap();
        assert_eq!(to.extension_id.as_deref(), Some("101"));
        assert_eq!(to.device_id.as_deref(), Some("802"));
        let peer = party.status.as_ref().unwrap().peer_id.as_ref().unwrap();
        assert_eq!(peer.session_id.as_deref(), Some("55"));

        // The envelope the webhook reads first, and a REST session read.
        let envelope: Envelope = serde_json::from_value(json!({
            "uuid": "u-1", "event": "/x", "ownerId": 7, "subscriptionId": 8, "body": {}
        }))
        .unwrap();
        assert_eq!(envelope.owner_id.as_deref(), Some("7"));
        assert_eq!(envelope.subscription_id.as_deref(), Some("8"));
        let session: CallSession = serde_json::from_value(json!({
            "id": 99, "parties": [{"id": 5, "owner": {"accountId": 1, "extensionId": 2}}]
        }))
        .unwrap();
        assert_eq!(session.id.as_deref(), Some("99"));
        assert_eq!(session.parties[0].id.as_deref(), Some("5"));
        let subscription: SubscriptionInfo = serde_json::from_value(json!({"id": 12})).unwrap();
        assert_eq!(subscription.id, "12");
        // Null is absent; other shapes are still errors.
        let party: Party = serde_json::from_value(json!({"id": null})).unwrap();
        assert_eq!(party.id, None);
        assert!(serde_json::from_value::<Party>(json!({"id": {"nested": 1}})).is_err());
    }

    #[test]
    fn an_extension_is_shown_by_name_else_first_and_last_else_its_number_else_not_at_all() {
        let read = |value: serde_json::Value| {
            serde_json::from_value::<ExtensionRecord>(value)
                .expect("an extension record")
                .display_name()
        };
        let full = read(json!({
            "id": 62288, "name": "Dana Whitfield", "extensionNumber": "288",
            "contact": {"firstName": "Dana", "lastName": "W."}
        }));
        assert_eq!(full.as_deref(), Some("Dana Whitfield"), "name wins");
        let contact = read(
            json!({"id": 1, "name": " ", "contact": {"firstName": "Dana", "lastName": "Whitfield"}}),
        );
        assert_eq!(contact.as_deref(), Some("Dana Whitfield"));
        let first_only = read(json!({"id": 1, "contact": {"firstName": "Dana"}}));
        assert_eq!(first_only.as_deref(), Some("Dana"));
        let number = read(json!({"id": 1, "extensionNumber": "101", "contact": {}}));
        assert_eq!(number.as_deref(), Some("ext 101"));
        let unassigned = read(json!({"id": 1, "status": "Unassigned"}));
        assert_eq!(unassigned, None);
        let record: ExtensionRecord =
            serde_json::from_value(json!({"id": 400131508008u64})).unwrap();
        assert_eq!(
            record.id.as_deref(),
            Some("400131508008"),
            "the number id is normalised"
        );
        let long = read(json!({"name": "x".repeat(500)}));
        assert_eq!(
            long.map(|name| name.chars().count()),
            Some(MAX_DIRECTORY_NAME_CHARS)
        );
    }
}
