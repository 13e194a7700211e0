//! `candor-loadtest`: runs many synthetic candidates against a Candor server and prints what they cost it.
//!
//!     candor-loadtest --server 127.0.0.1:8080 --sessions 4 --seconds 60 --answer answer.wav --picture face.png
//!
//! The server must allow sign-ups from this address (each session is a new account) and, to see CPU and memory,
//! run on Linux. Without `--answer`, espeak-ng speaks a built-in answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use candor_loadtest::load::{Load, run};
use candor_loadtest::media::{CameraCodec, read_picture, read_wav};
use clap::Parser;

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
    };
    let report = run(&load).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
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
