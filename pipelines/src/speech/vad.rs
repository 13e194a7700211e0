//! Voice activity: Silero VAD v6 through ONNX Runtime. Each 512-sample chunk of 16 kHz audio (32 ms) is fed
//! with the last 64 samples of the previous chunk as context and the model's recurrent state; out comes the
//! probability that the chunk is speech. The model loads once and is shared; each stream keeps its own state
//! and context (`VadStream`).
//!
//! The recurrent state adapts to what it has heard, and slowly: after a loud voice, even twelve seconds of
//! silence later, a voice 24 dB quieter over a low rumble scored under 0.35 for seconds on end (a quiet
//! speaker after a loud one, or one who leans back, went unheard; found on the real-speech test set, where
//! the same voice from a fresh state scored over 0.5 from its first syllables). So after `RESET_AFTER_CHUNKS`
//! of confident silence the stream starts from a fresh state, as at its start.

use std::path::Path;
use std::sync::Mutex;

use ort::value::Tensor;

use crate::inference::{InferenceError, load_model};

pub const CHUNK: usize = 512;
const CONTEXT: usize = 64;
const STATE: usize = 2 * 128;
/// Milliseconds per chunk at 16 kHz.
pub const CHUNK_MS: u64 = 32;
/// Chunks under `SILENT` in a row (about a second) after which the state starts afresh.
const RESET_AFTER_CHUNKS: u32 = 31;
const SILENT: f32 = 0.1;

pub struct VadModel {
    /// ONNX Runtime sessions run one call at a time; a chunk takes well under a millisecond, so streams share.
    session: Mutex<ort::session::Session>,
}

impl VadModel {
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        let model = Self { session: Mutex::new(load_model(path)?) };
        // A corrupt file that still parses as ONNX would fail here, at start, rather than in a session.
        model.infer(&[0.0; CONTEXT + CHUNK], &mut [0.0; STATE]).map_err(|e| InferenceError::Model {
            path: path.display().to_string(),
            reason: format!("does not run as Silero VAD: {e}"),
        })?;
        Ok(model)
    }

    fn infer(&self, input: &[f32], state: &mut [f32; STATE]) -> Result<f32, InferenceError> {
        let run = |e: ort::Error| InferenceError::Run(e.to_string());
        let audio = Tensor::from_array(([1_usize, CONTEXT + CHUNK], input.to_vec())).map_err(run)?;
        let recurrent = Tensor::from_array(([2_usize, 1, 128], state.to_vec())).map_err(run)?;
        let rate = Tensor::from_array(([0_usize; 0], vec![16_000_i64])).map_err(run)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs!["input" => audio, "state" => recurrent, "sr" => rate]).map_err(run)?;
        let (_, probability) = outputs["output"].try_extract_tensor::<f32>().map_err(run)?;
        let (_, next) = outputs["stateN"].try_extract_tensor::<f32>().map_err(run)?;
        state.copy_from_slice(&next[..STATE]);
        Ok(probability.first().copied().unwrap_or(0.0))
    }
}

/// One audio stream's VAD state.
pub struct VadStream {
    state: [f32; STATE],
    context: [f32; CONTEXT],
    pending: Vec<f32>,
    /// Chunks under `SILENT` in a row.
    silent_chunks: u32,
}

impl Default for VadStream {
    fn default() -> Self {
        Self { state: [0.0; STATE], context: [0.0; CONTEXT], pending: Vec::new(), silent_chunks: 0 }
    }
}

impl VadStream {
    /// Adds 16 kHz samples; returns the speech probability of every chunk they complete.
    pub fn push(&mut self, model: &VadModel, samples: &[f32]) -> Result<Vec<f32>, InferenceError> {
        self.pending.extend_from_slice(samples);
        let mut probabilities = Vec::new();
        let mut input = [0.0_f32; CONTEXT + CHUNK];
        while self.pending.len() >= CHUNK {
            input[..CONTEXT].copy_from_slice(&self.context);
            input[CONTEXT..].copy_from_slice(&self.pending[..CHUNK]);
            let probability = model.infer(&input, &mut self.state)?;
            probabilities.push(probability);
            self.silent_chunks = if probability < SILENT { self.silent_chunks + 1 } else { 0 };
            if self.silent_chunks >= RESET_AFTER_CHUNKS {
                self.state = [0.0; STATE];
                self.silent_chunks = 0;
            }
            self.context.copy_from_slice(&input[CHUNK..]);
            self.pending.drain(..CHUNK);
        }
        Ok(probabilities)
    }
}
