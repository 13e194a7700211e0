//! Video: decode VP8/H264 frames (already reassembled from RTP) and hand out RGB frames for analysis at a
//! capped rate; then read the candidate's face in them. Every encoded frame must be decoded (later frames depend
//! on earlier ones), but only frames the rate gate lets through are converted and analysed.
//!
//! Analysis, per frame: `detect` (BlazeFace) -> `landmarks` (face mesh, irises) -> `pose` (head pose, gaze, eye
//! contact) and `expression` (FER), put together by `analyze`. `image` cuts the crops the models take.

mod analyze;
mod decode;
pub mod detect;
pub mod expression;
pub mod image;
pub mod landmarks;
pub mod pose;

pub use analyze::{FaceAnalyzer, FaceReading, VisionSummary, VisionWindow};
pub use decode::{DecodedFrame, VideoCodec, VideoDecoder, VideoError};
pub use image::RgbImage;
