//! Interviews and what hangs off them: rounds, questions and turns. Every read is scoped to the owner, so another
//! user's interview is indistinguishable from a missing one.

use crate::domain::{
    ExperienceLevel, InterviewId, InterviewStatus, InterviewType, JobDescription, JobRole, SampleKind, Speaker, UserId,
};

use super::{Store, StoreError, StoreResult, now_ms, parse_stored};

pub struct NewInterview<'a> {
    pub user_id: UserId,
    pub role: &'a JobRole,
    pub interview_type: InterviewType,
    pub experience_level: ExperienceLevel,
    pub question_count: u32,
    pub job_description: Option<&'a JobDescription>,
    pub rounds: &'a [NewRound],
    /// The candidate agreed to have the session's audio and video recorded.
    pub recording_consent: bool,
    /// The candidate agreed to have the interview, anonymised, in training-data exports.
    pub dataset_consent: bool,
}

#[derive(Debug, Clone)]
pub struct NewRound {
    pub kind: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct InterviewRecord {
    pub id: InterviewId,
    pub user_id: UserId,
    pub role: String,
    pub interview_type: InterviewType,
    pub experience_level: ExperienceLevel,
    pub status: InterviewStatus,
    pub question_count: i64,
    pub job_description: Option<String>,
    pub overall_score: Option<f64>,
    /// When the candidate agreed to recording; `None`: no audio or video is written.
    pub recording_consent_at: Option<i64>,
    /// When the candidate agreed to training-data use; `None`: never exported.
    pub dataset_consent_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct InterviewRow {
    id: String,
    user_id: String,
    role: String,
    interview_type: String,
    experience_level: String,
    status: String,
    question_count: i64,
    job_description: Option<String>,
    overall_score: Option<f64>,
    recording_consent_at: Option<i64>,
    dataset_consent_at: Option<i64>,
    created_at: i64,
    started_at: Option<i64>,
    ended_at: Option<i64>,
}

impl Store {
    /// A row as a record: vocabularies parsed, the job description opened.
    fn interview_record(&self, row: InterviewRow) -> StoreResult<InterviewRecord> {
        Ok(InterviewRecord {
            id: parse_stored("interviews.id", &row.id)?,
            user_id: parse_stored("interviews.user_id", &row.user_id)?,
            interview_type: parse_stored("interviews.interview_type", &row.interview_type)?,
            experience_level: parse_stored("interviews.experience_level", &row.experience_level)?,
            status: parse_stored("interviews.status", &row.status)?,
            role: row.role,
            question_count: row.question_count,
            job_description: row.job_description.map(|j| self.open(JOB_DESCRIPTION, j)).transpose()?,
            overall_score: row.overall_score,
            recording_consent_at: row.recording_consent_at,
            dataset_consent_at: row.dataset_consent_at,
            created_at: row.created_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
        })
    }
}

/// Sensitive columns, sealed when field encryption is on (the names are the associated data).
const JOB_DESCRIPTION: &str = "interviews.job_description";
const RESUME_STATE: &str = "interviews.resume_state";
const TURN_TEXT: &str = "turns.text";
const TURN_WORDS: &str = "turns.words";

/// `SELECT` list of `InterviewRow`, as a macro so queries stay `&'static str` (sqlx refuses formatted SQL).
macro_rules! select_interview {
    ($($rest:literal)+) => {
        concat!(
            "SELECT id, user_id, role, interview_type, experience_level, status, question_count, job_description, \
             overall_score, recording_consent_at, dataset_consent_at, created_at, started_at, ended_at FROM interviews ",
            $($rest),+
        )
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoundRecord {
    pub id: String,
    pub position: i64,
    pub kind: String,
    pub title: String,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuestionRecord {
    pub id: String,
    pub round_id: String,
    pub position: i64,
    pub text: String,
    pub source: String,
    pub parent_id: Option<String>,
    pub asked_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TurnRecord {
    pub id: String,
    pub question_id: Option<String>,
    pub speaker: String,
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub interrupted: i64,
    /// JSON array of `{w, start_ms, end_ms}`.
    pub words: Option<String>,
    /// The turn's delivery as JSON (pace, fillers, pauses) for the candidate's; what was said for the voice's.
    pub metrics: Option<String>,
}

/// A turn as it is written, the moment it ends.
pub struct NewTurn<'a> {
    pub id: &'a str,
    pub interview: InterviewId,
    pub question_id: Option<&'a str>,
    pub speaker: Speaker,
    pub text: &'a str,
    pub start_ms: u64,
    pub end_ms: u64,
    pub interrupted: bool,
    /// JSON array of `{w, start_ms, end_ms}`.
    pub words: &'a str,
    /// JSON object of the turn's delivery measurements.
    pub metrics: &'a str,
}

/// One page of a user's history, newest first.
pub struct InterviewPage {
    pub items: Vec<InterviewRecord>,
    pub total: i64,
}

impl Store {
    /// Creates the interview and its planned rounds in one transaction.
    pub async fn insert_interview(&self, new: NewInterview<'_>) -> StoreResult<InterviewRecord> {
        let id = InterviewId::new();
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO interviews (id, user_id, role, interview_type, experience_level, status, question_count,
                                     job_description, recording_consent_at, dataset_consent_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id.to_string())
        .bind(new.user_id.to_string())
        .bind(new.role.as_ref())
        .bind(new.interview_type.as_str())
        .bind(new.experience_level.as_str())
        .bind(InterviewStatus::Scheduled.as_str())
        .bind(i64::from(new.question_count))
        .bind(new.job_description.map(|j| self.seal(JOB_DESCRIPTION, j.as_ref())).transpose()?)
        .bind(new.recording_consent.then_some(now))
        .bind(new.dataset_consent.then_some(now))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (position, round) in (1_i64..).zip(new.rounds) {
            sqlx::query("INSERT INTO rounds (id, interview_id, position, kind, title) VALUES ($1, $2, $3, $4, $5)")
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(id.to_string())
                .bind(position)
                .bind(&round.kind)
                .bind(&round.title)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.interview_of(new.user_id, id).await?.ok_or(StoreError::Corrupt("inserted interview vanished".into()))
    }

    /// The interview if it exists and belongs to `owner`.
    pub async fn interview_of(&self, owner: UserId, id: InterviewId) -> StoreResult<Option<InterviewRecord>> {
        let row: Option<InterviewRow> = sqlx::query_as(select_interview!("WHERE id = $1 AND user_id = $2"))
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.interview_record(r)).transpose()
    }

    /// The interview whoever owns it; for authorisation checks that are not about ownership (observers).
    pub async fn interview(&self, id: InterviewId) -> StoreResult<Option<InterviewRecord>> {
        let row: Option<InterviewRow> =
            sqlx::query_as(select_interview!("WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.pool).await?;
        row.map(|r| self.interview_record(r)).transpose()
    }

    /// A live session started: a scheduled interview becomes in progress. Returns false for a finished one.
    pub async fn mark_interview_started(&self, id: InterviewId) -> StoreResult<bool> {
        let changed = sqlx::query(
            "UPDATE interviews SET status = $1, started_at = COALESCE(started_at, $2)
             WHERE id = $3 AND status IN ($4, $1)",
        )
        .bind(InterviewStatus::InProgress.as_str())
        .bind(now_ms())
        .bind(id.to_string())
        .bind(InterviewStatus::Scheduled.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Where the live interview stands (`candor_interviewer::Snapshot` as JSON), sealed; `None` clears it.
    pub async fn save_resume_state(&self, id: InterviewId, state: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE interviews SET resume_state = $1 WHERE id = $2")
            .bind(state.map(|s| self.seal(RESUME_STATE, s)).transpose()?)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stored state to resume the interview from, if any.
    pub async fn resume_state(&self, id: InterviewId) -> StoreResult<Option<String>> {
        let stored: Option<Option<String>> = sqlx::query_scalar("SELECT resume_state FROM interviews WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        stored.flatten().map(|s| self.open(RESUME_STATE, s)).transpose()
    }

    /// One per-second sample of live measurements, as compact JSON; a repeated (kind, t_ms) replaces the first.
    pub async fn insert_metric_sample(&self, id: InterviewId, kind: SampleKind, t_ms: i64, data: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO metric_samples (interview_id, kind, t_ms, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (interview_id, kind, t_ms) DO UPDATE SET data = excluded.data",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .bind(t_ms)
        .bind(data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Samples of one kind, in time order, as `(t_ms, json)`.
    pub async fn metric_samples(&self, id: InterviewId, kind: SampleKind) -> StoreResult<Vec<(i64, String)>> {
        Ok(sqlx::query_as("SELECT t_ms, data FROM metric_samples WHERE interview_id = $1 AND kind = $2 ORDER BY t_ms")
            .bind(id.to_string())
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn count_interviews(&self, owner: UserId) -> StoreResult<i64> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM interviews WHERE user_id = $1")
            .bind(owner.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    pub async fn list_interviews(&self, owner: UserId, limit: u32, offset: u64) -> StoreResult<InterviewPage> {
        let rows: Vec<InterviewRow> = sqlx::query_as(select_interview!(
            "WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(owner.to_string())
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let items = rows.into_iter().map(|r| self.interview_record(r)).collect::<StoreResult<_>>()?;
        Ok(InterviewPage { items, total: self.count_interviews(owner).await? })
    }

    /// Marks a scheduled or running interview abandoned. `Ok(None)`: no such interview of this owner;
    /// `Err(status)` inside: it had already ended with that status.
    pub async fn abandon_interview(
        &self,
        owner: UserId,
        id: InterviewId,
    ) -> StoreResult<Option<Result<InterviewRecord, InterviewStatus>>> {
        let changed = sqlx::query(
            "UPDATE interviews SET status = $1, ended_at = $2
             WHERE id = $3 AND user_id = $4 AND status IN ($5, $6)",
        )
        .bind(InterviewStatus::Abandoned.as_str())
        .bind(now_ms())
        .bind(id.to_string())
        .bind(owner.to_string())
        .bind(InterviewStatus::Scheduled.as_str())
        .bind(InterviewStatus::InProgress.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        let Some(interview) = self.interview_of(owner, id).await? else { return Ok(None) };
        Ok(Some(if changed == 1 { Ok(interview) } else { Err(interview.status) }))
    }

    /// Records the candidate's recording choice, allowed only before the interview starts: `Err(status)` once
    /// it has started, `None` if it is not the owner's.
    pub async fn set_recording_consent(
        &self,
        owner: UserId,
        id: InterviewId,
        consent: bool,
    ) -> StoreResult<Option<Result<InterviewRecord, InterviewStatus>>> {
        let changed = sqlx::query(
            "UPDATE interviews SET recording_consent_at = $1 WHERE id = $2 AND user_id = $3 AND status = $4",
        )
        .bind(consent.then(now_ms))
        .bind(id.to_string())
        .bind(owner.to_string())
        .bind(InterviewStatus::Scheduled.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        let Some(interview) = self.interview_of(owner, id).await? else { return Ok(None) };
        Ok(Some(if changed == 1 { Ok(interview) } else { Err(interview.status) }))
    }

    /// Records the candidate's training-data choice (at any time; withdrawing it keeps the interview out of later
    /// exports). `None` if it is not the owner's.
    pub async fn set_dataset_consent(&self, owner: UserId, id: InterviewId, consent: bool) -> StoreResult<Option<InterviewRecord>> {
        sqlx::query("UPDATE interviews SET dataset_consent_at = $1 WHERE id = $2 AND user_id = $3")
            .bind(consent.then(now_ms))
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        self.interview_of(owner, id).await
    }

    /// Completed interviews whose candidate consented to training-data use, created at or after `since_ms`,
    /// scoring at least `min_score`, oldest first.
    pub async fn dataset_interviews(&self, since_ms: i64, min_score: f64) -> StoreResult<Vec<InterviewRecord>> {
        let rows: Vec<InterviewRow> = sqlx::query_as(select_interview!(
            "WHERE status = $1 AND dataset_consent_at IS NOT NULL AND created_at >= $2 AND overall_score >= $3 ORDER BY created_at, id"
        ))
        .bind(InterviewStatus::Completed.as_str())
        .bind(since_ms)
        .bind(min_score)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| self.interview_record(r)).collect()
    }

    pub async fn rounds(&self, interview: InterviewId) -> StoreResult<Vec<RoundRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, position, kind, title, started_at, ended_at FROM rounds
             WHERE interview_id = $1 ORDER BY position",
        )
        .bind(interview.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn questions(&self, interview: InterviewId) -> StoreResult<Vec<QuestionRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, round_id, position, text, source, parent_id, asked_at FROM questions
             WHERE interview_id = $1 ORDER BY position",
        )
        .bind(interview.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn insert_turn(&self, turn: NewTurn<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO turns (id, interview_id, question_id, speaker, text, start_ms, end_ms, interrupted, words,
                                metrics, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(turn.id)
        .bind(turn.interview.to_string())
        .bind(turn.question_id)
        .bind(turn.speaker.as_str())
        .bind(self.seal(TURN_TEXT, turn.text)?)
        .bind(i64::try_from(turn.start_ms).unwrap_or(i64::MAX))
        .bind(i64::try_from(turn.end_ms).unwrap_or(i64::MAX))
        .bind(i64::from(turn.interrupted))
        .bind(self.seal(TURN_WORDS, turn.words)?)
        .bind(turn.metrics)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn turns(&self, interview: InterviewId) -> StoreResult<Vec<TurnRecord>> {
        let rows: Vec<TurnRecord> = sqlx::query_as(
            "SELECT id, question_id, speaker, text, start_ms, end_ms, interrupted, words, metrics FROM turns
             WHERE interview_id = $1 ORDER BY start_ms, created_at",
        )
        .bind(interview.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|mut turn| {
                turn.text = self.open(TURN_TEXT, turn.text)?;
                turn.words = turn.words.map(|w| self.open(TURN_WORDS, w)).transpose()?;
                Ok(turn)
            })
            .collect()
    }
}
