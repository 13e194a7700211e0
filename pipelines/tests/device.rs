//! Asking for CUDA where it cannot be had loads the models for the CPU and says why; they run all the same. The
//! test command runs this twice: without the `cuda` feature (on the CPU runtime library), and with it on ONNX
//! Runtime's GPU build (`onnxruntime-gpu`) where this machine has neither the CUDA libraries nor a GPU. In its own
//! test binary: the preferred device is the process's. Skipped when the models are absent, unless
//! CANDOR_TEST_REQUIRE_SERVICES is set.

#[allow(dead_code)] // the speech helpers
mod support;

use candor_pipelines::inference::{Device, device, init_runtime, prefer_device};
use candor_pipelines::speech::stt::{SpeechToText, SttOptions};
use candor_pipelines::speech::vad::{VadModel, VadStream};
use support::models_dir;

#[test]
fn models_asked_to_run_on_cuda_without_it_run_on_the_cpu_and_say_why() {
    let gpu = models_dir().join("onnxruntime-gpu/libonnxruntime.so.1.31.1");
    let library = if cfg!(feature = "cuda") && gpu.exists() { gpu.clone() } else { models_dir().join("libonnxruntime.so") };
    let vad = models_dir().join("silero_vad.onnx");
    if !library.exists() || !vad.exists() || (cfg!(feature = "cuda") && !gpu.exists()) {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "run models/fetch.py fetch (and fetch onnxruntime-gpu)");
        eprintln!("skipped: the models are not fetched");
        return;
    }
    init_runtime(&library).unwrap();
    assert_eq!(device(), "cpu");
    prefer_device(Device::Cuda);
    let model = VadModel::load(&vad).expect("the model loads for the CPU instead");
    let report = device();
    assert!(report.starts_with("cpu (CUDA unavailable: "), "{report}");
    if cfg!(feature = "cuda") {
        assert!(!report.contains("no CUDA support"), "this build has the CUDA provider: {report}");
    }
    // It runs: a second of silence is not speech.
    let probabilities = VadStream::default().push(&model, &[0.0; 16_000]).unwrap();
    assert!(!probabilities.is_empty() && probabilities.iter().all(|p| *p < 0.5), "{probabilities:?}");
    prefer_device(Device::Cpu);
    assert_eq!(device(), "cpu");
}

/// whisper.cpp asked for the GPU where it cannot have it decodes on the CPU and says why: without the
/// `whisper-cuda` feature, that the build lacks it; with it (`scripts/build-gpu.sh`) on a machine without a
/// device, that none was found.
#[test]
fn whisper_asked_for_the_gpu_without_one_decodes_on_the_cpu_and_says_why() {
    let path = models_dir().join("ggml-tiny.en.bin");
    if !path.exists() {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "run models/fetch.py fetch");
        eprintln!("skipped: the models are not fetched");
        return;
    }
    assert_eq!(SpeechToText::load(&path).unwrap().device(), "cpu");
    let stt = SpeechToText::load_on(&path, true).expect("loads for the CPU instead");
    let report = stt.device();
    if cfg!(feature = "whisper-cuda") && report.starts_with("cuda") {
        eprintln!("this machine has a GPU: {report}");
    } else {
        assert!(report.starts_with("cpu (CUDA unavailable: "), "{report}");
        assert_eq!(report.contains("no CUDA support"), !cfg!(feature = "whisper-cuda"), "{report}");
    }
    let said = stt.transcribe(&support::speak("Tell me about yourself.", 150), 0, &SttOptions::default()).unwrap();
    assert!(said.text.to_lowercase().contains("yourself"), "{said:?}");
}
