//! The middleware every request passes: per-client rate limiting, request metrics and security headers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppState, ClientIp};
use crate::error::ApiError;
use crate::rate_limit::Decision;

/// 429 with `Retry-After` once a client IP has used its window. A request another node relays was counted there.
pub async fn limit_requests(State(state): State<AppState>, ip: ClientIp, request: Request, next: Next) -> Response {
    if super::extract::relayed_for(request.headers(), &state.tokens).is_some() {
        return next.run(request).await;
    }
    let now = crate::store::now_ms() as u64 / 1000;
    let verdict = state.limiter.check(ip.0, now).await;
    if verdict.degraded {
        state.metrics.rate_limited.with_label_values(&["store_error"]).inc();
    }
    match verdict.decision {
        Decision::Allow => next.run(request).await,
        Decision::Reject { retry_after } => {
            state.metrics.rate_limited.with_label_values(&["rejected"]).inc();
            ApiError::rate_limited(retry_after).into_response()
        }
    }
}

/// Counts and times every request by route template, method and status.
pub async fn track_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics.http_duration.with_label_values(&[&route, &method]).observe(started.elapsed().as_secs_f64());
    metrics.http_requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    response
}

/// Security headers on every response: no MIME sniffing, no referrer (URLs carry media tickets), never framed,
/// its own browsing context group; a strict Content-Security-Policy for anything that is not a page (pages set
/// their own, `web::page_policy`); HSTS when the public URL is HTTPS (TLS ends at a proxy in front).
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    }
    if state.config.public_url.as_deref().is_some_and(|url| url.starts_with("https://")) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    response
}
