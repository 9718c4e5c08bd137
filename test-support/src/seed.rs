//! Reading seeds (and other unsigned test parameters) from the environment.

/// The variable that fixes a randomized test's seed, to replay a failure.
pub const SEED_VARIABLE: &str = "RAFT_TEST_SEED";

/// The unsigned integer in the environment variable `name`, or `default` when it is unset.
///
/// # Panics
///
/// When the variable is set but is not an unsigned integer: a typo must not silently run
/// another seed.
pub fn env_u64(name: &str, default: u64) -> u64 {
    env_u64_or_else(name, || default)
}

/// Like [`env_u64`], computing the default only when the variable is unset.
pub fn env_u64_or_else(name: &str, default: impl FnOnce() -> u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be an unsigned integer, got {text:?}")),
        Err(_) => default(),
    }
}

/// The seed of a test: `RAFT_TEST_SEED` when set, else `default`.
pub fn seed_or(default: u64) -> u64 {
    env_u64(SEED_VARIABLE, default)
}

/// The seed of a test: `RAFT_TEST_SEED` when set, else `default()` (a fresh random seed, the
/// clock, ...).
pub fn seed_or_else(default: impl FnOnce() -> u64) -> u64 {
    env_u64_or_else(SEED_VARIABLE, default)
}

/// The seeds to run: `RAFT_TEST_SEED` alone when set, else `count` seeds from `base`.
pub fn seeds(base: u64, count: u64) -> Vec<u64> {
    match std::env::var_os(SEED_VARIABLE) {
        Some(_) => vec![seed_or(base)],
        None => (base..base + count).collect(),
    }
}

/// `count` consecutive seeds from `RAFT_TEST_SEED` (else `base`), where `count` is read from
/// the variable `count_variable` (else `default_count`): for tests that run a batch of seeds
/// even when replaying, such as the crash and power-loss tests.
pub fn seed_range(base: u64, count_variable: &str, default_count: u64) -> Vec<u64> {
    let first = seed_or(base);
    let count = env_u64(count_variable, default_count);
    (first..first + count).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_variable_gives_the_default() {
        assert_eq!(env_u64("RAFT_TEST_SUPPORT_SURELY_UNSET", 5), 5);
        assert_eq!(env_u64_or_else("RAFT_TEST_SUPPORT_SURELY_UNSET", || 6), 6);
    }
}
