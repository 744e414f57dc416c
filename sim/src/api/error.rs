//! API errors, rendered as Kubernetes `Status` objects with the code and reason a real
//! API server uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::{ResourceKind, StoreError};

/// An error answered to a client as a `Status` object.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 400: malformed body, bad parameter, type or namespace mismatch.
    #[error("{0}")]
    BadRequest(String),
    /// 404 for a path the sim does not serve.
    #[error("the server could not find the requested resource")]
    UnknownPath,
    /// 405 for a verb the resource does not support.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 415 for a body content type the verb does not accept.
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(&'static str),
    /// 422 found by API-level validation.
    #[error("{kind_name} \"{name}\" is invalid: {message}", kind_name = kind.kind())]
    Invalid {
        kind: ResourceKind,
        name: String,
        message: String,
    },
    /// 404 for a named thing that is not a stored object (a node of the runtime, say).
    #[error("{message}")]
    NotFound { message: String },
    /// 409 for a control action the runtime could not carry out.
    #[error("{0}")]
    Conflict(String),
    /// 500: something inside the sim failed.
    #[error("{0}")]
    Internal(String),
    /// 503: the runtime is not running (API-only mode).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(kind: ResourceKind, name: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            kind,
            name: name.to_string(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::Store(e) => e.code(),
            ApiError::BadRequest(_) => 400,
            ApiError::UnknownPath | ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::Conflict(_) => 409,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Store(e) => e.reason(),
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::UnknownPath | ApiError::NotFound { .. } => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Conflict(_) => "Conflict",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
        }
    }

    /// The `Status` object a real API server would send.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let subject = match self {
            ApiError::Store(e) => e.subject(),
            ApiError::Invalid { kind, name, .. } => Some((*kind, name.as_str())),
            _ => None,
        };
        if let Some((kind, name)) = subject {
            status["details"] = json!({
                "name": name,
                "group": kind.group(),
                "kind": kind.plural(),
            });
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code.is_server_error() {
            tracing::warn!(error = %crate::errors::chain(&self), "request failed");
        } else {
            tracing::debug!(error = %crate::errors::chain(&self), "request rejected");
        }
        super::json_response(code, &self.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_code_reason_and_details() {
        let store = crate::store::Store::new();
        let err = store
            .delete(
                ResourceKind::StatefulSet,
                Some("default"),
                "web",
                &Default::default(),
            )
            .expect_err("missing");
        let status = ApiError::from(err).status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "statefulsets.apps \"web\" not found");
        assert_eq!(status["details"]["kind"], "statefulsets");
        assert_eq!(status["details"]["group"], "apps");
    }

    #[test]
    fn bad_request_is_a_400_status() {
        let status = ApiError::BadRequest("boom".into()).status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["code"], 400);
        assert_eq!(status["reason"], "BadRequest");
        assert!(status.get("details").is_none());
    }
}
