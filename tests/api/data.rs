//! The candidate's data: the export holds everything about them; erasure (password-confirmed) leaves no row of
//! theirs in any table, and audit rows stay without the personal data; admins do both for anyone, others never.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;

use crate::helpers::{Backend, PASSWORD, TestApp, sample_report, spawn_app};
use crate::on_both_databases;

on_both_databases!(
    the_export_holds_everything_and_erasure_leaves_nothing,
    admins_export_and_erase_anyone_and_nobody_else_can,
    admins_list_users_change_roles_and_quotas_and_read_the_audit_log,
    every_admin_route_refuses_non_admins,
    sensitive_columns_are_sealed_at_rest,
);

/// Rows in each table that belong to `user` (directly or through their interviews), by table.
async fn rows_of(app: &TestApp, user: &str, email: &str) -> Vec<(&'static str, i64)> {
    let pool = sqlx::AnyPool::connect(&app.state.config.database_url()).await.expect("the test database");
    let of_interviews = "(SELECT id FROM interviews WHERE user_id = $1)";
    let checks: [(&'static str, String); 14] = [
        ("users", "SELECT COUNT(*) FROM users WHERE id = $1".into()),
        ("refresh_tokens", "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1".into()),
        ("interviews", "SELECT COUNT(*) FROM interviews WHERE user_id = $1".into()),
        ("interview_shares", "SELECT COUNT(*) FROM interview_shares WHERE observer_user_id = $1".into()),
        ("rounds", format!("SELECT COUNT(*) FROM rounds WHERE interview_id IN {of_interviews}")),
        ("questions", format!("SELECT COUNT(*) FROM questions WHERE interview_id IN {of_interviews}")),
        ("turns", format!("SELECT COUNT(*) FROM turns WHERE interview_id IN {of_interviews}")),
        ("metric_samples", format!("SELECT COUNT(*) FROM metric_samples WHERE interview_id IN {of_interviews}")),
        ("answer_scores", format!("SELECT COUNT(*) FROM answer_scores WHERE interview_id IN {of_interviews}")),
        ("reports", format!("SELECT COUNT(*) FROM reports WHERE interview_id IN {of_interviews}")),
        ("learning_paths", "SELECT COUNT(*) FROM learning_paths WHERE user_id = $1".into()),
        ("recordings", format!("SELECT COUNT(*) FROM recordings WHERE interview_id IN {of_interviews}")),
        ("coach_invitations", "SELECT COUNT(*) FROM coach_invitations WHERE email = $2 OR accepted_by = $1".into()),
        ("audit_log (with an IP)", "SELECT COUNT(*) FROM audit_log WHERE actor_user_id = $1 AND ip IS NOT NULL".into()),
    ];
    let mut counts = Vec::new();
    for (table, sql) in checks {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user).bind(email).fetch_one(&pool).await.expect(table);
        counts.push((table, row.get::<i64, _>(0)));
    }
    counts
}

async fn the_export_holds_everything_and_erasure_leaves_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let me = app.get("/api/v1/me", Some(&token)).await.body;
    let id = me["id"].as_str().unwrap().to_string();
    let reported = app.interview_with_report(&token, &sample_report(66)).await;
    let scheduled = app.create_interview(&token).await;
    let recording = crate::recordings::recorded(&app, &scheduled, id.parse().unwrap()).await;
    // Ada invites a coach, and coaches someone else's interview herself.
    let invited = app.post(&format!("/api/v1/interviews/{scheduled}/invitations"), Some(&token), json!({"email": "grace@example.com"})).await;
    assert_eq!(invited.status, StatusCode::CREATED);
    let (bob, _) = app.signed_in_user("bob@example.com").await;
    let bobs = app.create_interview(&bob).await;
    let to_ada = app.post(&format!("/api/v1/interviews/{bobs}/invitations"), Some(&bob), json!({"email": "ada@example.com"})).await;
    let ada_token = to_ada.body["link"].as_str().unwrap().split("invitation=").nth(1).unwrap().to_string();
    assert_eq!(app.post(&format!("/api/v1/invitations/{ada_token}/accept"), Some(&token), json!({})).await.status, StatusCode::OK);

    let export = app.get("/api/v1/me/export", Some(&token)).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert!(export.headers["content-disposition"].to_str().unwrap().starts_with("attachment"), "a download");
    let document = export.body;
    assert_eq!((document["format"].clone(), document["user"]["email"].clone()), (json!("candor-export/1"), json!("ada@example.com")));
    let interviews = document["interviews"].as_array().unwrap();
    assert_eq!(interviews.len(), 2, "{document}");
    let with_report = interviews.iter().find(|i| i["id"] == reported.as_str()).expect("the reported interview");
    assert_eq!(with_report["report"]["overall"], 66);
    assert!(with_report["rounds"].is_array() && with_report["turns"].is_array());
    assert!(interviews.iter().all(|i| i["id"] != bobs.as_str()), "not someone else's interview");
    let scheduled_entry = interviews.iter().find(|i| i["id"] == scheduled.as_str()).unwrap();
    let file = scheduled_entry["recordings"][0]["file"].as_str().expect("the recording is listed").to_string();
    // As an archive: the same document and the recording, decrypted.
    let archive = app.client.get(app.url("/api/v1/me/export?archive=true")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(archive.headers()["content-type"], "application/x-tar");
    let bytes = archive.bytes().await.unwrap();
    let mut entries = std::collections::HashMap::new();
    for entry in tar::Archive::new(std::io::Cursor::new(bytes)).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        entries.insert(name, data);
    }
    let json: serde_json::Value = serde_json::from_slice(&entries["export.json"]).unwrap();
    assert_eq!(json["interviews"].as_array().unwrap().len(), 2);
    assert_eq!(entries[&file], b"OggS and some audio", "{:?}", entries.keys());
    let actions: Vec<&str> = document["audit"].as_array().unwrap().iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(actions.contains(&"auth.login") && actions.contains(&"interview.invite"), "{actions:?}");

    let present = rows_of(&app, &id, "ada@example.com").await;
    for table in ["users", "refresh_tokens", "interviews", "interview_shares", "rounds", "reports", "learning_paths", "recordings", "coach_invitations"] {
        assert!(present.iter().any(|(t, n)| *t == table && *n > 0), "{table} has Ada's rows before: {present:?}");
    }
    let erase = |password: &str| app.request(Method::DELETE, "/api/v1/me", Some(&token), Some(json!({"password": password})));
    let wrong = erase("not the password").await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "invalid_password"));
    assert_eq!(app.get(&format!("/api/v1/interviews/{reported}/report"), Some(&token)).await.status, StatusCode::OK, "nothing deleted");
    assert_eq!(erase(PASSWORD).await.status, StatusCode::NO_CONTENT);

    let left: Vec<(&str, i64)> = rows_of(&app, &id, "ada@example.com").await.into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(left.is_empty(), "rows left after erasure: {left:?}");
    assert!(!recording.exists(), "the recording's file is gone too");
    assert_eq!(app.login("ada@example.com").await.status, StatusCode::UNAUTHORIZED);
    // Bob's interview is untouched; the audit trail of the erasure itself stays, without the IP.
    assert_eq!(app.get(&format!("/api/v1/interviews/{bobs}"), Some(&bob)).await.status, StatusCode::OK);
    let erasures = app.state.store.audit_entries("account.erase").await.unwrap();
    assert!(erasures.iter().any(|e| e.actor_user_id.as_deref() == Some(id.as_str()) && e.ip.is_none() && e.outcome == "success"));
}

async fn admins_export_and_erase_anyone_and_nobody_else_can(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("root@example.com", candor::domain::Role::Admin).await;
    let admin = app.login("root@example.com").await.body["access_token"].as_str().unwrap().to_string();
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let (eve, _) = app.signed_in_user("eve@example.com").await;
    let ada = app.get("/api/v1/me", Some(&token)).await.body["id"].as_str().unwrap().to_string();
    app.create_interview(&token).await;

    for caller in [&eve, &token] {
        let export = app.get(&format!("/api/v1/admin/users/{ada}/export"), Some(caller)).await;
        assert_eq!((export.status, export.code()), (StatusCode::FORBIDDEN, "forbidden"));
        let erase = app.request(Method::DELETE, &format!("/api/v1/admin/users/{ada}"), Some(caller), None).await;
        assert_eq!(erase.status, StatusCode::FORBIDDEN);
    }
    let export = app.get(&format!("/api/v1/admin/users/{ada}/export"), Some(&admin)).await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["interviews"].as_array().map(Vec::len), Some(1));
    let nobody = uuid::Uuid::new_v4();
    assert_eq!(app.get(&format!("/api/v1/admin/users/{nobody}/export"), Some(&admin)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.request(Method::DELETE, &format!("/api/v1/admin/users/{ada}"), Some(&admin), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/admin/users/{ada}/export"), Some(&admin)).await.status, StatusCode::NOT_FOUND, "gone");
    let left: Vec<(&str, i64)> = rows_of(&app, &ada, "ada@example.com").await.into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(app.get("/api/v1/me", Some(&eve)).await.body["email"], "eve@example.com", "others are untouched");
}

async fn admins_list_users_change_roles_and_quotas_and_read_the_audit_log(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("root@example.com", candor::domain::Role::Admin).await;
    let admin = app.login("root@example.com").await.body["access_token"].as_str().unwrap().to_string();
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let ada = app.get("/api/v1/me", Some(&token)).await.body["id"].as_str().unwrap().to_string();

    let page = app.get("/api/v1/admin/users?limit=1", Some(&admin)).await.body;
    assert_eq!((page["total"].clone(), page["next_offset"].clone()), (json!(2), json!(1)), "{page}");
    let rest = app.get("/api/v1/admin/users?offset=1", Some(&admin)).await.body;
    assert_eq!(rest["items"][0]["email"], "ada@example.com");
    assert!(rest["next_offset"].is_null());
    assert_eq!(app.get("/api/v1/admin/users?limit=0", Some(&admin)).await.status, StatusCode::BAD_REQUEST);

    let path = format!("/api/v1/admin/users/{ada}");
    let change = |body: serde_json::Value| app.request(Method::PATCH, &path, Some(&admin), Some(body));
    let changed = change(json!({"role": "coach", "interview_quota": 3})).await;
    assert_eq!((changed.status, changed.body["role"].clone(), changed.body["interview_quota"].clone()), (StatusCode::OK, json!("coach"), json!(3)));
    let cleared = change(json!({"interview_quota": null})).await.body;
    assert_eq!((cleared["role"].clone(), cleared["interview_quota"].clone()), (json!("coach"), json!(null)), "only the quota changed");
    assert_eq!(change(json!({"role": "emperor"})).await.status, StatusCode::BAD_REQUEST);
    let nobody = uuid::Uuid::new_v4();
    let missing = app.request(Method::PATCH, &format!("/api/v1/admin/users/{nobody}"), Some(&admin), Some(json!({"role": "coach"}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let logins = app.get("/api/v1/admin/audit?action=auth.login", Some(&admin)).await.body;
    let logins = logins.as_array().unwrap();
    assert!(logins.len() >= 2 && logins.iter().all(|e| e["action"] == "auth.login"), "{logins:?}");
    let newest = &app.get("/api/v1/admin/audit?limit=1", Some(&admin)).await.body[0];
    assert_eq!(newest["action"], "admin.audit.read", "newest first: the read itself");
}

async fn every_admin_route_refuses_non_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let ada = app.get("/api/v1/me", Some(&token)).await.body["id"].as_str().unwrap().to_string();
    app.add_user("coach@example.com", candor::domain::Role::Coach).await;
    let coach = app.login("coach@example.com").await.body["access_token"].as_str().unwrap().to_string();
    for caller in [&token, &coach] {
        for (method, path, body) in [
            (Method::GET, "/api/v1/admin/users".to_string(), None),
            (Method::GET, "/api/v1/admin/audit".to_string(), None),
            (Method::GET, "/api/v1/admin/nodes".to_string(), None),
            (Method::PATCH, format!("/api/v1/admin/users/{ada}"), Some(json!({"role": "admin"}))),
            (Method::GET, format!("/api/v1/admin/users/{ada}/export"), None),
            (Method::DELETE, format!("/api/v1/admin/users/{ada}"), None),
        ] {
            let reply = app.request(method.clone(), &path, Some(caller), body).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "forbidden"), "{method} {path}");
        }
    }
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.body["role"], "candidate", "no one promoted themselves");
    let denied = app.state.store.audit_entries("admin.user.update").await.unwrap();
    assert!(denied.len() == 2 && denied.iter().all(|e| e.outcome == "denied"), "refusals are audited");
}

/// Job descriptions, transcripts and report texts are ciphertext in the database and plain text through the API.
async fn sensitive_columns_are_sealed_at_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let body = json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid",
        "job_description": "Build payment APIs in Rust for Quokka Bank."});
    let id = app.post("/api/v1/interviews", Some(&token), body).await.body["id"].as_str().unwrap().to_string();
    let turn = candor::store::NewTurn {
        id: "t1", interview: id.parse().unwrap(), question_id: None, speaker: candor::domain::Speaker::Candidate,
        text: "I rebuilt the ledger at Quokka Bank.", start_ms: 0, end_ms: 2000, interrupted: false,
        words: r#"[{"w":"Quokka","start_ms":0,"end_ms":300}]"#, metrics: "{}",
    };
    app.state.store.insert_turn(turn).await.unwrap();
    let reported = app.interview_with_report(&token, &sample_report(70)).await;

    let pool = sqlx::AnyPool::connect(&app.state.config.database_url()).await.unwrap();
    let raw = |sql: &'static str, id: String| {
        let pool = pool.clone();
        async move { sqlx::query(sql).bind(id).fetch_one(&pool).await.unwrap().get::<String, _>(0) }
    };
    for stored in [
        raw("SELECT job_description FROM interviews WHERE id = $1", id.clone()).await,
        raw("SELECT text FROM turns WHERE interview_id = $1", id.clone()).await,
        raw("SELECT words FROM turns WHERE interview_id = $1", id.clone()).await,
        raw("SELECT document FROM reports WHERE interview_id = $1", reported.clone()).await,
        raw("SELECT summary FROM reports WHERE interview_id = $1", reported.clone()).await,
    ] {
        assert!(stored.starts_with("enc1:") && !stored.contains("Quokka") && !stored.contains("overall"), "{stored}");
    }
    let shown = app.get(&format!("/api/v1/interviews/{id}"), Some(&token)).await.body;
    assert_eq!(shown["job_description"], "Build payment APIs in Rust for Quokka Bank.");
    assert_eq!(shown["turns"][0]["text"], "I rebuilt the ledger at Quokka Bank.");
    assert_eq!(shown["turns"][0]["words"][0]["w"], "Quokka");
    assert_eq!(app.get(&format!("/api/v1/interviews/{reported}/report"), Some(&token)).await.body["overall"], 70);
}
