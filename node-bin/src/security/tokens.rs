//! Client tokens: the `[auth] tokens_file` and the check of an `Authorization: Bearer` value.
//!
//! The file holds one `<role> <token>` per line, role `rw` (everything) or `ro` (reads only);
//! blank lines and lines starting with `#` are skipped. A token is compared with every
//! configured one in constant time (no early exit on the first differing byte, and every
//! token is compared), so response timing does not reveal how much of a guess was right.
//!
//! A token is never logged: errors about the file name the line number, never its content,
//! and [`Tokens`] prints only how many tokens it holds.

use crate::node_config::ConfigError;
use std::fmt;
use std::path::Path;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and writes (and every admin operation).
    ReadWrite,
    /// `GET` and `HEAD` only.
    ReadOnly,
}

/// The configured tokens.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(Role, Vec<u8>)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Tokens({} configured)", self.entries.len())
    }
}

impl Tokens {
    /// Reads and checks the tokens file; errors name `auth.tokens_file` and the line.
    pub fn load(path: &Path) -> Result<Tokens, ConfigError> {
        let key = "auth.tokens_file";
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new(key, format!("cannot read {}: {error}", path.display()))
        })?;
        Tokens::parse(&text)
            .map_err(|message| ConfigError::new(key, format!("{}: {message}", path.display())))
    }

    /// Parses the file's text; the error says which line is wrong, never what it holds.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!("line {}: expected `<rw|ro> <token>`", number + 1));
            };
            let role = match role {
                "rw" => Role::ReadWrite,
                "ro" => Role::ReadOnly,
                _ => return Err(format!("line {}: the role must be rw or ro", number + 1)),
            };
            entries.push((role, token.as_bytes().to_vec()));
        }
        if entries.is_empty() {
            return Err("holds no token (every request would be refused)".to_string());
        }
        Ok(Tokens { entries })
    }

    /// The role of `presented`, or `None` when it matches no configured token.
    pub fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        // Every token is compared, whatever matched before.
        for (role, token) in &self.entries {
            if constant_time_eq(token, presented) && found.is_none() {
                found = Some(*role);
            }
        }
        found
    }

    /// A token the node itself presents to its peers (for `GET /v1/internal/checkpoints`):
    /// the first of the file, so nodes sharing a tokens file also accept each other.
    pub fn first(&self) -> &[u8] {
        &self.entries[0].1
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut difference = (expected.len() ^ presented.len()) as u64;
    for (index, byte) in presented.iter().enumerate() {
        let other = expected.get(index).copied().unwrap_or(0);
        difference |= u64::from(byte ^ other);
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_roles_and_matches_tokens() {
        let tokens = Tokens::parse("# admins\nrw secret-one\n\nro  reader-two \n").expect("valid");
        assert_eq!(tokens.role_of(b"secret-one"), Some(Role::ReadWrite));
        assert_eq!(tokens.role_of(b"reader-two"), Some(Role::ReadOnly));
        assert_eq!(tokens.role_of(b"secret-on"), None);
        assert_eq!(tokens.role_of(b"secret-one!"), None);
        assert_eq!(tokens.role_of(b""), None);
        assert_eq!(tokens.first(), b"secret-one");
    }

    #[test]
    fn refuses_bad_lines_without_echoing_them() {
        for (text, expected) in [
            ("admin hunter2", "line 1: the role must be rw or ro"),
            ("rw", "line 1: expected"),
            ("ro a b", "line 1: expected"),
            ("# nothing", "holds no token"),
        ] {
            let error = Tokens::parse(text).expect_err(text);
            assert!(error.starts_with(expected), "{error}");
            assert!(!error.contains("hunter2"));
        }
        assert!(!format!("{:?}", Tokens::parse("rw hunter2").expect("valid")).contains("hunter2"));
    }
}
