//! `POST /api/image/<name>/`: the image import, as a task.
//!
//! The request is checked at once (name, fields, URLs: `http(s)://` as
//! [`crate::remote`] allows when fetched (operator allow-list, public
//! addresses only), `file://` only inside the configured import directory,
//! canonicalized),
//! the name is reserved (at most 4 imports run per tenant, 16 in all: 409
//! beyond), and 201 PENDING answers with the task id. A
//! background thread then fetches the imgadm-style manifest (at most
//! 1 MiB, one file: `size`, `sha1`, `compression` none/gzip/zstd), streams
//! the file (at most its declared size and the configured cap, in bounded
//! time) through SHA-1 and the decompressor into a hidden temporary volume
//! (no owner, so no tenant sees it; all-zero blocks are skipped), checks
//! size and checksum, then derives the image with all its metadata in one
//! durable step and deletes the temporary volume. On any failure the
//! temporary volume is deleted: nothing is left half-made.

use super::fields::{check_name, Data, MAX_DESC, MAX_URL, MAX_VERSION};
use super::images::{self, Fields};
use super::tasks::Outcome;
use super::{pending, Ctx, DResult, Fail};
use crate::domain::{
    self,
    import::{open, Source, Staging},
};
use crate::error::{ApiError, ErrorKind};
use crate::http::Reply;
use crate::meta;
use crate::remote;
use crate::ApiState;
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest manifest.
const MAX_MANIFEST: u64 = 1 << 20;
/// Longest time a manifest fetch, and a whole import, may take.
const MANIFEST_DEADLINE: Duration = Duration::from_secs(60);
const IMPORT_DEADLINE: Duration = Duration::from_secs(6 * 3600);
/// Most imports running at once, per tenant and in all.
const MAX_TASKS_PER_TENANT: usize = 4;
const MAX_TASKS: usize = 16;
/// Bytes per write into the temporary volume.
const CHUNK: usize = 1 << 20;
const MIB: u64 = 1 << 20;

fn parse_url(url: &str, dir: Option<&Path>) -> Result<Source, String> {
    domain::import::parse_url(url, dir, MAX_URL)
}

/// What the import needs from the request.
struct Job {
    state: ApiState,
    tenant: String,
    task: String,
    name: String,
    manifest: Source,
    file: Source,
    fields: Fields,
}

/// `POST /api/image/<name>/`.
#[utoipa::path(
    post,
    path = "/image/{name}/",
    operation_id = "importImage",
    tag = "image",
    summary = "Import an image from an imgadm manifest and file, as a task",
    description = "409 `Detail` while an import of that name runs or too many run; 413 over quota; 423 when the store is not operational.",
    params(("name" = String, Path, description = "the new image's name")),
    request_body(content = super::views::ImportRequest, description = "JSON object"),
    responses(
        (status = 201, description = "PENDING: poll the task", body = super::views::Envelope<super::views::ImportStarted>),
        (status = 400, description = "FAILURE: field errors", body = super::views::Envelope<super::views::FieldErrors>),
        (status = 401, description = "no or invalid token", body = super::views::Detail),
        (status = 406, description = "an image of this name exists", body = super::views::Detail),
    )
)]
pub fn start(ctx: &Ctx, name: &str) -> DResult<Reply> {
    check_name("name", name)?;
    let d = Data::of(ctx.req)?;
    let Some(manifest_url) = d.string("manifest_url", MAX_URL)? else {
        return Err(Fail::invalid("manifest_url", "This field is required."));
    };
    let file_url = d
        .string("file_url", MAX_URL)?
        .unwrap_or_else(|| format!("{}/file", manifest_url.trim_end_matches('/')));
    let fields = Fields::parse(ctx, &d)?;
    let cfg = ctx.dom.state.danube().config();
    let manifest = parse_url(&manifest_url, cfg.dir.as_deref())
        .map_err(|e| Fail::invalid("manifest_url", e))?;
    let file =
        parse_url(&file_url, cfg.dir.as_deref()).map_err(|e| Fail::invalid("file_url", e))?;

    let state = ctx.dom.state;
    let danube = state.danube();
    let tenant = ctx.dom.tenant_id();
    let task = {
        let locked = ctx.dom.lock();
        domain::import::precheck(&ctx.dom, &locked, name)?;
        images::check_alias_version(
            &ctx.dom.store().list(),
            tenant,
            None,
            name,
            fields.alias.as_deref(),
            fields.version.as_deref(),
        )?;
        if danube.pending(tenant).len() >= MAX_TASKS_PER_TENANT || danube.n_pending() >= MAX_TASKS {
            return Err(Fail::detail(
                409,
                "Too many image imports are running; try again later.",
            ));
        }
        if !danube.reserve(tenant, name) {
            return Err(Fail::detail(
                409,
                "An import of this image is already running.",
            ));
        }
        danube.start(tenant)
    };
    let job = Job {
        state: state.clone(),
        tenant: tenant.to_string(),
        task: task.clone(),
        name: name.to_string(),
        manifest,
        file,
        fields,
    };
    let spawned = std::thread::Builder::new()
        .name("danube-import".into())
        .spawn(move || run(job));
    if let Err(e) = spawned {
        danube.release(tenant, name);
        danube.finish(
            &task,
            Outcome::Failure(json!({"detail": "cannot start the task"})),
        );
        tracing::error!(error = %e, "danube: cannot start an import thread");
        return Err(Fail::detail(500, "Cannot start the import task."));
    }
    let source = remote::redact(&manifest_url);
    tracing::info!(tenant, image = name, task, %source, "danube: image import started");
    Ok(pending(
        &task,
        &super::views::ImportStarted {
            name: name.to_string(),
            status: 2,
        },
    ))
}

/// Frees the name and records a failure if the task ends without an
/// outcome (a panic included).
struct Finish<'a> {
    job: &'a Job,
    done: bool,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let d = self.job.state.danube();
        if !self.done {
            d.finish(
                &self.job.task,
                Outcome::Failure(json!({"detail": "The import task failed."})),
            );
        }
        d.release(&self.job.tenant, &self.job.name);
    }
}

fn run(job: Job) {
    let mut fin = Finish {
        job: &job,
        done: false,
    };
    let outcome = match import(&job) {
        Ok(v) => {
            tracing::info!(tenant = %job.tenant, image = job.name, "danube: image imported");
            Outcome::Success(v)
        }
        Err(e) => {
            tracing::warn!(tenant = %job.tenant, image = job.name, error = %e, "danube: image import failed");
            Outcome::Failure(json!({ "detail": e }))
        }
    };
    job.state.danube().finish(&job.task, outcome);
    fin.done = true;
    drop(fin);
}

/// The manifest's fields the import uses.
#[derive(Debug)]
struct Manifest {
    uuid: Option<String>,
    version: Option<String>,
    description: Option<String>,
    os: Option<String>,
    kind: Option<String>,
    image_size: Option<u64>,
    tags: Map<String, Value>,
    size: u64,
    sha1: String,
    compression: Compression,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

fn parse_manifest(bytes: &[u8], max_file: u64) -> Result<Manifest, String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    let m = v.as_object().ok_or("the manifest is not a JSON object")?;
    let files = match m.get("files") {
        Some(Value::Array(f)) if f.len() == 1 => f,
        _ => return Err("the manifest must list exactly one file".into()),
    };
    let f = files
        .first()
        .and_then(Value::as_object)
        .ok_or("the manifest's file is not an object")?;
    let size = f
        .get("size")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
        .ok_or("the manifest's file needs a positive integer size")?;
    if size > max_file {
        return Err(format!(
            "the image file ({size} bytes) is larger than this server accepts ({max_file} bytes)"
        ));
    }
    let sha1 = f
        .get("sha1")
        .and_then(Value::as_str)
        .filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("the manifest's file needs a sha1 checksum (40 hex digits)")?
        .to_ascii_lowercase();
    let compression = match f.get("compression").and_then(Value::as_str) {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(other) => {
            return Err(format!(
                "unsupported compression '{}' (none, gzip or zstd)",
                other.escape_debug()
            ))
        }
    };
    let image_size = match m.get("image_size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|&n| n > 0 && n <= engine::MAX_VOLUME_SIZE / MIB)
                .ok_or("the manifest's image_size must be a positive number of MB")?,
        ),
    };
    let text = |k: &str, max: usize| {
        m.get(k)
            .and_then(Value::as_str)
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(max)
                    .collect::<String>()
            })
            .filter(|s| !s.trim().is_empty())
    };
    Ok(Manifest {
        uuid: text("uuid", 64),
        version: text("version", MAX_VERSION),
        description: text("description", MAX_DESC),
        os: text("os", 32),
        kind: text("type", 32),
        image_size,
        tags: m
            .get("tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        size,
        sha1,
        compression,
    })
}

/// Danube's OS type from imgadm's `os` and `type`.
fn ostype(m: &Manifest) -> i64 {
    let zone = m.kind.as_deref() == Some("zone-dataset") || m.kind.as_deref() == Some("lx-dataset");
    match (
        m.os.as_deref().map(str::to_ascii_lowercase).as_deref(),
        zone,
    ) {
        (Some("linux"), true) => 6,
        (Some("linux"), false) => 1,
        (Some("smartos" | "illumos" | "sunos"), true) => 5,
        (Some("smartos" | "illumos" | "sunos"), false) => 2,
        (Some("bsd" | "freebsd" | "openbsd" | "netbsd"), _) => 3,
        (Some("windows"), _) => 4,
        (Some(_), _) => 7,
        (None, _) => 1,
    }
}

/// A reader that hashes and counts what passes through it and refuses to
/// go beyond `limit` bytes.
struct Hashing<'a, R: ?Sized> {
    inner: &'a mut R,
    hasher: &'a mut Sha1,
    n: &'a mut u64,
    limit: u64,
    deadline: Instant,
}

impl<R: Read + ?Sized> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the import took too long",
            ));
        }
        let k = self.inner.read(buf)?;
        let got = buf.get(..k).unwrap_or_default();
        *self.n += k as u64;
        if *self.n > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the image file is larger than its declared size ({} bytes)",
                    self.limit
                ),
            ));
        }
        self.hasher.update(got);
        Ok(k)
    }
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn round512(n: u64) -> u64 {
    n.div_ceil(512).saturating_mul(512)
}

/// Streams the (decompressed) file into the staging volume; returns its
/// length.
fn copy_into(tmp: &mut Staging, m: &Manifest, src: &mut dyn Read, cap: u64) -> Result<u64, String> {
    let mut hasher = Sha1::new();
    let mut n_in = 0u64;
    let mut out = 0u64;
    {
        let mut hashing = Hashing {
            inner: src,
            hasher: &mut hasher,
            n: &mut n_in,
            limit: m.size,
            deadline: Instant::now() + IMPORT_DEADLINE,
        };
        let mut dec: Box<dyn Read + '_> = match m.compression {
            Compression::None => Box::new(&mut hashing),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut hashing)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(&mut hashing)
                    .map_err(|e| format!("cannot start zstd: {e}"))?,
            ),
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            let k = read_full(&mut *dec, &mut buf)
                .map_err(|e| format!("reading the image file: {e}"))?;
            if k == 0 {
                break;
            }
            let end = out.saturating_add(k as u64);
            if end > cap {
                return Err(format!(
                    "the image is larger than {} (its declared or the largest accepted size)",
                    cap
                ));
            }
            let data = buf.get(..k).unwrap_or_default();
            if data.iter().any(|&b| b != 0) {
                tmp.grow(round512(end))?;
                tmp.write(out, data)?;
            }
            out = end;
        }
        drop(dec);
        // Whatever the decompressor left unread still counts and hashes.
        let mut rest = vec![0u8; 64 << 10];
        while read_full(&mut hashing, &mut rest)
            .map_err(|e| format!("reading the image file: {e}"))?
            > 0
        {}
    }
    if n_in != m.size {
        return Err(format!(
            "the image file has {n_in} bytes, the manifest says {}",
            m.size
        ));
    }
    let got = hex::encode(hasher.finalize());
    if got != m.sha1 {
        return Err(format!(
            "checksum mismatch: the file's sha1 is {got}, the manifest says {}",
            m.sha1
        ));
    }
    if out == 0 {
        return Err("the image file is empty".into());
    }
    Ok(out)
}

/// The import itself: an image view on success, a message otherwise.
fn import(job: &Job) -> Result<Value, String> {
    let state = &job.state;
    let cfg = state.danube().config();
    let dir = cfg.dir.as_deref();
    let mut raw = Vec::new();
    open(state, &job.manifest, Some(MANIFEST_DEADLINE), dir)?
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the manifest: {e}"))?;
    if raw.len() as u64 > MAX_MANIFEST {
        return Err(format!("the manifest is larger than {MAX_MANIFEST} bytes"));
    }
    let m = parse_manifest(&raw, cfg.max_file)?;
    let declared = m.image_size.map(|mb| mb * MIB);
    let cap = declared.unwrap_or(cfg.max_file.min(engine::MAX_VOLUME_SIZE));
    // A raw file's length is known: no growing on the way.
    let tmp_size = declared.unwrap_or(if m.compression == Compression::None {
        round512(m.size)
    } else {
        512
    });
    let mut tmp = Staging::new(state.store(), &job.task, tmp_size)?;
    let mut src = open(state, &job.file, None, dir)?;
    let len = copy_into(&mut tmp, &m, &mut *src, cap)?;
    tmp.grow(round512(len).max(declared.unwrap_or(0)))?;

    let tag = |k: &str| m.tags.get(k).and_then(Value::as_bool);
    let zone = m.kind.as_deref().is_some_and(|k| k.ends_with("dataset"));
    let b = |v: bool| if v { "true" } else { "false" };
    let mut md = BTreeMap::new();
    meta::set(&mut md, meta::DISPLAY_NAME, Some(&job.name));
    meta::set(
        &mut md,
        super::ACCESS,
        Some(&super::ACCESS_PRIVATE.to_string()),
    );
    meta::set(
        &mut md,
        super::VERSION,
        Some(m.version.as_deref().unwrap_or("1.0")),
    );
    meta::set(&mut md, super::DESC, m.description.as_deref());
    meta::set(&mut md, meta::DISPLAY_DESCRIPTION, m.description.as_deref());
    meta::set(&mut md, super::OSTYPE, Some(&ostype(&m).to_string()));
    meta::set(
        &mut md,
        super::RESIZE,
        Some(b(tag("resize").unwrap_or(zone))),
    );
    meta::set(
        &mut md,
        super::DEPLOY,
        Some(b(tag("deploy").unwrap_or(false))),
    );
    meta::set(&mut md, super::MANIFEST_UUID, m.uuid.as_deref());
    job.fields.apply(&mut md);

    // The tenant may have left the auth file since; then nobody owns it.
    let Some(tenant) = state.auth().tenants().iter().find(|t| t.id == job.tenant) else {
        return Err("the tenant no longer exists".into());
    };
    let dctx = domain::Ctx::new(state, tenant);
    let (alias, version) = (
        md.get(super::ALIAS).cloned(),
        md.get(super::VERSION).cloned(),
    );
    let res = tmp.into_image(&dctx, &job.name, md, |_| {
        images::check_alias_version(
            &state.store().list(),
            &job.tenant,
            None,
            &job.name,
            alias.as_deref(),
            version.as_deref(),
        )
        .map_err(|_| ApiError::conflict("an image with this alias and version already exists"))
    });
    let o = res.map_err(|e| match e.kind() {
        ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::Config => {
            tracing::warn!(error = %e, "danube: import: cannot create the image");
            "cannot create the image".to_string()
        }
        _ => e.message().to_string(),
    })?;
    let o = {
        let locked = dctx.lock();
        images::hand_over(&dctx, &locked, &job.fields, o)
            .map_err(|_| "the image cannot be handed to its new owner".to_string())?
    };
    Ok(super::views::to_value(&images::view(&o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests() {
        let ok = br#"{"files":[{"size":10,"sha1":"0123456789abcdef0123456789abcdef01234567","compression":"gzip"}],"os":"linux","type":"zvol","image_size":1}"#;
        let m = parse_manifest(ok, 100).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.compression, Compression::Gzip);
        assert_eq!(m.image_size, Some(1));
        assert_eq!(ostype(&m), 1);
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"files":[]}"#,
            br#"{"files":[{"size":10}]}"#,
            br#"{"files":[{"size":0,"sha1":"0123456789abcdef0123456789abcdef01234567"}]}"#,
            br#"{"files":[{"size":1000,"sha1":"0123456789abcdef0123456789abcdef01234567"}]}"#,
            br#"{"files":[{"size":10,"sha1":"0123456789abcdef0123456789abcdef01234567","compression":"xz"}]}"#,
            br#"{"files":[{"size":10,"sha1":"0123456789abcdef0123456789abcdef01234567"}],"image_size":-1}"#,
        ] {
            assert!(parse_manifest(bad, 100).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn urls() {
        let tmp = std::env::temp_dir().join(format!("danube-url-{}", uuid::Uuid::new_v4()));
        let inside = tmp.join("in");
        std::fs::create_dir_all(&inside).unwrap_or_default();
        std::fs::write(inside.join("m.json"), b"{}").unwrap_or_default();
        std::fs::write(tmp.join("secret"), b"x").unwrap_or_default();
        let url = |p: &Path| format!("file://{}", p.display());
        assert!(parse_url(&url(&inside.join("m.json")), Some(&inside)).is_ok());
        assert!(parse_url(&url(&inside.join("../secret")), Some(&inside)).is_err());
        assert!(parse_url(&url(&tmp.join("secret")), Some(&inside)).is_err());
        assert!(parse_url(&url(&inside.join("m.json")), None).is_err());
        assert!(parse_url("ftp://x/y", Some(&inside)).is_err());
        assert!(matches!(
            parse_url("https://x/y", None),
            Ok(Source::Http(_))
        ));
        assert!(parse_url("https://", None).is_err());
        assert!(parse_url("http://x/y z", Some(&inside)).is_err());
        assert!(matches!(parse_url("http://x/y", None), Ok(Source::Http(_))));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
