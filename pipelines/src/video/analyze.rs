//! One frame in, one reading out: find the face (where the previous frame's mesh says it is, else with the
//! detector), take its landmarks and irises, work out head pose, gaze and eye contact, and classify the
//! expression. `VisionWindow` folds readings into the per-second summary that `vision.metrics` carries.

use std::path::Path;

use super::detect::FaceDetector;
use super::expression::{EXPRESSIONS, ExpressionModel};
use super::image::{Region, RgbImage};
use super::landmarks::{FaceMesh, Landmarks, face_region};
use super::pose::{Pose, eye_contact, gaze, head_pose};
use crate::inference::InferenceError;

/// The expression crop is the mesh's extent enlarged by this (FER was trained on loosely cropped faces).
const EXPRESSION_MARGIN: f32 = 1.1;

/// What one frame shows of the candidate's face.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceReading {
    /// Confidence, 0 to 1: the detector's, or the mesh's while tracking.
    pub score: f32,
    /// Found where the previous frame's face was, without running the detector.
    pub tracked: bool,
    /// Where to look for the face in the next frame (pass it to `analyze`).
    pub next: Region,
    /// Centre of the face in the image (pixels).
    pub centre: (f32, f32),
    pub head: Pose,
    /// Where the eyes point (yaw, pitch in degrees; 0, 0 is the camera).
    pub gaze: (f32, f32),
    pub eye_contact: bool,
    /// Probabilities in the order of `EXPRESSIONS`.
    pub expression: [f32; 7],
}

pub struct FaceAnalyzer {
    detector: FaceDetector,
    mesh: FaceMesh,
    expression: ExpressionModel,
}

impl FaceAnalyzer {
    /// Loads `blazeface_128.onnx`, `face-landmarks/` and `expression.onnx` from the models directory.
    pub fn load(models: &Path) -> Result<Self, InferenceError> {
        Ok(Self {
            detector: FaceDetector::load(&models.join("blazeface_128.onnx"))?,
            mesh: FaceMesh::load(&models.join("face-landmarks"))?,
            expression: ExpressionModel::load(&models.join("expression.onnx"))?,
        })
    }

    /// The candidate's face in `image`, or `None` when there is no face. `track` is the previous reading's
    /// `next` region, if any: when the face is still there the detector does not run.
    pub fn analyze(&self, image: &RgbImage, track: Option<Region>) -> Result<Option<FaceReading>, InferenceError> {
        Ok(self.analyze_batch(&[(*image, track)])?.pop().flatten())
    }

    /// `analyze` for the frames of many streams at once, each `(image, track)`: every model runs once over all
    /// of them (the detector over those where no face was found where it was). One call per model is what lets
    /// a GPU pay off, and it saves a little on a CPU too.
    pub fn analyze_batch(&self, frames: &[(RgbImage, Option<Region>)]) -> Result<Vec<Option<FaceReading>>, InferenceError> {
        // Each frame's landmarks, confidence, and whether they were found where the face was.
        let mut found: Vec<Option<(Landmarks, f32, bool)>> = vec![None; frames.len()];
        let tracked: Vec<(usize, (RgbImage, Region))> =
            frames.iter().enumerate().filter_map(|(i, (image, track))| Some((i, (*image, (*track)?)))).collect();
        let meshes = self.mesh.meshes(&tracked.iter().map(|(_, crop)| *crop).collect::<Vec<_>>())?;
        for ((i, _), landmarks) in tracked.iter().zip(meshes) {
            found[*i] = landmarks.map(|landmarks| {
                let presence = landmarks.presence;
                (landmarks, presence, true)
            });
        }

        // Frames where no face was, or where it was lost: the detector, then the detected faces' meshes.
        let searched: Vec<usize> = (0..frames.len()).filter(|&i| found[i].is_none()).collect();
        let detections = self.detector.detect_batch(&searched.iter().map(|&i| frames[i].0).collect::<Vec<_>>())?;
        let detected: Vec<_> = searched
            .iter()
            .zip(detections)
            .filter_map(|(&i, detection)| detection.map(|d| (i, d.score, (frames[i].0, face_region(&d)))))
            .collect();
        let meshes = self.mesh.meshes(&detected.iter().map(|(_, _, crop)| *crop).collect::<Vec<_>>())?;
        for ((i, score, _), landmarks) in detected.iter().zip(meshes) {
            found[*i] = landmarks.map(|landmarks| (landmarks, *score, false));
        }

        let faces = found.iter_mut().zip(frames).filter_map(|(face, (image, _))| Some((*image, &mut face.as_mut()?.0)));
        self.mesh.irises(faces.collect())?;
        let crops: Vec<(RgbImage, Region)> = found
            .iter()
            .zip(frames)
            .filter_map(|(face, (image, _))| Some((*image, face.as_ref()?.0.extent(EXPRESSION_MARGIN))))
            .collect();
        let mut expressions = self.expression.classify(&crops)?.into_iter().zip(crops);
        found
            .into_iter()
            .map(|face| {
                let Some((landmarks, score, tracked)) = face else { return Ok(None) };
                let Some((expression, (_, face))) = expressions.next() else {
                    return Err(InferenceError::Run("the expression model gave too few results".into()));
                };
                let head = head_pose(&landmarks);
                let gaze = gaze(&landmarks, &head);
                Ok(Some(FaceReading {
                    score,
                    tracked,
                    next: landmarks.next_region(),
                    centre: (face.cx, face.cy),
                    head,
                    gaze,
                    eye_contact: eye_contact(gaze),
                    expression,
                }))
            })
            .collect()
    }
}

/// Readings of the frames analysed in one interval (a second, live).
#[derive(Debug, Default, Clone)]
pub struct VisionWindow {
    frames: u32,
    faces: u32,
    contact: u32,
    yaw: f32,
    pitch: f32,
    expression: [f32; 7],
}

/// A window's summary: the `vision.metrics` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSummary {
    /// A face was in at least half of the frames.
    pub face: bool,
    /// Share of the frames with a face in which the candidate looked at the camera, and their mean head pose
    /// and expression; `None` without a face.
    pub eye_contact: Option<f32>,
    pub head_yaw: Option<f32>,
    pub head_pitch: Option<f32>,
    pub expression: Option<Vec<(&'static str, f32)>>,
}

impl VisionWindow {
    pub fn push(&mut self, reading: Option<&FaceReading>) {
        self.frames += 1;
        let Some(reading) = reading else { return };
        self.faces += 1;
        self.contact += u32::from(reading.eye_contact);
        self.yaw += reading.head.yaw;
        self.pitch += reading.head.pitch;
        for (sum, p) in self.expression.iter_mut().zip(reading.expression) {
            *sum += p;
        }
    }

    /// The summary so far (`None` before any frame), and a fresh window.
    pub fn take(&mut self) -> Option<VisionSummary> {
        let window = std::mem::take(self);
        if window.frames == 0 {
            return None;
        }
        let faces = window.faces as f32;
        let with_face = |value: f32| (window.faces > 0).then_some(value / faces);
        Some(VisionSummary {
            face: window.faces * 2 >= window.frames,
            eye_contact: with_face(window.contact as f32),
            head_yaw: with_face(window.yaw),
            head_pitch: with_face(window.pitch),
            expression: (window.faces > 0)
                .then(|| EXPRESSIONS.iter().zip(window.expression).map(|(&label, p)| (label, p / faces)).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(contact: bool, yaw: f32, happy: f32) -> FaceReading {
        let mut expression = [0.0; 7];
        expression[3] = happy;
        expression[6] = 1.0 - happy;
        let head = Pose { yaw, pitch: 0.0, roll: 0.0 };
        let next = Region { cx: 0.0, cy: 0.0, size: 1.0, angle: 0.0 };
        FaceReading {
            score: 0.9,
            tracked: false,
            next,
            centre: (0.0, 0.0),
            head,
            gaze: (yaw, 0.0),
            eye_contact: contact,
            expression,
        }
    }

    #[test]
    fn a_window_averages_the_frames_with_a_face() {
        let mut window = VisionWindow::default();
        assert_eq!(window.take(), None);
        window.push(Some(&reading(true, 10.0, 1.0)));
        window.push(Some(&reading(false, 20.0, 0.0)));
        window.push(None);
        let summary = window.take().unwrap();
        assert!(summary.face);
        assert_eq!(summary.eye_contact, Some(0.5));
        assert_eq!(summary.head_yaw, Some(15.0));
        let expression = summary.expression.unwrap();
        assert_eq!(expression[3], ("happy", 0.5));
        assert_eq!(window.take(), None, "taking starts a new window");

        window.push(None);
        window.push(None);
        window.push(Some(&reading(true, 0.0, 1.0)));
        let summary = window.take().unwrap();
        assert!(!summary.face, "one frame in three is not a face on camera");
        assert_eq!(summary.eye_contact, Some(1.0));
    }
}
