//! Request fields of the Cinder dialect: wrapped JSON bodies, strings,
//! sizes, booleans, metadata, and list queries (filters, `sort`,
//! `marker`/`limit` paging with a `next` link).

use super::views::Link;
use super::Ctx;
use crate::error::{ApiError, Result};
use crate::meta;
use engine::ObjectInfo;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest name, metadata key or value.
pub const MAX_FIELD: usize = 255;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 65_535;
/// Most items one page holds.
pub const MAX_LIMIT: usize = 1000;

/// The object under `key` of the JSON body (400 when missing).
pub fn wrapped(ctx: &Ctx, key: &str) -> Result<Map<String, Value>> {
    match ctx.req.json_body()? {
        Some(Value::Object(mut m)) => match m.remove(key) {
            Some(Value::Object(inner)) => Ok(inner),
            _ => Err(ApiError::bad_request(format!(
                "Missing required element '{key}' in request body."
            ))),
        },
        _ => Err(ApiError::bad_request(format!(
            "Missing required element '{key}' in request body."
        ))),
    }
}

/// An optional string (absent or null is `None`), at most `max` bytes.
pub fn opt_string(m: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value is too long (at most {max})."
        ))),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value is not a string."
        ))),
    }
}

/// A size in GB: a positive integer or a string of one.
pub fn parse_gb(v: &Value, key: &str) -> Result<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    let max_gb = engine::MAX_VOLUME_SIZE / meta::GIB;
    match n {
        Some(n) if n > 0 && n <= max_gb => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {v}. It must be an integer from 1 to {max_gb}."
        ))),
    }
}

/// A boolean as OpenStack's strict `bool_from_string` takes it.
pub fn parse_bool(v: &Value, key: &str) -> Result<bool> {
    let s = match v {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => other.to_string(),
    };
    match s.as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {v}. It is not a boolean."
        ))),
    }
}

/// User metadata: an object of strings (keys 1 to 255 bytes, values at
/// most 255).
pub fn parse_metadata(v: Option<&Value>) -> Result<Option<BTreeMap<String, String>>> {
    let m = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute metadata. It must be an object.",
            ))
        }
    };
    match meta::check_user_metadata(m, MAX_FIELD) {
        Ok(out) => Ok(Some(out)),
        Err(meta::BadMetadata::Key(k)) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute metadata. Key '{}' must be 1 to {MAX_FIELD} characters.",
            k.escape_debug()
        ))),
        Err(meta::BadMetadata::Value(k)) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute metadata. The value of '{}' must be a string of at most {MAX_FIELD} characters.",
            k.escape_debug()
        ))),
    }
}

/// A sort key and direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub key: String,
    pub descending: bool,
}

/// `?sort=k1:asc,k2` or `?sort_key=&sort_dir=`; the default is newest
/// first, as Cinder. Unknown keys or directions are 400.
pub fn sort_keys(ctx: &Ctx, known: &[&str]) -> Result<Vec<SortKey>> {
    let mut out = Vec::new();
    let parse_dir = |d: &str| match d.to_ascii_lowercase().as_str() {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(ApiError::bad_request(format!(
            "Invalid sort direction: {}",
            other.escape_debug()
        ))),
    };
    if let Some(s) = ctx.req.query_param("sort").filter(|s| !s.is_empty()) {
        for part in s.split(',') {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            out.push(SortKey {
                key: k.trim().to_string(),
                descending: parse_dir(d.trim())?,
            });
        }
    } else if let Some(k) = ctx.req.query_param("sort_key").filter(|s| !s.is_empty()) {
        let d = ctx.req.query_param("sort_dir").unwrap_or("desc");
        out.push(SortKey {
            key: k.to_string(),
            descending: parse_dir(d)?,
        });
    }
    for k in &out {
        if !known.contains(&k.key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: Invalid sort key {}",
                k.key.escape_debug()
            )));
        }
    }
    if out.is_empty() {
        out.push(SortKey {
            key: "created_at".into(),
            descending: true,
        });
    }
    Ok(out)
}

/// `?limit=` (positive integer, capped at [`MAX_LIMIT`]).
pub fn limit(ctx: &Ctx) -> Result<usize> {
    match ctx.req.query_param("limit") {
        None | Some("") => Ok(MAX_LIMIT),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
            _ => Err(ApiError::bad_request(
                "Invalid input received: limit must be a non-negative integer",
            )),
        },
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `items` (already filtered and sorted) cut after `?marker=` (an id in
/// the list, else 404 as Cinder's MarkerNotFound), then `?offset=` more
/// skipped, to `?limit=` items; the `*_links` next link whenever the page
/// is full (as Cinder: a last full page links to an empty one).
pub fn page<'a>(
    ctx: &Ctx,
    items: &'a [ObjectInfo],
    collection: &str,
) -> Result<(&'a [ObjectInfo], Option<Vec<Link>>)> {
    let start = match ctx.req.query_param("marker").filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|o| o.id.to_string() == m)
                .ok_or_else(|| {
                    ApiError::not_found(format!("Marker {} could not be found.", m.escape_debug()))
                })?
                + 1
        }
    };
    let offset = match ctx.req.query_param("offset") {
        None | Some("") => 0,
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            ApiError::bad_request("Invalid input received: offset must be a non-negative integer")
        })?,
    };
    let start = start.saturating_add(offset).min(items.len());
    let limit = limit(ctx)?;
    let end = start.saturating_add(limit).min(items.len());
    let slice = &items[start..end];
    let next = (!slice.is_empty() && slice.len() == limit).then(|| {
        let last = slice[slice.len() - 1].id;
        let mut q: Vec<String> = ctx
            .req
            .query
            .iter()
            .filter(|(k, _)| k != "marker" && k != "offset")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        q.push(format!("marker={last}"));
        vec![Link::new(
            "next",
            format!("{}/{collection}?{}", ctx.base(), q.join("&")),
        )]
    });
    Ok((slice, next))
}

/// A spec map of a volume type (`extra_specs`, `what` = "extra spec") or a
/// group type (`group_specs`, "group spec"): an object whose keys are 1
/// to 255 characters and whose values are strings of at most 255; absent
/// or null is empty.
pub fn spec_map(v: Option<&Value>, what: &str, field: &str) -> Result<BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => meta::check_user_metadata(m, MAX_FIELD).map_err(|e| match e {
            meta::BadMetadata::Key(k) => ApiError::bad_request(format!(
                "Invalid input received: {what} key '{}' must be 1 to {MAX_FIELD} characters.",
                k.escape_debug()
            )),
            meta::BadMetadata::Value(k) => ApiError::bad_request(format!(
                "Invalid input received: {what} '{}' must be a string of at most {MAX_FIELD} characters.",
                k.escape_debug()
            )),
        }),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input received: {field} must be an object."
        ))),
    }
}

/// The body of `PUT …/{field}/{key}`: exactly one spec, named `key`,
/// checked as [`spec_map`] checks it.
pub fn one_spec(ctx: &Ctx, key: &str, what: &str, field: &str) -> Result<BTreeMap<String, String>> {
    let b = match ctx.req.json_body()? {
        Some(Value::Object(m)) => m,
        _ => return Err(ApiError::bad_request("Malformed request body")),
    };
    if b.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    if !b.contains_key(key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    spec_map(Some(&Value::Object(b)), what, field)
}
