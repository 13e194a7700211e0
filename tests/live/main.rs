//! Live sessions over real WebRTC: Candor's own Rust client (candor-loadtest) against the real server in
//! process. Slow compared with the API tests, so they live in their own test binary.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod cluster;
mod interview;
mod load;
mod media;
mod network;
mod recordings;
mod rejoin;
mod reliability;
mod signaling;
mod soak;
mod transcripts;

use std::time::Duration;

use candor_loadtest::{Client, Options, Role};
use helpers::{Backend, TestApp, spawn_app};

/// Generous bounds for a loaded 2-core machine; tests finish as soon as the condition holds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A signed-in candidate with a fresh interview: `(app, access token, interview id)`.
pub async fn candidate_app() -> (TestApp, String, String) {
    let app = spawn_app(Backend::Sqlite).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    (app, token, interview)
}

pub fn options(app: &TestApp, token: &str, interview: &str, role: Role) -> Options {
    Options {
        server: app.addr,
        interview_id: interview.to_string(),
        access_token: token.to_string(),
        role,
        audio: None,
        video: None,
        trickle: true,
        whip: false,
        garbage_audio_packets: 0,
        impairment: None,
        picture: None,
    }
}

/// Events of one type the client has received.
pub fn events_of(client: &Client, kind: &str) -> Vec<serde_json::Value> {
    client.events().into_iter().filter(|e| e["type"] == kind).collect()
}

/// What the interviewer started saying, in order.
pub fn said(client: &Client) -> Vec<String> {
    events_of(client, "interviewer.speech")
        .iter()
        .filter(|e| e["phase"] == "start")
        .map(|e| e["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until `check` holds, up to `PATIENCE`.
pub async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The value of an unlabelled or labelled gauge/counter in the app's metrics.
pub fn metric(app: &TestApp, name: &str, label: Option<(&str, &str)>) -> f64 {
    let text = app.state.metrics.render();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let matches = match label {
                Some((k, v)) => series.starts_with(&format!("{name}{{")) && series.contains(&format!("{k}=\"{v}\"")),
                None => series == name,
            };
            matches.then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A server with the fetched models, or `None` (skip the test) when one of `engines` is not ready.
pub async fn app_with(engines: &[&str]) -> Option<TestApp> {
    let app = helpers::spawn_app_with(Backend::Sqlite, helpers::with_models).await;
    let ready = app.get("/readyz", None).await;
    if engines.iter().any(|e| ready.body["engines"][e] != "ok") {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing: {}", ready.body);
        eprintln!("skipped: models are not fetched");
        return None;
    }
    Some(app)
}

/// The real `candor` binary serving on a free loopback port with a fresh data directory and the fetched models;
/// what it prints goes to a file (`log`).
pub struct Binary {
    pub process: tokio::process::Child,
    pub address: std::net::SocketAddr,
    data: tempfile::TempDir,
}

impl Binary {
    /// Starts it with `env` on top of the defaults and waits until `/readyz` answers.
    pub async fn spawn(models: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(data.path().join("server.log")).unwrap();
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
            .arg("serve")
            .env("CANDOR_BIND", address.to_string())
            .env("CANDOR_DATA_DIR", data.path())
            .env("CANDOR_MODELS_DIR", models)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let ready = format!("http://{address}/readyz");
        let deadline = std::time::Instant::now() + PATIENCE;
        while !reqwest::get(&ready).await.is_ok_and(|r| r.status().is_success()) {
            assert!(std::time::Instant::now() < deadline, "the server came up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { process, address, data }
    }

    /// Stops it as an orchestrator does (SIGTERM) and waits until it has exited; returns how it exited.
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.process.id().expect("running") as i32;
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        tokio::time::timeout(Duration::from_secs(30), self.process.wait()).await.expect("it stops").unwrap()
    }

    /// Everything the server has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap()
    }
}

/// `text` spoken by espeak-ng (installed by the test command), as mono PCM and its rate.
pub fn espeak(text: &str) -> (Vec<f32>, u32) {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let spoken = std::process::Command::new("espeak-ng").args(["-v", "en-us", "-w"]).arg(&wav).arg(text).status();
    assert!(spoken.is_ok_and(|s| s.success()), "espeak-ng speaks");
    candor_loadtest::media::read_wav(&wav).unwrap()
}
