//! Keys in request paths: the rest of the path after `/v1/kv/` (or `/v1/cas/`),
//! percent-decoded, 1..=1024 bytes of UTF-8. `/` is allowed inside a key, but no `/`-separated
//! segment may be empty, `.` or `..`: URL libraries and proxies rewrite such paths
//! (`p/./q` becomes `p/q`), so a key holding one could be written under one name and read under
//! another. They are refused, never normalized.

use crate::http_api::api_error::ApiError;
use percent_encoding::percent_decode_str;

/// The longest key accepted, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// Extracts and checks the key from a raw (still percent-encoded) request path.
pub fn key_from_path(raw_path: &str, prefix: &str) -> Result<String, ApiError> {
    let encoded = raw_path.strip_prefix(prefix).ok_or_else(|| {
        ApiError::bad_request("bad_key", format!("the key follows {prefix} in the path"))
    })?;
    let bytes: Vec<u8> = percent_decode_str(encoded).collect();
    let key = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("bad_key", "the key is not valid UTF-8"))?;
    match key_problem(&key) {
        Some(problem) => Err(ApiError::bad_request("bad_key", problem)),
        None => Ok(key),
    }
}

/// What is wrong with `key` (decoded), if anything: the one rule the server and the client
/// share.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("the key is empty".to_string());
    }
    if let Some(segment) = key
        .split('/')
        .find(|segment| segment.is_empty() || *segment == "." || *segment == "..")
    {
        let shown = if segment.is_empty() {
            "an empty".to_string()
        } else {
            format!("a {segment:?}")
        };
        return Some(format!(
            "the key {key:?} has {shown} segment; segments may not be empty, . or .."
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Some(format!(
            "the key is {} bytes, more than {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_and_may_contain_slashes() {
        assert_eq!(key_from_path("/v1/kv/a", "/v1/kv/").expect("ok"), "a");
        assert_eq!(
            key_from_path("/v1/kv/app/config/x", "/v1/kv/").expect("ok"),
            "app/config/x"
        );
        assert_eq!(
            key_from_path("/v1/kv/a%20b%2Fc%C3%A9", "/v1/kv/").expect("ok"),
            "a b/cé"
        );
    }

    #[test]
    fn empty_dot_and_dot_dot_segments_are_refused_not_normalized() {
        for path in [
            "/v1/kv/p/./q",
            "/v1/kv/p/../q",
            "/v1/kv/p//q",
            "/v1/kv/p/",
            "/v1/kv//p",
            "/v1/kv/.",
            "/v1/kv/p/%2E/q",
            "/v1/kv/p/%2e%2E",
        ] {
            let error = key_from_path(path, "/v1/kv/").expect_err(path);
            assert_eq!(error.code(), "bad_key", "{path}");
        }
        assert_eq!(
            key_from_path("/v1/kv/p/.q/..r/a.b", "/v1/kv/").expect("dots inside segments"),
            "p/.q/..r/a.b"
        );
    }

    #[test]
    fn empty_long_and_non_utf8_keys_are_bad_requests() {
        for path in ["/v1/kv/", "/v1/kv/%FF", "/v1/kv/%C3"] {
            let error = key_from_path(path, "/v1/kv/").expect_err(path);
            assert_eq!(error.code(), "bad_key", "{path}");
        }
        let long = format!("/v1/kv/{}", "k".repeat(MAX_KEY_BYTES + 1));
        assert!(key_from_path(&long, "/v1/kv/").is_err());
        let longest = format!("/v1/kv/{}", "k".repeat(MAX_KEY_BYTES));
        assert!(key_from_path(&longest, "/v1/kv/").is_ok());
    }
}
