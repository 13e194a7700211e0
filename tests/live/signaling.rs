//! Signaling and session life cycle: bad input gets clear errors and leaves the server healthy; one live session
//! per user and a bounded number per node; a vanished peer is cleaned up; floods of signaling or data-channel
//! messages are refused and then closed without touching other sessions; a socket that never offers times out;
//! the tokens in signaling URLs never reach the logs.

use std::time::Duration;

use candor_loadtest::{Client, Role};
use candor_signaling::ServerMessage;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::models_dir;
use crate::{Binary, PATIENCE, candidate_app, metric, options};

/// Opens the signaling socket and returns it.
pub(crate) async fn socket(
    addr: std::net::SocketAddr,
    interview: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("ws://{addr}/api/v1/interviews/{interview}/rtc?{query}");
    tokio_tungstenite::connect_async(url).await.expect("upgrade").0
}

pub(crate) async fn next_message(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Option<ServerMessage> {
    let message = tokio::time::timeout(PATIENCE, ws.next()).await.ok()??.ok()?;
    let Message::Text(text) = message else { return None };
    serde_json::from_str(&text).ok()
}

pub(crate) fn code(message: Option<ServerMessage>) -> String {
    match message {
        Some(ServerMessage::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_signaling_gets_clear_errors_and_a_valid_session_still_works() {
    let (app, token, interview) = candidate_app().await;
    let mut ws = socket(app.addr, &interview, &format!("access_token={token}")).await;
    for (text, expected) in [
        ("{not json".to_string(), "malformed_json"),
        (r#"{"type":"hug"}"#.to_string(), "unknown_type"),
        (format!(r#"{{"type":"end","pad":"{}"}}"#, "x".repeat(70_000)), "message_too_large"),
        (r#"{"type":"offer","sdp":"this is not sdp"}"#.to_string(), "invalid_sdp"),
        (
            serde_json::json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"}).to_string(),
            "offer_without_audio",
        ),
    ] {
        ws.send(Message::Text(text.into())).await.unwrap();
        assert_eq!(code(next_message(&mut ws).await), expected);
    }
    drop(ws);

    // The same user can still start a real session afterwards.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000], 48_000));
    let client = Client::connect(opts).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    client.end().await;
}

#[tokio::test]
async fn wrong_tokens_and_other_users_interviews_are_refused() {
    let (app, token, interview) = candidate_app().await;
    let (bob, _) = app.signed_in_user("bob@example.com").await;
    for (query, expected) in [
        (String::new(), "unauthenticated"),
        ("access_token=garbage".to_string(), "invalid_token"),
        (format!("access_token={bob}"), "not_found"),
        (format!("access_token={token}&role=observer"), "not_found"),
        (format!("access_token={token}&role=director"), "invalid_role"),
    ] {
        let mut ws = socket(app.addr, &interview, &query).await;
        assert_eq!(code(next_message(&mut ws).await), expected, "{query}");
    }
    // A coach the interview is shared with, while nothing is live.
    app.add_user("coach@example.com", candor::domain::Role::Coach).await;
    let shares = format!("/api/v1/interviews/{interview}/shares");
    app.post(&shares, Some(&token), serde_json::json!({"email": "coach@example.com"})).await;
    let coach = app.login("coach@example.com").await.body["access_token"].as_str().unwrap().to_string();
    let mut ws = socket(app.addr, &interview, &format!("access_token={coach}&role=observer")).await;
    assert_eq!(code(next_message(&mut ws).await), "not_live");
    // ...and the coach may not join as the candidate.
    let mut ws = socket(app.addr, &interview, &format!("access_token={coach}")).await;
    assert_eq!(code(next_message(&mut ws).await), "not_found");

    let expired = {
        let claims = app.state.tokens.verify_access(&token).unwrap();
        candor::auth::Tokens::new(&secrecy::SecretString::from(crate::helpers::JWT_SECRET), 900, 3600).issue_access(
            claims.user_id().unwrap(),
            claims.role,
            claims.iat - 3600,
        )
    };
    let mut ws = socket(app.addr, &interview, &format!("access_token={expired}")).await;
    assert_eq!(code(next_message(&mut ws).await), "token_expired");
}

#[tokio::test]
async fn a_second_simultaneous_session_is_refused_and_the_first_keeps_running() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000 * 20], 48_000));
    let first = Client::connect(opts).await.unwrap();
    assert!(first.wait_until(PATIENCE, |c| c.is_connected()).await);

    let other_interview = app.create_interview(&token).await;
    let mut ws = socket(app.addr, &other_interview, &format!("access_token={token}")).await;
    assert_eq!(code(next_message(&mut ws).await), "session_already_live");

    let before = crate::events_of(&first, "speech.metrics").len();
    assert!(first.wait_until(PATIENCE, |c| crate::events_of(c, "speech.metrics").len() > before).await);
    first.end().await;
}

/// Its peer is closed at once; the session waits for the candidate to rejoin (`tests/live/rejoin.rs`).
#[tokio::test]
async fn a_peer_that_vanishes_is_cleaned_up() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000 * 5], 48_000));
    let client = Client::connect(opts).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    assert_eq!(metric(&app, "candor_rtc_peers", Some(("role", "candidate"))), 1.0);
    client.vanish().await;

    let deadline = tokio::time::Instant::now() + PATIENCE;
    while metric(&app, "candor_rtc_peers", Some(("role", "candidate"))) != 0.0 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&app, "candor_rtc_peers", Some(("role", "candidate"))), 0.0);
    assert_eq!(app.state.live.live_sessions(), 1, "the session waits for a rejoin");

    // The user may come back.
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    client.end().await;
}

#[tokio::test]
async fn a_non_trickle_offer_and_data_channel_errors_work() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.trickle = false;
    let client = Client::connect(opts).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    assert!(client.wait_until(PATIENCE, |c| !crate::events_of(c, "session.state").is_empty()).await);
    client.send_event("{oops").await.unwrap();
    client.send_event(r#"{"v":1,"type":"control","action":"dance"}"#).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| crate::events_of(c, "error").len() >= 2).await);
    let codes: Vec<_> = crate::events_of(&client, "error").iter().map(|e| e["code"].clone()).collect();
    assert_eq!(codes, [serde_json::json!("malformed_json"), serde_json::json!("invalid_message")]);
    // The session goes on; an end control message ends it.
    client.send_event(r#"{"v":1,"type":"control","action":"end"}"#).await.unwrap();
    assert!(
        client.wait_until(PATIENCE, |c| c.signals().iter().any(|s| matches!(s, ServerMessage::Ended { .. }))).await
    );
    client.vanish().await;
}

#[tokio::test]
async fn whip_ingest_answers_201_and_delete_ends_the_session() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.whip = true;
    opts.audio = Some((vec![0.1; 48_000 * 10], 48_000));
    let client = Client::connect(opts).await.expect("WHIP accepts the offer");
    assert!(client.wait_until(PATIENCE, |c| !crate::events_of(c, "speech.metrics").is_empty()).await);

    // A second ingest for the same user, for another interview, is refused while the first runs.
    let other = app.create_interview(&token).await;
    let mut second = options(&app, &token, &other, Role::Candidate);
    second.whip = true;
    match Client::connect(second).await {
        Err(candor_loadtest::ClientError::WhipRefused { status, body }) => {
            assert_eq!(status, 409);
            assert!(body.contains("session_already_live"), "{body}");
        }
        other => panic!("expected 409, got {:?}", other.err()),
    }

    let http = reqwest::Client::new();
    let whip = app.url(&format!("/api/v1/interviews/{interview}/whip"));
    let deleted = http.delete(&whip).bearer_auth(&token).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.state.live.live_sessions(), 0);
    assert_eq!(http.delete(&whip).bearer_auth(&token).send().await.unwrap().status(), 404);
    client.vanish().await;
}

#[tokio::test]
async fn whip_refuses_garbage_and_the_wrong_media_type() {
    let (app, token, interview) = candidate_app().await;
    let http = reqwest::Client::new();
    let whip = app.url(&format!("/api/v1/interviews/{interview}/whip"));
    let post = |content_type: &'static str, body: &'static str| {
        http.post(&whip).bearer_auth(&token).header("content-type", content_type).body(body).send()
    };
    let garbage = post("application/sdp", "hello").await.unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.json::<serde_json::Value>().await.unwrap()["error"]["code"], "invalid_sdp");
    assert_eq!(post("application/json", "{}").await.unwrap().status(), 415);
    let unauthenticated = http.post(&whip).header("content-type", "application/sdp").body("v=0").send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(app.state.live.live_sessions(), 0);

    // A valid offer for someone else's interview: 404, and the refusal is audited with the WebSocket's.
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                 c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";
    let (other, _) = app.signed_in_user("bob@example.com").await;
    let foreign = http.post(&whip).bearer_auth(&other).header("content-type", "application/sdp").body(offer).send().await.unwrap();
    assert_eq!(foreign.status(), 404);
    let audited = app.state.store.audit_entries("interview.live.join").await.unwrap();
    assert!(audited.iter().any(|e| e.outcome == "denied" && e.target.as_deref() == Some(interview.as_str())), "{audited:?}");
}

#[tokio::test]
async fn broken_model_files_are_reported_at_start_and_the_server_still_serves() {
    let real = {
        let mut config = candor::config::Config::default();
        crate::helpers::with_models(&mut config);
        config.models_dir
    };
    if !real.join("libonnxruntime.so").exists() {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing");
        return;
    }
    let broken = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(real.join("libonnxruntime.so"), broken.path().join("libonnxruntime.so")).unwrap();
    std::fs::write(broken.path().join("silero_vad.onnx"), b"not a model").unwrap();
    let whole = std::fs::read(real.join("ggml-tiny.en.bin")).unwrap();
    std::fs::write(broken.path().join("ggml-tiny.en.bin"), &whole[..whole.len() / 3]).unwrap();
    for good in ["blazeface_128.onnx", "face-landmarks"] {
        std::os::unix::fs::symlink(real.join(good), broken.path().join(good)).unwrap();
    }
    let expression = std::fs::read(real.join("expression.onnx")).unwrap();
    std::fs::write(broken.path().join("expression.onnx"), &expression[..expression.len() / 2]).unwrap();
    let dir = broken.path().to_path_buf();
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, move |c| c.models_dir = dir).await;

    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "missing engines turn features off, not the server");
    let engines = &ready.body["engines"];
    assert!(engines["vad"].as_str().unwrap().contains("silero_vad.onnx"), "{engines}");
    assert!(engines["stt"].as_str().unwrap().contains("ggml-tiny.en.bin"), "{engines}");
    assert!(engines["vision"].as_str().unwrap().contains("expression.onnx"), "{engines}");

    // A live session still works, without transcripts or face readings.
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000 * 3], 48_000));
    opts.video = Some((candor_loadtest::media::CameraCodec::Vp8, 320, 240, 15));
    let client = Client::connect(opts).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| !crate::events_of(c, "speech.metrics").is_empty()).await);
    assert!(client.wait_until(PATIENCE, |c| !crate::events_of(c, "vision.metrics").is_empty()).await);
    assert!(crate::events_of(&client, "vision.metrics").iter().all(|e| e["face"].is_null()));
    client.end().await;
}

#[tokio::test]
async fn a_session_takes_a_bounded_number_of_observers_and_frees_the_place_of_one_who_leaves() {
    let (app, token, interview) = candidate_app().await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    app.add_user("coach@example.com", candor::domain::Role::Coach).await;
    let shares = format!("/api/v1/interviews/{interview}/shares");
    app.post(&shares, Some(&token), serde_json::json!({"email": "coach@example.com"})).await;
    let coach = app.login("coach@example.com").await.body["access_token"].as_str().unwrap().to_string();
    let query = format!("access_token={coach}&role=observer");
    // An admitted observer answers a bad message with the protocol's error; a refused one was already told why.
    let admitted = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| {
        ws.send(Message::Text(r#"{"type":"bogus"}"#.into())).await.unwrap();
        code(next_message(ws).await)
    };
    let mut watching = Vec::new();
    for _ in 0..candor::live::MAX_OBSERVERS {
        let mut ws = socket(app.addr, &interview, &query).await;
        assert_eq!(admitted(&mut ws).await, "unknown_type");
        watching.push(ws);
    }
    let mut extra = socket(app.addr, &interview, &query).await;
    assert_eq!(code(next_message(&mut extra).await), "too_many_observers");
    watching.pop().unwrap().close(None).await.unwrap();
    let freed = || metric(&app, "candor_rtc_peers", Some(("role", "observer"))) < candor::live::MAX_OBSERVERS as f64;
    let deadline = std::time::Instant::now() + PATIENCE;
    while !freed() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ws = socket(app.addr, &interview, &query).await;
    assert_eq!(admitted(&mut ws).await, "unknown_type", "the place of the one who left is free");
    client.end().await;
}

/// A candidate connected with a second of sound, for the tests where someone else misbehaves.
async fn bystander(app: &crate::helpers::TestApp, email: &str) -> Client {
    let (token, _) = app.signed_in_user(email).await;
    let interview = app.create_interview(&token).await;
    let mut opts = options(app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000], 48_000));
    let client = Client::connect(opts).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    client
}

#[tokio::test]
async fn a_signaling_flood_is_refused_then_closed_and_others_are_unaffected() {
    let (app, token, interview) = candidate_app().await;
    let other = bystander(&app, "bob@example.com").await;
    let mut ws = socket(app.addr, &interview, &format!("access_token={token}")).await;
    for _ in 0..10_000 {
        if ws.send(Message::Text("{}".into())).await.is_err() {
            break; // closed by the server
        }
    }
    let (mut limited, mut ended) = (false, None);
    while let Some(message) = next_message(&mut ws).await {
        match message {
            ServerMessage::Error { code, .. } if code == "rate_limited" => limited = true,
            ServerMessage::Ended { reason } => {
                ended = Some(reason);
                break;
            }
            _ => {}
        }
    }
    assert!(limited, "the flood was told to slow down");
    assert_eq!(ended.as_deref(), Some("rate_limited"));
    assert!(other.is_connected(), "another candidate's session goes on");
    other.end().await;
}

#[tokio::test]
async fn a_data_channel_flood_ends_only_that_session() {
    let (app, token, interview) = candidate_app().await;
    let other = bystander(&app, "bob@example.com").await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000], 48_000));
    let flooder = Client::connect(opts).await.expect("connects");
    // Events arriving means the data channel is open.
    assert!(flooder.wait_until(PATIENCE, |c| !c.events().is_empty()).await);
    for _ in 0..10_000 {
        if flooder.send_event(r#"{"v":1,"type":"nope"}"#).await.is_err() {
            break;
        }
    }
    let ended = |c: &Client| crate::events_of(c, "session.state").iter().any(|e| e["state"] == "ended");
    assert!(flooder.wait_until(PATIENCE, ended).await, "{:?}", flooder.events().last());
    assert!(crate::events_of(&flooder, "error").iter().any(|e| e["code"] == "rate_limited"));
    assert!(other.is_connected() && !ended(&other), "another candidate's session goes on");
    other.end().await;
}

#[tokio::test]
async fn a_full_node_refuses_new_sessions_with_a_clear_error() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |c| c.max_live_sessions = 1).await;
    let first = bystander(&app, "ada@example.com").await;
    let (token, _) = app.signed_in_user("bob@example.com").await;
    let interview = app.create_interview(&token).await;
    let mut ws = socket(app.addr, &interview, &format!("access_token={token}")).await;
    assert_eq!(code(next_message(&mut ws).await), "server_full");
    let whip = app
        .client
        .post(app.url(&format!("/api/v1/interviews/{interview}/whip")))
        .bearer_auth(&token)
        .header("content-type", "application/sdp")
        .body(candor_signaling_offer())
        .send()
        .await
        .unwrap();
    assert_eq!(whip.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    first.end().await;
}

/// A minimal offer with Opus audio (the WHIP refusal comes before it is applied).
fn candor_signaling_offer() -> &'static str {
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
}

#[tokio::test]
async fn a_socket_that_never_offers_is_closed_and_frees_the_users_place() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |c| c.signaling_offer_timeout_secs = 1).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let mut ws = socket(app.addr, &interview, &format!("access_token={token}")).await;
    match next_message(&mut ws).await {
        Some(ServerMessage::Ended { reason }) => assert_eq!(reason, "offer_timeout"),
        other => panic!("expected the socket to be ended, got {other:?}"),
    }
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((vec![0.1; 48_000], 48_000));
    let client = Client::connect(opts).await.expect("the place was freed");
    assert!(client.wait_until(PATIENCE, |c| c.is_connected()).await);
    client.end().await;
}

/// The signaling socket carries its access token in the URL (browsers cannot set headers on a WebSocket): the
/// real binary, logging everything at trace level, takes sockets with a valid and a bad token and never writes
/// either to its log.
#[tokio::test]
async fn tokens_in_signaling_urls_never_reach_the_logs() {
    let server = Binary::spawn(&models_dir(), &[("RUST_LOG", "trace"), ("CANDOR_LOG_FORMAT", "json")]).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}/api/v1", server.address);
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = http.post(format!("{base}{path}")).header("content-type", "application/json").body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { serde_json::from_str::<serde_json::Value>(&request.send().await.unwrap().text().await.unwrap()).unwrap() }
    };
    let account = serde_json::json!({"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"});
    post("/auth/register", None, account.clone()).await;
    let login = post("/auth/login", None, serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"})).await;
    let token = login["access_token"].as_str().unwrap().to_string();
    let plan = serde_json::json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid"});
    let interview = post("/interviews", Some(&token), plan).await["id"].as_str().unwrap().to_string();

    let mut ws = socket(server.address, &interview, &format!("access_token={token}")).await;
    ws.send(Message::Text(r#"{"type":"end"}"#.into())).await.unwrap();
    while tokio::time::timeout(PATIENCE, ws.next()).await.ok().flatten().is_some_and(|m| m.is_ok()) {}
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.Zm9yZ2VkLXNpZ25hdHVyZQ";
    let mut refused = socket(server.address, &interview, &format!("access_token={forged}")).await;
    assert_eq!(code(next_message(&mut refused).await), "invalid_token");

    let log = server.log();
    assert!(log.lines().count() > 20, "the server logs at trace level: {log}");
    for secret in [token.as_str(), forged, token.split('.').nth(2).unwrap()] {
        assert!(!log.contains(secret), "a token reached the log");
    }
}
