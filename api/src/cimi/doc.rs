//! CIMI responses: the ordered document tree ([`Doc`], [`Node`]) that
//! `views.rs` derives from a typed resource, written as XML in the CIMI
//! namespace (quick-xml's writer, so every text and attribute is escaped)
//! and read by `$filter`; the JSON answer is the typed resource's own
//! serialization. Also the response format chosen from `Accept`, and the
//! dialect's error bodies.
//!
//! The tree follows CIMI 1.0.1's mapping between the two renderings:
//!
//! | node            | XML                                   | JSON                          |
//! |-----------------|---------------------------------------|-------------------------------|
//! | text, int, bool | `<key>v</key>`                        | `"key": v`                    |
//! | reference       | `<key href="..."/>`                   | `"key": {"href": "..."}`      |
//! | entries         | `<Volume>...</Volume>`*               | `"volumes": [...]`            |
//! | operations      | `<operation rel=".." href=".."/>`*    | `"operations": [{rel, href}]` |
//! | properties      | `<property key="k">v</property>`*     | `"properties": {"k": "v"}`    |
//!
//! The root element carries `xmlns` and `resourceURI` attributes; in JSON
//! `resourceURI` is a member of the top-level object. Errors are
//! `{"status": N, "message": "..."}` or
//! `<Error xmlns="..."><status>N</status><message>...</message></Error>`.

use super::views::{self, to_doc, Resource};
use super::NS;
use crate::error::{ApiError, ErrorKind};
use crate::http::{Reply, Request};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
#[cfg(test)]
use serde_json::Map;
use serde_json::Value;
use std::collections::BTreeMap;

/// The representation a response is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Xml,
}

impl Format {
    /// The format `Accept` asks for: XML when an XML media type has a
    /// higher quality than JSON (or JSON is absent), JSON otherwise (also
    /// when neither is acceptable: JSON is CIMI's default).
    pub fn of(req: &Request) -> Format {
        let Some(accept) = req.header("accept") else {
            return Format::Json;
        };
        let (mut json_q, mut xml_q) = (-1.0f32, -1.0f32);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let is_xml = media == "application/xml"
                || media == "text/xml"
                || (media.starts_with("application/") && media.ends_with("+xml"));
            if is_xml {
                xml_q = xml_q.max(q);
            } else if crate::http::is_json_media_type(&media) {
                json_q = json_q.max(q);
            }
        }
        if xml_q > 0.0 && xml_q > json_q {
            Format::Xml
        } else {
            Format::Json
        }
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }
}

/// One value of a document.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Int(u64),
    Bool(bool),
    /// A reference to another resource.
    Href(String),
    /// Collection members, each rendered as its own element.
    Entries(Vec<Doc>),
    /// `(rel, href)` operations.
    Ops(Vec<(String, String)>),
    /// The property map.
    Props(BTreeMap<String, String>),
}

/// A resource or collection document, fields in schema order.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// Its XML element name (`Volume`, `Collection`).
    pub elem: &'static str,
    /// Its `resourceURI`.
    pub uri: String,
    pub fields: Vec<(String, Node)>,
}

impl Doc {
    /// A resource of CIMI type `elem` (`resourceURI` = namespace/elem).
    #[cfg(test)]
    pub fn resource(elem: &'static str) -> Doc {
        Doc {
            elem,
            uri: format!("{NS}/{elem}"),
            fields: Vec::new(),
        }
    }

    /// The document with one more field.
    #[cfg(test)]
    pub fn with(mut self, key: &'static str, node: Node) -> Doc {
        self.fields.push((key.to_string(), node));
        self
    }

    /// The value of a scalar top-level attribute as text, for `$filter`.
    pub fn scalar(&self, key: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, n)| match n {
                Node::Text(s) | Node::Href(s) => Some(s.clone()),
                Node::Int(i) => Some(i.to_string()),
                Node::Bool(b) => Some(b.to_string()),
                _ => None,
            })
    }

    /// The JSON rendering (`resourceURI` only at the top): the answers'
    /// JSON is the typed resources' own; tests check the two agree.
    #[cfg(test)]
    pub fn to_json(&self, top: bool) -> Value {
        let mut m = Map::new();
        if top {
            m.insert("resourceURI".into(), Value::from(self.uri.as_str()));
        }
        for (k, n) in &self.fields {
            m.insert(k.clone(), node_json(n));
        }
        Value::Object(m)
    }

    /// The XML rendering, with an XML declaration.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail.
        let _ = w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .and_then(|_| write_doc(&mut w, self, true));
        let mut out = w.into_inner();
        out.push(b'\n');
        out
    }
}

/// The reply carrying resource `r` in `fmt`: its JSON, or the XML of its
/// document tree.
pub(crate) fn reply<T: Resource>(r: &T, status: u16, fmt: Format) -> Reply {
    match fmt {
        Format::Json => Reply::json(status, serde_json::to_value(r).unwrap_or(Value::Null)),
        Format::Xml => Reply::raw(status, fmt.content_type(), to_doc(r).to_xml()),
    }
}

#[cfg(test)]
fn node_json(n: &Node) -> Value {
    match n {
        Node::Text(s) => Value::from(s.as_str()),
        Node::Int(i) => Value::from(*i),
        Node::Bool(b) => Value::from(*b),
        Node::Href(h) => serde_json::json!({ "href": h }),
        Node::Entries(docs) => Value::Array(docs.iter().map(|d| d.to_json(false)).collect()),
        Node::Ops(ops) => Value::Array(
            ops.iter()
                .map(|(rel, href)| serde_json::json!({"rel": rel, "href": href}))
                .collect(),
        ),
        Node::Props(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        ),
    }
}

type W = Writer<Vec<u8>>;

fn write_doc(w: &mut W, d: &Doc, top: bool) -> std::io::Result<()> {
    let mut start = BytesStart::new(d.elem);
    if top {
        start.push_attribute(("xmlns", NS));
        start.push_attribute(("resourceURI", d.uri.as_str()));
    }
    w.write_event(Event::Start(start))?;
    for (k, n) in &d.fields {
        write_node(w, k, n)?;
    }
    w.write_event(Event::End(BytesEnd::new(d.elem)))
}

fn write_node(w: &mut W, key: &str, n: &Node) -> std::io::Result<()> {
    let text = |w: &mut W, v: &str| -> std::io::Result<()> {
        w.create_element(key)
            .write_text_content(BytesText::new(v))
            .map(|_| ())
    };
    match n {
        Node::Text(s) => text(w, s),
        Node::Int(i) => text(w, &i.to_string()),
        Node::Bool(b) => text(w, if *b { "true" } else { "false" }),
        Node::Href(h) => w
            .create_element(key)
            .with_attribute(("href", h.as_str()))
            .write_empty()
            .map(|_| ()),
        Node::Entries(docs) => docs.iter().try_for_each(|d| write_doc(w, d, false)),
        Node::Ops(ops) => ops.iter().try_for_each(|(rel, href)| {
            w.create_element("operation")
                .with_attributes([("rel", rel.as_str()), ("href", href.as_str())])
                .write_empty()
                .map(|_| ())
        }),
        Node::Props(m) => m.iter().try_for_each(|(k, v)| {
            w.create_element("property")
                .with_attribute(("key", k.as_str()))
                .write_text_content(BytesText::new(v))
                .map(|_| ())
        }),
    }
}

/// The HTTP status of an error kind in this dialect.
pub(crate) fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::BadRequest | ErrorKind::Unprocessable => 400,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::Conflict => 409,
        ErrorKind::OverLimit => 413,
        ErrorKind::UnsupportedMediaType => 415,
        ErrorKind::NotImplemented => 501,
        ErrorKind::Unavailable => 503,
        ErrorKind::Internal | ErrorKind::Config => 500,
    }
}

/// The error reply for `e` in `fmt`, with `WWW-Authenticate` on 401 and
/// `Allow` on 405. Internal failures are logged and answered generically.
pub(crate) fn error(fmt: Format, e: &ApiError) -> Reply {
    let status = status_of(e.kind());
    let message = if status == 500 {
        tracing::error!(error = %e, source = ?e.engine_error(), "cimi request failed");
        "Server Error, please try again later.".to_string()
    } else {
        e.message().to_string()
    };
    let doc = Doc {
        elem: "Error",
        uri: format!("{NS}/Error"),
        fields: vec![
            ("status".to_string(), Node::Int(u64::from(status))),
            ("message".to_string(), Node::Text(message.clone())),
        ],
    };
    let mut r = match fmt {
        Format::Json => Reply::json(
            status,
            serde_json::to_value(views::Error { status, message }).unwrap_or(Value::Null),
        ),
        Format::Xml => {
            let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
            // Writing to a Vec cannot fail.
            let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
            let _ = w
                .create_element("Error")
                .with_attribute(("xmlns", NS))
                .write_inner_content(|w| {
                    for (k, n) in &doc.fields {
                        write_node(w, k, n)?;
                    }
                    Ok(())
                });
            Reply::raw(status, fmt.content_type(), w.into_inner())
        }
    };
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    if e.kind() == ErrorKind::Unauthorized {
        r = r.with_header("www-authenticate", "Basic realm=\"CIMI\"");
    }
    if e.kind() == ErrorKind::OverLimit {
        r = r.with_header("retry-after", e.retry_after().unwrap_or(0).to_string());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Doc {
        Doc::resource("VolumeImage")
            .with("id", Node::Text("http://h/cimi/volume_images/1".into()))
            .with("name", Node::Text("a<b&\"c\"".into()))
            .with(
                "imageLocation",
                Node::Href("http://h/cimi/volumes/v?x=1&y=2".into()),
            )
            .with("bootable", Node::Bool(false))
            .with(
                "properties",
                Node::Props([("k\"".to_string(), "<v>".to_string())].into()),
            )
            .with(
                "operations",
                Node::Ops(vec![("delete".into(), "http://h/x".into())]),
            )
    }

    #[test]
    fn xml_is_escaped_and_ordered() {
        let x = String::from_utf8(sample().to_xml()).unwrap();
        assert!(x.contains(
            "<VolumeImage xmlns=\"http://schemas.dmtf.org/cimi/1\" resourceURI=\"http://schemas.dmtf.org/cimi/1/VolumeImage\">"
        ));
        assert!(x.contains("<name>a&lt;b&amp;&quot;c&quot;</name>"), "{x}");
        assert!(x.contains("href=\"http://h/cimi/volumes/v?x=1&amp;y=2\""));
        assert!(x.contains("<property key=\"k&quot;\">&lt;v&gt;</property>"));
        assert!(x.contains("<operation rel=\"delete\" href=\"http://h/x\"/>"));
        assert!(x.find("<id>").unwrap() < x.find("<name>").unwrap());
        assert!(x.find("<name>").unwrap() < x.find("<bootable>").unwrap());
    }

    #[test]
    fn json_shape() {
        let j = sample().to_json(true);
        assert_eq!(
            j["resourceURI"],
            "http://schemas.dmtf.org/cimi/1/VolumeImage"
        );
        assert_eq!(
            j["imageLocation"]["href"],
            "http://h/cimi/volumes/v?x=1&y=2"
        );
        assert_eq!(j["bootable"], false);
        assert_eq!(j["properties"]["k\""], "<v>");
        assert_eq!(j["operations"][0]["rel"], "delete");
        assert_eq!(sample().scalar("bootable").as_deref(), Some("false"));
        assert_eq!(sample().scalar("properties"), None);
    }

    #[test]
    fn accept() {
        let req = |a: Option<&str>| {
            let mut h = warp::http::HeaderMap::new();
            if let Some(a) = a {
                h.insert("accept", a.parse().unwrap());
            }
            Request::new(warp::http::Method::GET, "/cimi", "", h, bytes::Bytes::new())
        };
        assert_eq!(Format::of(&req(None)), Format::Json);
        assert_eq!(Format::of(&req(Some("application/xml"))), Format::Xml);
        assert_eq!(Format::of(&req(Some("text/xml"))), Format::Xml);
        assert_eq!(Format::of(&req(Some("*/*"))), Format::Json);
        assert_eq!(
            Format::of(&req(Some("application/json;q=0.5, application/xml"))),
            Format::Xml
        );
        assert_eq!(
            Format::of(&req(Some("application/json, application/xml;q=0.9"))),
            Format::Json
        );
        assert_eq!(Format::of(&req(Some("application/xml;q=0"))), Format::Json);
    }

    #[test]
    fn errors() {
        let r = error(Format::Json, &ApiError::not_found("nope"));
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body.unwrap(),
            serde_json::json!({"status": 404, "message": "nope"})
        );
        let r = error(
            Format::Xml,
            &ApiError::new(ErrorKind::Unauthorized, "who <are> you"),
        );
        assert_eq!(r.status, 401);
        let (ct, body) = r.raw.clone().unwrap();
        assert_eq!(ct, "application/xml");
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("<message>who &lt;are&gt; you</message>"),
            "{body}"
        );
        assert!(r.headers.iter().any(|(k, _)| *k == "www-authenticate"));
        let r = error(Format::Json, &ApiError::internal("secret /path"));
        assert!(!r.body.unwrap().to_string().contains("secret"));
    }
}
