//! The bearer-token check in front of every route of the client API.
//!
//! With `[auth] tokens_file` set, a request needs `Authorization: Bearer <token>` naming a
//! configured token (`401` otherwise, with `WWW-Authenticate: Bearer`), and a read-only token
//! may only read (`403` otherwise). What counts as a read is decided by the method alone:
//! `GET` and `HEAD` read; every other method (a PUT, DELETE or CAS of a key, a snapshot, any
//! admin `POST`/`DELETE`, including routes added later) writes. So a new route is never
//! writable with a read-only token by mistake.
//!
//! Open without a token: `/health` (load balancers and supervisors probe it), and `/metrics`
//! when `[auth] open_metrics = true`. The check runs before the handler and before the request
//! is logged or counted, and it never logs the header: a token appears in no log line.

use crate::security::tokens::{Role, Tokens};
use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::HttpResponse;
use futures::future::{ready, Either, Ready};
use serde_json::json;
use std::sync::Arc;

/// Who may do what on the client API; `None` tokens means no authentication.
#[derive(Clone, Debug, Default)]
pub struct AuthPolicy {
    pub tokens: Option<Arc<Tokens>>,
    pub open_metrics: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, not a bearer token, or an unknown one: `401`.
    Unauthenticated,
    /// A read-only token on a write: `403`.
    ReadOnly,
}

impl AuthPolicy {
    /// Decides a request by its method, path and `Authorization` header.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Result<(), Refusal> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        if path == "/health" || (self.open_metrics && path == "/metrics") {
            return Ok(());
        }
        let presented = authorization
            .and_then(|value| strip_bearer(value))
            .ok_or(Refusal::Unauthenticated)?;
        match tokens.role_of(presented) {
            None => Err(Refusal::Unauthenticated),
            Some(Role::ReadWrite) => Ok(()),
            Some(Role::ReadOnly) if is_read(method) => Ok(()),
            Some(Role::ReadOnly) => Err(Refusal::ReadOnly),
        }
    }
}

fn is_read(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 6750).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|token| !token.is_empty())
}

/// The `401`/`403` response, in the API's error shape.
pub fn refusal_response(refusal: Refusal) -> HttpResponse {
    let (status, code, message) = match refusal {
        Refusal::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid token is required: Authorization: Bearer <token>",
        ),
        Refusal::ReadOnly => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token is read-only; writes need a rw token",
        ),
    };
    let mut response = HttpResponse::build(status);
    if refusal == Refusal::Unauthenticated {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    response.json(json!({ "error": { "code": code, "message": message } }))
}

/// The middleware body for `App::wrap_fn`: refuse, or pass the request on unchanged.
pub fn guard<S>(
    policy: &AuthPolicy,
    request: ServiceRequest,
    service: &S,
) -> Either<Ready<Result<ServiceResponse<BoxBody>, actix_web::Error>>, S::Future>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    match policy.check(request.method(), request.path(), authorization) {
        Ok(()) => Either::Right(service.call(request)),
        Err(refusal) => {
            let response = refusal_response(refusal);
            Either::Left(ready(Ok(request.into_response(response))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(open_metrics: bool) -> AuthPolicy {
        AuthPolicy {
            tokens: Some(Arc::new(
                Tokens::parse("rw writer\nro reader").expect("valid"),
            )),
            open_metrics,
        }
    }

    #[test]
    fn roles_methods_and_open_paths() {
        let policy = policy(false);
        let check = |method: Method, path: &str, header: Option<&str>| {
            policy.check(&method, path, header.map(str::as_bytes))
        };
        assert_eq!(
            check(Method::GET, "/v1/kv/a", None),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            check(Method::GET, "/v1/kv/a", Some("Bearer nope")),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            check(Method::GET, "/v1/kv/a", Some("Basic writer")),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            check(Method::GET, "/v1/kv/a", Some("Bearer reader")),
            Ok(())
        );
        assert_eq!(
            check(Method::PUT, "/v1/kv/a", Some("Bearer reader")),
            Err(Refusal::ReadOnly)
        );
        assert_eq!(
            check(Method::POST, "/v1/snapshot", Some("bearer reader")),
            Err(Refusal::ReadOnly)
        );
        assert_eq!(
            check(Method::DELETE, "/v1/members/4", Some("Bearer reader")),
            Err(Refusal::ReadOnly)
        );
        assert_eq!(
            check(Method::PUT, "/v1/kv/a", Some("Bearer writer")),
            Ok(())
        );
        assert_eq!(check(Method::GET, "/health", None), Ok(()));
        assert_eq!(
            check(Method::GET, "/metrics", None),
            Err(Refusal::Unauthenticated)
        );
        let open = super::tests::policy(true);
        assert_eq!(open.check(&Method::GET, "/metrics", None), Ok(()));
        assert_eq!(
            AuthPolicy::default().check(&Method::PUT, "/v1/kv/a", None),
            Ok(())
        );
    }
}
