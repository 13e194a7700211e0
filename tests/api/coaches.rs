//! Coaches: a candidate invites one by email, the invited person signs up from the link as a coach (or signs in
//! and accepts), then sees the interview among those shared with them and reads its report. Wrong accounts,
//! unknown and expired links, and strangers are refused.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, SmtpSink, TestApp, sample_report, spawn_app, spawn_app_with};
use crate::on_both_databases;

on_both_databases!(
    a_newcomer_signs_up_as_a_coach_from_the_invitation_and_sees_the_interview,
    an_existing_account_accepts_with_the_invited_email_only,
    invitation_links_that_are_unknown_expired_or_foreign_are_refused,
    with_smtp_the_server_emails_the_invitation,
);

/// A candidate with an interview; (token, interview id).
async fn candidate(app: &TestApp) -> (String, String) {
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = app.create_interview(&token).await;
    (token, id)
}

/// The token inside an invitation link.
fn token_of(link: &str) -> String {
    link.split("invitation=").nth(1).expect("a token in the link").to_string()
}

async fn a_newcomer_signs_up_as_a_coach_from_the_invitation_and_sees_the_interview(backend: Backend) {
    let app = spawn_app(backend).await;
    let (candidate_token, interview) = candidate(&app).await;
    let invited = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&candidate_token), json!({"email": "Grace@Example.com"})).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    assert_eq!((invited.body["email"].clone(), invited.body["shared"].clone()), (json!("grace@example.com"), json!(false)));
    let link = invited.body["link"].as_str().unwrap();
    assert!(link.starts_with("/coach.html?invitation="), "{link}");
    let token = token_of(link);

    // Anyone holding the link sees what it offers.
    let shown = app.get(&format!("/api/v1/invitations/{token}"), None).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(shown.body["email"], "grace@example.com");
    assert_eq!(shown.body["interview_id"], interview.as_str());
    assert_eq!(shown.body["candidate_name"], "Test User");
    assert_eq!((shown.body["account_exists"].clone(), shown.body["accepted"].clone()), (json!(false), json!(false)));

    // Signing up from it makes a coach account; accepting shares the interview.
    let body = json!({"email": "grace@example.com", "password": PASSWORD, "name": "Grace Coach", "invitation": token});
    let registered = app.post("/api/v1/auth/register", None, body).await;
    assert_eq!((registered.status, registered.body["role"].clone()), (StatusCode::CREATED, json!("coach")), "{}", registered.text);
    let coach = app.login("grace@example.com").await.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/shared", Some(&coach)).await.body, json!([]), "nothing shared before accepting");
    let accepted = app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&coach), json!({})).await;
    assert_eq!((accepted.status, accepted.body.clone()), (StatusCode::OK, json!({"interview_id": interview})));
    assert_eq!(app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&coach), json!({})).await.status, StatusCode::OK, "twice is harmless");
    assert_eq!(app.get(&format!("/api/v1/invitations/{token}"), None).await.body["accepted"], true);

    let shared = app.get("/api/v1/shared", Some(&coach)).await.body;
    assert_eq!(shared.as_array().unwrap().len(), 1, "{shared}");
    assert_eq!(shared[0]["interview_id"], interview.as_str());
    assert_eq!((shared[0]["live"].clone(), shared[0]["report"].clone()), (json!(false), json!(false)));
    assert_eq!(shared[0]["candidate_name"], "Test User");
    let shares = app.get(&format!("/api/v1/interviews/{interview}/shares"), Some(&candidate_token)).await.body;
    assert_eq!(shares[0]["email"], "grace@example.com", "the candidate sees who watches");

    // Once written, the coach reads the report and its charts, but cannot tick the candidate's checklist.
    let other = app.create_interview(&candidate_token).await;
    let report_id = app.interview_with_report(&candidate_token, &sample_report(70)).await;
    let again = app.post(&format!("/api/v1/interviews/{report_id}/invitations"), Some(&candidate_token), json!({"email": "grace@example.com"})).await;
    assert_eq!(again.body["shared"], true, "an existing coach is shared with at once");
    let report = app.get(&format!("/api/v1/interviews/{report_id}/report"), Some(&coach)).await;
    assert_eq!((report.status, report.body["overall"].clone()), (StatusCode::OK, json!(70)));
    assert_eq!(app.get(&format!("/api/v1/interviews/{report_id}/report/charts/scores"), Some(&coach)).await.status, StatusCode::OK);
    let tick = app.request(Method::PUT, &format!("/api/v1/interviews/{report_id}/report/learning-path/ownership"), Some(&coach), Some(json!({"done": true}))).await;
    assert_eq!(tick.status, StatusCode::NOT_FOUND, "the checklist is the candidate's");
    assert_eq!(app.get(&format!("/api/v1/interviews/{other}/report"), Some(&coach)).await.status, StatusCode::NOT_FOUND, "not shared");
    let listed = app.get("/api/v1/shared", Some(&coach)).await.body;
    assert!(listed.as_array().unwrap().iter().any(|s| s["interview_id"] == report_id.as_str() && s["report"] == true), "{listed}");
}

async fn an_existing_account_accepts_with_the_invited_email_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let (candidate_token, interview) = candidate(&app).await;
    let (mentor, _) = app.signed_in_user("mentor@example.com").await;
    let (eve, _) = app.signed_in_user("eve@example.com").await;
    let invited = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&candidate_token), json!({"email": "mentor@example.com"})).await;
    assert_eq!(invited.body["shared"], false, "a candidate account is not a coach until it accepts");
    let token = token_of(invited.body["link"].as_str().unwrap());
    assert_eq!(app.get(&format!("/api/v1/invitations/{token}"), None).await.body["account_exists"], true);

    let wrong = app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&eve), json!({})).await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "wrong_account"));
    assert_eq!(app.get("/api/v1/shared", Some(&eve)).await.body, json!([]));
    assert_eq!(app.post(&format!("/api/v1/invitations/{token}/accept"), None, json!({})).await.status, StatusCode::UNAUTHORIZED);
    let stolen = json!({"email": "thief@example.com", "password": PASSWORD, "name": "Thief", "invitation": token});
    let registered = app.post("/api/v1/auth/register", None, stolen).await;
    assert_eq!((registered.status, registered.code()), (StatusCode::FORBIDDEN, "wrong_account"), "the link does not make any email a coach");

    assert_eq!(app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&mentor), json!({})).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/shared", Some(&mentor)).await.body[0]["interview_id"], interview.as_str());
}

async fn invitation_links_that_are_unknown_expired_or_foreign_are_refused(backend: Backend) {
    // Links that expire at once.
    let app = spawn_app_with(backend, |c| c.invitation_ttl_secs = 0).await;
    let (candidate_token, interview) = candidate(&app).await;
    let unknown = app.get("/api/v1/invitations/ci_nope", None).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "invitation_not_found"));
    let register = json!({"email": "x@example.com", "password": PASSWORD, "name": "X", "invitation": "ci_nope"});
    assert_eq!(app.post("/api/v1/auth/register", None, register).await.status, StatusCode::NOT_FOUND);

    let invited = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&candidate_token), json!({"email": "late@example.com"})).await;
    let token = token_of(invited.body["link"].as_str().unwrap());
    let expired = app.get(&format!("/api/v1/invitations/{token}"), None).await;
    assert_eq!((expired.status, expired.code()), (StatusCode::GONE, "invitation_expired"));

    let (eve, _) = app.signed_in_user("eve@example.com").await;
    let foreign = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&eve), json!({"email": "eve2@example.com"})).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "only the candidate invites");
    let bad = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&candidate_token), json!({"email": "not an email"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn with_smtp_the_server_emails_the_invitation(backend: Backend) {
    let Some(smtp) = SmtpSink::start().await else { return };
    let url = smtp.url();
    let app = spawn_app_with(backend, move |c| c.smtp_url = Some(url.into())).await;
    let (token, interview) = candidate(&app).await;
    let invited = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&token), json!({"email": "grace@example.com"})).await;
    assert_eq!(invited.body["emailed"], true, "{}", invited.text);
    let link = invited.body["link"].as_str().unwrap();
    let message = smtp.message_to("grace@example.com").await;
    assert!(message.contains("Test User invited you"), "{message}");
    assert!(message.contains(&format!("{}{link}", app.url(""))), "the whole link, on this server: {message}");
    let metrics = app.get("/metrics", None).await.text;
    assert!(metrics.contains(r#"candor_emails_total{kind="coach_invited",outcome="sent"} 1"#), "{metrics}");

    // A dead mail server loses nothing: the invitation and its link stand, the failure is counted.
    drop(smtp);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(backend, move |c| c.smtp_url = Some(format!("smtp://127.0.0.1:{dead}").into())).await;
    let (token, interview) = candidate(&app).await;
    let invited = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&token), json!({"email": "grace@example.com"})).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    let link = invited.body["link"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/api/v1/invitations/{}", token_of(&link)), None).await.status, StatusCode::OK);
    let mut counted = false;
    for _ in 0..200 {
        counted = app.get("/metrics", None).await.text.contains(r#"candor_emails_total{kind="coach_invited",outcome="failed"} 1"#);
        if counted {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(counted, "the failed email is counted");
}
