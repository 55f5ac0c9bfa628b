//! Black-box tests of Cinder's QoS specs and volume type encryption
//! against a real `blockd serve`: the admin-only qos-specs API (create,
//! list, show, set and unset keys, associate with volume types,
//! associations, disassociate, delete refused while associated unless
//! forced; members 403, bad bodies 400, names taken 409, unknown ids
//! 404), and that a `back-end` spec is enforced: 8 MiB written through
//! NBD (nbdcopy) to a volume whose type limits writes to 2 MiB/s takes
//! seconds and moves the throttle counters in `/metrics`, while the same
//! write to a volume of another type is not throttled. A `both` spec is
//! also in `os-initialize_connection`'s `connection_info.data.qos_specs`.
//! Encryption types: CRUD, refused while the type is in use, and no
//! volume of an encrypted type can be made (no key manager).

mod api_common;
mod cinder_common;

use api_common::Api;
use cinder_common::{cinder_fault as fault, ok, three_tenants, A, C as D, DEMO, OPS};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A volume type named `name` (as the admin); its id.
fn vtype(api: &Api, name: &str) -> String {
    let r = api.post(
        &format!("{A}/types"),
        OPS,
        &json!({"volume_type": {"name": name}}),
    );
    ok(&r, 200)["volume_type"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A QoS spec (as the admin); its id.
fn qos(api: &Api, body: Value) -> String {
    let r = api.post(
        &format!("{A}/qos-specs"),
        OPS,
        &json!({ "qos_specs": body }),
    );
    ok(&r, 200)["qos_specs"]["id"].as_str().unwrap().to_string()
}

/// A volume of `size` GB and type `t` for `demo`, available; its id.
fn volume(api: &Api, t: &str) -> String {
    let r = api.post(
        &format!("{D}/volumes"),
        DEMO,
        &json!({"volume": {"size": 1, "volume_type": t}}),
    );
    ok(&r, 202)["volume"]["id"].as_str().unwrap().to_string()
}

#[test]
fn qos_specs_are_admin_only_validated_and_associated_with_types() {
    let api = Api::start_with(Some(&three_tenants("")), |_| {});
    // Members may not see or make specs.
    fault(&api.get(&format!("{D}/qos-specs"), DEMO), 403, "forbidden");
    let body = json!({"qos_specs": {"name": "q"}});
    fault(
        &api.post(&format!("{D}/qos-specs"), DEMO, &body),
        403,
        "forbidden",
    );

    // Create: consumer defaults to back-end; keys are the other members.
    let r = api.post(
        &format!("{A}/qos-specs"),
        OPS,
        &json!({"qos_specs": {"name": "gold", "read_iops_sec": "2000"}}),
    );
    let created = ok(&r, 200)["qos_specs"].clone();
    assert_eq!(created["consumer"], "back-end");
    assert_eq!(created["specs"], json!({"read_iops_sec": "2000"}));
    assert_eq!(r.json["links"][0]["rel"], "self");
    let gold = created["id"].as_str().unwrap().to_string();
    // Bad bodies and names taken.
    for (b, code, name) in [
        (
            json!({"qos_specs": {"name": "gold"}}),
            409,
            "conflictingRequest",
        ),
        (
            json!({"qos_specs": {"consumer": "both"}}),
            400,
            "badRequest",
        ),
        (
            json!({"qos_specs": {"name": "x", "consumer": "sideways"}}),
            400,
            "badRequest",
        ),
        (
            json!({"qos_specs": {"name": "x", "write_bytes_sec": "fast"}}),
            400,
            "badRequest",
        ),
        (
            json!({"qos_specs": {"name": "x", "total_iops_sec": 5}}),
            400,
            "badRequest",
        ),
        (json!({"name": "x"}), 400, "badRequest"),
    ] {
        fault(&api.post(&format!("{A}/qos-specs"), OPS, &b), code, name);
    }
    // List and show agree with create.
    let r = api.get(&format!("{A}/qos-specs"), OPS);
    assert_eq!(ok(&r, 200)["qos_specs"], json!([created.clone()]));
    let r = api.get(&format!("{A}/qos-specs/{gold}"), OPS);
    assert_eq!(ok(&r, 200)["qos_specs"], created);
    fault(
        &api.get(&format!("{A}/qos-specs/nope"), OPS),
        404,
        "itemNotFound",
    );

    // Set and unset keys.
    let one = format!("{A}/qos-specs/{gold}");
    let r = api.put(
        &one,
        OPS,
        &json!({"qos_specs": {"iops_bytes": "500", "consumer": "both"}}),
    );
    assert_eq!(
        ok(&r, 200)["qos_specs"],
        json!({"iops_bytes": "500", "consumer": "both"})
    );
    let r = api.get(&one, OPS);
    assert_eq!(ok(&r, 200)["qos_specs"]["consumer"], "both");
    assert_eq!(r.json["qos_specs"]["specs"]["iops_bytes"], "500");
    let unset = format!("{one}/delete_keys");
    fault(
        &api.put(&unset, OPS, &json!({"keys": ["iops_bytes", "nope"]})),
        404,
        "itemNotFound",
    );
    fault(
        &api.put(&unset, OPS, &json!({"keys": "iops_bytes"})),
        400,
        "badRequest",
    );
    assert_eq!(
        api.put(&unset, OPS, &json!({"keys": ["iops_bytes"]}))
            .status,
        202
    );
    let r = api.get(&one, OPS);
    assert_eq!(
        ok(&r, 200)["qos_specs"]["specs"],
        json!({"read_iops_sec": "2000"})
    );

    // Associations.
    let (t1, t2) = (vtype(&api, "t1"), vtype(&api, "t2"));
    let silver = qos(&api, json!({"name": "silver"}));
    let assoc = |spec: &str, t: &str| {
        api.get(
            &format!("{A}/qos-specs/{spec}/associate?vol_type_id={t}"),
            OPS,
        )
    };
    fault(
        &api.get(&format!("{one}/associate"), OPS),
        400,
        "badRequest",
    );
    fault(&assoc(&gold, "nope"), 404, "itemNotFound");
    fault(&assoc("nope", &t1), 404, "itemNotFound");
    assert_eq!(assoc(&gold, &t1).status, 202);
    assert_eq!(assoc(&gold, &t1).status, 202, "again: no change");
    assert_eq!(assoc(&gold, &t2).status, 202);
    // A type has one spec.
    fault(&assoc(&silver, &t1), 400, "badRequest");
    let r = api.get(&format!("{one}/associations"), OPS);
    let ids: Vec<&str> = ok(&r, 200)["qos_associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["association_type"], "volume_type");
            a["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&t1.as_str()) && ids.contains(&t2.as_str()));
    let r = api.get(&format!("{A}/types/{t1}"), OPS);
    assert_eq!(ok(&r, 200)["volume_type"]["qos_specs_id"], gold.as_str());
    // Disassociate one, then all.
    let dis = |t: &str| api.get(&format!("{one}/disassociate?vol_type_id={t}"), OPS);
    assert_eq!(dis(&t1).status, 202);
    fault(&dis(&t1), 404, "itemNotFound");
    let r = api.get(&format!("{A}/types/{t1}"), OPS);
    assert_eq!(ok(&r, 200)["volume_type"]["qos_specs_id"], Value::Null);
    assert_eq!(assoc(&silver, &t1).status, 202);
    assert_eq!(api.get(&format!("{one}/disassociate_all"), OPS).status, 202);
    let r = api.get(&format!("{one}/associations"), OPS);
    assert_eq!(ok(&r, 200)["qos_associations"], json!([]));

    // Delete: refused while associated, unless forced.
    let s1 = format!("{A}/qos-specs/{silver}");
    fault(
        &api.delete(&format!("{s1}?force=False"), OPS),
        400,
        "badRequest",
    );
    assert_eq!(api.delete(&format!("{s1}?force=True"), OPS).status, 202);
    fault(&api.get(&s1, OPS), 404, "itemNotFound");
    let r = api.get(&format!("{A}/types/{t1}"), OPS);
    assert_eq!(ok(&r, 200)["volume_type"]["qos_specs_id"], Value::Null);
    assert_eq!(api.delete(&one, OPS).status, 202);
    fault(&api.delete(&one, OPS), 404, "itemNotFound");
    let r = api.get(&format!("{A}/qos-specs"), OPS);
    assert_eq!(ok(&r, 200)["qos_specs"], json!([]));
}

/// Scrapes `/metrics` at `addr`; the value of `name` for `volume`.
fn metric(addr: &str, name: &str, volume: &str) -> f64 {
    let text = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .expect("GET /metrics")
        .into_string()
        .unwrap();
    let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("parse metrics");
    s.samples
        .iter()
        .find(|x| x.metric == name && x.labels.get("volume") == Some(volume))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) => v,
            ref v => panic!("{name}: {v:?}"),
        })
        .unwrap_or_else(|| panic!("no sample {name} for {volume}"))
}

/// Writes `data` at offset 0 of `export` with nbdcopy; the time it took.
fn nbdcopy(api: &Api, src: &std::path::Path, export: &str) -> Duration {
    let t = Instant::now();
    let out = std::process::Command::new("nbdcopy")
        .arg(src)
        .arg(api.nbd_uri(export))
        .output()
        .expect("run nbdcopy");
    assert!(
        out.status.success(),
        "nbdcopy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

#[test]
fn a_back_end_qos_spec_throttles_nbd_writes_and_a_both_spec_reaches_the_client() {
    let api = Api::start_full(
        Some(&three_tenants("")),
        |_| {},
        &["--metrics-listen", "127.0.0.1:0"],
        &[],
    );
    let maddr = api
        .log()
        .into_iter()
        .find_map(|l| {
            l.split("metrics on http://")
                .nth(1)
                .map(|a| a.trim().trim_end_matches("/metrics").to_string())
        })
        .expect("metrics address logged");
    let slow = vtype(&api, "slow");
    vtype(&api, "plain");
    let q = qos(
        &api,
        json!({"name": "2mib", "consumer": "both", "write_bytes_sec": "2097152"}),
    );
    let r = api.get(
        &format!("{A}/qos-specs/{q}/associate?vol_type_id={slow}"),
        OPS,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let (vs, vp) = (volume(&api, "slow"), volume(&api, "plain"));

    // 8 MiB of data that is not zero (so nbdcopy writes it all).
    let src = api.tmp.path().join("src.img");
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    std::fs::write(&src, &data).unwrap();

    let took = nbdcopy(&api, &src, &vp);
    assert_eq!(
        metric(&maddr, "blockd_nbd_throttled_requests_total", &vp),
        0.0
    );
    assert_eq!(
        metric(&maddr, "blockd_nbd_written_bytes_total", &vp),
        8.0 * 1048576.0
    );
    eprintln!("unthrottled 8 MiB: {took:?}");

    let took = nbdcopy(&api, &src, &vs);
    eprintln!("throttled 8 MiB at 2 MiB/s: {took:?}");
    // A tenth of a second's burst, then 2 MiB/s: at least ~3.9 s (a lower
    // bound only).
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(metric(&maddr, "blockd_nbd_throttled_requests_total", &vs) >= 1.0);
    assert!(metric(&maddr, "blockd_nbd_throttled_seconds_total", &vs) >= 3.0);
    assert_eq!(
        metric(&maddr, "blockd_nbd_written_bytes_total", &vs),
        8.0 * 1048576.0
    );
    // The data arrived whole.
    let back = std::process::Command::new("nbdcopy")
        .arg(api.nbd_uri(&vs))
        .arg("-")
        .output()
        .unwrap();
    assert!(back.status.success());
    assert!(back.stdout[..data.len()] == data[..], "data differs");

    // `both`: the client gets the spec too; a plain type's volume gets null.
    let init = |v: &str| {
        let r = api.post(
            &format!("{D}/volumes/{v}/action"),
            DEMO,
            &json!({"os-initialize_connection": {"connector": {"host": "h"}}}),
        );
        ok(&r, 200)["connection_info"]["data"]["qos_specs"].clone()
    };
    assert_eq!(init(&vs), json!({"write_bytes_sec": "2097152"}));
    assert_eq!(init(&vp), Value::Null);

    // Disassociated: a new connection is no longer throttled.
    let r = api.get(&format!("{A}/qos-specs/{q}/disassociate_all"), OPS);
    assert_eq!(r.status, 202);
    let before = metric(&maddr, "blockd_nbd_throttled_requests_total", &vs);
    nbdcopy(&api, &src, &vs);
    assert_eq!(
        metric(&maddr, "blockd_nbd_throttled_requests_total", &vs),
        before
    );
}

#[test]
fn encryption_types_are_stored_but_no_encrypted_volume_is_made() {
    let api = Api::start_with(Some(&three_tenants("")), |_| {});
    let t = vtype(&api, "enc");
    let e = format!("{A}/types/{t}/encryption");
    // Nothing yet; members may not look.
    assert_eq!(ok(&api.get(&e, OPS), 200), &json!({}));
    fault(
        &api.get(&format!("{D}/types/{t}/encryption"), DEMO),
        403,
        "forbidden",
    );
    fault(
        &api.get(&format!("{A}/types/nope/encryption"), OPS),
        404,
        "itemNotFound",
    );
    // Bad bodies.
    for b in [
        json!({"encryption": {"provider": "luks"}}),
        json!({"encryption": {"control_location": "front-end"}}),
        json!({"encryption": {"provider": "luks", "control_location": "middle"}}),
        json!({"encryption": {"provider": "luks", "control_location": "front-end", "key_size": "big"}}),
        json!({"encryption": {"provider": "luks", "control_location": "front-end", "colour": 1}}),
        json!({"provider": "luks"}),
    ] {
        fault(&api.post(&e, OPS, &b), 400, "badRequest");
    }
    let body = json!({"encryption": {"provider": "luks", "cipher": "aes-xts-plain64",
        "key_size": 256, "control_location": "front-end"}});
    let r = api.post(&e, OPS, &body);
    let enc = ok(&r, 200)["encryption"].clone();
    assert_eq!(enc["volume_type_id"], t.as_str());
    assert_eq!(enc["key_size"], 256);
    let eid = enc["encryption_id"].as_str().unwrap().to_string();
    fault(&api.post(&e, OPS, &body), 400, "badRequest");
    let r = api.get(&e, OPS);
    assert_eq!(ok(&r, 200)["cipher"], "aes-xts-plain64");
    assert_eq!(r.json["deleted"], false);
    let r = api.get(&format!("{e}/provider"), OPS);
    assert_eq!(ok(&r, 200), &json!({"provider": "luks"}));
    fault(&api.get(&format!("{e}/nope"), OPS), 404, "itemNotFound");
    // Update: the answer has what was given.
    let r = api.put(
        &format!("{e}/{eid}"),
        OPS,
        &json!({"encryption": {"key_size": 128, "control_location": "back-end"}}),
    );
    assert_eq!(
        ok(&r, 200)["encryption"],
        json!({"key_size": 128, "control_location": "back-end"})
    );
    fault(
        &api.put(
            &format!("{e}/nope"),
            OPS,
            &json!({"encryption": {"key_size": 1}}),
        ),
        404,
        "itemNotFound",
    );

    // No key manager: no volume of the type, nor a retype to it.
    let r = api.post(
        &format!("{D}/volumes"),
        DEMO,
        &json!({"volume": {"size": 1, "volume_type": "enc"}}),
    );
    fault(&r, 400, "badRequest");
    assert!(r.text.contains("no key manager"), "{}", r.text);
    let v = volume(&api, "__DEFAULT__");
    let r = api.get(&format!("{D}/volumes/{v}"), DEMO);
    assert_eq!(ok(&r, 200)["volume"]["encrypted"], false);
    let r = api.post(
        &format!("{D}/volumes/{v}/action"),
        DEMO,
        &json!({"os-retype": {"new_type": "enc"}}),
    );
    fault(&r, 400, "badRequest");
    assert!(r.text.contains("no key manager"), "{}", r.text);

    // While a volume has the type, its encryption cannot change.
    let t2 = vtype(&api, "used");
    let e2 = format!("{A}/types/{t2}/encryption");
    volume(&api, "used");
    fault(&api.post(&e2, OPS, &body), 400, "badRequest");

    // Delete; then it is gone.
    fault(&api.delete(&format!("{e}/nope"), OPS), 404, "itemNotFound");
    assert_eq!(api.delete(&format!("{e}/{eid}"), OPS).status, 202);
    assert_eq!(ok(&api.get(&e, OPS), 200), &json!({}));
    volume(&api, "enc");
}
