//! Whatever audio RTP a stranger sends (any payload, sequence numbers in any order, repeated, wrapping): the
//! jitter buffer releases packets in sequence with every gap accounted for, and the Opus decoder and the
//! resampler take whatever comes without a panic, within the decoder's frame bound.
//! Records: sequence number (2 bytes, little-endian), payload length (1 byte), payload.
#![no_main]

use candor_pipelines::audio::{OPUS_RATE, OpusDecoder, PIPELINE_RATE, Resampler};
use candor_pipelines::rtp::{Released, Reorder};
use libfuzzer_sys::fuzz_target;

/// As the server runs it: 160 ms of 20 ms packets.
const DEPTH: usize = 8;
/// The longest Opus packet, in 48 kHz samples.
const MAX_FRAME: usize = OPUS_RATE as usize * 120 / 1000;

fuzz_target!(|data: &[u8]| {
    let mut reorder = Reorder::new(DEPTH);
    let mut decoder = OpusDecoder::new().expect("an Opus decoder");
    let mut resampler = Resampler::new(OPUS_RATE, PIPELINE_RATE);
    let (mut pcm48, mut pcm16) = (Vec::new(), Vec::new());
    let mut expected: Option<u16> = None;
    let mut rest = data;
    let mut flushed = false;
    loop {
        let released = match rest {
            [lo, hi, len, tail @ ..] => {
                let len = usize::from(*len).min(tail.len());
                let seq = u16::from_le_bytes([*lo, *hi]);
                let payload = tail[..len].to_vec();
                rest = &tail[len..];
                reorder.push(seq, (seq, payload))
            }
            _ if !flushed => {
                flushed = true;
                reorder.flush()
            }
            _ => break,
        };
        pcm48.clear();
        for item in released {
            match item {
                Released::Lost(n) => {
                    assert!(n > 0, "an empty gap released");
                    let next = expected.expect("a gap before any packet");
                    expected = Some(next.wrapping_add(n as u16));
                    let _ = decoder.conceal(&mut pcm48);
                }
                Released::Packet((seq, payload)) => {
                    assert!(expected.is_none_or(|e| e == seq), "released {seq}, expected {expected:?}");
                    expected = Some(seq.wrapping_add(1));
                    let before = pcm48.len();
                    if decoder.decode(&payload, &mut pcm48).is_err() {
                        assert_eq!(pcm48.len(), before, "a refused packet added audio");
                    }
                    assert!(pcm48.len() - before <= MAX_FRAME);
                }
            }
        }
        resampler.process(&pcm48, &mut pcm16);
        assert!(pcm16.iter().all(|s| s.is_finite()));
    }
    assert!(reorder.is_empty(), "a flush leaves nothing waiting");
});
