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
