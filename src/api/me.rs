//! `/me`: the signed-in user's profile.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::domain::{ExperienceLevel, FieldError, FieldErrors, JobRole, PersonName};
use crate::error::{ApiError, ErrorBody};
use crate::store::ProfileChange;

use super::AppState;
use super::extract::{ApiJson, AuthUser};
use super::views::UserView;

/// Read the profile.
#[utoipa::path(get, path = "/me", tag = "profile", security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = UserView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn get_profile(State(state): State<AppState>, user: AuthUser) -> Result<Json<UserView>, ApiError> {
    let record = state.store.user(user.id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(record.into()))
}

/// Fields left out stay as they are; `null` clears `target_role` or `experience_level`.
#[derive(Deserialize, ToSchema)]
pub struct ProfileUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    target_role: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ExperienceLevel>)]
    experience_level: Option<Option<ExperienceLevel>>,
    /// Days to keep recordings of your interviews (1-365); `null`: the server's default. Applies to
    /// recordings made from now on.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    recording_retention_days: Option<Option<u32>>,
}

/// A user's recordings are kept at most a year.
const MAX_RETENTION_DAYS: u32 = 365;

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`, via `default`).
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Update name, target role, experience level or recording retention.
#[utoipa::path(patch, path = "/me", tag = "profile", security(("bearer" = [])), request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The updated profile", body = UserView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> Result<Json<UserView>, ApiError> {
    let mut errors = FieldErrors::default();
    let change = ProfileChange {
        name: body.name.and_then(|n| errors.check(PersonName::parse(&n))),
        target_role: match body.target_role {
            Some(Some(role)) => errors.check(JobRole::parse(&role)).map(|r| Some(Some(r))).unwrap_or(None),
            Some(None) => Some(None),
            None => None,
        },
        experience_level: body.experience_level,
    };
    if let Some(Some(days)) = body.recording_retention_days
        && !(1..=MAX_RETENTION_DAYS).contains(&days)
    {
        errors.push(FieldError::new("recording_retention_days", format!("must be between 1 and {MAX_RETENTION_DAYS}")));
    }
    errors.finish().map_err(ApiError::validation)?;
    if let Some(days) = body.recording_retention_days {
        state.store.set_recording_retention_days(user.id, days.map(i64::from)).await?;
    }
    let record = state.store.update_profile(user.id, change).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(record.into()))
}
