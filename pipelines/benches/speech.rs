//! Speech pipeline benchmarks on the real models (run `python3 models/fetch.py fetch` first) and espeak-ng
//! speech. `cargo bench -p candor-pipelines`; figures and the machine go into benches/RESULTS.md.
//!
//! - VAD cost per 32 ms chunk (one stream's share of a core: cost / 32 ms).
//! - Final-decode latency of 3, 10 and 25 s answers with tiny.en on 1 and 2 threads (real-time factor =
//!   latency / duration).
//! - Delivery metrics per second of audio.
//! - The whole audio pipeline (VAD, turns, partials, final, pitch) per second of audio: streams per core.

#[allow(dead_code)] // the real-speech helper
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use candor_pipelines::inference::init_runtime;
use candor_pipelines::speech::delivery::analyze;
use candor_pipelines::speech::pipeline::{SpeechEngines, SpeechPipeline};
use candor_pipelines::speech::stt::{SpeechToText, SttOptions};
use candor_pipelines::speech::vad::{VadModel, VadStream};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use support::{models_dir, speak};

/// About `seconds` of answer-like speech.
fn answer(seconds: usize) -> Vec<f32> {
    let sentence =
        "We moved the billing service to a new database and tested every step in staging before the cut over.";
    let mut audio = Vec::new();
    while audio.len() < seconds * 16_000 {
        audio.extend(speak(sentence, 150));
        audio.extend(std::iter::repeat_n(0.0, 4000));
    }
    audio.truncate(seconds * 16_000);
    audio
}

fn vad_model() -> VadModel {
    init_runtime(&models_dir().join("libonnxruntime.so")).expect("ONNX Runtime");
    VadModel::load(&models_dir().join("silero_vad.onnx")).expect("Silero VAD")
}

fn vad(c: &mut Criterion) {
    let model = vad_model();
    let audio = answer(3);
    let mut stream = VadStream::default();
    let mut offset = 0;
    c.bench_function("vad/32ms_chunk", |b| {
        b.iter(|| {
            let chunk = &audio[offset..offset + 512];
            offset = (offset + 512) % (audio.len() - 512);
            stream.push(&model, chunk).unwrap()
        })
    });
}

fn stt(c: &mut Criterion) {
    let stt = SpeechToText::load(&models_dir().join("ggml-tiny.en.bin")).expect("whisper tiny.en");
    let mut group = c.benchmark_group("stt_final_decode");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for seconds in [3, 5, 10, 25] {
        let audio = answer(seconds);
        for threads in [1, 2] {
            let options = SttOptions { threads, ..SttOptions::default() };
            group.throughput(Throughput::Elements(seconds as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{threads}_threads"), format!("{seconds}s")),
                &audio,
                |b, audio| b.iter(|| stt.transcribe(audio, 0, &options).unwrap()),
            );
        }
    }
    group.finish();
}

fn delivery(c: &mut Criterion) {
    let stt = SpeechToText::load(&models_dir().join("ggml-tiny.en.bin")).expect("whisper tiny.en");
    let words = stt.transcribe(&answer(25), 0, &SttOptions::default()).unwrap().words;
    let mut group = c.benchmark_group("delivery");
    group.throughput(Throughput::Elements(25));
    group.bench_function("25s_answer", |b| b.iter(|| analyze(&words)));
    group.finish();
}

fn whole_pipeline(c: &mut Criterion) {
    let engines = SpeechEngines {
        vad: Arc::new(vad_model()),
        stt: Some(Arc::new(SpeechToText::load(&models_dir().join("ggml-tiny.en.bin")).expect("whisper"))),
    };
    // Two 10 s answers separated by 3 s of silence: partials, two finals, the idle time between.
    let mut audio = answer(10);
    audio.extend(std::iter::repeat_n(0.0, 48_000));
    audio.extend(answer(10));
    audio.extend(std::iter::repeat_n(0.0, 32_000));
    let seconds = audio.len() as u64 / 16_000;
    let mut group = c.benchmark_group("audio_pipeline");
    group.sample_size(10).measurement_time(Duration::from_secs(30)).throughput(Throughput::Elements(seconds));
    group.bench_function(format!("{seconds}s_session_100ms_chunks"), |b| {
        b.iter(|| {
            let mut pipeline = SpeechPipeline::new(engines.clone(), Default::default(), SttOptions::default()).unwrap();
            let mut finals = 0;
            for chunk in audio.chunks(1600) {
                finals += pipeline
                    .push(chunk)
                    .unwrap()
                    .iter()
                    .filter(|e| matches!(e, candor_pipelines::speech::pipeline::SpeechEvent::Final(_)))
                    .count();
            }
            finals
        })
    });
    group.finish();
}

criterion_group!(benches, vad, stt, delivery, whole_pipeline);
criterion_main!(benches);
