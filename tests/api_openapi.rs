//! The generated OpenAPI documents of the JSON dialects other than
//! os-volumes v1.1 (whose document `api_openstack.rs` checks): Keystone
//! v3, Glance, Deltacloud, CIMI, Danube Cloud and Cinder v3. Against one real
//! `blockd serve`, every route and status code a document declares is
//! requested for real and the response validated against the schema the
//! document declares for it; and every documented path is swept with the
//! non-mutating methods it declares, each answer having to be one the
//! document declares (so no documented path is an unknown route).

mod api_common;
mod danube_common;

#[path = "api_openapi/cimi.rs"]
mod cimi;
#[path = "api_openapi/cinder.rs"]
mod cinder;
#[path = "api_openapi/cinder_groups.rs"]
mod cinder_groups;
#[path = "api_openapi/cinder_qos.rs"]
mod cinder_qos;
#[path = "api_openapi/danube.rs"]
mod danube;

use api_common::{basic, Api, Resp, DEMO, DEMO_BASIC, SMALL_BASIC};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The (document title, path, method, status) of every response checked.
static COVERED: Mutex<BTreeSet<(String, String, String, u16)>> = Mutex::new(BTreeSet::new());

/// Asserts that every response `doc` declares was checked for real (a
/// HEAD response counts as checked with the same GET response).
#[track_caller]
pub(crate) fn all_covered(doc: &Value) {
    let title = doc["info"]["title"].as_str().unwrap_or("").to_string();
    let seen = COVERED.lock().unwrap();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for status in op["responses"].as_object().expect("responses").keys() {
                let status: u16 = status.parse().expect("status");
                let key = |m: &str| (title.clone(), path.clone(), m.to_string(), status);
                let checked =
                    seen.contains(&key(method)) || (method == "head" && seen.contains(&key("get")));
                if !checked {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{title}: never checked: {missing:#?}");
}

/// The response `doc` declares for `status` of `method` on `path`.
#[track_caller]
fn declared<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let resp = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "the document does not declare {status} for {method} {path}"
    );
    resp
}

/// Checks a real response against what `doc` declares for its status of
/// `method` on `path`: its content type is one declared, and a JSON body
/// validates against the declared schema (with the document's components
/// alongside for the `$ref`s); no body where none is declared or for HEAD.
#[track_caller]
pub(crate) fn documented(doc: &Value, path: &str, method: &str, r: &Resp) {
    let resp = declared(doc, path, method, r.status);
    COVERED.lock().unwrap().insert((
        doc["info"]["title"].as_str().unwrap_or("").to_string(),
        path.to_string(),
        method.to_string(),
        r.status,
    ));
    let Some(content) = resp["content"].as_object().filter(|_| method != "head") else {
        assert!(
            r.text.is_empty(),
            "{method} {path}: undocumented body {}",
            r.text
        );
        return;
    };
    let ct = r.header("content-type").unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    let entry = content.get(media).unwrap_or_else(|| {
        panic!(
            "{method} {path} {}: content type {ct:?} not declared",
            r.status
        )
    });
    if media.ends_with("json") {
        let mut schema = entry["schema"].clone();
        schema["components"] = doc["components"].clone();
        let v = jsonschema::validator_for(&schema).expect("valid schema");
        let errors: Vec<String> = v.iter_errors(&r.json).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {}: {errors:#?}\nin {}",
            r.status,
            r.text
        );
    } else {
        assert_eq!(entry["schema"]["type"], "string", "{method} {path}");
    }
}

/// How many errors the JSON schema `doc` declares for `status` of
/// `method` on `path` finds in `body`.
pub(crate) fn schema_errors(
    doc: &Value,
    path: &str,
    method: &str,
    status: u16,
    body: &Value,
) -> usize {
    let resp = declared(doc, path, method, status);
    let mut schema = resp["content"]["application/json"]["schema"].clone();
    schema["components"] = doc["components"].clone();
    let v = jsonschema::validator_for(&schema).expect("valid schema");
    v.iter_errors(body).count()
}

/// `path` of a document with its `{name}` parameters replaced.
pub(crate) fn concrete(path: &str, params: &[(&str, &str)]) -> String {
    let mut p = path.to_string();
    for (k, v) in params {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    assert!(!p.contains('{'), "no value for a parameter of {path}");
    p
}

/// Requests every documented path under `prefix` with each of its
/// `methods` the document declares (parameters from `params`, `headers`
/// on every request, POST with `post` as content type and body); each
/// answer must be declared and validate. Returns how many requests were
/// made.
#[track_caller]
pub(crate) fn sweep(
    api: &Api,
    doc: &Value,
    (prefix, suffix): (&str, &str),
    methods: &[&str],
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
    post: (&str, &[u8]),
) -> usize {
    let mut n = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let url = format!("{prefix}{}{suffix}", concrete(path, params));
        for m in methods.iter().filter(|m| item.get(**m).is_some()) {
            let mut h = headers.to_vec();
            let body = (*m == "post").then(|| {
                h.push(("Content-Type", post.0));
                post.1
            });
            let r = api.send(&m.to_uppercase(), &url, &h, body);
            documented(doc, path, m, &r);
            n += 1;
        }
    }
    n
}

// ---- Keystone v3 ----

fn login(api: &Api, root: &str, user: &str, password: &str) -> Resp {
    let b = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": user, "domain": {"id": "default"}}},
    }});
    api.send(
        "POST",
        &format!("{root}/auth/tokens"),
        &[("Content-Type", "application/json")],
        Some(b.to_string().as_bytes()),
    )
}

fn keystone(api: &Api) {
    let admin_api = Api::start_with(Some(api_common::DEMO_AND_ADMIN_AUTH), |_| {});
    for root in ["/v3", "/identity/v3"] {
        let r = api.raw("GET", &format!("{root}/openapi.json"), None, None);
        assert_eq!(r.status, 200, "{}", r.text);
        let doc = r.json;
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"][0]["url"], format!("{}{root}", api.base));
        assert_eq!(
            doc["components"]["securitySchemes"]["token"]["name"],
            "X-Auth-Token"
        );
        let d = |path: &str, method: &str, r: &Resp| documented(&doc, path, method, r);
        let u = |p: &str| format!("{root}{p}");

        let r = api.raw("GET", &u("/"), None, None);
        let link = format!("<{}{root}/openapi.json>; rel=\"service-desc\"", api.base);
        assert_eq!(r.header("link"), Some(link.as_str()));
        d("/", "get", &r);
        d("/", "head", &api.raw("HEAD", &u(""), None, None));
        let r = login(api, root, "demo", "demo-password");
        assert_eq!(r.status, 201, "{}", r.text);
        d("/auth/tokens", "post", &r);
        assert!(r.json["token"]["catalog"].is_array());
        let t = r.header("x-subject-token").expect("token").to_string();
        let r = api.send(
            "POST",
            &u("/auth/tokens?nocatalog"),
            &[("Content-Type", "application/json")],
            Some(
                json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t}}}})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(r.json["token"].get("catalog").is_none());
        d("/auth/tokens", "post", &r);
        let r = login(api, root, "demo", "wrong");
        assert_eq!(r.status, 401);
        d("/auth/tokens", "post", &r);
        let r = api.post(&u("/auth/tokens"), "", &json!({"nope": 1}));
        assert_eq!(r.status, 400);
        d("/auth/tokens", "post", &r);

        let other = login(api, root, "other", "other-password");
        let ot = other.header("x-subject-token").expect("token").to_string();
        for (m, subject, token, status) in [
            ("GET", &t, Some(t.as_str()), 200),
            ("HEAD", &t, Some(t.as_str()), 200),
            ("GET", &t, None, 401),
            ("GET", &ot, Some(t.as_str()), 403),
            ("GET", &"nope".to_string(), Some(t.as_str()), 404),
        ] {
            let mut h = vec![("X-Subject-Token", subject.as_str())];
            if let Some(token) = token {
                h.push(("X-Auth-Token", token));
            }
            let r = api.send(m, &u("/auth/tokens"), &h, None);
            assert_eq!(r.status, status, "{m} {}", r.text);
            d("/auth/tokens", &m.to_lowercase(), &r);
        }
        for p in ["/auth/catalog", "/auth/projects", "/projects"] {
            let r = api.get(&u(p), &t);
            assert_eq!(r.status, 200, "{p}");
            d(p, "get", &r);
            let r = api.raw("GET", &u(p), None, None);
            assert_eq!(r.status, 401, "{p}");
            d(p, "get", &r);
        }
        let r = api.get(&u("/projects?name=other"), &t);
        assert_eq!(r.json["projects"], json!([]));
        d("/projects", "get", &r);
        for (p, mine, theirs) in [
            (
                "/projects/{project_id}",
                "/projects/demo",
                "/projects/other",
            ),
            ("/users/{user_id}", "/users/demo", "/users/other"),
        ] {
            for (url, token, status) in [
                (mine, Some(&t), 200),
                (mine, None, 401),
                (theirs, Some(&t), 403),
            ] {
                let r = api.raw("GET", &u(url), token.map(String::as_str), None);
                assert_eq!(r.status, status, "{url}");
                d(p, "get", &r);
            }
        }
        d(
            "/openapi.json",
            "get",
            &api.raw("GET", &u("/openapi.json"), None, None),
        );

        let n = sweep(
            api,
            &doc,
            (root, ""),
            &["get", "head", "post"],
            &[("project_id", "demo"), ("user_id", "demo")],
            &[("X-Auth-Token", &t), ("X-Subject-Token", &t)],
            ("application/json", b"{}"),
        );
        assert_eq!(n, 13);
        keystone_projects(&doc, root, &admin_api);
        all_covered(&doc);
    }
}

/// Keystone's domains and the projects an admin makes and deletes, on
/// `admin_api` (whose auth file has an admin); a made project has Cinder
/// quota sets.
fn keystone_projects(doc: &Value, root: &str, admin_api: &Api) {
    let api = admin_api;
    let d = |path: &str, method: &str, r: &Resp| documented(doc, path, method, r);
    let u = |p: &str| format!("{root}{p}");
    let token = |user: &str, password: &str| {
        let r = login(api, root, user, password);
        assert_eq!(r.status, 201, "{}", r.text);
        r.header("x-subject-token").expect("token").to_string()
    };
    let (ops, demo) = (token("ops", "ops-password"), token("demo", "demo-password"));

    let r = api.get(&u("/domains?name=Default"), &demo);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["domains"][0]["id"], "default");
    d("/domains", "get", &r);
    let r = api.get(&u("/domains?name=Other"), &demo);
    assert_eq!(r.json["domains"], json!([]));
    let r = api.raw("GET", &u("/domains"), None, None);
    assert_eq!(r.status, 401);
    d("/domains", "get", &r);

    let body =
        json!({"project": {"name": "quota-only", "description": "d", "domain_id": "default"}});
    for (who, b, status) in [
        (Some(&demo), &body, 403),
        (None, &body, 401),
        (Some(&ops), &json!({"project": {}}), 400),
        (Some(&ops), &json!({"project": {"name": "demo"}}), 409),
        (Some(&ops), &body, 201),
        (Some(&ops), &body, 409),
    ] {
        let r = api.post(&u("/projects"), who.map_or("", String::as_str), b);
        assert_eq!(r.status, status, "{}", r.text);
        d("/projects", "post", &r);
    }
    let r = api.get(&u("/projects?name=quota-only"), &ops);
    assert_eq!(r.status, 200, "{}", r.text);
    d("/projects", "get", &r);
    let id = r.json["projects"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = api.get(&u("/projects"), &ops);
    assert_eq!(r.json["projects"].as_array().map(Vec::len), Some(3));
    let one = "/projects/{project_id}";
    let r = api.get(&u(&format!("/projects/{id}")), &ops);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["project"]["description"], "d");
    d(one, "get", &r);
    let r = api.get(&u("/projects/nope"), &ops);
    assert_eq!(r.status, 404, "{}", r.text);
    d(one, "get", &r);
    // Cinder treats it as a tenant with the default quotas.
    let r = api.get(&format!("/volume/v3/ops/os-quota-sets/{id}/defaults"), &ops);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["quota_set"]["id"], id.as_str());

    for (who, p, status) in [
        (Some(&demo), id.as_str(), 403),
        (None, id.as_str(), 401),
        (Some(&ops), "demo", 403),
        (Some(&ops), id.as_str(), 204),
        (Some(&ops), id.as_str(), 404),
    ] {
        let r = api.raw(
            "DELETE",
            &u(&format!("/projects/{p}")),
            who.map(String::as_str),
            None,
        );
        assert_eq!(r.status, status, "{}", r.text);
        d(one, "delete", &r);
    }
    let r = api.get(&format!("/volume/v3/ops/os-quota-sets/{id}/defaults"), &ops);
    assert_eq!(r.status, 404, "{}", r.text);
}

// ---- Glance ----

fn glance(api: &Api) {
    let doc = api.raw("GET", "/image/v2/openapi.json", None, None).json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], format!("{}/image", api.base));
    let d = |path: &str, method: &str, r: &Resp| documented(&doc, path, method, r);
    for p in ["/", "/versions"] {
        let r = api.raw("GET", &format!("/image{p}"), None, None);
        assert_eq!(r.status, 300);
        d(p, "get", &r);
    }
    let r = api.raw("GET", "/image/v2", None, None);
    let link = format!("<{}/image/v2/openapi.json>; rel=\"service-desc\"", api.base);
    assert_eq!(r.header("link"), Some(link.as_str()));
    d("/v2", "get", &r);
    d("/v2", "head", &api.raw("HEAD", "/image/v2", None, None));
    let r = api.get("/image/v2/images?name=golden", DEMO);
    assert_eq!(
        r.json["images"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    d("/v2/images", "get", &r);
    let id = r.json["images"][0]["id"].as_str().expect("id").to_string();
    d(
        "/v2/images",
        "head",
        &api.raw("HEAD", "/image/v2/images", Some(DEMO), None),
    );
    let r = api.raw("GET", "/image/v2/images", None, None);
    assert_eq!(r.status, 401);
    d("/v2/images", "get", &r);
    let one = "/v2/images/{image_id}";
    d(
        one,
        "get",
        &api.get(&format!("/image/v2/images/{id}"), DEMO),
    );
    d(
        one,
        "head",
        &api.raw("HEAD", &format!("/image/v2/images/{id}"), Some(DEMO), None),
    );
    let r = api.raw("GET", &format!("/image/v2/images/{id}"), None, None);
    assert_eq!(r.status, 401);
    d(one, "get", &r);
    let r = api.get("/image/v2/images/nope", DEMO);
    assert_eq!(r.status, 404);
    d(one, "get", &r);
    d(
        "/v2/openapi.json",
        "get",
        &api.raw("GET", "/image/v2/openapi.json", None, None),
    );
    let n = sweep(
        api,
        &doc,
        ("/image", ""),
        &["get", "head"],
        &[("image_id", &id)],
        &[("X-Auth-Token", DEMO)],
        ("", b""),
    );
    assert_eq!(n, 9);
    all_covered(&doc);
}

// ---- Deltacloud ----

/// A Deltacloud request in JSON: `method`, `path` under `/api` (a query
/// string may follow), Basic credentials, a form body.
fn dc(api: &Api, method: &str, path: &str, who: Option<(&str, &str)>, form: &str) -> Resp {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("/api{path}{sep}format=json");
    let auth = who.map(basic);
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    api.send(
        method,
        &url,
        &h,
        (!form.is_empty()).then_some(form.as_bytes()),
    )
}

fn deltacloud(api: &Api) {
    let r = api.raw("GET", "/api?format=json", None, None);
    assert_eq!(r.status, 200);
    let link = format!("<{}/api/openapi.json>; rel=\"service-desc\"", api.base);
    assert_eq!(r.header("link"), Some(link.as_str()));
    let doc = api.raw("GET", "/api/openapi.json", None, None).json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], format!("{}/api", api.base));
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
    let d = |path: &str, method: &str, r: &Resp| documented(&doc, path, method, r);
    let me = Some(DEMO_BASIC);
    let small = Some(SMALL_BASIC);

    d("/", "get", &r);
    let r = dc(api, "GET", "?force_auth=1", None, "");
    assert_eq!(r.status, 401);
    d("/", "get", &r);
    d(
        "/openapi.json",
        "get",
        &api.raw("GET", "/api/openapi.json", None, None),
    );

    let vols = "/storage_volumes";
    let vol = "/storage_volumes/{id}";
    let snaps = "/storage_snapshots";
    let snap = "/storage_snapshots/{id}";
    let r = dc(
        api,
        "POST",
        vols,
        me,
        "capacity=1&name=a&description=d&realm_id=z1",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    d(vols, "post", &r);
    let id = r.json["storage_volume"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = dc(api, "POST", vols, me, "");
    assert_eq!(r.json["storage_volume"]["name"], Value::Null);
    d(vols, "post", &r);
    let other = r.json["storage_volume"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    for (form, who, status) in [
        ("capacity=0", me, 400),
        ("snapshot_id=nope", me, 404),
        ("capacity=4", small, 413),
        ("", None, 401),
    ] {
        let r = dc(api, "POST", vols, who, form);
        assert_eq!(r.status, status, "{form}: {}", r.text);
        d(vols, "post", &r);
    }
    let at = |p: &str, id: &str| p.replace("{id}", id);
    for (m, p) in [
        ("POST", vols),
        ("POST", "/storage_volumes/{id}/attach"),
        ("POST", "/storage_volumes/{id}/detach"),
        ("POST", snaps),
    ] {
        let r = api.send(
            m,
            &format!("/api{}?format=json", at(p, &id)),
            &[
                ("Content-Type", "text/plain"),
                ("Authorization", &basic(DEMO_BASIC)),
            ],
            Some(b"x"),
        );
        assert_eq!(r.status, 415, "{p}");
        d(p, "post", &r);
    }
    d(vols, "get", &dc(api, "GET", vols, me, ""));
    d(vol, "get", &dc(api, "GET", &at(vol, &id), me, ""));
    for (p, m) in [
        (vols, "GET"),
        (vol, "GET"),
        (vol, "DELETE"),
        (snaps, "GET"),
        (snaps, "POST"),
        (snap, "GET"),
        (snap, "DELETE"),
        ("/storage_volumes/{id}/attach", "POST"),
        ("/storage_volumes/{id}/detach", "POST"),
    ] {
        let r = dc(api, m, &at(p, "x"), None, "");
        assert_eq!(r.status, 401, "{m} {p}");
        d(p, &m.to_lowercase(), &r);
    }
    for (p, m) in [
        (vol, "GET"),
        (vol, "DELETE"),
        (snap, "GET"),
        (snap, "DELETE"),
        ("/storage_volumes/{id}/attach", "POST"),
        ("/storage_volumes/{id}/detach", "POST"),
    ] {
        let r = dc(api, m, &at(p, "nope"), me, "instance_id=i-1");
        assert_eq!(r.status, 404, "{m} {p}");
        d(p, &m.to_lowercase(), &r);
    }

    let attach = "/storage_volumes/{id}/attach";
    let detach = "/storage_volumes/{id}/detach";
    let r = dc(api, "POST", &at(attach, &id), me, "");
    assert_eq!(r.status, 400);
    d(attach, "post", &r);
    let r = dc(api, "POST", &at(detach, &id), me, "");
    assert_eq!(r.status, 409);
    d(detach, "post", &r);
    let r = api.send(
        "POST",
        &format!("/api{}?format=json", at(detach, &id)),
        &[
            ("Content-Type", "multipart/form-data"),
            ("Authorization", &basic(DEMO_BASIC)),
        ],
        Some(b"x"),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    d(detach, "post", &r);
    let r = dc(
        api,
        "POST",
        &at(attach, &id),
        me,
        "instance_id=i-1&device=/dev/vdc",
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.json["storage_volume"]["mount"].is_object());
    d(attach, "post", &r);
    let r = dc(api, "POST", &at(attach, &id), me, "instance_id=i-1");
    assert_eq!(r.status, 409);
    d(attach, "post", &r);
    // The attached volume, in the list and alone.
    d(vols, "get", &dc(api, "GET", vols, me, ""));
    let r = dc(api, "GET", &at(vol, &id), me, "");
    d(vol, "get", &r);
    // The schemas bite: an unknown member, a missing one, a wrong type.
    assert_eq!(schema_errors(&doc, vol, "get", 200, &r.json), 0);
    let mut extra = r.json.clone();
    extra["storage_volume"]["mount"]["extra"] = json!(1);
    let mut missing = r.json.clone();
    missing["storage_volume"]
        .as_object_mut()
        .unwrap()
        .remove("state");
    let mut wrong = r.json.clone();
    wrong["storage_volume"]["capacity"] = json!(1);
    for bad in [extra, missing, wrong] {
        assert!(schema_errors(&doc, vol, "get", 200, &bad) > 0, "{bad}");
    }
    let r = dc(api, "DELETE", &at(vol, &id), me, "");
    assert_eq!(r.status, 409);
    d(vol, "delete", &r);

    let r = dc(
        api,
        "POST",
        snaps,
        me,
        &format!("volume_id={id}&name=s&description=d"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    d(snaps, "post", &r);
    let sid = r.json["storage_snapshot"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    for (form, who, status) in [("", me, 400), ("volume_id=nope", me, 404)] {
        let r = dc(api, "POST", snaps, who, form);
        assert_eq!(r.status, status, "{form}: {}", r.text);
        d(snaps, "post", &r);
    }
    let sv = dc(api, "POST", vols, small, "capacity=1");
    let sv = sv.json["storage_volume"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let form = format!("volume_id={sv}");
    assert_eq!(dc(api, "POST", snaps, small, &form).status, 201);
    let r = dc(api, "POST", snaps, small, &form);
    assert_eq!(r.status, 413, "{}", r.text);
    d(snaps, "post", &r);
    d(snaps, "get", &dc(api, "GET", snaps, me, ""));
    d(snap, "get", &dc(api, "GET", &at(snap, &sid), me, ""));

    let n = sweep(
        api,
        &doc,
        ("/api", "?format=json"),
        &["get", "post"],
        &[("id", &id)],
        &[("Authorization", &basic(DEMO_BASIC))],
        ("text/plain", b"x"),
    );
    assert_eq!(n, 10);

    let r = dc(api, "POST", &at(detach, &id), me, "");
    assert_eq!(r.status, 202);
    d(detach, "post", &r);
    d(snap, "delete", &dc(api, "DELETE", &at(snap, &sid), me, ""));
    d(vol, "delete", &dc(api, "DELETE", &at(vol, &other), me, ""));
    all_covered(&doc);
}

#[test]
fn generated_documents_describe_real_responses() {
    let fs = danube_common::FileServer::start();
    let api = danube_common::api_importing_from(&fs);
    keystone(&api);
    deltacloud(&api);
    // Makes the image `golden` Glance lists.
    danube::danube(&api, &fs);
    glance(&api);
    // Uses Danube's public image `golden`.
    cimi::cimi_dialect(&api);
    cinder::cinder(&api);
}
