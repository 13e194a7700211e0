//! TURN for browsers behind strict NATs: `GET /rtc/config` hands each signed-in user a time-limited credential
//! of their own, made from the secret shared with the TURN server, and a real coturn relays with it.

use std::process::{Command, Stdio};
use std::time::Duration;

use candor::domain::UserId;
use reqwest::StatusCode;
use secrecy::SecretString;

use crate::helpers::{Backend, spawn_app_with};

const SECRET: &str = "north-wind-secret";

/// A coturn on loopback taking shared-secret credentials; killed on drop.
struct Coturn {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Coturn {
    async fn start() -> Option<Self> {
        if Command::new("turnserver").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "coturn is installed by the test command");
            eprintln!("skipped: no turnserver (coturn)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("turn.log");
        let child = Command::new("turnserver")
            .args(["-n", "--listening-ip=127.0.0.1", &format!("--listening-port={port}"), "--relay-ip=127.0.0.1"])
            .args(["--use-auth-secret", &format!("--static-auth-secret={SECRET}"), "--realm=candor"])
            .args(["--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--log-file=stdout"])
            .arg(format!("--db={}", dir.path().join("turndb").display()))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        let turn = Self { child, port, _dir: dir };
        for _ in 0..300 {
            if std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Total General servers")) {
                return Some(turn);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("turnserver never came up: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Whether coturn allocates a relay for these credentials and relays packets through it.
    async fn relays(&self, username: &str, password: &str) -> bool {
        let run = tokio::process::Command::new("turnutils_uclient")
            .args(["-u", username, "-w", password, "-p", &self.port.to_string(), "-n", "5", "-m", "1", "-c", "-y", "127.0.0.1"])
            .kill_on_drop(true)
            .output();
        let run = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the TURN client ends").unwrap();
        let said = String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
        let relayed = said.contains("Total lost packets 0");
        assert!(relayed || said.contains("Cannot complete Allocation"), "{said}");
        relayed
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_real_turn_server_relays_with_the_credential_rtc_config_hands_out_and_no_other() {
    let Some(turn) = Coturn::start().await else { return };
    let urls = vec![format!("turn:127.0.0.1:{}?transport=udp", turn.port)];
    let configured = urls.clone();
    let app = spawn_app_with(Backend::Sqlite, move |c| {
        c.turn_urls = configured;
        c.turn_secret = Some(SecretString::from(SECRET));
        c.turn_ttl_secs = 3600;
    })
    .await;
    let (ada, _) = app.signed_in_user("ada@example.com").await;
    let (bob, _) = app.signed_in_user("bob@example.com").await;
    let reply = app.get("/api/v1/rtc/config", Some(&ada)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let server = reply.body["ice_servers"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(server["urls"], serde_json::json!(urls));
    let (username, password) = (server["username"].as_str().unwrap(), server["credential"].as_str().unwrap());
    let ada_id = app.get("/api/v1/me", Some(&ada)).await.body["id"].as_str().unwrap().to_string();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, ada_id, "the credential is the caller's own");
    let lifetime = expiry.parse::<i64>().unwrap() - candor::store::now_ms() / 1000;
    assert!((3500..=3600).contains(&lifetime), "it works for turn_ttl_secs: {lifetime}");
    let theirs = app.get("/api/v1/rtc/config", Some(&bob)).await.body["ice_servers"][0]["username"].clone();
    assert_ne!(theirs.as_str(), Some(username));

    assert!(turn.relays(username, password).await, "coturn relays with it");
    let mut tampered = password.to_string();
    tampered.replace_range(..1, if tampered.starts_with('A') { "B" } else { "A" });
    assert!(!turn.relays(username, &tampered).await, "a tampered credential is refused");
    let user: UserId = ada_id.parse().unwrap();
    let past = u64::try_from(candor::store::now_ms() / 1000 - 60).unwrap();
    let (old_name, old_password) = candor::auth::turn_credential(&SecretString::from(SECRET), user, past);
    assert!(!turn.relays(&old_name, &old_password).await, "an expired credential is refused");

    assert_eq!(app.get("/api/v1/rtc/config", None).await.status, StatusCode::UNAUTHORIZED);
}
