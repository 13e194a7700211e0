//! Any data-channel message parses or fails cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = candor_signaling::ClientEvent::parse(text);
    }
});
