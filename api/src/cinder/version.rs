//! Cinder microversions: `OpenStack-API-Version: volume 3.N` (or the
//! legacy `OpenStack-Volume-microversion: 3.N`) picks the version of one
//! request, `latest` the newest; absent means 3.0. This server supports
//! 3.0 to [`Microversion::MAX`]; a version outside that range is 406, a
//! malformed one 400. Every answer names the version it used.

use super::views::{reply, Fault, Link};
use super::views_info::{MediaType, Version, VersionList};
use crate::http::{Reply, Request};
use std::fmt;

/// A volume API microversion, `3.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion {
    /// Major version (always 3 here).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Microversion {
    /// The oldest supported: 3.0.
    pub const MIN: Microversion = Microversion::v3(0);
    /// The newest supported: 3.62 (the Wallaby release's maximum).
    pub const MAX: Microversion = Microversion::v3(62);

    /// `3.minor`.
    pub const fn v3(minor: u16) -> Microversion {
        Microversion { major: 3, minor }
    }

    /// True when this request's version is at least `3.minor`.
    pub fn at_least(self, minor: u16) -> bool {
        self >= Microversion::v3(minor)
    }

    /// The version `req` asks for.
    pub fn of(req: &Request) -> Result<Microversion, Refused> {
        let wanted = match req.header("openstack-api-version") {
            Some(h) => h
                .split(',')
                .map(str::trim)
                .find_map(|s| {
                    let (service, v) = s.split_once(char::is_whitespace)?;
                    matches!(service, "volume" | "block-storage").then(|| v.trim())
                })
                .map(str::to_string),
            None => req
                .header("openstack-volume-microversion")
                .map(|v| v.trim().to_string()),
        };
        let Some(w) = wanted else {
            return Ok(Microversion::MIN);
        };
        if w.eq_ignore_ascii_case("latest") {
            return Ok(Microversion::MAX);
        }
        let parse = || -> Option<Microversion> {
            let (a, b) = w.split_once('.')?;
            let ok =
                |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|c| c.is_ascii_digit());
            if !ok(a) || !ok(b) {
                return None;
            }
            Some(Microversion {
                major: a.parse().ok()?,
                minor: b.parse().ok()?,
            })
        };
        let v = parse().ok_or_else(|| {
            Refused::Malformed(format!(
                "API Version String {} is of invalid format. Must be of format MajorNum.MinorNum.",
                w.escape_debug()
            ))
        })?;
        if v < Microversion::MIN || v > Microversion::MAX {
            return Err(Refused::Unsupported(format!(
                "Version {v} is not supported by the API. Minimum is {} and maximum is {}.",
                Microversion::MIN,
                Microversion::MAX
            )));
        }
        Ok(v)
    }
}

/// Why a requested microversion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not `N.N` (400).
    Malformed(String),
    /// Outside 3.0 to [`Microversion::MAX`] (406).
    Unsupported(String),
}

impl Refused {
    /// The fault reply (400 badRequest or 406 notAcceptable).
    pub fn reply(&self) -> Reply {
        let (status, name, msg) = match self {
            Refused::Malformed(m) => (400, "badRequest", m),
            Refused::Unsupported(m) => (406, "notAcceptable", m),
        };
        reply(status, &Fault::new(name, status, msg.clone()))
    }
}

const UPDATED: &str = "2021-03-12T00:00:00Z";

/// The v3 version document, its links under `base` (`http://host/volume`).
pub(crate) fn v3_doc(base: &str) -> Version {
    Version {
        id: "v3.0".into(),
        status: "CURRENT".into(),
        version: Microversion::MAX.to_string(),
        min_version: Microversion::MIN.to_string(),
        updated: UPDATED.into(),
        links: vec![
            Link {
                media_type: Some("text/html".into()),
                ..Link::new("describedby", "https://docs.openstack.org/".into())
            },
            Link::new("self", format!("{base}/v3/")),
        ],
        media_types: vec![MediaType {
            base: "application/json".into(),
            media_type: "application/vnd.openstack.volume+json;version=3".into(),
        }],
    }
}

/// `GET /volume/`: the versions (300, as Cinder answers its root), with
/// the OpenAPI document linked as `service-desc`.
pub(crate) fn versions(req: &Request, status: u16) -> Reply {
    let base = format!("{}/volume", req.base_url());
    reply(
        status,
        &VersionList {
            versions: vec![v3_doc(&base)],
        },
    )
    .with_header(
        "link",
        format!("<{base}/v3/openapi.json>; rel=\"service-desc\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::{HeaderMap, Method};

    fn req(h: Option<&str>) -> Request {
        let mut m = HeaderMap::new();
        if let Some(h) = h {
            m.insert("openstack-api-version", h.parse().unwrap());
        }
        Request::new(Method::GET, "/volume/v3/x", "", m, bytes::Bytes::new())
    }

    #[test]
    fn parses() {
        assert_eq!(Microversion::of(&req(None)).unwrap(), Microversion::MIN);
        assert_eq!(
            Microversion::of(&req(Some("volume 3.44"))).unwrap(),
            Microversion::v3(44)
        );
        assert_eq!(
            Microversion::of(&req(Some("compute 2.1, volume latest"))).unwrap(),
            Microversion::MAX
        );
        assert_eq!(
            Microversion::of(&req(Some("compute 2.1"))).unwrap(),
            Microversion::MIN
        );
        let k = |h| Microversion::of(&req(Some(h))).unwrap_err().reply().status;
        assert_eq!(k("volume 3.63"), 406);
        assert_eq!(k("volume 2.0"), 406);
        assert_eq!(k("volume 3"), 400);
        assert_eq!(k("volume 3.x"), 400);
        assert_eq!(Microversion::v3(5).to_string(), "3.5");
    }
}
