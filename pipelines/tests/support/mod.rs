//! Shared by the model tests and the benchmarks: speech from espeak-ng, and where the fetched models are.

use std::path::{Path, PathBuf};
use std::process::Command;

use candor_pipelines::audio::{Resampler, wav_samples};

/// CANDOR_MODELS_DIR, or the repository's models/cache.
pub fn models_dir() -> PathBuf {
    std::env::var_os("CANDOR_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/cache"))
}

/// espeak-ng speech of `text` at `wpm`, as 16 kHz mono PCM.
pub fn speak(text: &str, wpm: u32) -> Vec<f32> {
    let output = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", &wpm.to_string(), "--stdout", text])
        .output()
        .expect("espeak-ng is installed by the test command");
    assert!(output.status.success());
    // 16-bit mono at 22,050 Hz.
    let pcm = wav_samples(&output.stdout).expect("a WAV data chunk");
    let mut out = Vec::new();
    Resampler::new(22_050, 16_000).process(&pcm, &mut out);
    out
}

/// Where the voice is in a 16 kHz recording of real speech, in milliseconds: from the first to the last 20 ms
/// window louder than a tenth of the loudest.
pub fn voice_span_ms(pcm: &[f32]) -> u64 {
    let rms: Vec<f32> =
        pcm.chunks(320).map(|w| (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt()).collect();
    let loud = rms.iter().copied().fold(0.0, f32::max) / 10.0;
    let first = rms.iter().position(|r| *r >= loud).unwrap_or(0);
    let last = rms.iter().rposition(|r| *r >= loud).unwrap_or(0);
    (last + 1 - first) as u64 * 20
}
