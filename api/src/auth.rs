//! Tenants and credentials: the auth file (TOML), created on first start
//! with one tenant `demo` and random secrets, and the checks every dialect
//! uses. Secrets are compared in constant time and never logged (the
//! [`Tenant`] `Debug` output redacts them).
//!
//! ```toml
//! [[tenants]]
//! id = "demo"          # the {tenant_id} in /v1.1/{tenant_id}/...
//! token = "..."        # X-Auth-Token (Authorization: Token, ES-API-KEY elsewhere)
//! user = "demo"        # HTTP Basic user (Deltacloud, CIMI)
//! password = "..."
//! admin = false        # optional; true: hand images to other tenants, Keystone's
//!                      # admin role, Cinder's admin actions
//! [tenants.quota]      # optional; an absent limit is unlimited
//! gigabytes = 100
//! volumes = 10
//! snapshots = 20
//! ```

use crate::error::{ApiError, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Per-tenant limits; `None` is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Total GB of the tenant's volumes, snapshots and images.
    pub gigabytes: Option<u64>,
    /// Number of volumes.
    pub volumes: Option<u64>,
    /// Number of snapshots and images.
    pub snapshots: Option<u64>,
}

/// One tenant and its secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant id used in URLs.
    pub id: String,
    /// The API token.
    pub token: String,
    /// The HTTP Basic user name.
    pub user: String,
    /// The HTTP Basic password.
    pub password: String,
    /// An operator tenant: may hand its images (and their quota charge)
    /// to another tenant (Danube `PUT owner`); Keystone gives it the
    /// `admin` role and Cinder's admin-only actions accept it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// Limits, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("admin", &self.admin)
            .field("quota", &self.quota)
            .finish()
    }
}

impl Tenant {
    /// The tenant's quota (unlimited when absent).
    pub fn quota(&self) -> Quota {
        self.quota.clone().unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    tenants: Vec<Tenant>,
}

/// The loaded tenants.
#[derive(Clone, Debug)]
pub struct Auth {
    tenants: Vec<Tenant>,
}

fn secret_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Auth {
    /// Tenants from TOML text, validated: ids non-empty and URL-safe,
    /// ids, tokens and users unique, secrets non-empty.
    pub fn parse(text: &str) -> Result<Auth> {
        let file: AuthFile = toml::from_str(text)
            .map_err(|e| ApiError::config(format!("invalid auth file: {e}")))?;
        Auth::new(file.tenants)
    }

    /// Tenants from a list, validated as in [`Auth::parse`].
    pub fn new(tenants: Vec<Tenant>) -> Result<Auth> {
        for (i, t) in tenants.iter().enumerate() {
            let ok_id = !t.id.is_empty()
                && t.id.len() <= 64
                && t.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok_id {
                return Err(ApiError::config(format!(
                    "tenant {i}: id '{}' must be 1-64 characters of [A-Za-z0-9._-]",
                    t.id.escape_debug()
                )));
            }
            if t.token.is_empty() || t.password.is_empty() || t.user.is_empty() {
                return Err(ApiError::config(format!(
                    "tenant '{}': token, user and password must not be empty",
                    t.id
                )));
            }
            for u in &tenants[..i] {
                if u.id == t.id || u.user == t.user {
                    return Err(ApiError::config(format!(
                        "tenants '{}' and '{}' share an id or a user",
                        u.id, t.id
                    )));
                }
                if secret_eq(&u.token, &t.token) {
                    return Err(ApiError::config(format!(
                        "tenants '{}' and '{}' share a token",
                        u.id, t.id
                    )));
                }
            }
        }
        Ok(Auth { tenants })
    }

    /// Reads the auth file at `path`, or creates it (mode 0600) with one
    /// tenant `demo` and random secrets. Returns the tenants and whether
    /// the file was created.
    pub fn load_or_create(path: &Path) -> Result<(Auth, bool)> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Ok(m) = std::fs::metadata(path) {
                    if m.permissions().mode() & 0o077 != 0 {
                        tracing::warn!(
                            "auth file {} is readable by other users; chmod 600 it",
                            path.display()
                        );
                    }
                }
                let auth = Auth::parse(&text).map_err(|e| {
                    ApiError::config(format!("{}: {}", path.display(), e.message()))
                })?;
                Ok((auth, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let auth = Auth::new(vec![Tenant {
                    id: "demo".into(),
                    token: random_secret(),
                    user: "demo".into(),
                    password: random_secret(),
                    admin: false,
                    quota: None,
                }])?;
                auth.write(path)?;
                Ok((auth, true))
            }
            Err(e) => Err(ApiError::config(format!(
                "reading auth file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes the tenants to `path` atomically, readable by the owner only.
    pub fn write(&self, path: &Path) -> Result<()> {
        let err = |e: std::io::Error| {
            ApiError::new(
                ErrorKind::Config,
                format!("writing auth file {}: {e}", path.display()),
            )
        };
        let body = toml::to_string_pretty(&AuthFile {
            tenants: self.tenants.clone(),
        })
        .map_err(|e| ApiError::config(format!("encoding auth file: {e}")))?;
        let tmp = path.with_extension("toml.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(b"# blockd API tenants and secrets (keep private).\n")
            .and_then(|_| f.write_all(body.as_bytes()))
            .and_then(|_| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }

    /// Every tenant.
    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    /// The tenant whose token is `token`. Every tenant's token is compared,
    /// each in constant time.
    pub fn by_token(&self, token: &str) -> Option<&Tenant> {
        let mut found = None;
        for t in &self.tenants {
            if secret_eq(&t.token, token) {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            crate::access::note_tenant(&t.id);
        }
        found
    }

    /// The tenant with id `id`.
    pub fn by_id(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// The tenant with HTTP Basic credentials `user`/`password`.
    pub fn by_basic(&self, user: &str, password: &str) -> Option<&Tenant> {
        let mut found = None;
        for t in &self.tenants {
            let u = secret_eq(&t.user, user);
            let p = secret_eq(&t.password, password);
            if u & p {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            crate::access::note_tenant(&t.id);
        }
        found
    }

    /// Checks a token presented on `tenant_id`'s path: no token or an
    /// unknown one is 401; another tenant's token is 403.
    pub fn authorize_token(&self, tenant_id: &str, token: Option<&str>) -> Result<&Tenant> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthorized,
                "This server could not verify that you are authorized to access the document you requested.",
            )
        })?;
        match self.by_token(token) {
            None => Err(ApiError::new(
                ErrorKind::Unauthorized,
                "The request you have made requires authentication.",
            )),
            Some(t) if t.id == tenant_id => Ok(t),
            Some(_) => Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("The token is not valid for tenant {tenant_id}."),
            )),
        }
    }
}

/// The tenant of an HTTP Basic `Authorization` header (Deltacloud, CIMI):
/// 401 for a missing, malformed or wrong one.
pub(crate) fn basic<'a>(auth: &'a Auth, header: Option<&str>) -> Result<&'a Tenant> {
    use base64::Engine as _;
    let denied = |m: &str| ApiError::new(ErrorKind::Unauthorized, m);
    let header = header.ok_or_else(|| denied("HTTP Basic credentials are required."))?;
    let (scheme, creds) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") || creds.len() > 1024 {
        return Err(denied("Only HTTP Basic authentication is accepted."));
    }
    let malformed = || denied("Malformed HTTP Basic credentials.");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(raw).map_err(|_| malformed())?;
    let (user, password) = text.split_once(':').ok_or_else(malformed)?;
    auth.by_basic(user, password)
        .ok_or_else(|| denied("Invalid user name or password."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[[tenants]]
id = "a"
token = "ta"
user = "ua"
password = "pa"
[tenants.quota]
volumes = 2

[[tenants]]
id = "b"
token = "tb"
user = "ub"
password = "pb"
"#;

    #[test]
    fn parses_and_authorizes() {
        let a = Auth::parse(TWO).unwrap();
        assert_eq!(a.tenants().len(), 2);
        assert_eq!(a.tenants()[0].quota().volumes, Some(2));
        assert_eq!(a.tenants()[1].quota(), Quota::default());
        assert_eq!(a.authorize_token("a", Some("ta")).unwrap().id, "a");
        let k = |r: Result<&Tenant>| r.unwrap_err().kind();
        assert_eq!(k(a.authorize_token("a", None)), ErrorKind::Unauthorized);
        assert_eq!(k(a.authorize_token("a", Some(""))), ErrorKind::Unauthorized);
        assert_eq!(
            k(a.authorize_token("a", Some("t"))),
            ErrorKind::Unauthorized
        );
        assert_eq!(k(a.authorize_token("a", Some("tb"))), ErrorKind::Forbidden);
        assert_eq!(k(a.authorize_token("zz", Some("tb"))), ErrorKind::Forbidden);
        assert_eq!(a.by_basic("ub", "pb").unwrap().id, "b");
        assert!(a.by_basic("ua", "pb").is_none());
    }

    #[test]
    fn rejects_bad_files() {
        for bad in [
            "tenants = 1",
            "[[tenants]]\nid = \"a\"\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"\nextra = 1",
            "[[tenants]]\nid = \"a/b\"\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"",
            "[[tenants]]\nid = \"a\"\ntoken = \"\"\nuser = \"u\"\npassword = \"p\"",
            "[[tenants]]\nid = \"a\"\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"\n[[tenants]]\nid = \"b\"\ntoken = \"t\"\nuser = \"v\"\npassword = \"p\"",
        ] {
            assert_eq!(Auth::parse(bad).unwrap_err().kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn creates_private_file_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.toml");
        let (a, created) = Auth::load_or_create(&p).unwrap();
        assert!(created);
        assert_eq!(a.tenants()[0].id, "demo");
        assert_eq!(a.tenants()[0].token.len(), 48);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (b, created) = Auth::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(a.tenants(), b.tenants());
        assert!(!format!("{:?}", a).contains(&a.tenants()[0].token));
    }
}
