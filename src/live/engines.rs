//! The model-backed engines, loaded once per process and shared by every session: speech (VAD, speech-to-text),
//! vision (face analysis) and the interviewer's voice (text to speech), with the bounded worker pool their
//! inference runs on. Whatever is missing or
//! broken stays off with a reason, reported at start and in `/readyz`; the server runs without it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use candor_pipelines::inference::{Device, init_runtime, prefer_device};
use candor_pipelines::speech::pipeline::SpeechEngines;
use candor_pipelines::speech::stt::SpeechToText;
use candor_pipelines::speech::vad::VadModel;
use candor_pipelines::video::FaceAnalyzer;
use candor_pipelines::voice::tts::{Piper, Voice};

use super::pool::InferencePool;
use super::vision::{FaceBatcher, face_batcher};
use crate::config::{Config, InferenceDevice};

/// The interviewer's Piper voice, inside the models directory.
const PIPER_VOICE: &str = "piper-joe/en_US-joe-medium.onnx";

pub struct Engines {
    pub speech: Option<SpeechEngines>,
    /// Face analysis, in batches across sessions.
    pub vision: Option<Arc<FaceBatcher>>,
    /// Piper, or espeak-ng alone when the Piper voice is missing; `None` without espeak-ng.
    pub voice: Option<Arc<Voice>>,
    /// Each engine: `ok` or why it is unavailable.
    pub status: BTreeMap<&'static str, String>,
    /// Where each runtime's inference runs (`onnx`, `whisper`): `cpu`, `cuda`, or `cpu` with why not CUDA.
    pub devices: BTreeMap<&'static str, String>,
    pub pool: Arc<InferencePool>,
    /// Speech streams live now (one per candidate with a speech pipeline).
    pub speech_streams: AtomicUsize,
}

impl Engines {
    /// Loads what is present in the models directory. Blocking (loads tens of megabytes).
    pub fn load(config: &Config) -> Self {
        let dir = &config.models_dir;
        prefer_device(match config.inference_device {
            InferenceDevice::Cpu => Device::Cpu,
            InferenceDevice::Cuda => Device::Cuda,
        });
        let runtime = init_runtime(&runtime_library(dir, config.inference_device)).map_err(|e| e.to_string());
        let vad = runtime
            .clone()
            .and_then(|()| VadModel::load(&dir.join("silero_vad.onnx")).map_err(|e| e.to_string()));
        let gpu = config.inference_device == InferenceDevice::Cuda;
        let stt = SpeechToText::load_on(&dir.join(&config.stt_model), gpu).map_err(|e| e.to_string());
        let vision = runtime.clone().and_then(|()| FaceAnalyzer::load(dir).map_err(|e| e.to_string()));
        let piper = runtime.and_then(|()| Piper::load(&dir.join(PIPER_VOICE)).map_err(|e| e.to_string()));
        let (voice, tts) = match piper {
            Ok(piper) => (Some(Voice::Piper(piper)), "ok".to_string()),
            Err(reason) => match Voice::Espeak.synthesize("Ready.") {
                Ok(_) => (Some(Voice::Espeak), format!("espeak-ng alone (the Piper voice: {reason})")),
                Err(e) => (None, format!("{reason}; {e}")),
            },
        };
        let status = BTreeMap::from([
            ("vad", state(&vad)),
            ("stt", state(&stt)),
            ("vision", state(&vision)),
            ("tts", tts),
        ]);
        for (engine, state) in &status {
            if state == "ok" {
                tracing::info!(engine, "engine ready");
            } else {
                tracing::warn!(engine, reason = %state, "engine unavailable; run `python3 models/fetch.py fetch`");
            }
        }
        let whisper = stt.as_ref().map_or_else(|_| "cpu".to_string(), |stt| stt.device().to_string());
        let devices = BTreeMap::from([("onnx", candor_pipelines::inference::device()), ("whisper", whisper)]);
        if gpu {
            tracing::info!(onnx = %devices["onnx"], whisper = %devices["whisper"], "inference devices");
        }
        let speech = vad.ok().map(|vad| SpeechEngines { vad: Arc::new(vad), stt: stt.ok().map(Arc::new) });
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let pool = Arc::new(InferencePool::new(workers));
        let vision = vision.ok().map(|analyzer| face_batcher(Arc::new(analyzer), pool.clone()));
        Self { speech, vision, voice: voice.map(Arc::new), status, devices, pool, speech_streams: AtomicUsize::new(0) }
    }

    /// No engines at all (loading failed outright).
    pub fn disabled(reason: &str) -> Self {
        let status = ["vad", "stt", "vision", "tts"].into_iter().map(|engine| (engine, reason.to_string())).collect();
        let devices = BTreeMap::new();
        Self { speech: None, vision: None, voice: None, status, devices, pool: Arc::new(InferencePool::new(1)), speech_streams: AtomicUsize::new(0) }
    }
}

/// The ONNX Runtime library to load: for CUDA, the GPU build when it was fetched (`onnxruntime-gpu`, a folder
/// holding `libonnxruntime.so.<version>` and its providers), else the CPU one.
fn runtime_library(dir: &std::path::Path, device: InferenceDevice) -> std::path::PathBuf {
    let gpu = (device == InferenceDevice::Cuda)
        .then(|| std::fs::read_dir(dir.join("onnxruntime-gpu")).ok())
        .flatten()
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path()))
        .find(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")));
    gpu.unwrap_or_else(|| dir.join("libonnxruntime.so"))
}

/// `ok`, or why the engine is off.
fn state<T>(loaded: &Result<T, String>) -> String {
    loaded.as_ref().map_or_else(Clone::clone, |_| "ok".to_string())
}
