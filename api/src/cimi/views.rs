//! The typed CIMI resources: one struct per resource and collection this
//! dialect serves, each deriving [`Serialize`] (the JSON answer) and
//! [`utoipa::ToSchema`] (its schema in `openapi.rs`). They are the one
//! source of truth: the XML answer and `$filter` work on the generic
//! document tree ([`Doc`]) derived from a struct by [`to_doc`], which
//! reads the struct's JSON in field order, so XML elements follow the
//! struct's field order.
//!
//! `resourceURI` is set on the top-level resource only (in XML it is an
//! attribute of the root element); members of a collection omit it.

use super::doc::{Doc, Node};
use super::NS;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use utoipa::ToSchema;

/// A resource or collection this dialect answers with.
pub(crate) trait Resource: Serialize {
    /// Its XML element name (`Volume`, `Collection`).
    const ELEM: &'static str;
    /// The XML element of its members (collections only).
    const MEMBER: &'static str = "";
    /// The type name in its `resourceURI` (`Volume`, `VolumeCollection`).
    const TYPE: &'static str;
}

/// The `resourceURI` of a CIMI type.
pub(crate) fn resource_uri(ty: &str) -> String {
    format!("{NS}/{ty}")
}

/// A reference to another resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Href {
    /// Its absolute URI.
    pub href: String,
}

impl Href {
    pub fn new(href: String) -> Href {
        Href { href }
    }
}

/// An operation the resource allows.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// `add`, `edit` or `delete`.
    pub rel: String,
    /// Where to send it.
    pub href: String,
}

/// `rel` on `href`, for each `rel`.
pub(crate) fn ops(rels: &[&str], href: &str) -> Vec<Operation> {
    rels.iter()
        .map(|r| Operation {
            rel: (*r).to_string(),
            href: href.to_string(),
        })
        .collect()
}

/// The cloud entry point.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudEntryPoint {
    #[serde(rename = "resourceURI")]
    pub resource_uri: String,
    /// Its own URI.
    pub id: String,
    /// `blockd`.
    pub name: String,
    pub description: String,
    /// `/cimi/` on the host the client used.
    #[serde(rename = "baseURI")]
    pub base_uri: String,
    pub volumes: Href,
    pub volume_templates: Href,
    pub volume_configs: Href,
    pub volume_images: Href,
    pub machines: Href,
}

impl Resource for CloudEntryPoint {
    const ELEM: &'static str = "CloudEntryPoint";
    const TYPE: &'static str = "CloudEntryPoint";
}

/// A volume. Capacities are in KiB.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Set on a volume answered alone.
    #[serde(rename = "resourceURI", skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// xsd:dateTime, UTC.
    pub created: String,
    /// User properties, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
    /// `CREATING`, `AVAILABLE`, `DELETING`, `CAPTURING` or `ERROR`.
    pub state: String,
    /// `http://schemas.dmtf.org/cimi/1/mapped`.
    #[serde(rename = "type")]
    pub kind: String,
    /// KiB.
    pub capacity: u64,
    pub bootable: bool,
    /// `edit` and `delete`.
    pub operations: Vec<Operation>,
}

impl Resource for Volume {
    const ELEM: &'static str = "Volume";
    const TYPE: &'static str = "Volume";
}

/// A volume image: an engine image captured from a volume.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeImage {
    /// Set on an image answered alone.
    #[serde(rename = "resourceURI", skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// xsd:dateTime, UTC.
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
    pub state: String,
    /// The volume (or image) it was captured from, when the caller sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_location: Option<Href>,
    pub bootable: bool,
    /// `edit` and `delete` on the tenant's own images; absent on public
    /// images.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
}

impl Resource for VolumeImage {
    const ELEM: &'static str = "VolumeImage";
    const TYPE: &'static str = "VolumeImage";
}

/// One of the fixed volume configurations.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfiguration {
    #[serde(rename = "resourceURI", skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    pub id: String,
    /// `small`, `medium` or `large`.
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `raw`.
    pub format: String,
    /// KiB.
    pub capacity: u64,
}

impl Resource for VolumeConfiguration {
    const ELEM: &'static str = "VolumeConfiguration";
    const TYPE: &'static str = "VolumeConfiguration";
}

/// One of the fixed volume templates (one per configuration).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeTemplate {
    #[serde(rename = "resourceURI", skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    pub id: String,
    pub name: String,
    pub description: String,
    pub volume_config: Href,
}

impl Resource for VolumeTemplate {
    const ELEM: &'static str = "VolumeTemplate";
    const TYPE: &'static str = "VolumeTemplate";
}

/// A machine some of the tenant's volumes are (or may be) attached to.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    #[serde(rename = "resourceURI", skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    pub id: String,
    /// The machine id.
    pub name: String,
    /// Its MachineVolume collection.
    pub volumes: Href,
}

impl Resource for Machine {
    const ELEM: &'static str = "Machine";
    const TYPE: &'static str = "Machine";
}

/// A volume attached to a machine.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineVolume {
    #[serde(rename = "resourceURI", skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    pub id: String,
    /// `nbdExport` and `nbdUri` when the server serves NBD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
    /// The device, such as `/dev/vdb`.
    pub initial_location: String,
    pub volume: Href,
    /// `delete`.
    pub operations: Vec<Operation>,
}

impl Resource for MachineVolume {
    const ELEM: &'static str = "MachineVolume";
    const TYPE: &'static str = "MachineVolume";
}

/// Gives single resources `top()`: the resource answered alone, with its
/// `resourceURI`.
macro_rules! top_level {
    ($($name:ident),*) => {$(
        impl $name {
            pub fn top(mut self) -> $name {
                self.resource_uri = Some(resource_uri(stringify!($name)));
                self
            }
        }
    )*};
}

top_level!(
    Volume,
    VolumeImage,
    VolumeConfiguration,
    VolumeTemplate,
    Machine,
    MachineVolume
);

/// Defines a collection type of `member` resources under `key`.
macro_rules! collection {
    ($name:ident, $member:ident, $key:tt, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Serialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(rename = "resourceURI")]
            pub resource_uri: String,
            pub id: String,
            /// How many members pass `$filter` (before `$first`/`$last`).
            pub count: usize,
            /// The members on this page, without `resourceURI`.
            #[serde(rename = $key)]
            pub entries: Vec<$member>,
            /// `add` when members can be created.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub operations: Vec<Operation>,
        }

        impl $name {
            pub fn new(id: String, count: usize, entries: Vec<$member>, add: bool) -> $name {
                let operations = if add { ops(&["add"], &id) } else { vec![] };
                $name {
                    resource_uri: resource_uri(stringify!($name)),
                    id,
                    count,
                    entries,
                    operations,
                }
            }
        }

        impl Resource for $name {
            const ELEM: &'static str = "Collection";
            const MEMBER: &'static str = stringify!($member);
            const TYPE: &'static str = stringify!($name);
        }
    };
}

collection!(VolumeCollection, Volume, "volumes", "The tenant's volumes.");
collection!(
    VolumeImageCollection,
    VolumeImage,
    "volumeImages",
    "The volume images the tenant sees (its own and public ones)."
);
collection!(
    VolumeConfigurationCollection,
    VolumeConfiguration,
    "volumeConfigurations",
    "The fixed volume configurations."
);
collection!(
    VolumeTemplateCollection,
    VolumeTemplate,
    "volumeTemplates",
    "The fixed volume templates."
);
collection!(
    MachineCollection,
    Machine,
    "machines",
    "The machines the tenant's volumes are attached to."
);
collection!(
    MachineVolumeCollection,
    MachineVolume,
    "machineVolumes",
    "The volumes attached to one machine."
);

/// An error.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Error {
    /// The HTTP status.
    pub status: u16,
    pub message: String,
}

// ---- the document tree of a typed resource ----

/// A JSON value with object members in the order they were written.
enum Ordered {
    Scalar(Value),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }
    fn visit_unit<E>(self) -> std::result::Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<Ordered, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Ordered::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<Ordered, A::Error> {
        let mut v = Vec::new();
        while let Some(kv) = a.next_entry()? {
            v.push(kv);
        }
        Ok(Ordered::Object(v))
    }
}

/// The document tree of a typed resource, fields in struct order: an
/// object `{"href"}` is a reference, `operations` the operations,
/// `properties` the property map, another array the members (elements
/// `member`); `resourceURI` becomes the root's attribute.
pub(crate) fn to_doc<T: Resource>(r: &T) -> Doc {
    // Serializing these plain structs cannot fail; the text keeps the
    // struct's field order, which a `Value` would not.
    let text = serde_json::to_string(r).unwrap_or_default();
    let tree = serde_json::from_str::<Ordered>(&text).unwrap_or(Ordered::Object(vec![]));
    let mut d = object_doc(T::ELEM, T::MEMBER, tree);
    d.uri = resource_uri(T::TYPE);
    d
}

fn object_doc(elem: &'static str, member: &'static str, o: Ordered) -> Doc {
    let mut d = Doc {
        elem,
        uri: String::new(),
        fields: Vec::new(),
    };
    let Ordered::Object(fields) = o else {
        return d;
    };
    for (k, v) in fields {
        let node = match (k.as_str(), v) {
            ("resourceURI", _) => continue,
            ("operations", Ordered::Array(a)) => Node::Ops(
                a.into_iter()
                    .filter_map(|o| match o {
                        Ordered::Object(f) => {
                            let get = |n: &str| {
                                f.iter().find(|(k, _)| k == n).and_then(|(_, v)| match v {
                                    Ordered::Scalar(Value::String(s)) => Some(s.clone()),
                                    _ => None,
                                })
                            };
                            Some((get("rel")?, get("href")?))
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            ("properties", Ordered::Object(p)) => Node::Props(
                p.into_iter()
                    .filter_map(|(k, v)| match v {
                        Ordered::Scalar(Value::String(s)) => Some((k, s)),
                        _ => None,
                    })
                    .collect(),
            ),
            (_, Ordered::Array(a)) => {
                Node::Entries(a.into_iter().map(|m| object_doc(member, "", m)).collect())
            }
            (_, Ordered::Object(mut f)) => match f.pop() {
                Some((h, Ordered::Scalar(Value::String(s)))) if h == "href" && f.is_empty() => {
                    Node::Href(s)
                }
                _ => continue,
            },
            (_, Ordered::Scalar(Value::String(s))) => Node::Text(s),
            (_, Ordered::Scalar(Value::Bool(b))) => Node::Bool(b),
            (_, Ordered::Scalar(Value::Number(n))) => match n.as_u64() {
                Some(i) => Node::Int(i),
                None => Node::Text(n.to_string()),
            },
            (_, Ordered::Scalar(_)) => continue,
        };
        d.fields.push((k, node));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume() -> Volume {
        Volume {
            resource_uri: Some(resource_uri("Volume")),
            id: "http://h/cimi/volumes/1".into(),
            name: Some("a<b".into()),
            description: None,
            created: "2012-06-29T20:04:03Z".into(),
            properties: Some([("k".to_string(), "v".to_string())].into()),
            state: "AVAILABLE".into(),
            kind: "http://schemas.dmtf.org/cimi/1/mapped".into(),
            capacity: 1024,
            bootable: false,
            operations: ops(&["edit", "delete"], "http://h/cimi/volumes/1"),
        }
    }

    #[test]
    fn doc_follows_the_struct() {
        let v = volume();
        let d = to_doc(&v);
        let keys: Vec<&str> = d.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "id",
                "name",
                "created",
                "properties",
                "state",
                "type",
                "capacity",
                "bootable",
                "operations"
            ]
        );
        // The tree's JSON is the struct's JSON.
        assert_eq!(d.to_json(true), serde_json::to_value(&v).unwrap());
        assert_eq!(d.scalar("capacity").as_deref(), Some("1024"));
        let c = VolumeCollection::new("http://h/cimi/volumes".into(), 1, vec![v], true);
        let d = to_doc(&c);
        assert_eq!(d.elem, "Collection");
        assert_eq!(d.uri, resource_uri("VolumeCollection"));
        let mut want = serde_json::to_value(&c).unwrap();
        want["volumes"][0]
            .as_object_mut()
            .unwrap()
            .remove("resourceURI");
        assert_eq!(d.to_json(true), want);
        let x = String::from_utf8(d.to_xml()).unwrap();
        assert!(x.contains("<Volume>\n    <id>"), "{x}");
        assert!(x.contains("<operation rel=\"add\""), "{x}");
    }
}
