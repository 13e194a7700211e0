//! The load generator against the real server: candidates sign up, talk and show a face; the report says what
//! they received and what they cost.

use std::time::Duration;

use candor_loadtest::capacity::{self, capacity};
use candor_loadtest::load::{Load, LoadError, run};
use candor_loadtest::media::{CameraCodec, read_picture};

use crate::{Binary, app_with, espeak};

const ANSWER: &str = "I led the migration of our billing service to a new database.";

#[tokio::test]
async fn the_load_generator_runs_candidates_and_reports_what_they_cost() {
    let Some(app) = app_with(&["vad", "stt", "vision"]).await else { return };
    let portrait = app.state.config.models_dir.join("astronaut.png");
    let load = Load {
        server: app.addr,
        sessions: 2,
        duration: Duration::from_secs(10),
        answer: espeak(ANSWER),
        pause: Duration::from_secs(2),
        camera: Some((CameraCodec::Vp8, 320, 240, 15)),
        picture: Some(read_picture(&portrait, 320, 240).unwrap()),
        impairment: None,
    };
    let report = run(&load).await.unwrap();
    assert_eq!((report.connected, report.failures.len()), (2, 0), "{report}");
    assert!(report.transcripts >= 2, "each candidate's answer comes back: {report}");
    assert!(report.face_seconds >= 2, "the face is seen: {report}");
    assert!(report.vision_batch_frames.is_some_and(|frames| (1.0..=8.0).contains(&frames)), "{report}");
    assert!(report.cores_used > 0.0 && report.server_memory_mb > 10.0, "{report}");
    for stage in ["turn_wait", "stt_final", "vision_frame"] {
        assert!(report.latency_ms.get(stage).is_some_and(|&ms| ms > 0.0), "{stage}: {report}");
    }
    assert!(report.to_json()["sessions_per_core"].as_f64().is_some_and(|v| v > 0.0));
}

/// A small capacity search against the real server: every step is a full run, the search stops at the first
/// step that misses the bound (on a busy machine that may be the first), and the results are written as JSON,
/// Markdown and an SVG chart.
#[tokio::test]
async fn the_capacity_search_runs_growing_steps_and_writes_its_results() {
    let Some(app) = app_with(&["vad", "stt", "tts"]).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let load = Load {
        server: app.addr,
        sessions: 0,
        duration: Duration::from_secs(8),
        answer: espeak("We finished two weeks early."),
        pause: Duration::from_secs(2),
        camera: None,
        picture: None,
        impairment: None,
    };
    let bound = Duration::from_millis(5000);
    let mut seen = Vec::new();
    let steps = capacity::search(&load, 2, bound, |step| seen.push(step.sessions)).await.unwrap();
    assert_eq!(seen, steps.iter().map(|s| s.sessions).collect::<Vec<_>>(), "each step is reported as it ends");
    assert!(!steps.is_empty() && steps[0].sessions == 1 && steps[0].report.connected == 1, "{:?}", steps[0].misses);
    assert!(steps[0].report.transcripts >= 1, "the answer comes back: {}", steps[0].report);
    assert!(steps[..steps.len() - 1].iter().all(|s| s.passed()), "the search stops at the first miss");
    assert!(steps.last().unwrap().passed() == (capacity(&steps) == steps.len()), "{:?}", steps.last().unwrap().misses);
    let chart = dir.path().join("capacity.svg");
    capacity::chart(&steps, bound, &chart).unwrap();
    assert!(std::fs::read_to_string(&chart).unwrap().contains("<svg"));
    assert!(capacity::markdown(&steps, bound, 1.0).contains("| 1 |"));
    assert_eq!(capacity::to_json(&steps, bound, 1.0)["steps"].as_array().unwrap().len(), steps.len());
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
        impairment: None,
    };
    let error = run(&load).await.unwrap_err();
    assert!(matches!(error, LoadError::NoSession(_)), "{error}");
    assert!(error.to_string().contains("session 0"), "{error}");
}

/// The real binary, stopped with SIGTERM while candidates talk and show their faces: it must exit cleanly,
/// not crash in an inference library torn down under a running job.
#[tokio::test]
async fn the_server_stops_cleanly_while_inference_runs() {
    let Some(app) = app_with(&["vad", "stt", "vision", "tts"]).await else { return };
    let models = app.state.config.models_dir.clone();
    drop(app);
    let mut server = Binary::spawn(&models, &[]).await;
    let address = server.address;

    let load = Load {
        server: address,
        sessions: 2,
        duration: Duration::from_secs(60),
        answer: espeak(ANSWER),
        pause: Duration::from_millis(500),
        camera: Some((CameraCodec::Vp8, 320, 240, 15)),
        picture: Some(read_picture(&models.join("astronaut.png"), 320, 240).unwrap()),
        impairment: None,
    };
    let candidates = tokio::spawn(async move { run(&load).await });
    // Speech and faces are being analysed by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let status = server.stop().await;
    assert!(status.success(), "exit status {status:?}");
    candidates.abort();
}

/// ONNX Runtime (the registry's build) collects usage telemetry for Microsoft under the user's home (a device id
/// and an event queue) unless told not to: the binary runs face analysis and stops, and nothing was written there.
#[tokio::test]
async fn onnx_runtime_collects_no_telemetry() {
    let Some(app) = app_with(&["vision"]).await else { return };
    let models = app.state.config.models_dir.clone();
    drop(app);
    let home = tempfile::tempdir().unwrap();
    let mut server = Binary::spawn(&models, &[("HOME", home.path().to_str().unwrap())]).await;
    let load = Load {
        server: server.address,
        sessions: 1,
        duration: Duration::from_secs(8),
        answer: espeak(ANSWER),
        pause: Duration::from_secs(1),
        camera: Some((CameraCodec::Vp8, 320, 240, 15)),
        picture: Some(read_picture(&models.join("astronaut.png"), 320, 240).unwrap()),
        impairment: None,
    };
    let report = run(&load).await.unwrap();
    assert!(report.face_seconds >= 2, "faces were analysed: {report}");
    // The library writes its queue at the latest when it is unloaded: stop the server.
    server.stop().await;
    let telemetry = home.path().join(".cache/Microsoft");
    assert!(!telemetry.exists(), "ONNX Runtime wrote {}", telemetry.display());
}
