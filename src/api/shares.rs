//! `/interviews/{id}/shares`: the candidate lets coaches observe an interview live, lists and revokes that.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Email, InterviewId, Role, UserId};
use crate::error::{ApiError, ErrorBody};
use crate::store::{Outcome, ShareRecord};

use super::AppState;
use super::extract::{ApiJson, ApiPath, AuthUser};
use super::views::rfc3339;

#[derive(Deserialize, ToSchema)]
pub struct ShareRequest {
    /// Email of a coach (or admin) account.
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShareView {
    observer_id: String,
    email: String,
    name: String,
    created_at: String,
}

impl From<ShareRecord> for ShareView {
    fn from(s: ShareRecord) -> Self {
        Self { observer_id: s.observer_user_id, email: s.email, name: s.name, created_at: rfc3339(s.created_at) }
    }
}

/// Checks that the caller owns the interview; 404 otherwise (audited as denied).
pub(super) async fn owned(state: &AppState, user: &AuthUser, id: &str, action: &str) -> Result<InterviewId, ApiError> {
    let found = match id.parse::<InterviewId>() {
        Ok(parsed) => state.store.interview_of(user.id, parsed).await?.map(|i| i.id),
        Err(_) => None,
    };
    let outcome = if found.is_some() { Outcome::Success } else { Outcome::Denied };
    let caller = user.id.to_string();
    state.store.audit(Some(&caller), action, Some(id), Some(&user.ip.to_text()), outcome, None).await?;
    found.ok_or_else(|| ApiError::not_found("interview"))
}

/// Let a coach observe this interview live.
#[utoipa::path(post, path = "/interviews/{id}/shares", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")), request_body = ShareRequest,
    responses(
        (status = 201, description = "Shared (sharing twice is harmless)", body = Vec<ShareView>),
        (status = 400, description = "The account is not a coach (`not_a_coach`) or the email is invalid", body = ErrorBody),
        (status = 404, description = "No such interview of the caller, or no account with that email", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ShareRequest>,
) -> Result<(StatusCode, Json<Vec<ShareView>>), ApiError> {
    let interview = owned(&state, &user, &id, "interview.share").await?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::validation(vec![e]))?;
    let observer = state.store.user_by_email(&email).await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "no account with this email; ask the coach to sign up")
    })?;
    if !matches!(observer.role, Role::Coach | Role::Admin) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_coach",
            "interviews can be shared with coaches only",
        ));
    }
    state.store.insert_share(interview, observer.id).await?;
    let shares = state.store.shares(interview).await?;
    Ok((StatusCode::CREATED, Json(shares.into_iter().map(ShareView::from).collect())))
}

/// Who may observe this interview.
#[utoipa::path(get, path = "/interviews/{id}/shares", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    responses(
        (status = 200, description = "The coaches", body = Vec<ShareView>),
        (status = 404, description = "No such interview of the caller", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<ShareView>>, ApiError> {
    let interview = owned(&state, &user, &id, "interview.shares.read").await?;
    Ok(Json(state.store.shares(interview).await?.into_iter().map(ShareView::from).collect()))
}

/// Stop sharing with one coach.
#[utoipa::path(delete, path = "/interviews/{id}/shares/{observer_id}", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id"), ("observer_id" = String, Path, description = "Coach's user id")),
    responses(
        (status = 204, description = "No longer shared"),
        (status = 404, description = "No such interview of the caller, or not shared with that user", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, observer)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let interview = owned(&state, &user, &id, "interview.unshare").await?;
    let observer: UserId = observer.parse().map_err(|_| ApiError::not_found("share"))?;
    if state.store.delete_share(interview, observer).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("share"))
    }
}
