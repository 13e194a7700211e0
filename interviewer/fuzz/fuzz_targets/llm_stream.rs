//! Whatever bytes an LLM endpoint streams back, cut into chunks anywhere: the stream parser never panics, gives
//! the same result however the bytes are cut, and what it hands on goes through the reply checks without a
//! panic. The first byte picks the chunk size; the rest is the stream.
#![no_main]

use candor_interviewer::answer::typed_words;
use candor_interviewer::brain::{decision_in, parse_judgement};
use candor_interviewer::stream::{ReplyStream, StreamError};
use libfuzzer_sys::fuzz_target;

fn run(stream: &[u8], chunk: usize) -> (Result<Option<String>, StreamError>, String) {
    let mut parser = ReplyStream::new();
    for piece in stream.chunks(chunk) {
        match parser.push(piece) {
            Ok(None) => {}
            other => return (other, parser.content().to_string()),
        }
    }
    (Ok(None), parser.content().to_string())
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else { return };
    let whole = run(stream, stream.len().max(1));
    let cut = run(stream, usize::from(size % 64) + 1);
    assert_eq!(whole, cut, "the result depends on where the chunks were cut");
    let words = typed_words("I added an index and the latency dropped by half.");
    let _ = decision_in(&whole.1);
    if let Ok(Some(reply)) = &whole.0 {
        let _ = decision_in(reply);
        let _ = parse_judgement(reply, &words);
    }
});
