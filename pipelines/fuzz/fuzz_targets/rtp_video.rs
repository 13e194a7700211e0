//! Whatever video RTP a stranger sends (any payload, order, timestamps and marker bits): whole frames are
//! reassembled without a panic and go through FFmpeg's VP8 or H.264 decoder and the scaler; what comes out is
//! a well-formed picture no larger than asked.
//! The first byte picks the codec; then records: sequence number (2 bytes, little-endian), timestamp step
//! (1 byte), marker (lowest bit of 1 byte), payload length (1 byte), payload.
#![no_main]

use bytes::Bytes;
use candor_pipelines::rtp::{FrameAssembler, H264Depacketizer};
use candor_pipelines::video::{VideoCodec, VideoDecoder};
use libfuzzer_sys::fuzz_target;
use rtc_rtp::codec::vp8::Vp8Packet;
use rtc_rtp::header::Header;
use rtc_rtp::packetizer::Depacketizer;
use rtc_rtp::Packet;

const MAX_SIDE: u32 = 160;

fn run<D: Depacketizer>(codec: VideoCodec, depacketizer: D, mut rest: &[u8]) {
    let mut assembler = FrameAssembler::new(depacketizer);
    let mut decoder = VideoDecoder::new(codec, MAX_SIDE, 0).expect("a video decoder");
    let mut timestamp = 0u32;
    let mut t_ms = 0;
    while let [lo, hi, step, flags, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        timestamp = timestamp.wrapping_add(u32::from(*step) * 3000);
        let header = Header { sequence_number: u16::from_le_bytes([*lo, *hi]), timestamp, marker: flags & 1 == 1, ..Header::default() };
        let packet = Packet { header, payload: Bytes::copy_from_slice(&tail[..len]) };
        rest = &tail[len..];
        for frame in assembler.push(packet) {
            t_ms += 100;
            if let Ok(Some(picture)) = decoder.decode(&frame, t_ms) {
                assert!(picture.width <= MAX_SIDE && picture.height <= MAX_SIDE);
                assert_eq!(picture.rgb.len(), picture.width as usize * picture.height as usize * 3);
            }
        }
        let _ = assembler.take_lost();
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((codec, rest)) if codec % 2 == 0 => run(VideoCodec::Vp8, Vp8Packet::default(), rest),
        Some((_, rest)) => run(VideoCodec::H264, H264Depacketizer::default(), rest),
        None => {}
    }
});
