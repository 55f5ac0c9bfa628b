//! The online scrub of `blockd serve`: a bit flipped in a data payload while
//! the server runs is found by the scrub SIGUSR1 asks for, and reported by
//! object and offset, while the server keeps serving.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn blockd(dir: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_blockd"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "blockd {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn wait_for(log: &Mutex<String>, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let l = log.lock().unwrap().clone();
        if l.contains(needle) {
            return l;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no {needle:?} in the server log:\n{l}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigusr1_scrub_finds_a_flip_while_serving() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let src = t.path().join("src.raw");
    let mut content = vec![0u8; 1 << 20];
    content[(256 << 10)..(256 << 10) + 4096].fill(0x6b);
    std::fs::write(&src, &content).unwrap();
    let id = blockd(&data, &["import", src.to_str().unwrap(), "v"]);
    let sock = t.path().join("nbd.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockd"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "serve",
            "--api-listen",
            "",
            "--nbd-listen",
            "",
            "--scrub-interval",
            "0",
            "--nbd-socket",
        ])
        .arg(&sock)
        .env("BLOCKD_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    wait_for(&log, "NBD listening on unix");
    // A clean scrub first.
    let pid = child.id().to_string();
    Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    wait_for(&log, "0 errors");
    // Flip one bit of the 0x6b block inside the live segment file.
    let seg = data.join("segments/seg-00000001.log");
    let bytes = std::fs::read(&seg).unwrap();
    let pos = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 0x6b))
        .unwrap()
        + 11;
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&[bytes[pos] ^ 0x04], pos as u64).unwrap();
    drop(f);
    log.lock().unwrap().clear();
    Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    let l = wait_for(&log, "scrub finished");
    assert!(l.contains("1 errors"), "{l}");
    assert!(
        l.contains(&format!("object {id} offset {}", 256 << 10)),
        "{l}"
    );
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
}
