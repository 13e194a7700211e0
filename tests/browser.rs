//! A real browser as the client: headless Chromium with fake camera and microphone (an espeak-ng WAV and a Y4M
//! test pattern) opens the real interview room page served by the real server. The tests read what the page saw
//! through the DevTools protocol (events in the page, inbound audio packets), and drive it as a user would
//! (typing answers), through a whole interview to the report page.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// Kills the browser however the test ends.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(command: &mut Command) {
    let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("the tool is installed");
    assert!(status.success(), "{command:?} failed");
}

/// Speech as 48 kHz mono 16-bit WAV and a 4:2:0 Y4M, the formats Chromium's fake devices read. The camera shows
/// the test portrait (a smiling face, 640x480) when it is fetched, else a 320x240 test pattern. The speech starts
/// after `silence_s` seconds.
fn media(dir: &Path, portrait: Option<&Path>, silence_s: u32) -> (PathBuf, PathBuf) {
    let raw = dir.join("raw.wav");
    let wav = dir.join("speech.wav");
    let y4m = dir.join("camera.y4m");
    run(Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&raw)
        .arg("I led the migration of our billing system to a new database, and we cut costs by a third."));
    run(Command::new("sox").arg(&raw).args(["-r", "48000", "-c", "1", "-b", "16"]).arg(&wav).args(["pad", &silence_s.to_string(), "0"]));
    match portrait {
        Some(png) => run(Command::new("ffmpeg")
            .args(["-y", "-loop", "1", "-framerate", "15", "-i"])
            .arg(png)
            .args(["-vf", "crop=400:400:56:0,scale=480:480,pad=640:480:80:0", "-t", "1", "-pix_fmt", "yuv420p"])
            .arg(&y4m)),
        None => run(Command::new("ffmpeg")
            .args(["-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", "4", "-pix_fmt", "yuv420p"])
            .arg(&y4m)),
    }
    (wav, y4m)
}

async fn devtools_page(profile: &Path) -> String {
    let port_file = profile.join("DevToolsActivePort");
    let mut port = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let Some(line) = text.lines().next()
        {
            port = line.trim().parse::<u16>().ok();
            if port.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = port.expect("Chromium opened its DevTools port");
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await
            && let Ok(targets) = response.json::<Vec<Value>>().await
            && let Some(page) = targets.iter().find(|t| t["type"] == "page")
        {
            return page["webSocketDebuggerUrl"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no page target in Chromium");
}

/// Chromium on `url` with the fake devices; `%noloop` plays the speech once instead of over and over.
fn chromium(url: &str, profile: &Path, wav: &Path, y4m: &Path, loop_audio: bool) -> Browser {
    Browser(
        Command::new(CHROMIUM)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--allow-loopback-in-peer-connection",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--use-file-for-fake-audio-capture={}{}", wav.display(), if loop_audio { "" } else { "%noloop" }))
            .arg(format!("--use-file-for-fake-video-capture={}", y4m.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Chromium is installed by the test command"),
    )
}

type DevTools = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Calls a DevTools method and returns its `result` (`Null` when the connection ends first).
async fn call(devtools: &mut DevTools, id: u64, method: &str, params: Value) -> Value {
    let call = json!({"id": id, "method": method, "params": params});
    devtools.send(Message::Text(call.to_string().into())).await.unwrap();
    while let Some(Ok(Message::Text(text))) = devtools.next().await {
        let reply: Value = serde_json::from_str(&text).unwrap();
        if reply["id"] == id {
            return reply["result"].clone();
        }
    }
    Value::Null
}

/// Evaluates `expression` (a promise of JSON text) in the page; `Null` when it fails or is not JSON.
async fn evaluate(devtools: &mut DevTools, id: u64, expression: &str) -> Value {
    let result = call(devtools, id, "Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true})).await;
    result["result"]["value"].as_str().and_then(|v| serde_json::from_str(v).ok()).unwrap_or(Value::Null)
}

/// Where the test run saves what the pages looked like (not committed): `CANDOR_SCREENSHOT_DIR`, or a folder in
/// the build's temporary directory.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("CANDOR_SCREENSHOT_DIR").map_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves the whole page as `{name}-{width}x{height}.png` at a laptop's and a phone's size.
async fn screenshots(devtools: &mut DevTools, id: u64, name: &str) {
    use base64::Engine;
    for (i, (width, height, mobile)) in [(1280, 800, false), (390, 844, true)].into_iter().enumerate() {
        let id = id + 10 * i as u64;
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        call(devtools, id, "Emulation.setDeviceMetricsOverride", metrics).await;
        let shot = call(devtools, id + 1, "Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("a screenshot")).unwrap();
        std::fs::write(screenshot_dir().join(format!("{name}-{width}x{height}.png")), png).unwrap();
    }
    call(devtools, id + 100, "Emulation.clearDeviceMetricsOverride", json!({})).await;
}

async fn page_report(devtools: &mut DevTools, id: u64) -> Value {
    evaluate(devtools, id, "candorReport().then(r => JSON.stringify(r))").await
}

/// Runs axe-core (`models/fetch.py fetch test-axe`) on the page as it is now: no serious or critical violation.
async fn accessible(devtools: &mut DevTools, id: u64, page: &str, models: &Path) {
    let Ok(axe) = std::fs::read_to_string(models.join("axe.min.js")) else {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "run models/fetch.py fetch test-axe");
        eprintln!("skipped: axe-core is not fetched");
        return;
    };
    call(devtools, id, "Runtime.evaluate", json!({"expression": axe})).await;
    let check = "axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations \
                 .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                 .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))";
    let violations = evaluate(devtools, id + 1, check).await;
    assert_eq!(violations, json!([]), "accessibility of the {page} page");
}

/// Chromium on `url` with silent fake devices, for pages that need no speech: the browser, its DevTools socket,
/// and the folder they use.
async fn open_page(url: &str) -> (tempfile::TempDir, Browser, DevTools) {
    let dir = tempfile::tempdir().unwrap();
    let (wav, y4m) = media(dir.path(), None, 0);
    let profile = dir.path().join("profile");
    let browser = chromium(url, &profile, &wav, &y4m, true);
    let (devtools, _) = tokio_tungstenite::connect_async(devtools_page(&profile).await).await.unwrap();
    (dir, browser, devtools)
}

/// The text of the element `selector` picks ("" when none), as `evaluate` wants it.
fn text_of(selector: &str) -> String {
    format!("Promise.resolve(JSON.stringify(document.querySelector('{selector}')?.innerText ?? ''))")
}

/// Waits (generously) until the element `selector` picks shows `wanted`; its whole text.
async fn wait_for_text(devtools: &mut DevTools, id: u64, selector: &str, wanted: &str) -> String {
    let mut seen = Value::Null;
    for i in 0..150 {
        seen = evaluate(devtools, id + i, &text_of(selector)).await;
        if let Some(text) = seen.as_str().filter(|t| t.contains(wanted)) {
            return text.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{selector} never showed {wanted:?}: {seen}");
}

/// Runs `statements` in the page.
async fn run_js(devtools: &mut DevTools, id: u64, statements: &str) {
    evaluate(devtools, id, &format!("(() => {{ {statements}; return Promise.resolve('true'); }})()")).await;
}

/// Waits until the page has loaded and its scripts have run (their listeners are attached): interacting
/// earlier, on a busy machine, clicks buttons that do nothing yet.
async fn loaded(devtools: &mut DevTools, id: u64) {
    for i in 0..300 {
        if evaluate(devtools, id + i, "Promise.resolve(JSON.stringify(document.readyState))").await == json!("complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never finished loading");
}

/// Presses a key in the page as a keyboard would.
async fn press(devtools: &mut DevTools, id: u64, key: &str, code: &str, key_code: u32, shift: bool) {
    for kind in ["keyDown", "keyUp"] {
        let text = if kind == "keyDown" && key.chars().count() == 1 { key } else { "" };
        let event = json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code, "text": text, "modifiers": if shift { 8 } else { 0 }});
        call(devtools, id + u64::from(kind == "keyUp"), "Input.dispatchKeyEvent", event).await;
    }
}

/// The room works from the keyboard alone: Tab reaches every control in order, and the shortcuts act.
async fn keyboard_only(devtools: &mut DevTools) {
    let ids = "Promise.resolve(JSON.stringify(document.activeElement?.id ?? null))";
    evaluate(devtools, 20_000, "Promise.resolve(JSON.stringify(document.activeElement.blur()))").await;
    let mut reached = Vec::new();
    for i in 0..30u64 {
        press(devtools, 20_100 + 2 * i, "Tab", "Tab", 9, false).await;
        if let Some(id) = evaluate(devtools, 20_200 + i, ids).await.as_str() {
            reached.push(id.to_string());
        }
    }
    let order: Vec<&str> = ["repeat", "skip", "pause", "captions-toggle", "end", "typed-answer", "send-typed"]
        .into_iter()
        .filter(|id| reached.iter().any(|r| r == id))
        .collect();
    assert_eq!(order, ["repeat", "skip", "pause", "captions-toggle", "end", "typed-answer", "send-typed"], "Tab reached {reached:?}");
    let positions: Vec<usize> = order.iter().map(|id| reached.iter().position(|r| r == id).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in reading order: {reached:?}");
    // C hides the captions and shows them again; the shortcut is not taken while typing an answer.
    let hidden = "Promise.resolve(JSON.stringify(document.getElementById('captions').hidden))";
    evaluate(devtools, 20_300, "Promise.resolve(JSON.stringify(document.activeElement.blur()))").await;
    press(devtools, 20_310, "c", "KeyC", 67, false).await;
    assert_eq!(evaluate(devtools, 20_320, hidden).await, json!(true), "C turns captions off");
    press(devtools, 20_330, "c", "KeyC", 67, false).await;
    assert_eq!(evaluate(devtools, 20_340, hidden).await, json!(false), "C turns captions on again");
    press(devtools, 20_350, "/", "Slash", 191, false).await;
    assert_eq!(evaluate(devtools, 20_360, ids).await, json!("typed-answer"), "/ goes to the answer box");
    press(devtools, 20_370, "c", "KeyC", 67, false).await;
    assert_eq!(evaluate(devtools, 20_380, hidden).await, json!(false), "typing C into the answer is not a shortcut");
    evaluate(devtools, 20_390, "Promise.resolve(JSON.stringify(document.getElementById('typed-answer').value = ''))").await;
}

#[tokio::test]
async fn the_room_page_in_chromium_connects_receives_events_and_hears_the_interviewer() {
    let app = helpers::spawn_app_with(helpers::Backend::Sqlite, helpers::with_models).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    // With the vision models and the portrait, the page must also see the face it sends.
    let portrait = app.state.config.models_dir.join("astronaut.png");
    let vision = app.get("/readyz", None).await.body["engines"]["vision"] == "ok" && portrait.exists();
    assert!(vision || std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "vision models or portrait missing");

    let dir = tempfile::tempdir().unwrap();
    // Four seconds of silence first: the interviewer's greeting plays before the candidate talks (and cuts in).
    let (wav, y4m) = media(dir.path(), vision.then_some(portrait.as_path()), 4);
    let profile = dir.path().join("profile");
    let url = app.url(&format!("/room.html?interview={interview}&autostart=1#access_token={token}"));
    let _browser = chromium(&url, &profile, &wav, &y4m, true);

    let (mut devtools, _) = tokio_tungstenite::connect_async(devtools_page(&profile).await).await.unwrap();
    let mut report = Value::Null;
    for id in 1..=120 {
        report = page_report(&mut devtools, id).await;
        let types: Vec<&str> = report["events"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["type"].as_str()).collect())
            .unwrap_or_default();
        let heard = report["received"]["audio"].as_u64().unwrap_or(0);
        let events = report["events"].as_array().cloned().unwrap_or_default();
        let face = events.iter().find(|e| e["type"] == "vision.metrics" && e["face"] == true);
        // The fake microphone's speech (after its silent start) is heard by the server.
        let spoke = events.iter().any(|e| e["type"] == "speech.metrics" && e["volume_dbfs"].as_f64() > Some(-60.0));
        let greeted = types.contains(&"interviewer.speech");
        // The avatar's mouth moves with the voice: viseme frames applied while it plays.
        let lips_moved = report["avatar"]["applied"].as_u64().unwrap_or(0) >= 4;
        // The device check's level meter moved with the speech (it samples 21 ms every 100 ms, so on a busy
        // machine it may take a while to catch a loud one).
        let metered = report["mic_peak"].as_f64() > Some(0.02);
        if types.contains(&"session.state") && spoke && greeted && heard > 0 && lips_moved && metered && (face.is_some() || !vision) {
            assert!(types.contains(&"avatar.visemes"), "the mouth follows the voice's visemes: {types:?}");
            keyboard_only(&mut devtools).await;
            accessible(&mut devtools, 30_000, "room", &app.state.config.models_dir).await;
            screenshots(&mut devtools, 10_000, "room").await;
            assert!(report["events"].as_array().unwrap().iter().all(|e| e["v"] == 1));
            let caption = report["captions"]["interviewer"].as_str().unwrap_or_default();
            assert!(caption.contains("welcome to your practice interview"), "the page shows what was said: {caption}");
            if let Some(face) = face {
                let expression = face["expression"].as_object().unwrap();
                let happy = expression["happy"].as_f64().unwrap();
                assert!(expression.values().all(|p| p.as_f64().unwrap() <= happy), "the smile is seen: {face}");
            }
            return rejoins_after_a_drop(&mut devtools, &app).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the page never saw events and audio, or its level meter never moved: {report}");
}

/// The network drops both the signaling socket and the peer: the page rejoins on its own, on a fresh
/// connection, and the interviewer welcomes the candidate back at the same question.
async fn rejoins_after_a_drop(devtools: &mut DevTools, app: &helpers::TestApp) {
    evaluate(devtools, 40_000, "session.pc.close(); session.ws.close(); 'dropped'").await;
    let mut report = Value::Null;
    for id in 40_001..40_121 {
        report = page_report(devtools, id).await;
        let events = report["events"].as_array().cloned().unwrap_or_default();
        let welcomed = events.iter().any(|e| {
            e["type"] == "interviewer.speech" && e["text"].as_str().is_some_and(|t| t.starts_with("Welcome back"))
        });
        if welcomed && report["received"]["audio"].as_u64() > Some(0) {
            assert_eq!(app.state.live.live_sessions(), 1, "the same session, rejoined");
            let rejoined = app.state.metrics.render();
            assert!(rejoined.contains("candor_session_connections_total{event=\"rejoined\"} 1"), "{rejoined}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the page did not rejoin after the drop: {report}");
}

/// A whole interview in the browser: the first answer spoken (the fake microphone's WAV, after the greeting and
/// the first question), the rest typed into the room page's answer box, the closing answered, until the page
/// links the report; then the report page shows the scores and the candidate's own words.
#[tokio::test]
async fn a_whole_interview_in_chromium_from_a_spoken_answer_to_the_report_page() {
    let app = helpers::spawn_app_with(helpers::Backend::Sqlite, helpers::with_models).await;
    if app.get("/readyz", None).await.body["engines"]["stt"] != "ok" {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "speech models missing");
        return;
    }
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let created = app
        .post("/api/v1/interviews", Some(&token), json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid", "question_count": 2, "recording_consent": true}))
        .await;
    let interview = created.body["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    // The greeting and the first question take about half a minute to say; the answer comes after them, once.
    let (wav, y4m) = media(dir.path(), None, 40);
    let profile = dir.path().join("profile");
    let url = app.url(&format!("/room.html?interview={interview}&autostart=1#access_token={token}"));
    let _browser = chromium(&url, &profile, &wav, &y4m, false);
    let (mut devtools, _) = tokio_tungstenite::connect_async(devtools_page(&profile).await).await.unwrap();

    let type_answer = |text: &str| {
        format!(
            "(() => {{ document.getElementById('typed-answer').value = {}; document.getElementById('send-typed').click(); return Promise.resolve('true'); }})()",
            serde_json::to_string(text).unwrap()
        )
    };
    let strong = "In my last role our release process kept failing and my task was to fix it before a launch. I \
                  analysed the failures, wrote a plan, and I rebuilt the pipeline myself with automated checks. As a \
                  result releases went from weekly to daily and failures dropped by 80 percent within a month.";
    let mut typed_for = std::collections::HashSet::new();
    let mut events = Vec::new();
    // Generous: the spoken answer waits out the greeting; speech is decoded on a busy machine.
    for id in 1..=600u64 {
        let report = page_report(&mut devtools, id).await;
        events = report["events"].as_array().cloned().unwrap_or_default();
        if events.iter().any(|e| e["type"] == "report.ready") {
            break;
        }
        // Nothing is typed before the spoken answer's final: the first final is the spoken one.
        let spoken = events.iter().any(|e| e["type"] == "transcript.final");
        let closing = events.iter().any(|e| e["type"] == "session.state" && e["state"] == "wrapping_up");
        let last_question = events.iter().rev().find(|e| e["type"] == "interviewer.question").map(|e| e["question_id"].to_string());
        // Everything after the spoken answer is typed, as soon as it is asked.
        if spoken {
            let key = if closing { "closing".to_string() } else { last_question.unwrap_or_default() };
            if typed_for.insert(key.clone()) {
                let text = if closing { "No, thank you, that was helpful." } else { strong };
                evaluate(&mut devtools, 100_000 + id, &type_answer(text)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready = events.iter().find(|e| e["type"] == "report.ready").unwrap_or_else(|| panic!("no report.ready: {events:?}"));
    let spoken = events.iter().find(|e| e["type"] == "transcript.final").expect("the spoken answer was transcribed");
    assert!(spoken["question_id"].is_string(), "the spoken answer answers the first question: {spoken}");
    // Its longest word, as heard (tiny.en may hear "billing" as "building"), must reach the report.
    let heard = spoken["text"].as_str().unwrap().to_lowercase();
    let word = heard.split(|c: char| !c.is_alphanumeric()).max_by_key(|w| w.len()).unwrap().to_string();
    assert!(word.len() >= 6, "a real word was heard: {heard:?}");
    let asked: Vec<&Value> = events.iter().filter(|e| e["type"] == "interviewer.question" && e["follow_up"] == false).collect();
    assert_eq!(asked.len(), 2, "two planned questions");
    assert!(events.iter().filter(|e| e["type"] == "answer.scored").count() >= 2);
    let link = evaluate(&mut devtools, 200_000, "Promise.resolve(JSON.stringify(document.querySelector('#report-link a')?.getAttribute('href')))").await;
    assert_eq!(link, json!(format!("/report.html?interview={interview}")));
    assert_eq!(ready["url"], format!("/api/v1/interviews/{interview}/report"));
    let badge = evaluate(&mut devtools, 200_010, "Promise.resolve(JSON.stringify(document.getElementById('recording').textContent))").await;
    assert_eq!(badge, json!("● Recording"), "the room says the interview is recorded");

    // The report page, as the link opens it, shows the scores and the spoken answer's words.
    let navigate = json!({"id": 300_000, "method": "Page.navigate", "params": {"url": app.url(&format!("/report.html?interview={interview}"))}});
    devtools.send(Message::Text(navigate.to_string().into())).await.unwrap();
    let mut shown = Value::Null;
    for id in 300_001..300_100u64 {
        shown = evaluate(&mut devtools, id, "Promise.resolve(JSON.stringify({overall: document.querySelector('.overall strong')?.textContent, text: document.body.innerText}))").await;
        if shown["overall"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(shown["overall"].as_str().is_some_and(|o| o.ends_with("/ 100")), "{shown}");
    let text = shown["text"].as_str().unwrap().to_lowercase();
    for part in [word.as_str(), "learning path", "delivery (not part of the content scores)", "releases went from weekly to daily"] {
        assert!(text.contains(part), "the report page shows {part:?}: {text}");
    }
    // The charts the server drew: the scores, and the delivery of the spoken answer; each with its label.
    let drawn = "Promise.resolve(JSON.stringify({charts: [...document.querySelectorAll('figure.chart [role=img]')].map(f => f.getAttribute('aria-label')), \
                 svgs: document.querySelectorAll('figure.chart svg').length, marks: [...document.querySelectorAll('mark')].map(m => m.textContent)}))";
    let drawn = evaluate(&mut devtools, 400_000, drawn).await;
    let charts: Vec<&str> = drawn["charts"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(charts.iter().any(|c| c.starts_with("Content scores")) && charts.iter().any(|c| c.starts_with("Pace")), "{drawn}");
    assert_eq!(drawn["svgs"].as_u64(), Some(charts.len() as u64), "{drawn}");
    assert!(drawn["marks"].as_array().is_some_and(|m| !m.is_empty()), "the evidence the ratings cite is highlighted: {drawn}");
    // The recorded answer replays in the page: Chromium reads the decrypted Ogg Opus by range requests (its
    // length from the end of the file), and "Play the answer" seeks to where the spoken answer starts.
    let loaded = "new Promise((done) => { const a = document.getElementById('replay-candidate');                   const report = () => done(JSON.stringify(a ? {duration: a.duration, error: a.error?.code ?? null, plays: document.querySelectorAll('button.play').length} : null));                   if (!a || a.readyState >= 1) report(); else { a.addEventListener('loadedmetadata', report); a.addEventListener('error', report); setTimeout(report, 30000); } })";
    let loaded = evaluate(&mut devtools, 400_010, loaded).await;
    assert!(loaded["duration"].as_f64().is_some_and(|d| d.is_finite() && d > 5.0) && loaded["error"].is_null(), "{loaded}");
    assert!(loaded["plays"].as_u64().is_some_and(|n| n >= 1), "{loaded}");
    // The camera replays too: Chromium reads the WebM (VP8 as the browser sent it) at the camera's size.
    let camera = "new Promise((done) => { const v = document.getElementById('replay-camera'); \
                  const report = () => done(JSON.stringify(v ? {width: v.videoWidth, error: v.error?.code ?? null} : null)); \
                  if (!v || v.readyState >= 1) report(); else { v.addEventListener('loadedmetadata', report); v.addEventListener('error', report); setTimeout(report, 30000); } })";
    let camera = evaluate(&mut devtools, 400_015, camera).await;
    assert!(camera["width"].as_u64().is_some_and(|w| w > 0) && camera["error"].is_null(), "{camera}");
    let seek = "(() => { const b = [...document.querySelectorAll('h3 button.play')][0]; b?.click();                 const a = document.getElementById('replay-candidate'); return Promise.resolve(JSON.stringify({at: a.currentTime, button: Boolean(b)})); })()";
    let seeked = evaluate(&mut devtools, 400_020, seek).await;
    assert!(seeked["button"] == true && seeked["at"].as_f64().is_some_and(|t| t > 1.0), "the spoken answer starts after the greeting: {seeked}");
    // In step with the transcript: the answer playing is marked.
    let mut marked = Value::Null;
    for id in 400_021..400_121u64 {
        marked = evaluate(&mut devtools, id, "Promise.resolve(JSON.stringify(document.querySelector('article.question.playing')?.dataset.question ?? null))").await;
        if marked.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(marked.is_string(), "the playing answer is marked in the transcript");
    // The learning path is a checklist: a tick in the page is stored (the spoken answer is short, so there are
    // steps to take).
    let tick = "(() => { const box = document.querySelector('.step input[type=checkbox]'); box?.click(); return Promise.resolve(JSON.stringify(box?.id ?? null)); })()";
    let ticked = evaluate(&mut devtools, 400_050, tick).await;
    if ticked.is_string() {
        let report_path = format!("/api/v1/interviews/{interview}/report");
        let mut stored = false;
        for _ in 0..100 {
            stored = app.get(&report_path, Some(&token)).await.body["learning_path"][0]["done"] == true;
            if stored {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = evaluate(&mut devtools, 400_060, "Promise.resolve(JSON.stringify(document.querySelector('.step [role=status]')?.textContent))").await;
        assert!(stored, "the tick {ticked} was stored; the page says {status}");
    }
    accessible(&mut devtools, 400_080, "report", &app.state.config.models_dir).await;
    screenshots(&mut devtools, 400_100, "report").await;

    // Printed to PDF, the report is a few clean pages: pdftoppm reads them.
    use base64::Engine;
    let pdf = call(&mut devtools, 400_200, "Page.printToPDF", json!({"printBackground": true})).await;
    let pdf = base64::engine::general_purpose::STANDARD.decode(pdf["data"].as_str().expect("a PDF")).unwrap();
    let printed = screenshot_dir().join("report.pdf");
    std::fs::write(&printed, pdf).unwrap();
    let pages = screenshot_dir().join("report-print");
    for old in std::fs::read_dir(screenshot_dir()).unwrap().flatten().filter(|f| f.file_name().to_string_lossy().starts_with("report-print")) {
        std::fs::remove_file(old.path()).unwrap();
    }
    run(Command::new("pdftoppm").args(["-png", "-r", "50"]).arg(&printed).arg(&pages));
    let count = std::fs::read_dir(screenshot_dir()).unwrap().filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().starts_with("report-print")).count();
    assert!((1..=12).contains(&count), "{count} printed pages");
}

/// A newcomer as a person would: signs up on the start page, sees the round plan appear as they type a role, the
/// history and its progress chart (two earlier reports are stored for them), creates the interview with a coach
/// invitation, checks camera, microphone and speakers in the room before joining; then downloads their data and
/// deletes the account.
#[tokio::test]
async fn sign_up_set_up_and_device_check_in_chromium() {
    let app = helpers::spawn_app_with(helpers::Backend::Sqlite, |_| {}).await;
    let (_dir, _browser, mut devtools) = open_page(&app.url("/")).await;
    let models = helpers::models_dir();
    loaded(&mut devtools, 500).await;
    wait_for_text(&mut devtools, 1_000, "#register", "Create an account").await;
    accessible(&mut devtools, 2_000, "sign-in", &models).await;
    screenshots(&mut devtools, 3_000, "start-signed-out").await;

    // Sign up.
    run_js(&mut devtools, 4_000, "const v = (id, x) => document.getElementById(id).value = x; v('reg-name', 'Ada Lovelace'); \
        v('reg-email', 'ada@example.com'); v('reg-password', 'a long enough password'); \
        document.querySelector('#register button').click()").await;
    wait_for_text(&mut devtools, 5_000, "#history", "No interviews yet").await;
    let token = evaluate(&mut devtools, 6_000, "Promise.resolve(JSON.stringify(sessionStorage.getItem('candor.access')))").await;
    let token = token.as_str().expect("signed in").to_string();
    for overall in [48, 63] {
        app.interview_with_report(&token, &helpers::sample_report(overall)).await;
    }
    call(&mut devtools, 7_000, "Page.reload", json!({})).await;
    loaded(&mut devtools, 7_100).await;
    wait_for_text(&mut devtools, 8_000, "#history", "63 / 100").await;
    let trend = "Promise.resolve(JSON.stringify(document.querySelectorAll('#trend figure.chart svg').length))";
    for i in 0..100 {
        if evaluate(&mut devtools, 9_000 + i, trend).await == json!(1) {
            break;
        }
        assert!(i < 99, "the progress chart never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Set up: the plan follows the role; the interview is created with a coach invitation.
    run_js(&mut devtools, 10_000, "const role = document.getElementById('role'); role.value = 'Data analyst'; role.dispatchEvent(new Event('input'))").await;
    let plan = wait_for_text(&mut devtools, 11_000, "#plan", "over these rounds").await;
    assert!(plan.contains("5 questions") && plan.contains("Behavioral"), "{plan}");
    accessible(&mut devtools, 12_000, "start", &models).await;
    screenshots(&mut devtools, 13_000, "start").await;
    run_js(&mut devtools, 14_000, "document.getElementById('coach-email').value = 'grace@example.com'; \
        document.querySelector('#new-interview button[type=submit]').click()").await;
    wait_for_text(&mut devtools, 15_000, "#share-result", "Invitation ready for grace@example.com").await;

    // The device check before joining: the camera and microphone open, the level moves, the test tone plays.
    run_js(&mut devtools, 16_000, "document.getElementById('check').click()").await;
    wait_for_text(&mut devtools, 17_000, "#check-result", "Camera and microphone are on").await;
    let level = "Promise.resolve(JSON.stringify(document.getElementById('mic-level').value))";
    let mut moved = false;
    for i in 0..150 {
        moved = evaluate(&mut devtools, 18_000 + i, level).await.as_f64() > Some(0.02);
        if moved {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "the microphone level meter moves with the fake microphone's speech");
    run_js(&mut devtools, 19_000, "document.getElementById('test-sound').click()").await;
    wait_for_text(&mut devtools, 20_000, "#check-result", "Did you hear a tone?").await;
    let status = evaluate(&mut devtools, 21_000, &text_of("#status")).await;
    assert_eq!(status, json!("Not connected"), "nothing joins before Start");
    accessible(&mut devtools, 22_000, "room before joining", &models).await;
    screenshots(&mut devtools, 23_000, "room-device-check").await;

    // The candidate's data: downloaded, then the account deleted from the start page.
    call(&mut devtools, 24_000, "Page.navigate", json!({"url": app.url("/index.html")})).await;
    loaded(&mut devtools, 24_100).await;
    wait_for_text(&mut devtools, 25_000, "#account-section", "Download my data").await;
    run_js(&mut devtools, 26_000, "document.getElementById('export').click()").await;
    let link = "Promise.resolve(JSON.stringify(document.getElementById('export-link').hidden))";
    for i in 0..100 {
        if evaluate(&mut devtools, 27_000 + i, link).await == json!(false) {
            break;
        }
        assert!(i < 99, "the export was never offered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run_js(&mut devtools, 28_000, "document.getElementById('erase-password').value = 'a long enough password'; \
        document.querySelector('#erase button').click()").await;
    wait_for_text(&mut devtools, 29_000, "#auth-title", "were deleted").await;
    assert_eq!(app.login("ada@example.com").await.status, reqwest::StatusCode::UNAUTHORIZED, "the account is gone");
}

/// A coach invited by email: the link opens the coach page, the newcomer signs up there as a coach and sees the
/// shared interview; the live view says plainly that the interview has not started.
#[tokio::test]
async fn an_invited_coach_signs_up_from_the_link_and_sees_the_shared_interview() {
    let app = helpers::spawn_app_with(helpers::Backend::Sqlite, |_| {}).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let invited = app.post(&format!("/api/v1/interviews/{interview}/invitations"), Some(&token), json!({"email": "grace@example.com"})).await;
    let link = invited.body["link"].as_str().expect("an invitation link").to_string();
    let (_dir, _browser, mut devtools) = open_page(&app.url(&link)).await;
    let models = helpers::models_dir();
    wait_for_text(&mut devtools, 1_000, "#invitation-text", "Test User invited you (grace@example.com)").await;
    accessible(&mut devtools, 2_000, "invitation", &models).await;
    screenshots(&mut devtools, 3_000, "coach-invitation").await;
    let sign_up = "(() => { document.getElementById('reg-name').value = 'Grace Coach'; \
                   document.getElementById('reg-password').value = 'a long enough password'; \
                   document.querySelector('#register button').click(); return Promise.resolve('true'); })()";
    evaluate(&mut devtools, 4_000, sign_up).await;
    wait_for_text(&mut devtools, 5_000, "main", "Test User · Backend engineer").await;
    accessible(&mut devtools, 6_000, "coach", &models).await;
    screenshots(&mut devtools, 7_000, "coach").await;

    let observe = json!({"url": app.url(&format!("/observe.html?interview={interview}"))});
    call(&mut devtools, 8_000, "Page.navigate", observe).await;
    loaded(&mut devtools, 8_100).await;
    wait_for_text(&mut devtools, 9_000, "#watch", "Watch live").await;
    evaluate(&mut devtools, 10_000, "Promise.resolve(JSON.stringify(document.getElementById('watch').click()))").await;
    wait_for_text(&mut devtools, 11_000, "#error", "not live right now").await;
    accessible(&mut devtools, 12_000, "observer", &models).await;
    screenshots(&mut devtools, 13_000, "observe").await;
}

/// A forgotten password in Chromium: from the sign-in form's link, the email's link sets a new password (the
/// token leaves the address bar at once), and the spent link then says so and offers a new one. Signed in with
/// it, the user changes the password again from the start page.
#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_emailed_link_then_changed_when_signed_in() {
    let Some(smtp) = helpers::SmtpSink::start().await else { return };
    let url = smtp.url();
    let app = helpers::spawn_app_with(helpers::Backend::Sqlite, move |c| c.smtp_url = Some(url.into())).await;
    app.register("ada@example.com").await;
    let (_dir, _browser, mut devtools) = open_page(&app.url("/")).await;
    let models = helpers::models_dir();
    wait_for_text(&mut devtools, 500, "#login", "Forgot your password?").await;
    loaded(&mut devtools, 700).await;
    run_js(&mut devtools, 1_000, "document.querySelector('a[href=\"/reset.html\"]').click()").await;
    wait_for_text(&mut devtools, 2_000, "main", "Type the email you signed up with").await;
    loaded(&mut devtools, 2_500).await;
    accessible(&mut devtools, 3_000, "password reset", &models).await;
    run_js(&mut devtools, 4_000, "document.getElementById('request-email').value = 'ada@example.com'; \
        document.querySelector('#request button').click()").await;
    wait_for_text(&mut devtools, 5_000, "#status", "If ada@example.com has an account, a link is on its way").await;
    screenshots(&mut devtools, 6_000, "reset-requested").await;

    let message = smtp.message_to("ada@example.com").await;
    let start = message.find("http").expect("a link in the email");
    let link: String = message[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    for (attempt, id) in [("first", 7_000), ("again", 12_000)] {
        call(&mut devtools, id, "Page.navigate", json!({"url": link})).await;
        loaded(&mut devtools, id + 100).await;
        wait_for_text(&mut devtools, id + 300, "#confirm", "New password").await;
        let address = evaluate(&mut devtools, id + 500, "Promise.resolve(JSON.stringify(location.href))").await;
        assert_eq!(address, json!(app.url("/reset.html")), "the token is out of the address bar");
        run_js(&mut devtools, id + 600, "document.getElementById('new-password').value = 'a brand new passphrase'; \
            document.querySelector('#confirm button').click()").await;
        if attempt == "first" {
            wait_for_text(&mut devtools, id + 700, "#status", "Your password is changed").await;
            accessible(&mut devtools, id + 900, "password changed", &models).await;
        } else {
            wait_for_text(&mut devtools, id + 700, "#reset-error", "unknown, used or expired").await;
            wait_for_text(&mut devtools, id + 900, "#status", "Ask for a new link").await;
        }
    }

    // Signed in with it, the password is changed again from the start page.
    call(&mut devtools, 17_000, "Page.navigate", json!({"url": app.url("/")})).await;
    loaded(&mut devtools, 17_100).await;
    run_js(&mut devtools, 17_500, "document.getElementById('login-email').value = 'ada@example.com'; \
        document.getElementById('login-password').value = 'a brand new passphrase'; document.querySelector('#login button').click()").await;
    wait_for_text(&mut devtools, 18_000, "#history", "No interviews yet").await;
    run_js(&mut devtools, 18_500, "document.getElementById('current-password').value = 'a brand new passphrase'; \
        document.getElementById('changed-password').value = 'the third passphrase'; \
        document.querySelector('#change-password button').click()").await;
    wait_for_text(&mut devtools, 19_000, "#password-status", "Password changed").await;
    accessible(&mut devtools, 19_500, "start, signed in", &models).await;
    let signed_in = app.post("/api/v1/auth/login", None, json!({"email": "ada@example.com", "password": "the third passphrase"})).await;
    assert_eq!(signed_in.status, reqwest::StatusCode::OK);
}
