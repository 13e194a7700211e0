//! Building and running the application: connect and migrate the database, load or create the signing key,
//! connect Redis when configured, bind the listener, and serve until a shutdown signal. Tests use the same path
//! with port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::api::{AppState, router};
use crate::auth::{Tokens, random_secret};
use crate::config::Config;
use crate::live::Engines;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::store::{Store, StoreError};
use crate::vault::Vault;

/// How long a Redis connection or reply may take.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Handed-off request work (`AppState::background`) allowed at once.
const BACKGROUND_TASKS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read or create the JWT secret at {path}: {source}")]
    Secret { path: String, source: std::io::Error },
    #[error("cannot connect to Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Recordings(#[from] crate::recordings::RecordingError),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let vault = vault(&config)?;
        let store = open_store(&config, &vault).await?;
        let secret = match &config.jwt_secret {
            Some(secret) => secret.clone(),
            None => load_or_create_secret(&config.data_dir.join("jwt_secret"), "JWT signing key")?,
        };
        let tokens = Tokens::new(&secret, config.access_token_ttl_secs, config.refresh_token_ttl_secs);
        let redis = match &config.redis_url {
            // Connected on first use, so a Redis that is down does not keep the node from starting; short
            // timeouts, so a Redis that hangs does not hold requests.
            Some(url) => {
                let timeouts = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                Some(redis::aio::ConnectionManager::new_lazy_with_config(redis::Client::open(url.as_str())?, timeouts)?)
            }
            None => None,
        };
        let limiter = match &redis {
            Some(conn) => RateLimiter::redis(
                config.rate_limit_requests,
                config.rate_limit_window_secs,
                conn.clone(),
                &config.redis_prefix,
            ),
            None => RateLimiter::in_memory(config.rate_limit_requests, config.rate_limit_window_secs),
        };
        let listener =
            TcpListener::bind(config.bind).await.map_err(|source| StartupError::Bind { addr: config.bind, source })?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let engines_config = config.clone();
        let engines = tokio::task::spawn_blocking(move || Engines::load(&engines_config))
            .await
            .unwrap_or_else(|_| Engines::disabled("loading the models panicked"));
        let bound = listener.local_addr().map_err(|source| StartupError::Bind { addr: config.bind, source })?;
        let mailer = crate::notify::Mailer::from_config(&config, bound, metrics.clone())?;
        if redis.is_some() && config.advertised_url(bound).is_none() {
            tracing::warn!("no CANDOR_NODE_URL and a wildcard bind address: other nodes cannot relay signaling here");
        }
        let recordings = Arc::new(recordings(&config, vault, store.clone(), metrics.clone())?);
        // Before any session records: what a crash left unfinished is closed and moved where it belongs.
        match recordings.recover().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recovered = n, "recordings a crash left unfinished were recovered"),
            Err(e) => tracing::warn!(error = %e, "unfinished recordings not recovered; they stay readable where they are"),
        }
        let state = AppState {
            live: crate::live::Live::new(
                config.clone(),
                store.clone(),
                metrics.clone(),
                Arc::new(engines),
                mailer.clone(),
                recordings.clone(),
                crate::live::Cluster::new(
                    redis.clone(),
                    &config.redis_prefix,
                    config.advertised_url(bound),
                    std::time::Duration::from_secs(config.cluster_heartbeat_secs),
                ),
            ),
            recordings,
            mailer,
            config,
            store,
            tokens: Arc::new(tokens),
            metrics,
            limiter: Arc::new(limiter),
            redis,
            background: Arc::new(tokio::sync::Semaphore::new(BACKGROUND_TASKS)),
        };
        Ok(Self { router: router(state.clone()), listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let trimmer = return_free_memory();
        let sweeping = tokio_util::sync::CancellationToken::new();
        let every = std::time::Duration::from_secs(self.state.config.retention_sweep_secs);
        tokio::spawn(self.state.recordings.clone().sweep_every(every, sweeping.clone()));
        let live = self.state.live.clone();
        let grace = std::time::Duration::from_secs(self.state.config.drain_grace_secs);
        // Live sessions are upgraded connections that graceful shutdown does not wait for: drain them, then
        // store and close what is left.
        let shutdown = async move {
            shutdown.await;
            live.drain(grace).await;
            live.shutdown(if grace.is_zero() { "server_restarting" } else { "server_draining" }).await;
        };
        axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await?;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        drop(trimmer);
        sweeping.cancel();
        self.state.store.close().await;
        Ok(())
    }
}

/// How often freed memory goes back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// glibc keeps the pages that sessions free (video frames, audio, decode buffers) inside its arenas, one per
/// thread that allocates, so resident memory grew about 30 MB per session against 10 MB actually live; handing
/// free pages back every few seconds keeps it near what is live (about 12 MB per session, measured at 1, 8 and
/// 16 sessions). The walk takes 1-9 ms, on a thread of its own: on the async runtime's blocking pool, a job
/// every 5 s kept idle pool threads from expiring (10 s), and the soak saw an idle server with a thread more
/// than before its load. The thread ends when the returned sender is dropped.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_free_memory() -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let trimming = move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TRIM_EVERY) {
            // SAFETY: malloc_trim only releases pages the allocator holds free.
            unsafe { libc::malloc_trim(0) };
        }
    };
    if let Err(e) = std::thread::Builder::new().name("candor-trim".into()).spawn(trimming) {
        tracing::warn!(error = %e, "freed memory will not be returned to the system");
    }
    stop
}

/// Reads the signing key, or creates a random 512-bit one readable only by this user.
/// The keys of this configuration: the master key (generated into the data directory when none is configured)
/// and the retired ones.
pub fn vault(config: &Config) -> Result<Arc<Vault>, StartupError> {
    let master_key = match &config.master_key {
        Some(key) => key.clone(),
        None => load_or_create_secret(&config.data_dir.join("master_key"), "master key")?,
    };
    let retired: Vec<SecretString> = config
        .retired_master_keys
        .as_ref()
        .map(|keys| keys.expose_secret().split(',').filter(|k| !k.trim().is_empty()).map(|k| SecretString::from(k.trim().to_string())).collect())
        .unwrap_or_default();
    Ok(Arc::new(Vault::new(&master_key, &retired).map_err(crate::recordings::RecordingError::from)?))
}

/// The database of this configuration, migrated, with its sensitive columns sealed by the vault's field key.
pub async fn open_store(config: &Config, vault: &Vault) -> Result<Store, StartupError> {
    let store = Store::connect(&config.database_url(), config.database_max_connections).await?;
    store.migrate().await?;
    store.enable_field_encryption(vault).await?;
    Ok(store)
}

/// The recordings of this configuration: their directory, object store and retention.
pub fn recordings(config: &Config, vault: Arc<Vault>, store: Store, metrics: Arc<Metrics>) -> Result<crate::recordings::Recordings, StartupError> {
    Ok(crate::recordings::Recordings::new(&config.data_dir, vault, config.recording_retention_days, object_store(config)?, store, metrics))
}

/// The S3-compatible bucket recordings move to, when one is configured.
fn object_store(config: &Config) -> Result<Option<crate::recordings::Objects>, StartupError> {
    let Some(bucket) = &config.s3_bucket else { return Ok(None) };
    let mut builder = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket).with_region(&config.s3_region);
    if let Some(endpoint) = &config.s3_endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://")).with_virtual_hosted_style_request(false);
    }
    if let (Some(id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key) {
        builder = builder.with_access_key_id(id.expose_secret()).with_secret_access_key(secret.expose_secret());
    }
    let store = builder.build().map_err(|e| StartupError::Recordings(crate::recordings::RecordingError::Object(e)))?;
    Ok(Some(crate::recordings::Objects { store: Arc::new(store), prefix: config.s3_prefix.clone() }))
}

/// The secret kept in `path`, generated there (readable by the owner only) the first time.
fn load_or_create_secret(path: &Path, what: &str) -> Result<SecretString, StartupError> {
    let fail = |source| StartupError::Secret { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(secret) if !secret.trim().is_empty() => return Ok(SecretString::from(secret.trim().to_string())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let secret = random_secret(64);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path).map_err(fail)?, secret.as_bytes()).map_err(fail)?;
    tracing::info!(path = %path.display(), "generated a new {what}");
    Ok(SecretString::from(secret))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
