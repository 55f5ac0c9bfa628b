//! Helpers of the CIMI black-box tests: a client for `/cimi` on a running
//! `blockd serve` (HTTP Basic credentials, Accept, Content-Type and any
//! other header), a small XML tree read with quick-xml, and the structural
//! comparison of our XML with the seed's example bodies (`fixtures/cimi/`).
#![allow(dead_code)]

use crate::api_common::{basic, Api, Resp};
use quick_xml::events::Event;
use serde_json::Value;

#[allow(unused_imports)]
pub use crate::api_common::{DEMO_BASIC as DEMO, OTHER_BASIC as OTHER, SMALL_BASIC as SMALL};

/// The CIMI namespace.
pub const NS: &str = "http://schemas.dmtf.org/cimi/1";

/// A server and a CIMI client.
pub struct Cimi {
    pub api: Api,
}

impl Cimi {
    pub fn start() -> Cimi {
        Cimi { api: Api::start() }
    }

    /// The absolute URI of `/cimi/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/cimi/{path}", self.api.base)
    }

    /// Any request to `path` (absolute, from `/`).
    pub fn req(
        &self,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let auth = auth.map(basic);
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        all.extend_from_slice(headers);
        self.api.send(method, path, &all, body)
    }

    /// GET `/cimi/{path}` as demo, JSON.
    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", &format!("/cimi/{path}"), Some(DEMO), &[], None)
    }

    /// GET `/cimi/{path}` as demo, XML.
    pub fn get_xml(&self, path: &str) -> Resp {
        self.req(
            "GET",
            &format!("/cimi/{path}"),
            Some(DEMO),
            &[("Accept", "application/xml")],
            None,
        )
    }

    /// POST a JSON document to `/cimi/{path}` as `who`.
    pub fn post_as(&self, who: (&str, &str), path: &str, body: &Value) -> Resp {
        self.req(
            "POST",
            &format!("/cimi/{path}"),
            Some(who),
            &[("Content-Type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// POST a JSON document to `/cimi/{path}` as demo.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_as(DEMO, path, body)
    }

    /// POST an XML document to `/cimi/{path}` as demo, asking for XML.
    pub fn post_xml(&self, path: &str, body: &str) -> Resp {
        self.req(
            "POST",
            &format!("/cimi/{path}"),
            Some(DEMO),
            &[
                ("Content-Type", "application/xml"),
                ("Accept", "application/xml"),
            ],
            Some(body.as_bytes()),
        )
    }

    /// PUT a JSON document to `/cimi/{path}` as demo.
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.req(
            "PUT",
            &format!("/cimi/{path}"),
            Some(DEMO),
            &[("Content-Type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// DELETE `/cimi/{path}` as demo.
    pub fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", &format!("/cimi/{path}"), Some(DEMO), &[], None)
    }

    /// Creates a volume of `kib` KiB as `who`; returns its id.
    pub fn volume_as(&self, who: (&str, &str), kib: u64) -> String {
        let r = self.post_as(
            who,
            "volumes",
            &serde_json::json!({"volumeTemplate": {"volumeConfig": {"capacity": kib}}}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        last_segment(r.json["id"].as_str().expect("id"))
    }

    /// Creates a volume of `kib` KiB as demo; returns its id.
    pub fn volume(&self, kib: u64) -> String {
        self.volume_as(DEMO, kib)
    }

    /// Captures volume `vol` as a VolumeImage as demo (description: its
    /// name); returns its id.
    pub fn image(&self, vol: &str, name: &str) -> String {
        let r = self.post(
            "volume_images",
            &serde_json::json!({"name": name, "description": name, "imageLocation": {"href": self.url(&format!("volumes/{vol}"))}}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        last_segment(r.json["id"].as_str().expect("id"))
    }
}

/// The last path segment of a URI.
pub fn last_segment(uri: &str) -> String {
    uri.rsplit('/').next().unwrap_or("").to_string()
}

/// Asserts a CIMI error: status, JSON body `{"status", "message"}`, the
/// version header.
pub fn error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.json["status"], status, "{}", r.text);
    assert!(
        r.json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
    assert_eq!(r.header("cimi-specification-version"), Some("1.0.1"));
}

/// Asserts a CIMI XML error with `status`.
pub fn xml_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.header("content-type").unwrap_or("").contains("xml"));
    let e = xml(&r.text);
    assert_eq!(e.name, "Error");
    assert_eq!(e.attr("xmlns"), Some(NS));
    assert_eq!(e.text_of("status"), status.to_string());
    assert!(!e.text_of("message").is_empty());
}

/// An XML element.
#[derive(Debug, Clone, Default)]
pub struct El {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<El>,
}

impl El {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all(&self, name: &str) -> Vec<&El> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// The text of child `name` (panics when absent).
    pub fn text_of(&self, name: &str) -> String {
        self.child(name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name))
            .text
            .clone()
    }

    /// The `href` of child `name`.
    pub fn href(&self, name: &str) -> String {
        self.child(name)
            .and_then(|c| c.attr("href"))
            .unwrap_or_else(|| panic!("no <{name} href> in <{}>", self.name))
            .to_string()
    }
}

/// Parses an XML document (panics when malformed).
pub fn xml(text: &str) -> El {
    let mut r = quick_xml::Reader::from_str(text);
    r.config_mut().trim_text(true);
    let mut stack: Vec<El> = vec![El::default()];
    loop {
        let ev = r
            .read_event()
            .unwrap_or_else(|e| panic!("bad XML {e}: {text}"));
        let closes = matches!(ev, Event::End(_) | Event::Empty(_));
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        )
                    })
                    .collect();
                stack.push(El {
                    name: String::from_utf8(e.local_name().as_ref().to_vec()).unwrap(),
                    attrs,
                    ..El::default()
                });
            }
            Event::Text(t) => stack.last_mut().unwrap().text += &t.unescape().unwrap(),
            Event::Eof => break,
            _ => {}
        }
        if closes {
            let done = stack.pop().unwrap();
            stack.last_mut().unwrap().children.push(done);
        }
    }
    assert_eq!(stack.len(), 1, "unclosed XML: {text}");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root: {text}");
    doc.children.pop().unwrap()
}

/// Reads a fixture of `fixtures/cimi/`.
pub fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cimi")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Asserts that `ours` has the structure of the seed's `seed`: the same
/// root name and root attributes (names and values: xmlns, resourceURI),
/// every child element name of the seed in the same order (ours may have
/// more), the seed's attribute names on those children, and recursively
/// the same for the first member of each repeated element.
pub fn same_shape(seed: &El, ours: &El) {
    assert_eq!(seed.name, ours.name);
    for (k, v) in &seed.attrs {
        assert_eq!(
            ours.attr(k),
            Some(v.as_str()),
            "attribute {k} of <{}>",
            seed.name
        );
    }
    let names = |e: &El| {
        let mut v: Vec<String> = e.children.iter().map(|c| c.name.clone()).collect();
        v.dedup();
        v
    };
    let (want, got) = (names(seed), names(ours));
    let mut it = got.iter();
    for w in &want {
        assert!(
            it.any(|g| g == w),
            "<{w}> missing or out of order in <{}>: seed {want:?}, ours {got:?}",
            seed.name
        );
    }
    for w in &want {
        let (s, o) = (seed.child(w).unwrap(), ours.child(w).unwrap());
        for (k, _) in &s.attrs {
            assert!(o.attr(k).is_some(), "attribute {k} of <{w}>");
        }
        if !s.children.is_empty() {
            same_shape(s, o);
        }
    }
}
