//! NBD authorization (`blockd serve --nbd-auth`) against a real server:
//! a volume is reached only through the export name its attachment
//! returned (qemu-io and libnbd), never by its id or a guessed name, and
//! LIST shows an anonymous client nothing; detaching revokes the name and
//! closes a connection that was open with it; a TLS client certificate
//! naming a tenant opens that tenant's volumes by id and no other's; the
//! default ("auto") leaves a loopback-only server open, as before.

mod api_common;
mod tls_common;
use api_common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn attach(api: &Api, tenant: &str, token: &str, server: &str, vol: &str) -> Value {
    let r = api.post(
        &format!("/v1.1/{tenant}/servers/{server}/os-volume_attachments"),
        token,
        &json!({"volumeAttachment": {"volumeId": vol, "device": "/dev/vdb"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["volumeAttachment"].clone()
}

fn detach(api: &Api, tenant: &str, token: &str, server: &str, vol: &str) {
    let r = api.delete(
        &format!("/v1.1/{tenant}/servers/{server}/os-volume_attachments/{vol}"),
        token,
    );
    assert_eq!(r.status, 202, "{}", r.text);
}

/// True when nbdinfo can open `uri`.
fn opens(uri: &str) -> bool {
    run("nbdinfo", &[uri]).status.success()
}

#[test]
fn only_the_attachment_secret_opens_a_volume_and_detach_revokes_it() {
    let api = Api::start_args(&["--nbd-auth", "on"], &[]);
    let vol = api.volume("demo", DEMO, 1);
    // Not attached: neither its id nor anything else opens it.
    assert!(!opens(&api.nbd_uri(&vol)), "opened by id without a grant");
    let a = attach(&api, "demo", DEMO, "srv1", &vol);
    let info = &a["connection_info"];
    assert_eq!(info["driver_volume_type"], "nbd", "{a}");
    let export = info["data"]["export_name"].as_str().expect("export name");
    assert_ne!(export, vol, "the secret must not be the guessable id");
    assert!(export.len() >= 64, "{export}");
    let socket = info["data"]["socket"].as_str().expect("socket");
    assert_eq!(socket, api.socket.to_str().unwrap());
    // The secret opens it for I/O; the id, a guessed secret and a secret
    // one character off do not.
    let uri = api.nbd_uri(export);
    qemu_io(&uri, &["write -P 0x5a 0 64k", "read -P 0x5a 0 64k"]);
    assert!(!opens(&api.nbd_uri(&vol)));
    let mut off = export.to_string();
    let last = off.pop().unwrap();
    off.push(if last == '0' { '1' } else { '0' });
    assert!(!opens(&api.nbd_uri(&off)));
    let guess = format!("att-{}", "0".repeat(64));
    assert!(!opens(&api.nbd_uri(&guess)));
    // LIST shows an anonymous client nothing, not even the secret.
    let list = run("nbdinfo", &["--list", &api.nbd_uri("")]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(!text.contains(export) && !text.contains(&vol), "{text}");
    // Another tenant's request with the volume id gets no answer that
    // reveals the secret.
    let r = api.get(
        &format!("/v1.1/other/servers/srv1/os-volume_attachments/{vol}"),
        OTHER,
    );
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(!r.text.contains(export));

    // A connection open with the secret is closed by the detach.
    // Debian's Python has libnbd's binding (as tests/common uses it).
    let script = r#"
import nbd, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pread(4096, 0)
print("open", flush=True)
t = time.time()
while time.time() - t < 30:
    try:
        h.pread(4096, 0)
    except Exception:
        print("closed", flush=True)
        sys.exit(0)
    time.sleep(0.05)
print("still open", flush=True)
sys.exit(1)
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script, &uri])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "open");
    detach(&api, "demo", DEMO, "srv1", &vol);
    assert_eq!(lines.next().unwrap().unwrap(), "closed");
    assert!(child.wait().unwrap().success());
    // The name is dead; a new attachment gets a new one.
    assert!(!opens(&uri));
    let a2 = attach(&api, "demo", DEMO, "srv2", &vol);
    let export2 = a2["connection_info"]["data"]["export_name"]
        .as_str()
        .unwrap();
    assert_ne!(export2, export);
    qemu_io(&api.nbd_uri(export2), &["read -P 0x5a 0 64k"]);
    // The OpenStack attachment listing carries the connection too.
    let r = api.get("/v1.1/demo/servers/srv2/os-volume_attachments", DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(export2), "{}", r.text);
    assert!(api
        .log()
        .iter()
        .any(|l| l.contains("NBD attachment revoked")));
}

#[test]
fn a_tenant_certificate_opens_that_tenants_volumes_only() {
    let c = tls_common::certs_for("demo");
    let args = [
        "--nbd-auth",
        "on",
        "--nbd-tls-cert",
        c.server_cert.to_str().unwrap(),
        "--nbd-tls-key",
        c.server_key.to_str().unwrap(),
        "--nbd-tls-client-ca",
        c.ca.to_str().unwrap(),
    ];
    let api = Api::start_args(&args, &[]);
    let mine = api.volume("demo", DEMO, 1);
    let theirs = api.volume("other", OTHER, 1);
    let uri = |export: &str| {
        format!(
            "nbds+unix:///{export}?socket={}&tls-certificates={}",
            api.socket.display(),
            c.client.display()
        )
    };
    let info = run("nbdinfo", &[&uri(&mine)]);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(
        !opens(&uri(&theirs)),
        "demo's certificate opened other's volume"
    );
    // LIST over TLS shows demo's volume and not other's.
    let list = run("nbdinfo", &["--list", &uri("")]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&mine), "{text}");
    assert!(!text.contains(&theirs), "{text}");
    // Other's attachment secret still works for whoever holds it.
    let a = attach(&api, "other", OTHER, "srv9", &theirs);
    let export = a["connection_info"]["data"]["export_name"]
        .as_str()
        .unwrap();
    assert_eq!(a["connection_info"]["data"]["tls"], true);
    assert!(opens(&uri(export)));
}

#[test]
fn auto_leaves_a_loopback_only_server_open() {
    // The test servers listen on a Unix socket only: "auto" is off.
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    assert!(opens(&api.nbd_uri(&vol)));
    let a = attach(&api, "demo", DEMO, "srv1", &vol);
    let export = a["connection_info"]["data"]["export_name"]
        .as_str()
        .unwrap();
    assert!(opens(&api.nbd_uri(export)));
}
