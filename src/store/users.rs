//! User accounts and profiles.

use crate::domain::{Email, ExperienceLevel, JobRole, PersonName, Role, UserId};

use super::{Store, StoreError, StoreResult, conflict_on_unique, now_ms, parse_stored};

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub name: &'a PersonName,
    pub role: Role,
}

/// A profile update; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChange {
    pub name: Option<PersonName>,
    pub target_role: Option<Option<JobRole>>,
    pub experience_level: Option<Option<ExperienceLevel>>,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: Role,
    pub target_role: Option<String>,
    pub experience_level: Option<ExperienceLevel>,
    pub interview_quota: Option<i64>,
    /// Days this user's recordings are kept; `None`: the server's default.
    pub recording_retention_days: Option<i64>,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    name: String,
    role: String,
    target_role: Option<String>,
    experience_level: Option<String>,
    interview_quota: Option<i64>,
    recording_retention_days: Option<i64>,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(row: UserRow) -> StoreResult<Self> {
        Ok(Self {
            id: parse_stored("users.id", &row.id)?,
            role: parse_stored("users.role", &row.role)?,
            experience_level: row
                .experience_level
                .as_deref()
                .map(|level| parse_stored("users.experience_level", level))
                .transpose()?,
            email: row.email,
            password_hash: row.password_hash,
            name: row.name,
            target_role: row.target_role,
            interview_quota: row.interview_quota,
            recording_retention_days: row.recording_retention_days,
            created_at: row.created_at,
        })
    }
}

/// `SELECT` list of `UserRow`, as a macro so queries stay `&'static str` (sqlx refuses formatted SQL).
macro_rules! select_user {
    ($($rest:literal)+) => {
        concat!(
            "SELECT id, email, password_hash, name, role, target_role, experience_level, interview_quota, \
             recording_retention_days, created_at \
             FROM users ",
            $($rest),+
        )
    };
}

impl Store {
    /// Creates a user; `Conflict("email")` when the address is taken.
    pub async fn insert_user(&self, user: NewUser<'_>) -> StoreResult<UserRecord> {
        let id = UserId::new();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.to_string())
        .bind(user.email.as_ref())
        .bind(user.password_hash)
        .bind(user.name.as_ref())
        .bind(user.role.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict_on_unique("email"))?;
        self.user(id).await?.ok_or(StoreError::Corrupt("inserted user vanished".into()))
    }

    pub async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> =
            sqlx::query_as(select_user!("WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.pool).await?;
        row.map(UserRecord::try_from).transpose()
    }

    pub async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> =
            sqlx::query_as(select_user!("WHERE email = $1")).bind(email.as_ref()).fetch_optional(&self.pool).await?;
        row.map(UserRecord::try_from).transpose()
    }

    /// Applies a profile change and returns the updated user, or `None` if the user is gone.
    pub async fn update_profile(&self, id: UserId, change: ProfileChange) -> StoreResult<Option<UserRecord>> {
        let Some(current) = self.user(id).await? else { return Ok(None) };
        let name = change.name.as_ref().map(AsRef::as_ref).unwrap_or(&current.name).to_string();
        let target_role = match change.target_role {
            Some(value) => value.map(|r| r.as_ref().to_string()),
            None => current.target_role,
        };
        let level = match change.experience_level {
            Some(value) => value,
            None => current.experience_level,
        };
        sqlx::query(
            "UPDATE users SET name = $1, target_role = $2, experience_level = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(name)
        .bind(target_role)
        .bind(level.map(ExperienceLevel::as_str))
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        self.user(id).await
    }

    /// Sets a user's role (used by the CLI to promote an existing account).
    pub async fn set_role(&self, id: UserId, role: Role) -> StoreResult<()> {
        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets or clears one user's interview quota (overrides the configured default).
    pub async fn set_interview_quota(&self, id: UserId, quota: Option<u32>) -> StoreResult<()> {
        sqlx::query("UPDATE users SET interview_quota = $1, updated_at = $2 WHERE id = $3")
            .bind(quota.map(i64::from))
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Erases a user and everything of theirs: the account and its tokens, their interviews with all they
    /// recorded (rounds, questions, turns, samples, scores, reports, learning paths, recordings' rows, shares,
    /// invitations), the shares and invitations made to them. Audit rows stay, without the personal data in them
    /// (the IP address and free-text detail); the ids they keep point at nothing. Returns false for no such user.
    pub async fn erase_user(&self, id: UserId) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let id = id.to_string();
        sqlx::query(
            "UPDATE audit_log SET ip = NULL, detail = NULL
             WHERE actor_user_id = $1 OR target = $1 OR target IN (SELECT id FROM interviews WHERE user_id = $1)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM coach_invitations WHERE email = (SELECT email FROM users WHERE id = $1)")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query("DELETE FROM users WHERE id = $1").bind(&id).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(removed > 0)
    }
}

impl Store {
    /// Every user, oldest account first, one page at a time; and how many there are.
    pub async fn list_users(&self, limit: u32, offset: u64) -> StoreResult<(Vec<UserRecord>, i64)> {
        let rows: Vec<UserRow> = sqlx::query_as(select_user!("ORDER BY created_at, id LIMIT $1 OFFSET $2"))
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
        Ok((rows.into_iter().map(UserRecord::try_from).collect::<StoreResult<_>>()?, total))
    }
}
