//! Naming the running test and printing how to replay it when it fails.

use crate::seed::SEED_VARIABLE;
use std::time::Duration;

/// Which test is running: its package, its test binary and its exact name, enough to write
/// the command that runs it alone. Build it with [`this_test!`](crate::this_test) inside the
/// test function, so the name is the one libtest knows (the filter of the replay command uses
/// `--exact`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestId {
    /// The cargo package (`-p`).
    pub package: &'static str,
    /// The integration-test binary (`--test`): the file under `tests/`.
    pub binary: String,
    /// The test's path inside its binary, as libtest prints it.
    pub name: String,
    /// Further variables the replay command sets (for example a run count of 1).
    pub env: Vec<(&'static str, String)>,
}

impl TestId {
    /// The id of the test whose code has the item path `item_path` (from
    /// `std::any::type_name` of a function nested in the test, ending in `::here`) and whose
    /// module path is `module_path`, in `package`. Called by [`this_test!`](crate::this_test).
    pub fn from_paths(package: &'static str, module_path: &str, item_path: &str) -> TestId {
        let binary = module_path.split("::").next().unwrap_or(module_path);
        let segments: Vec<&str> = item_path
            .split("::")
            .skip(1)
            .filter(|segment| *segment != "{{closure}}" && !segment.starts_with("{{"))
            .collect();
        let name = match segments.split_last() {
            Some((&"here", path)) => path.join("::"),
            _ => segments.join("::"),
        };
        TestId {
            package,
            binary: binary.to_string(),
            name,
            env: Vec::new(),
        }
    }

    /// The same test, replayed with `variable=value` set too.
    pub fn with_env(mut self, variable: &'static str, value: impl ToString) -> TestId {
        self.env.push((variable, value.to_string()));
        self
    }

    /// The shell command that runs this test alone with `seed`.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut command = format!("{SEED_VARIABLE}={seed} ");
        for (variable, value) in &self.env {
            command.push_str(&format!("{variable}={value} "));
        }
        command.push_str(&format!(
            "cargo test -p {} --test {} {} -- --exact",
            self.package, self.binary, self.name
        ));
        command
    }

    /// The failure report for `seed`: the test, the seed and the replay command.
    pub fn failure_message(&self, seed: u64) -> String {
        format!(
            "{} failed with seed {seed}; replay with:\n  {}",
            self.name,
            self.replay_command(seed)
        )
    }
}

/// The [`TestId`] of the test this is written in. Use it in the test function itself (not a
/// helper it calls): the name comes from where the macro stands.
#[macro_export]
macro_rules! this_test {
    () => {{
        fn here() {}
        fn type_name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        $crate::report::TestId::from_paths(
            env!("CARGO_PKG_NAME"),
            module_path!(),
            type_name_of(here),
        )
    }};
}

/// Prints the seed and the replay command when it is dropped during a panic (a failed
/// assertion): keep one alive for the whole test, `let _report = SeedReport::new(this_test!(),
/// seed);`, created before whatever it should outlive.
pub struct SeedReport {
    test: TestId,
    seed: u64,
    /// Dropping it tells the watchdog, if any, that the test is over.
    _watchdog: Option<std::sync::mpsc::Sender<()>>,
}

impl SeedReport {
    /// A report for `test` run with `seed`.
    pub fn new(test: TestId, seed: u64) -> SeedReport {
        SeedReport {
            test,
            seed,
            _watchdog: None,
        }
    }

    /// Also aborts the process, printing the report, if the test is still running after
    /// `limit` of real time: for tests on a paused clock, where a livelock at one virtual
    /// instant fires no deadline and would hang the run.
    pub fn with_watchdog(mut self, limit: Duration) -> SeedReport {
        let (done, watched) = std::sync::mpsc::channel::<()>();
        let message = self.test.failure_message(self.seed);
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watched.recv_timeout(limit) {
                eprintln!(
                    "still running after {limit:?} of real time: a livelock at one virtual \
                     instant? Aborting.\n{message}"
                );
                std::process::abort();
            }
        });
        self._watchdog = Some(done);
        self
    }

    /// The seed this report names.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("\n{}\n", self.test.failure_message(self.seed));
        }
    }
}

/// Runs `scenario` for each of `seeds`; a failure prints its seed and the command that
/// replays it, then goes on panicking.
pub fn run_seeds(test: &TestId, seeds: Vec<u64>, mut scenario: impl FnMut(u64)) {
    for seed in seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(seed)));
        if let Err(panic) = outcome {
            eprintln!("\n{}\n", test.failure_message(seed));
            std::panic::resume_unwind(panic);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_test_names_the_test_it_stands_in() {
        let test = crate::this_test!();
        assert_eq!(test.package, "test-support");
        assert_eq!(
            test.name,
            "report::tests::this_test_names_the_test_it_stands_in"
        );
        assert_eq!(
            test.with_env("RAFT_CRASH_RUNS", 1).replay_command(9),
            "RAFT_TEST_SEED=9 RAFT_CRASH_RUNS=1 cargo test -p test-support --test test_support \
             report::tests::this_test_names_the_test_it_stands_in -- --exact"
        );
    }

    #[tokio::test]
    async fn this_test_names_an_async_test_too() {
        let test = crate::this_test!();
        assert_eq!(
            test.name,
            "report::tests::this_test_names_an_async_test_too"
        );
    }
}
