//! The one visibility rule, and image names as tenants see them.
//!
//! A tenant sees its own objects; of other objects only images: public
//! ones (access "1") and those without an owner (made offline). Volumes
//! and snapshots without an owner are invisible to API tenants.
//!
//! Image names are per tenant: the name is kept in the image's metadata
//! ([`meta::IMAGE_NAME`]), not as an engine name, so two tenants may each
//! have an image `base`, and no answer tells a tenant that another's
//! private name exists. A name resolves to the caller's own image first,
//! then to the oldest public (or ownerless) image of that name.

use crate::meta;
use engine::{ObjectInfo, ObjectKind};

/// True when `tenant` may see `o` as an object of `kind`.
pub(crate) fn visible(o: &ObjectInfo, kind: ObjectKind, tenant: &str) -> bool {
    if o.kind != kind {
        return false;
    }
    match meta::get(o, meta::TENANT) {
        Some(t) if t == tenant => true,
        Some(_) => kind == ObjectKind::Image && meta::get(o, meta::IMAGE_ACCESS) == Some("1"),
        None => kind == ObjectKind::Image,
    }
}

/// True when `tenant` may make a new volume from image `o`, in any
/// dialect: it sees it and it is not marked deleted (access "4").
pub(crate) fn image_usable(o: &ObjectInfo, tenant: &str) -> bool {
    visible(o, ObjectKind::Image, tenant) && meta::get(o, meta::IMAGE_ACCESS) != Some("4")
}

/// True when `tenant` owns `o`.
pub(crate) fn owned(o: &ObjectInfo, tenant: &str) -> bool {
    meta::get(o, meta::TENANT) == Some(tenant)
}

/// An image's name: its per-tenant name, else its engine name (images
/// made offline or by older versions), else its id.
pub(crate) fn image_name(o: &ObjectInfo) -> String {
    meta::get(o, meta::IMAGE_NAME)
        .map(str::to_string)
        .or_else(|| o.name.clone())
        .unwrap_or_else(|| o.id.to_string())
}

/// True when `o` is an image called `name`.
fn named(o: &ObjectInfo, name: &str) -> bool {
    o.kind == ObjectKind::Image
        && (meta::get(o, meta::IMAGE_NAME) == Some(name)
            || (meta::get(o, meta::IMAGE_NAME).is_none() && o.name.as_deref() == Some(name)))
}

/// The image `tenant` means by `name` among `all`: its own, else the
/// oldest one it sees.
pub(crate) fn image_by_name(all: &[ObjectInfo], tenant: &str, name: &str) -> Option<ObjectInfo> {
    let mut seen = all
        .iter()
        .filter(|o| named(o, name) && visible(o, ObjectKind::Image, tenant));
    let mut first: Option<&ObjectInfo> = None;
    for o in seen.by_ref() {
        if owned(o, tenant) {
            return Some(o.clone());
        }
        first = first.or(Some(o));
    }
    first.cloned()
}

/// True when `tenant` already has an image called `name` (the Danube
/// uniqueness rule, per tenant).
pub(crate) fn own_image_named(all: &[ObjectInfo], tenant: &str, name: &str) -> bool {
    all.iter().any(|o| named(o, name) && owned(o, tenant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn image(tenant: Option<&str>, name: &str, access: Option<&str>) -> ObjectInfo {
        let mut m = BTreeMap::new();
        meta::set(&mut m, meta::TENANT, tenant);
        meta::set(&mut m, meta::IMAGE_NAME, Some(name));
        meta::set(&mut m, meta::IMAGE_ACCESS, access);
        ObjectInfo {
            id: engine::ObjectId::new_random(),
            kind: ObjectKind::Image,
            name: None,
            size: 1 << 20,
            created: 0,
            status: meta::AVAILABLE.into(),
            metadata: m,
            parent: None,
            compress: false,
        }
    }

    #[test]
    fn names_are_per_tenant() {
        let a_priv = image(Some("a"), "base", None);
        let b_pub = image(Some("b"), "base", Some("1"));
        let all = vec![b_pub.clone(), a_priv.clone()];
        assert_eq!(
            image_by_name(&all, "a", "base").map(|o| o.id),
            Some(a_priv.id)
        );
        assert_eq!(
            image_by_name(&all, "c", "base").map(|o| o.id),
            Some(b_pub.id)
        );
        let only_priv = vec![a_priv];
        assert!(image_by_name(&only_priv, "c", "base").is_none());
        assert!(!own_image_named(&only_priv, "c", "base"));
        assert!(own_image_named(&only_priv, "a", "base"));
    }
}
