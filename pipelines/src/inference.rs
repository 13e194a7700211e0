//! The ONNX Runtime: loaded once per process from the shared library the models tool fetched (ort's
//! `load-dynamic`; nothing is downloaded at build or run time). ONNX Runtime allows one environment per
//! process, so every model shares it.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    #[error("ONNX Runtime library {path}: {reason}")]
    Runtime { path: String, reason: String },
    #[error("model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("inference failed: {0}")]
    Run(String),
}

/// The process's environment once loaded, kept alive for as long as the process runs.
static RUNTIME: OnceLock<Environment> = OnceLock::new();

/// Loads ONNX Runtime from `library` unless it is loaded already (then `library` is not looked at). A failure is
/// not remembered: a later call with a good library still succeeds.
pub fn init_runtime(library: &Path) -> Result<(), InferenceError> {
    static LOADING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    if RUNTIME.get().is_some() {
        return Ok(());
    }
    let fail = |reason: String| InferenceError::Runtime { path: library.display().to_string(), reason };
    if !library.exists() {
        return Err(fail("not found (run models/fetch.py)".into()));
    }
    let builder = ort::init_from(library).map_err(|e| fail(e.to_string()))?;
    let environment = builder.with_name("candor").build().map_err(|e| fail(e.to_string()))?;
    let _ = RUNTIME.set(environment);
    Ok(())
}

/// A session for the ONNX model at `path`, single-threaded (parallelism comes from running many streams).
pub fn load_model(path: &Path) -> Result<ort::session::Session, InferenceError> {
    let fail = |reason: String| InferenceError::Model { path: path.display().to_string(), reason };
    let Some(environment) = RUNTIME.get() else { return Err(fail("ONNX Runtime is not loaded".into())) };
    if !path.exists() {
        return Err(fail("not found (run models/fetch.py)".into()));
    }
    let builder = ort::session::Session::builder(environment).map_err(|e| fail(e.to_string()))?;
    let builder_error =
        |e: ort::Error<ort::session::builder::SessionBuilder>| fail(ort::Error::<()>::from(e).to_string());
    let builder = builder.with_intra_threads(1).map_err(builder_error)?;
    let mut builder = builder.with_inter_threads(1).map_err(builder_error)?;
    builder.commit_from_file(path).map_err(|e| fail(e.to_string()))
}
