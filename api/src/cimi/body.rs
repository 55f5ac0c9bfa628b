//! CIMI request bodies: JSON, or XML read with quick-xml's reader, both
//! turned into one JSON-shaped map so that the handlers read fields once.
//! The XML mapping mirrors the response one (`doc.rs`): `<key>text</key>`
//! is `"key": "text"`, `<key href="u"/>` is `"key": {"href": "u"}`, nested
//! elements are objects, `<property key="k">v</property>` elements gather
//! into `"properties"`, and `operation` elements are ignored. Namespace
//! prefixes are dropped (local names); DTDs are refused, so no entity is
//! ever expanded; nesting is bounded.
//!
//! Also the field readers shared by the handlers, and the parsing of
//! resource references (`href`s) into ids.

use super::NS;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{is_json_media_type, is_xml_media_type, percent_decode, Request};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Deepest element nesting accepted in an XML body.
const MAX_DEPTH: usize = 16;
/// Most properties on one resource.
const MAX_PROPERTIES: usize = 64;
/// Longest property key or value.
const MAX_PROPERTY: usize = 255;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// The body as a map, checked to be one of the `roots` documents (XML root
/// element, or JSON `resourceURI` when given). An empty body is 400, a
/// Content-Type other than JSON or XML 415 (without one, a body starting
/// with `<` is read as XML).
pub(crate) fn parse(req: &Request, roots: &[&str]) -> Result<Map<String, Value>> {
    let body = &req.body[..];
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let Some(&first) = first else {
        return Err(bad(format!(
            "A {} document is required in the request body.",
            roots.first().unwrap_or(&"CIMI")
        )));
    };
    let xml = match req.header("content-type") {
        None => first == b'<',
        Some(ct) if is_json_media_type(ct) => false,
        Some(ct) if is_xml_media_type(ct) => true,
        Some(ct) => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "Unsupported Content-Type '{}': send application/json or application/xml",
                    ct.escape_debug()
                ),
            ))
        }
    };
    if xml {
        let (root, map) = parse_xml(body)?;
        if !roots.contains(&root.as_str()) {
            return Err(bad(format!(
                "Expected a {} document, got <{}>.",
                roots.join(" or "),
                root.escape_debug()
            )));
        }
        Ok(map)
    } else {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| bad(format!("Malformed JSON in the request body: {e}")))?;
        let Value::Object(map) = v else {
            return Err(bad("The request body must be a JSON object."));
        };
        match map.get("resourceURI") {
            None | Some(Value::Null) => {}
            Some(Value::String(uri)) if roots.iter().any(|r| *uri == format!("{NS}/{r}")) => {}
            Some(other) => {
                return Err(bad(format!(
                    "Expected a resourceURI of {}, got {}.",
                    roots
                        .iter()
                        .map(|r| format!("{NS}/{r}"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    short(other)
                )))
            }
        }
        Ok(map)
    }
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(80).collect()
}

/// An element being read.
#[derive(Default)]
struct Frame {
    name: String,
    fields: Map<String, Value>,
    props: Map<String, Value>,
    text: String,
    has_children: bool,
    key: Option<String>,
}

impl Frame {
    fn open(e: &BytesStart) -> Result<Frame> {
        let name = String::from_utf8(e.local_name().as_ref().to_vec())
            .map_err(|_| bad("Malformed XML: element name is not UTF-8."))?;
        let mut f = Frame {
            name,
            ..Frame::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| bad(format!("Malformed XML attribute: {e}")))?;
            if a.key.as_namespace_binding().is_some() {
                continue;
            }
            let k = String::from_utf8(a.key.local_name().as_ref().to_vec())
                .map_err(|_| bad("Malformed XML: attribute name is not UTF-8."))?;
            let v = a
                .unescape_value()
                .map_err(|e| bad(format!("Malformed XML attribute value: {e}")))?
                .into_owned();
            if f.name == "property" && k == "key" {
                f.key = Some(v);
            } else {
                f.fields.insert(k, Value::String(v));
            }
        }
        Ok(f)
    }

    /// The element's value: its text when it has neither attributes nor
    /// children, an object otherwise.
    fn value(mut self) -> Value {
        if !self.props.is_empty() {
            self.fields
                .insert("properties".into(), Value::Object(self.props));
        }
        if self.fields.is_empty() && !self.has_children {
            Value::String(self.text)
        } else {
            Value::Object(self.fields)
        }
    }

    /// Adds a closed child element.
    fn adopt(&mut self, child: Frame) -> Result<()> {
        self.has_children = true;
        match child.name.as_str() {
            "operation" => Ok(()),
            "property" => {
                let key = child
                    .key
                    .clone()
                    .ok_or_else(|| bad("A <property> element needs a key attribute."))?;
                self.props.insert(key, Value::String(child.text));
                Ok(())
            }
            _ => {
                let name = child.name.clone();
                if self.fields.contains_key(&name) {
                    return Err(bad(format!(
                        "Element <{}> appears more than once in <{}>.",
                        name.escape_debug(),
                        self.name.escape_debug()
                    )));
                }
                self.fields.insert(name, child.value());
                Ok(())
            }
        }
    }
}

/// Reads an XML document: its root's local name and its value as a map.
pub(crate) fn parse_xml(body: &[u8]) -> Result<(String, Map<String, Value>)> {
    let text =
        std::str::from_utf8(body).map_err(|_| bad("Malformed XML: the body is not UTF-8."))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Frame> = None;
    let malformed = |e: quick_xml::Error| bad(format!("Malformed XML: {e}"));
    loop {
        let ev = reader.read_event().map_err(malformed)?;
        let (frame, closes) = match ev {
            Event::Start(e) => (Some(Frame::open(&e)?), false),
            Event::Empty(e) => (Some(Frame::open(&e)?), true),
            Event::End(_) => (None, true),
            Event::Text(t) => {
                let s = t.unescape().map_err(malformed)?;
                match stack.last_mut() {
                    Some(f) => f.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(bad("Malformed XML: text outside the root element.")),
                }
                continue;
            }
            Event::CData(c) => {
                let s = std::str::from_utf8(&c)
                    .map_err(|_| bad("Malformed XML: CDATA is not UTF-8."))?
                    .to_string();
                match stack.last_mut() {
                    Some(f) => f.text.push_str(&s),
                    None => return Err(bad("Malformed XML: CDATA outside the root element.")),
                }
                continue;
            }
            Event::DocType(_) => {
                return Err(bad(
                    "Malformed XML: document type declarations are not accepted.",
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
            Event::Eof => break,
        };
        if let Some(f) = frame {
            if root.is_some() {
                return Err(bad("Malformed XML: more than one root element."));
            }
            if stack.len() >= MAX_DEPTH {
                return Err(bad(format!(
                    "Malformed XML: elements nested deeper than {MAX_DEPTH}."
                )));
            }
            stack.push(f);
        }
        if closes {
            let Some(done) = stack.pop() else {
                return Err(bad("Malformed XML: unexpected end tag."));
            };
            match stack.last_mut() {
                Some(parent) => parent.adopt(done)?,
                None => root = Some(done),
            }
        }
    }
    if !stack.is_empty() {
        return Err(bad(
            "Malformed XML: unclosed element at the end of the body.",
        ));
    }
    let root = root.ok_or_else(|| bad("Malformed XML: no root element."))?;
    let name = root.name.clone();
    match root.value() {
        Value::Object(m) => Ok((name, m)),
        _ => Ok((name, Map::new())),
    }
}

// ---- fields ----

/// An optional text field (trimmed), at most `max` bytes, without control
/// characters unless `multiline`.
pub(crate) fn opt_text(
    m: &Map<String, Value>,
    key: &str,
    max: usize,
    multiline: bool,
) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.len() > max {
                return Err(bad(format!("{key} is longer than {max} bytes.")));
            }
            let bad_char = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\t'));
            if s.chars().any(bad_char) {
                return Err(bad(format!("{key} contains control characters.")));
            }
            Ok(Some(s.to_string()))
        }
        Some(_) => Err(bad(format!("{key} must be a string."))),
    }
}

/// An optional reference: `{"href": "..."}` (XML `<key href="..."/>`).
pub(crate) fn opt_href(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => match o.get("href") {
            Some(Value::String(h)) if h.len() <= 2048 => Ok(Some(h.trim().to_string())),
            Some(Value::String(_)) => Err(bad(format!("{key} href is too long."))),
            Some(_) => Err(bad(format!("{key} href must be a string."))),
            None => Ok(None),
        },
        Some(_) => Err(bad(format!(
            "{key} must be a reference: {{\"href\": \"...\"}} or <{key} href=\"...\"/>."
        ))),
    }
}

/// An optional object field (XML: an element with children).
pub(crate) fn opt_object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        // `<volumeTemplate></volumeTemplate>` reads as empty text.
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(_) => Err(bad(format!("{key} must be an object."))),
    }
}

/// An unsigned integer: a JSON number or a string of digits (XML).
pub(crate) fn uint(v: &Value, key: &str) -> Result<u64> {
    let n = crate::http::uint_value(v);
    n.ok_or_else(|| {
        bad(format!(
            "{key} must be a non-negative integer, got {}.",
            short(v)
        ))
    })
}

/// A boolean: JSON true/false or the strings "true"/"false" (XML).
pub(crate) fn boolean(v: &Value, key: &str) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.trim() == "true" => Ok(true),
        Value::String(s) if s.trim() == "false" => Ok(false),
        _ => Err(bad(format!(
            "{key} must be true or false, got {}.",
            short(v)
        ))),
    }
}

/// The `properties` map, if given: string keys and values, bounded.
pub(crate) fn properties(m: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>> {
    let p = match m.get("properties") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(bad("properties must be a map of strings.")),
    };
    if p.len() > MAX_PROPERTIES {
        return Err(bad(format!(
            "At most {MAX_PROPERTIES} properties are accepted."
        )));
    }
    let mut out = BTreeMap::new();
    for (k, v) in p {
        if k.is_empty() || k.len() > MAX_PROPERTY || k.chars().any(char::is_control) {
            return Err(bad(format!(
                "Property key '{}' must be 1 to {MAX_PROPERTY} bytes without control characters.",
                k.escape_debug()
            )));
        }
        match v {
            Value::String(s) if s.len() <= MAX_PROPERTY => {
                out.insert(k.clone(), s.clone());
            }
            _ => {
                return Err(bad(format!(
                    "Property '{}' must be a string of at most {MAX_PROPERTY} bytes.",
                    k.escape_debug()
                )))
            }
        }
    }
    Ok(Some(out))
}

/// The id in a reference to a member of `/cimi/{collection}`: an absolute
/// URI (any host) or an absolute path. Anything else is 400.
pub(crate) fn ref_id(href: &str, collection: &str) -> Result<String> {
    let invalid = || {
        bad(format!(
            "'{}' is not a reference to a member of /cimi/{collection}.",
            href.escape_debug()
        ))
    };
    let path = match href
        .strip_prefix("http://")
        .or_else(|| href.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map(|i| &rest[i..]).ok_or_else(invalid)?,
        None => href,
    };
    let rest = path
        .strip_prefix("/cimi/")
        .and_then(|p| p.strip_prefix(collection))
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(invalid)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#']) {
        return Err(invalid());
    }
    Ok(percent_decode(rest))
}

/// The name, description and properties of an update body `b`.
pub(crate) fn edit(
    b: &Map<String, Value>,
    name: Option<String>,
    description: Option<String>,
    props: Option<BTreeMap<String, String>>,
) -> crate::domain::ops::Edit {
    crate::domain::ops::Edit {
        name: b.contains_key("name").then_some(name),
        description: b.contains_key("description").then_some(description),
        user: props,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_to_map() {
        let (root, m) = parse_xml(
            br#"<?xml version="1.0"?>
            <c:VolumeCreate xmlns:c="http://schemas.dmtf.org/cimi/1">
              <c:name> my vol </c:name>
              <property key="a">1 &amp; 2</property>
              <property key="b"/>
              <volumeTemplate>
                <volumeConfig><capacity>1024</capacity></volumeConfig>
                <volumeImage href="http://h/cimi/volume_images/x"/>
              </volumeTemplate>
              <operation rel="edit" href="x"/>
            </c:VolumeCreate>"#,
        )
        .unwrap();
        assert_eq!(root, "VolumeCreate");
        assert_eq!(m["name"], "my vol");
        assert_eq!(m["properties"]["a"], "1 & 2");
        assert_eq!(m["properties"]["b"], "");
        assert_eq!(m["volumeTemplate"]["volumeConfig"]["capacity"], "1024");
        assert_eq!(
            m["volumeTemplate"]["volumeImage"]["href"],
            "http://h/cimi/volume_images/x"
        );
        assert!(!m.contains_key("operation"));
    }

    #[test]
    fn bad_xml() {
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        for b in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<a>&ent;</a>",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<a><n>1</n><n>2</n></a>",
            "<a><property>v</property></a>",
            deep.as_str(),
        ] {
            assert!(parse_xml(b.as_bytes()).is_err(), "{b}");
        }
        assert!(parse_xml(b"<a>\xff</a>").is_err());
    }

    #[test]
    fn refs() {
        assert_eq!(
            ref_id("http://h:1/cimi/volumes/abc", "volumes").unwrap(),
            "abc"
        );
        assert_eq!(ref_id("/cimi/volumes/abc/", "volumes").unwrap(), "abc");
        assert_eq!(
            ref_id("https://h/cimi/volumes/a%20b", "volumes").unwrap(),
            "a b"
        );
        for bad in [
            "",
            "http://h",
            "http://h/cimi/volumes",
            "http://h/cimi/volumes/",
            "http://h/cimi/volume_images/x",
            "http://h/cimi/volumesx/y",
            "/cimi/volumes/a/b",
            "volumes/a",
        ] {
            assert!(ref_id(bad, "volumes").is_err(), "{bad}");
        }
    }

    #[test]
    fn fields() {
        let m: Map<String, Value> = serde_json::from_str(
            r#"{"n": " x ", "c": "a\u0001", "i": "12", "j": -1, "b": "true", "h": {"href": "u"}, "s": "u"}"#,
        )
        .unwrap();
        assert_eq!(opt_text(&m, "n", 10, false).unwrap().as_deref(), Some("x"));
        assert!(opt_text(&m, "c", 10, true).is_err());
        assert!(opt_text(&m, "i", 1, false).is_err());
        assert_eq!(uint(&m["i"], "i").unwrap(), 12);
        assert!(uint(&m["j"], "j").is_err());
        assert!(boolean(&m["b"], "b").unwrap());
        assert!(boolean(&m["i"], "i").is_err());
        assert_eq!(opt_href(&m, "h").unwrap().as_deref(), Some("u"));
        assert!(opt_href(&m, "s").is_err());
    }
}
