//! The endpoints: `POST /v1/request`, `GET /v1/push` (push.rs), `GET /health`, `GET /metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use vmls_protocol::{decode, encode, Response, ServiceError, SignedRequest, Text};

use super::backend::Backend;
use super::push;
use super::AppState;
use crate::auth::{authenticator, verify_request, AuthError};
use crate::metrics::request_name;

/// The content type of a request body: one TLS-encoded [`SignedRequest`].
pub const REQUEST_CONTENT_TYPE: &str = "application/vnd.vmls.request+tls";
/// The content type of every answer of `POST /v1/request`: one TLS-encoded [`Response`].
pub const RESPONSE_CONTENT_TYPE: &str = "application/vnd.vmls.response+tls";

/// The router of the service's endpoints.
pub(crate) fn router<B: Backend>(state: Arc<AppState<B>>) -> Router {
    Router::new()
        .route("/v1/request", post(request::<B>))
        .route("/v1/push", get(push::upgrade::<B>))
        .route("/health", get(health))
        .route("/metrics", get(metrics::<B>))
        .with_state(state)
}

/// The HTTP status of a refusal (the body, a [`Response::Refused`], is what counts).
pub fn status_of(error: &ServiceError) -> StatusCode {
    use ServiceError::*;
    match error {
        Unauthorized { .. } | NotAnEmulator { .. } | NotAMember { .. } => StatusCode::FORBIDDEN,
        QuotaExceeded { quota, .. } => match quota.0.as_str() {
            "body_size" => StatusCode::PAYLOAD_TOO_LARGE,
            "body_timeout_ms" => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::TOO_MANY_REQUESTS,
        },
        BadRequest { .. } => StatusCode::BAD_REQUEST,
        InvalidMessage { .. } | ClaimMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        UnknownClient { .. } | UnknownGroup { .. } | NoGroupInfo { .. } | NoKeyPackage { .. } => {
            StatusCode::NOT_FOUND
        }
        Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ClientExists { .. }
        | NotADevice { .. }
        | NotAVirtualClient { .. }
        | GroupExists { .. }
        | StaleEpoch { .. }
        | FutureEpoch { .. }
        | VirtualClientSequenceMismatch { .. }
        | EmulationGroupBehind { .. }
        | NotACommit {}
        | Truncated { .. } => StatusCode::CONFLICT,
    }
}

/// A TLS-encoded [`Response`] with `status`.
fn answer(status: StatusCode, response: &Response) -> HttpResponse {
    match encode(response) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(RESPONSE_CONTENT_TYPE),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Refuses a request in the HTTP layer (before or instead of the service), counted and logged.
fn refuse<B: Backend>(
    state: &AppState<B>,
    status: StatusCode,
    error: ServiceError,
) -> HttpResponse {
    state.metrics.refusal(&error);
    tracing::info!(
        status = status.as_u16(),
        reason = %crate::metrics::refusal_name(&error),
        "refused in the HTTP layer"
    );
    answer(status, &Response::Refused(error))
}

fn quota(name: &str, limit: u64) -> ServiceError {
    ServiceError::QuotaExceeded {
        quota: Text::new(name),
        limit,
    }
}

fn bad_request(reason: impl std::fmt::Display) -> ServiceError {
    ServiceError::BadRequest {
        reason: Text::new(reason),
    }
}

/// Reads the body within the size and time limits.
async fn read_body<B: Backend>(
    state: &AppState<B>,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, HttpResponse> {
    let max = state.limits.max_body_bytes;
    let too_large = || quota("body_size", max as u64);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(refuse(state, StatusCode::PAYLOAD_TOO_LARGE, too_large()));
    }
    let timeout = state.limits.body_timeout;
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(refuse(state, StatusCode::PAYLOAD_TOO_LARGE, too_large()))
        }
        Ok(Err(_)) => Err(refuse(
            state,
            StatusCode::BAD_REQUEST,
            bad_request("the request body could not be read"),
        )),
        Err(_) => Err(refuse(
            state,
            StatusCode::REQUEST_TIMEOUT,
            quota(
                "body_timeout_ms",
                u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            ),
        )),
    }
}

/// `POST /v1/request`: one signed request, one answer.
async fn request<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    body: Body,
) -> HttpResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some(REQUEST_CONTENT_TYPE) {
        return refuse(
            &state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            bad_request(format!("the body must be {REQUEST_CONTENT_TYPE}")),
        );
    }
    let bytes = match read_body(&state, &headers, body).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let started = Instant::now();
    let signed: SignedRequest = match decode(&bytes) {
        Ok(signed) => signed,
        Err(e) => {
            return refuse(
                &state,
                StatusCode::BAD_REQUEST,
                bad_request(format!("not a SignedRequest: {e}")),
            )
        }
    };
    let now = state.clock.now();
    if let Err(refused) = authenticate(&state, &signed, now).await {
        return refused;
    }
    let device = signed.content.authenticator.device;
    let request = signed.content.request;
    let name = request_name(&request);
    let response = state.backend.handle(&device, request, now).await;
    let elapsed = started.elapsed();
    state.metrics.request(name, elapsed);
    let status = match &response {
        Response::Refused(error) => {
            state.metrics.refusal(error);
            status_of(error)
        }
        _ => StatusCode::OK,
    };
    tracing::info!(
        device = %device,
        request = name,
        status = status.as_u16(),
        elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    answer(status, &response)
}

/// Signature, replay window, rate limit.
async fn authenticate<B: Backend>(
    state: &AppState<B>,
    signed: &SignedRequest,
    now: u64,
) -> Result<(), HttpResponse> {
    let device = &signed.content.authenticator.device;
    let key = match state.backend.device_key(device).await {
        Ok(key) => key,
        Err(reason) => {
            return Err(refuse(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Unavailable {
                    reason: Text::new(reason),
                },
            ))
        }
    };
    let unauthorized = |e: AuthError| refuse(state, StatusCode::UNAUTHORIZED, e.to_service_error());
    verify_request(signed, key.as_ref()).map_err(unauthorized)?;
    state
        .replay
        .check(authenticator(signed), now)
        .map_err(unauthorized)?;
    if !state.rate.allow(device, Instant::now()) {
        return Err(refuse(
            state,
            StatusCode::TOO_MANY_REQUESTS,
            quota(
                "requests_per_second",
                u64::from(state.limits.requests_per_second),
            ),
        ));
    }
    Ok(())
}

/// `GET /health`: `ok` while the server runs.
async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
}

/// `GET /metrics`: Prometheus text format.
async fn metrics<B: Backend>(State(state): State<Arc<AppState<B>>>) -> impl IntoResponse {
    let mut out = String::new();
    state.metrics.render(&mut out);
    state.backend.render_metrics(&mut out).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
