//! `/admin`: users (list, change role and interview quota) and the audit log, for admins only. Every call is
//! audited, refused ones too. Exporting and erasing any user live with the candidate's own (`account`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{FieldError, Role, UserId};
use crate::error::{ApiError, ErrorBody};
use crate::store::{Outcome, UserRecord};

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use super::views::rfc3339;

const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 50;

/// Refuses (403 `forbidden`) a caller who is not an admin; audits the attempt as `action` on `target`.
pub async fn require_admin(state: &AppState, user: &AuthUser, action: &str, target: Option<&str>) -> Result<(), ApiError> {
    let admin = user.role == Role::Admin;
    let outcome = if admin { Outcome::Success } else { Outcome::Denied };
    state.store.audit(Some(&user.id.to_string()), action, target, Some(&user.ip.to_text()), outcome, None).await?;
    if admin { Ok(()) } else { Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only an admin may do this")) }
}

#[derive(Deserialize, IntoParams)]
pub struct AdminPage {
    /// 1-100, default 50.
    limit: Option<u32>,
    /// Items to skip, default 0.
    offset: Option<u64>,
    /// The audit log only: one action, e.g. `auth.login`.
    action: Option<String>,
}

impl AdminPage {
    fn limits(&self) -> Result<(u32, u64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::validation(vec![FieldError::new("limit", format!("must be between 1 and {MAX_PAGE}"))]));
        }
        Ok((limit, self.offset.unwrap_or(0)))
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserView {
    id: String,
    email: String,
    name: String,
    role: Role,
    /// Interviews this user may create; `null`: the configured default.
    interview_quota: Option<i64>,
    created_at: String,
}

impl From<UserRecord> for AdminUserView {
    fn from(u: UserRecord) -> Self {
        Self { id: u.id.to_string(), email: u.email, name: u.name, role: u.role, interview_quota: u.interview_quota, created_at: rfc3339(u.created_at) }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserPage {
    items: Vec<AdminUserView>,
    total: i64,
    /// `null` on the last page.
    next_offset: Option<u64>,
}

/// Every user, oldest account first.
#[utoipa::path(get, path = "/admin/users", tag = "profile", security(("bearer" = [])), params(AdminPage),
    responses(
        (status = 200, description = "One page of users", body = AdminUserPage),
        (status = 403, description = "Not an admin (`forbidden`)", body = ErrorBody),
    ))]
pub async fn users(State(state): State<AppState>, user: AuthUser, ApiQuery(page): ApiQuery<AdminPage>) -> Result<Json<AdminUserPage>, ApiError> {
    require_admin(&state, &user, "admin.users.list", None).await?;
    let (limit, offset) = page.limits()?;
    let (items, total) = state.store.list_users(limit, offset).await?;
    let next = offset + items.len() as u64;
    Ok(Json(AdminUserPage {
        next_offset: (next < u64::try_from(total).unwrap_or_default()).then_some(next),
        items: items.into_iter().map(AdminUserView::from).collect(),
        total,
    }))
}

/// Fields left out stay as they are; `interview_quota: null` returns the user to the configured default.
#[derive(Deserialize, ToSchema)]
pub struct UserChange {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default, deserialize_with = "super::me::present")]
    #[schema(value_type = Option<u32>)]
    interview_quota: Option<Option<u32>>,
}

/// Change a user's role or interview quota.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "profile", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = UserChange,
    responses(
        (status = 200, description = "The user as changed", body = AdminUserView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<Json<AdminUserView>, ApiError> {
    require_admin(&state, &user, "admin.user.update", Some(&id)).await?;
    let target: UserId = id.parse().map_err(|_| ApiError::not_found("user"))?;
    state.store.user(target).await?.ok_or_else(|| ApiError::not_found("user"))?;
    if let Some(role) = change.role {
        state.store.set_role(target, role).await?;
    }
    if let Some(quota) = change.interview_quota {
        state.store.set_interview_quota(target, quota).await?;
    }
    Ok(Json(state.store.user(target).await?.ok_or_else(|| ApiError::not_found("user"))?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    at: String,
    actor_user_id: Option<String>,
    action: String,
    target: Option<String>,
    ip: Option<String>,
    /// success, failure or denied.
    outcome: String,
    detail: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/audit", tag = "profile", security(("bearer" = [])), params(AdminPage),
    responses(
        (status = 200, description = "One page of audit entries", body = Vec<AuditView>),
        (status = 403, description = "Not an admin (`forbidden`)", body = ErrorBody),
    ))]
pub async fn audit(State(state): State<AppState>, user: AuthUser, ApiQuery(page): ApiQuery<AdminPage>) -> Result<Json<Vec<AuditView>>, ApiError> {
    require_admin(&state, &user, "admin.audit.read", None).await?;
    let (limit, offset) = page.limits()?;
    let entries = state.store.audit_page(limit, offset, page.action.as_deref()).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|a| AuditView { at: rfc3339(a.at), actor_user_id: a.actor_user_id, action: a.action, target: a.target, ip: a.ip, outcome: a.outcome, detail: a.detail })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct NodesView {
    /// The node that answered.
    this_node: String,
    /// Whether nodes share a Redis; without it the list is empty and each node works alone.
    shared: bool,
    /// The registered nodes (each renews its entry every `CANDOR_CLUSTER_HEARTBEAT_SECS`; one silent three times
    /// as long has dropped out).
    nodes: Vec<crate::live::NodeEntry>,
}

/// The media nodes in the Redis registry.
#[utoipa::path(get, path = "/admin/nodes", tag = "profile", security(("bearer" = [])),
    responses(
        (status = 200, description = "The registry", body = NodesView),
        (status = 403, description = "Not an admin (`forbidden`)", body = ErrorBody),
    ))]
pub async fn nodes(State(state): State<AppState>, user: AuthUser) -> Result<Json<NodesView>, ApiError> {
    require_admin(&state, &user, "admin.nodes.read", None).await?;
    let (nodes, this_node) = state.live.nodes().await;
    Ok(Json(NodesView { this_node, shared: state.redis.is_some(), nodes }))
}
