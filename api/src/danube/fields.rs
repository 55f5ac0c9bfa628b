//! Request data and its validation. GET takes its parameters from the
//! query string, other methods from a JSON object body (an empty body is
//! no parameters). Every field error is a 400 FAILURE naming the field, as
//! Danube's serializers answered; a body that is not JSON is a 400
//! `detail`, a non-JSON Content-Type 415.

use super::{DResult, Fail};
use serde_json::{Map, Value};
use warp::http::Method;

/// Longest image or snapshot name.
pub const MAX_NAME: usize = 32;
/// Longest alias.
pub const MAX_ALIAS: usize = 32;
/// Longest version.
pub const MAX_VERSION: usize = 16;
/// Longest description.
pub const MAX_DESC: usize = 128;
/// Longest snapshot note.
pub const MAX_NOTE: usize = 128;
/// Most tags, and longest tag.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG: usize = 64;
/// Longest URL.
pub const MAX_URL: usize = 2048;

/// The request's parameters.
pub(crate) struct Data(pub Map<String, Value>);

impl Data {
    /// The parameters of `req`.
    pub fn of(req: &crate::http::Request) -> DResult<Data> {
        if req.method == Method::GET {
            let m = req
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            return Ok(Data(m));
        }
        match req.json_body()? {
            None => Ok(Data(Map::new())),
            Some(Value::Object(m)) => Ok(Data(m)),
            Some(_) => Err(Fail::detail(
                400,
                "Invalid data. Expected a dictionary (a JSON object).",
            )),
        }
    }

    /// The value of `key`, absent or null being `None`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// An optional string of at most `max` characters.
    pub fn string(&self, key: &str, max: usize) -> DResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => {
                if s.chars().any(char::is_control) {
                    Err(Fail::invalid(key, "Control characters are not allowed."))
                } else {
                    Ok(Some(s.clone()))
                }
            }
            Some(Value::String(_)) => Err(Fail::invalid(
                key,
                format!("Ensure this field has no more than {max} characters."),
            )),
            Some(_) => Err(Fail::invalid(key, "Not a valid string.")),
        }
    }

    /// An optional boolean (JSON bool, or "true"/"false"/"1"/"0"...).
    pub fn boolean(&self, key: &str) -> DResult<Option<bool>> {
        let s = match self.get(key) {
            None => return Ok(None),
            Some(Value::Bool(b)) => return Ok(Some(*b)),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
            Some(_) => String::new(),
        };
        match s.as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(Fail::invalid(key, "Must be a valid boolean.")),
        }
    }

    /// An optional integer (JSON integer or a string of one).
    pub fn integer(&self, key: &str) -> DResult<Option<i64>> {
        let bad = || Fail::invalid(key, "A valid integer is required.");
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// Optional tags: an array of at most [`MAX_TAGS`] non-empty strings.
    pub fn tags(&self, key: &str) -> DResult<Option<Vec<String>>> {
        let bad = || {
            Fail::invalid(
                key,
                format!(
                    "Expected a list of at most {MAX_TAGS} strings of 1 to {MAX_TAG} characters."
                ),
            )
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) if a.len() <= MAX_TAGS => a
                .iter()
                .map(|v| match v {
                    Value::String(s)
                        if !s.is_empty()
                            && s.chars().count() <= MAX_TAG
                            && !s.chars().any(char::is_control) =>
                    {
                        Ok(s.clone())
                    }
                    _ => Err(bad()),
                })
                .collect::<DResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }
}

/// Checks an image or snapshot name: `^[A-Za-z0-9][A-Za-z0-9._-]*$`, at
/// most 32 characters, and not a UUID (engine ids and names share one
/// namespace). Such names never contain `/` or `..` at their start, so
/// they are safe anywhere.
pub fn check_name(field: &str, name: &str) -> DResult<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !first_ok || !rest_ok {
        return Err(Fail::invalid(
            field,
            "Enter a valid value consisting of letters, numbers, dots, underscores or hyphens, \
             starting with a letter or number.",
        ));
    }
    if name.len() > MAX_NAME {
        return Err(Fail::invalid(
            field,
            format!("Ensure this field has no more than {MAX_NAME} characters."),
        ));
    }
    if name.parse::<engine::ObjectId>().is_ok() {
        return Err(Fail::invalid(field, "A name cannot be a UUID."));
    }
    Ok(())
}

/// Checks an access value: 1 public, 3 private, 4 deleted.
pub fn check_access(v: i64) -> DResult<i64> {
    match v {
        super::ACCESS_PUBLIC | super::ACCESS_PRIVATE | super::ACCESS_DELETED => Ok(v),
        _ => Err(Fail::invalid(
            "access",
            format!("\"{v}\" is not a valid choice (1 public, 3 private, 4 deleted)."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "base64-18.04",
            "A_b.c",
            "x1234567890123456789012345678901",
        ] {
            assert!(check_name("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".hidden",
            "..",
            "../etc",
            "a/b",
            "a b",
            "é",
            "x12345678901234567890123456789012",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values() {
        let d = Data(
            serde_json::json!({"b": "yes", "n": "12", "x": [1], "t": ["a", "b"], "s": "é"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(d.boolean("b").ok().flatten(), Some(true));
        assert_eq!(d.integer("n").ok().flatten(), Some(12));
        assert!(d.integer("x").is_err());
        assert!(d.boolean("x").is_err());
        assert_eq!(d.tags("t").ok().flatten().map(|v| v.len()), Some(2));
        assert!(d.tags("n").is_err());
        assert!(d.string("s", 1).is_ok());
        assert!(d.string("n", 1).is_err());
        assert!(check_access(2).is_err());
    }
}
