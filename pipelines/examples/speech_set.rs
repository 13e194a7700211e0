//! The real-speech test set through `SpeechPipeline` alone (VAD, turns, partials, settled segments, finals; no
//! WebRTC), one thread, in 20 ms packets: each clip's finals against its reference, and how long each final
//! decode took. Quicker than the live test for trying a change to the pipeline on every clip, and
//! deterministic for a given alignment, so a sweep of `--offset` shows which words flip by chance.
//!
//! `cargo run --release -p candor-pipelines --example speech_set -- [--offset MS[,MS...]] [--only ID,ID]
//! [--clip WAV TEXT] [--opus KBPS] [--offline]` after `python3 models/fetch.py fetch test-speech` (`--offset`
//! runs the set once behind each amount of extra silence; `--only` picks clips of the set by id; `--clip` adds
//! one; `--opus` sends each clip through Opus at that bit rate first, resampled to 48 kHz and back as on the
//! live path; `--offline` also decodes each clip as the live test's reference does, whole window and no prompt,
//! and counts the runs of a clip more than one point above it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

#[allow(dead_code)] // the espeak-ng helper
#[path = "../tests/support/mod.rs"]
mod support;

use candor_pipelines::audio::{OpusDecoder, Resampler, wav_samples};
use candor_pipelines::speech::TimedWord;
use candor_pipelines::speech::delivery::analyze;
use candor_pipelines::speech::pipeline::{SpeechEngines, SpeechEvent, SpeechPipeline};
use candor_pipelines::speech::stt::{SpeechToText, SttOptions};
use candor_pipelines::speech::text::{comparable_words, word_error_rate};
use candor_pipelines::speech::vad::VadModel;
use candor_pipelines::voice::VoiceEncoder;
use support::{models_dir, voice_span_ms};

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

/// What one run of a clip heard: WER, and pace as the session's rolling `wpm` counts it (content words over the
/// finals' speaking time).
struct Heard {
    wer: f32,
    content_words: usize,
    speaking_ms: u64,
}

/// The pace a listener would time on a clip said in one breath: the reference's content words over the span of
/// the voice.
fn true_wpm(clip: &Clip, pcm: &[f32]) -> f32 {
    let words: Vec<TimedWord> = clip.reference.split_whitespace().map(|w| TimedWord::new(w, 0, 0)).collect();
    analyze(&words).content_words as f32 / (voice_span_ms(pcm) as f32 / 60_000.0)
}

/// One clip through a fresh pipeline, behind half a second and `offset_ms` of silence.
fn live(clip: &Clip, offset_ms: usize, opus_kbps: Option<i32>, engines: SpeechEngines) -> Result<Heard, String> {
    let mut audio = vec![0.0_f32; (500 + offset_ms) * 16];
    audio.extend(read_wav(&clip.path)?);
    audio.extend(std::iter::repeat_n(0.0, 32_000));
    if let Some(kbps) = opus_kbps {
        audio = through_opus(&audio, kbps)?;
    }
    let options = SttOptions { threads: 1, ..Default::default() };
    let mut pipeline = SpeechPipeline::new(engines, Default::default(), options).map_err(|e| e.to_string())?;
    let (mut texts, mut decodes, mut partials, mut partial_ms) = (Vec::new(), Vec::new(), 0, 0);
    let (mut content_words, mut speaking_ms) = (0, 0);
    for packet in audio.chunks(320) {
        for event in pipeline.push(packet).map_err(|e| e.to_string())? {
            match event {
                SpeechEvent::Final(turn) => {
                    decodes.push(format!("{} ms for {} ms", turn.decode_ms, turn.audio_ms));
                    texts.push(turn.transcript.text);
                    (content_words, speaking_ms) =
                        (content_words + turn.delivery.content_words, speaking_ms + turn.delivery.speaking_ms);
                }
                SpeechEvent::Partial { decode_ms, .. } => (partials, partial_ms) = (partials + 1, partial_ms + decode_ms),
                _ => {}
            }
        }
    }
    let text = texts.join(" ");
    let wer = word_error_rate(&clip.reference, &text);
    println!(
        "{:28} {:8} {offset_ms:3} ms {:5.1}%  finals decoded in {}; {partials} partials, {partial_ms} ms; {} decoded again\n    {text}",
        clip.id,
        clip.part,
        wer * 100.0,
        decodes.join(", "),
        pipeline.redecodes
    );
    Ok(Heard { wer, content_words, speaking_ms })
}

fn main() -> Result<(), String> {
    let models = models_dir();
    let (mut offsets, mut only, mut clips, mut opus_kbps, mut offline) = (vec![0], None::<String>, Vec::new(), None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--offset" => {
                let list = args.next().ok_or("--offset MS[,MS...]")?;
                offsets = list.split(',').map(str::parse).collect::<Result<_, _>>().map_err(|_| "--offset MS[,MS...]")?;
            }
            "--only" => only = Some(args.next().ok_or("--only ID,ID")?),
            "--opus" => opus_kbps = Some(args.next().and_then(|v| v.parse().ok()).ok_or("--opus KBPS")?),
            "--offline" => offline = true,
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
    // Per part: reference words, and word errors live (summed over the offsets) and offline.
    let mut totals: Vec<(String, f32, f32, f32)> = Vec::new();
    let mut summary = Vec::new();
    let mut over_bar = 0;
    let mut paces = Vec::new();
    for clip in &clips {
        let words = comparable_words(&clip.reference).len() as f32;
        let reference = if offline {
            let text = stt.transcribe(&read_wav(&clip.path)?, 0, &SttOptions::offline(1)).map_err(|e| e.to_string())?.text;
            let wer = word_error_rate(&clip.reference, &text);
            println!("{:28} {:8} offline {:5.1}%\n    {text}", clip.id, clip.part, wer * 100.0);
            Some(wer)
        } else {
            None
        };
        let mut wers = Vec::new();
        let (mut content_words, mut speaking_ms) = (0, 0);
        for &offset in &offsets {
            let engines = SpeechEngines { vad: vad.clone(), stt: Some(stt.clone()) };
            let heard = live(clip, offset, opus_kbps, engines)?;
            wers.push(heard.wer);
            (content_words, speaking_ms) = (content_words + heard.content_words, speaking_ms + heard.speaking_ms);
        }
        let (truth, measured) =
            (true_wpm(clip, &read_wav(&clip.path)?), content_words as f32 / (speaking_ms.max(1) as f32 / 60_000.0));
        let error = (measured / truth - 1.0) * 100.0;
        paces.push(format!("{:28} {:8} true {truth:4.0} wpm, measured {measured:4.0} ({error:+.1}%)", clip.id, clip.part));
        let over = reference.map_or(0, |r| wers.iter().filter(|&&w| w > r + 0.01 + 1e-4).count());
        over_bar += over;
        let live_column = wers.iter().map(|w| format!("{:5.1}", w * 100.0)).collect::<Vec<_>>().join(" ");
        let offline_column = reference.map_or("-".into(), |r| format!("{:5.1}", r * 100.0));
        let flag = if over > 0 { format!("  over by more than a point {over}x") } else { String::new() };
        summary.push(format!("{:28} {:8} offline {offline_column}  live {live_column}{flag}", clip.id, clip.part));
        let live_errors = wers.iter().sum::<f32>() * words;
        let offline_errors = reference.unwrap_or(0.0) * words;
        match totals.iter_mut().find(|(part, ..)| *part == clip.part) {
            Some(total) => (total.1, total.2, total.3) = (total.1 + words, total.2 + live_errors, total.3 + offline_errors),
            None => totals.push((clip.part.clone(), words, live_errors, offline_errors)),
        }
    }
    println!("\npace (a clip said in pauses has them in its true span, not in its speaking time)\n{}", paces.join("\n"));
    println!("\nclip | part | offline WER % | live WER % at offsets {offsets:?} ms");
    println!("{}", summary.join("\n"));
    for (part, words, live_errors, offline_errors) in totals {
        let live = live_errors / offsets.len() as f32 / words * 100.0;
        let offline = if offline { format!(" (offline {:.1}%)", offline_errors / words * 100.0) } else { String::new() };
        println!("{part}: {live:.1}% of {words} words{offline}");
    }
    if offline {
        println!("runs of a clip more than one point above its offline decode: {over_bar} of {}", clips.len() * offsets.len());
    }
    Ok(())
}
