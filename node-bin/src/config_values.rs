//! Parsers for single configuration values, shared by [`crate::node_config`] and the
//! configuration of the other node modules ([`crate::consistency::consistency_config`]): each
//! failure is a [`ConfigError`] naming the key.

use crate::node_config::ConfigError;
use std::net::SocketAddr;

pub(crate) fn parse_address(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse::<SocketAddr>().map_err(|_| {
        ConfigError::new(
            key,
            format!("{text:?} is not an IP:port address (for example 127.0.0.1:7001)"),
        )
    })
}

pub(crate) fn at_least_one(key: &str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(value)
}

/// The choice named by `text` among two `choices`; anything else names `key`, what the value
/// is (`noun`) and both accepted spellings.
pub(crate) fn one_of<T: Copy>(
    key: &str,
    noun: &str,
    text: &str,
    choices: [(&str, T); 2],
) -> Result<T, ConfigError> {
    let [(first, _), (second, _)] = choices;
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            ConfigError::new(
                key,
                format!("unknown {noun} {text:?} (expected {first:?} or {second:?})"),
            )
        })
}
