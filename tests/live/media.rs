//! Media both ways: audio levels survive Opus and resampling, VP8 frames are decoded at their size, the greeting
//! arrives, and observers receive forwarded media.

use std::path::Path;
use std::process::Command;

use candor_loadtest::media::{CameraCodec, read_wav};
use candor_loadtest::{Client, Role};
use candor::domain::SampleKind;
use candor_pipelines::audio::dbfs;

use crate::helpers::TestApp;
use crate::{PATIENCE, app_with, candidate_app, events_of, metric, options};

pub fn sine(freq: f32, amplitude: f32, seconds: f32, rate: u32) -> Vec<f32> {
    (0..(seconds * rate as f32) as usize)
        .map(|i| amplitude * (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin())
        .collect()
}

/// The mean power (in dB) of reported per-second levels, and the source's over the same whole seconds.
fn reported_and_source(client: &Client, source: &[f32], rate: u32) -> (f32, f32, usize) {
    let levels: Vec<f32> = events_of(client, "speech.metrics")
        .iter()
        .filter_map(|e| e["volume_dbfs"].as_f64())
        .map(|v| v as f32)
        .collect();
    let seconds = levels.len().min(source.len() / rate as usize);
    let mean_power = levels[..seconds].iter().map(|db| 10_f32.powf(db / 10.0)).sum::<f32>() / seconds as f32;
    (10.0 * mean_power.log10(), dbfs(&source[..seconds * rate as usize]), seconds)
}

/// The stored samples of `kind` once `done` holds (or `PATIENCE` has passed): the session's recorder writes them
/// beside the media path, so they land shortly after the events.
async fn stored_samples(app: &crate::helpers::TestApp, interview: &str, kind: SampleKind, done: impl Fn(&[(i64, String)]) -> bool) -> Vec<(i64, String)> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let stored = app.state.store.metric_samples(interview.parse().unwrap(), kind).await.unwrap();
        if done(&stored) || std::time::Instant::now() > deadline {
            return stored;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn send_and_measure(pcm: Vec<f32>, rate: u32) {
    let (app, token, interview) = candidate_app().await;
    // Whole seconds the server can measure: the resampler holds back a millisecond, so a clip of exactly N
    // seconds completes N - 1 windows.
    let whole_seconds = (pcm.len() - rate as usize / 10) / rate as usize;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((pcm.clone(), rate));
    let client = Client::connect(opts).await.expect("connects");
    let enough = client.wait_until(PATIENCE, |c| events_of(c, "speech.metrics").len() >= whole_seconds).await;
    assert!(enough, "only {} speech.metrics events", events_of(&client, "speech.metrics").len());
    let (reported, source, seconds) = reported_and_source(&client, &pcm, rate);
    assert!(seconds >= 2);
    assert!((reported - source).abs() < 3.0, "reported {reported:.1} dBFS, source {source:.1} dBFS");

    let stored = stored_samples(&app, &interview, SampleKind::Speech, |s| s.len() >= seconds).await;
    assert!(stored.len() >= seconds, "samples are stored as they happen: {} of {seconds}", stored.len());
    client.end().await;
}

/// The interview's stored turns once `stored` holds for them (waiting generously): turns are stored off the media
/// path, a moment after the events that announce them.
async fn stored_turns(app: &TestApp, token: &str, interview: &str, stored: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let detail = app.get(&format!("/api/v1/interviews/{interview}"), Some(token)).await;
        let turns = detail.body["turns"].as_array().cloned().unwrap_or_default();
        if stored(&turns) || tokio::time::Instant::now() >= deadline {
            return turns;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_sine_arrives_decoded_at_its_level() {
    send_and_measure(sine(440.0, 0.25, 4.0, 48_000), 48_000).await;
}

#[tokio::test]
async fn speech_from_a_wav_arrives_decoded_at_its_level() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let spoken = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg("Tell me about a time you disagreed with your team, and what you did about it.")
        .status();
    assert!(spoken.is_ok_and(|s| s.success()), "espeak-ng is installed by the test command");
    let (pcm, rate) = read_wav(Path::new(&wav)).unwrap();
    send_and_measure(pcm, rate).await;
}

/// The latest `vision.metrics` once the server reports decoding more than 5 frames a second.
async fn decoded_video(client: &Client) -> serde_json::Value {
    let decoded = client
        .wait_until(PATIENCE, |c| events_of(c, "vision.metrics").iter().any(|e| e["fps"].as_f64().unwrap_or(0.0) > 5.0))
        .await;
    assert!(decoded, "events: {:?}", client.events());
    events_of(client, "vision.metrics").pop().unwrap()
}

#[tokio::test]
async fn h264_video_is_decoded_at_its_size() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.video = Some((CameraCodec::H264, 352, 288, 15));
    let client = Client::connect(opts).await.expect("connects");
    let vision = decoded_video(&client).await;
    assert_eq!((vision["frame_width"].as_u64(), vision["frame_height"].as_u64()), (Some(352), Some(288)));
    client.end().await;
}

#[tokio::test]
async fn vp8_video_is_decoded_at_its_size_and_the_greeting_is_heard() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((sine(300.0, 0.2, 3.0, 48_000), 48_000));
    opts.video = Some((CameraCodec::Vp8, 320, 240, 15));
    let client = Client::connect(opts).await.expect("connects");

    let vision = decoded_video(&client).await;
    assert_eq!((vision["frame_width"].as_u64(), vision["frame_height"].as_u64()), (Some(320), Some(240)));
    assert!(vision["face"].is_null(), "no face data is invented");

    // The greeting (0.6 s) arrives as audio with energy.
    assert!(client.wait_until(PATIENCE, |c| c.inbound().audio_packets >= 25).await);
    let heard = client.inbound().first_audio_pcm;
    assert!(dbfs(&heard) > -40.0, "greeting level {:.1} dBFS", dbfs(&heard));

    let states: Vec<_> = events_of(&client, "session.state").iter().map(|e| e["state"].clone()).collect();
    assert!(states.contains(&serde_json::json!("interviewing")), "{states:?}");
    assert!(events_of(&client, "session.state").iter().all(|e| e["v"] == 1 && e["t_ms"].is_u64()));
    assert!(metric(&app, "candor_rtp_packets_total", Some(("kind", "video"))) > 0.0);
    let detail = app.get(&format!("/api/v1/interviews/{interview}"), Some(&token)).await;
    assert_eq!(detail.body["status"], "in_progress");
    client.end().await;
}

#[tokio::test]
async fn an_observer_receives_forwarded_audio_video_and_events() {
    let (app, token, interview) = candidate_app().await;
    let coach = app.add_user("coach@example.com", candor::domain::Role::Coach).await;
    let shares = format!("/api/v1/interviews/{interview}/shares");
    assert_eq!(app.post(&shares, Some(&token), serde_json::json!({"email": "coach@example.com"})).await.status, 201);
    let coach_token = app.login("coach@example.com").await.body["access_token"].as_str().unwrap().to_string();
    let _ = coach;

    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((sine(440.0, 0.25, 20.0, 48_000), 48_000));
    opts.video = Some((CameraCodec::Vp8, 320, 240, 15));
    let candidate = Client::connect(opts).await.expect("candidate connects");
    assert!(candidate.wait_until(PATIENCE, |c| c.is_connected()).await);

    let observer =
        Client::connect(options(&app, &coach_token, &interview, Role::Observer)).await.expect("observer connects");
    let received = observer
        .wait_until(PATIENCE, |c| {
            let inbound = c.inbound();
            inbound.audio_packets > 50 && inbound.video_packets > 20 && !events_of(c, "speech.metrics").is_empty()
        })
        .await;
    assert!(received, "observer got {:?} and events {:?}", observer.inbound(), observer.events().len());
    assert_eq!(metric(&app, "candor_rtc_peers", Some(("role", "observer"))), 1.0);

    // The observer leaving does not disturb the candidate.
    let before = events_of(&candidate, "speech.metrics").len();
    observer.vanish().await;
    assert!(candidate.wait_until(PATIENCE, |c| events_of(c, "speech.metrics").len() >= before + 2).await);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while metric(&app, "candor_rtc_peers", Some(("role", "observer"))) != 0.0 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&app, "candor_rtc_peers", Some(("role", "observer"))), 0.0);
    assert!(app.state.live.session(interview.parse().unwrap()).is_some());
    candidate.end().await;
}

#[tokio::test]
async fn garbage_rtp_payloads_are_counted_and_the_session_goes_on() {
    let (app, token, interview) = candidate_app().await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.garbage_audio_packets = 50;
    opts.audio = Some((sine(440.0, 0.25, 4.0, 48_000), 48_000));
    let client = Client::connect(opts).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| events_of(c, "speech.metrics").len() >= 3).await);
    assert!(metric(&app, "candor_decode_errors_total", Some(("kind", "audio"))) > 0.0);
    let last = events_of(&client, "speech.metrics").pop().unwrap();
    assert!(last["volume_dbfs"].as_f64().unwrap() > -20.0, "real audio after the garbage is measured: {last}");
    client.end().await;
}

#[tokio::test]
async fn media_ports_come_from_the_configured_range_and_host_candidates_carry_the_public_ip() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |config| {
        config.rtc_udp_ports = Some(candor::config::PortRange { low: 47100, high: 47120 });
        // Another loopback address stands in for the public one: nothing leaves the machine.
        config.rtc_public_ip = Some("127.0.0.2".parse().unwrap());
    })
    .await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    let candidates = |c: &Client| -> Vec<String> {
        c.signals()
            .into_iter()
            .filter_map(|s| match s {
                candor_signaling::ServerMessage::Candidate { candidate } if !candidate.candidate.is_empty() => {
                    Some(candidate.candidate)
                }
                _ => None,
            })
            .collect()
    };
    assert!(client.wait_until(PATIENCE, |c| !candidates(c).is_empty()).await);
    for line in candidates(&client) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[4], "127.0.0.2", "{line}");
        let port: u16 = fields[5].parse().unwrap();
        assert!((47100..=47120).contains(&port), "{line}");
    }
    client.vanish().await;
}

/// `stt_model` picks the speech-to-text model: the Q8_0 file transcribes a live answer; a name that is not there
/// turns speech-to-text off with the name in `/readyz`.
#[tokio::test]
async fn the_speech_to_text_model_is_chosen_by_configuration() {
    let quantized = |c: &mut candor::config::Config| {
        crate::helpers::with_models(c);
        c.stt_model = "ggml-tiny.en-q8_0.bin".into();
    };
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, quantized).await;
    let ready = app.get("/readyz", None).await;
    if ready.body["engines"]["stt"] != "ok" || ready.body["engines"]["vad"] != "ok" {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing: {}", ready.body);
        eprintln!("skipped: the Q8_0 model is not fetched");
        return;
    }
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let text = "We planned the work in small steps and finished two weeks early.";
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("answer.wav");
    assert!(Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&wav).arg(text).status().is_ok_and(|s| s.success()));
    let (pcm, rate) = read_wav(&wav).unwrap();
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((pcm, rate));
    let client = Client::connect(opts).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "transcript.final").is_empty()).await, "{:?}", client.events());
    let heard = events_of(&client, "transcript.final").pop().unwrap()["text"].as_str().unwrap().to_string();
    let wer = candor_pipelines::speech::text::word_error_rate(text, &heard);
    assert!(wer <= 0.2, "WER {wer:.2}: {heard}");
    client.end().await;

    let missing = |c: &mut candor::config::Config| {
        crate::helpers::with_models(c);
        c.stt_model = "ggml-nonexistent.bin".into();
    };
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, missing).await;
    let engines = &app.get("/readyz", None).await.body["engines"];
    assert!(engines["stt"].as_str().unwrap().contains("ggml-nonexistent.bin"), "{engines}");
}

#[tokio::test]
async fn a_spoken_answer_comes_back_as_a_final_transcript_and_a_stored_turn() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, crate::helpers::with_models).await;
    let ready = app.get("/readyz", None).await;
    if ready.body["engines"]["stt"] != "ok" || ready.body["engines"]["vad"] != "ok" {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing: {}", ready.body);
        eprintln!("skipped: speech models are not fetched");
        return;
    }
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;

    let text = "In my last role I led the migration of our billing service to a new database.";
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("answer.wav");
    let spoken = Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&wav).arg(text).status();
    assert!(spoken.is_ok_and(|s| s.success()));
    let (mut pcm, rate) = read_wav(&wav).unwrap();
    let mut answer = vec![0.0; rate as usize / 2];
    answer.append(&mut pcm);
    // No trailing silence: the client stops sending when the answer ends (as with DTX or a muted microphone),
    // and the turn must end all the same.

    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((answer, rate));
    let client = Client::connect(opts).await.expect("connects");
    assert!(
        client.wait_until(PATIENCE, |c| !events_of(c, "transcript.final").is_empty()).await,
        "{:?}",
        client.events()
    );
    let last = events_of(&client, "transcript.final").pop().unwrap();
    let heard = last["text"].as_str().unwrap();
    let wer = candor_pipelines::speech::text::word_error_rate(text, heard);
    assert!(wer <= 0.2, "WER {wer:.2}: {heard}");
    let words = last["words"].as_array().unwrap();
    assert!(words.len() >= 10 && words.iter().all(|w| w["end_ms"].as_u64() >= w["start_ms"].as_u64()));
    // It answers the interviewer's first question.
    let question = events_of(&client, "interviewer.question").remove(0);
    assert!(last["turn_id"].is_string() && last["question_id"] == question["question_id"], "{last}");

    // Rolling delivery metrics follow the final transcript; the turn is stored as it ends.
    assert!(client.wait_until(PATIENCE, |c| events_of(c, "speech.metrics").iter().any(|e| e["wpm"].is_number())).await);
    let rolling = events_of(&client, "speech.metrics").into_iter().rfind(|e| e["wpm"].is_number()).unwrap();
    let share = rolling["speaking_share"].as_f64().unwrap();
    assert!(share > 0.2 && share <= 1.0, "speaking share {share}");
    let turns = stored_turns(&app, &token, &interview, |turns| turns.iter().any(|t| t["speaker"] == "candidate")).await;
    let candidate: Vec<_> = turns.iter().filter(|t| t["speaker"] == "candidate").collect();
    assert_eq!(candidate.len(), 1, "{turns:?}");
    assert_eq!(candidate[0]["text"], heard);
    // The greeting was playing when the answer began: it is stored too, cut off.
    assert!(turns.iter().any(|t| t["speaker"] == "interviewer" && t["interrupted"] == true), "{turns:?}");
    assert!(metric(&app, "candor_turns_total", Some(("reason", "silence"))) >= 1.0);
    // The reply's first sentence was made in the silence that ended the turn, from the final decoded there.
    let prepared = async || metric(&app, "candor_voice_prepared_total", Some(("outcome", "used"))) >= 1.0;
    assert!(crate::eventually(prepared).await, "{}", app.state.metrics.render());
    let text = app.state.metrics.render();
    for stage in ["vad", "stt_final", "turn_wait"] {
        assert!(
            text.contains(&format!("candor_speech_stage_seconds_count{{stage=\"{stage}\"}}")),
            "{stage} latency is measured"
        );
    }
    client.end().await;
}

#[tokio::test]
async fn a_fast_answer_earns_one_pace_cue() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, crate::helpers::with_models).await;
    if app.get("/readyz", None).await.body["engines"]["stt"] != "ok" {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing");
        return;
    }
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let text = "We measured every request, found the slow queries, added the right indexes, cached the hot pages, \
                and cut the response time in half within two weeks of starting the work.";
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("fast.wav");
    assert!(
        Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "240", "-w"])
            .arg(&wav)
            .arg(text)
            .status()
            .unwrap()
            .success()
    );
    let (mut pcm, rate) = read_wav(&wav).unwrap();
    let mut answer = vec![0.0; rate as usize / 2];
    answer.append(&mut pcm);
    answer.extend(std::iter::repeat_n(0.0, rate as usize * 2));
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((answer, rate));
    let client = Client::connect(opts).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "cue").is_empty()).await, "{:?}", client.events());
    let cues = events_of(&client, "cue");
    assert_eq!(cues.len(), 1);
    assert_eq!(cues[0]["kind"], "pace_fast", "{cues:?}");
    assert!(cues[0]["text"].as_str().is_some_and(|t| !t.is_empty()));
    client.end().await;
}

/// The test portrait framed as a 640x480 webcam picture, RGB24, or `None` when it is not fetched.
fn portrait_frame() -> Option<Vec<u8>> {
    let models = crate::helpers::models_dir();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(models.join("astronaut.png"))
        .args(["-vf", "crop=400:400:56:0,scale=480:480,pad=640:480:80:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .ok()?;
    (out.stdout.len() == 640 * 480 * 3).then_some(out.stdout)
}

#[tokio::test]
async fn a_face_on_camera_comes_back_as_vision_metrics_and_stored_samples() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, crate::helpers::with_models).await;
    let ready = app.get("/readyz", None).await;
    let Some(picture) = portrait_frame().filter(|_| ready.body["engines"]["vision"] == "ok") else {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "vision models missing: {}", ready.body);
        eprintln!("skipped: vision models or the test portrait are not fetched");
        return;
    };
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.video = Some((CameraCodec::Vp8, 640, 480, 15));
    opts.picture = Some(picture);
    let client = Client::connect(opts).await.expect("connects");

    let seen = |c: &Client| events_of(c, "vision.metrics").into_iter().find(|e| e["face"] == true);
    assert!(client.wait_until(PATIENCE, |c| seen(c).is_some()).await, "{:?}", client.events());
    let vision = seen(&client).unwrap();
    let expression = vision["expression"].as_object().unwrap();
    assert_eq!(expression.len(), 7);
    let top = expression.iter().max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap()).unwrap().0;
    assert_eq!(top, "happy", "{vision}");
    assert!(vision["eye_contact"].as_f64().unwrap() >= 0.5, "she looks into the camera: {vision}");
    assert!(vision["head_yaw"].as_f64().unwrap().abs() < 15.0, "{vision}");
    assert!(vision["head_pitch"].is_number());

    let face = |s: &[(i64, String)]| s.iter().any(|(_, data)| data.contains("\"face\":true"));
    let stored = stored_samples(&app, &interview, SampleKind::Vision, face).await;
    assert!(face(&stored), "{stored:?}");
    assert!(metric(&app, "candor_vision_frame_seconds_count", None) >= 1.0);
    // Analysed in batches (alone here, with no other session's frames to join).
    let (batches, frames) =
        (metric(&app, "candor_vision_batch_frames_count", None), metric(&app, "candor_vision_batch_frames_sum", None));
    assert!(batches >= 1.0 && frames >= batches, "{batches} batches of {frames} frames");
    client.end().await;
}

fn speech_events(client: &Client, phase: &str) -> Vec<serde_json::Value> {
    events_of(client, "interviewer.speech").into_iter().filter(|e| e["phase"] == phase).collect()
}

#[tokio::test]
async fn the_interviewer_greets_with_a_voice_that_plays_to_the_end_and_is_stored() {
    let Some(app) = app_with(&["tts"]).await else { return };
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");

    // The greeting gives the plan and asks the first question: several sentences, about twenty seconds.
    assert!(client.wait_until(PATIENCE * 3, |c| !speech_events(c, "end").is_empty()).await, "{:?}", client.events());
    let (start, end) = (speech_events(&client, "start").remove(0), speech_events(&client, "end").remove(0));
    assert_eq!(start["utterance_id"], end["utterance_id"]);
    let greeting = start["text"].as_str().unwrap();
    let question = events_of(&client, "interviewer.question").remove(0);
    assert!(greeting.starts_with("Hello") && greeting.ends_with(question["text"].as_str().unwrap()), "{greeting}");
    assert_eq!(end["interrupted"], false);
    // It played in real time: about as long as the speech, all of which arrived.
    let played_ms = end["t_ms"].as_u64().unwrap() - start["t_ms"].as_u64().unwrap();
    let heard_ms = client.inbound().audio_packets * 20;
    // The first sentence is synthesised after the start event: a second of slack.
    assert!(played_ms > 3000 && heard_ms + 1000 >= played_ms, "played {played_ms} ms, heard {heard_ms} ms");
    assert!(dbfs(&client.inbound().first_audio_pcm) > -40.0);

    // Mouth shapes for avatars, one event per sentence, on the utterance's own clock.
    let visemes = events_of(&client, "avatar.visemes");
    assert_eq!(visemes.len(), candor_pipelines::voice::tts::sentences(greeting).len(), "one per sentence");
    let frames: Vec<(u64, String)> = visemes
        .iter()
        .inspect(|e| assert_eq!(e["utterance_id"], start["utterance_id"]))
        .flat_map(|e| e["frames"].as_array().unwrap().clone())
        .map(|f| (f["t_ms"].as_u64().unwrap(), f["viseme"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(frames[0].0, 0);
    assert!(frames.windows(2).all(|w| w[0].0 <= w[1].0), "in order: {frames:?}");
    assert!(frames.last().unwrap().0 <= played_ms + 200, "within the speech: {frames:?}");
    assert!(frames.iter().any(|(_, v)| v == "PP"), "lips close for the m of welcome: {frames:?}");

    let turns = stored_turns(&app, &token, &interview, |turns| !turns.is_empty()).await;
    assert_eq!((turns.len(), &turns[0]["speaker"], &turns[0]["interrupted"]), (1, &"interviewer".into(), &false.into()));
    client.end().await;
}

#[tokio::test]
async fn a_candidate_who_starts_speaking_cuts_the_interviewer_off_at_once() {
    let Some(app) = app_with(&["tts", "vad"]).await else { return };
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("answer.wav");
    let text = "Sure. I have been a backend engineer for six years, mostly on payments and billing systems.";
    assert!(Command::new("espeak-ng").args(["-v", "en-us", "-w"]).arg(&wav).arg(text).status().unwrap().success());
    let (pcm, rate) = read_wav(&wav).unwrap();
    // The candidate answers one second in, while the greeting (about five seconds) is still playing.
    let mut answer = vec![0.0; rate as usize];
    answer.extend(pcm);
    let mut opts = options(&app, &token, &interview, Role::Candidate);
    opts.audio = Some((answer, rate));
    let client = Client::connect(opts).await.expect("connects");

    assert!(client.wait_until(PATIENCE, |c| !speech_events(c, "end").is_empty()).await, "{:?}", client.events());
    let (start, end) = (speech_events(&client, "start").remove(0), speech_events(&client, "end").remove(0));
    assert_eq!(end["interrupted"], true, "{end}");
    let spoke_ms = end["t_ms"].as_u64().unwrap() - start["t_ms"].as_u64().unwrap();
    assert!(spoke_ms < 3500, "the greeting was cut short: {spoke_ms} ms");
    // Nothing more of it is sent once it is cut off.
    let heard = client.inbound().audio_packets;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(client.inbound().audio_packets <= heard + 3, "{} then {}", heard, client.inbound().audio_packets);

    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "transcript.final").is_empty()).await);
    let turns = stored_turns(&app, &token, &interview, |turns| turns.iter().any(|t| t["speaker"] == "candidate")).await;
    let interviewer = turns.iter().find(|t| t["speaker"] == "interviewer").unwrap();
    assert_eq!(interviewer["interrupted"], true);
    client.end().await;
}

#[tokio::test]
async fn a_candidate_who_asks_hears_the_interviewer_again() {
    let Some(app) = app_with(&["tts"]).await else { return };
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(client.wait_until(PATIENCE * 3, |c| !speech_events(c, "end").is_empty()).await);
    let heard = client.inbound().audio_packets;

    // A burst of repeats says the question once more.
    for _ in 0..3 {
        client.send_event(r#"{"v":1,"type":"control","action":"repeat"}"#).await.unwrap();
    }
    assert!(client.wait_until(PATIENCE, |c| speech_events(c, "end").len() == 2).await, "{:?}", client.events());
    let starts = speech_events(&client, "start");
    let question = events_of(&client, "interviewer.question").remove(0);
    assert_eq!(starts[1]["text"], question["text"], "the question again");
    assert_ne!(starts[0]["utterance_id"], starts[1]["utterance_id"], "a new utterance");
    assert!(client.inbound().audio_packets > heard + 100, "it was heard again");
    assert!(!client.wait_until(std::time::Duration::from_secs(2), |c| speech_events(c, "start").len() > 2).await, "only once");
    client.end().await;
}
