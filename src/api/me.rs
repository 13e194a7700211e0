//! `/me`: the signed-in user's profile.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::domain::{ExperienceLevel, FieldErrors, JobRole, PersonName};
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
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`, via `default`).
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Update name, target role or experience level.
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
    errors.finish().map_err(ApiError::validation)?;
    let record = state.store.update_profile(user.id, change).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(record.into()))
}
