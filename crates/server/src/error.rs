//! Every failure a route answers: a status and `{"error": "<one line>"}` (`specs/serve-api.md`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refusal or failure, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// Anything the client cannot fix: logged here with its causes, answered as a 500.
    pub fn internal(err: &anyhow::Error) -> Self {
        let message = one_line(err.as_ref());
        tracing::error!("{message}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        let headers = response.headers_mut();
        match self.status {
            // The queue drains within about a second at the sizes a server takes.
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

pub use convnet_apps::errors::one_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_answer_json_with_the_headers_their_status_needs() {
        let busy = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "full").into_response();
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let denied = ApiError::new(StatusCode::UNAUTHORIZED, "token").into_response();
        assert_eq!(denied.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let body = axum::body::to_bytes(denied.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            json!({"error": "token"})
        );
    }
}
