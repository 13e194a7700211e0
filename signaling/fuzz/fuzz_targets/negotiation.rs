//! A sequence of frames (split on NUL) never panics the negotiation rules, and every refusal is an error reply.
#![no_main]

use candor_signaling::{Action, Negotiation, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut negotiation = Negotiation::new();
    for frame in data.split(|b| *b == 0) {
        let Ok(text) = std::str::from_utf8(frame) else { continue };
        for action in negotiation.handle_text(text) {
            if let Action::Reply(reply) = action {
                assert!(matches!(reply, ServerMessage::Error { .. }));
            }
        }
    }
});
