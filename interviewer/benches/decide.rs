//! How long the built-in interviewer takes to decide after an answer (grade it, choose a follow-up or the next
//! question, emit what to say): the part of voice-to-voice that is ours alone.
//! `cargo bench -p candor-interviewer --bench decide`; figures go into pipelines/benches/RESULTS.md.

use candor_interviewer::answer::typed_words;
use candor_interviewer::plan::{InterviewKind, Level};
use candor_interviewer::{Input, Interviewer, Setup, Timing};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const ANSWER: &str = "At my last company our checkout service kept timing out at peak. My task was to fix it \
    before the sales week. First I profiled it and found a slow query, then I added an index and a cache, and I \
    wrote a load test so it would not come back. As a result p99 latency fell from two seconds to 300 \
    milliseconds, and we had no incidents that week.";

fn setup(job_description: Option<&str>) -> Setup {
    Setup {
        id_prefix: "bench".into(),
        role: "Backend engineer".into(),
        kind: InterviewKind::Mixed,
        level: Level::Mid,
        question_count: 5,
        job_description: job_description.map(str::to_string),
        variant: 0,
        llm: false,
        redact: Vec::new(),
        timing: Timing::default(),
    }
}

/// An interviewer that has asked its first question and is listening.
fn listening(job_description: Option<&str>) -> Interviewer {
    let mut machine = Interviewer::new(setup(job_description));
    let greeting = machine.handle(Input::Connected, 0);
    for action in greeting {
        if let candor_interviewer::Action::Say { utterance, .. } = action {
            machine.handle(Input::UtteranceEnded { utterance, interrupted: false, spoken: String::new() }, 20_000);
        }
    }
    machine
}

fn decide(c: &mut Criterion) {
    let jd = "We are hiring a backend engineer to build and operate our payments APIs in Go and PostgreSQL on \
              Kubernetes; you will own performance, on-call, and mentor juniors.";
    for (name, job) in [("answer", None), ("answer_with_job_description", Some(jd))] {
        c.bench_function(&format!("interviewer/decide_{name}"), |b| {
            b.iter_batched(
                || (listening(job), typed_words(ANSWER)),
                |(mut machine, words)| machine.handle(Input::CandidateFinished { words, wpm: Some(150.0) }, 40_000),
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, decide);
criterion_main!(benches);
