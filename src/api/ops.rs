//! Operational routes: liveness, readiness (database and, when configured, Redis), Prometheus metrics, and the
//! OpenAPI document.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// How long readiness waits for Redis (probes time out after a second).
const REDIS_PING: std::time::Duration = std::time::Duration::from_millis(500);

/// The serialised OpenAPI document, made once when the router is built.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<String>);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
    /// Each dependency: `ok` or what is wrong with it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    checks: BTreeMap<&'static str, String>,
    /// Each model-backed engine: `ok` or why it is off. Missing engines do not make the server unready; the
    /// features that need them are off.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    engines: BTreeMap<&'static str, String>,
    /// (*added*) Where inference runs, per runtime: `onnx` (VAD, vision, the voice) and `whisper` (speech to
    /// text): `cpu`, `cuda`, or `cpu (CUDA unavailable: why)` when CUDA was asked for and could not be had.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    devices: BTreeMap<&'static str, String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", checks: BTreeMap::new(), engines: BTreeMap::new(), devices: BTreeMap::new() })
}

/// Readiness: the database answers and the node is not draining. Redis, when configured, is reported too.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Health), (status = 503, description = "Not ready", body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut checks = BTreeMap::new();
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unreachable: {e}"),
    };
    checks.insert("database", database);
    if state.live.is_draining() {
        checks.insert("node", "draining: taking no new sessions".to_string());
    }
    let ready = checks.values().all(|v| v == "ok");
    // Without Redis the node still serves, counting rate limits on its own: reported, not a reason to be unready.
    if let Some(redis) = &state.redis {
        let mut redis = redis.clone();
        let ping = tokio::time::timeout(REDIS_PING, redis::cmd("PING").query_async::<String>(&mut redis)).await;
        let redis = match ping {
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => format!("unreachable ({e}): rate limits count on this node alone"),
            Err(_) => "no answer: rate limits count on this node alone".to_string(),
        };
        checks.insert("redis", redis);
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut engines = state.live.engines.status.clone();
    // The LLM brain: "ok", "down" (failing; the built-in brain decides meanwhile), or "off" (none configured).
    let llm = state.live.brain.as_ref().map_or("off", |brain| brain.health());
    state.metrics.brain_up.set(i64::from(llm != "down"));
    engines.insert("llm", llm.to_string());
    let devices = state.live.engines.devices.clone();
    (status, Json(Health { status: if ready { "ready" } else { "unavailable" }, checks, engines, devices }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (open, idle) = state.store.pool_usage();
    state.metrics.db_connections.set(i64::from(open));
    state.metrics.db_connections_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
    state.metrics.redis_up.set(i64::from(state.limiter.redis_up().unwrap_or(true)));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_document(Extension(OpenApiJson(document)): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.as_str().to_owned())
}

#[derive(Serialize, ToSchema)]
pub struct RtcConfig {
    /// Pass to `new RTCPeerConnection({iceServers})`.
    ice_servers: Vec<crate::config::IceServer>,
}

/// STUN/TURN servers for the browser's peer connection: the configured ones, and the shared-secret TURN servers
/// with a credential of the caller's own that works for `turn_ttl_secs`.
#[utoipa::path(get, path = "/rtc/config", tag = "live", security(("bearer" = [])),
    responses((status = 200, body = RtcConfig), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)))]
pub async fn rtc_config(State(state): State<AppState>, user: super::AuthUser) -> Json<RtcConfig> {
    let mut ice_servers = state.config.ice_servers.clone();
    if let Some(secret) = &state.config.turn_secret {
        let expires_at = u64::try_from(crate::store::now_ms() / 1000).unwrap_or_default().saturating_add(state.config.turn_ttl_secs);
        let (username, credential) = crate::auth::turn_credential(secret, user.id, expires_at);
        ice_servers.push(crate::config::IceServer { urls: state.config.turn_urls.clone(), username: Some(username), credential: Some(credential) });
    }
    Json(RtcConfig { ice_servers })
}
