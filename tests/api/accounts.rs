//! Registration, login, tokens and the profile.

use candor::auth::Tokens;
use candor::domain::{Role, UserId};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{Backend, JWT_SECRET, PASSWORD, SmtpSink, TestApp, spawn_app, spawn_app_with};
use crate::on_both_databases;

on_both_databases!(
    registration_rejects_a_bad_email_and_a_short_password_with_field_errors,
    a_second_account_with_the_same_email_is_409,
    a_wrong_password_is_401_and_leaves_an_audit_row,
    expired_forged_and_missing_access_tokens_are_401,
    refresh_rotates_and_a_replayed_token_revokes_the_whole_family,
    logout_revokes_the_refresh_token,
    the_profile_can_be_read_and_partly_updated,
    a_reset_link_by_email_sets_a_new_password_once_and_signs_out_every_login,
    reset_links_are_capped_per_hour_expire_and_die_when_another_is_used,
    changing_the_password_needs_the_current_one_and_signs_out_every_other_login,
);

async fn registration_rejects_a_bad_email_and_a_short_password_with_field_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post("/api/v1/auth/register", None, json!({"email": "not-an-email", "password": "short", "name": "Ada"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "validation_failed");
    let fields = reply.body["error"]["fields"].as_object().expect("field errors");
    assert!(fields.contains_key("email") && fields.contains_key("password"), "{fields:?}");
    assert!(!fields.contains_key("name"));

    let reply = app.post("/api/v1/auth/register", None, json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["fields"].as_object().unwrap().len(), 3);

    let reply = app.register("Ada@Example.com").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["email"], "ada@example.com");
    assert_eq!(reply.body["role"], "candidate");
    assert!(reply.body.get("password_hash").is_none());
}

async fn a_second_account_with_the_same_email_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.register("ada@example.com").await.status, StatusCode::CREATED);
    let reply = app.register("  ADA@example.com ").await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "email_taken");
}

async fn a_wrong_password_is_401_and_leaves_an_audit_row(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com").await;
    let reply =
        app.post("/api/v1/auth/login", None, json!({"email": "ada@example.com", "password": "wrong password!"})).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "invalid_credentials");
    // An unknown account answers exactly the same.
    let unknown =
        app.post("/api/v1/auth/login", None, json!({"email": "nobody@example.com", "password": PASSWORD})).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials"));

    assert_eq!(app.login("ada@example.com").await.status, StatusCode::OK);
    let rows = app.state.store.audit_entries("auth.login").await.unwrap();
    let outcomes: Vec<_> = rows.iter().map(|r| (r.outcome.as_str(), r.target.as_deref())).collect();
    assert_eq!(outcomes[..2], [("failure", Some("ada@example.com")), ("failure", Some("nobody@example.com"))]);
    assert_eq!(outcomes[2].0, "success");
    assert!(rows.iter().all(|r| r.ip.as_deref() == Some("127.0.0.1")));
}

async fn expired_forged_and_missing_access_tokens_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, StatusCode::OK);

    let claims = app.state.tokens.verify_access(&token).unwrap();
    let user: UserId = claims.user_id().unwrap();
    let an_hour_ago = claims.iat - 3600;
    let expired =
        Tokens::new(&SecretString::from(JWT_SECRET), 900, 3600).issue_access(user, Role::Candidate, an_hour_ago);
    let forged =
        Tokens::new(&SecretString::from("not the server key"), 900, 3600).issue_access(user, Role::Admin, claims.iat);
    // An unsigned token claiming to be admin ("alg":"none").
    let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let payload = token.split('.').nth(1).unwrap();
    let unsigned = format!("{header}.{payload}.");

    for (token, code) in [
        (Some(expired.as_str()), "token_expired"),
        (Some(forged.as_str()), "invalid_token"),
        (Some(unsigned.as_str()), "invalid_token"),
        (Some("garbage"), "invalid_token"),
        (None, "unauthenticated"),
    ] {
        let reply = app.get("/api/v1/me", token).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, code), "{token:?}");
    }
    let failures = app.state.store.audit_entries("auth.access_token").await.unwrap();
    assert_eq!(failures.len(), 5);
    assert!(failures.iter().all(|r| r.outcome == "failure" && r.target.as_deref() == Some("/api/v1/me")));
}

async fn refresh_rotates_and_a_replayed_token_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, first) = app.signed_in_user("ada@example.com").await;

    let rotated = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": first})).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let second = rotated.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(rotated.body["token_type"], "Bearer");
    let access = rotated.body["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", Some(access)).await.status, StatusCode::OK);

    // Replaying the spent token is theft or a bug: it fails and takes the live descendant down with it.
    let replay = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": first})).await;
    assert_eq!((replay.status, replay.code()), (StatusCode::UNAUTHORIZED, "refresh_token_reused"));
    let descendant = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": second})).await;
    assert_eq!((descendant.status, descendant.code()), (StatusCode::UNAUTHORIZED, "invalid_refresh_token"));

    // Another login is another family and still works.
    let other = app.login("ada@example.com").await.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": other})).await.status, StatusCode::OK);

    let unknown = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": "rt_made_up"})).await;
    assert_eq!(unknown.code(), "invalid_refresh_token");

    let rows = app.state.store.audit_entries("auth.refresh").await.unwrap();
    let details: Vec<_> = rows.iter().map(|r| (r.outcome.as_str(), r.detail.as_deref())).collect();
    assert_eq!(
        details,
        [
            ("success", None),
            ("failure", Some("reused")),
            ("failure", Some("revoked")),
            ("success", None),
            ("failure", Some("unknown")),
        ]
    );
}

async fn logout_revokes_the_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, refresh) = app.signed_in_user("ada@example.com").await;
    let reply = app.post("/api/v1/auth/logout", None, json!({"refresh_token": refresh})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "invalid_refresh_token"));
    // Logging out twice, or with a token nobody knows, is not an error.
    let again = app.post("/api/v1/auth/logout", None, json!({"refresh_token": refresh})).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
}

async fn the_profile_can_be_read_and_partly_updated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let patch = |body| app.request(Method::PATCH, "/api/v1/me", Some(&token), Some(body));

    let reply = patch(json!({"target_role": "Staff engineer", "experience_level": "senior"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["target_role"], "Staff engineer");
    assert_eq!(reply.body["experience_level"], "senior");
    assert_eq!(reply.body["name"], "Test User");

    let reply = patch(json!({"name": "Ada Lovelace", "target_role": null})).await;
    assert_eq!(reply.body["name"], "Ada Lovelace");
    assert!(reply.body["target_role"].is_null());
    assert_eq!(reply.body["experience_level"], "senior", "an absent field is left alone");

    let reply = patch(json!({"name": "  "})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let reply = patch(json!({"experience_level": "wizard"})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_body"));

    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["name"], "Ada Lovelace");
    assert_eq!(me.body["email"], "ada@example.com");
}

const NEW_PASSWORD: &str = "a brand new passphrase";

/// The link in a reset email: (the whole link, its token).
fn reset_link(message: &str) -> (String, String) {
    let start = message.find("http").expect("a link in the message");
    let link: String = message[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    let token = link.split("/reset.html?token=").nth(1).expect("a reset link").to_string();
    (link, token)
}

/// Waits (generously) until `action` has `count` audit rows; they are written after the 202 answer.
async fn audit_rows(app: &TestApp, action: &str, count: usize) -> Vec<candor::store::AuditEntry> {
    for _ in 0..300 {
        let rows = app.state.store.audit_entries(action).await.unwrap();
        if rows.len() >= count {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} {action} audit rows");
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> crate::helpers::Reply {
    app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": token, "password": password})).await
}

async fn a_reset_link_by_email_sets_a_new_password_once_and_signs_out_every_login(backend: Backend) {
    let Some(smtp) = SmtpSink::start().await else { return };
    let url = smtp.url();
    let app = spawn_app_with(backend, move |c| c.smtp_url = Some(url.into())).await;
    let (_, refresh) = app.signed_in_user("ada@example.com").await;

    // An account and no account answer alike.
    let known = app.post("/api/v1/auth/password-reset", None, json!({"email": "Ada@Example.com"})).await;
    let unknown = app.post("/api/v1/auth/password-reset", None, json!({"email": "nobody@example.com"})).await;
    assert_eq!((known.status, &known.text), (StatusCode::ACCEPTED, &unknown.text));
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, json!({"email_enabled": true}));

    let message = smtp.message_to("ada@example.com").await;
    let (link, token) = reset_link(&message);
    assert_eq!(link, app.url(&format!("/reset.html?token={token}")), "the whole link, on this server: {message}");
    let requests = audit_rows(&app, "auth.password_reset.request", 2).await;
    let mut outcomes: Vec<_> = requests.iter().map(|r| (r.outcome.as_str(), r.detail.as_deref())).collect();
    outcomes.sort();
    assert_eq!(outcomes, [("failure", Some("unknown_email")), ("success", None)]);
    assert!(smtp.messages().iter().all(|m| !m.contains("nobody@example.com")), "no email to an address without an account");
    let hash = candor::auth::hash_secret(&token);
    assert!(app.state.store.password_reset(&hash).await.unwrap().is_some());
    assert!(app.state.store.password_reset(&token).await.unwrap().is_none(), "only the token's hash is stored");

    // A weak password is refused and the link stays good.
    let weak = confirm(&app, &token, "short").await;
    assert_eq!((weak.status, weak.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    assert!(weak.body["error"]["fields"]["password"].is_string(), "{}", weak.text);
    let done = confirm(&app, &token, NEW_PASSWORD).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);

    assert_eq!(app.login("ada@example.com").await.status, StatusCode::UNAUTHORIZED, "the old password is gone");
    let signed_in = app.post("/api/v1/auth/login", None, json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let refreshed = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!((refreshed.status, refreshed.code()), (StatusCode::UNAUTHORIZED, "invalid_refresh_token"), "earlier logins are signed out");

    // Once only; and a made-up token gets the same answer.
    for token in [token.as_str(), "pr_made-up"] {
        let again = confirm(&app, token, "yet another passphrase").await;
        assert_eq!((again.status, again.code()), (StatusCode::BAD_REQUEST, "invalid_reset_token"));
    }
    let confirms = app.state.store.audit_entries("auth.password_reset").await.unwrap();
    let outcomes: Vec<_> = confirms.iter().map(|r| (r.outcome.as_str(), r.detail.as_deref())).collect();
    assert_eq!(outcomes, [("success", None), ("failure", Some("used")), ("failure", Some("unknown"))]);
    let metrics = app.get("/metrics", None).await.text;
    assert!(metrics.contains(r#"candor_emails_total{kind="password_reset",outcome="sent"} 1"#), "{metrics}");
}

async fn reset_links_are_capped_per_hour_expire_and_die_when_another_is_used(backend: Backend) {
    let Some(smtp) = SmtpSink::start().await else { return };
    let url = smtp.url();
    let app = spawn_app_with(backend, move |c| c.smtp_url = Some(url.into())).await;
    assert_eq!(app.register("ada@example.com").await.status, StatusCode::CREATED);
    for _ in 0..4 {
        let reply = app.post("/api/v1/auth/password-reset", None, json!({"email": "ada@example.com"})).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let rows = audit_rows(&app, "auth.password_reset.request", 4).await;
    let denied: Vec<_> = rows.iter().filter(|r| r.outcome == "denied").map(|r| r.detail.as_deref()).collect();
    assert_eq!(denied, [Some("too_many")], "three links an hour, then none");
    let mut tokens = Vec::new();
    for _ in 0..300 {
        tokens = smtp.messages().iter().map(|m| reset_link(m).1).collect();
        if tokens.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(tokens.len(), 3);
    assert_eq!(confirm(&app, &tokens[1], NEW_PASSWORD).await.status, StatusCode::NO_CONTENT);
    for token in [&tokens[0], &tokens[2]] {
        assert_eq!(confirm(&app, token, "yet another passphrase").await.code(), "invalid_reset_token", "spent by the other's use");
    }

    // A link past its time is refused.
    let email = candor::domain::Email::parse("ada@example.com").unwrap();
    let user = app.state.store.user_by_email(&email).await.unwrap().unwrap().id;
    let link = candor::api::new_reset_link(&app.state.store, user, 1, None).await.unwrap().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let hash = candor::auth::hash_secret(token);
    let expires_at = app.state.store.password_reset(&hash).await.unwrap().unwrap().expires_at;
    while candor::store::now_ms() <= expires_at {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(confirm(&app, token, "yet another passphrase").await.code(), "invalid_reset_token");
    let last = app.state.store.audit_entries("auth.password_reset").await.unwrap().pop().unwrap();
    assert_eq!(last.detail.as_deref(), Some("expired"));
}

#[tokio::test]
async fn without_smtp_a_reset_request_says_so_and_sends_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("ada@example.com").await;
    let reply = app.post("/api/v1/auth/password-reset", None, json!({"email": "ada@example.com"})).await;
    assert_eq!((reply.status, reply.body.clone()), (StatusCode::ACCEPTED, json!({"email_enabled": false})));
    let rows = audit_rows(&app, "auth.password_reset.request", 1).await;
    assert_eq!((rows[0].outcome.as_str(), rows[0].detail.as_deref()), ("failure", Some("no_smtp")));
}

async fn changing_the_password_needs_the_current_one_and_signs_out_every_other_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let (access, first) = app.signed_in_user("ada@example.com").await;
    let second = app.login("ada@example.com").await.body["refresh_token"].as_str().unwrap().to_string();
    let email = candor::domain::Email::parse("ada@example.com").unwrap();
    let user = app.state.store.user_by_email(&email).await.unwrap().unwrap().id;
    let link = candor::api::new_reset_link(&app.state.store, user, 3600, None).await.unwrap().unwrap();
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let wrong = app.request(Method::PUT, "/api/v1/me/password", Some(&access), Some(change("not my password", NEW_PASSWORD))).await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "invalid_password"));
    let weak = app.request(Method::PUT, "/api/v1/me/password", Some(&access), Some(change(PASSWORD, "short"))).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body["error"]["fields"]["new_password"].is_string(), "{}", weak.text);
    assert_eq!(app.login("ada@example.com").await.status, StatusCode::OK, "nothing changed yet");
    let third = app.login("ada@example.com").await.body["refresh_token"].as_str().unwrap().to_string();

    let changed = app.request(Method::PUT, "/api/v1/me/password", Some(&access), Some(change(PASSWORD, NEW_PASSWORD))).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let fresh = changed.body["refresh_token"].as_str().expect("a new pair for this client");
    for old in [&first, &second, &third] {
        let refreshed = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": old})).await;
        assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED, "every other login is signed out");
    }
    assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": fresh})).await.status, StatusCode::OK);
    assert_eq!(app.login("ada@example.com").await.status, StatusCode::UNAUTHORIZED);
    let signed_in = app.post("/api/v1/auth/login", None, json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(confirm(&app, token, "yet another passphrase").await.code(), "invalid_reset_token", "open reset links are spent");

    let rows = app.state.store.audit_entries("account.password").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), ["denied", "success"]);
}
