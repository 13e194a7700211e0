//! Response bodies. Times are RFC 3339 strings in UTC; stored records are converted here and nowhere else.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{ExperienceLevel, InterviewStatus, InterviewType, Role};
use crate::store::{InterviewRecord, QuestionRecord, RoundRecord, TurnRecord, UserRecord};

pub use crate::domain::rfc3339;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub target_role: Option<String>,
    pub experience_level: Option<ExperienceLevel>,
    /// Days recordings of this user's interviews are kept; `null`: the server's default.
    pub recording_retention_days: Option<i64>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            name: u.name,
            role: u.role,
            target_role: u.target_role,
            experience_level: u.experience_level,
            recording_retention_days: u.recording_retention_days,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// A fresh access and refresh token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Single use: refreshing spends it and returns a new one.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InterviewView {
    pub id: String,
    pub role: String,
    pub interview_type: InterviewType,
    pub experience_level: ExperienceLevel,
    pub status: InterviewStatus,
    pub question_count: i64,
    pub job_description: Option<String>,
    /// 0-100 once the report is ready.
    pub overall_score: Option<f64>,
    /// Whether the session's audio and video are recorded (the candidate's choice, default off).
    pub recording_consent: bool,
    /// When the candidate agreed.
    pub recording_consent_at: Option<String>,
    /// Whether the interview, anonymised, may go into training-data exports (the candidate's choice, default off).
    pub dataset_consent: bool,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

impl From<InterviewRecord> for InterviewView {
    fn from(i: InterviewRecord) -> Self {
        Self {
            id: i.id.to_string(),
            role: i.role,
            interview_type: i.interview_type,
            experience_level: i.experience_level,
            status: i.status,
            question_count: i.question_count,
            job_description: i.job_description,
            overall_score: i.overall_score,
            recording_consent: i.recording_consent_at.is_some(),
            recording_consent_at: i.recording_consent_at.map(rfc3339),
            dataset_consent: i.dataset_consent_at.is_some(),
            created_at: rfc3339(i.created_at),
            started_at: i.started_at.map(rfc3339),
            ended_at: i.ended_at.map(rfc3339),
        }
    }
}

/// One interview with everything recorded so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterviewDetail {
    #[serde(flatten)]
    pub interview: InterviewView,
    pub rounds: Vec<RoundView>,
    pub turns: Vec<TurnView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoundView {
    pub id: String,
    pub position: i64,
    /// behavioral, technical, system_design, coding, hr, ...
    pub kind: String,
    pub title: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub questions: Vec<QuestionView>,
}

impl RoundView {
    pub fn new(round: RoundRecord, questions: &[QuestionRecord]) -> Self {
        let questions = questions.iter().filter(|q| q.round_id == round.id).cloned().map(QuestionView::from).collect();
        Self {
            id: round.id,
            position: round.position,
            kind: round.kind,
            title: round.title,
            started_at: round.started_at.map(rfc3339),
            ended_at: round.ended_at.map(rfc3339),
            questions,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionView {
    pub id: String,
    pub position: i64,
    pub text: String,
    /// bank, llm or follow_up.
    pub source: String,
    /// The question a follow-up follows.
    pub parent_id: Option<String>,
    pub asked_at: Option<String>,
}

impl From<QuestionRecord> for QuestionView {
    fn from(q: QuestionRecord) -> Self {
        Self {
            id: q.id,
            position: q.position,
            text: q.text,
            source: q.source,
            parent_id: q.parent_id,
            asked_at: q.asked_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TurnView {
    pub id: String,
    pub question_id: Option<String>,
    /// candidate or interviewer.
    pub speaker: String,
    pub text: String,
    /// Milliseconds since the session started.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The interviewer was cut off by the candidate (barge-in).
    pub interrupted: bool,
    /// Word timings `{w, start_ms, end_ms}`, when known.
    #[schema(value_type = Option<Vec<Object>>)]
    pub words: Option<serde_json::Value>,
}

impl From<TurnRecord> for TurnView {
    fn from(t: TurnRecord) -> Self {
        Self {
            id: t.id,
            question_id: t.question_id,
            speaker: t.speaker,
            text: t.text,
            start_ms: t.start_ms,
            end_ms: t.end_ms,
            interrupted: t.interrupted != 0,
            words: t.words.and_then(|w| serde_json::from_str(&w).ok()),
        }
    }
}

/// A page of results, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterviewPageView {
    pub items: Vec<InterviewView>,
    /// All of the user's interviews, not only this page.
    pub total: i64,
    pub limit: u32,
    pub offset: u64,
    /// Offset of the next page; absent on the last page.
    pub next_offset: Option<u64>,
}
