//! TLS material for the NBD tests: a CA, a server certificate for
//! localhost and 127.0.0.1, and a client certificate with a chosen subject
//! common name, made by openssl in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Certificates made for one test: a CA, a server certificate for
/// localhost and 127.0.0.1, and a client certificate. `trust` holds only
/// the CA (a client without a certificate); `client` the CA and the
/// client's certificate and key (the file names qemu and libnbd expect).
pub struct Certs {
    _tmp: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub trust: PathBuf,
    pub client: PathBuf,
}

/// Runs openssl in `dir`; asserts success.
pub fn openssl(dir: &Path, args: &[&str]) {
    let o = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Certificates with the client certificate's subject `CN=client`.
pub fn certs() -> Certs {
    certs_for("client")
}

/// Certificates whose client certificate names `client_cn` as its subject
/// common name.
pub fn certs_for(client_cn: &str) -> Certs {
    let client_subject = format!("/CN={client_cn}");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("ext.cnf"),
        "[srv]\nsubjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n\
         [cli]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n\
         extendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca-cert.pem",
        "-days",
        "2",
        "-subj",
        "/CN=blockd test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca);
    for (name, cn, ext) in [
        ("server", "/CN=localhost", "srv"),
        ("client", client_subject.as_str(), "cli"),
    ] {
        let key = format!("{name}-key.pem");
        let csr = format!("{name}.csr");
        let cert = format!("{name}-cert.pem");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", cn]);
        openssl(d, &req);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca-cert.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
            ],
        );
    }
    let trust = d.join("trust");
    let client = d.join("client");
    for (dir, files) in [
        (&trust, &["ca-cert.pem"][..]),
        (
            &client,
            &["ca-cert.pem", "client-cert.pem", "client-key.pem"][..],
        ),
    ] {
        std::fs::create_dir(dir).unwrap();
        for f in files {
            std::fs::copy(d.join(f), dir.join(f)).unwrap();
        }
    }
    Certs {
        ca: d.join("ca-cert.pem"),
        server_cert: d.join("server-cert.pem"),
        server_key: d.join("server-key.pem"),
        client_cert: d.join("client-cert.pem"),
        client_key: d.join("client-key.pem"),
        trust,
        client,
        _tmp: tmp,
    }
}
