//! The load generator against the real server: candidates sign up, talk and show a face; the report says what
//! they received and what they cost.

use std::process::Command;
use std::time::Duration;

use candor_loadtest::load::{Load, LoadError, run};
use candor_loadtest::media::{CameraCodec, read_picture, read_wav};

use crate::app_with;

#[tokio::test]
async fn the_load_generator_runs_candidates_and_reports_what_they_cost() {
    let Some(app) = app_with(&["vad", "stt", "vision"]).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("answer.wav");
    let text = "I led the migration of our billing service to a new database.";
    assert!(Command::new("espeak-ng").args(["-v", "en-us", "-w"]).arg(&wav).arg(text).status().unwrap().success());
    let portrait = app.state.config.models_dir.join("astronaut.png");
    let load = Load {
        server: app.addr,
        sessions: 2,
        duration: Duration::from_secs(10),
        answer: read_wav(&wav).unwrap(),
        pause: Duration::from_secs(2),
        camera: Some((CameraCodec::Vp8, 320, 240, 15)),
        picture: Some(read_picture(&portrait, 320, 240).unwrap()),
    };
    let report = run(&load).await.unwrap();
    assert_eq!((report.connected, report.failures.len()), (2, 0), "{report}");
    assert!(report.transcripts >= 2, "each candidate's answer comes back: {report}");
    assert!(report.face_seconds >= 2, "the face is seen: {report}");
    assert!(report.cores_used > 0.0 && report.server_memory_mb > 10.0, "{report}");
    for stage in ["turn_wait", "stt_final", "vision_frame"] {
        assert!(report.latency_ms.get(stage).is_some_and(|&ms| ms > 0.0), "{stage}: {report}");
    }
    assert!(report.to_json()["sessions_per_core"].as_f64().is_some_and(|v| v > 0.0));
}

#[tokio::test]
async fn a_dead_server_is_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let load = Load {
        server: closed,
        sessions: 1,
        duration: Duration::from_secs(1),
        answer: (vec![0.0; 16_000], 16_000),
        pause: Duration::ZERO,
        camera: None,
        picture: None,
    };
    let error = run(&load).await.unwrap_err();
    assert!(matches!(error, LoadError::NoSession(_)), "{error}");
    assert!(error.to_string().contains("session 0"), "{error}");
}
