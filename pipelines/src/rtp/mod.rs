//! RTP payloads put back in order for the decoders: `Reorder`, the audio jitter buffer, and `FrameAssembler`,
//! which makes whole encoded video frames of the packets, with
//! `H264Depacketizer` for H.264. Sans-IO, bounded by packet counts.

mod frames;
mod h264;
mod reorder;

pub use frames::FrameAssembler;
pub use h264::H264Depacketizer;
pub use reorder::{Released, Reorder};
