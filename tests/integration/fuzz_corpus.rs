//! Replays the fuzz corpus (seeds and any crash reproducers committed under `fuzz/corpus` and
//! `fuzz/regressions`) through the same entry points the fuzz targets call, on every `cargo
//! test`, so a fixed crash stays fixed without a fuzzer.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            // Only the committed files: seeds and reproducers.
            if !(name.starts_with("seed-") || dir.ends_with(Path::new("regressions").join(target)))
            {
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{} panics", p.display());
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn reply_message() {
    replay("reply_message", securemail::fuzz::reply_message);
}

#[test]
fn config() {
    replay("config", securemail::fuzz::config);
}

#[test]
fn list() {
    replay("list", securemail::fuzz::list);
}

#[test]
fn codes() {
    replay("codes", securemail::fuzz::codes);
}

#[test]
fn certificate() {
    replay("certificate", securemail::fuzz::certificate);
}

#[test]
fn smtp_replies() {
    replay("smtp_replies", securemail::fuzz::smtp_replies);
}
