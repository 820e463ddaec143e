//! Lossless raw values: what a setting was written as, before it is checked.
//!
//! A TOML file has types (`client_id = 123` is a number), environment
//! variables do not (everything is text). So that both work the same way, every
//! setting is first read as text: a [`Scalar`] accepts a string, a number or a
//! boolean and keeps its text exactly (`"0123"` stays `"0123"`); a [`List`]
//! accepts a TOML array or a text list such as `[123, "456"]`. Turning the text
//! into the real type, with an error naming the key, is the job of `validate`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// One value, as text.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Scalar(pub(super) String);

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        // `{:?}` keeps the fraction (`1000.0`), so a float never passes for a
        // whole number by accident.
        Ok(Scalar(format!("{v:?}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }

    /// TOML dates and times arrive as a one-entry table under a private key;
    /// they are kept as the text they were written as. Other tables are not
    /// values.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        const TOML_DATETIME: &str = "$__toml_private_datetime";
        let unexpected = || de::Error::invalid_type(de::Unexpected::Map, &ScalarVisitor);
        match map.next_key::<String>()? {
            Some(key) if key == TOML_DATETIME => {
                let text = map.next_value::<String>()?;
                match map.next_key::<String>()? {
                    None => Ok(Scalar(text)),
                    Some(_) => Err(unexpected()),
                }
            }
            _ => Err(unexpected()),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A list of values, as text.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct List(pub(super) Vec<Scalar>);

struct ListVisitor;

impl ListVisitor {
    fn from_text<E: de::Error>(text: &str) -> Result<List, E> {
        parse_list(text)
            .map(|items| List(items.into_iter().map(Scalar).collect()))
            .map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for ListVisitor {
    type Value = List;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list such as [\"a\", \"b\"]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Scalar>()? {
            items.push(item);
        }
        Ok(List(items))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<List, E> {
        Self::from_text(v)
    }

    // A lone value (`kick_roles = 123`) is a list of one.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<List, E> {
        Ok(List(vec![ScalarVisitor.visit_bool(v)?]))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<List, E> {
        Ok(List(vec![ScalarVisitor.visit_i64(v)?]))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<List, E> {
        Ok(List(vec![ScalarVisitor.visit_i128(v)?]))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<List, E> {
        Ok(List(vec![ScalarVisitor.visit_u64(v)?]))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<List, E> {
        Ok(List(vec![ScalarVisitor.visit_u128(v)?]))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<List, E> {
        Ok(List(vec![ScalarVisitor.visit_f64(v)?]))
    }
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ListVisitor)
    }
}

impl Serialize for List {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in &self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

/// Splits a list written as text, as an environment variable holds it.
///
/// Accepted forms: `[a, b]`, `["a", "b"]`, `['a', 'b']`, `a,b` and `a`; an
/// empty text or `[]` is an empty list. Unquoted items are trimmed; quoted
/// items are kept exactly (`\"` and `\\` escape inside double quotes), so an
/// item containing a comma must be quoted. A trailing comma is allowed.
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim();
    let inner = match trimmed.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or("the list starts with [ but does not end with ]")?,
        None => trimmed,
    };

    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let item = if first == '"' || first == '\'' {
            chars.next();
            let mut item = String::new();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    c if c == first => {
                        closed = true;
                        break;
                    }
                    '\\' if first == '"' => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => item.push(escaped),
                        Some(other) => {
                            item.push('\\');
                            item.push(other);
                        }
                        None => break,
                    },
                    c => item.push(c),
                }
            }
            if !closed {
                return Err(format!("a list item starting with {first} is not closed"));
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err("a quoted list item must be followed by a comma".into()),
            }
            item
        } else {
            let mut item = String::new();
            while let Some(c) = chars.next_if(|&c| c != ',') {
                item.push(c);
            }
            let item = item.trim_end().to_owned();
            if item.is_empty() {
                return Err("the list has an empty item (two commas in a row?)".into());
            }
            item
        };
        items.push(item);
        // Skip the separator, if any; a trailing comma ends the loop above.
        chars.next();
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    fn ok(text: &str) -> Vec<String> {
        parse_list(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn list_text_forms() {
        assert_eq!(ok(""), Vec::<String>::new());
        assert_eq!(ok("[]"), Vec::<String>::new());
        assert_eq!(ok(" [ ] "), Vec::<String>::new());
        assert_eq!(ok("[123,456]"), ["123", "456"]);
        assert_eq!(ok(r#"["123","456"]"#), ["123", "456"]);
        assert_eq!(ok("['123', '456',]"), ["123", "456"]);
        assert_eq!(ok("123, 456"), ["123", "456"]);
        assert_eq!(ok("0101"), ["0101"]);
        assert_eq!(ok(r#"[" a,b ", "x\"y\\z"]"#), [" a,b ", r#"x"y\z"#]);
        assert_eq!(
            ok("[/restapi/v1.0/account/~/telephony/sessions]"),
            ["/restapi/v1.0/account/~/telephony/sessions"]
        );
    }

    #[test]
    fn list_text_errors() {
        assert!(parse_list("[1,2").is_err());
        assert!(parse_list("[1,,2]").is_err());
        assert!(parse_list(r#"["1"x]"#).is_err());
        assert!(parse_list(r#"["1"#).is_err());
    }
}
