//! Reports over REST on stored reports: the charts drawn from their data (SVG), the learning path as a checklist
//! the candidate ticks, and the progress chart across interviews. Whole interviews that end in a report are in
//! the live tests.

use candor_interviewer::report::Report;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, sample_report as report, spawn_app};
use crate::on_both_databases;

on_both_databases!(
    a_reports_charts_are_svg_drawn_from_its_data,
    the_learning_path_is_a_checklist_that_keeps_its_ticks,
    progress_is_charted_from_the_second_report_on,
);

/// The text labels of an SVG chart.
fn labels(svg: &str) -> Vec<String> {
    svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split("</text>").next()?.trim().to_string())).collect()
}

async fn a_reports_charts_are_svg_drawn_from_its_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = app.interview_with_report(&token, &report(64)).await;
    let chart = |name: &str| {
        let path = format!("/api/v1/interviews/{id}/report/charts/{name}");
        let (app, token) = (&app, &token);
        async move { app.get(&path, Some(token)).await }
    };
    for (name, label) in [("scores", "Overall"), ("delivery", "minutes into the interview"), ("presence", "eye contact")] {
        let reply = chart(name).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
        assert_eq!(reply.headers["content-type"], "image/svg+xml");
        assert!(reply.text.starts_with("<svg"), "{name}");
        assert!(labels(&reply.text).iter().any(|l| l == label), "{name}: {:?}", labels(&reply.text));
    }
    assert!(labels(&chart("scores").await.text).iter().any(|l| l == "64"), "the score is written on its bar");
    assert_eq!(chart("delivery").await.text.matches("<circle").count(), 2, "a point per spoken answer");

    let unknown = chart("pie").await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
    let (other, _) = app.signed_in_user("eve@example.com").await;
    assert_eq!(app.get(&format!("/api/v1/interviews/{id}/report/charts/scores"), Some(&other)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/interviews/{id}/report/charts/scores"), None).await.status, StatusCode::UNAUTHORIZED);
    // No report yet: 404, and a report without timelines (made before they were kept) draws no delivery chart.
    let fresh = app.post("/api/v1/interviews", Some(&token), json!({"role": "Recruiter", "interview_type": "hr", "experience_level": "junior"})).await;
    let fresh = fresh.body["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/v1/interviews/{fresh}/report/charts/scores"), Some(&token)).await.status, StatusCode::NOT_FOUND);
    let mut old = serde_json::to_value(report(50)).unwrap();
    old["delivery"].as_object_mut().unwrap().remove("timeline");
    let old: Report = serde_json::from_value(old).expect("older reports still read");
    let old_id = app.interview_with_report(&token, &old).await;
    assert_eq!(app.get(&format!("/api/v1/interviews/{old_id}/report/charts/delivery"), Some(&token)).await.status, StatusCode::NOT_FOUND);
}

async fn the_learning_path_is_a_checklist_that_keeps_its_ticks(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = app.interview_with_report(&token, &report(40)).await;
    let base = format!("/api/v1/interviews/{id}/report");
    let done = |report: &Value| -> Vec<bool> { report["learning_path"].as_array().unwrap().iter().map(|s| s["done"] == true).collect() };
    assert_eq!(done(&app.get(&base, Some(&token)).await.body), [false, false]);

    let tick = |step: &str, body: Value, token: String| {
        let path = format!("{base}/learning-path/{step}");
        let app = &app;
        async move { app.request(Method::PUT, &path, Some(&token), Some(body)).await }
    };
    let ticked = tick("communication", json!({"done": true}), token.clone()).await;
    assert_eq!((ticked.status, ticked.body), (StatusCode::OK, json!({"done": ["communication"]})));
    assert_eq!(tick("ownership", json!({"done": true}), token.clone()).await.body, json!({"done": ["communication", "ownership"]}));
    assert_eq!(done(&app.get(&base, Some(&token)).await.body), [true, true], "ticks are kept");
    assert_eq!(tick("communication", json!({"done": false}), token.clone()).await.body, json!({"done": ["ownership"]}));
    assert_eq!(tick("ownership", json!({"done": true}), token.clone()).await.body, json!({"done": ["ownership"]}), "ticking twice is once");
    assert_eq!(done(&app.get(&base, Some(&token)).await.body), [true, false]);

    let unknown = tick("juggling", json!({"done": true}), token.clone()).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
    let malformed = tick("ownership", json!({"done": "yes"}), token.clone()).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{}", malformed.text);
    let (other, _) = app.signed_in_user("eve@example.com").await;
    assert_eq!(tick("ownership", json!({"done": false}), other).await.status, StatusCode::NOT_FOUND, "another user's checklist");
    assert_eq!(done(&app.get(&base, Some(&token)).await.body), [true, false], "nothing changed by the refused requests");
}

async fn progress_is_charted_from_the_second_report_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    assert_eq!(app.get("/api/v1/me/progress/chart", Some(&token)).await.status, StatusCode::NOT_FOUND);
    let first = app.interview_with_report(&token, &report(45)).await;
    assert_eq!(app.get("/api/v1/me/progress/chart", Some(&token)).await.status, StatusCode::NOT_FOUND, "one interview is no trend");
    let second = app.interview_with_report(&token, &report(61)).await;
    app.interview_with_report(&token, &report(70)).await;
    // A report's own progress chart stops at its interview.
    let upto = |id: String| {
        let (app, token) = (&app, &token);
        async move { app.get(&format!("/api/v1/interviews/{id}/report/charts/progress"), Some(token)).await }
    };
    assert_eq!(upto(first).await.status, StatusCode::NOT_FOUND, "a first interview has no progress");
    assert_eq!(upto(second).await.text.matches("<circle").count(), 2, "the first two interviews");
    let chart = app.get("/api/v1/me/progress/chart", Some(&token)).await;
    assert_eq!(chart.status, StatusCode::OK, "{}", chart.text);
    assert_eq!(chart.text.matches("<circle").count(), 3, "a point per interview");
    assert!(labels(&chart.text).iter().any(|l| l == "#3"));
    // Another user's reports are not in it.
    let (other, _) = app.signed_in_user("eve@example.com").await;
    assert_eq!(app.get("/api/v1/me/progress/chart", Some(&other)).await.status, StatusCode::NOT_FOUND);
}
