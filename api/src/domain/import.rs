//! Image imports, the dialect-neutral part: where an import may read from
//! (`http(s)://` only through [`crate::remote`]: the operator's allow-list,
//! public addresses; `file://` only inside the configured import
//! directory, canonicalized, checked again when opened), and the staging
//! volume an import fills before it becomes an image.
//!
//! **Invariant:** the staging volume has no owner (no tenant sees it or is
//! charged for it) and carries [`meta::IMPORT_TMP`], so a crash leaves
//! nothing a restart does not delete; it is deleted when the import ends,
//! whatever the outcome ([`Txn`] scratch). The image is made from it in
//! one durable step under the quota rule and the per-tenant name rule, so
//! imports count against quota like every other image.

use super::ops::{self, Txn};
use super::quota::{self, Charge};
use super::{visibility, Ctx, Locked};
use crate::error::{ApiError, Result};
use crate::meta;
use crate::ApiState;
use engine::{ObjectId, ObjectInfo, Store};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a manifest or an image file comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A remote URL, fetched through [`crate::remote`].
    Http(String),
    /// A canonical path inside the import directory.
    File(PathBuf),
}

/// Resolves a `file://` URL's rest to a canonical path inside `dir`.
fn resolve_file(rest: &str, dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir = dir.ok_or("file:// URLs are not enabled on this server.")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    let path = crate::http::percent_decode(path);
    if !path.starts_with('/') || path.contains('\0') {
        return Err("A file:// URL must name an absolute path.".into());
    }
    check_inside(Path::new(&path), dir)
}

/// `p` canonicalized, if it is a file inside `dir`.
fn check_inside(p: &Path, dir: &Path) -> Result<PathBuf, String> {
    let outside = || "The URL points outside the image import directory.".to_string();
    let root = dir.canonicalize().map_err(|_| outside())?;
    let p = p.canonicalize().map_err(|_| outside())?;
    if !p.starts_with(&root) {
        return Err(outside());
    }
    if !p.is_file() {
        return Err("The URL does not name a file.".into());
    }
    Ok(p)
}

/// Parses an import URL of at most `max_len` bytes; `dir` is the import
/// directory (`None`: `file://` refused). The message is for the client.
pub(crate) fn parse_url(url: &str, dir: Option<&Path>, max_len: usize) -> Result<Source, String> {
    if url.len() > max_len || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("Enter a valid URL.".into());
    }
    let lower = url.to_ascii_lowercase();
    let http = ["http://", "https://"]
        .iter()
        .any(|s| lower.starts_with(s) && url.len() > s.len());
    if http {
        Ok(Source::Http(url.to_string()))
    } else if lower.starts_with("file://") {
        resolve_file(url.get("file://".len()..).unwrap_or(""), dir).map(Source::File)
    } else {
        Err("Enter a valid URL (http://, https:// or file://).".into())
    }
}

/// Opens `src` for reading (`overall` bounds a whole HTTP exchange);
/// `dir` is the import directory.
pub(crate) fn open(
    state: &ApiState,
    src: &Source,
    overall: Option<Duration>,
    dir: Option<&Path>,
) -> Result<Box<dyn Read + Send>, String> {
    match src {
        Source::Http(url) => state.import_policy().open(url, overall),
        Source::File(p) => {
            // Checked again at open time: the directory may have changed.
            let dir = dir.ok_or("file:// URLs are not enabled on this server.")?;
            let p = check_inside(p, dir)?;
            std::fs::File::open(&p)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| {
                    tracing::warn!(error = %e, "api: cannot open an import file");
                    "cannot open the file".to_string()
                })
        }
    }
}

/// Checks, before an import starts, that the caller has no image `name`
/// yet and may make one more image (its size is checked at the end).
pub(crate) fn precheck(ctx: &Ctx, _locked: &Locked, name: &str) -> Result<()> {
    let all = ctx.store().list();
    if visibility::own_image_named(&all, ctx.tenant_id(), name) {
        return Err(ApiError::conflict("Image already exists."));
    }
    quota::check(&all, ctx.tenant(), Charge::Image(0))
}

/// An engine failure during an import: logged in full, reported as
/// `what` only (no engine text reaches the tenant).
fn engine_fail(what: &str, e: &engine::Error) -> String {
    tracing::warn!(error = %e, "api: import: {what}");
    what.to_string()
}

/// The hidden volume an import writes into.
pub(crate) struct Staging<'s> {
    store: &'s Store,
    txn: Txn<'s>,
    id: ObjectId,
    size: u64,
}

impl<'s> Staging<'s> {
    /// A staging volume of `size` bytes for task `task`.
    pub fn new(store: &'s Store, task: &str, size: u64) -> Result<Self, String> {
        let mut m = BTreeMap::new();
        meta::set(&mut m, meta::IMPORT_TMP, Some(task));
        let o = store
            .create_volume_with(
                None,
                size,
                false,
                engine::ObjectUpdate {
                    name: None,
                    status: Some("creating".into()),
                    metadata: Some(m),
                },
            )
            .map_err(|e| engine_fail("cannot create the temporary volume", &e))?;
        let mut txn = Txn::new(store);
        txn.scratch(o.id);
        Ok(Staging {
            store,
            txn,
            id: o.id,
            size,
        })
    }

    /// Grows it to `size` bytes if it is smaller.
    pub fn grow(&mut self, size: u64) -> Result<(), String> {
        if size > self.size {
            self.store
                .resize(self.id, size)
                .map_err(|e| engine_fail("cannot grow the temporary volume", &e))?;
            self.size = size;
        }
        Ok(())
    }

    /// Writes `data` at `offset` (inside its size).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), String> {
        self.store
            .write(self.id, offset, data, false)
            .map_err(|e| engine_fail("cannot write the image", &e))
    }

    /// Makes the image `name` of the caller from it, with metadata `m`,
    /// under the quota and per-tenant name rules (`check` adds the
    /// dialect's own rules, under the same lock); the staging volume is
    /// deleted whatever happens.
    pub fn into_image(
        self,
        ctx: &Ctx,
        name: &str,
        m: BTreeMap<String, String>,
        check: impl FnOnce(&Locked) -> Result<()>,
    ) -> Result<ObjectInfo> {
        self.store.flush()?;
        let src = self.store.get(self.id)?;
        let locked = ctx.lock();
        check(&locked)?;
        let o = ops::capture_image(ctx, &locked, &src, Some(name), m)?;
        drop(locked);
        self.txn.commit();
        Ok(o)
    }
}
