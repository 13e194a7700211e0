//! Vision benchmarks on the real models and the test portrait (run `python3 models/fetch.py fetch` and
//! `fetch test-portrait` first). `cargo bench -p candor-pipelines --bench vision`; figures go into
//! benches/RESULTS.md.
//!
//! - Face detection alone on a 640x480 frame.
//! - The whole analysis of a frame (detection, mesh, both irises, pose, expression): at the live rate of five
//!   frames a second, one stream's share of a core is 5 x this. And the same while tracking (no detector).
//! - Eight tracked frames (eight sessions' frames) analysed as one batch, as the live server does when frames
//!   of many sessions wait together: per frame, this over 8.

#[allow(dead_code)] // the speech helpers
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;

use candor_pipelines::inference::init_runtime;
use candor_pipelines::video::detect::FaceDetector;
use candor_pipelines::video::{FaceAnalyzer, RgbImage};
use criterion::{Criterion, criterion_group, criterion_main};
use support::models_dir;

/// The portrait's upper part in a 640x480 frame, as a webcam shows a candidate.
fn webcam_frame() -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(models_dir().join("astronaut.png"))
        .args(["-vf", "crop=400:400:56:0,scale=480:480,pad=640:480:80:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert_eq!(out.stdout.len(), 640 * 480 * 3, "the test portrait: python3 models/fetch.py fetch test-portrait");
    out.stdout
}

fn vision(c: &mut Criterion) {
    init_runtime(&models_dir().join("libonnxruntime.so")).expect("ONNX Runtime");
    let data = webcam_frame();
    let frame = RgbImage { width: 640, height: 480, data: &data };
    let detector = FaceDetector::load(&models_dir().join("blazeface_128.onnx")).expect("BlazeFace");
    c.bench_function("vision/detect_640x480", |b| b.iter(|| detector.detect(&frame).unwrap().expect("a face")));
    let analyzer = FaceAnalyzer::load(&models_dir()).expect("the vision models");
    c.bench_function("vision/analyze_640x480", |b| b.iter(|| analyzer.analyze(&frame, None).unwrap().expect("a face")));
    let track = analyzer.analyze(&frame, None).unwrap().expect("a face").next;
    c.bench_function("vision/analyze_tracked_640x480", |b| {
        b.iter(|| analyzer.analyze(&frame, Some(track)).unwrap().expect("a face"))
    });
    let frames = vec![(frame, Some(track)); 8];
    c.bench_function("vision/analyze_tracked_640x480_batch_of_8", |b| {
        b.iter(|| assert!(analyzer.analyze_batch(&frames).unwrap().iter().all(Option::is_some)))
    });
}

criterion_group!(benches, vision);
criterion_main!(benches);
