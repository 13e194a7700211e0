//! The candidate's account as theirs: a new password (`PUT /me/password`), everything about them as one download
//! (`GET /me/export`), and erasure of the account with everything in it (`DELETE /me`, confirmed with the
//! password). An admin can export and erase any user.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::verify_password;
use crate::domain::{Password, UserId};
use crate::error::{ApiError, ErrorBody};
use crate::store::{InterviewRecord, Outcome, RecordingRecord};

use super::AppState;
use super::admin::require_admin;
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use super::interviews::detail;
use super::auth::{issue_pair, password_hash};
use super::views::{TokenPair, UserView, rfc3339};

/// Interviews read per page while exporting.
const PAGE: u32 = 100;

#[derive(Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `true`: one tar archive holding the JSON document (`export.json`) and every recording, decrypted.
    #[serde(default)]
    archive: bool,
}

/// Download everything about the signed-in user: the profile, every interview with its rounds, questions,
/// turns, recordings (listed) and report (with the learning path's ticks), and the audit log of their own
/// actions, as one JSON document; with `archive=true`, a tar archive of that document and the recordings.
#[utoipa::path(get, path = "/me/export", tag = "profile", security(("bearer" = [])), params(ExportQuery),
    responses(
        (status = 200, description = "The export (a JSON document or a tar archive, served as an attachment)", body = Object),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn export_me(State(state): State<AppState>, user: AuthUser, ApiQuery(query): ApiQuery<ExportQuery>) -> Result<Response, ApiError> {
    audited(&state, &user, "account.export", user.id, true).await?;
    export(&state, user.id, query.archive).await
}

/// An admin exports any user's data.
#[utoipa::path(get, path = "/admin/users/{id}/export", tag = "profile", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"), ExportQuery),
    responses(
        (status = 200, description = "The export", body = Object),
        (status = 403, description = "Not an admin (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn export_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let target = admin_target(&state, &user, &id, "admin.user.export").await?;
    export(&state, target, query.archive).await
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    #[serde(default)]
    current_password: String,
    /// At least 10 characters.
    #[serde(default)]
    new_password: String,
}

/// Change the password, confirmed with the current one. Every other login of the account is signed out; the
/// answer is a fresh token pair for this one.
#[utoipa::path(put, path = "/me/password", tag = "profile", security(("bearer" = [])), request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; this client's new tokens", body = TokenPair),
        (status = 400, description = "The new password breaks the rules (`validation_failed`)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Wrong current password (`invalid_password`)", body = ErrorBody),
    ))]
pub async fn change_password(State(state): State<AppState>, user: AuthUser, ApiJson(body): ApiJson<PasswordChange>) -> Result<Json<TokenPair>, ApiError> {
    let new = Password::parse(SecretString::from(body.new_password)).map_err(|mut e| {
        e.field = "new_password";
        ApiError::validation(vec![e])
    })?;
    let account = state.store.user(user.id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let confirmed = verify_password(body.current_password, Some(account.password_hash)).await;
    audited(&state, &user, "account.password", user.id, confirmed).await?;
    if !confirmed {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "invalid_password", "the current password does not match; nothing changed"));
    }
    state.store.change_password(user.id, &password_hash(&new).await?).await?;
    Ok(Json(issue_pair(&state, user.id, account.role, None).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct Erasure {
    /// The account's password, to confirm.
    password: String,
}

/// Delete the signed-in user's account and everything in it: interviews with all they recorded, reports,
/// learning paths, shares, invitations and tokens. A live session ends first. Audit rows stay without the
/// personal data in them.
#[utoipa::path(delete, path = "/me", tag = "profile", security(("bearer" = [])), request_body = Erasure,
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Wrong password (`invalid_password`)", body = ErrorBody),
    ))]
pub async fn erase_me(State(state): State<AppState>, user: AuthUser, ApiJson(body): ApiJson<Erasure>) -> Result<StatusCode, ApiError> {
    let account = state.store.user(user.id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let confirmed = verify_password(body.password, Some(account.password_hash)).await;
    audited(&state, &user, "account.erase", user.id, confirmed).await?;
    if !confirmed {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "invalid_password", "the password does not match; nothing was deleted"));
    }
    erase(&state, user.id).await
}

/// An admin erases any user.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "profile", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Erased"),
        (status = 403, description = "Not an admin (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn erase_user(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let target = admin_target(&state, &user, &id, "admin.user.erase").await?;
    erase(&state, target).await
}

async fn audited(state: &AppState, user: &AuthUser, action: &str, target: UserId, allowed: bool) -> Result<(), ApiError> {
    let outcome = if allowed { Outcome::Success } else { Outcome::Denied };
    let (caller, target) = (user.id.to_string(), target.to_string());
    state.store.audit(Some(&caller), action, Some(&target), Some(&user.ip.to_text()), outcome, None).await?;
    Ok(())
}

/// The user an admin route names: 403 for a non-admin, 404 for no such user; audited either way.
async fn admin_target(state: &AppState, user: &AuthUser, id: &str, action: &str) -> Result<UserId, ApiError> {
    require_admin(state, user, action, Some(id)).await?;
    let target: UserId = id.parse().map_err(|_| ApiError::not_found("user"))?;
    state.store.user(target).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(target)
}

/// Every interview of a user, a page at a time.
async fn all_interviews(state: &AppState, id: UserId) -> Result<Vec<InterviewRecord>, ApiError> {
    let mut all = Vec::new();
    loop {
        let page = state.store.list_interviews(id, PAGE, all.len() as u64).await?;
        let done = page.items.len() < PAGE as usize;
        all.extend(page.items);
        if done {
            return Ok(all);
        }
    }
}

async fn export(state: &AppState, id: UserId, archive: bool) -> Result<Response, ApiError> {
    let user = state.store.user(id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let mut interviews = Vec::new();
    for record in all_interviews(state, id).await? {
        let report = state.store.report_of(id, record.id).await?;
        let recordings = state.store.recordings(record.id).await?;
        let mut entry = serde_json::to_value(detail(state, record).await?).unwrap_or(Value::Null);
        entry["recordings"] = recordings
            .iter()
            .map(|r| json!({"id": r.id, "source": r.source, "media_type": r.media_type, "offset_ms": r.offset_ms,
                "duration_ms": r.duration_ms, "created_at": rfc3339(r.created_at), "expires_at": rfc3339(r.expires_at),
                "file": archived_name(r)}))
            .collect();
        entry["report"] = report.as_ref().and_then(|(document, _)| serde_json::from_str(document).ok()).unwrap_or(Value::Null);
        entry["learning_path_done"] = report.and_then(|(_, ticked)| serde_json::from_str(&ticked).ok()).unwrap_or(json!([]));
        interviews.push(entry);
    }
    let audit: Vec<Value> = state
        .store
        .audit_of(id)
        .await?
        .into_iter()
        .map(|a| json!({"at": rfc3339(a.at), "action": a.action, "target": a.target, "ip": a.ip, "outcome": a.outcome}))
        .collect();
    let document = json!({
        "format": "candor-export/1",
        "exported_at": rfc3339(crate::store::now_ms()),
        "user": UserView::from(user),
        "interviews": interviews,
        "audit": audit,
    });
    if !archive {
        let file = format!("attachment; filename=\"candor-export-{id}.json\"");
        return Ok(([(header::CONTENT_DISPOSITION, file)], Json(document)).into_response());
    }
    let rows = state.store.recordings_of_user(id).await?;
    let recordings = state.recordings.clone();
    let tar = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_mtime(u64::try_from(crate::store::now_ms() / 1000).unwrap_or_default());
            tar.append_data(&mut header, name, data).map_err(|e| e.to_string())
        };
        add("export.json", &serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?)?;
        for row in &rows {
            let data = recordings.open(row).and_then(|mut r| Ok(r.read_range(0, u64::MAX)?)).map_err(|e| format!("recording {}: {e}", row.id))?;
            add(&archived_name(row), &data)?;
        }
        tar.into_inner().map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| {
        tracing::error!(user = %id, error = e, "export archive not built");
        ApiError::internal()
    })?;
    let file = format!("attachment; filename=\"candor-export-{id}.tar\"");
    Ok(([(header::CONTENT_TYPE, "application/x-tar".to_string()), (header::CONTENT_DISPOSITION, file)], tar).into_response())
}

/// Where a recording lies in the export archive.
fn archived_name(row: &RecordingRecord) -> String {
    let extension = match row.media_type.as_str() {
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        _ => "ogg",
    };
    format!("recordings/{}/{}-{}-{}.{extension}", row.interview_id, row.source, row.kind, row.id)
}

async fn erase(state: &AppState, id: UserId) -> Result<StatusCode, ApiError> {
    for record in all_interviews(state, id).await? {
        if let Some(session) = state.live.session(record.id) {
            session.end("account_erased").await;
        }
    }
    // The files first: once the rows are gone nothing would point at them.
    let files = state.recordings.erase_user(id).await.map_err(|e| {
        tracing::error!(user = %id, error = %e, "recordings not erased; the account stays");
        ApiError::internal()
    })?;
    if !state.store.erase_user(id).await? {
        return Err(ApiError::not_found("user"));
    }
    tracing::info!(user = %id, recordings = files, "account erased");
    Ok(StatusCode::NO_CONTENT)
}
