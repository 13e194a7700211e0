//! The real-speech test set through `SpeechPipeline` alone (VAD, turns, partials, settled segments, finals; no
//! WebRTC), one thread, in 20 ms packets: each clip's finals against its reference, and how long each final
//! decode took. Quicker than the live test for trying a change to the pipeline on every clip, and
//! deterministic for a given alignment, so a sweep of `--offset` shows which words flip by chance.
//!
//! `cargo run --release -p candor-pipelines --example speech_set -- [--offset MS] [--only ID,ID]
//! [--clip WAV TEXT] [--opus KBPS]` after `python3 models/fetch.py fetch test-speech` (`--only` picks clips of
//! the set by id; `--clip` adds one; `--opus` sends each clip through Opus at that bit rate first, resampled to
//! 48 kHz and back as on the live path).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candor_pipelines::audio::{OpusDecoder, Resampler, wav_samples};
use candor_pipelines::speech::pipeline::{SpeechEngines, SpeechEvent, SpeechPipeline};
use candor_pipelines::speech::stt::{SpeechToText, SttOptions};
use candor_pipelines::speech::text::{comparable_words, word_error_rate};
use candor_pipelines::speech::vad::VadModel;
use candor_pipelines::voice::VoiceEncoder;

struct Clip {
    id: String,
    part: String,
    path: PathBuf,
    reference: String,
}

/// 16 kHz, 16-bit mono WAV.
fn read_wav(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    wav_samples(&bytes).ok_or(format!("{}: no data chunk", path.display()))
}

/// 16 kHz audio through a mono Opus encoder at `kbps` in 20 ms frames and its decoder, back at 16 kHz.
fn through_opus(audio: &[f32], kbps: i32) -> Result<Vec<f32>, String> {
    let mut encoder = VoiceEncoder::new().map_err(|e| e.to_string())?;
    encoder.set_bitrate(kbps * 1000).map_err(|e| e.to_string())?;
    let mut decoder = OpusDecoder::new().map_err(|e| e.to_string())?;
    let mut decoded = Vec::new();
    for packet in encoder.encode(audio, 16_000).map_err(|e| e.to_string())? {
        decoder.decode(&packet, &mut decoded).map_err(|e| e.to_string())?;
    }
    let mut narrow = Vec::new();
    Resampler::new(48_000, 16_000).process(&decoded, &mut narrow);
    Ok(narrow)
}

fn main() -> Result<(), String> {
    let models = std::env::var_os("CANDOR_MODELS_DIR").map_or_else(|| PathBuf::from("models/cache"), PathBuf::from);
    let (mut offset_ms, mut only, mut clips, mut opus_kbps) = (0_usize, None::<String>, Vec::new(), None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--offset" => offset_ms = args.next().and_then(|v| v.parse().ok()).ok_or("--offset MS")?,
            "--only" => only = Some(args.next().ok_or("--only ID,ID")?),
            "--opus" => opus_kbps = Some(args.next().and_then(|v| v.parse().ok()).ok_or("--opus KBPS")?),
            "--clip" => {
                let (path, reference) = args.next().zip(args.next()).ok_or("--clip WAV TEXT")?;
                clips.push(Clip { id: path.clone(), part: "extra".into(), path: path.into(), reference });
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let set = models.join("speech-set");
    let index = std::fs::read_to_string(set.join("transcripts.tsv")).map_err(|e| format!("the test speech set: {e}"))?;
    for line in index.lines() {
        let mut fields = line.splitn(3, '\t');
        if let (Some(id), Some(part), Some(reference)) = (fields.next(), fields.next(), fields.next()) {
            let path = set.join(format!("{id}.wav"));
            clips.push(Clip { id: id.into(), part: part.into(), path, reference: reference.into() });
        }
    }
    if let Some(only) = only {
        clips.retain(|clip| clip.part == "extra" || only.split(',').any(|id| clip.id.contains(id)));
    }

    candor_pipelines::inference::init_runtime(&models.join("libonnxruntime.so")).map_err(|e| e.to_string())?;
    let vad = Arc::new(VadModel::load(&models.join("silero_vad.onnx")).map_err(|e| e.to_string())?);
    let stt = Arc::new(SpeechToText::load(&models.join("ggml-tiny.en.bin")).map_err(|e| e.to_string())?);
    // Per part: reference words and word errors.
    let mut totals: Vec<(String, f32, f32)> = Vec::new();
    for clip in &clips {
        let mut audio = vec![0.0_f32; (500 + offset_ms) * 16];
        audio.extend(read_wav(&clip.path)?);
        audio.extend(std::iter::repeat_n(0.0, 32_000));
        if let Some(kbps) = opus_kbps {
            audio = through_opus(&audio, kbps)?;
        }
        let engines = SpeechEngines { vad: vad.clone(), stt: Some(stt.clone()) };
        let options = SttOptions { threads: 1, ..Default::default() };
        let mut pipeline = SpeechPipeline::new(engines, Default::default(), options).map_err(|e| e.to_string())?;
        let (mut texts, mut decodes, mut partials, mut partial_ms) = (Vec::new(), Vec::new(), 0, 0);
        for packet in audio.chunks(320) {
            for event in pipeline.push(packet).map_err(|e| e.to_string())? {
                match event {
                    SpeechEvent::Final(turn) => {
                        decodes.push(format!("{} ms for {} ms", turn.decode_ms, turn.audio_ms));
                        texts.push(turn.transcript.text);
                    }
                    SpeechEvent::Partial { decode_ms, .. } => (partials, partial_ms) = (partials + 1, partial_ms + decode_ms),
                    _ => {}
                }
            }
        }
        let text = texts.join(" ");
        let wer = word_error_rate(&clip.reference, &text);
        let words = comparable_words(&clip.reference).len() as f32;
        println!(
            "{:28} {:8} {:5.1}%  finals decoded in {}; {partials} partials, {partial_ms} ms; {} decoded again\n    {text}",
            clip.id,
            clip.part,
            wer * 100.0,
            decodes.join(", "),
            pipeline.redecodes
        );
        match totals.iter_mut().find(|(part, ..)| *part == clip.part) {
            Some(total) => (total.1, total.2) = (total.1 + words, total.2 + wer * words),
            None => totals.push((clip.part.clone(), words, wer * words)),
        }
    }
    for (part, words, errors) in totals {
        println!("{part}: {:.1}% of {words} words", errors / words * 100.0);
    }
    Ok(())
}
