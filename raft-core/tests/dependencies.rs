//! The core stays sans-IO: its manifest names no runtime, network or file crate, and its
//! clippy configuration bans the clocks. Checked here so a careless dependency fails a test,
//! not a code review.

use std::path::Path;

const ALLOWED_DEPENDENCIES: &[&str] = &["raft-types", "rand_chacha", "tracing", "thiserror"];

#[test]
fn core_depends_on_no_runtime_or_io_crate() {
    let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).expect("readable manifest");
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split(['=', '.']).next().unwrap_or("").trim();
        assert!(
            ALLOWED_DEPENDENCIES.contains(&name),
            "raft-core must stay free of IO: dependency `{name}` is not allowed"
        );
    }
}

#[test]
fn clippy_bans_the_clocks_in_the_core() {
    let clippy_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("clippy.toml");
    let clippy = std::fs::read_to_string(clippy_path).expect("raft-core has a clippy.toml");
    for banned in ["std::time::Instant::now", "std::time::SystemTime::now"] {
        assert!(
            clippy.contains(banned),
            "clippy.toml must disallow {banned}"
        );
    }
}
