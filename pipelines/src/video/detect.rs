//! Face detection: MediaPipe BlazeFace (short range, 128x128) through ONNX Runtime. The frame is letterboxed
//! into a square; the model scores 896 anchors (a 16x16 grid with 2 anchors per cell, an 8x8 grid with 6) and
//! regresses a box and six keypoints relative to each. The best-scoring face wins: an interview has one
//! candidate.

use std::path::Path;

use super::image::{Region, RgbImage};
use crate::inference::{ImageModel, InferenceError};

const SIZE: usize = 128;
/// Faces scoring under this (after the sigmoid) are not faces.
const MIN_SCORE: f32 = 0.5;

/// A face in image coordinates. "Right" and "left" are the subject's: the right eye is on the image's left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub score: f32,
    pub cx: f32,
    pub cy: f32,
    pub width: f32,
    pub height: f32,
    pub right_eye: (f32, f32),
    pub left_eye: (f32, f32),
}

impl Detection {
    /// Head roll: the angle of the line from the right eye to the left eye (radians, 0 when level).
    pub fn roll(&self) -> f32 {
        (self.left_eye.1 - self.right_eye.1).atan2(self.left_eye.0 - self.right_eye.0)
    }
}

pub struct FaceDetector {
    model: ImageModel,
    /// Anchor centres in units of the square input, in the model's output order.
    anchors: Vec<(f32, f32)>,
}

impl FaceDetector {
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        let model = ImageModel::load(path, &[SIZE, SIZE, 3])?;
        let mut anchors = Vec::with_capacity(896);
        for (grid, per_cell) in [(16, 2), (8, 6)] {
            for row in 0..grid {
                for col in 0..grid {
                    let centre = ((col as f32 + 0.5) / grid as f32, (row as f32 + 0.5) / grid as f32);
                    anchors.extend(std::iter::repeat_n(centre, per_cell));
                }
            }
        }
        Ok(Self { model, anchors })
    }

    /// The most confident face in the image, if any.
    pub fn detect(&self, image: &RgbImage) -> Result<Option<Detection>, InferenceError> {
        Ok(self.detect_batch(&[*image])?.pop().flatten())
    }

    /// `detect` for each image, in one model call.
    pub fn detect_batch(&self, images: &[RgbImage]) -> Result<Vec<Option<Detection>>, InferenceError> {
        let squares: Vec<Region> = images.iter().map(letterbox).collect();
        let inputs = images.iter().zip(&squares).map(|(image, square)| image.crop(square, SIZE, false, |v| v / 127.5 - 1.0));
        let outputs = self.model.run_batch(inputs.collect())?;
        squares.iter().zip(outputs).map(|(square, outputs)| self.best(square, &outputs)).collect()
    }

    /// The best-scoring face among the model's outputs for the square `square` of an image.
    fn best(&self, square: &Region, outputs: &[Vec<f32>]) -> Result<Option<Detection>, InferenceError> {
        let [fine_scores, coarse_scores, fine_boxes, coarse_boxes] = outputs else {
            return Err(InferenceError::Run(format!("BlazeFace gave {} outputs, expected 4", outputs.len())));
        };
        let scores = fine_scores.iter().chain(coarse_scores);
        let Some((best, logit)) = scores.enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else { return Ok(None) };
        let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
        if score < MIN_SCORE || best >= self.anchors.len() {
            return Ok(None);
        }
        let raw = if best < 512 { fine_boxes.get(best * 16..) } else { coarse_boxes.get((best - 512) * 16..) };
        let Some(raw) = raw.and_then(|raw| raw.get(..16)) else {
            return Err(InferenceError::Run("BlazeFace gave too few boxes".into()));
        };
        let (ax, ay) = self.anchors[best];
        // Offsets are in input pixels from the anchor centre; sizes in input pixels.
        let point = |i: usize| square.to_image(ax + raw[i] / SIZE as f32, ay + raw[i + 1] / SIZE as f32);
        let (cx, cy) = point(0);
        Ok(Some(Detection {
            score,
            cx,
            cy,
            width: raw[2] / SIZE as f32 * square.size,
            height: raw[3] / SIZE as f32 * square.size,
            right_eye: point(4),
            left_eye: point(6),
        }))
    }
}

/// The square around the whole image (its longer side), which the model sees letterboxed.
fn letterbox(image: &RgbImage) -> Region {
    let side = image.width.max(image.height) as f32;
    Region { cx: image.width as f32 / 2.0, cy: image.height as f32 / 2.0, size: side, angle: 0.0 }
}
