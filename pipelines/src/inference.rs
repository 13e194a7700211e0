//! The ONNX Runtime: loaded once per process from the shared library the models tool fetched (ort's
//! `load-dynamic`; nothing is downloaded at build or run time). ONNX Runtime allows one environment per
//! process, so every model shares it.
//!
//! Models run on the CPU unless the process prefers CUDA (`prefer_device`) and this build has the `cuda` feature:
//! then each model is loaded with ONNX Runtime's CUDA execution provider, and when that cannot be had (a CPU-only
//! runtime library, no CUDA libraries, no device) it is loaded for the CPU instead, and `device` says why.

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
    // ONNX Runtime's usage telemetry is on unless turned off. This stops its events; the `candor` binary also sets
    // ORT_DISABLE_TELEMETRY, which stops the rest (the device id, the one event logged while this is built).
    let environment = builder.with_name("candor").with_telemetry(false).build().map_err(|e| fail(e.to_string()))?;
    let _ = RUNTIME.set(environment);
    Ok(())
}

/// Where ONNX models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

/// The device models should run on, and where the last one loaded runs (with why, when not the preferred one).
static DEVICE: Mutex<(Device, Option<String>)> = Mutex::new((Device::Cpu, None));

/// Models loaded from now on try `device` first.
pub fn prefer_device(device: Device) {
    *DEVICE.lock().unwrap_or_else(|p| p.into_inner()) = (device, None);
}

/// Where models run: `cpu`, `cuda`, or `cpu` with why CUDA could not be had.
pub fn device() -> String {
    match &*DEVICE.lock().unwrap_or_else(|p| p.into_inner()) {
        (Device::Cpu, None) => "cpu".into(),
        (Device::Cuda, None) => "cuda".into(),
        (_, Some(why)) => format!("cpu (CUDA unavailable: {})", why.trim()),
    }
}

type Builder = ort::session::builder::SessionBuilder;

/// `builder` with the preferred device's execution provider, or as it was (the CPU) when that fails.
fn on_preferred_device(builder: Builder) -> Builder {
    let mut state = DEVICE.lock().unwrap_or_else(|p| p.into_inner());
    if state.0 == Device::Cpu {
        return builder;
    }
    let (builder, why) = with_cuda(builder);
    state.1 = why;
    builder
}

#[cfg(feature = "cuda")]
fn with_cuda(builder: Builder) -> (Builder, Option<String>) {
    let cuda = ort::ep::CUDA::default().build().error_on_failure();
    match builder.with_execution_providers([cuda]) {
        Ok(builder) => (builder, None),
        Err(e) => {
            let why = e.to_string();
            (e.recover(), Some(why))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(builder: Builder) -> (Builder, Option<String>) {
    (builder, Some("this build has no CUDA support (build with --features gpu)".into()))
}

/// A session for the ONNX model at `path`, single-threaded (parallelism comes from running many streams), on the
/// preferred device when it can be had.
pub fn load_model(path: &Path) -> Result<ort::session::Session, InferenceError> {
    let fail = |reason: String| InferenceError::Model { path: path.display().to_string(), reason };
    let Some(environment) = RUNTIME.get() else { return Err(fail("ONNX Runtime is not loaded".into())) };
    if !path.exists() {
        return Err(fail("not found (run models/fetch.py)".into()));
    }
    let builder = ort::session::Session::builder(environment).map_err(|e| fail(e.to_string()))?;
    let builder_error = |e: ort::Error<Builder>| fail(ort::Error::<()>::from(e).to_string());
    let builder = builder.with_intra_threads(1).map_err(builder_error)?;
    let mut builder = on_preferred_device(builder.with_inter_threads(1).map_err(builder_error)?);
    builder.commit_from_file(path).map_err(|e| fail(e.to_string()))
}

/// A model with one f32 image input, shared by every stream (ONNX Runtime sessions run one call at a time). A
/// model whose first input dimension is free (the converted vision models' `batch`) runs many images in one
/// call; one with a fixed batch of 1 runs them one by one, so callers need not know which they hold.
pub struct ImageModel {
    session: Mutex<ort::session::Session>,
    input: String,
    /// One image's shape, without the batch dimension.
    item: Vec<usize>,
    batches: bool,
}

impl ImageModel {
    /// Loads the model for images of shape `item` (without the batch dimension) and checks it runs on a blank
    /// one (and on two at once, where it batches), so a broken file fails at start.
    pub fn load(path: &Path, item: &[usize]) -> Result<Self, InferenceError> {
        let session = load_model(path)?;
        let first = session.inputs().first();
        let input = first.map(|i| i.name().to_string()).unwrap_or_default();
        let batches = first.and_then(|i| i.dtype().tensor_shape()).and_then(|shape| shape.first().copied()) == Some(-1);
        let model = Self { session: Mutex::new(session), input, item: item.to_vec(), batches };
        let blank = || vec![0.0; item.iter().product()];
        let checks = if batches { vec![blank(), blank()] } else { vec![blank()] };
        model.run_batch(checks).map_err(|e| InferenceError::Model {
            path: path.display().to_string(),
            reason: format!("does not run on a blank {item:?} input: {e}"),
        })?;
        Ok(model)
    }

    /// Whether many images go in one call (the model's batch dimension is free).
    pub fn batches(&self) -> bool {
        self.batches
    }

    /// Every output for one image, flattened, in the model's output order.
    pub fn run(&self, image: Vec<f32>) -> Result<Vec<Vec<f32>>, InferenceError> {
        self.call(1, image)
    }

    /// `run` for each image, in one call where the model batches.
    pub fn run_batch(&self, images: Vec<Vec<f32>>) -> Result<Vec<Vec<Vec<f32>>>, InferenceError> {
        if !self.batches || images.len() < 2 {
            return images.into_iter().map(|image| self.run(image)).collect();
        }
        let count = images.len();
        let outputs = self.call(count, images.concat())?;
        let mut each = vec![Vec::with_capacity(outputs.len()); count];
        for output in outputs {
            let size = output.len() / count;
            for (image, chunk) in each.iter_mut().zip(output.chunks_exact(size.max(1))) {
                image.push(chunk.to_vec());
            }
        }
        Ok(each)
    }

    fn call(&self, count: usize, data: Vec<f32>) -> Result<Vec<Vec<f32>>, InferenceError> {
        let run = |e: ort::Error| InferenceError::Run(e.to_string());
        let shape: Vec<usize> = std::iter::once(count).chain(self.item.iter().copied()).collect();
        let tensor = ort::value::Tensor::from_array((shape, data)).map_err(run)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs![self.input.as_str() => tensor]).map_err(run)?;
        outputs.iter().map(|(_, value)| Ok(value.try_extract_tensor::<f32>().map_err(run)?.1.to_vec())).collect()
    }
}
