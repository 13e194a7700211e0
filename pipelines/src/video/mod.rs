//! Video: decode VP8/H264 frames (already reassembled from RTP) and hand out RGB frames for analysis at a
//! capped rate. Every encoded frame must be decoded (later frames depend on earlier ones), but only frames the
//! rate gate lets through are converted and analysed.

mod decode;

pub use decode::{DecodedFrame, VideoCodec, VideoDecoder, VideoError};
