//! Text to speech. The interviewer's voice is Piper (a VITS model through ONNX Runtime); text becomes phonemes
//! with the `espeak-ng` program, one clause at a time, run as a separate process (libespeak-ng is GPL), and the
//! clause's punctuation is put back so that Piper phrases it. Without the Piper model, `espeak-ng` speaks by
//! itself (formant synthesis: robotic, but a voice).
//!
//! Callers speak sentence by sentence (`sentences`) so that the first sentence plays while the next is made.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use ort::value::Tensor;

use crate::audio::wav_samples;
use crate::inference::{InferenceError, load_model};

/// Piper's `scales`: noise, length (1 = the voice's own pace, larger is slower) and noise width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    pub noise: f32,
    pub length: f32,
    pub noise_width: f32,
}

impl Scales {
    /// The voices' usual settings: a little randomness makes speech livelier (every synthesis differs).
    pub const LIVELY: Self = Self { noise: 0.667, length: 1.0, noise_width: 0.8 };

    /// No randomness: the same text always gives the same audio (tests judge one fixed rendering), at
    /// `length` times the voice's own duration.
    pub fn exact(length: f32) -> Self {
        Self { noise: 0.0, length, noise_width: 0.0 }
    }
}
/// Below this (about -50 dBFS) the start of an utterance is silence, trimmed up to 5 ms before the voice.
const LEAD_SILENCE: f32 = 0.003;
/// Marks that end a clause; Piper knows them and pauses accordingly.
const CLAUSE_ENDS: [char; 6] = [',', '.', '!', '?', ';', ':'];

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("espeak-ng: {0}")]
    Espeak(String),
    #[error("voice {path}: {reason}")]
    Voice { path: String, reason: String },
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// Mono speech, its sample rate, and the phonemes spoken (IPA, for visemes).
#[derive(Debug, Clone)]
pub struct Speech {
    pub pcm: Vec<f32>,
    pub rate: u32,
    pub phonemes: String,
}

impl Speech {
    pub fn seconds(&self) -> f32 {
        self.pcm.len() as f32 / self.rate as f32
    }
}

pub enum Voice {
    Piper(Piper),
    Espeak,
}

impl Voice {
    /// Speaks `text` (one sentence or a few); empty text gives no audio.
    pub fn synthesize(&self, text: &str) -> Result<Speech, TtsError> {
        match self {
            Self::Piper(piper) => piper.synthesize(text),
            Self::Espeak => espeak(text),
        }
    }
}

pub struct Piper {
    session: Mutex<ort::session::Session>,
    ids: HashMap<char, Vec<i64>>,
    rate: u32,
}

impl Piper {
    /// Loads a Piper voice: `model` (`.onnx`) and its `.onnx.json` beside it; checks that it speaks.
    pub fn load(model: &Path) -> Result<Self, TtsError> {
        let fail = |reason: String| TtsError::Voice { path: model.display().to_string(), reason };
        let config_path = model.with_extension("onnx.json");
        let config: serde_json::Value = std::fs::read(&config_path)
            .map_err(|e| fail(format!("{}: {e}", config_path.display())))
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| fail(format!("its JSON: {e}"))))?;
        let rate = config["audio"]["sample_rate"].as_u64().and_then(|r| u32::try_from(r).ok());
        let map = config["phoneme_id_map"].as_object();
        let (Some(rate), Some(map)) = (rate, map) else {
            return Err(fail("its JSON has no audio.sample_rate or phoneme_id_map".into()));
        };
        let ids: HashMap<char, Vec<i64>> = map
            .iter()
            .filter_map(|(symbol, ids)| {
                let mut chars = symbol.chars();
                let (Some(c), None) = (chars.next(), chars.next()) else { return None };
                Some((c, ids.as_array()?.iter().filter_map(serde_json::Value::as_i64).collect()))
            })
            .collect();
        if !['^', '_', '$'].iter().all(|c| ids.contains_key(c)) {
            return Err(fail("the phoneme map lacks ^, _ or $".into()));
        }
        let piper = Self { session: Mutex::new(load_model(model)?), ids, rate };
        piper.synthesize("Ready.").map_err(|e| fail(format!("does not speak: {e}")))?;
        Ok(piper)
    }

    pub fn synthesize(&self, text: &str) -> Result<Speech, TtsError> {
        self.synthesize_with(text, Scales::LIVELY)
    }

    pub fn synthesize_with(&self, text: &str, scales: Scales) -> Result<Speech, TtsError> {
        let phonemes = phonemize(text)?;
        if phonemes.trim().is_empty() {
            return Ok(Speech { pcm: Vec::new(), rate: self.rate, phonemes });
        }
        // "^", then each known phoneme followed by the pad "_", then "$".
        let mut ids = self.ids[&'^'].clone();
        for c in phonemes.chars() {
            if let Some(id) = self.ids.get(&c) {
                ids.extend(id);
                ids.extend(&self.ids[&'_']);
            }
        }
        ids.extend(&self.ids[&'$']);
        let run = |e: ort::Error| TtsError::Inference(InferenceError::Run(e.to_string()));
        let length = ids.len();
        let input = Tensor::from_array(([1_usize, length], ids)).map_err(run)?;
        let lengths = Tensor::from_array(([1_usize], vec![length as i64])).map_err(run)?;
        let scales = vec![scales.noise, scales.length, scales.noise_width];
        let scales = Tensor::from_array(([3_usize], scales)).map_err(run)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs =
            session.run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales]).map_err(run)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(run)?;
        // Piper opens with ~40 ms of near-silence: the reply is heard that much sooner without it.
        let lead = audio.iter().position(|s| s.abs() > LEAD_SILENCE).unwrap_or(0).saturating_sub(self.rate as usize / 200);
        Ok(Speech { pcm: audio[lead..].iter().map(|s| s.clamp(-1.0, 1.0)).collect(), rate: self.rate, phonemes })
    }
}

/// Splits text into sentences (after ".", "!" or "?" followed by a space), each kept with its punctuation.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next_is_space = chars.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && next_is_space {
            let end = at + c.len_utf8();
            out.push(text[start..end].trim());
            start = end;
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// IPA phonemes of `text`, clause by clause, each clause followed by its punctuation mark.
pub fn phonemize(text: &str) -> Result<String, TtsError> {
    let mut out = String::new();
    let mut clause = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if CLAUSE_ENDS.contains(&c) || c == '\n' {
            let ipa = espeak_ipa(&clause)?;
            if !ipa.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&ipa);
                if c != '\n' {
                    out.push(c);
                }
            }
            clause.clear();
        } else {
            clause.push(c);
        }
    }
    Ok(out)
}

/// One clause through `espeak-ng --ipa` (text on standard input, so nothing in it reads as an option).
fn espeak_ipa(clause: &str) -> Result<String, TtsError> {
    if clause.trim().is_empty() {
        return Ok(String::new());
    }
    let output = run_espeak(&["-q", "--ipa", "-v", "en-us"], clause)?;
    Ok(String::from_utf8_lossy(&output).split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `espeak-ng` speaking by itself: 22,050 Hz 16-bit WAV on its standard output.
fn espeak(text: &str) -> Result<Speech, TtsError> {
    if text.trim().is_empty() {
        return Ok(Speech { pcm: Vec::new(), rate: 22_050, phonemes: String::new() });
    }
    let wav = run_espeak(&["-v", "en-us", "--stdout"], text)?;
    let Some(pcm) = wav_samples(&wav) else { return Err(TtsError::Espeak("no WAV data in its output".into())) };
    Ok(Speech { pcm, rate: 22_050, phonemes: phonemize(text)? })
}

fn run_espeak(args: &[&str], text: &str) -> Result<Vec<u8>, TtsError> {
    let fail = |e: std::io::Error| TtsError::Espeak(format!("{e} (install the espeak-ng package)"));
    let mut child = Command::new("espeak-ng")
        .args(args)
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    child.stdin.take().expect("piped").write_all(text.as_bytes()).map_err(fail)?;
    let output = child.wait_with_output().map_err(fail)?;
    if !output.status.success() {
        return Err(TtsError::Espeak(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_splits_into_sentences_with_their_punctuation() {
        assert_eq!(
            sentences("Hello there. Version 2.5 shipped! Why? Because  we tried"),
            ["Hello there.", "Version 2.5 shipped!", "Why?", "Because  we tried"]
        );
        assert!(sentences("  ").is_empty());
    }

    #[test]
    fn clauses_keep_their_punctuation_after_their_phonemes() {
        let ipa = phonemize("Hello, world. -rf --help").unwrap();
        assert!(ipa.contains(", ") && ipa.contains('.'), "{ipa}");
        assert_eq!(ipa.matches(',').count(), 1);
        assert!(!ipa.contains('\n'));
        // Text that looks like options is spoken, not obeyed.
        assert!(ipa.len() > 10, "{ipa}");
    }

    #[test]
    fn espeak_speaks_on_its_own() {
        let speech = Voice::Espeak.synthesize("Tell me about yourself.").unwrap();
        assert_eq!(speech.rate, 22_050);
        assert!((0.8..4.0).contains(&speech.seconds()), "{} s", speech.seconds());
        assert!(speech.pcm.iter().any(|s| s.abs() > 0.1));
        assert!(Voice::Espeak.synthesize(" ").unwrap().pcm.is_empty());
    }
}
