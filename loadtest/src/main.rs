//! `candor-loadtest`: runs many synthetic candidates against a Candor server and prints what they cost it.
//!
//!     candor-loadtest --server 127.0.0.1:8080 --sessions 4 --seconds 60 --answer answer.wav --picture face.png
//!
//! With `--search MAX` it finds the capacity instead: runs of 1, 2, ... MAX sessions until one misses the p95
//! voice-to-voice bound, written to `--out` as JSON, Markdown and an SVG chart. Pin the server and the load
//! generator to separate cores (`taskset`) so that the figure is per core.
//!
//! With `--soak MINUTES` candidates come and go for that long instead (`--sessions` at once, each interviewing for
//! `--seconds`): memory under load must stay within 5% from the first third of the run to the last, the idle
//! server must end with the runtime tasks, open files and threads it had after a warm-up, and every final
//! transcript must be stored. Written to `--out` as soak.json.
//!
//! The server must allow sign-ups from this address (each session is a new account) and, to see CPU and memory,
//! run on Linux. Without `--answer`, espeak-ng speaks a built-in answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use candor_loadtest::capacity;
use candor_loadtest::load::{Load, run};
use candor_loadtest::impair::Impairment;
use candor_loadtest::media::{CameraCodec, read_picture, read_wav};
use candor_loadtest::soak::{Soak, soak};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

const ANSWER: &str = "In my last role I led the migration of our billing service to a new database. \
    We planned it in small steps and finished two weeks early.";

#[derive(Parser)]
#[command(version, about = "Synthetic candidates against a Candor server: what many sessions cost")]
struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// Candidates connected at once.
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    /// How long they all run together.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// A WAV of one spoken answer, repeated with pauses.
    #[arg(long)]
    answer: Option<PathBuf>,
    /// Silence between repetitions of the answer, in seconds (long enough for turns to end).
    #[arg(long, default_value_t = 3.0)]
    pause: f64,
    /// A picture for the cameras to show (a face makes the vision pipeline do its full work).
    #[arg(long)]
    picture: Option<PathBuf>,
    /// Camera codec: vp8 or h264.
    #[arg(long, default_value = "vp8")]
    codec: String,
    /// Camera size and rate, WIDTHxHEIGHT@FPS.
    #[arg(long, default_value = "640x480@15")]
    camera: String,
    /// Audio only.
    #[arg(long)]
    no_video: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Capacity search up to this many sessions (each step runs --seconds).
    #[arg(long)]
    search: Option<usize>,
    /// The search's bound on the 95th percentile voice-to-voice, in milliseconds.
    #[arg(long, default_value_t = 1200)]
    p95_ms: u64,
    /// Cores the server is pinned to (taskset), for the per-core figure.
    #[arg(long, default_value_t = 1.0)]
    server_cores: f64,
    /// A soak of this many minutes: candidates come and go (each interviews for --seconds); exits non-zero when
    /// the server did not end where it started or a turn was lost.
    #[arg(long)]
    soak: Option<f64>,
    /// How often the soak samples the server's figures, in seconds.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// Where the search writes capacity.json, capacity.md and capacity.svg, and the soak soak.json.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// A bad network for every candidate, both ways: e.g. `loss=5%`, `jitter=100ms`, `blackout=2s@20s`.
    #[arg(long, value_parser = Impairment::parse)]
    impair: Option<Impairment>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let codec = match args.codec.as_str() {
        "vp8" => CameraCodec::Vp8,
        "h264" => CameraCodec::H264,
        other => anyhow::bail!("--codec must be vp8 or h264, not {other}"),
    };
    let (width, height, fps) = parse_camera(&args.camera).context("--camera is WIDTHxHEIGHT@FPS, e.g. 640x480@15")?;
    let answer = match &args.answer {
        Some(path) => read_wav(path).with_context(|| format!("reading {}", path.display()))?,
        None => spoken_answer()?,
    };
    let picture = match &args.picture {
        Some(path) => Some(read_picture(path, width, height).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let load = Load {
        server: args.server,
        sessions: args.sessions,
        duration: Duration::from_secs(args.seconds),
        answer,
        pause: Duration::from_secs_f64(args.pause.max(0.0)),
        camera: (!args.no_video).then_some((codec, width, height, fps)),
        picture,
        impairment: args.impair,
    };
    if let Some(max_sessions) = args.search {
        return search_capacity(&load, max_sessions, &args).await;
    }
    if let Some(minutes) = args.soak {
        let total = Duration::from_secs_f64(minutes.max(0.0) * 60.0);
        let sample_every = Duration::from_secs(args.sample_secs.max(1));
        let report = soak(&Soak { load, total, sample_every, rss_limit: Some(0.05) }).await?;
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        std::fs::write(args.out.join("soak.json"), serde_json::to_string_pretty(&report.to_json())?)?;
        println!("{report}");
        anyhow::ensure!(report.misses().is_empty(), "the soak failed");
        return Ok(());
    }
    let report = run(&load).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(())
}

async fn search_capacity(load: &Load, max_sessions: usize, args: &Args) -> anyhow::Result<()> {
    let bound = Duration::from_millis(args.p95_ms);
    let progress = ProgressBar::new(max_sessions as u64).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} sessions {msg}")?.progress_chars("=> "),
    );
    progress.set_message(format!("running 1 session for {} s", args.seconds));
    progress.enable_steady_tick(Duration::from_millis(500));
    let steps = capacity::search(load, max_sessions, bound, |step| {
        let p95 = step.p95_ms.map_or("-".into(), |v| format!("{v:.0} ms"));
        let verdict = if step.passed() { "met".to_string() } else { step.misses.join("; ") };
        progress.println(format!("{} sessions: p95 {p95}, {:.2} cores busy: {verdict}", step.sessions, step.report.cores_used));
        progress.set_position(step.sessions as u64);
        progress.set_message(format!("running {} sessions for {} s", step.sessions + 1, args.seconds));
    })
    .await?;
    progress.finish_and_clear();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let json = capacity::to_json(&steps, bound, args.server_cores);
    std::fs::write(args.out.join("capacity.json"), serde_json::to_string_pretty(&json)?)?;
    let summary = capacity::markdown(&steps, bound, args.server_cores);
    std::fs::write(args.out.join("capacity.md"), &summary)?;
    capacity::chart(&steps, bound, &args.out.join("capacity.svg")).map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
    println!("{summary}\nwritten to {}: capacity.json, capacity.md, capacity.svg", args.out.display());
    Ok(())
}

fn parse_camera(text: &str) -> Option<(u32, u32, u32)> {
    let (size, fps) = text.split_once('@')?;
    let (width, height) = size.split_once('x')?;
    Some((width.parse().ok()?, height.parse().ok()?, fps.parse().ok()?))
}

/// The built-in answer, spoken by espeak-ng.
fn spoken_answer() -> anyhow::Result<(Vec<f32>, u32)> {
    let dir = std::env::temp_dir().join(format!("candor-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let wav = dir.join("answer.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg(ANSWER)
        .status()
        .context("espeak-ng speaks the built-in answer: install it or pass --answer")?;
    anyhow::ensure!(status.success(), "espeak-ng failed");
    let answer = read_wav(&wav)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(answer)
}
