//! Discord's OpenAPI description (`tests/fixtures/discord/discord-openapi.json`): which routes
//! exist, and a small JSON-schema validator for request bodies.
//!
//! The validator supports what the description uses on request bodies: `$ref` (local
//! `#/components/schemas/…`), `type` (a name or a list, `"null"` included), `const`, `enum`,
//! `properties`, `required`, `additionalProperties` (`false` or a schema), `maxProperties`,
//! `items`, `minItems`, `maxItems`, `uniqueItems`, `oneOf`, `anyOf`, `allOf`, `minLength` and
//! `maxLength` (counted in chars), `minimum`, `maximum`, `format: "snowflake"` and the one
//! `pattern` the description puts on strings of digits. Other `pattern`s and formats
//! (`date-time`, `uri`, …) are not checked.
//!
//! Where the description and Discord's documented behaviour differ, the fake follows the docs
//! and says so here:
//! - `MessageCreateRequest.content` and `MessageEditRequestPartial.content` have
//!   `maxLength: 4000` in the description (the limit for users with Nitro); a bot's message
//!   content is limited to 2000 chars (docs, `resources/message`, for create and edit), so the
//!   fake uses 2000.
//! - A snowflake (`SnowflakeType`, a string of digits) is also accepted as a non-negative JSON
//!   integer: Discord reads ids either way, and its docs' upload example
//!   (`reference#uploading-files`) writes `"attachments": [{"id": 0, …}]`.
//! - Integers beyond what a JSON double holds exactly (`format: int64`, or a `maximum` above
//!   2^53, as on `default_member_permissions`) are also accepted as strings of digits, which is
//!   how Discord sends and accepts them (serenity serializes permissions that way).
//! - With `closed` (the fake's default), request objects that list `properties` and say nothing
//!   about `additionalProperties` are treated as `additionalProperties: false`. Discord ignores
//!   unknown fields, so a misspelt field would do nothing there without an error; the fake makes
//!   it one. An unknown field that is `null`, `false`, `[]` or `{}` is let through: serenity sends
//!   such fields (`autocomplete: false`, `options: []` on every command option) and Discord
//!   ignores them.

use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;

/// A template that matches a path: `(literal segments, template, parameters, method matches)`.
type Candidate<'a> = (usize, &'a str, Vec<(String, String)>, bool);

/// The loaded description.
pub struct Spec {
    doc: Value,
    /// `(method, template segments, template)`, in the description's order.
    routes: Vec<(String, Vec<String>, String)>,
}

/// Where a request landed in the description.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    /// The path template, such as `/channels/{channel_id}/messages`.
    pub template: String,
    /// The template's parameters, by name.
    pub params: Vec<(String, String)>,
}

impl RouteMatch {
    /// A path parameter's value.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no parameter {name} in {}", self.template))
    }

    /// A path parameter parsed as a snowflake (0 when it is not one).
    pub fn id(&self, name: &str) -> u64 {
        self.param(name).parse().unwrap_or(0)
    }
}

/// A `multipart/form-data` request body, split by [`Spec::multipart_body`].
pub struct MultipartBody<'a> {
    /// The schemas `payload_json` must meet.
    pub payload: Vec<&'a Value>,
    /// The names file parts may have.
    pub file_fields: Vec<&'a str>,
}

/// Why a route did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No template matches the path.
    UnknownPath,
    /// A template matches, but not with this method.
    MethodNotAllowed(String),
}

/// The first problem found in a body: where (JSON path, one element per key or index) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<String>,
    /// Discord's error code for it, such as `BASE_TYPE_MAX_LENGTH`.
    pub code: String,
    pub message: String,
}

impl Problem {
    pub fn at(path: &[String], code: &str, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_vec(),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// `a.b.0.c`, or `(body)` for the top level.
    pub fn dotted(&self) -> String {
        if self.path.is_empty() {
            "(body)".to_owned()
        } else {
            self.path.join(".")
        }
    }

    /// Discord's `errors` object for this problem: nested by path, `_errors` at the leaf.
    pub fn errors_json(&self) -> Value {
        let mut node = json!({"_errors": [{"code": self.code, "message": self.message}]});
        for key in self.path.iter().rev() {
            let mut map = Map::new();
            map.insert(key.clone(), node);
            node = Value::Object(map);
        }
        node
    }
}

const SCHEMAS: &str = "#/components/schemas/";
const SNOWFLAKE_PATTERN: &str = "^(0|[1-9][0-9]*)$";
/// Marks the message of a `type` mismatch.
const TYPE_MISMATCH: &str = "expected type";
/// The largest integer a JSON double holds exactly.
const MAX_SAFE: i128 = 9_007_199_254_740_991;

/// The description, loaded and adjusted once per test binary.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/discord/discord-openapi.json");
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Value = serde_json::from_slice(&bytes).expect("the OpenAPI description is JSON");
        Spec::new(doc)
    })
}

impl Spec {
    fn new(mut doc: Value) -> Spec {
        // See the module doc: a bot's content limit is 2000, not the description's 4000.
        for request in ["MessageCreateRequest", "MessageEditRequestPartial"] {
            doc["components"]["schemas"][request]["properties"]["content"]["maxLength"] =
                json!(2000);
        }
        let mut routes = Vec::new();
        let paths = doc["paths"].as_object().expect("the description has paths");
        for (template, item) in paths {
            let segments: Vec<String> = template
                .trim_start_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    routes.push((method.to_uppercase(), segments.clone(), template.clone()));
                }
            }
        }
        Spec { doc, routes }
    }

    /// The template for `method path` (`path` after `/api/v10`). Among templates that match, the
    /// one with the most literal segments wins (`/users/@me` over `/users/{user_id}`).
    pub fn route(&self, method: &str, path: &str) -> Result<RouteMatch, RouteError> {
        let given: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<Candidate<'_>> = None;
        for (m, segments, template) in &self.routes {
            if segments.len() != given.len() {
                continue;
            }
            let mut literal = 0;
            let mut params = Vec::new();
            let matched = segments.iter().zip(&given).all(|(s, g)| {
                if s.starts_with('{') && s.ends_with('}') {
                    params.push((s[1..s.len() - 1].to_owned(), (*g).to_owned()));
                    !g.is_empty()
                } else {
                    literal += 1;
                    s == g
                }
            });
            if !matched {
                continue;
            }
            let method_ok = m == method;
            let better = match &best {
                None => true,
                Some((l, _, _, ok)) => literal > *l || (literal == *l && method_ok && !ok),
            };
            if better {
                best = Some((literal, template, params, method_ok));
            }
        }
        match best {
            None => Err(RouteError::UnknownPath),
            Some((_, template, _, false)) => Err(RouteError::MethodNotAllowed(template.to_owned())),
            Some((_, template, params, true)) => Ok(RouteMatch {
                template: template.to_owned(),
                params,
            }),
        }
    }

    /// The operation object of `method template`.
    pub fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc["paths"][template].get(method.to_lowercase())
    }

    /// The operation's `application/json` request body schema, if it has one.
    pub fn body_schema(&self, method: &str, template: &str) -> Option<&Value> {
        self.operation(method, template)?
            .get("requestBody")?
            .get("content")?
            .get("application/json")?
            .get("schema")
    }

    /// The operation's `multipart/form-data` request body as Discord reads it (`multipart`): the
    /// branches of its `allOf` that describe file parts (every property a binary string:
    /// `files[0]`…`files[9]`) give the file part names, the others are what `payload_json` must
    /// meet. `None` when the operation takes no form.
    pub fn multipart_body(&self, method: &str, template: &str) -> Option<MultipartBody<'_>> {
        let schema = self
            .operation(method, template)?
            .get("requestBody")?
            .get("content")?
            .get("multipart/form-data")?
            .get("schema")?;
        let branches: Vec<&Value> = match schema.get("allOf").and_then(Value::as_array) {
            Some(all) => all.iter().collect(),
            None => vec![schema],
        };
        let mut body = MultipartBody {
            payload: Vec::new(),
            file_fields: Vec::new(),
        };
        for branch in branches {
            let files = branch
                .get("properties")
                .and_then(Value::as_object)
                .filter(|p| {
                    !p.is_empty() && p.values().all(|v| v["contentEncoding"] == json!("binary"))
                });
            match files {
                Some(props) => body.file_fields.extend(props.keys().map(String::as_str)),
                None => body.payload.push(branch),
            }
        }
        Some(body)
    }

    /// Validates a form's `payload_json` against every payload branch of `body`.
    pub fn validate_payload(
        &self,
        body: &MultipartBody<'_>,
        payload: &Value,
        closed: bool,
    ) -> Result<(), Problem> {
        body.payload
            .iter()
            .try_for_each(|schema| self.validate(schema, payload, closed))
    }

    /// Checks path parameters against their schemas (snowflakes must be digits).
    pub fn check_params(&self, route: &RouteMatch) -> Result<(), Problem> {
        let declared = self.doc["paths"][&route.template]["parameters"].as_array();
        for p in declared.into_iter().flatten() {
            let Some(name) = p["name"].as_str() else {
                continue;
            };
            if let Some((_, value)) = route.params.iter().find(|(n, _)| n == name) {
                let schema = &p["schema"];
                let as_json = Value::String(value.clone());
                self.check(schema, &as_json, &mut vec![name.to_owned()], false)?;
            }
        }
        Ok(())
    }

    /// Validates `body` against `schema`; `closed` as in the module doc.
    pub fn validate(&self, schema: &Value, body: &Value, closed: bool) -> Result<(), Problem> {
        self.check(schema, body, &mut Vec::new(), closed)
    }

    /// Validates the JSON body of `method template`. No JSON schema → no check.
    pub fn validate_body(
        &self,
        method: &str,
        template: &str,
        body: &Value,
        closed: bool,
    ) -> Result<(), Problem> {
        match self.body_schema(method, template) {
            Some(schema) => self.validate(schema, body, closed),
            None => Ok(()),
        }
    }

    fn resolve(&self, reference: &str) -> &Value {
        let name = reference
            .strip_prefix(SCHEMAS)
            .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        self.doc["components"]["schemas"]
            .get(name)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"))
    }

    fn check(
        &self,
        schema: &Value,
        v: &Value,
        path: &mut Vec<String>,
        closed: bool,
    ) -> Result<(), Problem> {
        let s = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => return Err(Problem::at(path, "BASE_TYPE_BAD", "Not allowed.")),
            Value::Object(s) => s,
            _ => return Ok(()),
        };
        if let Some(Value::String(r)) = s.get("$ref") {
            self.check(self.resolve(r), v, path, closed)?;
        }
        if let Some(t) = s.get("type") {
            self.check_type(s, t, v, path)?;
        }
        if let Some(c) = s.get("const") {
            if !same(c, v) {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_CHOICES",
                    format!("Value must be {c}."),
                ));
            }
        }
        if let Some(Value::Array(options)) = s.get("enum") {
            if !options.iter().any(|o| same(o, v)) {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_CHOICES",
                    format!("Value must be one of {}.", Value::Array(options.clone())),
                ));
            }
        }
        match v {
            Value::String(text) => self.check_string(s, text, path)?,
            Value::Number(_) => check_number(s, v, path)?,
            Value::Array(items) => self.check_array(s, items, path, closed)?,
            Value::Object(map) => self.check_object(s, map, path, closed)?,
            _ => {}
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, v, path, closed)?;
            }
        }
        // `oneOf` is checked as "at least one branch matches", like `anyOf`: Discord's description
        // has overlapping `oneOf` branches (e.g. `{"type":"null"}` next to a nullable schema, or
        // several component shapes a body fits at once), so "exactly one" would reject valid
        // bodies.
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = s.get(key) {
                let mut deepest: Option<Problem> = None;
                let mut ok = false;
                for branch in branches {
                    match self.check(branch, v, path, closed) {
                        Ok(()) => {
                            ok = true;
                            break;
                        }
                        Err(p) => {
                            // Report the branch that got furthest; a const or enum miss
                            // at the same depth is most likely just the wrong branch.
                            // A type mismatch means the branch did not apply at all.
                            let score = |p: &Problem| {
                                (
                                    p.path.len(),
                                    p.code != "BASE_TYPE_CHOICES",
                                    !p.message.contains(TYPE_MISMATCH),
                                )
                            };
                            if deepest.as_ref().is_none_or(|d| score(&p) > score(d)) {
                                deepest = Some(p);
                            }
                        }
                    }
                }
                if !ok {
                    return Err(deepest.unwrap_or_else(|| {
                        Problem::at(path, "BASE_TYPE_BAD", "Matches no allowed shape.")
                    }));
                }
            }
        }
        Ok(())
    }

    fn check_type(
        &self,
        s: &Map<String, Value>,
        t: &Value,
        v: &Value,
        path: &[String],
    ) -> Result<(), Problem> {
        let names: Vec<&str> = match t {
            Value::String(name) => vec![name.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(()),
        };
        let fits = names.iter().any(|name| match *name {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "number" => v.is_number(),
            "integer" => is_integer(v) || (big_integer(s) && digit_string(v).is_some()),
            "string" => v.is_string() || (snowflake_schema(s) && v.is_u64()),
            _ => true,
        });
        if fits {
            Ok(())
        } else {
            let (code, what) = match names.iter().find(|n| **n != "null") {
                Some(&"integer") | Some(&"number") => ("NUMBER_TYPE_COERCE", "a number"),
                Some(&"string") => ("BASE_TYPE_STRING", "a string"),
                Some(&"boolean") => ("BASE_TYPE_BOOLEAN", "a boolean"),
                Some(&"array") => ("BASE_TYPE_ARRAY", "an array"),
                Some(&"object") => ("DICT_TYPE_CONVERT", "an object"),
                _ => ("BASE_TYPE_REQUIRED", "null"),
            };
            Err(Problem::at(
                path,
                code,
                format!("Value {v} is not {what} ({TYPE_MISMATCH} {t})."),
            ))
        }
    }

    fn check_string(
        &self,
        s: &Map<String, Value>,
        text: &str,
        path: &[String],
    ) -> Result<(), Problem> {
        let chars = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if chars < min {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_MIN_LENGTH",
                    format!("Must be {min} or more in length."),
                ));
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if chars > max {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                ));
            }
        }
        if snowflake_schema(s) && !is_snowflake(text) {
            return Err(Problem::at(
                path,
                "NUMBER_TYPE_COERCE",
                format!("Value \"{text}\" is not snowflake."),
            ));
        }
        // An integer sent as a string of digits: its bounds still apply.
        if s.get("type").is_some_and(|t| mentions(t, "integer")) && big_integer(s) {
            if let Ok(n) = text.parse::<i128>() {
                check_bounds(s, n as f64, Some(n), path)?;
            }
        }
        Ok(())
    }

    fn check_array(
        &self,
        s: &Map<String, Value>,
        items: &[Value],
        path: &mut Vec<String>,
        closed: bool,
    ) -> Result<(), Problem> {
        let n = items.len() as u64;
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if n < min {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_MIN_LENGTH",
                    format!("Must be {min} or more in length."),
                ));
            }
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
            if n > max {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                ));
            }
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, a) in items.iter().enumerate() {
                if items[..i].iter().any(|b| same(a, b)) {
                    return Err(Problem::at(
                        path,
                        "SET_TYPE_ALREADY_CONTAINS_VALUE",
                        "The set already contains this value.",
                    ));
                }
            }
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                let r = self.check(item_schema, item, path, closed);
                path.pop();
                r?;
            }
        }
        Ok(())
    }

    fn check_object(
        &self,
        s: &Map<String, Value>,
        map: &Map<String, Value>,
        path: &mut Vec<String>,
        closed: bool,
    ) -> Result<(), Problem> {
        if let Some(Value::Array(required)) = s.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    path.push(name.to_owned());
                    let p = Problem::at(path, "BASE_TYPE_REQUIRED", "This field is required");
                    path.pop();
                    return Err(p);
                }
            }
        }
        if let Some(max) = s.get("maxProperties").and_then(Value::as_u64) {
            if map.len() as u64 > max {
                return Err(Problem::at(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must have {max} or fewer properties."),
                ));
            }
        }
        let properties = s.get("properties").and_then(Value::as_object);
        let additional = s.get("additionalProperties");
        for (key, value) in map {
            path.push(key.clone());
            let r = match (properties.and_then(|p| p.get(key)), additional) {
                (Some(prop), _) => self.check(prop, value, path, closed),
                (None, Some(Value::Bool(false))) => Err(Problem::at(
                    path,
                    "UNKNOWN_FIELD",
                    format!("Unknown field \"{key}\"."),
                )),
                (None, Some(extra)) => self.check(extra, value, path, closed),
                (None, None) if closed && properties.is_some() && !empty(value) => {
                    Err(Problem::at(
                        path,
                        "UNKNOWN_FIELD",
                        format!(
                            "Unknown field \"{key}\" (the fake treats request objects as closed)."
                        ),
                    ))
                }
                (None, None) => Ok(()),
            };
            path.pop();
            r?;
        }
        Ok(())
    }
}

fn check_number(s: &Map<String, Value>, v: &Value, path: &[String]) -> Result<(), Problem> {
    let exact = v
        .as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from));
    let float = v.as_f64().unwrap_or(0.0);
    check_bounds(s, float, exact, path)
}

fn check_bounds(
    s: &Map<String, Value>,
    float: f64,
    exact: Option<i128>,
    path: &[String],
) -> Result<(), Problem> {
    let below = |bound: &Value| match (exact, as_i128(bound)) {
        (Some(n), Some(b)) => n < b,
        _ => float < bound.as_f64().unwrap_or(f64::MIN),
    };
    let above = |bound: &Value| match (exact, as_i128(bound)) {
        (Some(n), Some(b)) => n > b,
        _ => float > bound.as_f64().unwrap_or(f64::MAX),
    };
    if let Some(min) = s.get("minimum") {
        if below(min) {
            return Err(Problem::at(
                path,
                "NUMBER_TYPE_MIN",
                format!("Value should be greater than or equal to {min}."),
            ));
        }
    }
    if let Some(max) = s.get("maximum") {
        if above(max) {
            return Err(Problem::at(
                path,
                "NUMBER_TYPE_MAX",
                format!("Value should be less than or equal to {max}."),
            ));
        }
    }
    Ok(())
}

fn as_i128(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

fn is_integer(v: &Value) -> bool {
    v.is_i64()
        || v.is_u64()
        || v.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

/// An integer schema whose values may exceed a double: Discord accepts them as digit strings.
fn big_integer(s: &Map<String, Value>) -> bool {
    s.get("format").and_then(Value::as_str) == Some("int64")
        || s.get("maximum")
            .and_then(as_i128)
            .is_some_and(|m| m > MAX_SAFE)
}

fn digit_string(v: &Value) -> Option<i128> {
    let text = v.as_str()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// `null`, `false`, `[]` or `{}`: an unknown field that asks for nothing, which Discord ignores
/// and serenity sends (every command option carries `autocomplete: false`, `options: []`,
/// `choices: []`, `channel_types: []`, `min_value: null`, whatever its type).
fn empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn mentions(t: &Value, name: &str) -> bool {
    match t {
        Value::String(s) => s == name,
        Value::Array(list) => list.iter().any(|x| x.as_str() == Some(name)),
        _ => false,
    }
}

fn snowflake_schema(s: &Map<String, Value>) -> bool {
    s.get("format").and_then(Value::as_str) == Some("snowflake")
        || s.get("pattern").and_then(Value::as_str) == Some(SNOWFLAKE_PATTERN)
}

fn is_snowflake(text: &str) -> bool {
    text == "0"
        || (!text.is_empty()
            && !text.starts_with('0')
            && text.bytes().all(|b| b.is_ascii_digit())
            && text.len() <= 20)
}

/// JSON equality where `1` and `1.0` are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (as_i128(a), as_i128(b)) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}
