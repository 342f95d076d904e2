//! An API error as the routes answer it: Docker's status and `{"message": ...}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API error: Docker's status and `{"message": ...}` body.
#[derive(Debug)]
pub struct ApiError(pub berth_api::Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!("internal error: {}", self.0);
        }
        (status, [("content-type", "application/json")], self.0.body()).into_response()
    }
}

impl From<berth_api::Error> for ApiError {
    fn from(e: berth_api::Error) -> Self {
        ApiError(e)
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> Self {
        ApiError(e.into())
    }
}

impl From<berth_store::StoreError> for ApiError {
    fn from(e: berth_store::StoreError) -> Self {
        ApiError(crate::daemon::store_error(e).into())
    }
}

/// Result of a handler.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
