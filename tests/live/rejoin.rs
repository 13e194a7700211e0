//! A candidate whose connection drops: the session waits for them (`CANDOR_REJOIN_GRACE_SECS`), the audio it
//! already received is transcribed and kept, and rejoining over a fresh WebRTC connection resumes the same
//! interview at the same question. Past the grace period the interview ends with a report of what was answered.
//! A server that stops mid-interview stores where it stood, and a new one resumes it.

use candor_loadtest::{Client, Role};
use candor_signaling::ServerMessage;
use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::transcripts::espeak;
use crate::{PATIENCE, app_with, events_of, eventually, metric, options, said};

/// After a rejoin or a resume: the candidate types the rest of the answer (it ends in "idempotent"), the
/// interviewer moves on, the candidate ends the interview; its report.
async fn go_on_and_end(app: &TestApp, token: &str, interview: &str, client: &Client) -> serde_json::Value {
    let rest = "I split the nightly batch into small idempotent jobs, added retries and alerts, and failed runs fell by ninety percent.";
    client.send_event(&json!({"v": 1, "type": "answer.text", "text": rest}).to_string()).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await, "the next question");
    client.send_event(r#"{"v":1,"type":"control","action":"end"}"#).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "report.ready").is_empty()).await);
    app.get(&format!("/api/v1/interviews/{interview}/report"), Some(token)).await.body
}

#[tokio::test]
async fn a_candidate_who_drops_mid_answer_rejoins_at_the_same_question_with_nothing_lost() {
    let Some(app) = app_with(&["vad", "stt"]).await else { return };
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let first = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(first.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await);
    let question = events_of(&first, "interviewer.question")[0].clone();
    // The greeting and the question play out before the answer starts.
    assert!(first.wait_until(PATIENCE, |c| events_of(c, "interviewer.speech").iter().any(|e| e["phase"] == "end" && e["text"].as_str().is_some_and(|t| t.contains(question["text"].as_str().unwrap())))).await);

    // The network vanishes in the middle of a sentence: no silence ends the turn, no end is sent.
    let (begun, _) = espeak("At my last company I rebuilt the billing pipeline for our largest customers", 150);
    first.say(begun, 16_000).await;
    first.vanish().await;

    // The session waits; the audio received before the drop is transcribed and stored with its question.
    let id = interview.parse().unwrap();
    let store = app.state.store.clone();
    let stored = eventually(async || {
        store.turns(id).await.is_ok_and(|turns| {
            turns.iter().any(|t| t.text.to_lowercase().contains("pipeline") && t.question_id.as_deref() == question["question_id"].as_str())
        })
    })
    .await;
    assert!(stored, "the words said before the drop were kept: {:?}", store.turns(id).await);
    assert_eq!(app.state.live.live_sessions(), 1, "the session waits for the candidate");
    assert_eq!(metric(&app, "candor_session_connections_total", Some(("event", "dropped"))), 1.0);

    // Back on a fresh connection: the same question, continued, and the words heard while away delivered.
    let second = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("rejoins");
    let resumed = |c: &Client| said(c).iter().any(|t| t.starts_with("Welcome back. Please go on") && t.ends_with(question["text"].as_str().unwrap()));
    assert!(second.wait_until(PATIENCE, resumed).await, "{:?}", said(&second));
    assert!(events_of(&second, "transcript.final").iter().any(|f| f["text"].as_str().is_some_and(|t| t.to_lowercase().contains("pipeline"))));
    assert_eq!(metric(&app, "candor_session_connections_total", Some(("event", "rejoined"))), 1.0);
    assert_eq!(metric(&app, "candor_rtc_peers", Some(("role", "candidate"))), 1.0);

    // The rest of the answer joins what was said before the drop; the interview moves on.
    let report = go_on_and_end(&app, &token, &interview, &second).await;
    let answer = report["questions"][0]["answer"].as_str().unwrap_or_default().to_lowercase();
    assert!(answer.contains("pipeline") && answer.contains("idempotent"), "one answer across the drop: {answer:?}");
    second.vanish().await;
}

#[tokio::test]
async fn past_the_grace_period_the_interview_ends_with_a_report_of_what_was_answered() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.rejoin_grace_secs = 1).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await);
    let answer = "At my last job I led the move of our billing system to a queue and failures fell by half.";
    client.send_event(&json!({"v": 1, "type": "answer.text", "text": answer}).to_string()).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| events_of(c, "interviewer.question").len() >= 2).await);
    client.vanish().await;

    assert!(eventually(async || app.state.live.live_sessions() == 0).await, "the session ended after the grace period");
    assert_eq!(metric(&app, "candor_session_connections_total", Some(("event", "expired"))), 1.0);
    let report = app.get(&format!("/api/v1/interviews/{interview}/report"), Some(&token)).await;
    assert_eq!(report.body["questions"][0]["answer"], answer, "{}", report.body);
    // Joining now is refused: the interview is over.
    let late = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("the socket opens");
    let refused = |c: &Client| c.signals().iter().any(|s| matches!(s, ServerMessage::Error { code, .. } if code == "interview_ended"));
    assert!(late.wait_until(PATIENCE, refused).await, "{:?}", late.signals());
    late.vanish().await;
}

#[tokio::test]
async fn joining_again_while_connected_takes_the_session_over_and_the_old_socket_is_told() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let old = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(old.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await);

    // A reloaded page: the same candidate joins the same interview before the server noticed anything.
    let new = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("takes over");
    assert!(new.wait_until(PATIENCE, |c| c.is_connected()).await);
    let replaced = |c: &Client| c.signals().iter().any(|s| matches!(s, ServerMessage::Ended { reason } if reason == "replaced"));
    assert!(old.wait_until(PATIENCE, replaced).await, "{:?}", old.signals());
    assert!(new.wait_until(PATIENCE, |c| said(c).iter().any(|t| t.starts_with("Welcome back"))).await, "{:?}", said(&new));
    assert_eq!(app.state.live.live_sessions(), 1);
    // The old socket closing later leaves the new connection alone.
    old.vanish().await;
    new.send_event(r#"{"v":1,"type":"control","action":"repeat"}"#).await.unwrap();
    let before = said(&new).len();
    assert!(new.wait_until(PATIENCE, |c| said(c).len() > before).await, "the session still answers");
    assert!(new.is_connected());
    new.end().await;
}

/// What SIGTERM does (`Live::shutdown` in the graceful shutdown), mid-answer: the answer in progress is
/// transcribed and stored with where the interview stands, the client is told `server_restarting`, and a new
/// server on the same database resumes the interview at the same question.
#[tokio::test]
async fn a_server_restart_mid_answer_loses_nothing_and_the_interview_resumes() {
    let data = tempfile::tempdir().unwrap();
    let start = |dir: std::path::PathBuf| {
        spawn_app_with(Backend::Sqlite, move |c| {
            crate::helpers::with_models(c);
            c.data_dir = dir;
        })
    };
    let app = start(data.path().to_path_buf()).await;
    let ready = app.get("/readyz", None).await.body;
    if ["vad", "stt"].iter().any(|e| ready["engines"][e] != "ok") {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing: {ready}");
        return;
    }
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await);
    let first = "At my last job I moved our billing system to a queue, and failed payments fell by half within a month.";
    client.send_event(&json!({"v": 1, "type": "answer.text", "text": first}).to_string()).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| events_of(c, "interviewer.question").len() >= 2).await);
    let question = events_of(&client, "interviewer.question")[1].clone();
    let text = question["text"].as_str().unwrap().to_string();
    let asked = |c: &Client| events_of(c, "interviewer.speech").iter().any(|e| e["phase"] == "end" && e["text"].as_str().is_some_and(|t| t.ends_with(&text)));
    assert!(client.wait_until(PATIENCE, asked).await);

    let (begun, _) = espeak("At my last company I rebuilt the billing pipeline for our largest customers", 150);
    client.say(begun, 16_000).await;
    drop(app);
    let restarting = |c: &Client| c.signals().iter().any(|s| matches!(s, ServerMessage::Ended { reason } if reason == "server_restarting"));
    assert!(client.wait_until(PATIENCE, restarting).await, "{:?}", client.signals());
    client.vanish().await;

    let app = start(data.path().to_path_buf()).await;
    let id = interview.parse().unwrap();
    let turns = app.state.store.turns(id).await.unwrap();
    assert!(
        turns.iter().any(|t| t.text.to_lowercase().contains("pipeline") && t.question_id.as_deref() == question["question_id"].as_str()),
        "the answer in progress was stored before the server stopped: {turns:?}"
    );
    let back = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("joins again");
    let resumed = |c: &Client| said(c).iter().any(|t| t.starts_with("Welcome back. Please go on") && t.ends_with(&text));
    assert!(back.wait_until(PATIENCE, resumed).await, "{:?}", said(&back));
    assert!(said(&back).iter().all(|t| !t.contains("welcome to your practice interview")), "no second greeting");

    let report = go_on_and_end(&app, &token, &interview, &back).await;
    assert_eq!(report["questions"][0]["answer"], first, "{report}");
    // The question in progress (a follow-up or the next question, as the interviewer chose) holds both parts.
    let asked = report["questions"].as_array().unwrap().iter().flat_map(|q| {
        std::iter::once(q).chain(q["follow_ups"].as_array().into_iter().flatten())
    });
    let second = asked
        .filter(|q| q["id"] == question["question_id"])
        .find_map(|q| q["answer"].as_str())
        .unwrap_or_default()
        .to_lowercase();
    assert!(second.contains("pipeline") && second.contains("idempotent"), "one answer across the restart: {report}");
    back.vanish().await;
}

/// A candidate signed in, their interview, and their client once the first question was asked, on an app that
/// drains for `grace_secs` when it stops.
async fn draining_app(grace_secs: u64) -> (TestApp, String, String, Client) {
    let app = spawn_app_with(Backend::Sqlite, move |c| c.drain_grace_secs = grace_secs).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await);
    (app, token, interview, client)
}

/// SIGTERM with a drain grace: readiness fails at once and new sessions are refused with `server_draining`, but the
/// running interview goes on to its end and its report; then the server stops without waiting out the grace.
#[tokio::test]
async fn a_draining_server_refuses_new_sessions_and_lets_the_running_interview_finish() {
    let (mut app, _token, interview, client) = draining_app(600).await;
    let (other, _) = app.signed_in_user("bob@example.com").await;
    let theirs = app.create_interview(&other).await;
    let stopped = app.stop();
    assert!(eventually(async || app.get("/readyz", None).await.status == reqwest::StatusCode::SERVICE_UNAVAILABLE).await);
    assert!(app.get("/readyz", None).await.body["checks"]["node"].as_str().unwrap().starts_with("draining"));
    let mut ws = crate::signaling::socket(app.addr, &theirs, &format!("access_token={other}")).await;
    assert_eq!(crate::signaling::code(crate::signaling::next_message(&mut ws).await), "server_draining", "a new session is refused");

    let answer = "I led the move of our billing service to a new database, in small tested steps, and we finished early.";
    client.send_event(&json!({"v": 1, "type": "answer.text", "text": answer}).to_string()).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| events_of(c, "interviewer.question").len() >= 2).await, "the interview goes on");
    client.send_event(r#"{"v":1,"type":"control","action":"end"}"#).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "report.ready").is_empty()).await, "{:?}", client.events());
    let stopped = tokio::time::timeout(PATIENCE, stopped).await;
    assert!(stopped.is_ok_and(|r| r.is_ok()), "the server stops once its last interview ended, well inside the grace");
    let store = reopened(&app).await;
    let id = interview.parse().unwrap();
    assert_eq!(store.interview(id).await.unwrap().unwrap().status.to_string(), "completed");
    assert!(store.turns(id).await.unwrap().iter().any(|t| t.text == answer));
    client.vanish().await;
}

/// The stopped app's database, opened again.
async fn reopened(app: &TestApp) -> candor::store::Store {
    let config = &app.state.config;
    candor::startup::open_store(config, &candor::startup::vault(config).unwrap()).await.unwrap()
}

/// Past the drain grace, an interview still running is stored where it stands and its candidate told
/// `server_draining`; it stays in progress, to resume when they join again.
#[tokio::test]
async fn past_the_drain_grace_a_running_interview_is_stored_and_told_server_draining() {
    let (mut app, _token, interview, client) = draining_app(1).await;
    let answer = "At my last job I moved our billing system to a queue, and failed payments fell by half within a month.";
    client.send_event(&json!({"v": 1, "type": "answer.text", "text": answer}).to_string()).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| events_of(c, "interviewer.question").len() >= 2).await);
    let stopped = app.stop();
    let told = |c: &Client| c.signals().iter().any(|s| matches!(s, ServerMessage::Ended { reason } if reason == "server_draining"));
    assert!(client.wait_until(PATIENCE, told).await, "{:?}", client.signals());
    assert!(tokio::time::timeout(PATIENCE, stopped).await.is_ok_and(|r| r.is_ok()));
    let store = reopened(&app).await;
    let id = interview.parse().unwrap();
    assert_eq!(store.interview(id).await.unwrap().unwrap().status.to_string(), "in_progress", "not ended");
    assert!(store.turns(id).await.unwrap().iter().any(|t| t.text == answer), "the answer is stored");
    client.vanish().await;
}
