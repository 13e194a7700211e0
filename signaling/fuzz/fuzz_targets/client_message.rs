//! Any text a client sends on the signaling socket parses or fails cleanly; what parses survives summarising.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(candor_signaling::ClientMessage::Offer(sdp)) = candor_signaling::ClientMessage::parse(text) {
        let _ = sdp.summarize_offer();
    }
    if let Ok(sdp) = candor_signaling::Sdp::parse(text) {
        let _ = sdp.summarize_offer();
        let _ = candor_signaling::rewrite_sdp_host_addresses(sdp.as_str(), "203.0.113.1");
    }
});
