//! Whole interviews over the real server: a candidate connects over WebRTC and types answers on the data channel
//! (typed answers are turns like spoken ones, so no speech models are needed), through every question to
//! `report.ready` and the report over REST, on SQLite and PostgreSQL. And the LLM brain against a local server
//! speaking the OpenAI streaming protocol: good replies are used, every kind of failure falls back to the
//! built-in brain at once, and the interview goes on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use candor_loadtest::{Client, Role};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Backend, SmtpSink, TestApp, spawn_app_with};
use crate::{PATIENCE, events_of, options};

/// An answer that addresses `question` in its own words, as a complete story with a measured result.
fn strong_answer(question: &str) -> String {
    format!(
        "At my last job I faced exactly this. {question} My task was to sort it out before a deadline. First I \
         analysed the problem and talked to the people involved, then I decided on a plan and I led the work \
         myself, because the users depended on it. As a result we cut the time it took by 40 percent within two \
         weeks, and the team still uses the approach."
    )
}

/// The text of every interviewer.question so far.
fn asked(client: &Client) -> Vec<Value> {
    events_of(client, "interviewer.question")
}

/// A candidate signed in, their interview, and their client once the first question was asked.
async fn first_question(app: &TestApp) -> (String, String, Client) {
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !asked(c).is_empty()).await);
    (token, interview, client)
}

async fn typed(client: &Client, text: &str) {
    let message = json!({"v": 1, "type": "answer.text", "text": text}).to_string();
    client.send_event(&message).await.expect("the data channel is open");
}

/// Answers every question that comes until the closing, then has no questions; returns the report.ready event.
async fn answer_everything(app: &TestApp, token: &str, interview: &str) -> (Client, Value) {
    let client = Client::connect(options(app, token, interview, Role::Candidate)).await.expect("connects");
    let mut answered = 0;
    loop {
        let closing = |c: &Client| events_of(c, "session.state").iter().any(|e| e["state"] == "wrapping_up");
        let next = |c: &Client| asked(c).len() > answered || closing(c);
        assert!(client.wait_until(PATIENCE, next).await, "no question came: {:?}", client.events());
        if closing(&client) && asked(&client).len() == answered {
            break;
        }
        let question = asked(&client)[answered]["text"].as_str().unwrap().to_string();
        answered += 1;
        typed(&client, &strong_answer(&question)).await;
    }
    typed(&client, "No, thank you.").await;
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "report.ready").is_empty()).await, "{:?}", client.events());
    let ready = events_of(&client, "report.ready").remove(0);
    (client, ready)
}

async fn typed_interview_to_report(backend: Backend) {
    // With SMTP, the candidate is told by email that the report is ready.
    let smtp = SmtpSink::start().await;
    let url = smtp.as_ref().map(SmtpSink::url);
    let app = spawn_app_with(backend, move |c| c.smtp_url = url.map(Into::into)).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let created = app
        .post(
            "/api/v1/interviews",
            Some(&token),
            json!({"role": "Backend engineer", "interview_type": "mixed", "experience_level": "mid", "question_count": 3}),
        )
        .await;
    let interview = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/api/v1/interviews/{interview}/report"), Some(&token)).await.status, StatusCode::NOT_FOUND);

    let (client, ready) = answer_everything(&app, &token, &interview).await;
    let questions = asked(&client);
    let planned: Vec<&Value> = questions.iter().filter(|q| q["follow_up"] == false).collect();
    assert_eq!(planned.len(), 3, "three planned questions: {questions:?}");
    assert_eq!((planned[0]["index"].clone(), planned[2]["total"].clone()), (json!(1), json!(3)));
    assert_eq!(planned[0]["round_kind"], "behavioral");
    let scored = events_of(&client, "answer.scored");
    assert_eq!(scored.len(), 3, "each planned question scored once");
    for s in &scored {
        assert_eq!(s["scores"].as_object().unwrap().len(), 4, "{s}");
        assert!(s["ratings"].as_array().unwrap().iter().all(|r| r["reason"].as_str().is_some_and(|t| !t.is_empty())));
        assert_eq!(s["brain"], "built_in");
    }
    let finals = events_of(&client, "transcript.final");
    let (answers, closing) = finals.split_at(finals.len() - 1);
    assert!(answers.iter().all(|f| f["question_id"].is_string()), "typed answers are turns with their question: {finals:?}");
    assert!(closing[0]["question_id"].is_null(), "the reply to the closing answers no question");
    assert!(client.wait_until(PATIENCE, |c| c.signals().iter().any(|s| matches!(s, candor_signaling::ServerMessage::Ended { .. }))).await);

    assert_eq!(ready["url"], format!("/api/v1/interviews/{interview}/report"));
    let report = app.get(ready["url"].as_str().unwrap(), Some(&token)).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let report = report.body;
    assert_eq!(report["complete"], true);
    assert_eq!(report["questions"].as_array().unwrap().len(), 3);
    assert!(report["overall"].as_u64().unwrap() >= 50, "strong answers score well: {}", report["overall"]);
    assert_eq!(report["dimensions"].as_array().unwrap().len(), 4);
    let first = &report["questions"][0];
    assert!(first["answer"].as_str().unwrap().starts_with("At my last job"));
    assert!(first["ratings"][0]["anchor"].is_string() && first["ratings"][0]["evidence"]["text"].is_string());
    assert!(report["rounds"].as_array().unwrap().len() >= 2);
    assert!(report["coverage"]["competencies"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(report["summary"].as_str().is_some_and(|s| s.contains("3 answered questions")), "{}", report["summary"]);
    report_charts(&app, &token, &interview).await;
    if let Some(smtp) = &smtp {
        let message = smtp.message_to("ada@example.com").await;
        assert!(message.contains(&format!("/report.html?interview={interview}")), "a link to the report: {message}");
        assert!(!message.contains("Test User") && !message.contains("At my last job"), "nothing personal beyond the link: {message}");
    }

    let detail = app.get(&format!("/api/v1/interviews/{interview}"), Some(&token)).await.body;
    assert_eq!(detail["status"], "completed");
    let candidate_turns = detail["turns"].as_array().unwrap().iter().filter(|t| t["speaker"] == "candidate").count();
    assert_eq!(candidate_turns, finals.len(), "every answer (follow-ups' too) and the closing reply are stored");
    // Someone else cannot read it.
    let (other, _) = app.signed_in_user("eve@example.com").await;
    assert_eq!(app.get(&format!("/api/v1/interviews/{interview}/report"), Some(&other)).await.status, StatusCode::NOT_FOUND);
    client.end().await;
}

#[tokio::test]
async fn a_typed_interview_runs_from_greeting_to_report_on_sqlite() {
    typed_interview_to_report(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_typed_interview_runs_from_greeting_to_report_on_postgres() {
    if std::env::var("CANDOR_TEST_DATABASE_URL").is_err() {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "CANDOR_TEST_DATABASE_URL is missing");
        return;
    }
    typed_interview_to_report(Backend::Postgres).await;
}

#[tokio::test]
async fn controls_skip_pause_resume_and_end_drive_the_interview() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (token, interview, client) = first_question(&app).await;
    let control = |action: &str| json!({"v": 1, "type": "control", "action": action}).to_string();
    client.send_event(&control("skip")).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| asked(c).len() == 2).await, "{:?}", client.events());
    assert_eq!(asked(&client)[1]["index"], 2, "a skipped question counts");
    client.send_event(&control("pause")).await.unwrap();
    let paused = |c: &Client, p: bool| events_of(c, "session.state").iter().any(|e| e["paused"] == p);
    assert!(client.wait_until(PATIENCE, |c| paused(c, true)).await);
    client.send_event(&control("resume")).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| paused(c, false)).await);
    let second = asked(&client)[1]["text"].as_str().unwrap().to_string();
    typed(&client, &strong_answer(&second)).await;
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "answer.scored").is_empty()).await);
    client.send_event(&control("end")).await.unwrap();
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "report.ready").is_empty()).await, "{:?}", client.events());
    let report = app.get(&format!("/api/v1/interviews/{interview}/report"), Some(&token)).await.body;
    assert_eq!(report["complete"], false, "ended early");
    assert_eq!(report["questions"][0]["skipped"], true);
    // Unknown controls and a flood of them are refused with clear errors; nothing breaks.
    client.end().await;
}

#[tokio::test]
async fn abandoning_over_rest_ends_the_live_session_without_a_report() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (token, interview, client) = first_question(&app).await;
    let question = asked(&client)[0]["text"].as_str().unwrap().to_string();
    typed(&client, &strong_answer(&question)).await;
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "answer.scored").is_empty()).await);
    let abandoned = app.post(&format!("/api/v1/interviews/{interview}/abandon"), Some(&token), json!({})).await;
    assert_eq!(abandoned.status, StatusCode::OK);
    assert!(client.wait_until(PATIENCE, |c| c.signals().iter().any(|s| matches!(s, candor_signaling::ServerMessage::Ended { .. }))).await);
    assert!(events_of(&client, "report.ready").is_empty());
    assert_eq!(app.get(&format!("/api/v1/interviews/{interview}/report"), Some(&token)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.state.live.live_sessions(), 0);
    // What was said is kept.
    let detail = app.get(&format!("/api/v1/interviews/{interview}"), Some(&token)).await.body;
    assert_eq!(detail["status"], "abandoned");
    assert!(detail["turns"].as_array().unwrap().iter().any(|t| t["speaker"] == "candidate"));
}

/// How the fake LLM answers one request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Valid,
    NotJson,
    BreaksSchema,
    SlowFirstToken,
    ServerError,
    BreaksOff,
    /// The spoken decision, then nothing until the test lets the ratings go.
    HeldAfterDecision,
}

#[derive(Clone, Default)]
struct FakeLlm {
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Value>>>,
    release: Arc<tokio::sync::Notify>,
}

fn sse(content: &str) -> Vec<String> {
    // The content in a few pieces, as a streaming server sends it.
    let chars: Vec<char> = content.chars().collect();
    let mut events: Vec<String> = chars
        .chunks(40)
        .map(|piece| {
            let delta = json!({"choices": [{"index": 0, "delta": {"content": piece.iter().collect::<String>()}}]});
            format!("data: {delta}\n\n")
        })
        .collect();
    events.push("data: [DONE]\n\n".into());
    events
}

/// A reply in the schema's order: the spoken decision, then the ratings.
fn judgement(rating: u8) -> String {
    let r = json!({"reason": "Judged by the model.", "evidence": "", "rating": rating});
    let ratings = json!({"technical_depth": r, "communication": r, "structure": r, "impact": r});
    format!(r#"{{"follow_up": {{"missing": "", "needed": false, "question": ""}}, "assessment": {ratings}}}"#)
}

async fn chat(State(fake): State<FakeLlm>, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    fake.requests.lock().unwrap().push(request);
    let reply = fake.script.lock().unwrap().pop_front().unwrap_or(Reply::Valid);
    let events = match reply {
        Reply::Valid => sse(&judgement(5)),
        Reply::NotJson => sse("Sure! Here is my assessment: the answer was good."),
        Reply::BreaksSchema => sse(&json!({"assessment": {"technical_depth": {"reason": "x", "evidence": "", "rating": 9}}, "follow_up": {"needed": false, "question": ""}}).to_string()),
        Reply::SlowFirstToken => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            sse(&judgement(5))
        }
        Reply::ServerError => return (StatusCode::INTERNAL_SERVER_ERROR, "overloaded").into_response(),
        Reply::BreaksOff => {
            let mut events = sse(&judgement(5));
            events.truncate(1);
            events
        }
        Reply::HeldAfterDecision => {
            let reply = judgement(4);
            let (decision, ratings) = reply.split_at(reply.find("\"assessment\"").unwrap());
            let (mut first, rest) = (sse(decision), sse(ratings));
            first.pop();
            let release = fake.release.clone();
            let rest = futures_util::stream::once(async move { release.notified().await }).flat_map(move |_| futures_util::stream::iter(rest.clone()));
            let stream = futures_util::stream::iter(first).chain(rest).map(Ok::<_, std::convert::Infallible>);
            return Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap();
        }
    };
    let stream = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>));
    Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap()
}

async fn fake_llm(script: &[Reply]) -> (String, FakeLlm) {
    let fake = FakeLlm { script: Arc::new(Mutex::new(script.iter().copied().collect())), ..FakeLlm::default() };
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/v1"), fake)
}

#[tokio::test]
async fn an_llm_judges_answers_and_every_kind_of_failure_falls_back_to_the_built_in_brain() {
    use Reply::*;
    let (url, fake) = fake_llm(&[Valid, NotJson, BreaksSchema, SlowFirstToken, ServerError, BreaksOff, Valid]).await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.llm_url = Some(url);
        config.llm_model = Some("judge-1".into());
        config.llm_first_token_ms = 1000;
        config.llm_timeout_ms = 4000;
        // Retry at once, so each scripted failure meets a fresh call.
        config.llm_retry_secs = 0;
    })
    .await;
    assert_eq!(app.get("/readyz", None).await.body["engines"]["llm"], "ok");
    let (token, _) = app.signed_in_user("ada.lovelace@example.com").await;
    let created = app
        .post("/api/v1/interviews", Some(&token), json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid", "question_count": 7}))
        .await;
    let interview = created.body["id"].as_str().unwrap().to_string();
    let (client, _) = answer_everything(&app, &token, &interview).await;
    let brains: Vec<String> = events_of(&client, "answer.scored").iter().map(|s| s["brain"].as_str().unwrap().to_string()).collect();
    assert_eq!(brains, ["llm", "built_in", "built_in", "built_in", "built_in", "built_in", "llm"], "{brains:?}");
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 7);
    let first = &requests[0];
    assert_eq!(first["model"], "judge-1");
    assert_eq!(first["stream"], true);
    assert_eq!(first["response_format"]["type"], "json_schema");
    let prompt = first["messages"].to_string();
    assert!(!prompt.contains("lovelace") && !prompt.contains("example.com"), "no identity: {prompt}");
    let metrics = app.state.metrics.render();
    for (outcome, calls) in [("ok", 2), ("invalid", 2), ("timeout", 1), ("http_error", 1), ("incomplete", 1)] {
        let line = format!("candor_brain_calls_total{{brain=\"llm\",outcome=\"{outcome}\"}} {calls}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    client.end().await;
}

#[tokio::test]
async fn the_llms_spoken_decision_is_acted_on_while_its_ratings_are_still_streaming() {
    let (url, fake) = fake_llm(&[Reply::HeldAfterDecision]).await;
    let app = spawn_app_with(Backend::Sqlite, |config| config.llm_url = Some(url)).await;
    let (_, _, client) = first_question(&app).await;
    let question = asked(&client)[0]["text"].as_str().unwrap().to_string();
    typed(&client, &strong_answer(&question)).await;
    assert!(client.wait_until(PATIENCE, |c| asked(c).len() >= 2).await, "the next question comes with the decision: {:?}", client.events());
    assert!(events_of(&client, "answer.scored").is_empty(), "the ratings are still held back");
    fake.release.notify_one();
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "answer.scored").is_empty()).await, "{:?}", client.events());
    let scored = &events_of(&client, "answer.scored")[0];
    assert_eq!((scored["brain"].as_str(), scored["question_id"].as_str()), (Some("llm"), asked(&client)[0]["question_id"].as_str()));
    assert_eq!(scored["scores"]["impact"], 75, "the model's rating of 4: {scored}");
    client.end().await;
}

#[tokio::test]
async fn a_dead_llm_endpoint_is_down_in_readyz_and_the_interview_goes_on() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.llm_url = Some(format!("http://{closed}/v1"));
        config.llm_retry_secs = 600;
    })
    .await;
    let (_, _, client) = first_question(&app).await;
    let question = asked(&client)[0]["text"].as_str().unwrap().to_string();
    typed(&client, &strong_answer(&question)).await;
    assert!(client.wait_until(PATIENCE, |c| asked(c).len() >= 2).await, "the next question still comes");
    assert_eq!(events_of(&client, "answer.scored")[0]["brain"], "built_in");
    assert_eq!(app.get("/readyz", None).await.body["engines"]["llm"], "down");
    client.end().await;
}

/// The report's charts are drawn from the finished interview (the API tests cover them and the checklist in
/// detail, on stored reports).
async fn report_charts(app: &TestApp, token: &str, interview: &str) {
    let base = format!("/api/v1/interviews/{interview}/report/charts");
    let scores = app.get(&format!("{base}/scores"), Some(token)).await;
    assert_eq!(scores.status, StatusCode::OK, "{}", scores.text);
    assert_eq!(scores.headers["content-type"], "image/svg+xml");
    assert!(scores.text.starts_with("<svg") && scores.text.contains("Overall"), "{}", scores.text);
    // Typed answers have no delivery to chart, and no camera ran: no data rather than an empty chart.
    for chart in ["delivery", "presence"] {
        assert_eq!(app.get(&format!("{base}/{chart}"), Some(token)).await.status, StatusCode::NOT_FOUND, "{chart}");
    }
}
