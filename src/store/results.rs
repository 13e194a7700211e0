//! What the interviewer produces, as it happens: rounds started and ended, questions asked, answer scores, and
//! at the end the report, the learning path and the interview's final status. Earlier reports of a user feed
//! the progress section of the next one.

use crate::domain::{InterviewId, InterviewStatus, QuestionSource, UserId};

use super::{Store, StoreResult, now_ms};

pub struct NewQuestion<'a> {
    pub id: &'a str,
    pub interview: InterviewId,
    /// 1-based position of the round in the interview.
    pub round_position: i64,
    pub position: i64,
    pub text: &'a str,
    pub source: QuestionSource,
    pub parent_id: Option<&'a str>,
}

pub struct NewScore<'a> {
    pub interview: InterviewId,
    pub question_id: &'a str,
    /// JSON: the ratings with anchors, reasons and evidence.
    pub scores: &'a str,
    pub notes: &'a str,
    pub brain: &'a str,
}

pub struct NewReport<'a> {
    pub interview: InterviewId,
    pub user: UserId,
    pub overall: f64,
    pub technical_depth: f64,
    pub communication: f64,
    pub structure: f64,
    pub impact: f64,
    /// Delivery (pace and fillers in range) and presence (eye contact), 0-100: reported apart from content.
    pub confidence: f64,
    pub presence: f64,
    pub strengths: &'a str,
    pub improvements: &'a str,
    pub summary: &'a str,
    pub document: &'a str,
    pub roadmap: &'a str,
    pub resources: &'a str,
}

/// The report document's column; strengths, improvements and the summary are sealed too.
const REPORT_DOCUMENT: &str = "reports.document";

/// An earlier report of a user: `(interview id, ended at, document)`.
pub type PastReport = (String, i64, String);

impl Store {
    pub async fn mark_round(&self, interview: InterviewId, position: i64, ended: bool) -> StoreResult<()> {
        let query = if ended {
            "UPDATE rounds SET ended_at = $1 WHERE interview_id = $2 AND position = $3 AND ended_at IS NULL"
        } else {
            "UPDATE rounds SET started_at = COALESCE(started_at, $1) WHERE interview_id = $2 AND position = $3"
        };
        sqlx::query(query).bind(now_ms()).bind(interview.to_string()).bind(position).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn insert_question(&self, q: NewQuestion<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO questions (id, interview_id, round_id, position, text, source, parent_id, asked_at, created_at)
             SELECT $1, $2, id, $3, $4, $5, $6, $7, $7 FROM rounds WHERE interview_id = $2 AND position = $8",
        )
        .bind(q.id)
        .bind(q.interview.to_string())
        .bind(q.position)
        .bind(q.text)
        .bind(q.source.as_str())
        .bind(q.parent_id)
        .bind(now_ms())
        .bind(q.round_position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn insert_score(&self, s: NewScore<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO answer_scores (id, interview_id, question_id, scores, notes, brain, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (question_id) DO UPDATE SET scores = excluded.scores, notes = excluded.notes,
                                                     brain = excluded.brain",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(s.interview.to_string())
        .bind(s.question_id)
        .bind(s.scores)
        .bind(s.notes)
        .bind(s.brain)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores the report and the learning path, and completes the interview with its overall score (unless it
    /// was abandoned meanwhile), in one transaction.
    pub async fn insert_report(&self, r: NewReport<'_>) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO reports (interview_id, overall, technical_depth, communication, structure, confidence,
                                  presence, strengths, improvements, summary, impact, document, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(r.interview.to_string())
        .bind(r.overall)
        .bind(r.technical_depth)
        .bind(r.communication)
        .bind(r.structure)
        .bind(r.confidence)
        .bind(r.presence)
        .bind(self.seal("reports.strengths", r.strengths)?)
        .bind(self.seal("reports.improvements", r.improvements)?)
        .bind(self.seal("reports.summary", r.summary)?)
        .bind(r.impact)
        .bind(self.seal(REPORT_DOCUMENT, r.document)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO learning_paths (interview_id, user_id, roadmap, resources, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.interview.to_string())
        .bind(r.user.to_string())
        .bind(r.roadmap)
        .bind(r.resources)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE interviews SET status = $1, ended_at = COALESCE(ended_at, $2), overall_score = $3
             WHERE id = $4 AND status <> $5",
        )
        .bind(InterviewStatus::Completed.as_str())
        .bind(now)
        .bind(r.overall)
        .bind(r.interview.to_string())
        .bind(InterviewStatus::Abandoned.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The report document of an interview of `reader` (or shared with them) and its learning path's ticked steps
    /// (a JSON array), if there is a report.
    pub async fn report_of(&self, reader: UserId, interview: InterviewId) -> StoreResult<Option<(String, String)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT r.document, COALESCE(l.done, '[]') FROM reports r JOIN interviews i ON i.id = r.interview_id
             LEFT JOIN learning_paths l ON l.interview_id = r.interview_id
             WHERE r.interview_id = $1 AND (i.user_id = $2 OR EXISTS (
                 SELECT 1 FROM interview_shares s WHERE s.interview_id = i.id AND s.observer_user_id = $2))",
        )
        .bind(interview.to_string())
        .bind(reader.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(document, done)| Ok((self.open(REPORT_DOCUMENT, document)?, done))).transpose()
    }

    /// Ticks (or unticks) one step of the learning path of an interview of `owner`, by its competency; the
    /// ticked steps after it, or `None` when the interview has no learning path. Compare-and-set instead of a
    /// transaction: on SQLite a read that turns into a write fails at once when another write came between.
    pub async fn tick_learning_step(&self, owner: UserId, interview: InterviewId, step: &str, done: bool) -> StoreResult<Option<Vec<String>>> {
        loop {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT l.done FROM learning_paths l JOIN interviews i ON i.id = l.interview_id
                 WHERE l.interview_id = $1 AND i.user_id = $2",
            )
            .bind(interview.to_string())
            .bind(owner.to_string())
            .fetch_optional(&self.pool)
            .await?;
            let Some((before,)) = row else { return Ok(None) };
            let mut ticked: Vec<String> = serde_json::from_str(&before).unwrap_or_default();
            ticked.retain(|s| s != step);
            if done {
                ticked.push(step.to_string());
            }
            let after = serde_json::to_string(&ticked).unwrap_or_else(|_| "[]".into());
            let updated = sqlx::query("UPDATE learning_paths SET done = $1 WHERE interview_id = $2 AND done = $3")
                .bind(&after)
                .bind(interview.to_string())
                .bind(&before)
                .execute(&self.pool)
                .await?;
            if updated.rows_affected() == 1 {
                return Ok(Some(ticked));
            }
        }
    }

    /// A user's reports, newest first, leaving out `except`'s.
    pub async fn past_reports(&self, owner: UserId, except: Option<InterviewId>, limit: i64) -> StoreResult<Vec<PastReport>> {
        let rows: Vec<PastReport> = sqlx::query_as(
            "SELECT r.interview_id, COALESCE(i.ended_at, r.created_at), r.document FROM reports r
             JOIN interviews i ON i.id = r.interview_id
             WHERE i.user_id = $1 AND r.interview_id <> $2 ORDER BY r.created_at DESC LIMIT $3",
        )
        .bind(owner.to_string())
        .bind(except.map(|i| i.to_string()).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(id, at, document)| Ok((id, at, self.open(REPORT_DOCUMENT, document)?))).collect()
    }

    /// Interviews of a user that ended with a report: rotates the question bank for the next one.
    pub async fn count_reports(&self, owner: UserId) -> StoreResult<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM reports r JOIN interviews i ON i.id = r.interview_id WHERE i.user_id = $1",
        )
        .bind(owner.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }
}
