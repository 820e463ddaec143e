//! Account presence (reference §5.2): hosts of live conferences with their conference legs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{Shared, api_error, form_decode};

/// `GET /restapi/v1.0/account/{account}/presence[?detailedTelephonyState=true]`.
pub(crate) async fn account_presence(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if !shared.options.presence_permitted {
        return api_error(
            StatusCode::FORBIDDEN,
            "CMN-408",
            "In order to call this API endpoint, application needs to have [ReadPresence] permission",
        );
    }
    let detailed = form_decode(query.as_deref().unwrap_or(""))
        .get("detailedTelephonyState")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));

    let inner = shared.lock();
    // Host extension id → (extension number, active calls).
    let mut hosts: BTreeMap<String, (String, Vec<Value>)> = BTreeMap::new();
    for entry in &inner.conferences {
        let script = &entry.script;
        let conference = script.conference_id();
        let host_party = script.host_party_id();
        // Derived from the notifications: the host party is on the conference session.
        if !inner.sessions.is_live(conference)
            || !inner.sessions.party_is_on(conference, host_party)
        {
            continue;
        }
        let host = script.host();
        let extension = host.extension_id.clone().unwrap_or_default();
        let number = if host.number.starts_with('+') {
            host.number[host.number.len().saturating_sub(3)..].to_owned()
        } else {
            host.number.clone()
        };
        let calls = &mut hosts.entry(extension).or_insert((number, Vec::new())).1;
        calls.push(json!({
            "id": format!("call-{host_party}"),
            "direction": "Outbound",
            "from": host.number,
            "fromName": host.name,
            "to": "conference",
            "toName": "Conference",
            "startTime": inner.sessions.creation_time(conference),
            "telephonyStatus": "CallConnected",
            "sessionId": "0",
            "telephonySessionId": conference,
            "partyId": host_party,
        }));
    }
    let records: Vec<Value> = hosts
        .into_iter()
        .map(|(extension, (number, calls))| {
            let mut record = json!({
                "extension": {"id": extension, "extensionNumber": number},
                "presenceStatus": "Busy",
                "telephonyStatus": "CallConnected",
                "userStatus": "Available",
                "dndStatus": "TakeAllCalls",
            });
            if detailed {
                record["activeCalls"] = Value::Array(calls);
            }
            record
        })
        .collect();
    let total = records.len();
    Json(json!({
        "records": records,
        "paging": {"page": 1, "perPage": 100, "pageStart": 0, "pageEnd": total.saturating_sub(1), "totalElements": total},
    }))
    .into_response()
}
