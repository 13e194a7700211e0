//! Recording with and without consent, over real WebRTC: without it nothing media-like reaches the disk; with
//! it the candidate's and the interviewer's audio and the candidate's camera are stored sealed (no container
//! magic, every chunk authenticated), decrypt to Ogg Opus of the right length and WebM whose VP8 frames decode,
//! replay by byte range with a ticket, and a flipped byte on disk is refused rather than served.

use std::path::{Path, PathBuf};

use candor_loadtest::media::CameraCodec;
use candor_loadtest::{Client, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::media::sine;
use crate::{PATIENCE, app_with, events_of, options};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(files_under(&path)) } else { out.push(path) }
    }
    out
}

/// Container signatures that would mean media in the clear: Ogg, Matroska/WebM, RIFF/WAV, IVF, MP4.
fn has_media_magic(bytes: &[u8]) -> bool {
    let magics: [&[u8]; 5] = [b"OggS", &[0x1A, 0x45, 0xDF, 0xA3], b"RIFF", b"DKIF", b"ftyp"];
    magics.iter().any(|m| bytes.windows(m.len()).any(|w| w == *m))
}

async fn interview(app: &TestApp, token: &str, consent: bool) -> String {
    let body = json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid", "recording_consent": consent});
    let reply = app.post("/api/v1/interviews", Some(token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["recording_consent"], consent);
    reply.body["id"].as_str().unwrap().to_string()
}

/// A candidate with a camera speaking a tone for a few seconds until the interviewer has asked the first question.
async fn session(app: &TestApp, token: &str, id: &str, camera: CameraCodec) {
    let mut opts = options(app, token, id, Role::Candidate);
    opts.audio = Some((sine(220.0, 0.2, 4.0, 48_000), 48_000));
    opts.video = Some((camera, 320, 240, 15));
    let client = Client::connect(opts).await.expect("connects");
    let heard = |c: &Client| {
        events_of(c, "speech.metrics").len() >= 3
            && events_of(c, "vision.metrics").len() >= 3
            && !events_of(c, "interviewer.question").is_empty()
    };
    assert!(client.wait_until(PATIENCE, heard).await, "{:?}", client.events());
    client.end().await;
}

async fn recordings(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/interviews/{id}/recordings"), Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

async fn fetch(app: &TestApp, url: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(url));
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn without_consent_no_audio_or_video_touches_the_disk_or_the_object_store() {
    // With an object store configured where the test command provides one, so both places are checked.
    let s3 = crate::helpers::S3Server::start().await;
    let app = spawn_app_with(Backend::Sqlite, |c| {
        if let Some(s3) = &s3 {
            s3.configure(c);
        }
    })
    .await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = interview(&app, &token, false).await;
    session(&app, &token, &id, CameraCodec::Vp8).await;
    let ended = app.get(&format!("/api/v1/interviews/{id}"), Some(&token)).await;
    assert_ne!(ended.body["status"], "scheduled", "the session ran");
    assert!(recordings(&app, &token, &id).await.is_empty());
    let data_dir = &app.state.config.data_dir;
    assert!(!data_dir.join("recordings").exists());
    for file in files_under(data_dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!has_media_magic(&bytes), "{} holds media", file.display());
    }
    let reply = app.get(&format!("/api/v1/interviews/{id}/recording"), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    if let Some(s3) = &s3 {
        assert!(s3.keys().await.is_empty(), "nothing in the bucket");
    }
}

#[tokio::test]
async fn with_consent_both_voices_and_the_camera_are_sealed_on_disk_and_replay_by_range() {
    let Some(app) = app_with(&["tts"]).await else { return };
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = interview(&app, &token, true).await;
    session(&app, &token, &id, CameraCodec::Vp8).await;
    let items = finished_recordings(&app, &token, &id).await;
    let candidate = items.iter().find(|r| r["source"] == "candidate" && r["kind"] == "audio").unwrap().clone();
    let interviewer = items.iter().find(|r| r["source"] == "interviewer").unwrap().clone();
    let camera = items.iter().find(|r| r["kind"] == "video").unwrap().clone();
    assert_eq!((camera["source"].as_str(), camera["media_type"].as_str()), (Some("candidate"), Some("video/webm")));
    assert_eq!(candidate["media_type"], "audio/ogg");
    assert!(candidate["duration_ms"].as_i64().unwrap() >= 3_000, "{candidate}");
    assert!(interviewer["duration_ms"].as_i64().unwrap() >= 1_000, "the greeting was recorded: {interviewer}");

    // On disk: ciphertext only.
    let files = files_under(&app.state.config.data_dir.join("recordings"));
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        assert!(!has_media_magic(&std::fs::read(file).unwrap()), "{} is not sealed", file.display());
    }

    // Whole, it is Ogg Opus that decodes to the length the row gives.
    let url = candidate["url"].as_str().unwrap();
    let whole = fetch(&app, url, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let bytes = whole.bytes().await.unwrap().to_vec();
    assert_eq!(bytes.len() as i64, candidate["bytes"].as_i64().unwrap());
    assert_eq!(&bytes[..4], b"OggS");
    let decoded_ms = decoded_ms(&bytes);
    let listed = candidate["duration_ms"].as_i64().unwrap();
    assert!((decoded_ms - listed).abs() <= 40, "decoded {decoded_ms} ms, listed {listed} ms");

    // The camera: WebM whose VP8 frames decode at the size sent, with the candidate's voice beside them.
    let webm = fetch(&app, camera["url"].as_str().unwrap(), None).await.bytes().await.unwrap().to_vec();
    let (frames, voice_packets) = decoded_camera(&webm, false);
    assert!(frames >= 15 && voice_packets >= 100, "{frames} frames and {voice_packets} voice packets");

    // A range, with the ticket instead of a bearer header.
    let part = fetch(&app, url, Some("bytes=100-4099")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], format!("bytes 100-4099/{}", bytes.len()));
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[100..4100]);
    let beyond = fetch(&app, url, Some(&format!("bytes={}-", bytes.len()))).await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Without a credential, with a ticket for another interview, or as another user: refused.
    let bare = format!("/api/v1/interviews/{id}/recording");
    assert_eq!(fetch(&app, &bare, None).await.status(), StatusCode::UNAUTHORIZED);
    let forged = url.replace("ticket=", "ticket=x");
    assert_eq!(fetch(&app, &forged, None).await.status(), StatusCode::UNAUTHORIZED);
    let (other, _) = app.signed_in_user("eve@example.com").await;
    assert_eq!(app.get(&bare, Some(&other)).await.status, StatusCode::NOT_FOUND);
    let voice = app.get(&format!("{bare}?source=interviewer"), Some(&token)).await;
    assert_eq!(voice.status, StatusCode::OK);

    // A flipped byte on disk is detected, not served.
    let row = app
        .state
        .store
        .recordings(id.parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.media_type == "audio/ogg" && r.source == "candidate")
        .unwrap();
    let path = app.state.config.data_dir.join(&row.path);
    let mut sealed = std::fs::read(&path).unwrap();
    sealed[40] ^= 0x01;
    std::fs::write(&path, sealed).unwrap();
    assert_eq!(fetch(&app, url, None).await.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// Milliseconds of audio in an Ogg Opus file: its packets decoded.
fn decoded_ms(ogg_bytes: &[u8]) -> i64 {
    let mut reader = ogg::reading::PacketReader::new(std::io::Cursor::new(ogg_bytes.to_vec()));
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0i16; 5760];
    let mut samples = 0usize;
    let mut index = 0;
    while let Some(packet) = reader.read_packet().expect("valid Ogg pages") {
        if index >= 2 {
            samples += decoder.decode(&packet.data, &mut pcm, false).expect("valid Opus");
        }
        index += 1;
    }
    (samples / 48) as i64
}

/// The three recordings of a session once all are finished.
async fn finished_recordings(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let finished = |items: &[Value]| items.len() == 3 && items.iter().all(|r| r["finished"] == true);
    let mut items = Vec::new();
    for _ in 0..300 {
        items = recordings(app, token, id).await;
        if finished(&items) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(finished(&items), "{items:?}");
    items
}

#[tokio::test]
async fn an_h264_camera_is_recorded_as_received_in_matroska() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let id = interview(&app, &token, true).await;
    session(&app, &token, &id, CameraCodec::H264).await;
    let items = finished_recordings(&app, &token, &id).await;
    let camera = items.iter().find(|r| r["kind"] == "video").unwrap();
    assert_eq!(camera["media_type"], "video/x-matroska");
    let mkv = fetch(&app, camera["url"].as_str().unwrap(), None).await.bytes().await.unwrap().to_vec();
    let (frames, voice_packets) = decoded_camera(&mkv, true);
    assert!(frames >= 15 && voice_packets >= 100, "{frames} frames and {voice_packets} voice packets");
}

/// `(camera frames decoded at 320x240, Opus packets)` in a WebM (VP8) or Matroska (H.264, its configuration in
/// the track) file; every frame must decode.
fn decoded_camera(bytes: &[u8], h264: bool) -> (usize, usize) {
    use candor_pipelines::video::{VideoCodec, VideoDecoder};
    use webm_iterable::WebmIterator;
    use webm_iterable::matroska_spec::{MatroskaSpec, SimpleBlock};
    let codec = if h264 { VideoCodec::H264 } else { VideoCodec::Vp8 };
    let mut decoder = VideoDecoder::new(codec, 640, 0).unwrap();
    let (mut frames, mut voice, mut codec_id) = (0, 0, String::new());
    for tag in WebmIterator::new(std::io::Cursor::new(bytes.to_vec()), &[]) {
        match tag.expect("well-formed Matroska") {
            MatroskaSpec::CodecID(id) if id.starts_with("V_") => codec_id = id,
            MatroskaSpec::SimpleBlock(data) => {
                let block = SimpleBlock::try_from(&data).unwrap();
                if block.track == 1 {
                    // Matroska keeps H.264 length-prefixed; the decoder reads Annex B.
                    let mut payload = block.raw_frame_data().to_vec();
                    if h264 {
                        let mut annex_b = Vec::new();
                        let mut rest = &payload[..];
                        while rest.len() >= 4 {
                            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                            annex_b.extend_from_slice(&[0, 0, 0, 1]);
                            annex_b.extend_from_slice(&rest[4..4 + len]);
                            rest = &rest[4 + len..];
                        }
                        payload = annex_b;
                    }
                    let frame = decoder.decode(&payload, frames as u64 * 67).expect("a decodable camera frame");
                    if let Some(frame) = frame {
                        assert_eq!((frame.source_width, frame.source_height), (320, 240));
                        frames += 1;
                    }
                } else {
                    voice += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(codec_id, if h264 { "V_MPEG4/ISO/AVC" } else { "V_VP8" });
    (frames, voice)
}
