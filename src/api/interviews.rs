//! `/interviews`: create, history, one interview with everything recorded, abandon, and round
//! suggestions. Every access is scoped to the caller and audited; another user's interview answers 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{ExperienceLevel, FieldError, FieldErrors, InterviewId, InterviewType, JobDescription, JobRole};
use crate::error::{ApiError, ErrorBody};
use candor_interviewer::plan::{RoleFamily, role_family, suggest_rounds};
use crate::store::{NewInterview, NewRound, Outcome};

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use super::views::{InterviewDetail, InterviewPageView, InterviewView, RoundView, TurnView};

/// Questions per interview: enough for a real loop, few enough to finish in about an hour.
const MAX_QUESTIONS: u32 = 20;
const DEFAULT_QUESTIONS: u32 = 5;
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

#[derive(Deserialize, ToSchema)]
pub struct CreateInterview {
    /// The job practised for, e.g. "Backend engineer".
    #[serde(default)]
    role: String,
    interview_type: InterviewType,
    experience_level: ExperienceLevel,
    /// 1-20, default 5.
    #[serde(default)]
    question_count: Option<u32>,
    /// Optional job posting (at most 20,000 characters) that steers the questions.
    #[serde(default)]
    job_description: Option<String>,
    /// Record the session's audio and video (encrypted at rest, deleted after the retention period). Default
    /// off: then only the transcript and derived measurements are kept.
    #[serde(default)]
    recording_consent: bool,
    /// Allow this interview, anonymised, into training-data exports for a specialised interviewer model.
    /// Default off; can change at any time.
    #[serde(default)]
    dataset_consent: bool,
}

/// Plan a new interview.
#[utoipa::path(post, path = "/interviews", tag = "interviews", security(("bearer" = [])), request_body = CreateInterview,
    responses(
        (status = 201, description = "Created, with its planned rounds", body = InterviewDetail),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Interview quota used up (`quota_exceeded`)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateInterview>,
) -> Result<(StatusCode, Json<InterviewDetail>), ApiError> {
    let mut errors = FieldErrors::default();
    let role = errors.check(JobRole::parse(&body.role));
    let job_description = body.job_description.as_deref().and_then(|text| errors.check(JobDescription::parse(text)));
    let question_count = body.question_count.unwrap_or(DEFAULT_QUESTIONS);
    if !(1..=MAX_QUESTIONS).contains(&question_count) {
        errors.push(FieldError::new("question_count", format!("must be between 1 and {MAX_QUESTIONS}")));
    }
    errors.finish().map_err(ApiError::validation)?;
    let Some(role) = role else { unreachable!("finish() returned Ok, so the role parsed") };

    let caller = user.id.to_string();
    let ip = user.ip.to_text();
    let account = state
        .store
        .user(user.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "the account no longer exists"))?;
    let quota = account.interview_quota.or(state.config.interview_quota.map(i64::from));
    if let Some(quota) = quota
        && state.store.count_interviews(user.id).await? >= quota
    {
        state
            .store
            .audit(Some(&caller), "interview.create", None, Some(&ip), Outcome::Denied, Some("quota_exceeded"))
            .await?;
        return Err(ApiError::forbidden("quota_exceeded", format!("your quota of {quota} interviews is used up")));
    }

    let rounds: Vec<NewRound> = suggest_rounds(role.as_ref(), body.interview_type.into(), body.experience_level.into())
        .into_iter()
        .map(|r| NewRound { kind: r.kind.to_string(), title: r.title.to_string() })
        .collect();
    let interview = state
        .store
        .insert_interview(NewInterview {
            user_id: user.id,
            role: &role,
            interview_type: body.interview_type,
            experience_level: body.experience_level,
            question_count,
            job_description: job_description.as_ref(),
            rounds: &rounds,
            recording_consent: body.recording_consent,
            dataset_consent: body.dataset_consent,
        })
        .await?;
    let id = interview.id.to_string();
    state.store.audit(Some(&caller), "interview.create", Some(&id), Some(&ip), Outcome::Success, None).await?;
    let recording = consent_detail("recording", body.recording_consent);
    state.store.audit(Some(&caller), "interview.recording_consent", Some(&id), Some(&ip), Outcome::Success, Some(&recording)).await?;
    let dataset = consent_detail("dataset", body.dataset_consent);
    state.store.audit(Some(&caller), "interview.dataset_consent", Some(&id), Some(&ip), Outcome::Success, Some(&dataset)).await?;
    Ok((StatusCode::CREATED, Json(detail(&state, interview).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1-100, default 20.
    limit: Option<u32>,
    /// Items to skip, default 0.
    offset: Option<u64>,
}

/// The caller's interviews, newest first.
#[utoipa::path(get, path = "/interviews", tag = "interviews", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page of history", body = InterviewPageView),
        (status = 400, description = "Invalid paging", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<InterviewPageView>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new("limit", format!("must be between 1 and {MAX_PAGE}"))]));
    }
    let offset = query.offset.unwrap_or(0);
    let page = state.store.list_interviews(user.id, limit, offset).await?;
    let caller = user.id.to_string();
    state.store.audit(Some(&caller), "interview.list", None, Some(&user.ip.to_text()), Outcome::Success, None).await?;
    let next = offset + page.items.len() as u64;
    Ok(Json(InterviewPageView {
        next_offset: (next < u64::try_from(page.total).unwrap_or_default()).then_some(next),
        items: page.items.into_iter().map(InterviewView::from).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// One interview with its rounds, questions and turns as recorded so far.
#[utoipa::path(get, path = "/interviews/{id}", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    responses(
        (status = 200, description = "The interview", body = InterviewDetail),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InterviewDetail>, ApiError> {
    let interview = match id.parse::<InterviewId>() {
        Ok(id) => state.store.interview_of(user.id, id).await?,
        Err(_) => None,
    };
    let caller = user.id.to_string();
    let ip = user.ip.to_text();
    let Some(interview) = interview else {
        state
            .store
            .audit(Some(&caller), "interview.read", Some(&id), Some(&ip), Outcome::Denied, Some("not_found"))
            .await?;
        return Err(ApiError::not_found("interview"));
    };
    state.store.audit(Some(&caller), "interview.read", Some(&id), Some(&ip), Outcome::Success, None).await?;
    Ok(Json(detail(&state, interview).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInterview {
    /// Record the session's audio; can change only before the interview starts.
    #[serde(default)]
    recording_consent: Option<bool>,
    /// Allow the interview, anonymised, into training-data exports; can change at any time.
    #[serde(default)]
    dataset_consent: Option<bool>,
}

fn consent_detail(what: &str, consent: bool) -> String {
    format!("{what}_{}", if consent { "on" } else { "off" })
}

/// Change an interview's consents: recording (before it starts) and training-data use (any time).
#[utoipa::path(patch, path = "/interviews/{id}", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")), request_body = UpdateInterview,
    responses(
        (status = 200, description = "Updated", body = InterviewView),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller", body = ErrorBody),
        (status = 409, description = "The recording choice after the interview started (`interview_started`)", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateInterview>,
) -> Result<Json<InterviewView>, ApiError> {
    let caller = user.id.to_string();
    let ip = user.ip.to_text();
    let audit = |action, outcome, detail: Option<String>| {
        let (caller, ip, id) = (caller.clone(), ip.clone(), id.clone());
        let store = state.store.clone();
        async move { store.audit(Some(&caller), action, Some(&id), Some(&ip), outcome, detail.as_deref()).await }
    };
    let parsed = id.parse::<InterviewId>().ok();
    let mut interview = match parsed {
        Some(parsed) => state.store.interview_of(user.id, parsed).await?,
        None => None,
    };
    let Some(parsed) = parsed.filter(|_| interview.is_some()) else {
        audit("interview.update", Outcome::Denied, Some("not_found".into())).await?;
        return Err(ApiError::not_found("interview"));
    };
    // The recording choice as it already is is no change (a client may send its whole form).
    let recorded = interview.as_ref().is_some_and(|i| i.recording_consent_at.is_some());
    if let Some(consent) = body.recording_consent.filter(|c| *c != recorded) {
        match state.store.set_recording_consent(user.id, parsed, consent).await? {
            Some(Ok(changed)) => {
                audit("interview.recording_consent", Outcome::Success, Some(consent_detail("recording", consent))).await?;
                interview = Some(changed);
            }
            Some(Err(status)) => {
                audit("interview.recording_consent", Outcome::Failure, Some("interview_started".into())).await?;
                return Err(ApiError::conflict("interview_started", format!("the interview is {status}; recording is chosen before it starts")));
            }
            None => return Err(ApiError::not_found("interview")),
        }
    }
    if let Some(consent) = body.dataset_consent {
        interview = state.store.set_dataset_consent(user.id, parsed, consent).await?;
        audit("interview.dataset_consent", Outcome::Success, Some(consent_detail("dataset", consent))).await?;
    }
    interview.map(|i| Json(i.into())).ok_or_else(|| ApiError::not_found("interview"))
}

/// End an interview without a report; a live session of it ends too.
#[utoipa::path(post, path = "/interviews/{id}/abandon", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    responses(
        (status = 200, description = "Abandoned", body = InterviewView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller", body = ErrorBody),
        (status = 409, description = "Already completed or abandoned (`interview_ended`)", body = ErrorBody),
    ))]
pub async fn abandon(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InterviewView>, ApiError> {
    let result = match id.parse::<InterviewId>() {
        Ok(id) => state.store.abandon_interview(user.id, id).await?,
        Err(_) => None,
    };
    let caller = user.id.to_string();
    let ip = user.ip.to_text();
    let audit =
        |outcome, detail| state.store.audit(Some(&caller), "interview.abandon", Some(&id), Some(&ip), outcome, detail);
    match result {
        None => {
            audit(Outcome::Denied, Some("not_found")).await?;
            Err(ApiError::not_found("interview"))
        }
        Some(Err(status)) => {
            audit(Outcome::Failure, Some("already_ended")).await?;
            Err(ApiError::conflict("interview_ended", format!("the interview is already {status}")))
        }
        Some(Ok(interview)) => {
            audit(Outcome::Success, None).await?;
            if let Some(session) = state.live.session(interview.id) {
                session.end(crate::live::ABANDONED).await;
            }
            Ok(Json(interview.into()))
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct SuggestionQuery {
    /// The job role, e.g. "Data analyst".
    role: String,
    /// Default `mixed`.
    interview_type: Option<InterviewType>,
    /// Default `mid`.
    experience_level: Option<ExperienceLevel>,
}

#[derive(Serialize, ToSchema)]
pub struct RoundSuggestions {
    /// software, data, product, design, management, commercial or general.
    #[schema(value_type = String)]
    role_family: RoleFamily,
    rounds: Vec<RoundSuggestionView>,
}

/// One suggested round.
#[derive(Serialize, ToSchema)]
pub struct RoundSuggestionView {
    /// behavioral, coding, system_design, technical, case, portfolio, leadership or hr.
    kind: &'static str,
    title: &'static str,
    /// What the round probes.
    focus: &'static str,
    /// Typical length in a real interview loop.
    minutes: u32,
}

/// Suggested rounds for a role, as a new interview would plan them.
#[utoipa::path(get, path = "/interviews/suggestions", tag = "interviews", security(("bearer" = [])),
    params(SuggestionQuery),
    responses(
        (status = 200, description = "Suggested rounds", body = RoundSuggestions),
        (status = 400, description = "Missing or invalid role", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn suggestions(
    _user: AuthUser,
    ApiQuery(query): ApiQuery<SuggestionQuery>,
) -> Result<Json<RoundSuggestions>, ApiError> {
    let role = JobRole::parse(&query.role).map_err(|e| ApiError::validation(vec![e]))?;
    let rounds = suggest_rounds(
        role.as_ref(),
        query.interview_type.unwrap_or(InterviewType::Mixed).into(),
        query.experience_level.unwrap_or(ExperienceLevel::Mid).into(),
    )
    .into_iter()
    .map(|r| RoundSuggestionView { kind: r.kind, title: r.title, focus: r.focus, minutes: r.minutes })
    .collect();
    Ok(Json(RoundSuggestions { role_family: role_family(role.as_ref()), rounds }))
}

pub async fn detail(state: &AppState, interview: crate::store::InterviewRecord) -> Result<InterviewDetail, ApiError> {
    let rounds = state.store.rounds(interview.id).await?;
    let questions = state.store.questions(interview.id).await?;
    let turns = state.store.turns(interview.id).await?;
    Ok(InterviewDetail {
        rounds: rounds.into_iter().map(|r| RoundView::new(r, &questions)).collect(),
        turns: turns.into_iter().map(TurnView::from).collect(),
        interview: interview.into(),
    })
}
