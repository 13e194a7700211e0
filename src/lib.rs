//! Candor: a self-hostable AI mock-interview server.
//!
//! # Layout
//! - `config`: the one typed configuration, from `candor.toml` and `CANDOR_*` variables.
//! - `domain`: parsed values (emails, ids, roles, interview kinds) that the rest of the code passes around.
//! - `auth`: password hashing, access and refresh tokens.
//! - `store`: SQLite or PostgreSQL behind one `Store`; all SQL lives there.
//! - `live`: live sessions: WebRTC peers, media, the conversation with the interviewer, observers.
//! - `brain`: the LLM brain (an OpenAI-compatible endpoint) the interviewer may ask; the built-in brain and the
//!   whole interview logic are the `candor-interviewer` crate.
//! - `vault`: encryption at rest (master key, per-recording data keys, chunked AES-256-GCM); `recordings`: the
//!   sealed media files of consenting candidates, their replay, retention and erasure.
//! - `dataset`: training-data export (consented interviews as chat JSONL, personal data scrubbed).
//! - `api`: the HTTP API, its extractors and its OpenAPI document; `error`: the one error shape.
//! - `rate_limit`, `metrics`, `telemetry`: per-IP limits, Prometheus metrics, logs.
//! - `startup`: builds the application and serves it; `cli`: the `candor` command.

pub mod api;
pub mod auth;
pub mod brain;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod domain;
pub mod error;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod rate_limit;
pub mod recordings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod vault;

pub use startup::Application;
