//! The load generator: many synthetic candidates at once against a running server. Each signs up, plans an
//! interview of its own, connects over WebRTC, speaks a recorded answer again and again (with pauses, so turns
//! end) and shows its camera. The server's own Prometheus figures, read when every session is live and again
//! at the end, say what the load cost: CPU (so sessions per core), memory, pipeline latencies, dropped work.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::latency::quantile;
use crate::media::CameraCodec;
use crate::{Client, ClientError, Options, Role};

/// After the measured window, how long the candidates may wait for the finals of their answers, and then for
/// the interviewer's replies to them (a reply that comes late is a slow reply, not a missing one).
pub(crate) const TRANSCRIPT_GRACE: Duration = Duration::from_secs(60);
const REPLY_GRACE: Duration = Duration::from_secs(15);

pub struct Load {
    pub server: SocketAddr,
    pub sessions: usize,
    /// How long all sessions run together (measured from the moment the last one connected).
    pub duration: Duration,
    /// One spoken answer (mono PCM and its rate), repeated with `pause` between repetitions.
    pub answer: (Vec<f32>, u32),
    pub pause: Duration,
    /// Codec, width, height and frame rate of each candidate's camera; `None` for audio only.
    pub camera: Option<(CameraCodec, u32, u32, u32)>,
    /// A still RGB24 picture for the cameras to show (e.g. a face), of the camera's size.
    pub picture: Option<Vec<u8>>,
    /// A bad network between every candidate and the server.
    pub impairment: Option<crate::impair::Impairment>,
}

impl Load {
    /// One answer and the pause before it.
    fn cycle_secs(&self) -> f64 {
        let (pcm, rate) = &self.answer;
        self.pause.as_secs_f64() + pcm.len() as f64 / f64::from(*rate)
    }

    /// Where in the answer cycle session `index` starts: candidates are independent, so their turns do not end
    /// in step (all in step, every final would queue behind the others'; spread evenly, none would). The first
    /// starts at once; each other at a random point of the cycle, from a fixed seed so that runs repeat.
    pub fn phase(&self, index: usize) -> Duration {
        let mut state = 0x9e37_79b9_u32 ^ (index as u32).wrapping_mul(0x85eb_ca6b);
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
        }
        let fraction = if index == 0 { 0.0 } else { f64::from(state) / f64::from(u32::MAX) };
        Duration::from_secs_f64(fraction * self.cycle_secs())
    }

    /// Answers session `index` finishes inside the measured window: each must come back as a final transcript.
    pub fn answers_in_window(&self, index: usize) -> usize {
        let speaking = self.duration.saturating_sub(self.phase(index)).as_secs_f64();
        (speaking / self.cycle_secs().max(0.001)).floor() as usize
    }

    /// How one of its candidates connects: as a browser would (trickled candidates, the WebSocket), with this
    /// load's camera, picture and network, saying `audio`.
    pub(crate) fn candidate(&self, access_token: String, interview_id: String, audio: (Vec<f32>, u32)) -> Options {
        Options {
            server: self.server,
            interview_id,
            access_token,
            role: Role::Candidate,
            audio: Some(audio),
            video: self.camera,
            picture: self.picture.clone(),
            trickle: true,
            whip: false,
            garbage_audio_packets: 0,
            impairment: self.impairment,
        }
    }

    /// Answers all sessions finish inside the measured window.
    pub fn expected_answers(&self) -> usize {
        (0..self.sessions).map(|index| self.answers_in_window(index)).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the server refused {what}: {status} {body}")]
    Refused { what: &'static str, status: u16, body: String },
    #[error("no session connected: {0}")]
    NoSession(String),
}

/// What a run did and cost. Latencies are means over the run, from the server's histograms.
#[derive(Debug, Clone)]
pub struct Report {
    pub sessions: usize,
    pub connected: usize,
    pub failures: Vec<String>,
    pub seconds: f64,
    /// Server CPU time over the run, and the same as cores busy on average.
    pub server_cpu_seconds: f64,
    pub cores_used: f64,
    pub server_memory_mb: f64,
    /// Of which the allocator's live heap (what fragmentation does not inflate).
    pub server_heap_mb: f64,
    /// Final transcripts, and `vision.metrics` seconds with a face, that the candidates received (counted once
    /// each has the finals of the answers it finished in the window, or `TRANSCRIPT_GRACE` after the window).
    pub transcripts: usize,
    pub face_seconds: usize,
    /// Frames the server analysed together per batch, on average (its sessions' frames batched together).
    pub vision_batch_frames: Option<f64>,
    pub latency_ms: BTreeMap<&'static str, f64>,
    /// From the end of a candidate's voice to the interviewer's voice, as the candidates heard it: every reply
    /// over the run, and its median and 90th percentile.
    pub voice_to_voice: Vec<Duration>,
    pub stale_video_frames: f64,
    pub dropped_audio_ms: f64,
}

impl Report {
    /// Live sessions one core of this server carries at this load.
    pub fn sessions_per_core(&self) -> Option<f64> {
        (self.cores_used > 0.0).then(|| self.connected as f64 / self.cores_used)
    }

    /// Median and 90th percentile voice-to-voice, in milliseconds.
    pub fn voice_to_voice_ms(&self) -> Option<(f64, f64)> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Some((ms(quantile(&self.voice_to_voice, 0.5)?), ms(quantile(&self.voice_to_voice, 0.9)?)))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "sessions": self.sessions,
            "connected": self.connected,
            "failures": self.failures,
            "seconds": self.seconds,
            "server_cpu_seconds": self.server_cpu_seconds,
            "cores_used": self.cores_used,
            "sessions_per_core": self.sessions_per_core(),
            "server_memory_mb": self.server_memory_mb,
            "server_heap_mb": self.server_heap_mb,
            "transcripts": self.transcripts,
            "face_seconds": self.face_seconds,
            "vision_batch_frames": self.vision_batch_frames,
            "latency_ms": self.latency_ms,
            "voice_to_voice": self.voice_to_voice_ms().map(|(median, p90)| json!({"replies": self.voice_to_voice.len(), "median_ms": median, "p90_ms": p90})),
            "stale_video_frames": self.stale_video_frames,
            "dropped_audio_ms": self.dropped_audio_ms,
        })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sessions: {} of {} connected over {:.0} s", self.connected, self.sessions, self.seconds)?;
        for failure in &self.failures {
            writeln!(f, "  failed: {failure}")?;
        }
        let per_core = self.sessions_per_core().map_or("-".into(), |v| format!("{v:.1}"));
        writeln!(f, "server CPU: {:.2} cores busy -> {per_core} sessions per core", self.cores_used)?;
        writeln!(f, "server memory: {:.0} MB resident, {:.0} MB live heap", self.server_memory_mb, self.server_heap_mb)?;
        write!(f, "received: {} final transcripts, {} seconds with a face", self.transcripts, self.face_seconds)?;
        match self.vision_batch_frames {
            Some(frames) => writeln!(f, " (frames analysed in batches of {frames:.1})")?,
            None => writeln!(f)?,
        }
        for (stage, ms) in &self.latency_ms {
            writeln!(f, "mean {stage}: {ms:.1} ms")?;
        }
        if let Some((median, p90)) = self.voice_to_voice_ms() {
            writeln!(f, "voice to voice over {} replies: median {median:.0} ms, p90 {p90:.0} ms", self.voice_to_voice.len())?;
        }
        write!(f, "stale video frames: {}, dropped audio: {} ms", self.stale_video_frames, self.dropped_audio_ms)
    }
}

/// Histograms whose mean the report gives: name, label filter, report key.
const LATENCIES: [(&str, &str, &str); 9] = [
    ("candor_speech_stage_seconds", "stage=\"turn_wait\"", "turn_wait"),
    ("candor_speech_stage_seconds", "stage=\"stt_final\"", "stt_final"),
    // What the end of the turn waited for its final (the rest was decoded ahead, in the silence).
    ("candor_speech_stage_seconds", "stage=\"stt_final_wait\"", "stt_final_wait"),
    ("candor_speech_stage_seconds", "stage=\"stt_partial\"", "stt_partial"),
    ("candor_speech_stage_seconds", "stage=\"pipeline_chunk\"", "speech_chunk"),
    ("candor_vision_frame_seconds", "", "vision_frame"),
    // The reply's stages after the turn ended: the interviewer's decision, the LLM (when on), the first audio.
    ("candor_reply_stage_seconds", "stage=\"decide\"", "reply_decide"),
    ("candor_reply_stage_seconds", "stage=\"brain\"", "reply_brain"),
    ("candor_reply_stage_seconds", "stage=\"first_audio\"", "reply_first_audio"),
];

pub async fn run(load: &Load) -> Result<Report, LoadError> {
    let http = reqwest::Client::new();
    let base = format!("http://{}", load.server);
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let mut clients = Vec::new();
    let mut failures = Vec::new();
    for index in 0..load.sessions {
        let phase = load.phase(index);
        let audio = repeated(&load.answer, load.pause, phase, load.duration + Duration::from_secs(5));
        let result = async {
            let (token, interview) = sign_up(&http, &base, &format!("load-{run}-{index}@example.com")).await?;
            Client::connect(load.candidate(token, interview, audio)).await.map_err(|e: ClientError| e.to_string())
        }
        .await;
        match result {
            Ok(client) => clients.push((index, client)),
            Err(e) => failures.push(format!("session {index}: {e}")),
        }
    }
    for (_, client) in &clients {
        if !client.wait_until(Duration::from_secs(20), Client::is_connected).await {
            failures.push("a session did not connect within 20 s".into());
        }
    }
    if clients.is_empty() {
        return Err(LoadError::NoSession(failures.join("; ")));
    }

    let before = scrape(&http, &base).await?;
    let started = Instant::now();
    tokio::time::sleep(load.duration).await;
    let after = scrape(&http, &base).await?;
    let seconds = started.elapsed().as_secs_f64();

    let delta = |name: &str, labels: &str| sum(&after, name, labels) - sum(&before, name, labels);
    let server_cpu_seconds = delta("candor_process_cpu_seconds_total", "");
    let mut latency_ms = BTreeMap::new();
    for (name, labels, key) in LATENCIES {
        let count = delta(&format!("{name}_count"), labels);
        if count > 0.0 {
            latency_ms.insert(key, delta(&format!("{name}_sum"), labels) / count * 1000.0);
        }
    }
    let mut report = Report {
        sessions: load.sessions,
        connected: clients.iter().filter(|(_, c)| c.is_connected()).count(),
        failures,
        seconds,
        server_cpu_seconds,
        cores_used: server_cpu_seconds / seconds,
        server_memory_mb: sum(&after, "candor_process_resident_memory_bytes", "") / 1e6,
        server_heap_mb: sum(&after, "candor_heap_in_use_bytes", "") / 1e6,
        transcripts: 0,
        face_seconds: 0,
        vision_batch_frames: {
            let batches = delta("candor_vision_batch_frames_count", "");
            (batches > 0.0).then(|| delta("candor_vision_batch_frames_sum", "") / batches)
        },
        latency_ms,
        voice_to_voice: Vec::new(),
        stale_video_frames: delta("candor_video_frames_stale_total", ""),
        dropped_audio_ms: delta("candor_speech_overflow_milliseconds_total", ""),
    };
    // A busy machine may finish the last answers after the window: each candidate gets a while to see them.
    for (index, client) in &clients {
        let answers = load.answers_in_window(*index).max(1);
        let transcribed = |c: &Client| c.events().iter().filter(|e| e["type"] == "transcript.final").count() >= answers;
        client.wait_until(TRANSCRIPT_GRACE, transcribed).await;
    }
    let replies_until = Instant::now() + REPLY_GRACE;
    for (index, client) in &clients {
        let answers = load.answers_in_window(*index).max(1);
        let replied = |c: &Client| c.inbound().voice_to_voice().len() >= answers;
        client.wait_until(replies_until.saturating_duration_since(Instant::now()), replied).await;
    }
    for (_, client) in clients {
        let events = client.events();
        report.transcripts += events.iter().filter(|e| e["type"] == "transcript.final").count();
        report.face_seconds += events.iter().filter(|e| e["type"] == "vision.metrics" && e["face"] == true).count();
        report.voice_to_voice.extend(client.inbound().voice_to_voice());
        client.end().await;
    }
    Ok(report)
}

/// The answer again and again, `pause` apart, for at least `total`.
pub(crate) fn repeated((pcm, rate): &(Vec<f32>, u32), pause: Duration, phase: Duration, total: Duration) -> (Vec<f32>, u32) {
    let samples = |d: Duration| (d.as_secs_f64() * f64::from(*rate)) as usize;
    let silence = vec![0.0; samples(pause)];
    let wanted = samples(phase + total);
    let mut out = vec![0.0; samples(phase)];
    while out.len() < wanted && !pcm.is_empty() {
        out.extend_from_slice(&silence);
        out.extend_from_slice(pcm);
    }
    (out, *rate)
}

/// A new account with an interview: (access token, interview id).
pub(crate) async fn sign_up(http: &reqwest::Client, base: &str, email: &str) -> Result<(String, String), String> {
    let password = "load-test-password";
    let body = json!({"email": email, "password": password, "name": "Load test"});
    post(http, &format!("{base}/api/v1/auth/register"), None, body, "the sign-up").await?;
    let login = json!({"email": email, "password": password});
    let tokens = post(http, &format!("{base}/api/v1/auth/login"), None, login, "the login").await?;
    let token = tokens["access_token"].as_str().unwrap_or_default().to_string();
    // As many questions as allowed, so no interview ends within the run.
    let plan = json!({"role": "Backend engineer", "interview_type": "behavioral", "experience_level": "mid", "question_count": 20});
    let interview = post(http, &format!("{base}/api/v1/interviews"), Some(&token), plan, "the interview").await?;
    Ok((token, interview["id"].as_str().unwrap_or_default().to_string()))
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
    what: &'static str,
) -> Result<Value, String> {
    let mut request = http.post(url).header("content-type", "application/json").body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status >= 300 {
        return Err(LoadError::Refused { what, status, body: text }.to_string());
    }
    serde_json::from_str(&text).map_err(|e| format!("{what}: {e}"))
}

pub(crate) async fn scrape(http: &reqwest::Client, base: &str) -> Result<String, LoadError> {
    Ok(http.get(format!("{base}/metrics")).send().await?.error_for_status()?.text().await?)
}

/// The sum of every series of `name` whose labels contain `labels`, in Prometheus text format.
pub(crate) fn sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with(' ') || rest.starts_with('{')) || !rest.contains(labels) {
                return None;
            }
            rest.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_summed_by_name_and_labels() {
        let text = "# HELP x\ncandor_a_sum{stage=\"vad\"} 1.5\ncandor_a_sum{stage=\"stt\"} 2\ncandor_a_sum_other 7\n\
                    candor_b 3\n";
        assert_eq!(sum(text, "candor_a_sum", ""), 3.5);
        assert_eq!(sum(text, "candor_a_sum", "stage=\"stt\""), 2.0);
        assert_eq!(sum(text, "candor_b", ""), 3.0);
        assert_eq!(sum(text, "candor_c", ""), 0.0);
    }

    #[test]
    fn the_answer_repeats_with_pauses_for_the_whole_run_after_the_phase() {
        let answer = (vec![1.0; 100], 100);
        let (pcm, rate) = repeated(&answer, Duration::from_millis(500), Duration::ZERO, Duration::from_secs(5));
        assert_eq!(rate, 100);
        assert!(pcm.len() >= 500);
        assert_eq!(&pcm[..50], &[0.0; 50][..]);
        assert_eq!(pcm[50], 1.0);
        let (late, _) = repeated(&answer, Duration::from_millis(500), Duration::from_millis(300), Duration::from_secs(5));
        assert_eq!(&late[..80], &[0.0; 80][..]);
        assert_eq!(late[80], 1.0);
        assert!(late.len() >= 530, "the phase comes on top of the run");
    }

    #[test]
    fn sessions_start_at_repeatable_points_spread_over_the_cycle() {
        let load = Load {
            server: "127.0.0.1:1".parse().unwrap(),
            sessions: 16,
            duration: Duration::from_secs(48),
            answer: (vec![0.0; 1200], 100),
            pause: Duration::from_secs(4),
            camera: None,
            picture: None,
            impairment: None,
        };
        let phases: Vec<f64> = (0..16).map(|i| load.phase(i).as_secs_f64()).collect();
        assert_eq!(phases[0], 0.0);
        assert!(phases.iter().all(|&p| (0.0..16.0).contains(&p)), "{phases:?}");
        assert_eq!(phases, (0..16).map(|i| load.phase(i).as_secs_f64()).collect::<Vec<_>>(), "the same each run");
        // Spread over the cycle, not bunched: some in each half.
        assert!(phases.iter().any(|&p| p < 8.0) && phases.iter().any(|&p| p > 8.0), "{phases:?}");
        assert_eq!(load.answers_in_window(0), 3);
        let late = (1..16).find(|&i| phases[i] > 0.1).unwrap();
        assert_eq!(load.answers_in_window(late), 2, "one answer fewer after a late start: {}", phases[late]);
        assert_eq!(load.expected_answers(), (0..16).map(|i| load.answers_in_window(i)).sum::<usize>());
    }
}
