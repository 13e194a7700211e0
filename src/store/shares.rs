//! Interview shares: which users (coaches) may observe an interview live, and the invitations that lead to them.

use crate::domain::{Email, InterviewId, UserId};

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

/// A coach invitation, with what the invitee is shown: the interview's role and the candidate's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRecord {
    pub id: String,
    pub interview_id: String,
    pub email: String,
    pub expires_at: i64,
    pub accepted_by: Option<String>,
    pub interview_role: String,
    pub candidate_name: String,
}

/// An interview shared with the caller, for the coach's page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SharedInterview {
    pub id: String,
    pub role: String,
    pub interview_type: String,
    pub status: String,
    pub candidate_name: String,
    pub created_at: i64,
    /// 1 when the interview has a report.
    pub reports: i64,
}

impl Store {
    /// Keeps an invitation of `email` to observe `interview`; the token itself is never stored, only its hash.
    pub async fn insert_invitation(&self, interview: InterviewId, email: &Email, token_hash: &str, expires_at: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO coach_invitations (id, interview_id, email, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(interview.to_string())
        .bind(email.as_ref())
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn invitation(&self, token_hash: &str) -> StoreResult<Option<InvitationRecord>> {
        Ok(sqlx::query_as(
            "SELECT c.id, c.interview_id, c.email, c.expires_at, c.accepted_by, i.role AS interview_role,
                    u.name AS candidate_name
             FROM coach_invitations c JOIN interviews i ON i.id = c.interview_id JOIN users u ON u.id = i.user_id
             WHERE c.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Marks the invitation accepted by `observer` and shares its interview with them, in one transaction.
    pub async fn accept_invitation(&self, invitation: &InvitationRecord, observer: UserId) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE coach_invitations SET accepted_by = $1, accepted_at = $2 WHERE id = $3")
            .bind(observer.to_string())
            .bind(now)
            .bind(&invitation.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO interview_shares (interview_id, observer_user_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&invitation.interview_id)
        .bind(observer.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The interviews shared with `observer`, newest first.
    pub async fn shared_with(&self, observer: UserId) -> StoreResult<Vec<SharedInterview>> {
        Ok(sqlx::query_as(
            "SELECT i.id, i.role, i.interview_type, i.status, u.name AS candidate_name, i.created_at,
                    (SELECT COUNT(*) FROM reports r WHERE r.interview_id = i.id) AS reports
             FROM interview_shares s JOIN interviews i ON i.id = s.interview_id JOIN users u ON u.id = i.user_id
             WHERE s.observer_user_id = $1 ORDER BY i.created_at DESC LIMIT 100",
        )
        .bind(observer.to_string())
        .fetch_all(&self.pool)
        .await?)
    }
}
