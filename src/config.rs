//! Configuration: one typed struct, layered from built-in defaults, an optional TOML file (`candor.toml`, or the
//! path in `CANDOR_CONFIG`) and `CANDOR_*` environment variables, in rising precedence. Nothing else reads the
//! environment.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Holds the SQLite file, the generated JWT secret and, later, recordings.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Connections per node; SQLite serialises writers anyway, PostgreSQL benefits from a handful per core.
    pub database_max_connections: u32,
    /// When set, rate-limit counters live in Redis so every node shares them.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this node writes, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// This node's address as the other nodes reach it (`http://10.0.3.7:8080`), kept in the Redis node
    /// registry: signaling for a session that runs here, reaching another node, is relayed here. Unset: the
    /// address the server listens on, unless that is a wildcard (then `rtc_public_ip` with its port, else none,
    /// and other nodes refuse such signaling with `session_already_live` as a lone node does).
    pub node_url: Option<String>,
    /// How often a node renews its entry in the Redis node registry and its live-session claims; both expire
    /// after three times this, so a node that dies frees its candidates that much later.
    pub cluster_heartbeat_secs: u64,
    /// Where fetched model files live.
    pub models_dir: PathBuf,
    /// The whisper.cpp model in `models_dir` for speech-to-text (`ggml-tiny.en-q8_0.bin`: the same accuracy in
    /// 44 MB instead of 78).
    pub stt_model: String,
    /// Where models run: `cpu`, or `cuda`: ONNX models (VAD, vision, the voice) in a build with the `gpu` feature
    /// and the GPU runtime library, speech-to-text too with `gpu-whisper` (each falling back to the CPU, with the
    /// reason in `/readyz`, when CUDA cannot be had).
    pub inference_device: InferenceDevice,
    pub log_format: LogFormat,
    /// HMAC key for access tokens. Unset: a random key is generated once and kept in `data_dir/jwt_secret`.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<SecretString>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// How long a coach invitation link works.
    pub invitation_ttl_secs: u64,
    /// How long a password-reset link works.
    pub password_reset_ttl_secs: u64,
    /// Requests per client IP per window; 0 turns rate limiting off.
    pub rate_limit_requests: u32,
    pub rate_limit_window_secs: u64,
    /// Take the client IP from the first `X-Forwarded-For` entry. Only safe behind a proxy that sets it.
    pub trust_forwarded_for: bool,
    /// Largest accepted request body. Job descriptions are the largest legitimate bodies (20,000 characters).
    pub max_body_bytes: usize,
    /// Interviews a candidate may create; unset means unlimited. A user's own quota, when set, wins.
    pub interview_quota: Option<u32>,
    /// Address WebRTC peers bind their UDP sockets to. `0.0.0.0` binds every non-loopback interface.
    pub rtc_bind_ip: IpAddr,
    /// The server's public address behind a 1:1 NAT: host candidates sent to clients carry it instead.
    pub rtc_public_ip: Option<IpAddr>,
    /// UDP ports for media, `"50000-50999"`; unset means any free port.
    pub rtc_udp_ports: Option<PortRange>,
    /// STUN/TURN servers, used by the server and handed to clients (`GET /api/v1/rtc/config`).
    pub ice_servers: Vec<IceServer>,
    /// TURN servers that take time-limited credentials made from `turn_secret` (coturn's `use-auth-secret`),
    /// e.g. `["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]`: each
    /// client gets its own credential with `GET /api/v1/rtc/config`.
    pub turn_urls: Vec<String>,
    /// The secret shared with those TURN servers (coturn's `static-auth-secret`).
    #[serde(skip_serializing)]
    pub turn_secret: Option<SecretString>,
    /// How long a TURN credential works (longer than an interview).
    pub turn_ttl_secs: u64,
    /// On SIGTERM, how long running interviews may go on to their end before the rest are stored and told
    /// `server_draining` (meanwhile readiness fails and new sessions are refused). 0: store and close at once.
    pub drain_grace_secs: u64,
    /// Live interviews this node carries at most (0: no limit); beyond, joining is refused with `server_full`.
    pub max_live_sessions: usize,
    /// A signaling socket that sends no offer within this is closed (`offer_timeout`).
    pub signaling_offer_timeout_secs: u64,
    /// A candidate whose connection drops may rejoin the same interview this long; then the session ends with
    /// a report of what was answered (0: it ends at once).
    pub rejoin_grace_secs: u64,
    /// A peer silent this long is disconnected, and this much longer failed; its session then waits for the
    /// candidate to rejoin (`rejoin_grace_secs`).
    pub ice_disconnected_secs: u64,
    pub ice_failed_secs: u64,
    /// An OpenAI-compatible chat-completions endpoint (base URL, e.g. `http://127.0.0.1:8000/v1`) for the LLM
    /// brain; unset: the built-in interviewer decides alone. `CUSTOM_AI_ENDPOINT_URL` and `CUSTOM_AI_API_KEY`
    /// are accepted too.
    #[serde(skip_serializing)]
    pub llm_url: Option<String>,
    #[serde(skip_serializing)]
    pub llm_api_key: Option<SecretString>,
    #[serde(skip_serializing)]
    pub llm_model: Option<String>,
    /// The LLM must start answering within this, and finish a judgement within `llm_timeout_ms`; otherwise the
    /// built-in brain decides, and the endpoint is tried again after `llm_retry_secs`.
    pub llm_first_token_ms: u64,
    pub llm_timeout_ms: u64,
    pub llm_retry_secs: u64,
    /// An SMTP server for notification emails (report ready, coach invitations), e.g.
    /// `smtps://user:password@mail.example.org` or `smtp://127.0.0.1:2525`; unset: no email is sent.
    #[serde(skip_serializing)]
    pub smtp_url: Option<SecretString>,
    /// The sender of notification emails.
    pub smtp_from: String,
    /// The address users reach the server at, for links in emails; default `http://` and `bind`.
    pub public_url: Option<String>,
    /// The secret (at least 32 characters) whose derived key wraps each recording's data key. Unset: one is
    /// generated once and kept in `data_dir/master_key`; set it, and keep it apart from the data, in production.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// Earlier master keys, comma-separated (so a master key holds no comma), still accepted for unwrapping until `candor keys rewrap` has moved
    /// every recording to the current one.
    #[serde(skip_serializing)]
    pub retired_master_keys: Option<SecretString>,
    /// Days a recording is kept before the sweeper deletes it; a user's own setting wins.
    pub recording_retention_days: u32,
    /// How often the sweeper looks for expired recordings.
    pub retention_sweep_secs: u64,
    /// An S3-compatible bucket for recordings (AWS, MinIO, Ceph, ...); unset: they stay in `data_dir`. A
    /// recording is written locally as it happens and moved to the bucket when it finishes.
    pub s3_bucket: Option<String>,
    /// The S3 endpoint for servers other than AWS, e.g. `http://minio:9000` (path-style requests).
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    #[serde(skip_serializing)]
    pub s3_access_key_id: Option<SecretString>,
    #[serde(skip_serializing)]
    pub s3_secret_access_key: Option<SecretString>,
    /// Key prefix of every object Candor writes in the bucket.
    pub s3_prefix: String,
}

/// One STUN or TURN server, as browsers' `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// An inclusive range of UDP ports, written `"low-high"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a port range like \"50000-50999\"");
        let (low, high) = text.trim().split_once('-').ok_or_else(bad)?;
        let (low, high) = (low.trim().parse().map_err(|_| bad())?, high.trim().parse().map_err(|_| bad())?);
        if low == 0 || low > high {
            return Err(bad());
        }
        Ok(Self { low, high })
    }
}

impl From<PortRange> for String {
    fn from(range: PortRange) -> Self {
        format!("{}-{}", range.low, range.high)
    }
}

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InferenceDevice {
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_max_connections: 10,
            redis_url: None,
            redis_prefix: "candor".into(),
            node_url: None,
            cluster_heartbeat_secs: 10,
            models_dir: PathBuf::from("models/cache"),
            stt_model: "ggml-tiny.en.bin".into(),
            inference_device: InferenceDevice::Cpu,
            log_format: LogFormat::Text,
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            invitation_ttl_secs: 14 * 24 * 3600,
            password_reset_ttl_secs: 3600,
            rate_limit_requests: 100,
            rate_limit_window_secs: 60,
            trust_forwarded_for: false,
            max_body_bytes: 256 * 1024,
            interview_quota: None,
            rtc_bind_ip: IpAddr::from([127, 0, 0, 1]),
            rtc_public_ip: None,
            rtc_udp_ports: None,
            ice_servers: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl_secs: 6 * 3600,
            drain_grace_secs: 0,
            max_live_sessions: 64,
            signaling_offer_timeout_secs: 30,
            rejoin_grace_secs: 60,
            ice_disconnected_secs: 5,
            ice_failed_secs: 10,
            llm_url: None,
            llm_api_key: None,
            llm_model: None,
            llm_first_token_ms: 4_000,
            llm_timeout_ms: 8_000,
            llm_retry_secs: 30,
            smtp_url: None,
            smtp_from: "Candor <candor@localhost>".into(),
            public_url: None,
            master_key: None,
            retired_master_keys: None,
            recording_retention_days: 30,
            retention_sweep_secs: 3600,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_prefix: "candor".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// Figment's message already names the key and where it came from; it is not kept as a `source` so the
    /// one-line error does not repeat it.
    #[error("invalid configuration: {0}")]
    Invalid(Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Rule(String),
}

impl Config {
    /// Defaults, then the TOML file (`explicit_file`, else `CANDOR_CONFIG`, else `./candor.toml` if present), then
    /// the environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env_file = std::env::var_os("CANDOR_CONFIG").map(PathBuf::from);
        let file = explicit_file.map(Path::to_path_buf).or(env_file);
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path)),
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("candor.toml")),
        }
        // The names existing deployments use for the LLM endpoint, below Candor's own.
        let custom_ai = Env::raw().only(&["custom_ai_endpoint_url", "custom_ai_api_key"]).map(|key| {
            if key.as_str().ends_with("url") { "llm_url".into() } else { "llm_api_key".into() }
        });
        let config: Config = figment
            .merge(custom_ai)
            .merge(Env::prefixed("CANDOR_").ignore(&["config"]))
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_secs == 0 || self.password_reset_ttl_secs == 0 {
            return Err(ConfigError::Rule("token lifetimes must be positive".into()));
        }
        if self.turn_urls.is_empty() != self.turn_secret.is_none() || self.turn_ttl_secs == 0 {
            return Err(ConfigError::Rule("turn_urls and turn_secret go together, and turn_ttl_secs must be positive".into()));
        }
        if self.rate_limit_window_secs == 0 {
            return Err(ConfigError::Rule("rate_limit_window_secs must be positive".into()));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::Rule("database_max_connections must be positive".into()));
        }
        if self.ice_disconnected_secs == 0 || self.ice_failed_secs == 0 {
            return Err(ConfigError::Rule("ICE timeouts must be positive".into()));
        }
        if self.llm_timeout_ms == 0 || self.llm_first_token_ms == 0 {
            return Err(ConfigError::Rule("LLM timeouts must be positive".into()));
        }
        if let Some(url) = &self.llm_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Rule("llm_url must start with http:// or https://".into()));
        }
        if let Some(url) = &self.node_url
            && !url.starts_with("http://")
        {
            return Err(ConfigError::Rule("node_url must start with http:// (nodes talk over the cluster network)".into()));
        }
        if self.cluster_heartbeat_secs == 0 {
            return Err(ConfigError::Rule("cluster_heartbeat_secs must be positive".into()));
        }
        if let Some(url) = &self.smtp_url
            && !(url.expose_secret().starts_with("smtp://") || url.expose_secret().starts_with("smtps://"))
        {
            return Err(ConfigError::Rule("smtp_url must start with smtp:// or smtps://".into()));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Rule("database_url must start with sqlite:, postgres:// or postgresql://".into()));
        }
        let short = |key: &str| key.trim().len() < 32;
        let retired_short = |keys: &SecretString| keys.expose_secret().split(',').any(short);
        if self.master_key.as_ref().is_some_and(|k| short(k.expose_secret())) || self.retired_master_keys.as_ref().is_some_and(retired_short) {
            return Err(ConfigError::Rule("master keys must be at least 32 characters".into()));
        }
        if self.recording_retention_days == 0 || self.retention_sweep_secs == 0 {
            return Err(ConfigError::Rule("recording_retention_days and retention_sweep_secs must be positive".into()));
        }
        Ok(())
    }

    /// This node's address for the registry: `node_url`, else the listening address `bound` unless it is a
    /// wildcard (then `rtc_public_ip` on its port).
    pub fn advertised_url(&self, bound: SocketAddr) -> Option<String> {
        if let Some(url) = &self.node_url {
            return Some(url.trim_end_matches('/').to_string());
        }
        let ip = if bound.ip().is_unspecified() { self.rtc_public_ip? } else { bound.ip() };
        Some(format!("http://{}", SocketAddr::new(ip, bound.port())))
    }

    /// The database to use: `database_url`, or a SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("candor.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_embedded_laptop_set_up() {
        let config = Config::default();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite://data/candor.db?mode=rwc");
        assert_eq!(config.access_token_ttl_secs, 900);
        assert!(config.check().is_ok());
    }

    #[test]
    fn port_ranges_parse_and_bad_ones_are_refused() {
        assert_eq!(PortRange::try_from("50000-50999".to_string()), Ok(PortRange { low: 50000, high: 50999 }));
        for bad in ["50000", "9-1", "0-10", "a-b", "1-70000"] {
            assert!(PortRange::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_foreign_database_scheme_is_refused() {
        let config = Config { database_url: Some("mysql://x".into()), ..Config::default() };
        assert!(matches!(config.check(), Err(ConfigError::Rule(_))));
    }

    #[test]
    fn a_node_advertises_its_own_url_its_listening_address_or_its_public_ip() {
        let bound: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let set = Config { node_url: Some("http://10.0.3.7:8080/".into()), ..Config::default() };
        assert_eq!(set.advertised_url(bound).as_deref(), Some("http://10.0.3.7:8080"));
        assert_eq!(Config::default().advertised_url("127.0.0.1:9000".parse().unwrap()).as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(Config::default().advertised_url(bound), None, "a wildcard address reaches nobody");
        let public = Config { rtc_public_ip: Some("198.51.100.4".parse().unwrap()), ..Config::default() };
        assert_eq!(public.advertised_url(bound).as_deref(), Some("http://198.51.100.4:8080"));
        let tls = Config { node_url: Some("https://node-0".into()), ..Config::default() };
        assert!(matches!(tls.check(), Err(ConfigError::Rule(_))));
    }
}
