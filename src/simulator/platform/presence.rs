//! Presence (`docs/ringcentral.md` §5.2): hosts of live conferences with their conference legs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{Inner, Shared, api_error, form_decode};

fn forbidden() -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        "CMN-408",
        "In order to call this API endpoint, application needs to have [ReadPresence] permission",
    )
}

fn detailed(query: Option<&str>) -> bool {
    form_decode(query.unwrap_or(""))
        .get("detailedTelephonyState")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// Presence records of every host on a live conference, by extension id.
fn host_records(inner: &Inner, detailed: bool) -> BTreeMap<String, Value> {
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
    hosts
        .into_iter()
        .map(|(extension, (number, calls))| {
            let record = presence_record(&extension, Some(&number), calls, detailed);
            (extension, record)
        })
        .collect()
}

fn presence_record(
    extension: &str,
    number: Option<&str>,
    calls: Vec<Value>,
    detailed: bool,
) -> Value {
    let on_call = !calls.is_empty();
    let mut record = json!({
        "extension": {"id": extension},
        "presenceStatus": if on_call { "Busy" } else { "Available" },
        "telephonyStatus": if on_call { "CallConnected" } else { "NoCall" },
        "userStatus": "Available",
        "dndStatus": "TakeAllCalls",
    });
    if let Some(number) = number {
        record["extension"]["extensionNumber"] = json!(number);
    }
    if detailed {
        record["activeCalls"] = Value::Array(calls);
    }
    record
}

/// `GET /restapi/v1.0/account/{account}/presence[?detailedTelephonyState=true]` (Heavy).
pub(crate) async fn account_presence(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if !shared.options.presence_permitted {
        return forbidden();
    }
    let records: Vec<Value> = host_records(&shared.lock(), detailed(query.as_deref()))
        .into_values()
        .collect();
    let total = records.len();
    Json(json!({
        "records": records,
        "paging": {"page": 1, "perPage": 100, "pageStart": 0, "pageEnd": total.saturating_sub(1), "totalElements": total},
    }))
    .into_response()
}

/// `GET /restapi/v1.0/account/{account}/extension/{extension}/presence` (Light): one
/// extension's presence (`~` is the token's owner); `NoCall` when not hosting a live conference.
pub(crate) async fn extension_presence(
    State(shared): State<Arc<Shared>>,
    Path((_account, extension)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    if !shared.options.presence_permitted {
        return forbidden();
    }
    let extension = if extension == "~" {
        shared.options.owner_id.clone()
    } else {
        extension
    };
    let detailed = detailed(query.as_deref());
    let record = host_records(&shared.lock(), detailed)
        .remove(&extension)
        .unwrap_or_else(|| presence_record(&extension, None, Vec::new(), detailed));
    Json(record).into_response()
}
