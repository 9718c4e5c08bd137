//! Query strings, strictly: each route names the parameters it accepts, and anything else (an
//! unknown name, a repeated name, a name without `=value`, bytes that do not decode) is a `400`
//! naming the parameter. A parameter that is silently ignored (`?recurse`, `?ttl=5`, `?cas=0`)
//! would let a client believe it got what it asked for.

use crate::http_api::api_error::ApiError;
use actix_web::HttpRequest;
use percent_encoding::percent_decode_str;

/// The query parameters of `request`, checked against the names the route `accepts`, as
/// `(name, value)` pairs in request order.
pub fn query_parameters(
    request: &HttpRequest,
    accepts: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let mut parameters: Vec<(String, String)> = Vec::new();
    for pair in request
        .query_string()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (raw_name, raw_value) = pair.split_once('=').ok_or_else(|| {
            bad_query(format!(
                "query parameter `{}` has no value",
                decode_lossy(pair)
            ))
        })?;
        let name = decode(raw_name)?;
        let value = decode(raw_value)?;
        if !accepts.contains(&name.as_str()) {
            let accepted = if accepts.is_empty() {
                "this route takes no query parameters".to_string()
            } else {
                format!("this route accepts: {}", accepts.join(", "))
            };
            return Err(bad_query(format!(
                "unknown query parameter `{name}` ({accepted})"
            )));
        }
        if parameters.iter().any(|(known, _)| *known == name) {
            return Err(bad_query(format!("query parameter `{name}` is repeated")));
        }
        parameters.push((name, value));
    }
    Ok(parameters)
}

/// Refuses any query parameter: for routes that take none.
pub fn no_query_parameters(request: &HttpRequest) -> Result<(), ApiError> {
    query_parameters(request, &[]).map(|_| ())
}

fn decode(raw: &str) -> Result<String, ApiError> {
    // A `+` is a space in form encoding; a query parameter here never means that, so it is
    // taken literally, as percent-encoding says.
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| {
            bad_query(format!(
                "query text `{raw}` is not valid UTF-8 once decoded"
            ))
        })
}

fn decode_lossy(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

fn bad_query(message: String) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn parse(query: &str, accepts: &[&str]) -> Result<Vec<(String, String)>, String> {
        let request = TestRequest::get()
            .uri(&format!("/v1/kv/a?{query}"))
            .to_http_request();
        query_parameters(&request, accepts).map_err(|error| error.to_string())
    }

    #[test]
    fn accepted_parameters_are_returned_decoded() {
        assert_eq!(
            parse("consistency=local", &["consistency"]).expect("accepted"),
            vec![("consistency".to_string(), "local".to_string())]
        );
        assert_eq!(parse("", &["consistency"]).expect("none"), vec![]);
        assert_eq!(
            parse("consistency=lo%63al", &["consistency"]).expect("decoded"),
            vec![("consistency".to_string(), "local".to_string())]
        );
    }

    #[test]
    fn unknown_repeated_and_valueless_parameters_are_refused_by_name() {
        for (query, named) in [
            ("recurse", "`recurse` has no value"),
            ("ttl=5", "unknown query parameter `ttl`"),
            ("cas=0", "unknown query parameter `cas`"),
            (
                "consistency=local&consistency=local",
                "`consistency` is repeated",
            ),
            (
                "consistency=local&prefix=a",
                "unknown query parameter `prefix`",
            ),
        ] {
            let error = parse(query, &["consistency"]).expect_err(query);
            assert!(error.contains(named), "{query}: {error}");
        }
        let error = parse("consistency=local", &[]).expect_err("none accepted");
        assert!(error.contains("takes no query parameters"), "{error}");
    }
}
