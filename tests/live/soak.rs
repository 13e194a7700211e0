//! The soak in small: the real binary in its own process while candidates come and go for three minutes (two at
//! once, each interviewing for 30 s, speaking and showing a face). Every final transcript is stored; the live heap
//! under load stays within 5%; the idle server ends with the tasks, files and threads it had after the warm-up.
//! Resident memory is reported, not judged: on this machine it rises for the first two or three minutes of load
//! (the allocator's arenas settling, the live heap flat) and then levels, so three minutes cannot tell that from a
//! leak. The 30-minute run at capacity judges it too (`candor-loadtest --soak 30`, README).

use std::time::Duration;

use candor_loadtest::load::Load;
use candor_loadtest::media::{CameraCodec, read_picture};
use candor_loadtest::soak::{Soak, soak};

use crate::{Binary, app_with, espeak};

#[tokio::test]
async fn a_three_minute_soak_loses_no_turn_and_ends_where_it_started() {
    let Some(app) = app_with(&["vad", "stt", "vision", "tts"]).await else { return };
    let models = app.state.config.models_dir.clone();
    drop(app);
    // Every candidate is a new account: the sign-ups must not be rate limited.
    let server = Binary::spawn(&models, &[("CANDOR_RATE_LIMIT_REQUESTS", "0")]).await;
    let load = Load {
        server: server.address,
        sessions: 2,
        duration: Duration::from_secs(30),
        answer: espeak("In my last role I led the migration of our billing service to a new database."),
        pause: Duration::from_secs(2),
        camera: Some((CameraCodec::Vp8, 320, 240, 15)),
        picture: Some(read_picture(&models.join("astronaut.png"), 320, 240).unwrap()),
        impairment: None,
    };
    let (total, sample_every) = (Duration::from_secs(180), Duration::from_secs(5));
    let report = soak(&Soak { load, total, sample_every, rss_limit: None }).await.unwrap();
    assert!(report.misses().is_empty(), "{report}");
    assert!(report.candidates >= 4 && report.answers >= report.candidates, "candidates came and went, and spoke: {report}");
    assert!(report.samples.iter().any(|s| s.live_sessions >= 2.0), "{report}");
}
