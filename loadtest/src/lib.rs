//! Synthetic Candor participants over real WebRTC, speaking protocol v1: a candidate that sends Opus audio from
//! PCM (e.g. a WAV file) and VP8 video, or an observer that only receives. Each records the server's signaling
//! messages, the data-channel events and the media it receives. Tests use one; the load generator runs many.
//!
//! # Layout
//! - `client`: connect, negotiate, run the media, record what comes back.
//! - `media`: WAV and picture loading, and the synthetic VP8/H264 camera.
//! - `latency`: voice-to-voice latency as the candidate hears it.
//! - `load`: the load generator (`candor-loadtest` is its command line): many candidates, and what they cost
//!   the server.
//! - `capacity`: the capacity search over `load` runs of growing size, with its JSON, Markdown and SVG chart.
//! - `soak`: candidates coming and going for a long run; the server must end where it started.

pub mod capacity;
mod client;
pub mod impair;
pub mod latency;
pub mod load;
pub mod media;
pub mod soak;

pub use client::{Client, ClientError, Inbound, Options, Role};
