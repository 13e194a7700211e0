//! Coach invitations: the candidate invites a coach by email (`POST /interviews/{id}/invitations`), the link's
//! secret token shows the invitation to anyone holding it (`GET /invitations/{token}`), and the invited person,
//! signed in with the invited email (a new account made from the link is a coach account), accepts it, which
//! shares the interview with them. `GET /shared` is the coach's list of interviews shared with them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{hash_secret, random_secret};
use crate::domain::{Email, InterviewId, Role};
use crate::error::{ApiError, ErrorBody};
use crate::store::{InvitationRecord, Outcome, now_ms};

use super::AppState;
use super::extract::{ApiJson, ApiPath, AuthUser};
use super::views::rfc3339;

#[derive(Deserialize, ToSchema)]
pub struct InvitationRequest {
    /// The coach's email.
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationCreated {
    email: String,
    /// The page the coach opens to accept (relative to the server), carrying the secret token: send it to them.
    /// It works for `CANDOR_INVITATION_TTL_SECS` (14 days by default).
    link: String,
    expires_at: String,
    /// True when the email already belongs to a coach or admin account: the interview is shared with it now.
    shared: bool,
    /// True when the server emails the link (SMTP is configured); otherwise the candidate sends it.
    emailed: bool,
}

/// Invite a coach by email to watch this interview (live, and its report). Returns the link to send.
#[utoipa::path(post, path = "/interviews/{id}/invitations", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")), request_body = InvitationRequest,
    responses(
        (status = 201, description = "The invitation and its link", body = InvitationCreated),
        (status = 400, description = "Invalid email", body = ErrorBody),
        (status = 404, description = "No such interview of the caller", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationCreated>), ApiError> {
    let interview = super::shares::owned(&state, &user, &id, "interview.invite").await?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::validation(vec![e]))?;

    let token = format!("ci_{}", random_secret(24));
    let ttl_ms = i64::try_from(state.config.invitation_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires_at = now_ms().saturating_add(ttl_ms);
    state.store.insert_invitation(interview, &email, &hash_secret(&token), expires_at).await?;
    // A coach who already has an account can watch at once; the link still works for them.
    let coach = state.store.user_by_email(&email).await?.filter(|u| matches!(u.role, Role::Coach | Role::Admin));
    if let Some(coach) = &coach {
        state.store.insert_share(interview, coach.id).await?;
    }
    let link = format!("/coach.html?invitation={token}");
    let emailed = match &state.mailer {
        Some(mailer) => match (state.store.user(user.id).await?, state.store.interview(interview).await?) {
            (Some(candidate), Some(record)) => {
                mailer.coach_invited(email.as_ref(), &candidate.name, &record.role, &link);
                true
            }
            _ => false,
        },
        None => false,
    };
    let created = InvitationCreated { email: email.as_ref().to_string(), link, expires_at: rfc3339(expires_at), shared: coach.is_some(), emailed };
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    /// The invited email: only an account with it can accept.
    email: String,
    interview_id: String,
    /// The role the candidate practises for.
    interview_role: String,
    candidate_name: String,
    expires_at: String,
    accepted: bool,
    /// Whether an account with the invited email exists (sign in to accept) or not (sign up from the link).
    account_exists: bool,
}

/// What an invitation link offers; no sign-in needed (the token is the secret).
#[utoipa::path(get, path = "/invitations/{token}", tag = "interviews",
    params(("token" = String, Path, description = "The secret token from the invitation link")),
    responses(
        (status = 200, description = "The invitation", body = InvitationView),
        (status = 404, description = "No such invitation (`invitation_not_found`)", body = ErrorBody),
        (status = 410, description = "Expired (`invitation_expired`)", body = ErrorBody),
    ))]
pub async fn show(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> Result<Json<InvitationView>, ApiError> {
    let invitation = valid(&state, &token).await?;
    let account_exists = match Email::parse(&invitation.email) {
        Ok(email) => state.store.user_by_email(&email).await?.is_some(),
        Err(_) => false,
    };
    Ok(Json(InvitationView {
        email: invitation.email,
        interview_id: invitation.interview_id,
        interview_role: invitation.interview_role,
        candidate_name: invitation.candidate_name,
        expires_at: rfc3339(invitation.expires_at),
        accepted: invitation.accepted_by.is_some(),
        account_exists,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    interview_id: String,
}

/// Accept an invitation: the interview is shared with the signed-in account, whose email must be the invited one.
#[utoipa::path(post, path = "/invitations/{token}/accept", tag = "interviews", security(("bearer" = [])),
    params(("token" = String, Path, description = "The secret token from the invitation link")),
    responses(
        (status = 200, description = "Shared with the caller (accepting twice is harmless)", body = Accepted),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Signed in with another email than the invited one (`wrong_account`)", body = ErrorBody),
        (status = 404, description = "No such invitation (`invitation_not_found`)", body = ErrorBody),
        (status = 410, description = "Expired (`invitation_expired`)", body = ErrorBody),
    ))]
pub async fn accept(State(state): State<AppState>, user: AuthUser, ApiPath(token): ApiPath<String>) -> Result<Json<Accepted>, ApiError> {
    let invitation = valid(&state, &token).await?;
    let account = state.store.user(user.id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let matches = account.email.eq_ignore_ascii_case(&invitation.email);
    let outcome = if matches { Outcome::Success } else { Outcome::Denied };
    let caller = user.id.to_string();
    state.store.audit(Some(&caller), "invitation.accept", Some(&invitation.interview_id), Some(&user.ip.to_text()), outcome, None).await?;
    if !matches {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_account", "this invitation is for another email: sign in with the invited one"));
    }
    state.store.accept_invitation(&invitation, user.id).await?;
    Ok(Json(Accepted { interview_id: invitation.interview_id }))
}

/// The invitation of `token` if it exists and has not expired.
pub async fn valid(state: &AppState, token: &str) -> Result<InvitationRecord, ApiError> {
    let invitation = state
        .store
        .invitation(&hash_secret(token))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "invitation_not_found", "no such invitation; ask for a new link"))?;
    if invitation.expires_at <= now_ms() {
        return Err(ApiError::new(StatusCode::GONE, "invitation_expired", "this invitation has expired; ask for a new link"));
    }
    Ok(invitation)
}

#[derive(Serialize, ToSchema)]
pub struct SharedView {
    interview_id: String,
    role: String,
    interview_type: String,
    status: String,
    candidate_name: String,
    created_at: String,
    /// A live session is running now: watch it.
    live: bool,
    /// The report can be read.
    report: bool,
}

/// The interviews shared with the caller (a coach's page): live ones first, then the newest.
#[utoipa::path(get, path = "/shared", tag = "interviews", security(("bearer" = [])),
    responses(
        (status = 200, description = "The interviews", body = Vec<SharedView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn shared(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<SharedView>>, ApiError> {
    let mut views: Vec<SharedView> = state
        .store
        .shared_with(user.id)
        .await?
        .into_iter()
        .map(|s| SharedView {
            live: s.id.parse::<InterviewId>().is_ok_and(|id| state.live.session(id).is_some()),
            report: s.reports > 0,
            interview_id: s.id,
            role: s.role,
            interview_type: s.interview_type,
            status: s.status,
            candidate_name: s.candidate_name,
            created_at: rfc3339(s.created_at),
        })
        .collect();
    views.sort_by_key(|v| !v.live);
    Ok(Json(views))
}
