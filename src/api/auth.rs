//! `/auth`: register, login, refresh (rotating, with reuse detection), logout, and password reset by an emailed
//! single-use link.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{hash_password, hash_secret, new_refresh_token, random_secret, verify_password};
use crate::domain::{Email, FieldErrors, Password, PersonName, Role, UserId};
use crate::error::{ApiError, ErrorBody};
use crate::store::{NewRefreshToken, NewUser, Outcome, RefreshOutcome, Store, now_ms};

use super::AppState;
use super::extract::{ApiJson, ClientIp};
use super::views::{TokenPair, UserView};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[serde(default)]
    email: String,
    /// At least 10 characters.
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
    /// A coach invitation's token (from its link): the account is made a coach account. The email must be the
    /// invited one.
    #[serde(default)]
    invitation: Option<String>,
}

/// Create a candidate account, or a coach account from a coach invitation.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "The invitation is for another email (`wrong_account`)", body = ErrorBody),
        (status = 404, description = "No such invitation (`invitation_not_found`)", body = ErrorBody),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 410, description = "The invitation expired (`invitation_expired`)", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let mut errors = FieldErrors::default();
    let email = errors.check(Email::parse(&body.email));
    let password = errors.check(Password::parse(SecretString::from(body.password)));
    let name = errors.check(PersonName::parse(&body.name));
    errors.finish().map_err(ApiError::validation)?;
    let (Some(email), Some(password), Some(name)) = (email, password, name) else {
        unreachable!("finish() returned Ok, so every field parsed")
    };
    let role = match &body.invitation {
        None => Role::Candidate,
        Some(token) => {
            let invitation = super::invitations::valid(&state, token).await?;
            if !email.as_ref().eq_ignore_ascii_case(&invitation.email) {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_account", "this invitation is for another email"));
            }
            Role::Coach
        }
    };
    let password_hash = password_hash(&password).await?;
    let user = state
        .store
        .insert_user(NewUser { email: &email, password_hash: &password_hash, name: &name, role })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::conflict("email_taken", "an account with this email already exists")
            }
            other => other.into(),
        })?;
    let user_id = user.id.to_string();
    state
        .store
        .audit(Some(&user_id), "auth.register", Some(&user_id), Some(&ip.to_text()), Outcome::Success, None)
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// Exchange email and password for a token pair.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let user = match Email::parse(&body.email) {
        Ok(email) => state.store.user_by_email(&email).await?,
        Err(_) => None,
    };
    let verified = verify_password(body.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let ip_text = ip.to_text();
    let Some(user) = user.filter(|_| verified) else {
        state.metrics.auth_failures.with_label_values(&["bad_credentials"]).inc();
        let attempted = body.email.chars().take(254).collect::<String>();
        state.store.audit(None, "auth.login", Some(&attempted), Some(&ip_text), Outcome::Failure, None).await?;
        return Err(ApiError::unauthorized("invalid_credentials", "wrong email or password"));
    };
    let user_id = user.id.to_string();
    let pair = issue_pair(&state, user.id, user.role, None).await?;
    state.store.audit(Some(&user_id), "auth.login", Some(&user_id), Some(&ip_text), Outcome::Success, None).await?;
    Ok(Json(pair))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Spend a refresh token for a new pair. Presenting a spent token again revokes every token of its login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let (new_token, new_hash) = new_refresh_token();
    let expires_at = now_ms() + ttl_ms(state.tokens.refresh_ttl_secs);
    let outcome =
        state.store.rotate_refresh_token(&hash_secret(&body.refresh_token), &new_hash, expires_at).await?;
    let ip_text = ip.to_text();
    let (reason, actor) = match outcome {
        RefreshOutcome::Rotated { user_id } => match state.store.user(user_id).await? {
            Some(user) => {
                let pair = issue_pair(&state, user.id, user.role, Some(new_token)).await?;
                let user = user.id.to_string();
                state
                    .store
                    .audit(Some(&user), "auth.refresh", Some(&user), Some(&ip_text), Outcome::Success, None)
                    .await?;
                return Ok(Json(pair));
            }
            None => ("user_deleted", Some(user_id)),
        },
        RefreshOutcome::Unknown => ("unknown", None),
        RefreshOutcome::Expired { user_id } => ("expired", Some(user_id)),
        RefreshOutcome::Revoked { user_id } => ("revoked", Some(user_id)),
        RefreshOutcome::Reused { user_id } => ("reused", Some(user_id)),
    };
    state.metrics.auth_failures.with_label_values(&[reason]).inc();
    let actor = actor.map(|id| id.to_string());
    state.store.audit(actor.as_deref(), "auth.refresh", None, Some(&ip_text), Outcome::Failure, Some(reason)).await?;
    Err(if reason == "reused" {
        ApiError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; every session of this login has been signed out",
        )
    } else {
        ApiError::unauthorized("invalid_refresh_token", "the refresh token is unknown, expired or revoked")
    })
}

/// Sign out: revoke the refresh token and every token of its login.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out (also for an unknown token)")))]
pub async fn logout(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    if let Some(user) = state.store.revoke_refresh_family(&hash_secret(&body.refresh_token)).await? {
        let user = user.to_string();
        state.store.audit(Some(&user), "auth.logout", Some(&user), Some(&ip.to_text()), Outcome::Success, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Reset links one account may be sent per hour: more would let anyone flood a stranger's mailbox.
const RESETS_PER_HOUR: i64 = 3;

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    #[serde(default)]
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordResetRequested {
    /// True when this server sends email: a link goes to the address if it has an account. False: this server
    /// sends no email at all; its administrator can make a link (`candor user reset-link`).
    email_enabled: bool,
}

/// Ask for a password-reset link by email. The answer is the same whether or not the address has an account, and
/// comes before anything is looked up, so neither its content nor its timing tells.
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, description = "Accepted: a link is emailed if the address has an account", body = PasswordResetRequested)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> (StatusCode, Json<PasswordResetRequested>) {
    let answer = (StatusCode::ACCEPTED, Json(PasswordResetRequested { email_enabled: state.mailer.is_some() }));
    // A bounded number run at once; past it the request is dropped (logged), as a flood deserves.
    let Ok(permit) = state.background.clone().try_acquire_owned() else {
        tracing::warn!("password-reset request dropped: too many in flight");
        return answer;
    };
    tokio::spawn(async move {
        if let Err(error) = send_reset_link(&state, &body.email, ip).await {
            tracing::error!(error = %error, "password-reset request failed");
        }
        drop(permit);
    });
    answer
}

/// Makes and emails a reset link for `email`'s account, if it has one, unless it was sent too many lately.
async fn send_reset_link(state: &AppState, email: &str, ip: ClientIp) -> Result<(), crate::store::StoreError> {
    let account = match Email::parse(email) {
        Ok(email) => state.store.user_by_email(&email).await?,
        Err(_) => None,
    };
    let ip = ip.to_text();
    let Some(account) = account else {
        let attempted = email.chars().take(254).collect::<String>();
        return state.store.audit(None, "auth.password_reset.request", Some(&attempted), Some(&ip), Outcome::Failure, Some("unknown_email")).await;
    };
    let user = account.id.to_string();
    let audit = |outcome, detail| state.store.audit(Some(&user), "auth.password_reset.request", Some(&user), Some(&ip), outcome, detail);
    let Some(mailer) = &state.mailer else { return audit(Outcome::Failure, Some("no_smtp")).await };
    let cap = Some((now_ms() - 3_600_000, RESETS_PER_HOUR));
    let Some(link) = new_reset_link(&state.store, account.id, state.config.password_reset_ttl_secs, cap).await? else {
        return audit(Outcome::Denied, Some("too_many")).await;
    };
    mailer.password_reset(&account.email, &link, state.config.password_reset_ttl_secs.div_ceil(60));
    audit(Outcome::Success, None).await
}

/// Stores a new reset token for `user`, unless `cap` (see `Store::insert_password_reset`) forbids; the link
/// carrying it, relative to the server.
pub async fn new_reset_link(
    store: &Store,
    user: UserId,
    ttl_secs: u64,
    cap: Option<(i64, i64)>,
) -> Result<Option<String>, crate::store::StoreError> {
    let token = format!("pr_{}", random_secret(32));
    let expires_at = now_ms().saturating_add(ttl_ms(ttl_secs));
    let stored = store.insert_password_reset(user, &hash_secret(&token), expires_at, cap).await?;
    Ok(stored.then(|| format!("/reset.html?token={token}")))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetConfirm {
    /// The token from the reset link.
    #[serde(default)]
    token: String,
    /// The new password: at least 10 characters.
    #[serde(default)]
    password: String,
}

/// Set a new password with a reset link's token. The link is spent, and so are the account's other links; every
/// login of the account is signed out (access tokens already issued lapse within their lifetime).
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "The password is changed: sign in with it"),
        (status = 400, description = "Invalid password (`validation_failed`), or a link that is unknown, used or expired (`invalid_reset_token`)", body = ErrorBody),
    ))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let ip = ip.to_text();
    let refused = |reason: &'static str, user: Option<String>| {
        let state = state.clone();
        let ip = ip.clone();
        async move {
            state.metrics.auth_failures.with_label_values(&["reset_token"]).inc();
            state.store.audit(user.as_deref(), "auth.password_reset", user.as_deref(), Some(&ip), Outcome::Failure, Some(reason)).await?;
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_reset_token",
                "this reset link is unknown, used or expired; ask for a new one",
            ))
        }
    };
    // The token is checked first: hashing a password costs far more than looking a token up.
    let Some(reset) = state.store.password_reset(&hash_secret(&body.token)).await? else {
        return refused("unknown", None).await;
    };
    let user = reset.user_id.to_string();
    if reset.used_at.is_some() {
        return refused("used", Some(user)).await;
    }
    if reset.expires_at <= now_ms() {
        return refused("expired", Some(user)).await;
    }
    let password = Password::parse(SecretString::from(body.password)).map_err(|e| ApiError::validation(vec![e]))?;
    let password_hash = password_hash(&password).await?;
    if !state.store.complete_password_reset(&reset, &password_hash).await? {
        return refused("used", Some(user)).await;
    }
    state.store.audit(Some(&user), "auth.password_reset", Some(&user), Some(&ip), Outcome::Success, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored form of a new password (Argon2id, off the async threads).
pub(super) async fn password_hash(password: &Password) -> Result<String, ApiError> {
    hash_password(password.expose().to_string()).await.map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        ApiError::internal()
    })
}

/// A new access token, plus a refresh token: `rotated` when refreshing (already stored), else a new family.
pub(super) async fn issue_pair(
    state: &AppState,
    user: UserId,
    role: Role,
    rotated: Option<String>,
) -> Result<TokenPair, ApiError> {
    let refresh_token = match rotated {
        Some(token) => token,
        None => {
            let (token, hash) = new_refresh_token();
            let family = uuid::Uuid::new_v4().to_string();
            let expires_at = now_ms() + ttl_ms(state.tokens.refresh_ttl_secs);
            state
                .store
                .insert_refresh_token(NewRefreshToken {
                    user_id: user,
                    family_id: &family,
                    token_hash: &hash,
                    expires_at,
                })
                .await?;
            token
        }
    };
    let now_secs = u64::try_from(now_ms() / 1000).unwrap_or_default();
    Ok(TokenPair {
        access_token: state.tokens.issue_access(user, role, now_secs),
        refresh_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs,
    })
}

fn ttl_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}
