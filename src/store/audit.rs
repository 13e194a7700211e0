//! The audit log: an append-only record of logins, token refreshes, failed authentication and every access to
//! interview data.

use crate::domain::UserId;

use super::{Store, StoreResult, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The caller could not prove who they are (bad password, bad token).
    Failure,
    /// The caller is known but not allowed (another user's interview, quota).
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One audit row as written.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: i64,
    pub actor_user_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

impl Store {
    pub async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        target: Option<&str>,
        ip: Option<&str>,
        outcome: Outcome,
        detail: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_user_id, action, target, ip, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(ip)
        .bind(outcome.as_str())
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Rows for one action, oldest first.
    pub async fn audit_entries(&self, action: &str) -> StoreResult<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT at, actor_user_id, action, target, ip, outcome, detail FROM audit_log
             WHERE action = $1 ORDER BY id",
        )
        .bind(action)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    /// What the audit log holds about a user's own actions, oldest first.
    pub async fn audit_of(&self, actor: UserId) -> StoreResult<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT at, actor_user_id, action, target, ip, outcome, detail FROM audit_log
             WHERE actor_user_id = $1 ORDER BY id",
        )
        .bind(actor.to_string())
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    /// The audit log, newest first, one page at a time, optionally one action only.
    pub async fn audit_page(&self, limit: u32, offset: u64, action: Option<&str>) -> StoreResult<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT at, actor_user_id, action, target, ip, outcome, detail FROM audit_log
             WHERE $1 IS NULL OR action = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(action)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?)
    }
}
