//! The crate's one error type, and its mapping to RFC 9457 problem details.
//!
//! Every HTTP error answer is produced by [`Error::problem`]; handlers only return `Error`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use omnigate_schemas::api::{Problem, ProblemKind};
use serde_json::Value;
use std::collections::BTreeMap;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Base of every problem `type` URI; the path segment is stable per cause
/// ([`ProblemKind`], which clients match on).
pub const PROBLEM_BASE: &str = ProblemKind::BASE;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no source with id {0:?}")]
    SourceNotFound(String),
    /// Missing or wrong signature: one answer for both, the cause goes to the log only.
    #[error("signature verification failed: {0}")]
    InvalidSignature(String),
    #[error("signed timestamp outside the {tolerance_s} s window")]
    TimestampOutsideTolerance { tolerance_s: u64 },
    /// A body from a provider that signs no timestamp whose own signed time is older than
    /// the dedupe window: it could be a replay the window no longer remembers.
    #[error("the signed resource time {signed_at} is older than the {window_s} s replay window")]
    StaleDelivery { signed_at: String, window_s: u64 },
    #[error("too many {what}; retry in {retry_after_secs} s")]
    RateLimited {
        what: &'static str,
        retry_after_secs: u64,
    },
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u64 },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Which credential was missing or wrong, said as such: a plugin told about an admin
    /// token would look in the wrong place.
    #[error("{0}")]
    Unauthorized(Credential),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{method} is not allowed here; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        allowed: Vec<String>,
    },
    #[error("invalid request: {detail}")]
    Validation { detail: String, errors: Vec<String> },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("replay failed: {0}")]
    ReplayFailed(String),
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// The store answered and refused the command (a key of the wrong type, a script
    /// error): to a sender an outage like any other; to the spool's drainer, a record that
    /// may never be written (unlike [`Error::StoreUnavailable`], which is waited out).
    #[error("store refused: {0}")]
    StoreRefused(String),
    /// The quarantine is at its cap; nothing was written.
    #[error("{0}")]
    QuarantineFull(String),
    /// The store answers, but the resource a delivery is about kept changing under it.
    #[error("store busy: {0}")]
    Contended(String),
    #[error("stored data is corrupt: {0}")]
    StoreCorrupt(String),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The credential a 401 is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <OMNIGATE_ADMIN_TOKEN>` on operator endpoints.
    AdminToken,
    /// `Authorization: Bearer <plugin API key>` on plugin endpoints.
    PluginKey,
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::AdminToken => "admin token missing or wrong",
            Credential::PluginKey => {
                "plugin API key missing, unknown, revoked or expired (Authorization: Bearer ogk_…)"
            }
        })
    }
}

impl Error {
    pub fn validation(detail: impl Into<String>) -> Self {
        Error::Validation {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Seconds a sender should wait before retrying, for 503 answers.
    pub const RETRY_AFTER_SECS: u32 = 5;

    /// The stable cause of this error, as clients see it.
    pub fn kind(&self) -> ProblemKind {
        self.parts().1
    }

    fn parts(&self) -> (StatusCode, ProblemKind, &'static str) {
        use Error::*;
        match self {
            SourceNotFound(_) => (
                StatusCode::NOT_FOUND,
                ProblemKind::SourceNotFound,
                "Unknown source",
            ),
            InvalidSignature(_) => (
                StatusCode::UNAUTHORIZED,
                ProblemKind::InvalidSignature,
                "Signature verification failed",
            ),
            TimestampOutsideTolerance { .. } => (
                StatusCode::UNAUTHORIZED,
                ProblemKind::TimestampOutsideTolerance,
                "Signed timestamp outside the replay window",
            ),
            StaleDelivery { .. } => (
                StatusCode::UNAUTHORIZED,
                ProblemKind::StaleDelivery,
                "Signed resource time older than the replay window",
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                ProblemKind::RateLimited,
                "Too many requests",
            ),
            BodyTimeout { .. } => (
                StatusCode::REQUEST_TIMEOUT,
                ProblemKind::BodyTimeout,
                "Request body too slow",
            ),
            PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ProblemKind::PayloadTooLarge,
                "Request body too large",
            ),
            Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                ProblemKind::Unauthorized,
                "Missing or invalid credentials",
            ),
            NotFound { .. } => (StatusCode::NOT_FOUND, ProblemKind::NotFound, "Not found"),
            Forbidden(_) => (StatusCode::FORBIDDEN, ProblemKind::Forbidden, "Not allowed"),
            MalformedBody(_) => (
                StatusCode::BAD_REQUEST,
                ProblemKind::MalformedBody,
                "Malformed request body",
            ),
            Validation { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ProblemKind::ValidationFailed,
                "Request failed validation",
            ),
            InvalidQuery(_) => (
                StatusCode::BAD_REQUEST,
                ProblemKind::InvalidQuery,
                "Invalid query",
            ),
            Conflict(_) => (
                StatusCode::CONFLICT,
                ProblemKind::Conflict,
                "Conflicts with existing state",
            ),
            MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                ProblemKind::MethodNotAllowed,
                "Method not allowed",
            ),
            ReplayFailed(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ProblemKind::ReplayFailed,
                "The payload still cannot be normalized",
            ),
            QuarantineFull(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemKind::QuarantineFull,
                "Quarantine full",
            ),
            StoreUnavailable(_) | StoreRefused(_) | Contended(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemKind::StoreUnavailable,
                "Event store unavailable",
            ),
            StoreCorrupt(_) | Config(_) | Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ProblemKind::Internal,
                "Internal error",
            ),
        }
    }

    /// The problem document for this error. Details never include secrets, and internal
    /// causes are not exposed (they are logged by the caller).
    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let mut extensions = BTreeMap::new();
        let detail = match self {
            Error::InvalidSignature(_) => Some(
                "The webhook signature is missing or does not match any of the source's secrets."
                    .to_string(),
            ),
            Error::Validation { detail, errors } => {
                if !errors.is_empty() {
                    extensions.insert(
                        "errors".to_string(),
                        Value::Array(errors.iter().cloned().map(Value::String).collect()),
                    );
                }
                Some(detail.clone())
            }
            Error::StoreUnavailable(_) | Error::StoreRefused(_) | Error::Contended(_) => Some(
                "The event could not be durably written; nothing was accepted. Retry later."
                    .to_string(),
            ),
            Error::QuarantineFull(why) => Some(format!(
                "The payload verified but cannot be mapped, and the quarantine that keeps such \
                 payloads is full ({why}); nothing was accepted. Retry later; an operator frees \
                 room with DELETE /v1/quarantine/{{id}}."
            )),
            Error::StoreCorrupt(_) | Error::Config(_) | Error::Internal(_) => None,
            other => Some(other.to_string()),
        };
        Problem {
            problem_type: kind.type_uri(),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            instance: None,
            extensions,
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self {
            Error::StoreUnavailable(_)
            | Error::StoreRefused(_)
            | Error::Contended(_)
            | Error::QuarantineFull(_) => {
                response.insert_header((header::RETRY_AFTER, Self::RETRY_AFTER_SECS.to_string()));
            }
            Error::RateLimited {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.max(&1).to_string()));
            }
            Error::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Error::MethodNotAllowed { allowed, .. } => {
                response.insert_header((header::ALLOW, allowed.join(", ")));
            }
            _ => {}
        }
        response.body(serde_json::to_vec(&problem).unwrap_or_default())
    }
}

impl From<crate::ids::InvalidName> for Error {
    fn from(e: crate::ids::InvalidName) -> Self {
        Error::validation(e.to_string())
    }
}

impl From<crate::spool::SpoolError> for Error {
    fn from(e: crate::spool::SpoolError) -> Self {
        use crate::spool::SpoolError;
        match e {
            SpoolError::Locked(_) => Error::Config(e.to_string()),
            // The store is down and the spool cannot take the delivery either: the sender
            // must retry, as without a spool.
            other => Error::StoreUnavailable(format!("the spool cannot take it: {other}")),
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(m) => Error::StoreUnavailable(m),
            StoreError::QuarantineFull(m) => Error::QuarantineFull(m),
            // To a client, as any store failure: not written, retry (and an operator looks).
            StoreError::Refused(m) => Error::StoreRefused(m),
            StoreError::Corrupt(m) => Error::StoreCorrupt(m),
            StoreError::Config(m) => Error::Config(m),
            StoreError::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<crate::verify::VerifyError> for Error {
    fn from(e: crate::verify::VerifyError) -> Self {
        use crate::verify::VerifyError;
        match e {
            VerifyError::InvalidSignature(why) => Error::InvalidSignature(why),
            VerifyError::TimestampOutsideTolerance { tolerance_s } => {
                Error::TimestampOutsideTolerance { tolerance_s }
            }
            VerifyError::InvalidSetting(detail) => Error::validation(detail),
            VerifyError::KeysUnavailable(why) => Error::StoreUnavailable(why),
        }
    }
}

impl From<crate::store::BadCursor> for Error {
    fn from(e: crate::store::BadCursor) -> Self {
        Error::InvalidQuery(e.to_string())
    }
}

impl From<crate::store::BadQuarantineId> for Error {
    fn from(e: crate::store::BadQuarantineId) -> Self {
        Error::not_found(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_is_stable_and_named() {
        let cases = [
            (Error::SourceNotFound("x".into()), 404, "source-not-found"),
            (
                Error::InvalidSignature("mismatch".into()),
                401,
                "invalid-signature",
            ),
            (
                Error::StaleDelivery {
                    signed_at: "2025-01-01T00:00:00Z".into(),
                    window_s: 259_200,
                },
                401,
                "stale-delivery",
            ),
            (
                Error::RateLimited {
                    what: "webhooks for this source",
                    retry_after_secs: 2,
                },
                429,
                "rate-limited",
            ),
            (Error::BodyTimeout { timeout_ms: 10 }, 408, "body-timeout"),
            (Error::Conflict("namespace".into()), 409, "conflict"),
            (
                Error::MethodNotAllowed {
                    method: "TRACE".into(),
                    allowed: vec!["GET".into()],
                },
                405,
                "method-not-allowed",
            ),
            (
                Error::PayloadTooLarge { limit: 1 },
                413,
                "payload-too-large",
            ),
            (
                Error::StoreUnavailable("down".into()),
                503,
                "store-unavailable",
            ),
            (
                Error::Contended("changed under every attempt".into()),
                503,
                "store-unavailable",
            ),
            (
                Error::QuarantineFull("partition 3 is at its bytes cap".into()),
                503,
                "quarantine-full",
            ),
            (Error::validation("bad"), 422, "validation-failed"),
            (Error::Internal("boom".into()), 500, "internal"),
            (
                Error::TimestampOutsideTolerance { tolerance_s: 300 },
                401,
                "timestamp-outside-tolerance",
            ),
            (
                Error::Unauthorized(Credential::AdminToken),
                401,
                "unauthorized",
            ),
            (Error::not_found("plugin plg_x"), 404, "not-found"),
            (Error::Forbidden("not installed".into()), 403, "forbidden"),
            (
                Error::MalformedBody("not JSON".into()),
                400,
                "malformed-body",
            ),
            (Error::InvalidQuery("limit".into()), 400, "invalid-query"),
            (
                Error::ReplayFailed("still unmapped".into()),
                422,
                "replay-failed",
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (err, status, slug) in cases {
            let p = err.problem();
            assert_eq!(p.status, status);
            assert_eq!(p.problem_type, format!("{PROBLEM_BASE}{slug}"));
            assert_eq!(p.kind(), Some(err.kind()), "clients read back the kind");
            seen.insert(err.kind());
        }
        // Every kind clients can match on is one the gateway answers with.
        let missing: Vec<_> = ProblemKind::ALL
            .into_iter()
            .filter(|k| !seen.contains(k))
            .collect();
        assert!(missing.is_empty(), "no case answers {missing:?}");
    }

    #[test]
    fn signature_problems_do_not_reveal_the_cause() {
        let missing = Error::InvalidSignature("missing header".into()).problem();
        let wrong = Error::InvalidSignature("mismatch".into()).problem();
        assert_eq!(missing, wrong);
    }

    #[test]
    fn internal_causes_are_not_exposed() {
        let p = Error::Internal("redis password=hunter2".into()).problem();
        assert!(p.detail.is_none());
    }
}
