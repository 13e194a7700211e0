//! Refresh tokens (issue, rotate with reuse detection, revoke) and password-reset links (issue, spend once).
//! Only SHA-256 hashes of tokens are stored.

use crate::domain::UserId;

use super::{Store, StoreResult, now_ms, parse_stored};

pub struct NewRefreshToken<'a> {
    pub user_id: UserId,
    /// Every token descended from one login shares a family; reuse of a spent one revokes them all.
    pub family_id: &'a str,
    pub token_hash: &'a str,
    pub expires_at: i64,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid; it is now spent and the replacement is stored.
    Rotated {
        user_id: UserId,
    },
    /// No such token.
    Unknown,
    Expired {
        user_id: UserId,
    },
    /// The family was revoked earlier (logout or detected reuse).
    Revoked {
        user_id: UserId,
    },
    /// The token had already been spent: someone replayed it. The whole family is now revoked.
    Reused {
        user_id: UserId,
    },
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    user_id: String,
    family_id: String,
    expires_at: i64,
    spent_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl Store {
    pub async fn insert_refresh_token(&self, token: NewRefreshToken<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(token.user_id.to_string())
        .bind(token.family_id)
        .bind(token.token_hash)
        .bind(now_ms())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends the token with `old_hash` and stores `new_hash` in its family, in one transaction. A token that was
    /// already spent, including by a concurrent request that won the race, counts as reuse.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> StoreResult<RefreshOutcome> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, user_id, family_id, expires_at, spent_at, revoked_at FROM refresh_tokens
             WHERE token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(RefreshOutcome::Unknown) };
        let user_id: UserId = parse_stored("refresh_tokens.user_id", &row.user_id)?;
        if row.revoked_at.is_some() {
            return Ok(RefreshOutcome::Revoked { user_id });
        }
        if row.expires_at <= now {
            return Ok(RefreshOutcome::Expired { user_id });
        }
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = $1 WHERE id = $2 AND spent_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&row.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if row.spent_at.is_some() || spent == 0 {
            revoke_family(&mut tx, &row.family_id, now).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused { user_id });
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&row.user_id)
        .bind(&row.family_id)
        .bind(new_hash)
        .bind(now)
        .bind(new_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated { user_id })
    }

    /// Revokes the family the token belongs to (logout). Returns the owner, or `None` for an unknown token.
    pub async fn revoke_refresh_family(&self, token_hash: &str) -> StoreResult<Option<UserId>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((user_id, family_id)) = row else { return Ok(None) };
        revoke_family(&mut tx, &family_id, now_ms()).await?;
        tx.commit().await?;
        Ok(Some(parse_stored("refresh_tokens.user_id", &user_id)?))
    }
}

async fn revoke_family(tx: &mut sqlx::Transaction<'_, sqlx::Any>, family_id: &str, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(family_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A password-reset link, found by its token's hash.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub id: String,
    pub user_id: UserId,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl Store {
    /// Stores a reset token for `user`, unless `cap` = `(since, max)` says `max` were made for them since `since`
    /// (Unix ms): false then. The user's row is locked first, so requests at once cannot all slip under the cap.
    pub async fn insert_password_reset(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: i64,
        cap: Option<(i64, i64)>,
    ) -> StoreResult<bool> {
        let user = user.to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1").bind(&user).execute(&mut *tx).await?;
        if let Some((since, max)) = cap {
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM password_resets WHERE user_id = $1 AND created_at >= $2")
                    .bind(&user)
                    .bind(since)
                    .fetch_one(&mut *tx)
                    .await?;
            if count >= max {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&user)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn password_reset(&self, token_hash: &str) -> StoreResult<Option<PasswordReset>> {
        let row: Option<(String, String, i64, Option<i64>)> =
            sqlx::query_as("SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(id, user_id, expires_at, used_at)| {
            Ok(PasswordReset { id, user_id: parse_stored("password_resets.user_id", &user_id)?, expires_at, used_at })
        })
        .transpose()
    }

    /// Sets `user`'s password, signing out every login of the account and spending its reset links.
    pub async fn change_password(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        set_password(&mut tx, user, password_hash, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends the reset link and sets its account's password, signing out every login of the account and
    /// spending its other links, in one transaction. False when the link was spent or expired meanwhile.
    pub async fn complete_password_reset(&self, reset: &PasswordReset, password_hash: &str) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE password_resets SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&reset.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            return Ok(false);
        }
        set_password(&mut tx, reset.user_id, password_hash, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// A new password: every refresh token of the account is revoked and every open reset link spent.
async fn set_password(tx: &mut sqlx::Transaction<'_, sqlx::Any>, user: UserId, password_hash: &str, now: i64) -> StoreResult<()> {
    let user = user.to_string();
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(&user)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(&user)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(&user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
