//! Recording choices and retention without media: the candidate's consent is set before the interview starts
//! (and audited); the retention sweeper deletes recordings past their expiry (the server's default or the
//! user's own), files and all, with an audit row and a metric; erasure takes the files with the account.

use candor::domain::{InterviewId, UserId};
use candor::recordings::Source;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_databases;

on_both_databases!(
    consent_is_chosen_before_the_interview_starts_and_audited,
    the_sweeper_deletes_recordings_past_their_retention,
);

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A recording of `interview` with a few bytes in it, as the live session would write one; returns its path.
pub async fn recorded(app: &TestApp, interview: &str, owner: UserId) -> std::path::PathBuf {
    let interview: InterviewId = interview.parse().unwrap();
    let mut tape = app.state.recordings.start(interview, owner, Source::Candidate, "audio/ogg", 0).await.unwrap();
    tape.append(b"OggS and some audio".to_vec(), 1000).await.unwrap();
    let id = tape.id.clone();
    tape.finish(1000).await.unwrap();
    let row = app.state.store.recordings(interview).await.unwrap().into_iter().find(|r| r.id == id).unwrap();
    let path = app.state.config.data_dir.join(row.path);
    assert!(path.exists());
    path
}

async fn consent_is_chosen_before_the_interview_starts_and_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = app.create_interview(&token).await;
    let path = format!("/api/v1/interviews/{id}");
    let shown = app.get(&path, Some(&token)).await.body;
    assert_eq!((shown["recording_consent"].clone(), shown["recording_consent_at"].clone()), (json!(false), json!(null)), "off by default");

    let on = app.request(Method::PATCH, &path, Some(&token), Some(json!({"recording_consent": true}))).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    assert_eq!(on.body["recording_consent"], true);
    assert!(on.body["recording_consent_at"].is_string());
    let bad = app.request(Method::PATCH, &path, Some(&token), Some(json!({"recording_consent": "yes"}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let (eve, _) = app.signed_in_user("eve@example.com").await;
    let theirs = app.request(Method::PATCH, &path, Some(&eve), Some(json!({"recording_consent": false}))).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    app.state.store.mark_interview_started(id.parse().unwrap()).await.unwrap();
    let late = app.request(Method::PATCH, &path, Some(&token), Some(json!({"recording_consent": false}))).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "interview_started"));
    assert_eq!(app.get(&path, Some(&token)).await.body["recording_consent"], true, "unchanged once started");

    let audit = app.state.store.audit_entries("interview.recording_consent").await.unwrap();
    let details: Vec<(String, Option<String>)> = audit.iter().map(|a| (a.outcome.clone(), a.detail.clone())).collect();
    for expected in [("success", "recording_off"), ("success", "recording_on"), ("failure", "interview_started")] {
        assert!(details.iter().any(|(o, d)| o == expected.0 && d.as_deref() == Some(expected.1)), "{expected:?} in {details:?}");
    }
    let refused = app.state.store.audit_entries("interview.update").await.unwrap();
    assert!(refused.iter().any(|a| a.outcome == "denied" && a.detail.as_deref() == Some("not_found")), "Eve's attempt is audited");

    // Training-data use is a choice of its own, off by default, that can change after the interview too.
    assert_eq!(app.get(&path, Some(&token)).await.body["dataset_consent"], false);
    let dataset = app.request(Method::PATCH, &path, Some(&token), Some(json!({"dataset_consent": true}))).await;
    assert_eq!((dataset.status, dataset.body["dataset_consent"].clone()), (StatusCode::OK, json!(true)));
    let both = app.request(Method::PATCH, &path, Some(&token), Some(json!({"dataset_consent": false, "recording_consent": true}))).await;
    assert_eq!(both.status, StatusCode::OK, "an unchanged recording choice is no change: {}", both.body);
    assert_eq!(both.body["dataset_consent"], false);
    let withdrawn = app.state.store.audit_entries("interview.dataset_consent").await.unwrap();
    assert!(withdrawn.iter().any(|a| a.detail.as_deref() == Some("dataset_off")) && withdrawn.iter().any(|a| a.detail.as_deref() == Some("dataset_on")));
}

async fn the_sweeper_deletes_recordings_past_their_retention(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ada, _) = app.signed_in_user("ada@example.com").await;
    let (bob, _) = app.signed_in_user("bob@example.com").await;
    let id_of = |body: serde_json::Value| body["id"].as_str().unwrap().parse::<UserId>().unwrap();
    let (ada_id, bob_id) = (id_of(app.get("/api/v1/me", Some(&ada)).await.body), id_of(app.get("/api/v1/me", Some(&bob)).await.body));

    // Ada keeps her recordings two days; Bob keeps the server's default (30 days).
    for days in [json!(0), json!(366), json!("x")] {
        let refused = app.request(Method::PATCH, "/api/v1/me", Some(&ada), Some(json!({"recording_retention_days": days}))).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{days}");
    }
    let set = app.request(Method::PATCH, "/api/v1/me", Some(&ada), Some(json!({"recording_retention_days": 2}))).await;
    assert_eq!(set.body["recording_retention_days"], 2);
    let adas = recorded(&app, &app.create_interview(&ada).await, ada_id).await;
    let bobs = recorded(&app, &app.create_interview(&bob).await, bob_id).await;

    let now = candor::store::now_ms();
    assert_eq!(app.state.recordings.sweep(now).await.unwrap(), 0, "nothing has expired yet");
    assert_eq!(app.state.recordings.sweep(now + 3 * DAY_MS).await.unwrap(), 1);
    assert!(!adas.exists() && bobs.exists(), "Ada's recording is gone, Bob's stays");
    assert_eq!(app.state.recordings.sweep(now + 31 * DAY_MS).await.unwrap(), 1);
    assert!(!bobs.exists());
    assert_eq!(app.state.recordings.sweep(now + 31 * DAY_MS).await.unwrap(), 0, "deleted once");

    let audit = app.state.store.audit_entries("recording.expired").await.unwrap();
    assert_eq!(audit.len(), 2);
    assert!(app.state.metrics.render().contains("candor_recordings_total{event=\"expired\"} 2"));
    let cleared = app.request(Method::PATCH, "/api/v1/me", Some(&ada), Some(json!({"recording_retention_days": null}))).await;
    assert_eq!(cleared.body["recording_retention_days"], json!(null));
}

/// A server storing recordings in `s3`, with a signed-in candidate and an interview: (app, token, owner, id).
async fn app_on_s3(s3: &crate::helpers::S3Server) -> (TestApp, String, UserId, String) {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |c| s3.configure(c)).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let owner: UserId = app.get("/api/v1/me", Some(&token)).await.body["id"].as_str().unwrap().parse().unwrap();
    let id = app.create_interview(&token).await;
    (app, token, owner, id)
}

/// A candidate recording of `interview` with `media` sealed on disk in `piece`-byte appends, not yet finished.
async fn taped(app: &TestApp, interview: InterviewId, owner: UserId, media: &[u8], piece: usize) -> candor::recordings::Tape {
    let mut tape = app.state.recordings.start(interview, owner, Source::Candidate, "audio/ogg", 0).await.unwrap();
    for chunk in media.chunks(piece) {
        tape.append(chunk.to_vec(), 1000).await.unwrap();
    }
    tape
}

/// With an S3-compatible store: a finished recording moves there (sealed, with its chunk index), nothing stays
/// on the local disk, replay reads ranges from the object, a changed object is refused, and the sweeper deletes
/// the objects.
#[tokio::test]
async fn recordings_move_to_an_s3_store_and_replay_from_it() {
    let Some(s3) = crate::helpers::S3Server::start().await else { return };
    let (app, token, owner, id) = app_on_s3(&s3).await;
    let interview: InterviewId = id.parse().unwrap();
    let media: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    taped(&app, interview, owner, &media, 70_000).await.finish(3000).await.unwrap();

    let row = app.state.store.recordings(interview).await.unwrap().remove(0);
    assert_eq!(row.location, "object");
    assert!(!app.state.config.data_dir.join(&row.path).exists(), "no local copy left");
    let keys = s3.keys().await;
    let object_key = format!("candor/{}", row.path);
    assert!(keys.contains(&object_key) && keys.contains(&format!("{object_key}.index")), "{keys:?}");
    let stored = s3.object(&object_key).await;
    assert!(stored.len() > media.len(), "{} bytes: {}", stored.len(), String::from_utf8_lossy(&stored[..stored.len().min(300)]));
    assert!(!stored.windows(64).any(|w| w == &media[1000..1064]), "ciphertext in the bucket");

    let list = app.get(&format!("/api/v1/interviews/{id}/recordings"), Some(&token)).await.body;
    let url = list["items"][0]["url"].as_str().unwrap().to_string();
    let range = app.client.get(app.url(&url)).header("range", "bytes=69990-140009").send().await.unwrap();
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.bytes().await.unwrap().to_vec(), media[69_990..140_010], "a range across chunks");
    let whole = app.client.get(app.url(&url)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(whole.to_vec(), media);

    let mut changed = stored.clone();
    changed[100] ^= 1;
    s3.put_object(&object_key, changed).await;
    assert_eq!(app.client.get(app.url(&url)).send().await.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);

    let later = candor::store::now_ms() + 31 * DAY_MS;
    assert_eq!(app.state.recordings.sweep(later).await.unwrap(), 1);
    assert!(s3.keys().await.is_empty(), "the objects are deleted");
}

/// A crash leaves a recording unfinished in the data directory (its sealed chunks on disk, its row unfinished):
/// at startup it is marked finished as far as it was sealed, replays whole, and moves to the object store. A row
/// whose file is not in this data directory (another node's) is left alone.
#[tokio::test]
async fn a_recording_a_crash_left_unfinished_is_recovered_at_startup() {
    let Some(s3) = crate::helpers::S3Server::start().await else { return };
    let (app, token, owner, id) = app_on_s3(&s3).await;
    let interview: InterviewId = id.parse().unwrap();
    let media: Vec<u8> = (0..150_000u32).map(|i| (i % 241) as u8).collect();
    drop(taped(&app, interview, owner, &media, 50_000).await); // the crash: no final chunk, the row never finished
    let elsewhere = app.state.recordings.start(interview, owner, Source::Interviewer, "audio/ogg", 0).await.unwrap();
    drop(elsewhere);
    let rows = app.state.store.recordings(interview).await.unwrap();
    let (ours, other) = (&rows[0], &rows[1]);
    std::fs::remove_file(app.state.config.data_dir.join(&other.path)).unwrap();
    assert!(ours.finished_at.is_none() && ours.location == "local");

    // What startup runs before any session records.
    assert_eq!(app.state.recordings.recover().await.unwrap(), 1);
    let row = app.state.store.recordings(interview).await.unwrap().into_iter().find(|r| r.id == ours.id).unwrap();
    assert!(row.finished_at.is_some());
    assert_eq!(row.location, "object");
    assert_eq!(row.bytes, media.len() as i64);
    assert!(!app.state.config.data_dir.join(&row.path).exists(), "moved, no local copy left");
    let list = app.get(&format!("/api/v1/interviews/{id}/recordings"), Some(&token)).await.body;
    let item = list["items"].as_array().unwrap().iter().find(|i| i["id"] == json!(row.id)).unwrap().clone();
    let whole = app.client.get(app.url(item["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap().to_vec(), media, "everything sealed before the crash replays");
    assert!(app.state.metrics.render().contains("candor_recordings_total{event=\"recovered\"} 1"));
    assert_eq!(app.state.recordings.recover().await.unwrap(), 0, "recovered once");
    let other = app.state.store.recordings(interview).await.unwrap().into_iter().find(|r| r.id == other.id).unwrap();
    assert!(other.finished_at.is_none(), "another node's recording is left alone");
}
