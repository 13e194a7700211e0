//! The HTTP API: REST under `/api/v1`, operational routes at the root. This module owns the router, the shared
//! state, the extractors that parse and authenticate requests, and the OpenAPI document, which is generated
//! from the same route declarations that build the router, so the two cannot drift apart.

mod account;
mod admin;
mod auth;
mod charts;
mod extract;
mod relay;
mod interviews;
mod recordings;
mod invitations;
mod me;
mod reports;
mod rtc;
mod middleware;
mod ops;
mod shares;
mod views;
mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tokens;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::store::Store;

pub use auth::new_reset_link;
pub use extract::{ApiPath, ApiQuery, AuthUser, ClientIp};

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub tokens: Arc<Tokens>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    /// Present when `redis_url` is set; `/readyz` checks it.
    pub redis: Option<redis::aio::ConnectionManager>,
    pub live: Arc<crate::live::Live>,
    /// Notification emails (coach invitations), when SMTP is configured.
    pub mailer: Option<Arc<crate::notify::Mailer>>,
    /// Recorded media (consenting candidates' sessions).
    pub recordings: Arc<crate::recordings::Recordings>,
    /// Work a request hands off to run after its answer (password-reset requests), at most this many at once.
    pub background: Arc<tokio::sync::Semaphore>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Candor API", description = "Self-hostable AI mock interviews. Protocol v1."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "profile", description = "The signed-in user"),
        (name = "interviews", description = "Interviews and their history"),
        (name = "live", description = "Live sessions: WebSocket signaling (protocol v1), WHIP, ICE servers"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The routes of `/api/v1` and of the root, with their OpenAPI description.
fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::request_password_reset))
        .routes(routes!(auth::confirm_password_reset))
        .routes(routes!(me::get_profile, me::update_profile, account::erase_me))
        .routes(routes!(account::change_password))
        .routes(routes!(account::export_me))
        .routes(routes!(account::export_user))
        .routes(routes!(account::erase_user, admin::update_user))
        .routes(routes!(admin::users))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::nodes))
        .routes(routes!(interviews::create, interviews::list))
        .routes(routes!(interviews::suggestions))
        .routes(routes!(interviews::get_one, interviews::update))
        .routes(routes!(interviews::abandon))
        .routes(routes!(recordings::list))
        .routes(routes!(recordings::media))
        .routes(routes!(reports::report))
        .routes(routes!(reports::report_chart))
        .routes(routes!(reports::tick_step))
        .routes(routes!(reports::progress_chart))
        .routes(routes!(shares::create, shares::list))
        .routes(routes!(shares::delete))
        .routes(routes!(invitations::create))
        .routes(routes!(invitations::show))
        .routes(routes!(invitations::accept))
        .routes(routes!(invitations::shared))
        .routes(routes!(rtc::websocket))
        .routes(routes!(rtc::whip_offer, rtc::whip_delete))
        .routes(routes!(ops::rtc_config))
        .routes(routes!(ops::openapi_document))
        .layer(from_fn_with_state(state.clone(), middleware::limit_requests));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// Responses any operation may give that its own annotation leaves out: 401 where a bearer token is required,
/// 400 (malformed or invalid JSON) and 415 (not JSON) where a JSON body is taken, and 429 past the rate limit on
/// every API route.
fn document_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        ResponseBuilder::new().description(description).content("application/json", content).build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses.entry(status.to_string()).or_insert_with(|| error(description).into());
            };
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add("401", "No valid access token (`unauthenticated`, `invalid_token`, `token_expired`)");
            }
            if operation.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json")) {
                add("400", "The body is not valid JSON of this shape (`malformed_json`, `invalid_body`) or breaks a rule");
                add("415", "The body is not `application/json`");
            }
            if path.starts_with("/api/v1/") {
                add("429", "Rate limited; `Retry-After` says when to try again");
            }
        }
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let (router, mut openapi) = documented_routes(&state).split_for_parts();
    document_common_responses(&mut openapi);
    let document = Arc::new(openapi.to_json().expect("the OpenAPI document serialises"));
    router
        .route("/", axum::routing::get(web::index))
        .route("/{file}", axum::routing::get(web::file))
        .layer(axum::Extension(ops::OpenApiJson(document)))
        .fallback(|| async { ApiError::new(axum::http::StatusCode::NOT_FOUND, "route_not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here")
        })
        .layer(from_fn_with_state(state.clone(), middleware::security_headers))
        .layer(from_fn_with_state(state.clone(), middleware::track_http))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}
