//! Records what this build is, for `raft-node --version`, `GET /version` and the
//! `raft_build_info` metric: the git commit (from `RAFT_GIT_COMMIT` when set, as a build from a
//! source archive would do, else `git rev-parse HEAD`, else `unknown`), the cargo profile and
//! the compiler's version.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RAFT_GIT_COMMIT");
    let commit = std::env::var("RAFT_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=RAFT_BUILD_GIT_COMMIT={}", commit.trim());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=RAFT_BUILD_PROFILE={profile}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = command_output(&rustc, &["--version"])
        .and_then(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=RAFT_BUILD_RUSTC_VERSION={rustc_version}");
}

/// The commit checked out, and the files whose change means another one is: HEAD, the branch
/// it names and the packed refs (worktrees and plain clones alike, through `--git-path`).
fn git_commit() -> Option<String> {
    let commit = command_output("git", &["rev-parse", "HEAD"])?;
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = command_output("git", &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = command_output("git", &["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(commit)
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
