//! Interviews: creation, history, detail, abandon, isolation between users, quotas and suggestions.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::on_both_databases;

on_both_databases!(
    a_created_interview_comes_back_with_its_planned_rounds,
    invalid_interview_fields_are_400_with_field_errors,
    another_users_interview_is_404_to_read_and_to_abandon,
    an_interview_can_be_abandoned_once,
    history_is_paginated_newest_first,
    creation_past_the_quota_is_403,
    round_suggestions_follow_the_role,
    an_interview_is_shared_with_coaches_only_by_its_owner,
);

async fn a_created_interview_comes_back_with_its_planned_rounds(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let created = app
        .post(
            "/api/v1/interviews",
            Some(&token),
            json!({
                "role": "Senior backend engineer", "interview_type": "technical", "experience_level": "senior",
                "question_count": 8, "job_description": "We build payment APIs in Rust."
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();

    let reply = app.get(&format!("/api/v1/interviews/{id}"), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = &reply.body;
    assert_eq!(body["status"], "scheduled");
    assert_eq!(body["question_count"], 8);
    assert_eq!(body["job_description"], "We build payment APIs in Rust.");
    let kinds: Vec<_> = body["rounds"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["coding", "system_design", "technical"]);
    assert_eq!(body["rounds"][0]["position"], 1);
    assert_eq!(body["turns"], json!([]));

    let audit = app.state.store.audit_entries("interview.read").await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].outcome.as_str(), audit[0].target.as_deref()), ("success", Some(id)));
    assert_eq!(app.state.store.audit_entries("interview.create").await.unwrap().len(), 1);
}

async fn invalid_interview_fields_are_400_with_field_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let reply = app
        .post(
            "/api/v1/interviews",
            Some(&token),
            json!({"role": "x", "interview_type": "mixed", "experience_level": "mid", "question_count": 50,
                   "job_description": "j".repeat(20_001)}),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let fields = reply.body["error"]["fields"].as_object().unwrap();
    let mut names: Vec<_> = fields.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["job_description", "question_count", "role"]);

    let reply = app
        .post(
            "/api/v1/interviews",
            Some(&token),
            json!({"role": "Analyst", "interview_type": "panel", "experience_level": "mid"}),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("interview_type"));
}

async fn another_users_interview_is_404_to_read_and_to_abandon(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ada, _) = app.signed_in_user("ada@example.com").await;
    let (bob, _) = app.signed_in_user("bob@example.com").await;
    let id = app.create_interview(&ada).await;

    let read = app.get(&format!("/api/v1/interviews/{id}"), Some(&bob)).await;
    assert_eq!((read.status, read.code()), (StatusCode::NOT_FOUND, "not_found"));
    let abandon = app.post(&format!("/api/v1/interviews/{id}/abandon"), Some(&bob), json!({})).await;
    assert_eq!((abandon.status, abandon.code()), (StatusCode::NOT_FOUND, "not_found"));
    // Indistinguishable from an id that never existed, or one that is not even an id.
    let missing = app.get(&format!("/api/v1/interviews/{}", uuid::Uuid::new_v4()), Some(&bob)).await;
    assert_eq!(missing.body, read.body);
    let malformed = app.get("/api/v1/interviews/not-an-id", Some(&bob)).await;
    assert_eq!(malformed.body, read.body);
    assert_eq!(app.get("/api/v1/interviews", Some(&bob)).await.body["total"], 0);

    let still = app.get(&format!("/api/v1/interviews/{id}"), Some(&ada)).await;
    assert_eq!(still.body["status"], "scheduled", "Bob's attempt changed nothing");
    let denied = app.state.store.audit_entries("interview.abandon").await.unwrap();
    assert_eq!(denied[0].outcome, "denied");
}

async fn an_interview_can_be_abandoned_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = app.create_interview(&token).await;
    let first = app.post(&format!("/api/v1/interviews/{id}/abandon"), Some(&token), json!({})).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["status"], "abandoned");
    assert!(first.body["ended_at"].is_string());
    let second = app.post(&format!("/api/v1/interviews/{id}/abandon"), Some(&token), json!({})).await;
    assert_eq!((second.status, second.code()), (StatusCode::CONFLICT, "interview_ended"));
}

async fn history_is_paginated_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.create_interview(&token).await);
        // Creation times are milliseconds; keep them distinct so "newest first" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut offset = Some(0);
    while let Some(at) = offset {
        let page = app.get(&format!("/api/v1/interviews?limit=2&offset={at}"), Some(&token)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body["total"], 5);
        assert_eq!(page.body["limit"], 2);
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
        offset = page.body["next_offset"].as_u64();
    }
    assert_eq!(seen, ids);

    let beyond = app.get("/api/v1/interviews?offset=10", Some(&token)).await;
    assert_eq!(beyond.body["items"], json!([]));
    for bad in ["limit=0", "limit=101", "limit=abc", "offset=-1"] {
        let reply = app.get(&format!("/api/v1/interviews?{bad}"), Some(&token)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn creation_past_the_quota_is_403(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.interview_quota = Some(2)).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    app.create_interview(&token).await;
    app.create_interview(&token).await;
    let body = json!({"role": "Backend engineer", "interview_type": "hr", "experience_level": "mid"});
    let reply = app.post("/api/v1/interviews", Some(&token), body.clone()).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "quota_exceeded"));

    // A user's own quota overrides the configured one.
    let me = app.get("/api/v1/me", Some(&token)).await;
    let user = me.body["id"].as_str().unwrap().parse().unwrap();
    app.state.store.set_interview_quota(user, Some(3)).await.unwrap();
    assert_eq!(app.post("/api/v1/interviews", Some(&token), body.clone()).await.status, StatusCode::CREATED);
    assert_eq!(app.post("/api/v1/interviews", Some(&token), body).await.code(), "quota_exceeded");
    assert_eq!(app.get("/api/v1/interviews", Some(&token)).await.body["total"], 3);
}

async fn round_suggestions_follow_the_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let reply =
        app.get("/api/v1/interviews/suggestions?role=Product%20manager&interview_type=technical", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["role_family"], "product");
    assert_eq!(reply.body["rounds"][0]["kind"], "case");
    let missing = app.get("/api/v1/interviews/suggestions", Some(&token)).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::BAD_REQUEST, "invalid_query"));
    assert_eq!(app.get("/api/v1/interviews/suggestions?role=x", None).await.status, StatusCode::UNAUTHORIZED);
}

async fn an_interview_is_shared_with_coaches_only_by_its_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ada, _) = app.signed_in_user("ada@example.com").await;
    let (bob, _) = app.signed_in_user("bob@example.com").await;
    let coach = app.add_user("coach@example.com", candor::domain::Role::Coach).await;
    let id = app.create_interview(&ada).await;
    let shares = format!("/api/v1/interviews/{id}/shares");

    let shared = app.post(&shares, Some(&ada), json!({"email": "Coach@Example.com"})).await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.body);
    assert_eq!(shared.body[0]["email"], "coach@example.com");
    let twice = app.post(&shares, Some(&ada), json!({"email": "coach@example.com"})).await;
    assert_eq!(twice.body.as_array().unwrap().len(), 1, "sharing twice is harmless");

    let not_coach = app.post(&shares, Some(&ada), json!({"email": "bob@example.com"})).await;
    assert_eq!((not_coach.status, not_coach.code()), (StatusCode::BAD_REQUEST, "not_a_coach"));
    let nobody = app.post(&shares, Some(&ada), json!({"email": "nobody@example.com"})).await;
    assert_eq!((nobody.status, nobody.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    let foreign = app.post(&shares, Some(&bob), json!({"email": "coach@example.com"})).await;
    assert_eq!((foreign.status, foreign.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(app.get(&shares, Some(&bob)).await.status, StatusCode::NOT_FOUND);

    assert_eq!(app.get(&shares, Some(&ada)).await.body[0]["observer_id"], coach.to_string());
    let one_share = format!("{shares}/{coach}");
    let delete = |token| app.request(reqwest::Method::DELETE, &one_share, Some(token), None);
    assert_eq!(delete(&bob).await.status, StatusCode::NOT_FOUND);
    assert_eq!(delete(&ada).await.status, StatusCode::NO_CONTENT);
    assert_eq!(delete(&ada).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&shares, Some(&ada)).await.body, json!([]));
}
