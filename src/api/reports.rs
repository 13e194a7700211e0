//! Reports: an interview's report document, its charts (SVG), ticking its learning path's steps, and the
//! progress chart across a candidate's interviews. Scoped to the caller like every interview route.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use candor_interviewer::report::{self, PastScores, Report};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::InterviewId;
use crate::error::{ApiError, ErrorBody};
use crate::store::{Outcome, PastReport};

use super::AppState;
use super::charts::{self, ReportChart};
use super::extract::{ApiJson, ApiPath, AuthUser};

/// Interviews the progress chart covers, the newest.
const PROGRESS_INTERVIEWS: i64 = 30;

/// The interview's report: scores per dimension, round and question with reasons and evidence, the coverage
/// ledger, delivery and presence (apart from the scores, each with a timeline), strengths, improvements, the
/// learning path (each step with `done`: ticked by the candidate) and progress against earlier interviews.
/// 404 until the interview has ended with one.
#[utoipa::path(get, path = "/interviews/{id}/report", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    responses(
        (status = 200, description = "The report (a JSON document)", body = Object),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller, or no report yet", body = ErrorBody),
    ))]
pub async fn report(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let (document, ticked) = stored_report(&state, &user, &id, "interview.report").await?;
    let mut report: serde_json::Value = parse(&document, &id)?;
    let ticked: Vec<String> = serde_json::from_str(&ticked).unwrap_or_default();
    if let Some(steps) = report["learning_path"].as_array_mut() {
        for step in steps {
            let done = step["competency"].as_str().is_some_and(|c| ticked.iter().any(|t| t == c));
            step["done"] = done.into();
        }
    }
    Ok(Json(report))
}

/// One chart of the report as SVG: `scores` (content scores per dimension), `delivery` (pace, fillers and long
/// pauses answer by answer), `presence` (face in view and eye contact over time) or `progress` (the candidate's
/// scores across their interviews up to this one). 404 when the report has no data for it (no spoken answers,
/// no camera analysis, a first interview).
#[utoipa::path(get, path = "/interviews/{id}/report/charts/{chart}", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id"), ("chart" = String, Path, description = "scores, delivery, presence or progress")),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller, no report yet, no such chart or no data for it", body = ErrorBody),
    ))]
pub async fn report_chart(State(state): State<AppState>, user: AuthUser, ApiPath((id, chart)): ApiPath<(String, String)>) -> Result<Response, ApiError> {
    let chart = ReportChart::parse(&chart).ok_or_else(|| ApiError::not_found("chart"))?;
    let (document, _) = stored_report(&state, &user, &id, "interview.report_chart").await?;
    let report: Report = parse(&document, &id)?;
    let history = if chart == ReportChart::Progress { history_until(&state, &id).await? } else { Vec::new() };
    svg(chart.draw(&report, &history))
}

/// The scores of the interview's candidate across their reports up to this interview's, oldest first.
async fn history_until(state: &AppState, id: &str) -> Result<Vec<PastScores>, ApiError> {
    let interview = id.parse::<InterviewId>().map_err(|_| ApiError::not_found("report"))?;
    let record = state.store.interview(interview).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok(scores_of(state.store.past_reports(record.user_id, None, PROGRESS_INTERVIEWS).await?.into_iter().skip_while(|(other, _, _)| other != id)))
}

/// Past scores from stored reports given newest first, oldest first.
fn scores_of(reports: impl Iterator<Item = PastReport>) -> Vec<PastScores> {
    let mut history: Vec<PastScores> =
        reports.filter_map(|(id, ended_at, document)| Some(report::past_scores(&id, ended_at, &serde_json::from_str(&document).ok()?))).collect();
    history.reverse();
    history
}

#[derive(Deserialize, ToSchema)]
pub struct StepTick {
    done: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TickedSteps {
    /// The competencies of the learning path's ticked steps.
    done: Vec<String>,
}

/// Tick (or untick) a step of the interview's learning path, named by its `competency`.
#[utoipa::path(put, path = "/interviews/{id}/report/learning-path/{step}", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id"), ("step" = String, Path, description = "The step's competency")),
    request_body = StepTick,
    responses(
        (status = 200, description = "The ticked steps", body = TickedSteps),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller, no report yet, or no such step", body = ErrorBody),
    ))]
pub async fn tick_step(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, step)): ApiPath<(String, String)>,
    ApiJson(tick): ApiJson<StepTick>,
) -> Result<Json<TickedSteps>, ApiError> {
    let (document, _) = stored_report(&state, &user, &id, "interview.learning_step").await?;
    let report: Report = parse(&document, &id)?;
    if !report.learning_path.iter().any(|s| s.competency == step) {
        return Err(ApiError::not_found("step"));
    }
    let interview: InterviewId = id.parse().map_err(|_| ApiError::not_found("report"))?;
    let done = state.store.tick_learning_step(user.id, interview, &step, tick.done).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok(Json(TickedSteps { done }))
}

/// The overall score and each content dimension across the caller's interviews with a report (the last 30),
/// as an SVG line chart. 404 before two reports.
#[utoipa::path(get, path = "/me/progress/chart", tag = "profile", security(("bearer" = [])),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Fewer than two reports", body = ErrorBody),
    ))]
pub async fn progress_chart(State(state): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    let history = scores_of(state.store.past_reports(user.id, None, PROGRESS_INTERVIEWS).await?.into_iter());
    svg(charts::progress(&history))
}

/// The report document of interview `id` as the caller may read it (theirs, or shared with them as a coach) and
/// its ticked steps, audited as `action`.
async fn stored_report(state: &AppState, user: &AuthUser, id: &str, action: &str) -> Result<(String, String), ApiError> {
    let stored = match id.parse::<InterviewId>() {
        Ok(interview) => state.store.report_of(user.id, interview).await?,
        Err(_) => None,
    };
    let outcome = if stored.is_some() { Outcome::Success } else { Outcome::Denied };
    state.store.audit(Some(&user.id.to_string()), action, Some(id), Some(&user.ip.to_text()), outcome, None).await?;
    stored.ok_or_else(|| ApiError::not_found("report"))
}

fn parse<T: serde::de::DeserializeOwned>(document: &str, id: &str) -> Result<T, ApiError> {
    serde_json::from_str(document).map_err(|e| {
        tracing::error!(error = %e, interview = id, "stored report is not readable");
        ApiError::internal()
    })
}

fn svg(chart: Result<Option<String>, charts::ChartError>) -> Result<Response, ApiError> {
    match chart {
        Ok(Some(svg)) => Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, no-cache")], svg).into_response()),
        Ok(None) => Err(ApiError::not_found("chart data")),
        Err(e) => {
            tracing::error!(error = %e, "chart not drawn");
            Err(ApiError::internal())
        }
    }
}
