//! Storage: one `Store` over SQLite (the embedded default) or PostgreSQL, chosen by the database URL at start.
//! Both share one schema (`migrations/sqlite`, `migrations/postgres`) and one set of queries, written in the
//! common subset of SQL and bound with `$n` parameters, through sqlx's `Any` driver. Times are Unix
//! milliseconds. This module owns SQL; it knows nothing of HTTP.

mod audit;
mod interviews;
mod recordings;
mod results;
mod shares;
mod tokens;
mod users;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;

use crate::vault::{FieldCipher, Vault, WrappedKey};

/// The `vault_keys` name of the key that seals sensitive columns.
const FIELD_KEY: &str = "fields";

pub use audit::{AuditEntry, Outcome};
pub use interviews::{
    InterviewPage, InterviewRecord, NewInterview, NewRound, NewTurn, QuestionRecord, RoundRecord, TurnRecord,
};
pub use recordings::{NewRecording, RecordingRecord};
pub use results::{NewQuestion, NewReport, NewScore, PastReport};
pub use shares::{InvitationRecord, ShareRecord, SharedInterview};
pub use tokens::{NewRefreshToken, PasswordReset, RefreshOutcome};
pub use users::{NewUser, ProfileChange, UserRecord};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("could not create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("encrypted field: {0}")]
    Vault(#[from] crate::vault::VaultError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database could not be reached or dropped the connection (restarting, a network cut): trying again
    /// later may succeed.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)) => true,
            // PostgreSQL's connection exceptions (08...) and shutdown or start-up in progress (57P01-57P03).
            Self::Database(sqlx::Error::Database(db)) => {
                db.code().is_some_and(|c| c.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&c.as_ref()))
            }
            _ => false,
        }
    }

    /// The row is there already (a unique key).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`, leaves other errors alone.
fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

/// Parses a stored vocabulary value, turning a bad one into `Corrupt` rather than a panic.
fn parse_stored<T: std::str::FromStr>(column: &str, value: &str) -> StoreResult<T> {
    value.parse().map_err(|_| StoreError::Corrupt(format!("{column} = {value:?}")))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Seals sensitive text columns once `enable_field_encryption` ran; shared by every clone.
    fields: Arc<OnceLock<FieldCipher>>,
}

impl Store {
    /// Connects (creating the SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite {
            create_sqlite_parent(url)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        Ok(Self { pool, backend, fields: Arc::default() })
    }

    /// Seals sensitive text columns from now on with the field key (made and wrapped by `vault` the first time;
    /// every node of a deployment shares it through the database).
    pub async fn enable_field_encryption(&self, vault: &Vault) -> StoreResult<()> {
        if self.vault_key(FIELD_KEY).await?.is_none() {
            let (_, wrapped) = vault.new_data_key()?;
            // Two nodes starting at once: the first insert wins, both read it back.
            sqlx::query(
                "INSERT INTO vault_keys (name, data_key, master_key_id, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(FIELD_KEY)
            .bind(&wrapped.sealed)
            .bind(&wrapped.master_key_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        }
        let wrapped = self.vault_key(FIELD_KEY).await?.ok_or_else(|| StoreError::Corrupt("the field key vanished".into()))?;
        let _ = self.fields.set(FieldCipher::new(&vault.unwrap(&wrapped)?));
        Ok(())
    }

    /// Moves the field key to the vault's current master key; whether it moved.
    pub async fn rewrap_field_key(&self, vault: &Vault) -> StoreResult<bool> {
        let Some(wrapped) = self.vault_key(FIELD_KEY).await? else { return Ok(false) };
        let Some(moved) = vault.rewrap(&wrapped)? else { return Ok(false) };
        sqlx::query("UPDATE vault_keys SET data_key = $1, master_key_id = $2 WHERE name = $3")
            .bind(&moved.sealed)
            .bind(&moved.master_key_id)
            .bind(FIELD_KEY)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn vault_key(&self, name: &str) -> StoreResult<Option<WrappedKey>> {
        let row: Option<(String, String)> = sqlx::query_as("SELECT data_key, master_key_id FROM vault_keys WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(sealed, master_key_id)| WrappedKey { master_key_id, sealed }))
    }

    /// A sensitive value as it is stored: sealed when field encryption is on.
    fn seal(&self, column: &str, text: &str) -> StoreResult<String> {
        match self.fields.get() {
            Some(fields) => Ok(fields.seal(column, text)?),
            None => Ok(text.to_string()),
        }
    }

    /// A stored sensitive value as text (values stored before encryption was on read as they are).
    fn open(&self, column: &str, stored: String) -> StoreResult<String> {
        match self.fields.get() {
            Some(fields) => fields.open(column, &stored).map_err(|_| StoreError::Corrupt(format!("{column} does not decrypt"))),
            None => Ok(stored),
        }
    }

    /// Applies pending migrations for this backend; safe to run on every start.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `(open connections, idle connections)` for the pool gauges.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn create_sqlite_parent(url: &str) -> StoreResult<()> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|source| StoreError::DataDir { path: parent.display().to_string(), source })?;
    }
    Ok(())
}
