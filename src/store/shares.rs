//! Interview shares: which users (coaches) may observe an interview live.

use crate::domain::{InterviewId, UserId};

use super::{Store, StoreResult, now_ms};

/// A user an interview is shared with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShareRecord {
    pub observer_user_id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    /// Shares `interview` with `observer`; sharing twice is a no-op.
    pub async fn insert_share(&self, interview: InterviewId, observer: UserId) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO interview_shares (interview_id, observer_user_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(interview.to_string())
        .bind(observer.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns whether a share was removed.
    pub async fn delete_share(&self, interview: InterviewId, observer: UserId) -> StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM interview_shares WHERE interview_id = $1 AND observer_user_id = $2")
            .bind(interview.to_string())
            .bind(observer.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(removed > 0)
    }

    pub async fn shares(&self, interview: InterviewId) -> StoreResult<Vec<ShareRecord>> {
        Ok(sqlx::query_as(
            "SELECT s.observer_user_id, u.email, u.name, s.created_at FROM interview_shares s
             JOIN users u ON u.id = s.observer_user_id WHERE s.interview_id = $1 ORDER BY s.created_at",
        )
        .bind(interview.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn is_shared_with(&self, interview: InterviewId, observer: UserId) -> StoreResult<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT interview_id FROM interview_shares WHERE interview_id = $1 AND observer_user_id = $2",
        )
        .bind(interview.to_string())
        .bind(observer.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
