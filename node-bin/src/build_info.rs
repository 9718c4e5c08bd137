//! What this build is: the package version, the git commit, the cargo profile and the
//! compiler, recorded by `build.rs`. Named by `raft-node --version`, `raftctl --version`,
//! `GET /version` and the `raft_build_info` metric.

use serde::Serialize;

/// The package version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit built (`RAFT_GIT_COMMIT` at build time, else `git rev-parse HEAD`), or `unknown`.
pub const GIT_COMMIT: &str = env!("RAFT_BUILD_GIT_COMMIT");
/// The cargo profile: `debug` or `release`.
pub const BUILD_PROFILE: &str = env!("RAFT_BUILD_PROFILE");
/// The compiler's version, such as `1.87.0`, or `unknown`.
pub const RUSTC_VERSION: &str = env!("RAFT_BUILD_RUSTC_VERSION");

/// What `--version` prints after the program's name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RAFT_BUILD_GIT_COMMIT"),
    ", ",
    env!("RAFT_BUILD_PROFILE"),
    " build, rustc ",
    env!("RAFT_BUILD_RUSTC_VERSION"),
    ")"
);

/// The body of `GET /version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub git_commit: &'static str,
    pub build_profile: &'static str,
    pub rustc_version: &'static str,
}

/// This build.
pub const BUILD: BuildInfo = BuildInfo {
    version: VERSION,
    git_commit: GIT_COMMIT,
    build_profile: BUILD_PROFILE,
    rustc_version: RUSTC_VERSION,
};
