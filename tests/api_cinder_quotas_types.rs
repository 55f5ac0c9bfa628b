//! Black-box tests of Cinder's quota updates and volume type management
//! against a real `blockd serve`: an admin sets a project's quotas at
//! runtime (kept across a restart, enforced by every dialect: the
//! OpenStack os-volumes dialect refuses with 413), deletes them (back to
//! the auth file's), sets the default class; makes, changes and deletes
//! volume types, their extra specs and access lists; volumes are made with
//! and retyped to them; a type asking for a capability the backend lacks
//! leaves an error volume and a user message. Members get 403, bad values
//! 400, unknown ids 404.

mod api_common;
mod cinder_common;

use api_common::Api;
use cinder_common::{cinder_fault as fault, ok, three_tenants, A, C as D, DEMO, OPS, OTHER};
use serde_json::{json, Value};

/// The three tenants of `cinder_common`, `demo` with a quota of 5 volumes.
fn auth() -> String {
    three_tenants("quota = { volumes = 5 }")
}

fn quota(api: &Api, key: &str) -> Value {
    let r = api.get(&format!("{A}/os-quota-sets/demo"), OPS);
    ok(&r, 200)["quota_set"][key].clone()
}

#[test]
fn quota_updates_are_admin_only_validated_durable_and_enforced_everywhere() {
    let mut api = Api::start_with(Some(&auth()), |_| {});
    assert_eq!(quota(&api, "volumes"), 5);
    assert_eq!(quota(&api, "gigabytes"), -1);

    // Refusals: a member may not set (even its own), bad values, bad keys.
    let r = api.put(
        &format!("{D}/os-quota-sets/demo"),
        DEMO,
        &json!({"quota_set": {"volumes": 9}}),
    );
    fault(&r, 403, "forbidden");
    let put = |body: Value| api.put(&format!("{A}/os-quota-sets/demo"), OPS, &body);
    fault(
        &put(json!({"quota_set": {"volumes": "many"}})),
        400,
        "badRequest",
    );
    fault(
        &put(json!({"quota_set": {"volumes": -2}})),
        400,
        "badRequest",
    );
    fault(
        &put(json!({"quota_set": {"volumes": 1.5}})),
        400,
        "badRequest",
    );
    fault(&put(json!({"quota_set": {"bogus": 1}})), 400, "badRequest");
    fault(
        &put(json!({"quota_set": {"groups": "x"}})),
        400,
        "badRequest",
    );
    fault(&put(json!({"volumes": 1})), 400, "badRequest");
    let r = api.put(
        &format!("{A}/os-quota-sets/nobody"),
        OPS,
        &json!({"quota_set": {"volumes": 1}}),
    );
    fault(&r, 404, "itemNotFound");
    assert_eq!(quota(&api, "volumes"), 5, "refused updates change nothing");

    // One volume, then a limit below use is refused only when asked to
    // validate.
    let r = api.post(
        &format!("{D}/volumes"),
        DEMO,
        &json!({"volume": {"size": 1}}),
    );
    ok(&r, 202);
    let r = put(json!({"quota_set": {"volumes": 0, "skip_validation": false}}));
    fault(&r, 400, "badRequest");
    let r = put(json!({"quota_set": {"volumes": 1, "gigabytes": "10"}}));
    let q = &ok(&r, 200)["quota_set"];
    assert_eq!(q["volumes"], 1);
    assert_eq!(q["gigabytes"], 10);

    // Enforced by another dialect: OpenStack os-volumes answers 413.
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"size": 1}}),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains("Volume quota exceeded"), "{}", r.text);
    // And Cinder's own limits show it.
    let r = api.get(&format!("{D}/limits"), DEMO);
    assert_eq!(ok(&r, 200)["limits"]["absolute"]["maxTotalVolumes"], 1);

    // Kept across a restart.
    api.restart();
    assert_eq!(quota(&api, "volumes"), 1);
    assert_eq!(quota(&api, "gigabytes"), 10);
    let r = api.get(&format!("{A}/os-quota-sets/demo?usage=true"), OPS);
    assert_eq!(ok(&r, 200)["quota_set"]["volumes"]["in_use"], 1);
    // The settings object is no tenant's volume.
    let r = api.get(&format!("{A}/volumes?all_tenants=1"), OPS);
    assert_eq!(ok(&r, 200)["volumes"].as_array().unwrap().len(), 1);

    // DELETE: a member may not; the admin reverts to the auth file.
    fault(
        &api.delete(&format!("{D}/os-quota-sets/demo"), DEMO),
        403,
        "forbidden",
    );
    ok(&api.delete(&format!("{A}/os-quota-sets/demo"), OPS), 200);
    assert_eq!(quota(&api, "volumes"), 5);
    assert_eq!(quota(&api, "gigabytes"), -1);
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"size": 1}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // The default class fills what the auth file leaves unset.
    let class = format!("{A}/os-quota-class-sets/default");
    let r = api.put(&class, DEMO, &json!({"quota_class_set": {"snapshots": 0}}));
    fault(&r, 403, "forbidden");
    let r = api.put(
        &class,
        OPS,
        &json!({"quota_class_set": {"snapshots": 0, "volumes": 7}}),
    );
    assert_eq!(ok(&r, 200)["quota_class_set"]["snapshots"], 0);
    assert_eq!(quota(&api, "snapshots"), 0);
    assert_eq!(quota(&api, "volumes"), 5, "the auth file's value wins");
    let r = api.get(&format!("{A}/os-quota-sets/other"), OPS);
    assert_eq!(ok(&r, 200)["quota_set"]["volumes"], 7);
    let vol = api.get(&format!("{D}/volumes"), DEMO).json["volumes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.post(
        &format!("{D}/snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    fault(&r, 413, "overLimit");
}

#[test]
fn volume_types_extra_specs_access_and_retype() {
    let api = Api::start_with(Some(&auth()), |_| {});
    let body = json!({"volume_type": {"name": "gold", "description": "fast",
        "extra_specs": {"tier": "1"}}});
    fault(
        &api.post(&format!("{D}/types"), DEMO, &body),
        403,
        "forbidden",
    );
    let r = api.post(&format!("{A}/types"), OPS, &body);
    let t = &ok(&r, 200)["volume_type"];
    let gold = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["extra_specs"], json!({"tier": "1"}));
    assert_eq!(t["is_public"], true);
    fault(
        &api.post(&format!("{A}/types"), OPS, &body),
        409,
        "conflictingRequest",
    );
    let r = api.post(
        &format!("{A}/types"),
        OPS,
        &json!({"volume_type": {"name": " "}}),
    );
    fault(&r, 400, "badRequest");
    let r = api.get(&format!("{D}/types"), DEMO);
    assert_eq!(ok(&r, 200)["volume_types"].as_array().unwrap().len(), 2);

    // Extra specs.
    let specs = format!("{A}/types/{gold}/extra_specs");
    let r = api.post(&specs, OPS, &json!({"extra_specs": {"a": "b"}}));
    assert_eq!(ok(&r, 200)["extra_specs"], json!({"a": "b"}));
    let r = api.put(&format!("{specs}/a"), OPS, &json!({"a": "c"}));
    assert_eq!(ok(&r, 200), &json!({"a": "c"}));
    fault(
        &api.put(&format!("{specs}/a"), OPS, &json!({"x": "c"})),
        400,
        "badRequest",
    );
    let r = api.put(&format!("{specs}/a"), OPS, &json!({"a": "c", "b": "d"}));
    fault(&r, 400, "badRequest");
    fault(
        &api.post(&specs, OPS, &json!({"extra_specs": ["x"]})),
        400,
        "badRequest",
    );
    fault(
        &api.put(
            &format!("{D}/types/{gold}/extra_specs/a"),
            DEMO,
            &json!({"a": "z"}),
        ),
        403,
        "forbidden",
    );
    ok(&api.delete(&format!("{specs}/a"), OPS), 202);
    fault(&api.get(&format!("{specs}/a"), OPS), 404, "itemNotFound");
    let r = api.get(&specs, OPS);
    assert_eq!(ok(&r, 200)["extra_specs"], json!({"tier": "1"}));

    // A private type: invisible to members until given access.
    let r = api.post(
        &format!("{A}/types"),
        OPS,
        &json!({"volume_type": {"name": "secret", "os-volume-type-access:is_public": false}}),
    );
    let secret = ok(&r, 200)["volume_type"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mk = |tok: &str, p: &str, t: &str| {
        api.post(
            &format!("/volume/v3/{p}/volumes"),
            tok,
            &json!({"volume": {"size": 1, "volume_type": t}}),
        )
    };
    fault(&mk(DEMO, "demo", &secret), 404, "itemNotFound");
    fault(
        &api.get(&format!("{D}/types/{secret}"), DEMO),
        404,
        "itemNotFound",
    );
    let access = |tok: &str, action: &str| {
        api.post(
            &format!(
                "/volume/v3/{}/types/{secret}/action",
                if tok == OPS { "ops" } else { "demo" }
            ),
            tok,
            &json!({ action: {"project": "demo"} }),
        )
    };
    fault(&access(DEMO, "addProjectAccess"), 403, "forbidden");
    ok(&access(OPS, "addProjectAccess"), 202);
    let r = api.get(&format!("{A}/types/{secret}/os-volume-type-access"), OPS);
    assert_eq!(
        ok(&r, 200)["volume_type_access"],
        json!([{"volume_type_id": secret, "project_id": "demo"}])
    );
    let r = mk(DEMO, "demo", "secret");
    let vol = ok(&r, 202)["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.json["volume"]["volume_type"], "secret");
    fault(&mk(OTHER, "other", "secret"), 404, "itemNotFound");
    // Per-type use follows the volume's type.
    let r = api.get(&format!("{A}/os-quota-sets/demo?usage=true"), OPS);
    let q = &ok(&r, 200)["quota_set"];
    assert_eq!(q["volumes_secret"]["in_use"], 1, "{}", r.text);
    assert_eq!(q["gigabytes_secret"]["in_use"], 1, "{}", r.text);
    assert_eq!(q["volumes___DEFAULT__"]["in_use"], 0, "{}", r.text);
    assert_eq!(q["volumes"]["in_use"], 1, "{}", r.text);

    // Retype to gold: only the record changes; unknown types 404.
    let retype = |t: &str| {
        api.post(
            &format!("{D}/volumes/{vol}/action"),
            DEMO,
            &json!({"os-retype": {"new_type": t, "migration_policy": "never"}}),
        )
    };
    fault(&retype("nope"), 404, "itemNotFound");
    ok(&retype(&gold), 202);
    let r = api.get(&format!("{D}/volumes/{vol}"), DEMO);
    assert_eq!(ok(&r, 200)["volume"]["volume_type"], "gold");

    // Rename shows in the volume; a type in use is not deleted.
    let r = api.put(
        &format!("{A}/types/{gold}"),
        OPS,
        &json!({"volume_type": {"name": "platinum"}}),
    );
    assert_eq!(ok(&r, 200)["volume_type"]["name"], "platinum");
    let r = api.get(&format!("{D}/volumes/{vol}"), DEMO);
    assert_eq!(ok(&r, 200)["volume"]["volume_type"], "platinum");
    fault(
        &api.delete(&format!("{A}/types/{gold}"), OPS),
        400,
        "badRequest",
    );
    fault(
        &api.delete(&format!("{D}/types/{secret}"), DEMO),
        403,
        "forbidden",
    );
    ok(&api.delete(&format!("{A}/types/{secret}"), OPS), 202);
    ok(&api.delete(&format!("{D}/volumes/{vol}"), DEMO), 202);
    ok(&api.delete(&format!("{A}/types/{gold}"), OPS), 202);
    fault(
        &api.get(&format!("{A}/types/{gold}"), OPS),
        404,
        "itemNotFound",
    );
    let r = api.delete(&format!("{A}/types/__DEFAULT__"), OPS);
    fault(&r, 400, "badRequest");
    let r = api.get(&format!("{D}/types"), DEMO);
    assert_eq!(ok(&r, 200)["volume_types"].as_array().unwrap().len(), 1);
}

#[test]
fn a_type_the_backend_cannot_meet_leaves_an_error_volume_and_a_message() {
    let api = Api::start_with(Some(&auth()), |_| {});
    let mk_type = |name: &str, specs: Value| {
        let r = api.post(
            &format!("{A}/types"),
            OPS,
            &json!({"volume_type": {"name": name, "extra_specs": specs}}),
        );
        ok(&r, 200)["volume_type"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let good = mk_type("nbd", json!({"storage_protocol": "nbd", "tier": "any"}));
    let bad = mk_type("iscsi", json!({"capabilities:storage_protocol": "iSCSI"}));
    let mk = |t: &str| {
        api.post(
            &format!("{D}/volumes"),
            DEMO,
            &json!({"volume": {"size": 1, "volume_type": t}}),
        )
    };
    let r = mk(&good);
    assert_eq!(ok(&r, 202)["volume"]["status"], "available");
    let r = mk(&bad);
    assert_eq!(ok(&r, 202)["volume"]["status"], "error");
    let vol = r.json["volume"]["id"].as_str().unwrap().to_string();

    // Messages need 3.3; they are the owner's only.
    let v33 = |tok: &str, p: &str| {
        api.send(
            "GET",
            &format!("/volume/v3/{p}/messages"),
            &[
                ("X-Auth-Token", tok),
                ("OpenStack-API-Version", "volume 3.3"),
            ],
            None,
        )
    };
    let r = v33(DEMO, "demo");
    let list = ok(&r, 200)["messages"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{}", r.text);
    assert_eq!(list[0]["resource_uuid"], vol.as_str());
    assert_eq!(list[0]["message_level"], "ERROR");
    assert!(list[0]["user_message"]
        .as_str()
        .unwrap()
        .contains("storage_protocol"));
    let r = v33(OTHER, "other");
    assert_eq!(ok(&r, 200)["messages"], json!([]));
    fault(
        &api.get(&format!("{D}/messages"), DEMO),
        404,
        "itemNotFound",
    );
    let id = list[0]["id"].as_str().unwrap();
    let del = |tok: &str, p: &str| {
        api.send(
            "DELETE",
            &format!("/volume/v3/{p}/messages/{id}"),
            &[
                ("X-Auth-Token", tok),
                ("OpenStack-API-Version", "volume 3.3"),
            ],
            None,
        )
    };
    fault(&del(OTHER, "other"), 404, "itemNotFound");
    assert_eq!(del(DEMO, "demo").status, 204);
    fault(&del(DEMO, "demo"), 404, "itemNotFound");
    // The error volume is deleted as Cinder allows.
    ok(&api.delete(&format!("{D}/volumes/{vol}"), DEMO), 202);
}
