//! Candor's media pipelines: frames in, PCM, images and typed measurements out. Nothing here knows about HTTP,
//! databases, sessions or sockets, and no stage reads the clock: callers pass timestamps.
//!
//! # Layout
//! - `audio`: Opus decoding, resampling, levels.
//! - `inference`: the ONNX Runtime, loaded once from the fetched library.
//! - `rtp`: RTP payloads back in order: the audio jitter buffer, whole video frames.
//! - `speech`: pitch, delivery (pace, fillers, pauses) and turn-taking.
//! - `video`: VP8/H264 decoding to analysis-size RGB frames at a capped rate; face analysis.
//! - `voice`: the interviewer's voice: text to speech, Opus encoding and real-time pacing with immediate stop.

pub mod audio;
pub mod inference;
pub mod rtp;
pub mod speech;
pub mod video;
pub mod voice;
