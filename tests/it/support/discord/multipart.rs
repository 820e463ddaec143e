//! `multipart/form-data` bodies (RFC 7578) as Discord takes file uploads (its docs,
//! `reference#uploading-files`): a `payload_json` part carrying the JSON fields, and one
//! `files[n]` part per file, each with a `filename` and a `Content-Type`; `attachments[].id = n`
//! describes `files[n]`.
//!
//! The parser is small and bounded: the body is at most [`UPLOAD_LIMIT`] bytes (the caller
//! refuses larger ones before parsing), at most [`MAX_PARTS`] parts, each with at most
//! [`MAX_HEADER_BYTES`] of headers. What it finds is judged by [`read_upload`] (the parts) and
//! [`check_attachments`] (the `attachments` entries against the file parts).

use super::openapi::Problem;
use serde_json::Value;

/// Discord's default upload limit for a bot's request, files and payload together (25 MiB); a
/// larger body is answered 413 / 40005 Request entity too large.
pub const UPLOAD_LIMIT: usize = 25 * 1024 * 1024;
/// Discord takes at most 10 files per message.
pub const MAX_FILES: usize = 10;
/// More parts than a message upload can use (`payload_json` and 10 files), with room for the
/// violations the fake should still name; beyond it the body is malformed.
const MAX_PARTS: usize = 64;
/// A part's headers (`Content-Disposition`, `Content-Type`) are short; this bounds the search
/// for their end.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `name` of its `Content-Disposition`, such as `payload_json` or `files[0]`.
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// A message upload: the `payload_json` fields and the file parts, in the body's order.
#[derive(Debug, Clone)]
pub struct Upload {
    pub payload: Value,
    pub files: Vec<Part>,
}

/// Whether a `Content-Type` announces a form.
pub fn is_multipart(content_type: &str) -> bool {
    media_type(content_type).eq_ignore_ascii_case("multipart/form-data")
}

fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// The `boundary` parameter of a `multipart/form-data` `Content-Type`.
pub fn boundary(content_type: &str) -> Result<String, String> {
    if !is_multipart(content_type) {
        return Err(format!("{content_type:?} is not multipart/form-data"));
    }
    let value = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim())
        .ok_or("no boundary parameter")?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    // RFC 2046 `bchars`; a space only inside.
    let legal = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if value.is_empty()
        || value.len() > MAX_BOUNDARY
        || value.ends_with(' ')
        || !value.chars().all(legal)
    {
        return Err(format!(
            "boundary {value:?} is not 1 to 70 legal characters"
        ));
    }
    Ok(value.to_owned())
}

/// Splits `body` into its parts: `--boundary` opens each part, `--boundary--` closes the form.
/// A preamble before the first boundary and an epilogue after the last are ignored (RFC 2046).
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n{dash}");
    let mut rest = match body.strip_prefix(dash.as_bytes()) {
        Some(rest) => rest,
        None => {
            let at = find(body, delimiter.as_bytes()).ok_or("no opening boundary")?;
            &body[at + delimiter.len()..]
        }
    };
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (spaces and tabs) may follow a boundary, then CRLF.
        let padding = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        rest = rest[padding..]
            .strip_prefix(b"\r\n")
            .ok_or("a boundary is not followed by CRLF (or the closing `--` is missing)")?;
        if parts.len() == MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} parts"));
        }
        let (head, after) = if let Some(after) = rest.strip_prefix(b"\r\n") {
            (&rest[..0], after)
        } else {
            let window = &rest[..rest.len().min(MAX_HEADER_BYTES + 4)];
            let end = find(window, b"\r\n\r\n").ok_or_else(|| {
                format!("a part's headers do not end (CRLF CRLF) within {MAX_HEADER_BYTES} bytes")
            })?;
            (&rest[..end], &rest[end + 4..])
        };
        let end = find(after, delimiter.as_bytes())
            .ok_or("a part is not followed by a boundary (the body is cut short)")?;
        parts.push(part(head, after[..end].to_vec())?);
        rest = &after[end + delimiter.len()..];
    }
}

fn part(head: &[u8], data: Vec<u8>) -> Result<Part, String> {
    let head = std::str::from_utf8(head).map_err(|_| "a part's headers are not UTF-8")?;
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("part header {line:?} has no colon"))?;
        if name.is_empty() || name.starts_with([' ', '\t']) {
            return Err(format!("part header {line:?} is folded or has no name"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value);
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    let disposition = disposition.ok_or("a part without Content-Disposition")?;
    let (kind, params) = disposition_params(disposition)?;
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(format!(
            "a part's Content-Disposition is {kind:?}, not form-data"
        ));
    }
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let name = param("name")
        .or_else(|| param("name*"))
        .ok_or("a part's Content-Disposition has no name")?;
    Ok(Part {
        name,
        filename: param("filename").or_else(|| param("filename*")),
        content_type,
        data,
    })
}

/// `form-data; name="a"; filename="b.png"` → `("form-data", [("name", "a"), …])`. Values are
/// tokens or quoted strings (backslash escapes); an extended `name*=utf-8''…` value (RFC 5987,
/// which reqwest writes for names it must percent-encode) is decoded.
fn disposition_params(value: &str) -> Result<(String, Vec<(String, String)>), String> {
    let malformed = || format!("Content-Disposition {value:?} is malformed");
    let (kind, mut rest) = value.split_once(';').unwrap_or((value, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=').ok_or_else(malformed)?;
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let (mut text, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => text.push(chars.next().ok_or_else(malformed)?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => text.push(c),
                }
            }
            let end = end.ok_or_else(malformed)?;
            (text, &quoted[end..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim_end().to_owned(), &after[end..])
        };
        if key.ends_with('*') {
            text = extended_value(&text).ok_or_else(malformed)?;
        }
        params.push((key, text));
        rest = remaining.trim_start();
        rest = match rest.strip_prefix(';') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(malformed()),
        };
    }
    Ok((kind.trim().to_owned(), params))
}

/// RFC 5987 `utf-8''percent%20encoded` → its text.
fn extended_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let mut bytes = Vec::new();
    let mut raw = encoded.bytes();
    while let Some(b) = raw.next() {
        if b == b'%' {
            let hex = [raw.next()?, raw.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `files[3]` → 3.
pub fn file_index(name: &str) -> Option<u64> {
    name.strip_prefix("files[")?.strip_suffix(']')?.parse().ok()
}

/// Reads a message upload by Discord's rules: exactly one `payload_json` part, JSON; file parts
/// only under the names `file_fields` lists (`files[0]`…`files[9]`, from the description), each
/// once, with a `filename` and a `Content-Type`; at most [`MAX_FILES`]; no other parts (Discord
/// reads the fields from `payload_json`, so a field sent as its own part would be lost).
pub fn read_upload(
    content_type: &str,
    body: &[u8],
    file_fields: &[&str],
) -> Result<Upload, Problem> {
    let malformed = |why: String| {
        Problem::at(
            &[],
            "BASE_TYPE_BAD",
            format!("Malformed multipart body: {why}."),
        )
    };
    let parts = boundary(content_type)
        .and_then(|b| parse(body, &b))
        .map_err(malformed)?;
    let file_parts = parts
        .iter()
        .filter(|p| p.name.starts_with("files["))
        .count();
    if file_parts > MAX_FILES {
        return Err(Problem::at(
            &["files".to_owned()],
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_FILES} or fewer in length ({file_parts} file parts)."),
        ));
    }
    let mut payload = None;
    let mut files: Vec<Part> = Vec::new();
    for part in parts {
        let at = [part.name.clone()];
        let seen = (part.name == "payload_json" && payload.is_some())
            || files.iter().any(|f| f.name == part.name);
        if seen {
            return Err(Problem::at(&at, "BASE_TYPE_BAD", "The part appears twice."));
        }
        if part.name == "payload_json" {
            let json = serde_json::from_slice(&part.data).map_err(|e| {
                Problem::at(
                    &at,
                    "BASE_TYPE_BAD",
                    format!("payload_json is not JSON: {e}."),
                )
            })?;
            payload = Some(json);
        } else if file_fields.contains(&part.name.as_str()) {
            if part.filename.as_deref().is_none_or(str::is_empty) {
                return Err(Problem::at(
                    &at,
                    "BASE_TYPE_REQUIRED",
                    "A file part needs a filename in its Content-Disposition.",
                ));
            }
            if part.content_type.as_deref().is_none_or(str::is_empty) {
                return Err(Problem::at(
                    &at,
                    "BASE_TYPE_REQUIRED",
                    "A file part needs a Content-Type.",
                ));
            }
            files.push(part);
        } else {
            return Err(Problem::at(
                &at,
                "UNKNOWN_FIELD",
                format!(
                    "Unknown part \"{}\": the fields go in payload_json, the files in {}.",
                    part.name,
                    file_fields.join(", ")
                ),
            ));
        }
    }
    let payload = payload.ok_or_else(|| {
        Problem::at(
            &["payload_json".to_owned()],
            "BASE_TYPE_REQUIRED",
            "This field is required",
        )
    })?;
    Ok(Upload { payload, files })
}

/// The `id` of an `attachments` entry: Discord takes it as a number or a string of digits.
pub fn attachment_id(entry: &Value) -> Option<u64> {
    match &entry["id"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// When `payload` lists `attachments`, every file part is described by an entry whose `id` is
/// its `n`, and every entry names an uploaded file, unless `may_keep`: an edit's entries may
/// instead name attachments the message already has (checked against it by the caller).
pub fn check_attachments(payload: &Value, files: &[Part], may_keep: bool) -> Result<(), Problem> {
    let Some(entries) = payload.get("attachments").and_then(Value::as_array) else {
        return Ok(());
    };
    let uploaded: Vec<u64> = files.iter().filter_map(|f| file_index(&f.name)).collect();
    for (i, entry) in entries.iter().enumerate() {
        let names_a_file = attachment_id(entry).is_some_and(|id| uploaded.contains(&id));
        if !names_a_file && !may_keep {
            return Err(Problem::at(
                &["attachments".to_owned(), i.to_string(), "id".to_owned()],
                "BASE_TYPE_BAD",
                format!("Attachment id {} names no files[n] part.", entry["id"]),
            ));
        }
    }
    for file in files {
        let described = file_index(&file.name)
            .is_some_and(|n| entries.iter().any(|e| attachment_id(e) == Some(n)));
        if !described {
            return Err(Problem::at(
                &["attachments".to_owned()],
                "BASE_TYPE_BAD",
                format!("No attachments entry describes the part {}.", file.name),
            ));
        }
    }
    Ok(())
}
