//! Extractors: JSON, path and query parsing that fail in the API's error shape; the client IP; and `AuthUser`,
//! which turns a bearer token into a known user or a 401 (audited and counted).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::auth::{TokenError, Tokens};
use crate::domain::{Role, UserId};
use crate::error::ApiError;
use crate::store::Outcome;

use super::AppState;

/// A JSON body; rejections become 400/413/415 in the error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters; a malformed id is a 404.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; rejections are a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The header a node sets when it relays a client's request to the node running the session: a signed
/// `Tokens::issue_relay` token naming the client's address.
pub const RELAYED_FOR: &str = "x-candor-relayed-for";

/// The client address another node of the deployment vouches for, when it relayed this request.
pub fn relayed_for(headers: &HeaderMap, tokens: &Tokens) -> Option<IpAddr> {
    tokens.verify_relay(headers.get(RELAYED_FOR)?.to_str().ok()?).ok()
}

/// The client's address: the one a relaying node vouches for, the TCP peer, or the first `X-Forwarded-For` hop
/// when the configuration trusts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    fn from_parts(parts: &Parts, state: &AppState) -> Self {
        if let Some(ip) = relayed_for(&parts.headers, &state.tokens) {
            return Self(ip);
        }
        let forwarded = state
            .config
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next()?.trim().parse().ok())
            .flatten();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        Self(forwarded.or(peer).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }

    pub fn to_text(self) -> String {
        self.0.to_string()
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::from_parts(parts, state))
    }
}

/// The authenticated caller, from a valid `Authorization: Bearer <access token>`.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
    pub ip: ClientIp,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = ClientIp::from_parts(parts, state);
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
        let verified = match token {
            None => Err(("missing", ApiError::unauthorized("unauthenticated", "an access token is required"))),
            Some(token) => state
                .tokens
                .verify_access(token.trim())
                .and_then(|claims| Ok((claims.user_id()?, claims.role)))
                .map_err(|e| match e {
                    TokenError::Expired => {
                        ("expired", ApiError::unauthorized("token_expired", "the access token has expired"))
                    }
                    TokenError::Invalid => {
                        ("invalid", ApiError::unauthorized("invalid_token", "the access token is invalid"))
                    }
                }),
        };
        match verified {
            Ok((id, role)) => Ok(Self { id, role, ip }),
            Err((reason, error)) => {
                state.metrics.auth_failures.with_label_values(&[reason]).inc();
                // Nested routers see a stripped path; the audit wants the one the client sent.
                let target =
                    parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |uri| uri.path()).to_string();
                state
                    .store
                    .audit(
                        None,
                        "auth.access_token",
                        Some(&target),
                        Some(&ip.to_text()),
                        Outcome::Failure,
                        Some(reason),
                    )
                    .await?;
                Err(error)
            }
        }
    }
}

/// `Option<AuthUser>`: `None` without an `Authorization` header (another credential may follow, such as a
/// media ticket); a header that does not verify is still a 401.
impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, ApiError> {
        if parts.headers.contains_key(AUTHORIZATION) {
            <Self as FromRequestParts<AppState>>::from_request_parts(parts, state).await.map(Some)
        } else {
            Ok(None)
        }
    }
}
