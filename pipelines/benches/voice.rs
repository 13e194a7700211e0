//! Voice benchmarks on the real Piper voice (run `python3 models/fetch.py fetch` first).
//! `cargo bench -p candor-pipelines --bench voice`; figures go into benches/RESULTS.md.
//!
//! - One short sentence (what the first audio of an answer waits for) and one long one, with Piper on one
//!   thread, espeak-ng phonemes included: latency and real-time factor.
//! - espeak-ng alone (the fallback voice) on the short sentence.

#[allow(dead_code)] // the speech helpers
#[path = "../tests/support/mod.rs"]
mod support;

use candor_pipelines::inference::init_runtime;
use candor_pipelines::voice::tts::{Piper, Voice};
use criterion::{Criterion, criterion_group, criterion_main};
use support::models_dir;

const SHORT: &str = "Tell me about yourself.";
const LONG: &str = "Thanks for walking me through that project; now tell me about a time you disagreed with a \
    colleague, how you handled it, and what you would do differently today.";

fn voice(c: &mut Criterion) {
    init_runtime(&models_dir().join("libonnxruntime.so")).expect("ONNX Runtime");
    let piper = Voice::Piper(Piper::load(&models_dir().join("piper-joe/en_US-joe-medium.onnx")).expect("Piper"));
    for (name, text) in [("short", SHORT), ("long", LONG)] {
        let seconds = piper.synthesize(text).unwrap().seconds();
        eprintln!("{name} sentence: {seconds:.2} s of speech");
        c.bench_function(&format!("voice/piper_{name}_sentence"), |b| b.iter(|| piper.synthesize(text).unwrap()));
    }
    c.bench_function("voice/espeak_short_sentence", |b| b.iter(|| Voice::Espeak.synthesize(SHORT).unwrap()));
}

criterion_group!(benches, voice);
criterion_main!(benches);
