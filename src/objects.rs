//! The object commands (`volume`, `snapshot`, `image`, `clone`,
//! `import`, `export`): each runs through the API's domain layer
//! ([`api::Operator`], from [`Target::operator`]), so its rules hold (an
//! attached or busy volume is not deleted; with `--tenant`, ownership and
//! quota), and maps a refusal to its own exit code.

use crate::cli::{ImageCmd, SnapshotCmd, Target, VolumeCmd};
use anyhow::{bail, Context, Result};
use engine::{ByteSize, ObjectInfo, ObjectKind};
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Exit code of a command refused by the domain's state or ownership rules
/// (an attached volume, another tenant's object, a name the tenant uses).
pub(crate) const EXIT_REFUSED: i32 = 3;
/// Exit code of a command over the acting tenant's quota.
pub(crate) const EXIT_QUOTA: i32 = 4;

/// A command the domain refused, with its exit code.
#[derive(Debug)]
pub(crate) struct Refused {
    code: i32,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// The command line's form of a domain error: a refusal keeps its own
/// exit code; anything else (engine errors, unknown names, bad
/// arguments) is an ordinary error, exit 2, worded as the engine words it.
pub(crate) fn refusal(e: api::ApiError) -> anyhow::Error {
    use api::ErrorKind as K;
    let code = match e.kind() {
        _ if e.engine_error().is_some() => None,
        K::Conflict | K::Forbidden => Some(EXIT_REFUSED),
        K::OverLimit => Some(EXIT_QUOTA),
        _ => None,
    };
    match code {
        Some(code) => Refused {
            code,
            message: e.message().to_string(),
        }
        .into(),
        None => anyhow::anyhow!("{}", e.message()),
    }
}

/// The exit code of a command that failed with `e`: 3 or 4 for a refusal,
/// 2 otherwise.
pub(crate) fn exit_code(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<Refused>().map_or(2, |r| r.code)
}

/// Ends an object command's use of `op` (closing an offline store) and
/// gives its result, a refusal with its exit code. A failed command leaves
/// an offline store as it found it: dropped, not checkpointed.
fn finish<T>(target: &Target, op: api::Operator, r: api::Result<T>) -> Result<T> {
    let v = r.map_err(refusal)?;
    target.done_op(op)?;
    Ok(v)
}

fn print_list(target: &Target, kind: ObjectKind, json: bool, out: &mut dyn Write) -> Result<()> {
    // Listing a directory with no store shows nothing and creates nothing.
    let items: Vec<ObjectInfo> = if target.has_store() {
        let op = target.operator(false)?;
        let items = op.list(kind);
        target.done_op(op)?;
        items
    } else {
        Vec::new()
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<24}  {:>10}  {:<10}  PARENT",
        "ID", "NAME", "SIZE", "STATUS"
    )?;
    for o in items {
        writeln!(
            out,
            "{:<36}  {:<24}  {:>10}  {:<10}  {}",
            o.id,
            list_name(&o),
            ByteSize(o.size).to_string(),
            o.status,
            o.parent
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into())
        )?;
    }
    Ok(())
}

/// The name a listing shows: the engine name, else the name an API
/// tenant gave (display or image name), else "-".
fn list_name(o: &ObjectInfo) -> &str {
    o.name
        .as_deref()
        .or_else(|| api::meta::get(o, api::meta::DISPLAY_NAME))
        .or_else(|| api::meta::get(o, api::meta::IMAGE_NAME))
        .unwrap_or("-")
}

/// Runs `act` on the object `key` of one of `kinds` (resolved as the
/// scope sees it), through the domain.
fn on<T>(
    target: &Target,
    key: &str,
    kinds: &[ObjectKind],
    act: impl FnOnce(&api::Operator, &ObjectInfo) -> api::Result<T>,
) -> Result<T> {
    let op = target.operator(false)?;
    let r = op.resolve(key, kinds).and_then(|o| act(&op, &o));
    finish(target, op, r)
}

/// Prints the id of a new object.
fn made(out: &mut dyn Write, o: ObjectInfo) -> Result<()> {
    writeln!(out, "{}", o.id)?;
    Ok(())
}

pub(crate) fn volume(target: &Target, c: VolumeCmd, out: &mut dyn Write) -> Result<i32> {
    const V: &[ObjectKind] = &[ObjectKind::Volume];
    match c {
        VolumeCmd::Create {
            name,
            size,
            compress,
        } => {
            let op = target.operator(true)?;
            let r = op.create_volume(&name, size.0, compress);
            made(out, finish(target, op, r)?)?;
        }
        VolumeCmd::List { json } => print_list(target, ObjectKind::Volume, json, out)?,
        VolumeCmd::Delete { volume } => on(target, &volume, V, |op, o| op.delete(o))?,
        VolumeCmd::Resize { volume, size } => {
            on(target, &volume, V, |op, o| op.resize(o, size.0))?;
        }
    }
    Ok(0)
}

pub(crate) fn snapshot(target: &Target, c: SnapshotCmd, out: &mut dyn Write) -> Result<i32> {
    const S: &[ObjectKind] = &[ObjectKind::Snapshot];
    match c {
        SnapshotCmd::Create { volume, name } => {
            let o = on(target, &volume, &[ObjectKind::Volume], |op, v| {
                op.snapshot(v, &name)
            })?;
            made(out, o)?;
        }
        SnapshotCmd::List { json } => print_list(target, ObjectKind::Snapshot, json, out)?,
        SnapshotCmd::Delete { snapshot } => on(target, &snapshot, S, |op, o| op.delete(o))?,
    }
    Ok(0)
}

pub(crate) fn image(target: &Target, c: ImageCmd, out: &mut dyn Write) -> Result<i32> {
    const SOURCES: &[ObjectKind] = &[ObjectKind::Volume, ObjectKind::Snapshot];
    match c {
        ImageCmd::Create { source, name } => {
            let o = on(target, &source, SOURCES, |op, src| {
                op.capture_image(src, &name)
            })?;
            made(out, o)?;
        }
        ImageCmd::List { json } => print_list(target, ObjectKind::Image, json, out)?,
        ImageCmd::Delete { image } => {
            on(target, &image, &[ObjectKind::Image], |op, o| op.delete(o))?;
        }
    }
    Ok(0)
}

/// `clone`: a new volume `name` from snapshot or image `source`.
pub(crate) fn clone(target: &Target, source: &str, name: &str, out: &mut dyn Write) -> Result<i32> {
    const SOURCES: &[ObjectKind] = &[ObjectKind::Snapshot, ObjectKind::Image];
    let o = on(target, source, SOURCES, |op, src| {
        op.clone_volume(src, name)
    })?;
    made(out, o)?;
    Ok(0)
}

/// Bytes moved per I/O by import and export.
const COPY_CHUNK: usize = 1 << 20;

fn progress(total: u64) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    }
}

pub(crate) fn import(
    target: &Target,
    file: &Path,
    name: &str,
    compress: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let mut f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let len = f.metadata()?.len();
    if len == 0 {
        bail!("{} is empty", file.display());
    }
    let size = len.div_ceil(512) * 512;
    let op = target.operator(true)?;
    let made = op.create_volume(name, size, compress);
    let info = finish_keep(made)?;
    let s = op.store();
    let pb = progress(len);
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut off = 0u64;
    let result = (|| -> Result<()> {
        loop {
            let mut n = 0;
            while n < buf.len() {
                let r = f.read(&mut buf[n..])?;
                if r == 0 {
                    break;
                }
                n += r;
            }
            if n == 0 {
                break;
            }
            // All-zero runs stay holes: the engine stores zero blocks as
            // nothing, and skipping them keeps the map sparse too.
            if !buf[..n].iter().all(|&b| b == 0) {
                s.write(info.id, off, &buf[..n], false)?;
            }
            off += n as u64;
            pb.set_position(off);
        }
        s.flush()?;
        Ok(())
    })();
    pb.finish_and_clear();
    if let Err(e) = result {
        // Nothing half-done: remove the partial volume.
        let _ = op.delete(&info);
        let _ = target.done_op(op);
        return Err(e.context(format!("importing {}", file.display())));
    }
    writeln!(out, "{}", info.id)?;
    target.done_op(op)?;
    Ok(0)
}

/// Like [`finish`] for a command that goes on using `op` after this step.
fn finish_keep<T>(r: api::Result<T>) -> Result<T> {
    r.map_err(refusal)
}

pub(crate) fn export(target: &Target, key: &str, file: &Path) -> Result<i32> {
    let op = target.operator(false)?;
    let found = op.resolve(
        key,
        &[ObjectKind::Volume, ObjectKind::Snapshot, ObjectKind::Image],
    );
    let info = finish_keep(found)?;
    let (s, id) = (op.store(), info.id);
    let out = File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    out.set_len(info.size)?;
    let pb = progress(info.size);
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut off = 0u64;
    while off < info.size {
        let len = (info.size - off).min(COPY_CHUNK as u64);
        let ext = s.block_status(id, off, len, 1024)?;
        for e in ext {
            if e.kind == engine::ExtentKind::Data {
                let b = &mut buf[..e.length as usize];
                s.read(id, e.offset, b)?;
                out.write_all_at(b, e.offset)?;
            }
        }
        off += len;
        pb.set_position(off);
    }
    out.sync_all()?;
    pb.finish_and_clear();
    target.done_op(op)?;
    Ok(0)
}
