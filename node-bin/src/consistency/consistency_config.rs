//! The `[consistency]` configuration section: how often this node compares its applied-state
//! checkpoints with its peers', and which checkpoints the applier keeps.

use crate::config_values::at_least_one;
use crate::node_config::ConfigError;
use applier_actor::CheckpointPolicy;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Below this a check every few milliseconds would load every peer for no gain: divergence is
/// rare and sticky, a second or so to notice it is plenty.
pub const CHECK_INTERVAL_MS_MIN: u64 = 100;

/// Above this the checkpoint list served to peers (about 48 bytes of JSON each) grows past a
/// few megabytes per request.
pub const CHECKPOINTS_KEPT_MAX: u64 = 65_536;

/// `[consistency]` as written by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConsistency {
    /// How often every peer's checkpoints are fetched and compared; `0` disables the check.
    pub check_interval_ms: u64,
    /// A checkpoint is taken at every applied index that is a multiple of this.
    pub checkpoint_interval_entries: u64,
    /// How many of the newest checkpoints the applier keeps (and serves).
    pub checkpoints_kept: u64,
}

impl Default for RawConsistency {
    fn default() -> RawConsistency {
        let policy = CheckpointPolicy::default();
        RawConsistency {
            check_interval_ms: 1000,
            checkpoint_interval_entries: policy.interval_entries,
            checkpoints_kept: policy.kept as u64,
        }
    }
}

/// The validated `[consistency]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsistencyConfig {
    /// `None`: the check is disabled (checkpoints are still taken and served, so peers that
    /// check still compare with this node).
    pub check_interval: Option<Duration>,
    pub checkpoint_policy: CheckpointPolicy,
}

impl ConsistencyConfig {
    pub fn from_raw(raw: &RawConsistency) -> Result<ConsistencyConfig, ConfigError> {
        let check_interval = match raw.check_interval_ms {
            0 => None,
            milliseconds if milliseconds < CHECK_INTERVAL_MS_MIN => {
                return Err(ConfigError::new(
                    "consistency.check_interval_ms",
                    format!(
                        "{milliseconds} is too often: 0 (disabled) or at least \
                         {CHECK_INTERVAL_MS_MIN}"
                    ),
                ))
            }
            milliseconds => Some(Duration::from_millis(milliseconds)),
        };
        let interval_entries = at_least_one(
            "consistency.checkpoint_interval_entries",
            raw.checkpoint_interval_entries,
        )?;
        let kept = at_least_one("consistency.checkpoints_kept", raw.checkpoints_kept)?;
        if kept > CHECKPOINTS_KEPT_MAX {
            return Err(ConfigError::new(
                "consistency.checkpoints_kept",
                format!("{kept} is more than {CHECKPOINTS_KEPT_MAX}"),
            ));
        }
        Ok(ConsistencyConfig {
            check_interval,
            checkpoint_policy: CheckpointPolicy {
                interval_entries,
                kept: usize::try_from(kept).expect("at most CHECKPOINTS_KEPT_MAX fits a usize"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::node_config::{load, ConfigSources, NodeConfig, RawConfig};
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn defaults_check_every_second_and_checkpoint_every_10th_index() {
        let config = load(&ConfigSources::default()).expect("defaults are valid");
        assert_eq!(
            config.consistency.check_interval,
            Some(Duration::from_millis(1000))
        );
        assert_eq!(config.consistency.checkpoint_policy.interval_entries, 10);
        assert_eq!(config.consistency.checkpoint_policy.kept, 256);
    }

    #[test]
    fn zero_disables_the_check_and_the_environment_sets_the_keys() {
        let sources = ConfigSources {
            environment: BTreeMap::from([
                (
                    "RAFT_CONSISTENCY__CHECK_INTERVAL_MS".to_string(),
                    "0".to_string(),
                ),
                (
                    "RAFT_CONSISTENCY__CHECKPOINT_INTERVAL_ENTRIES".to_string(),
                    "1".to_string(),
                ),
                (
                    "RAFT_CONSISTENCY__CHECKPOINTS_KEPT".to_string(),
                    "4".to_string(),
                ),
            ]),
            ..ConfigSources::default()
        };
        let config = load(&sources).expect("valid");
        assert_eq!(config.consistency.check_interval, None);
        assert_eq!(config.consistency.checkpoint_policy.interval_entries, 1);
        assert_eq!(config.consistency.checkpoint_policy.kept, 4);
    }

    /// Breaks one value of a valid configuration.
    type Change = fn(&mut RawConfig);

    #[test]
    fn bad_values_name_their_key() {
        let cases: [(Change, &str); 4] = [
            (
                |raw| raw.consistency.check_interval_ms = 5,
                "consistency.check_interval_ms",
            ),
            (
                |raw| raw.consistency.checkpoint_interval_entries = 0,
                "consistency.checkpoint_interval_entries",
            ),
            (
                |raw| raw.consistency.checkpoints_kept = 0,
                "consistency.checkpoints_kept",
            ),
            (
                |raw| raw.consistency.checkpoints_kept = 1_000_000,
                "consistency.checkpoints_kept",
            ),
        ];
        for (change, key) in cases {
            let mut raw = RawConfig::default();
            change(&mut raw);
            let error = NodeConfig::from_raw(&raw).expect_err("invalid");
            assert_eq!(error.key, key, "{error}");
        }
    }
}
