//! Writes the seed corpora of the engine and API fuzz targets into
//! `fuzz/seeds/<target>/`: records and metadata pages cut from a real
//! store that a seeded workload built (writes, zeroes, trims, snapshots,
//! clones, images, deletes, checkpoints), and HTTP requests of every REST
//! dialect, bodies taken from `fixtures/<dialect>/` where present. The NBD
//! seeds are recorded from real clients by `scripts/fuzz.sh`.

use engine::decode::{RecordHeader, RecordKind, HEADER_LEN};
use engine::{ObjectKind, ObjectUpdate, Store, StoreOptions};
use std::path::{Path, PathBuf};

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("corpus file");
}

fn engine_seeds(out: &Path) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let store = Store::open(&dir, StoreOptions::default()).expect("store");
    let v = store.create_volume(Some("v"), 64 << 20, false).expect("volume");
    let c = store.create_volume(Some("z"), 1 << 20, true).expect("volume");
    for i in 0..8u64 {
        let data: Vec<u8> = (0..4096 + i * 512).map(|b| (b * 7 + i) as u8).collect();
        store.write(v.id, i * 12288, &data, i % 3 == 0).expect("write");
    }
    store.write(c.id, 0, &[b'a'; 8192], false).expect("write");
    // 64 KiB handed over whole: an aligned extent Write record (kind 12).
    let mut owned = store.aligned_buf(64 << 10);
    for (i, b) in owned.iter_mut().enumerate() {
        *b = (i / 4096 + i * 13) as u8;
    }
    store.write_owned(v.id, 2 << 20, owned, false).expect("write");
    store.write_zeroes(v.id, 1 << 20, 1 << 16, false, false).expect("zero");
    store.trim(v.id, 0, 4096, false).expect("trim");
    let s = store.snapshot(v.id, Some("s")).expect("snapshot");
    let cl = store.clone_volume(s.id, Some("cl")).expect("clone");
    store.write(cl.id, 4096, &[1; 4096], true).expect("write");
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("api.tenant".to_string(), "demo".to_string());
    store
        .derive_with(
            s.id,
            ObjectKind::Image,
            Some("img"),
            None,
            ObjectUpdate {
                metadata: Some(meta),
                ..Default::default()
            },
        )
        .expect("image");
    store.checkpoint().expect("checkpoint");
    store.delete(v.id).expect("delete");
    store.write(cl.id, 0, &[2; 512], false).expect("write");
    store.flush().expect("flush");
    store.close().expect("close");

    let sb = std::fs::read(dir.join("superblock")).expect("superblock");
    for (i, slot) in sb.chunks(4096).enumerate() {
        put(&out.join("engine_metadata"), &format!("superblock-{i}"), slot);
    }
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .expect("segments")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    for (si, seg) in segs.iter().enumerate() {
        let bytes = std::fs::read(seg).expect("segment");
        let mut off = 0usize;
        while let Some(h) = RecordHeader::decode(&bytes[off..]) {
            let end = off + HEADER_LEN + h.body_len as usize;
            if end > bytes.len() {
                break;
            }
            let rec = &bytes[off..end];
            let body = &rec[HEADER_LEN..];
            let name = format!("seg{si}-{off:08x}-{:?}", h.kind);
            if rec.len() <= 64 << 10
                || (h.kind == RecordKind::WriteAligned && rec.len() <= 80 << 10)
            {
                put(&out.join("engine_record"), &name, rec);
            }
            if matches!(h.kind, RecordKind::Node | RecordKind::CtPage) {
                let mut sel = vec![0u8; 9];
                sel.extend_from_slice(body);
                put(&out.join("engine_metadata"), &name, &sel);
            }
            if h.kind == RecordKind::Seal {
                break;
            }
            off = end;
        }
    }
}

fn api_seeds(out: &Path, fixtures: &Path) {
    let basic = "Authorization: Basic ZGVtbzpkZW1vLXBhc3N3b3Jk";
    let token = "X-Auth-Token: demo-token-0123456789abcdef";
    let es = "ES-API-KEY: demo-token-0123456789abcdef";
    let reqs: Vec<(String, String)> = vec![
        ("os-versions".into(), "GET /\n".into()),
        ("os-list".into(), format!("GET /v1.1/demo/os-volumes/detail?limit=2&offset=0\n{token}\n")),
        ("os-create".into(), format!("POST /v1.1/demo/os-volumes\n{token}\nContent-Type: application/json\n\n{{\"volume\": {{\"size\": 1, \"display_name\": \"v\", \"metadata\": {{\"a\": \"b\"}}}}}}")),
        ("os-snap".into(), format!("POST /v1.1/demo/os-snapshots\n{token}\nContent-Type: application/json\n\n{{\"snapshot\": {{\"volume_id\": \"00000000-0000-0000-0000-000000000000\", \"force\": \"true\"}}}}")),
        ("os-attach".into(), format!("POST /v1.1/demo/servers/s1/os-volume_attachments\n{token}\nContent-Type: application/json\n\n{{\"volumeAttachment\": {{\"volumeId\": \"x\", \"device\": \"/dev/vdb\"}}}}")),
        ("dc-entry".into(), format!("GET /api?format=json\n{basic}\n")),
        ("dc-create".into(), format!("POST /api/storage_volumes\n{basic}\nContent-Type: application/x-www-form-urlencoded\n\ncapacity=1&name=v&description=d")),
        ("dc-multipart".into(), format!("POST /api/storage_snapshots\n{basic}\nContent-Type: multipart/form-data; boundary=XX\n\n--XX\r\nContent-Disposition: form-data; name=\"volume_id\"\r\n\r\nabc\r\n--XX--\r\n")),
        ("cimi-entry".into(), format!("GET /cimi/cloudEntryPoint\n{basic}\nAccept: application/xml\n")),
        ("cimi-image".into(), format!("POST /cimi/volume_images\n{basic}\nContent-Type: application/xml\nCIMI-Specification-Version: 1.0.1\n\n<VolumeImage xmlns=\"http://schemas.dmtf.org/cimi/1\"><name>i</name><imageLocation href=\"http://h/cimi/volumes/x\"/></VolumeImage>")),
        ("cimi-volume".into(), format!("POST /cimi/volumes\n{basic}\nContent-Type: application/json\n\n{{\"resourceURI\": \"http://schemas.dmtf.org/cimi/1/VolumeCreate\", \"volumeTemplate\": {{\"volumeConfig\": {{\"capacity\": 1048576}}}}}}")),
        ("cimi-filter".into(), format!("GET /cimi/volumes?$filter=name='v'&$first=1&$last=2\n{basic}\n")),
        ("danube-list".into(), format!("GET /api/image/?full=true&order_by=-created\n{es}\n")),
        ("danube-import".into(), format!("POST /api/image/img1/\n{es}\nContent-Type: application/json\n\n{{\"manifest_url\": \"file:///etc/passwd\"}}")),
        ("danube-update".into(), format!("PUT /api/image/img1/\nAuthorization: Token demo-token-0123456789abcdef\nContent-Type: application/json\n\n{{\"alias\": \"a\", \"access\": 4, \"tags\": [\"x\"]}}")),
        ("danube-snap".into(), format!("POST /api/vm/s1/snapshot/snap1/\n{es}\nContent-Type: application/json\n\n{{\"disk_id\": 1}}")),
    ];
    for (name, text) in reqs {
        put(&out.join("api_request"), &name, text.as_bytes());
    }
    let dialects = [
        ("deltacloud", "/api/storage_volumes", basic),
        ("cimi", "/cimi/volume_images", basic),
        ("danube", "/api/image/seed/", es),
        ("openstack", "/v1.1/demo/os-volumes", token),
    ];
    for (d, path, auth) in dialects {
        let Ok(rd) = std::fs::read_dir(fixtures.join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let ct = match p.extension().and_then(|x| x.to_str()) {
                Some("xml") => "application/xml",
                Some("json") => "application/json",
                _ => continue,
            };
            let Ok(body) = std::fs::read(&p) else { continue };
            let mut text = format!("POST {path}\n{auth}\nContent-Type: {ct}\n\n").into_bytes();
            text.extend_from_slice(&body);
            let name = format!("{d}-{}", p.file_name().and_then(|n| n.to_str()).unwrap_or("x"));
            put(&out.join("api_request"), &name, &text);
        }
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("seeds");
    engine_seeds(&out);
    api_seeds(&out, &root.join("../fixtures"));
    println!("seeds written to {}", out.display());
}
