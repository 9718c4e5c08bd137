//! `ApiError`: every failure the client API reports, and the status code each one maps to.
//!
//! The status code is a promise to the client (docs/API.md): `400`/`404`/`405`/`413` and `503`
//! mean nothing happened and a retry is safe; `504` means the outcome is unknown; `500` is a
//! bug. The body is always `{"error": {"code": "...", "message": "..."}}`, plus `leader_id`
//! and `leader_client_addr` when the error is about leadership, so a client can go to the
//! leader, and `alarm` on a `corruption_alarm` refusal.

use crate::consistency::CorruptionAlarm;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use raft_types::NodeId;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad key, bad JSON, bad query parameter. Nothing happened.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No such route, or no such key.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("method {method} is not allowed on this path")]
    MethodNotAllowed { method: String },
    /// The value (or request body) is over `client.max_value_bytes`. Nothing happened.
    #[error("value is larger than max_value_bytes ({limit_bytes} bytes)")]
    PayloadTooLarge { limit_bytes: usize },
    /// This node is not the leader and could not hand the request to one. Nothing happened.
    #[error("{message}")]
    NotLeader {
        message: String,
        leader_id: Option<NodeId>,
        leader_client_addr: Option<SocketAddr>,
    },
    /// Refused before entering the log (shutting down, overloaded, leader unreachable).
    #[error("{message}")]
    Unavailable { message: String },
    /// The request may have entered the log and may still be applied.
    #[error("{message}")]
    OutcomeUnknown { message: String },
    /// This node's applied state differs from a peer's: it refuses writes and linearizable
    /// reads (`503`, nothing happened) until it is restarted.
    #[error("{}", alarm.describe())]
    CorruptionAlarm { alarm: CorruptionAlarm },
    /// The state machine answered something this API does not understand (a bug).
    #[error("{message}")]
    Internal { message: String },
    /// An admin request refused for a reason of its own (`409 change_in_progress`, `412
    /// learner_not_ready`, `404 no_such_member`, `503 transfer_failed`, ...): nothing was done.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// This node was removed from the cluster: it serves no writes, no linearizable reads and
    /// no admin requests, and does not forward them (`503 removed`).
    #[error("{message}")]
    Removed { message: String },
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::Unavailable {
            message: message.into(),
        }
    }

    pub fn outcome_unknown(message: impl Into<String>) -> ApiError {
        ApiError::OutcomeUnknown {
            message: message.into(),
        }
    }

    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Refused { code, .. } => code,
            ApiError::Removed { .. } => "removed",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "value_too_large",
            ApiError::NotLeader {
                leader_id: Some(_), ..
            } => "not_leader",
            ApiError::NotLeader {
                leader_id: None, ..
            } => "no_leader",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::OutcomeUnknown { .. } => "outcome_unknown",
            ApiError::CorruptionAlarm { .. } => "corruption_alarm",
            ApiError::Internal { .. } => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotLeader { .. }
            | ApiError::Unavailable { .. }
            | ApiError::Removed { .. }
            | ApiError::CorruptionAlarm { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Refused { status, .. } => *status,
            ApiError::OutcomeUnknown { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let ApiError::NotLeader {
            leader_id,
            leader_client_addr,
            ..
        } = self
        {
            error["leader_id"] = json!(leader_id.map(|id| id.0));
            error["leader_client_addr"] = json!(leader_client_addr.map(|a| a.to_string()));
        }
        if let ApiError::CorruptionAlarm { alarm } = self {
            error["alarm"] = alarm.to_json();
        }
        HttpResponse::build(self.status_code()).json(json!({ "error": error }))
    }
}
