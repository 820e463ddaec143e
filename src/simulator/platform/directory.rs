//! Extension info (`docs/ringcentral.md` §12.2): `GET /restapi/v1.0/account/{account}/extension/{id}`
//! (Light), answered for the extensions the platform knows — the JWT user's own (`~`), the
//! directory entries a test registered, and the people of scripted conferences who have an
//! extension id — with RingCentral's shape: `id` a JSON number, `name`, `contact{firstName,
//! lastName}`, `extensionNumber`, `type`, `status`. Unknown ids answer 404 `CMN-102`; an app
//! without ReadAccounts gets 403 `CMN-401` ([`PlatformOptions::extensions_permitted`]).
//!
//! [`PlatformOptions::extensions_permitted`]: super::PlatformOptions::extensions_permitted

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{Inner, Shared, api_error};

/// What the platform knows of one extension.
struct Known {
    /// Empty when the extension has no name (an `Unassigned` one, or a person scripted
    /// without a name and not registered in the directory).
    name: String,
    number: Option<String>,
}

/// A registered directory name first, then a scripted person's own name.
fn lookup(inner: &Inner, owner_id: &str, id: &str) -> Option<Known> {
    if let Some(name) = inner.directory.get(id) {
        return Some(Known {
            name: name.clone(),
            number: None,
        });
    }
    for entry in &inner.conferences {
        let script = &entry.script;
        let people = std::iter::once(script.host())
            .chain(script.callers().map(|caller| script.caller(caller)));
        for person in people {
            if person.extension_id.as_deref() == Some(id) {
                let number = (!person.number.starts_with('+')).then(|| person.number.clone());
                return Some(Known {
                    name: person.name.clone(),
                    number,
                });
            }
        }
    }
    (id == owner_id).then(|| Known {
        name: "Simulator Owner".to_owned(),
        number: Some("101".to_owned()),
    })
}

fn record(id: &str, known: &Known) -> Value {
    // RingCentral writes the id as a number; the fake only knows digit ids.
    let numeric: Value = id
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id));
    let mut body = json!({
        "id": numeric,
        "uri": format!("/restapi/v1.0/account/~/extension/{id}"),
        "type": "User",
        "status": if known.name.is_empty() { "Unassigned" } else { "Enabled" },
    });
    if !known.name.is_empty() {
        body["name"] = json!(known.name);
        let (first, last) = known
            .name
            .split_once(' ')
            .unwrap_or((known.name.as_str(), ""));
        body["contact"] = json!({"firstName": first, "lastName": last});
    }
    if let Some(number) = &known.number {
        body["extensionNumber"] = json!(number);
    }
    body
}

/// `GET /restapi/v1.0/account/{account}/extension/{extension}` (`~` is the token's owner).
pub(crate) async fn get_extension(
    State(shared): State<Arc<Shared>>,
    Path((_account, extension)): Path<(String, String)>,
) -> Response {
    if !shared.options.extensions_permitted {
        return api_error(
            StatusCode::FORBIDDEN,
            "CMN-401",
            "In order to call this API endpoint, application needs to have [ReadAccounts] permission",
        );
    }
    let owner_id = shared.options.owner_id.as_str();
    let id = if extension == "~" {
        owner_id
    } else {
        extension.as_str()
    };
    let found = lookup(&shared.lock(), owner_id, id);
    match found {
        Some(known) => Json(record(id, &known)).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            "CMN-102",
            "Resource for parameter [extensionId] is not found",
        ),
    }
}
