//! Any text offered as SDP is parsed and summarised without a panic, and an accepted offer has what the server
//! needs: live audio with Opus, and no more media sections than it takes.
#![no_main]

use candor_signaling::Sdp;
use candor_signaling::limits::MAX_MEDIA_SECTIONS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sdp) = Sdp::parse(text) else { return };
    if let Ok(summary) = sdp.summarize_offer() {
        assert!(summary.audio.codecs.iter().any(|c| c == "opus"));
        let sections = text.lines().filter(|l| l.starts_with("m=")).count();
        assert!(sections <= MAX_MEDIA_SECTIONS, "{sections} media sections accepted");
    }
});
