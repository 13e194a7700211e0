//! Test harness: each test gets its own Candor on port 0 with a fresh SQLite file or a fresh PostgreSQL database
//! (created in the server named by CANDOR_TEST_DATABASE_URL), plus request helpers. Logs only with TEST_LOG set.

use std::net::SocketAddr;

use candor::Application;
use candor::api::AppState;
use candor::config::Config;
use candor::domain::{InterviewId, UserId};
use candor::store::NewReport;
use candor_interviewer::grade::Dimension;
use candor_interviewer::report::{
    Coverage, DeliveryPoint, DeliverySummary, DimensionScore, PresencePoint, PresenceSummary, Report, Resource, Step,
};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::Connection;

/// The signing key every test app uses, so tests can mint their own (expired) tokens.
pub const JWT_SECRET: &str = "test-signing-key-0123456789";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named `async fn(Backend)`, a module with one test per database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::helpers::{Backend, service_available};

            #[tokio::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                if service_available("CANDOR_TEST_DATABASE_URL") {
                    super::$name(Backend::Postgres).await;
                }
            }
        }
    )+};
}

/// Whether the service in `var` is configured. When CANDOR_TEST_REQUIRE_SERVICES is set (the README test
/// command), a missing one fails the test instead of skipping it.
pub fn service_available(var: &str) -> bool {
    if std::env::var(var).is_ok() {
        return true;
    }
    assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "{var} must be set");
    eprintln!("skipped: {var} is not set");
    false
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    _data_dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A test app with the default test configuration.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A test app whose configuration `adjust` may change first.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        candor::telemetry::init(candor::config::LogFormat::Text);
    }
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_path_buf(),
        database_url: match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database().await),
        },
        database_max_connections: 4,
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        // High enough that only the rate-limit tests ever meet it.
        rate_limit_requests: 10_000,
        redis_prefix: format!("candor-test-{}", uuid::Uuid::new_v4().simple()),
        // No models unless a test asks for them (`with_models`): loading them costs time in every test.
        models_dir: data_dir.path().join("no-models"),
        ..Config::default()
    };
    adjust(&mut config);
    let app = Application::build(config).await.expect("the app starts");
    let addr = app.local_addr();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp { addr, client: reqwest::Client::new(), state, _data_dir: data_dir, stop: Some(stop), serving: Some(serving) }
}

#[allow(dead_code)] // used by the live tests only
/// Points the configuration at the fetched models (CANDOR_MODELS_DIR or ./models/cache).
pub fn with_models(config: &mut Config) {
    config.models_dir = models_dir();
}

/// Where the fetched models and test material are: CANDOR_MODELS_DIR, or the repository's models/cache.
pub fn models_dir() -> std::path::PathBuf {
    std::env::var_os("CANDOR_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cache"))
}

/// Creates an empty database with a random name next to the one in CANDOR_TEST_DATABASE_URL.
async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var("CANDOR_TEST_DATABASE_URL").expect("CANDOR_TEST_DATABASE_URL");
    let name = format!("candor_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database URL has a path");
    format!("{base}/{name}")
}

/// A response: status, headers and the body parsed as JSON (`Value::Null` when empty or not JSON), and as text.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `error.code` of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// Stops the server as SIGTERM does; the handle ends once it has stopped.
    #[allow(dead_code)] // used by the live tests only
    pub fn stop(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.serving.take().expect("stopped once")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `body` as JSON (if any) with an optional bearer token.
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// Registers `email` with the test password.
    pub async fn register(&self, email: &str) -> Reply {
        self.post("/api/v1/auth/register", None, json!({"email": email, "password": PASSWORD, "name": "Test User"}))
            .await
    }

    pub async fn login(&self, email: &str) -> Reply {
        self.post("/api/v1/auth/login", None, json!({"email": email, "password": PASSWORD})).await
    }

    /// Registers and logs in a new user; returns `(access token, refresh token)`.
    pub async fn signed_in_user(&self, email: &str) -> (String, String) {
        assert_eq!(self.register(email).await.status, StatusCode::CREATED);
        let reply = self.login(email).await;
        assert_eq!(reply.status, StatusCode::OK);
        (
            reply.body["access_token"].as_str().unwrap().to_string(),
            reply.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates an account with `role` directly in the store (as `candor user add` does); returns its id.
    pub async fn add_user(&self, email: &str, role: candor::domain::Role) -> candor::domain::UserId {
        let hash = candor::auth::hash_password(PASSWORD.into()).await.unwrap();
        let email = candor::domain::Email::parse(email).unwrap();
        let name = candor::domain::PersonName::parse("Test Coach").unwrap();
        let user = candor::store::NewUser { email: &email, password_hash: &hash, name: &name, role };
        self.state.store.insert_user(user).await.unwrap().id
    }

    /// Creates a behavioral interview; returns its id.
    pub async fn create_interview(&self, token: &str) -> String {
        let reply = self
            .post(
                "/api/v1/interviews",
                Some(token),
                json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }
}

/// A report with every section filled: scores all `overall`, two answers' delivery, two minutes of presence, a
/// two-step learning path.
pub fn sample_report(overall: u8) -> Report {
    let step = |competency: &str| Step {
        competency: competency.into(),
        name: competency.replace('_', " "),
        why: "Your answers probing this scored 40 of 100.".into(),
        resources: vec![Resource {
            competency: competency.into(),
            title: "A guide".into(),
            kind: "article".into(),
            url: None,
            description: "Read it.".into(),
            step: "Practise once.".into(),
        }],
    };
    Report {
        overall,
        complete: true,
        dimensions: Dimension::ALL
            .iter()
            .map(|d| DimensionScore { dimension: *d, name: d.as_str().replace('_', " "), score: overall })
            .collect(),
        rounds: Vec::new(),
        questions: Vec::new(),
        coverage: Coverage { competencies: Vec::new(), job_skills: Vec::new(), job_duties: Vec::new() },
        delivery: DeliverySummary {
            wpm: Some(150.0),
            timeline: vec![
                DeliveryPoint { t_ms: 30_000, wpm: Some(150.0), fillers_per_min: 2.0, long_pauses: 0 },
                DeliveryPoint { t_ms: 120_000, wpm: Some(182.0), fillers_per_min: 5.0, long_pauses: 1 },
            ],
            ..Default::default()
        },
        presence: Some(PresenceSummary {
            face_visible: 1.0,
            eye_contact: 0.5,
            expression: None,
            timeline: (0..12)
                .map(|i| PresencePoint { t_ms: i * 10_000, face_visible: 1.0, eye_contact: Some(0.5) })
                .collect(),
        }),
        strengths: Vec::new(),
        improvements: Vec::new(),
        learning_path: vec![step("ownership"), step("communication")],
        progress: None,
        summary: "One answered question.".into(),
    }
}

impl TestApp {
    /// A finished interview of the token's user whose stored report is `report`; its id.
    pub async fn interview_with_report(&self, token: &str, report: &Report) -> String {
        let app = self;
        let user: UserId = app.get("/api/v1/me", Some(token)).await.body["id"].as_str().unwrap().parse().unwrap();
        let created = app
            .post(
                "/api/v1/interviews",
                Some(token),
                json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid"}),
            )
            .await;
        let id = created.body["id"].as_str().unwrap().to_string();
        let document = serde_json::to_string(report).unwrap();
        let roadmap = serde_json::to_string(&report.learning_path).unwrap();
        let overall = f64::from(report.overall);
        app.state
            .store
            .insert_report(NewReport {
                interview: id.parse::<InterviewId>().unwrap(),
                user,
                overall,
                technical_depth: overall,
                communication: overall,
                structure: overall,
                impact: overall,
                confidence: 50.0,
                presence: 50.0,
                strengths: "[]",
                improvements: "[]",
                summary: &report.summary,
                document: &document,
                roadmap: &roadmap,
                resources: "[]",
            })
            .await
            .unwrap();
        id
    }
}

/// A local SMTP server (aiosmtpd, installed by the test command) that keeps every message in a maildir; `None`
/// (the test skips) when it is not installed, unless the test command requires services.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub async fn start() -> Option<Self> {
        let Some(program) = std::env::var_os("CANDOR_TEST_AIOSMTPD") else {
            assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "CANDOR_TEST_AIOSMTPD is missing");
            eprintln!("skipped: no local SMTP server (aiosmtpd)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = std::process::Command::new(program)
            .args(["-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(Self { child, port, dir });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = (child.kill(), child.wait());
        panic!("aiosmtpd never listened on {port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, as text (quoted-printable bodies decoded).
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir/new");
        std::fs::read_dir(new)
            .map(|d| d.flatten().filter_map(|f| std::fs::read_to_string(f.path()).ok()).map(|m| quoted_printable(&m)).collect())
            .unwrap_or_default()
    }

    /// Waits (generously) for a message to `to`; its text.
    pub async fn message_to(&self, to: &str) -> String {
        for _ in 0..300 {
            if let Some(message) = self.messages().into_iter().find(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(to))) {
                return message;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no message to {to}: {:?}", self.messages());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Quoted-printable decoding (RFC 2045): soft line breaks joined, `=XX` bytes restored.
fn quoted_printable(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A local S3-compatible server (moto's server mode, installed by the test command) with one empty bucket;
/// `None` (the test skips) when it is not installed, unless the test command requires services.
#[allow(dead_code)] // used by some test binaries only
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
    pub bucket: String,
}

#[allow(dead_code)]
impl S3Server {
    pub async fn start() -> Option<Self> {
        let Some(program) = std::env::var_os("CANDOR_TEST_MOTO") else {
            assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "CANDOR_TEST_MOTO is missing");
            eprintln!("skipped: no local S3 server (moto)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = std::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let bucket = "candor-test".to_string();
        let client = reqwest::Client::new();
        // Generous: moto imports a lot before it listens.
        for _ in 0..600 {
            if let Ok(reply) = client.put(format!("{endpoint}/{bucket}")).send().await {
                let server = Self { child, endpoint, bucket };
                assert!(reply.status().is_success(), "bucket not created: {}", reply.status());
                return Some(server);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = (child.kill(), child.wait());
        panic!("moto_server never listened on {port}");
    }

    /// Points a configuration at this server.
    pub fn configure(&self, config: &mut Config) {
        config.s3_bucket = Some(self.bucket.clone());
        config.s3_endpoint = Some(self.endpoint.clone());
        config.s3_access_key_id = Some(SecretString::from("test-key"));
        config.s3_secret_access_key = Some(SecretString::from("test-secret"));
    }

    /// A client of the bucket, signed like the server's (moto refuses anonymous reads of private objects).
    fn client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("test-key")
            .with_secret_access_key("test-secret")
            .build()
            .unwrap()
    }

    /// The keys of the objects in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let listed: Vec<_> = self.client().list(None).try_collect().await.unwrap();
        listed.into_iter().map(|o| o.location.to_string()).collect()
    }

    pub async fn object(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStore;
        self.client().get(&key.into()).await.unwrap().bytes().await.unwrap().to_vec()
    }

    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStore;
        self.client().put(&key.into(), bytes.into()).await.unwrap();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
