//! Where the tier's objects go: an `--object-store` URL made into an
//! object_store client and a key prefix.
//!
//! - `s3://BUCKET[/PREFIX]`: S3 (AWS, Ceph's RADOS Gateway, ...), path-style
//!   requests; endpoint, region and credentials from the usual environment
//!   (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, `AWS_REGION`,
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!   `AWS_ALLOW_HTTP`); plain http is allowed by itself only for a loopback
//!   endpoint. Credentials are never put in a log line or an error.
//!   Or from a TOML file (`--object-store-config FILE`, or
//!   `BLOCKD_OBJECT_STORE_CONFIG`): `endpoint`, `region`, `access_key_id`,
//!   `secret_access_key`, `session_token`, `allow_http`, each overriding
//!   the environment; a file other users can read is warned about, as the
//!   API's auth file is.
//! - `file:///DIR`: a local directory (object_store's local backend).
//! - `memory://`: in process memory (tests).

use crate::{Error, Result};
use object_store::path::Path as ObjPath;
use object_store::ObjectStore;
use std::sync::Arc;

/// S3 settings from a config file (values never logged: `Debug` shows
/// which are set, not what they are).
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The endpoint URL (radosgw, MinIO, ...); AWS when absent.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// A session token (temporary credentials).
    pub session_token: Option<String>,
    /// Allow a plain-http endpoint that is not loopback.
    pub allow_http: Option<bool>,
    /// `serve`'s durability mode (`local` or `remote`) when
    /// `--durability` is not given.
    pub durability: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.is_some())
            .field("secret_access_key", &self.secret_access_key.is_some())
            .field("session_token", &self.session_token.is_some())
            .field("allow_http", &self.allow_http)
            .field("durability", &self.durability)
            .finish()
    }
}

impl S3Config {
    /// Reads a config file (TOML); warns when other users may read it.
    pub fn load(path: &std::path::Path) -> Result<S3Config> {
        use std::os::unix::fs::PermissionsExt;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("reading {}", path.display()), e))?;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "object store config {} is readable by other users; chmod 600 it",
                    path.display()
                );
            }
        }
        // toml's messages quote the offending line, which may hold a
        // secret: only the position goes into the error.
        toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" at byte {}", s.start))
                .unwrap_or_default();
            Error::Config(format!(
                "{}: not a valid object store config{at} (keys: endpoint, region, \
                 access_key_id, secret_access_key, session_token, allow_http, durability)",
                path.display()
            ))
        })
    }
}

/// An object store and the prefix the store's objects live under.
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    /// The URL as given, for messages (holds no secret).
    url: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// True when an endpoint URL names this machine (plain http is then no
/// exposure of credentials or data).
fn is_loopback(endpoint: &str) -> bool {
    let Ok(u) = url::Url::parse(endpoint) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// How one S3 request is retried (5xx, 429, a refused or reset
/// connection): 4 more tries, 0.1 s doubling to at most 2 s apart, none
/// started after 30 s. object_store's own default (10 tries over up to 3
/// minutes) would hide an unreachable store behind one long request:
/// with this the uploader sees the failure within seconds, counts it and
/// retries the generation with its own backoff (`upload.rs`), and a read
/// of an evicted segment fails instead of hanging.
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: std::time::Duration::from_secs(30),
    }
}

impl Remote {
    /// Parses an `--object-store` URL and builds its client.
    pub fn from_url(url: &str) -> Result<Remote> {
        Self::from_url_with(url, None)
    }

    /// [`Remote::from_url`] with S3 settings from a config file taking
    /// precedence over the environment.
    pub fn from_url_with(url: &str, config: Option<&S3Config>) -> Result<Remote> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::Config(format!("--object-store {url:?}: {e}")))?;
        let prefix = parsed.path().trim_matches('/').to_string();
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" => {
                let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    Error::Config(format!("{url}: no bucket (s3://BUCKET/PREFIX)"))
                })?;
                // reqwest's TLS (for https endpoints) uses the process's
                // rustls provider: ring, as everywhere in blockd. Already
                // installed is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_virtual_hosted_style_request(false)
                    .with_retry(retry_config());
                let endpoint = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .ok();
                let endpoint = config.and_then(|c| c.endpoint.clone()).or(endpoint);
                if let Some(ep) = &endpoint {
                    b = b.with_endpoint(ep);
                    if is_loopback(ep) {
                        b = b.with_allow_http(true);
                    }
                }
                if let Some(c) = config {
                    if let Some(v) = &c.region {
                        b = b.with_region(v);
                    }
                    if let Some(v) = &c.access_key_id {
                        b = b.with_access_key_id(v);
                    }
                    if let Some(v) = &c.secret_access_key {
                        b = b.with_secret_access_key(v);
                    }
                    if let Some(v) = &c.session_token {
                        b = b.with_token(v);
                    }
                    if c.allow_http == Some(true) {
                        b = b.with_allow_http(true);
                    }
                }
                Arc::new(b.build().map_err(|e| {
                    // The builder's messages name settings, not their values.
                    Error::Config(format!("{url}: {e}"))
                })?)
            }
            "file" => {
                let dir = std::path::Path::new(parsed.path());
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(dir)
                        .map_err(Error::Remote)?,
                )
            }
            "memory" => Arc::new(object_store::memory::InMemory::new()),
            other => {
                return Err(Error::Config(format!(
                    "{url}: unknown scheme {other:?} (s3://BUCKET/PREFIX, file:///DIR)"
                )))
            }
        };
        // A file:// URL's path is the directory itself.
        let prefix = if parsed.scheme() == "file" {
            String::new()
        } else {
            prefix
        };
        Ok(Remote {
            store,
            prefix: ObjPath::from(prefix),
            url: url.to_string(),
        })
    }

    /// A remote over an existing object store (tests: in-memory).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Remote {
        Remote {
            store,
            prefix: ObjPath::from(prefix),
            url: format!("memory:///{prefix}"),
        }
    }

    /// The object store client.
    pub(crate) fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    /// The full key of `rel` (a key relative to the prefix, `/`-separated).
    pub(crate) fn key(&self, rel: &str) -> ObjPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/') {
            p = p.clone().join(part);
        }
        p
    }

    /// The key prefix of a folder relative to the store prefix.
    pub(crate) fn folder(&self, rel: &str) -> ObjPath {
        self.key(rel)
    }

    /// `key` relative to the prefix.
    pub(crate) fn rel(&self, key: &ObjPath) -> Option<String> {
        key.prefix_match(&self.prefix).map(|parts| {
            parts
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_loopback("http://127.0.0.1:8000"));
        assert!(is_loopback("http://localhost:8000/"));
        assert!(is_loopback("http://[::1]:8000/"));
        assert!(!is_loopback("http://10.0.0.1:8000"));
        assert!(!is_loopback("not a url"));
        let r = Remote::from_url("memory:///a/b").unwrap();
        assert_eq!(r.key("segments/x").as_ref(), "a/b/segments/x");
        assert_eq!(
            r.rel(&r.key("generations/g")).as_deref(),
            Some("generations/g")
        );
        assert!(matches!(
            Remote::from_url("ftp://x/y"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Remote::from_url("s3:///nobucket"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn config_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s3.toml");
        std::fs::write(
            &p,
            "endpoint = \"http://127.0.0.1:9\"\nregion = \"r\"\naccess_key_id = \"AK\"\nsecret_access_key = \"SECRETVALUE\"\n",
        )
        .unwrap();
        let c = S3Config::load(&p).unwrap();
        assert_eq!(c.region.as_deref(), Some("r"));
        assert_eq!(c.durability, None);
        assert!(!format!("{c:?}").contains("SECRETVALUE"));
        let r = Remote::from_url_with("s3://b/p", Some(&c)).unwrap();
        assert_eq!(r.key("x").as_ref(), "p/x");
        std::fs::write(&p, "secret_access_key = SECRETVALUE\n").unwrap();
        let e = S3Config::load(&p).unwrap_err().to_string();
        assert!(
            !e.contains("SECRETVALUE") && e.contains("not a valid"),
            "{e}"
        );
        std::fs::write(&p, "durability = \"remote\"\n").unwrap();
        assert_eq!(
            S3Config::load(&p).unwrap().durability.as_deref(),
            Some("remote")
        );
        std::fs::write(&p, "secret = \"x\"\n").unwrap();
        assert!(S3Config::load(&p).is_err());
    }
}
