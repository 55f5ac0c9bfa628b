//! Black-box tests of the FUSE export through `blockd mount`: dd and cmp
//! round trips, fio with crc32c verification, mkfs.ext4 + e2fsck, read-only
//! snapshot files, SEEK_DATA/SEEK_HOLE, fallocate, qemu-img on the file,
//! deletion while mounted and a clean unmount on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn blockd(dir: &Path, args: &[&str]) -> String {
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

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

struct Mount {
    child: Option<Child>,
    path: PathBuf,
}

impl Mount {
    fn start(data: &Path, path: &Path) -> Mount {
        let child = Command::new(env!("CARGO_BIN_EXE_blockd"))
            .arg("--data-dir")
            .arg(data)
            .arg("mount")
            .arg(path)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while !path.join("volumes").is_dir() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "mount did not appear"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount {
            child: Some(child),
            path: path.to_path_buf(),
        }
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        let t = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "blockd mount did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.path)
                .status();
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn usable() -> bool {
    if !Path::new("/dev/fuse").exists() || !have("fusermount3") {
        eprintln!("skipping: FUSE unavailable (scripts/test.sh installs fuse3)");
        return false;
    }
    true
}

#[test]
fn files_roundtrip_snapshots_and_tools() {
    if !usable() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let mnt = t.path().join("mnt");
    blockd(&data, &["volume", "create", "v", "--size", "64M"]);
    blockd(&data, &["volume", "create", "fs", "--size", "128M"]);
    // The snapshot holds 4 MiB of known bytes.
    let seed: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let seed_file = t.path().join("seed.raw");
    std::fs::write(&seed_file, &seed).unwrap();
    blockd(&data, &["import", seed_file.to_str().unwrap(), "base"]);
    let snap_id = blockd(&data, &["snapshot", "create", "base", "base-snap"]);
    let mut m = Mount::start(&data, &mnt);
    let vol = mnt.join("volumes/v");
    assert_eq!(std::fs::metadata(&vol).unwrap().len(), 64 << 20);

    // dd in, cmp out.
    let src = t.path().join("src.raw");
    let rnd: Vec<u8> = (0..(8u64 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &rnd).unwrap();
    run(
        "dd",
        &[
            &format!("if={}", src.display()),
            &format!("of={}", vol.display()),
            "bs=1M",
            "seek=3",
            "conv=notrunc,fsync",
            "status=none",
        ],
    );
    run(
        "cmp",
        &[
            "-n",
            &(8u64 << 20).to_string(),
            src.to_str().unwrap(),
            "-i",
            &format!("0:{}", 3u64 << 20),
            vol.to_str().unwrap(),
        ],
    );

    // SEEK_DATA / SEEK_HOLE follow the allocation map; fallocate trims.
    {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&vol)
            .unwrap();
        let fd = seek(&f, 0, 3);
        assert_eq!(fd, 3 << 20, "SEEK_DATA");
        assert_eq!(seek(&f, 3 << 20, 4), 11 << 20, "SEEK_HOLE");
    }
    run(
        "fallocate",
        &[
            "--punch-hole",
            "--keep-size",
            "--offset",
            &(4u64 << 20).to_string(),
            "--length",
            &(1u64 << 20).to_string(),
            vol.to_str().unwrap(),
        ],
    );
    let back = std::fs::read(&vol).unwrap();
    assert!(
        back[(4 << 20)..(5 << 20)].iter().all(|&b| b == 0),
        "punched range reads zero"
    );
    assert_eq!(&back[(5 << 20)..(11 << 20)], &rnd[(2 << 20)..(8 << 20)]);
    run(
        "fallocate",
        &[
            "--zero-range",
            "--offset",
            "8192",
            "--length",
            "4096",
            vol.to_str().unwrap(),
        ],
    );
    {
        let f = std::fs::File::open(&vol).unwrap();
        assert_eq!(seek(&f, 4 << 20, 4), 4 << 20, "hole after punch");
        assert_eq!(seek(&f, 4 << 20, 3), 5 << 20, "data after the punched hole");
    }

    // Snapshot files: read-only and their bytes are the snapshot's.
    let snap = mnt.join("snapshots/base-snap");
    assert!(std::fs::read(&snap).unwrap() == seed);
    assert!(
        std::fs::read(mnt.join("snapshots").join(&snap_id)).unwrap() == seed,
        "reachable by id"
    );
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(&snap)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(30), "EROFS: {e}");
    run(
        "dd",
        &[
            "if=/dev/zero",
            &format!("of={}", mnt.join("volumes/base").display()),
            "bs=1M",
            "count=2",
            "conv=notrunc,fsync",
            "status=none",
        ],
    );
    assert!(
        std::fs::read(&snap).unwrap() == seed,
        "snapshot unchanged by later volume writes"
    );
    assert!(
        std::fs::read(mnt.join("volumes/base")).unwrap()[..(2 << 20)]
            .iter()
            .all(|&b| b == 0)
    );

    // mkfs.ext4 then a clean e2fsck.
    let fsv = mnt.join("volumes/fs");
    if have("mkfs.ext4") {
        run("mkfs.ext4", &["-q", "-F", fsv.to_str().unwrap()]);
        run("e2fsck", &["-f", "-n", fsv.to_str().unwrap()]);
    }
    // qemu-img reads the file like any raw image.
    if have("qemu-img") {
        let info = run(
            "qemu-img",
            &["info", "--output=json", "-f", "raw", vol.to_str().unwrap()],
        );
        assert!(info.contains(&(64u64 << 20).to_string()), "{info}");
        let out = t.path().join("conv.qcow2");
        run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "qcow2",
                vol.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
        );
        run(
            "qemu-img",
            &[
                "compare",
                "-f",
                "raw",
                "-F",
                "qcow2",
                vol.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
        );
    }
    // fio with crc32c verification on the file.
    if have("fio") {
        run(
            "fio",
            &[
                "--name=verify",
                &format!("--filename={}", vol.display()),
                "--rw=randwrite",
                "--bs=4k",
                "--size=16M",
                "--verify=crc32c",
                "--verify_fatal=1",
                "--ioengine=psync",
                "--numjobs=1",
                "--do_verify=1",
                "--verify_state_save=0",
                "--output-format=terse",
            ],
        );
    }
    // Deleting a volume while mounted: an open file fails, the name goes away.
    let victim = std::fs::File::open(mnt.join("volumes/v")).unwrap();
    std::fs::remove_file(mnt.join("volumes/v")).unwrap();
    let names: Vec<String> = std::fs::read_dir(mnt.join("volumes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.contains(&"v".to_string()), "{names:?}");
    let mut buf = [0u8; 4096];
    use std::os::unix::fs::FileExt;
    let e = victim.read_at(&mut buf, 0).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(116),
        "ESTALE for a deleted volume: {e}"
    );
    // Writes to an image-less directory are refused.
    assert!(std::fs::write(mnt.join("volumes/new"), b"x").is_err());
    drop(victim);
    let st = m.stop();
    assert!(st.success(), "clean exit on SIGTERM: {st:?}");
    assert!(!mnt.join("volumes").exists(), "unmounted");
    let chk = blockd(&data, &["check"]);
    assert!(chk.contains("0 corruption"), "{chk}");
}

/// lseek with SEEK_DATA (3) or SEEK_HOLE (4).
fn seek(f: &std::fs::File, off: u64, whence: i32) -> u64 {
    let w = if whence == 3 {
        rustix::fs::SeekFrom::Data(off)
    } else {
        rustix::fs::SeekFrom::Hole(off)
    };
    rustix::fs::seek(f, w).unwrap()
}

/// `blockd serve --fuse-mount`: the same bytes through FUSE and NBD, both
/// ways, in one process.
#[test]
fn fuse_and_nbd_agree() {
    if !usable() || !have("qemu-img") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let mnt = t.path().join("mnt");
    let sock = t.path().join("nbd.sock");
    blockd(&data, &["volume", "create", "v", "--size", "16M"]);
    let child = Command::new(env!("CARGO_BIN_EXE_blockd"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--api-listen", "", "--nbd-listen", ""])
        .arg("--nbd-socket")
        .arg(&sock)
        .arg("--fuse-mount")
        .arg(&mnt)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut m = Mount {
        child: Some(child),
        path: mnt.clone(),
    };
    let start = Instant::now();
    while !(sock.exists() && mnt.join("volumes/v").exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let uri = format!("nbd+unix:///v?socket={}", sock.display());
    // NBD in, FUSE out.
    let src = t.path().join("a.raw");
    let bytes: Vec<u8> = (0..(16u64 << 20))
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 11) as u8)
        .collect();
    std::fs::write(&src, &bytes).unwrap();
    run(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "raw",
            "-O",
            "raw",
            src.to_str().unwrap(),
            &uri,
        ],
    );
    assert!(
        std::fs::read(mnt.join("volumes/v")).unwrap() == bytes,
        "FUSE reads what NBD wrote"
    );
    // FUSE in, NBD out.
    run(
        "dd",
        &[
            "if=/dev/zero",
            &format!("of={}", mnt.join("volumes/v").display()),
            "bs=1M",
            "count=3",
            "seek=5",
            "conv=notrunc,fsync",
            "status=none",
        ],
    );
    let out = t.path().join("b.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &uri,
            out.to_str().unwrap(),
        ],
    );
    let mut expect = bytes.clone();
    expect[(5 << 20)..(8 << 20)].fill(0);
    assert!(
        std::fs::read(&out).unwrap() == expect,
        "NBD reads what FUSE wrote"
    );
    assert!(std::fs::read(mnt.join("volumes/v")).unwrap() == expect);
    let st = m.stop();
    assert!(st.success(), "{st:?}");
    assert!(!mnt.join("volumes").exists(), "unmounted on SIGTERM");
}
