//! Tests that cut links with iptables run inside a private network namespace, so their rules
//! can never touch the host's. A test calls [`enter_private_network`] first: outside the
//! namespace it re-runs the same test binary, filtered to this one test, under `unshare -n`
//! and reports that run's result; inside it brings up loopback and lets the test proceed.
//!
//! Without root, `unshare` or `iptables` the test is skipped with a printed reason (CI runs as
//! root and `.ci/run` installs iptables, so there it always runs).

use std::process::Command;

/// Set in the environment of the re-run test process inside the namespace.
const INSIDE_ENV: &str = "RAFT_TEST_INSIDE_PRIVATE_NETWORK";

/// Where a test that cuts links stands after [`enter_private_network`]: inside its own network
/// namespace (a private machine whose loopback it may firewall), or done. Says what the caller
/// should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum PrivateNetwork {
    /// We are inside the namespace: run the test body.
    Inside,
    /// The test ran in a child process (and passed: a failure panics here), or was skipped.
    Done,
}

fn command_works(program: &str, arguments: &[&str]) -> bool {
    Command::new(program)
        .args(arguments)
        .output()
        .is_ok_and(|output| output.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Why this machine cannot run partition tests, if it cannot.
pub fn unavailable_reason() -> Option<String> {
    if !is_root() {
        return Some("not running as root (iptables and unshare -n need it)".to_string());
    }
    if !command_works("unshare", &["-n", "true"]) {
        return Some("`unshare -n` does not work here".to_string());
    }
    if !command_works("unshare", &["-n", "iptables", "-L", "-n"]) {
        return Some("iptables is not installed or not usable (`.ci/run` installs it)".to_string());
    }
    None
}

/// See the module documentation. `test_name` is the test function's name as libtest knows
/// it (for a test at the top of a `tests/*.rs` file, just the function name).
pub fn enter_private_network(test_name: &str) -> PrivateNetwork {
    if std::env::var_os(INSIDE_ENV).is_some() {
        bring_up_loopback();
        return PrivateNetwork::Inside;
    }
    if let Some(reason) = unavailable_reason() {
        println!("SKIPPED {test_name}: {reason}");
        return PrivateNetwork::Done;
    }
    let executable = std::env::current_exe().expect("the test binary knows its path");
    let status = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(executable)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE_ENV, "1")
        .status()
        .expect("cannot run unshare");
    assert!(
        status.success(),
        "{test_name} failed inside its private network namespace ({status})"
    );
    PrivateNetwork::Done
}

fn bring_up_loopback() {
    let attempts: [(&str, &[&str]); 2] = [
        ("ip", &["link", "set", "lo", "up"]),
        ("ifconfig", &["lo", "up"]),
    ];
    let up = attempts
        .iter()
        .any(|(program, arguments)| command_works(program, arguments));
    assert!(
        up,
        "cannot bring up loopback in the private namespace (no `ip` or `ifconfig`)"
    );
}

/// Drops every packet between `a` and `b`, both ways (on loopback, INPUT sees them all).
pub fn cut(a: std::net::IpAddr, b: std::net::IpAddr) {
    for (source, destination) in [(a, b), (b, a)] {
        iptables(&[
            "-A",
            "INPUT",
            "-s",
            &source.to_string(),
            "-d",
            &destination.to_string(),
            "-j",
            "DROP",
        ]);
    }
}

/// Removes every rule [`cut`] added.
pub fn heal_all() {
    iptables(&["-F", "INPUT"]);
}

fn iptables(arguments: &[&str]) {
    assert!(
        std::env::var_os(INSIDE_ENV).is_some(),
        "iptables rules are only ever changed inside a private network namespace"
    );
    let status = Command::new("iptables")
        .args(arguments)
        .status()
        .expect("cannot run iptables");
    assert!(status.success(), "iptables {arguments:?} failed: {status}");
}
