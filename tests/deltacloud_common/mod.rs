//! Helpers of the Deltacloud black-box tests: a client that speaks HTTP
//! Basic and sends any headers and body, an XML tree (parsed with
//! quick-xml) with the structure comparison used against the seed's
//! fixtures, and the fixtures themselves.
#![allow(dead_code)]

use crate::api_common::{Api, Resp};
use quick_xml::events::Event;
use std::collections::{BTreeMap, BTreeSet};

#[allow(unused_imports)]
pub use crate::api_common::{
    basic, DEMO_BASIC as DEMO, OTHER_BASIC as OTHER, SMALL_BASIC as SMALL,
};

/// One request: method, path (with query), credentials, extra headers and
/// an optional (content type, body).
pub fn call(
    api: &Api,
    method: &str,
    path: &str,
    creds: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Resp {
    let auth = creds.map(basic);
    let mut all: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        all.push(("Authorization", a));
    }
    all.extend_from_slice(headers);
    if let Some((ct, _)) = body {
        all.push(("Content-Type", ct));
    }
    api.send(method, path, &all, body.map(|(_, b)| b))
}

/// GET as `creds`.
pub fn get(api: &Api, path: &str, creds: (&str, &str)) -> Resp {
    call(api, "GET", path, Some(creds), &[], None)
}

/// DELETE as `creds`.
pub fn delete(api: &Api, path: &str, creds: (&str, &str)) -> Resp {
    call(api, "DELETE", path, Some(creds), &[], None)
}

/// POST a form body as `creds`.
pub fn post_form(api: &Api, path: &str, creds: (&str, &str), form: &str) -> Resp {
    call(
        api,
        "POST",
        path,
        Some(creds),
        &[],
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    )
}

/// Creates a volume by form as `creds`; asserts 201; returns its id.
pub fn volume(api: &Api, creds: (&str, &str), form: &str) -> String {
    let r = post_form(api, "/api/storage_volumes", creds, form);
    assert_eq!(r.status, 201, "{}", r.text);
    xml(&r.text).attr("id").to_string()
}

/// Creates a snapshot of `vol` as `creds`; asserts 201; returns its id.
pub fn snapshot(api: &Api, creds: (&str, &str), vol: &str) -> String {
    let r = post_form(
        api,
        "/api/storage_snapshots",
        creds,
        &format!("volume_id={vol}"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    xml(&r.text).attr("id").to_string()
}

/// A parsed XML element.
#[derive(Debug, Clone, Default)]
pub struct El {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub children: Vec<El>,
    pub text: String,
}

impl El {
    /// An attribute (panics when absent).
    pub fn attr(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:#?}", self.name))
    }

    /// The first child named `name` (panics when absent).
    pub fn child(&self, name: &str) -> &El {
        self.find(name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {self:#?}", self.name))
    }

    /// The first child named `name`.
    pub fn find(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all(&self, name: &str) -> Vec<&El> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// The text of child `name`.
    pub fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }

    /// Every path (`a/b`, `a/b@attr`) in this tree.
    pub fn structure(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect("", &mut out);
        out
    }

    fn collect(&self, prefix: &str, out: &mut BTreeSet<String>) {
        let path = if prefix.is_empty() {
            self.name.clone()
        } else {
            format!("{prefix}/{}", self.name)
        };
        for a in self.attrs.keys() {
            out.insert(format!("{path}@{a}"));
        }
        for c in &self.children {
            c.collect(&path, out);
        }
        out.insert(path);
    }
}

/// Parses an XML document (panics when malformed).
pub fn xml(text: &str) -> El {
    let mut r = quick_xml::Reader::from_str(text);
    r.config_mut().trim_text(true);
    let mut stack: Vec<El> = vec![El::default()];
    let el = |s: &quick_xml::events::BytesStart| El {
        name: String::from_utf8(s.name().as_ref().to_vec()).unwrap(),
        attrs: s
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().expect("attribute value").into_owned(),
                )
            })
            .collect(),
        ..El::default()
    };
    loop {
        match r
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {text}"))
        {
            Event::Start(s) => stack.push(el(&s)),
            Event::Empty(s) => stack.last_mut().unwrap().children.push(el(&s)),
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.unescape().expect("text")),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().expect("balanced").children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unbalanced XML: {text}");
    let mut root = stack.pop().unwrap();
    assert_eq!(root.children.len(), 1, "one root element: {text}");
    root.children.remove(0)
}

/// A fixture of `fixtures/deltacloud/`.
pub fn fixture(name: &str) -> String {
    let p = format!("{}/fixtures/deltacloud/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Asserts that every element and attribute of the fixture `name` is in
/// `ours` at the same place.
pub fn same_structure(name: &str, ours: &El) {
    let want = xml(&fixture(name)).structure();
    let have = ours.structure();
    let missing: Vec<&String> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "{name}: our response lacks {missing:?}\nours: {have:#?}"
    );
}

/// Asserts an error body in XML: `<error status url><code/><message/></error>`.
pub fn xml_error(r: &Resp, status: u16) -> El {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/xml"), "{r:?}");
    let e = xml(&r.text);
    assert_eq!(e.name, "error", "{}", r.text);
    assert_eq!(e.attr("status"), status.to_string());
    assert_eq!(e.text_of("code"), status.to_string());
    assert!(!e.text_of("message").is_empty());
    assert!(e.attr("url").starts_with("/api"), "{}", r.text);
    same_structure("error_404.xml", &e);
    e
}

/// Asserts an error body in JSON: `{"code", "message", "error"}`.
pub fn json_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert_eq!(r.json["code"], status, "{}", r.text);
    assert!(r.json["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(r.json["error"].as_str().is_some_and(|m| !m.is_empty()));
}
