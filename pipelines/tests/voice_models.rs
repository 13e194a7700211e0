//! The interviewer's voice on the real Piper model: what it says, Whisper hears. Skipped when the models are
//! absent, unless CANDOR_TEST_REQUIRE_SERVICES is set.

#[allow(dead_code)] // the espeak-ng helper
mod support;

use candor_pipelines::audio::Resampler;
use candor_pipelines::inference::init_runtime;
use candor_pipelines::speech::stt::{SpeechToText, SttOptions};
use candor_pipelines::speech::text::word_error_rate;
use candor_pipelines::voice::tts::{Piper, Scales, TtsError, Voice};
use support::models_dir;

fn present() -> bool {
    let needed = ["libonnxruntime.so", "piper-joe/en_US-joe-medium.onnx", "ggml-tiny.en.bin"];
    if let Some(missing) = needed.iter().map(|n| models_dir().join(n)).find(|p| !p.exists()) {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "{} is missing", missing.display());
        eprintln!("skipped: {} is missing", missing.display());
        return false;
    }
    init_runtime(&models_dir().join("libonnxruntime.so")).unwrap();
    true
}

#[test]
fn what_the_piper_voice_says_whisper_hears() {
    if !present() {
        return;
    }
    let piper = Piper::load(&models_dir().join("piper-joe/en_US-joe-medium.onnx")).unwrap();
    let text = "Thanks for joining me today. Tell me about a project you are proud of, and what you learned.";
    // Noise-free synthesis: the voice's usual noise makes every rendering differ, and a test must judge one.
    let speech = piper.synthesize_with(text, Scales::exact(1.0)).unwrap();
    assert_eq!(piper.synthesize_with(text, Scales::exact(1.0)).unwrap().pcm, speech.pcm, "the same audio each time");
    let lively = Voice::Piper(piper).synthesize(text).unwrap();
    assert!((lively.seconds() - speech.seconds()).abs() < 1.5);
    assert_eq!(speech.rate, 22_050);
    assert!((3.0..10.0).contains(&speech.seconds()), "{} s", speech.seconds());
    let mut pcm16 = Vec::new();
    Resampler::new(speech.rate, 16_000).process(&speech.pcm, &mut pcm16);
    let stt = SpeechToText::load(&models_dir().join("ggml-tiny.en.bin")).unwrap();
    let heard = stt.transcribe(&pcm16, 0, &SttOptions { prompt: None, ..SttOptions::default() });
    let heard = heard.unwrap().text;
    let wer = word_error_rate(text, &heard);
    assert!(wer <= 0.15, "WER {wer:.2}: {heard:?}");
}

#[test]
fn a_broken_voice_is_a_clear_error_at_load() {
    if !present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("voice.onnx");
    std::fs::copy(models_dir().join("piper-joe/en_US-joe-medium.onnx"), &model).unwrap();
    let missing_config = Piper::load(&model).err().unwrap();
    assert!(matches!(missing_config, TtsError::Voice { .. }) && missing_config.to_string().contains("onnx.json"));
    std::fs::write(dir.path().join("voice.onnx.json"), br#"{"audio": {"sample_rate": 22050}}"#).unwrap();
    assert!(Piper::load(&model).err().unwrap().to_string().contains("phoneme_id_map"));
}
