//! Operation parameters, as Deltacloud (Sinatra) took them: the query
//! string merged with a body that is `application/x-www-form-urlencoded`,
//! `multipart/form-data` (parsed with multer), or, for convenience, a flat
//! JSON object or a flat XML element (`<storage_volume><capacity>2</capacity></storage_volume>`,
//! read with quick-xml). Body values win over query values. Any other body
//! type is 415; a malformed body is 400.
//!
//! Values are checked here for what every parameter shares (bounded
//! length, no control characters); handlers validate meaning.

use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{is_json_media_type, parse_query, Request};
use quick_xml::events::Event;
use serde_json::Value;
use std::collections::BTreeMap;

/// Most parameters one request may carry.
const MAX_PARAMS: usize = 64;
/// Longest parameter name.
const MAX_NAME: usize = 64;
/// Longest value of most parameters.
pub(crate) const MAX_FIELD: usize = 255;
/// Longest description.
pub(crate) const MAX_DESCRIPTION: usize = 65_535;
/// Deepest XML body accepted (root and its children).
const MAX_XML_DEPTH: usize = 2;

/// Parameters by name (the first occurrence of a name in each source).
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: BTreeMap<String, String>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

impl Params {
    /// The parameters of `req` (query, then body over it); `format` is
    /// the response format, not a parameter.
    pub fn of(req: &Request) -> Result<Params> {
        let mut p = Params::default();
        for (k, v) in &req.query {
            if k != "format" {
                p.add_query(k, v)?;
            }
        }
        let body = body_params(req)?;
        if body.len() > MAX_PARAMS {
            return Err(bad("Too many parameters"));
        }
        for (k, v) in body {
            check_name(&k)?;
            p.map.insert(k, v);
        }
        Ok(p)
    }

    fn add_query(&mut self, k: &str, v: &str) -> Result<()> {
        check_name(k)?;
        if self.map.len() >= MAX_PARAMS {
            return Err(bad("Too many parameters"));
        }
        self.map
            .entry(k.to_string())
            .or_insert_with(|| v.to_string());
        Ok(())
    }

    /// An optional text parameter of at most `max` bytes without control
    /// characters; an empty value is absent.
    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>> {
        let Some(v) = self.map.get(name) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(None);
        }
        if v.len() > max {
            return Err(bad(format!(
                "Parameter {name} is longer than {max} characters"
            )));
        }
        // Descriptions may hold line breaks; nothing else may hold controls.
        let allowed = |c: char| max == MAX_DESCRIPTION && (c == '\n' || c == '\r' || c == '\t');
        if v.chars().any(|c| c.is_control() && !allowed(c)) {
            return Err(bad(format!("Parameter {name} holds control characters")));
        }
        Ok(Some(v.clone()))
    }

    /// A required text parameter (400 when missing or empty).
    pub fn required(&self, name: &str, max: usize) -> Result<String> {
        self.text(name, max)?
            .ok_or_else(|| bad(format!("Parameter {name} is required")))
    }
}

fn check_name(k: &str) -> Result<()> {
    if k.is_empty() || k.len() > MAX_NAME || k.chars().any(char::is_control) {
        return Err(bad("Invalid parameter name"));
    }
    Ok(())
}

/// The media type of a Content-Type value, lowercase, without parameters.
fn essence(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn body_params(req: &Request) -> Result<Vec<(String, String)>> {
    if req.body.is_empty() {
        return Ok(Vec::new());
    }
    let ct = req.header("content-type").unwrap_or("");
    let text =
        || std::str::from_utf8(&req.body).map_err(|_| bad("The request body is not valid UTF-8"));
    match essence(ct).as_str() {
        "application/x-www-form-urlencoded" | "" => Ok(parse_query(text()?.trim())),
        "multipart/form-data" => multipart(ct, &req.body),
        "application/xml" | "text/xml" => xml(text()?),
        _ if is_json_media_type(ct) => json(&req.body),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "Unsupported Content-Type '{}': send application/x-www-form-urlencoded or multipart/form-data",
                other.escape_debug()
            ),
        )),
    }
}

fn multipart(ct: &str, body: &bytes::Bytes) -> Result<Vec<(String, String)>> {
    let boundary = multer::parse_boundary(ct)
        .map_err(|e| bad(format!("Malformed multipart/form-data: {e}")))?;
    let chunk = body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(chunk) });
    let mut mp = multer::Multipart::new(stream, boundary);
    futures_executor::block_on(async move {
        let mut out = Vec::new();
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| bad(format!("Malformed multipart/form-data: {e}")))?
        {
            if out.len() >= MAX_PARAMS {
                return Err(bad("Too many parameters"));
            }
            let name = field.name().unwrap_or("").to_string();
            let value = field
                .text()
                .await
                .map_err(|e| bad(format!("Malformed multipart/form-data: {e}")))?;
            out.push((name, value));
        }
        Ok(out)
    })
}

fn json(body: &[u8]) -> Result<Vec<(String, String)>> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("Malformed JSON body: {e}")))?;
    let Value::Object(m) = v else {
        return Err(bad("The JSON body must be an object of parameters"));
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(bad(format!(
                "Parameter {} must be a string or a number",
                k.escape_debug()
            ))),
        })
        .collect()
}

fn xml(text: &str) -> Result<Vec<(String, String)>> {
    let malformed = |e: &dyn std::fmt::Display| bad(format!("Malformed XML body: {e}"));
    let mut r = quick_xml::Reader::from_str(text);
    r.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut roots = 0;
    loop {
        match r.read_event().map_err(|e| malformed(&e))? {
            Event::Start(s) => {
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(bad(
                        "The XML body must be one element of parameter elements",
                    ));
                }
                if stack.is_empty() {
                    roots += 1;
                }
                let name = std::str::from_utf8(s.local_name().into_inner())
                    .map_err(|e| malformed(&e))?
                    .to_string();
                stack.push(name);
                value.clear();
            }
            Event::Empty(s) => {
                if stack.len() == 1 {
                    let name = std::str::from_utf8(s.local_name().into_inner())
                        .map_err(|e| malformed(&e))?;
                    out.push((name.to_string(), String::new()));
                } else if stack.is_empty() {
                    roots += 1;
                } else {
                    return Err(bad(
                        "The XML body must be one element of parameter elements",
                    ));
                }
            }
            Event::Text(t) => {
                if stack.len() == 2 {
                    value.push_str(&t.unescape().map_err(|e| malformed(&e))?);
                } else if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(bad(
                        "The XML body must be one element of parameter elements",
                    ));
                }
            }
            Event::CData(t) if stack.len() == 2 => {
                value.push_str(std::str::from_utf8(&t).map_err(|e| malformed(&e))?);
            }
            Event::End(_) => {
                if let Some(name) = stack.pop() {
                    if stack.len() == 1 {
                        out.push((name, std::mem::take(&mut value)));
                    }
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(bad("DTDs are not accepted")),
            _ => {}
        }
        if out.len() > MAX_PARAMS {
            return Err(bad("Too many parameters"));
        }
    }
    if roots != 1 || !stack.is_empty() {
        return Err(bad("Malformed XML body: expected one root element"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warp::http::{HeaderMap, Method};

    fn req(query: &str, ct: Option<&str>, body: &str) -> Request {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert("content-type", ct.parse().unwrap());
        }
        Request::new(
            Method::POST,
            "/api/storage_volumes",
            query,
            h,
            Bytes::from(body.to_string()),
        )
    }

    fn get(p: &Params, k: &str) -> Option<String> {
        p.text(k, MAX_FIELD).unwrap()
    }

    #[test]
    fn sources() {
        let p = Params::of(&req(
            "capacity=2&name=q&format=json",
            Some("application/x-www-form-urlencoded"),
            "name=b+c&x=",
        ))
        .unwrap();
        assert_eq!(get(&p, "capacity").as_deref(), Some("2"));
        assert_eq!(get(&p, "name").as_deref(), Some("b c"));
        assert_eq!(get(&p, "x"), None);
        assert_eq!(get(&p, "format"), None);

        let mp =
            "--XX\r\nContent-Disposition: form-data; name=\"volume_id\"\r\n\r\nvol-1\r\n--XX--\r\n";
        let p = Params::of(&req("", Some("multipart/form-data; boundary=XX"), mp)).unwrap();
        assert_eq!(get(&p, "volume_id").as_deref(), Some("vol-1"));

        let p = Params::of(&req(
            "",
            Some("application/json"),
            r#"{"capacity": 3, "name": "n"}"#,
        ))
        .unwrap();
        assert_eq!(get(&p, "capacity").as_deref(), Some("3"));

        let p = Params::of(&req(
            "",
            Some("application/xml"),
            "<?xml version='1.0'?><storage_volume><capacity>4</capacity><name>a &amp; b</name><realm_id/></storage_volume>",
        ))
        .unwrap();
        assert_eq!(get(&p, "capacity").as_deref(), Some("4"));
        assert_eq!(get(&p, "name").as_deref(), Some("a & b"));
    }

    #[test]
    fn bad_bodies() {
        let k = |ct: &str, body: &str| Params::of(&req("", Some(ct), body)).unwrap_err().kind();
        assert_eq!(k("application/json", "{"), ErrorKind::BadRequest);
        assert_eq!(k("application/json", "[1]"), ErrorKind::BadRequest);
        assert_eq!(
            k("application/json", r#"{"a": {"b": 1}}"#),
            ErrorKind::BadRequest
        );
        assert_eq!(k("application/xml", "<a><b>1</a>"), ErrorKind::BadRequest);
        assert_eq!(
            k("application/xml", "<a><b><c/></b></a>"),
            ErrorKind::BadRequest
        );
        assert_eq!(k("application/xml", "<a/><b/>"), ErrorKind::BadRequest);
        assert_eq!(k("application/xml", "text"), ErrorKind::BadRequest);
        assert_eq!(
            k("application/xml", "<!DOCTYPE a [<!ENTITY x 'y'>]><a/>"),
            ErrorKind::BadRequest
        );
        assert_eq!(k("multipart/form-data", "--x"), ErrorKind::BadRequest);
        assert_eq!(
            k("multipart/form-data; boundary=XX", "--XX\r\nbroken"),
            ErrorKind::BadRequest
        );
        assert_eq!(k("text/plain", "a=b"), ErrorKind::UnsupportedMediaType);
        let p = Params::of(&req("name=a%01b", None, "")).unwrap();
        assert!(p.text("name", MAX_FIELD).is_err());
        assert!(p.required("other", MAX_FIELD).is_err());
        let long = format!("name={}", "x".repeat(300));
        let p = Params::of(&req(&long, None, "")).unwrap();
        assert!(p.text("name", MAX_FIELD).is_err());
    }
}
