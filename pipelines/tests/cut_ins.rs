//! Cut-ins on hesitant answers: answers spoken in pieces, with pauses of 0.8 to 1.5 s mid-answer after a filler,
//! a conjunction or an unfinished phrase, streamed through the whole speech pipeline (VAD, partials, the decode
//! ahead, the turn detector). A final transcript before the answer's last piece is the interviewer cutting in.
//! Run with `--nocapture` for the rate; pipelines/benches/RESULTS.md records it. Skipped without the models.

#[allow(dead_code)] // the real-speech helper
mod support;

use candor_pipelines::speech::pipeline::{SpeechEngines, SpeechEvent, SpeechPipeline};
use candor_pipelines::speech::stt::{SpeechToText, SttOptions};
use candor_pipelines::speech::vad::VadModel;
use support::{models_dir, speak};

/// Each answer's pieces; a hesitant pause follows every piece but the last.
const ANSWERS: [&[&str]; 12] = [
    &["In my last role I led the migration of our billing service, and", "we moved one customer group at a time."],
    &["We had a problem with the, um,", "the payment retries, so", "I wrote a small tool to replay them."],
    &["The first thing I did was talk to the team, because", "nobody knew who owned the service."],
    &["I think the hardest part was, uh,", "getting the data team to agree on the schema."],
    &["We measured the latency before and after, and", "it dropped by about forty percent."],
    &["My manager asked me to, um,", "lead the incident review, which", "I had never done before."],
    &["So we split the work into three parts: first", "the database, then", "the queue, and", "then the API."],
    &["I would probably start with the, er,", "the logs, to see where the time goes."],
    &["It took us about two weeks, but", "we finished before the deadline."],
    &["What I learned is that, um,", "small steps are easier to review, and", "easier to roll back."],
    &["The customer was unhappy with the", "response times, so", "we added a cache in front of the search."],
    &["I disagreed with my lead about the design, so", "we wrote down both options and", "asked the team to vote."],
];
/// The pauses, in turn (milliseconds).
const PAUSES_MS: [usize; 4] = [800, 1000, 1200, 1500];
const WPM: u32 = 150;

fn engines() -> Option<SpeechEngines> {
    let dir = models_dir();
    let (library, vad, stt) = (dir.join("libonnxruntime.so"), dir.join("silero_vad.onnx"), dir.join("ggml-tiny.en.bin"));
    if ![&library, &vad, &stt].iter().all(|p| p.exists()) {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "models missing: run models/fetch.py");
        eprintln!("skipped: the speech models are not fetched");
        return None;
    }
    candor_pipelines::inference::init_runtime(&library).unwrap();
    let vad = std::sync::Arc::new(VadModel::load(&vad).unwrap());
    Some(SpeechEngines { vad, stt: Some(std::sync::Arc::new(SpeechToText::load(&stt).unwrap())) })
}

/// The speech without espeak-ng's own leading and trailing silence (a few hundred ms), so that a pause is as
/// long as it says.
fn trimmed(pcm: Vec<f32>) -> Vec<f32> {
    let loud = |s: &f32| s.abs() > 0.01;
    let (Some(first), Some(last)) = (pcm.iter().position(loud), pcm.iter().rposition(loud)) else { return pcm };
    pcm[first..=last].to_vec()
}

/// Streams every answer (with a second of silence before it and three after) in 100 ms packets; returns the
/// hesitant pauses and the cut-ins among them.
fn cut_ins(engines: &SpeechEngines, loaded: bool) -> (usize, usize) {
    let (mut pauses, mut cut_ins) = (0, 0);
    for (index, pieces) in ANSWERS.iter().enumerate() {
        let mut audio = vec![0.0_f32; 16_000];
        for (k, piece) in pieces.iter().enumerate() {
            audio.extend(trimmed(speak(piece, WPM)));
            if k + 1 < pieces.len() {
                audio.extend(std::iter::repeat_n(0.0, PAUSES_MS[(index + k) % PAUSES_MS.len()] * 16));
                pauses += 1;
            }
        }
        audio.extend(std::iter::repeat_n(0.0, 3 * 16_000));
        let mut pipeline = SpeechPipeline::new(engines.clone(), Default::default(), SttOptions::default()).unwrap();
        let mut finals = Vec::new();
        for packet in audio.chunks(1600) {
            // Loaded: other inference jobs run and wait, so the decode ahead runs late and partials are shed.
            pipeline.set_load(loaded, loaded, 0.0);
            for event in pipeline.push(packet).unwrap() {
                if let SpeechEvent::Final(turn) = event {
                    finals.push(turn.transcript.text);
                }
            }
        }
        assert!(!finals.is_empty(), "answer {index} was never finalised");
        if finals.len() > 1 {
            eprintln!("cut in ({}): {finals:?}", if loaded { "loaded" } else { "idle" });
        }
        cut_ins += finals.len() - 1;
    }
    (pauses, cut_ins)
}

/// At most 3% of hesitant pauses cut in on, on an idle machine and on a busy one (where the turn detector must
/// not decide on a stale partial's words). With 19 pauses that is none.
#[test]
fn hesitant_answers_are_not_cut_in_on_idle_or_loaded() {
    let Some(engines) = engines() else { return };
    for loaded in [false, true] {
        let (pauses, cut_ins) = cut_ins(&engines, loaded);
        let rate = cut_ins as f32 / pauses as f32;
        let load = if loaded { "loaded" } else { "idle" };
        println!("cut-ins ({load}): {cut_ins} of {pauses} hesitant pauses ({:.1}%)", rate * 100.0);
        assert!(rate <= 0.03, "{load}: {cut_ins} cut-ins in {pauses} hesitant pauses");
    }
}
