//! Face landmarks: the MediaPipe face mesh (468 points in 3-D) on a crop around the face, turned so the eyes are
//! level, then the iris model on a crop around each eye (the left eye mirrored, as the model expects). The crop
//! comes from the detector (`face_region`) or, while the face is tracked, from the previous frame's mesh
//! (`Landmarks::next_region`). Both models were converted from TFLite by `models/convert_tflite.py`.

use std::path::Path;

use super::detect::Detection;
use super::image::{Region, RgbImage};
use crate::inference::{ImageModel, InferenceError};

const MESH_SIZE: usize = 192;
const IRIS_SIZE: usize = 64;
/// The face crop is this much larger than the detector's box (MediaPipe's choice for the mesh model).
const MESH_SCALE: f32 = 1.5;
/// Each eye crop is this many times the distance between the eye's corners.
const EYE_SCALE: f32 = 2.3;
/// Mesh presence (after the sigmoid) under this means the crop holds no face.
const MIN_PRESENCE: f32 = 0.5;

/// Mesh indices (MediaPipe's face mesh topology). "Right" is the subject's right: the image's left.
pub mod point {
    pub const RIGHT_EYE_OUTER: usize = 33;
    pub const RIGHT_EYE_INNER: usize = 133;
    pub const LEFT_EYE_INNER: usize = 362;
    pub const LEFT_EYE_OUTER: usize = 263;
    pub const NOSE_TIP: usize = 1;
    pub const FOREHEAD: usize = 10;
    pub const CHIN: usize = 152;
    pub const RIGHT_CHEEK: usize = 234;
    pub const LEFT_CHEEK: usize = 454;
}

/// A face's landmarks in its own upright frame: the face crop's axes (x along the eyes, y down the face, z away
/// from the camera), in image pixels.
#[derive(Debug, Clone)]
pub struct Landmarks {
    pub presence: f32,
    pub mesh: Vec<[f32; 3]>,
    /// The face crop: maps the upright frame back to the image.
    pub region: Region,
    /// Each iris centre's offset from its eye's centre, in units of half the eye's width (x towards the image's
    /// right, y down): right eye, then left eye.
    pub irises: [(f32, f32); 2],
}

/// The crop the mesh model takes around a detected face.
pub fn face_region(face: &Detection) -> Region {
    Region { cx: face.cx, cy: face.cy, size: face.width.max(face.height) * MESH_SCALE, angle: face.roll() }
}

impl Landmarks {
    /// The square around the mesh (in its upright frame), its side `margin` times the mesh's larger extent.
    pub fn extent(&self, margin: f32) -> Region {
        let (mut low, mut high) = ([f32::MAX; 2], [f32::MIN; 2]);
        for p in &self.mesh {
            for axis in 0..2 {
                low[axis] = low[axis].min(p[axis]);
                high[axis] = high[axis].max(p[axis]);
            }
        }
        let region = self.region;
        let (cx, cy) = region.to_image(
            (low[0] + high[0]) / 2.0 / region.size + 0.5,
            (low[1] + high[1]) / 2.0 / region.size + 0.5,
        );
        Region { cx, cy, size: (high[0] - low[0]).max(high[1] - low[1]) * margin, angle: region.angle }
    }

    /// Where to look in the next frame: the mesh's extent enlarged as a detection's box would be, turned to
    /// the eye line (MediaPipe's tracking; the detector runs again only when the mesh loses the face).
    pub fn next_region(&self) -> Region {
        let (rx, ry) = self.in_image(point::RIGHT_EYE_OUTER);
        let (lx, ly) = self.in_image(point::LEFT_EYE_OUTER);
        Region { angle: (ly - ry).atan2(lx - rx), ..self.extent(MESH_SCALE) }
    }

    /// Image coordinates of mesh point `index`.
    pub fn in_image(&self, index: usize) -> (f32, f32) {
        let [x, y, _] = self.mesh[index];
        self.region.to_image(x / self.region.size + 0.5, y / self.region.size + 0.5)
    }
}

pub struct FaceMesh {
    mesh: ImageModel,
    iris: ImageModel,
}

impl FaceMesh {
    /// `dir` holds `face_landmark.onnx` and `iris_landmark.onnx`.
    pub fn load(dir: &Path) -> Result<Self, InferenceError> {
        Ok(Self {
            mesh: ImageModel::load(&dir.join("face_landmark.onnx"), &[MESH_SIZE, MESH_SIZE, 3])?,
            iris: ImageModel::load(&dir.join("iris_landmark.onnx"), &[IRIS_SIZE, IRIS_SIZE, 3])?,
        })
    }

    /// The meshes of the faces in each `(image, region)`, or `None` where the mesh model sees no face there, in
    /// one model call; their irises stay at the eyes' centres until `irises` fills them in.
    pub fn meshes(&self, crops: &[(RgbImage, Region)]) -> Result<Vec<Option<Landmarks>>, InferenceError> {
        let inputs = crops.iter().map(|(image, region)| image.crop(region, MESH_SIZE, false, |v| v / 255.0)).collect();
        let outputs = self.mesh.run_batch(inputs)?;
        crops.iter().zip(outputs).map(|((_, region), outputs)| mesh(*region, &outputs)).collect()
    }

    /// Fills in each face's irises: both eyes of every face in one model call.
    pub fn irises(&self, faces: Vec<(RgbImage, &mut Landmarks)>) -> Result<(), InferenceError> {
        let (inputs, mirrored): (Vec<_>, Vec<_>) = faces
            .iter()
            .flat_map(|(image, face)| {
                [
                    eye(image, face, point::RIGHT_EYE_OUTER, point::RIGHT_EYE_INNER, false),
                    eye(image, face, point::LEFT_EYE_INNER, point::LEFT_EYE_OUTER, true),
                ]
            })
            .unzip();
        let outputs = self.iris.run_batch(inputs)?;
        let mut centres = mirrored.into_iter().zip(outputs).map(|(mirror, outputs)| iris_offset(&outputs, mirror));
        for (_, face) in faces {
            let (Some(right), Some(left)) = (centres.next(), centres.next()) else { break };
            face.irises = [right?, left?];
        }
        Ok(())
    }
}

/// The mesh model's outputs for the crop `region` as landmarks, or `None` when it sees no face.
fn mesh(region: Region, outputs: &[Vec<f32>]) -> Result<Option<Landmarks>, InferenceError> {
    let (Some(points), Some(&logit)) = (outputs.first(), outputs.get(1).and_then(|p| p.first())) else {
        return Err(InferenceError::Run("the face mesh gave too few outputs".into()));
    };
    let presence = 1.0 / (1.0 + (-logit).exp());
    if presence < MIN_PRESENCE || points.len() < 468 * 3 {
        return Ok(None);
    }
    // Crop pixels -> the upright frame in image pixels, centred on the crop.
    let scale = region.size / MESH_SIZE as f32;
    let half = MESH_SIZE as f32 / 2.0;
    let mesh = points.chunks_exact(3).map(|p| [(p[0] - half) * scale, (p[1] - half) * scale, p[2] * scale]).collect();
    Ok(Some(Landmarks { presence, mesh, region, irises: [(0.0, 0.0); 2] }))
}

/// The iris model's input for the eye whose corners are `a` (image-left) and `b`, and whether it is mirrored.
fn eye(image: &RgbImage, face: &Landmarks, a: usize, b: usize, mirror: bool) -> (Vec<f32>, bool) {
    let (ax, ay) = face.in_image(a);
    let (bx, by) = face.in_image(b);
    let width = ((bx - ax).powi(2) + (by - ay).powi(2)).sqrt().max(1.0);
    let region =
        Region { cx: (ax + bx) / 2.0, cy: (ay + by) / 2.0, size: width * EYE_SCALE, angle: (by - ay).atan2(bx - ax) };
    (image.crop(&region, IRIS_SIZE, mirror, |v| v / 255.0), mirror)
}

/// The iris centre's offset within its eye, from the iris model's outputs.
fn iris_offset(outputs: &[Vec<f32>], mirror: bool) -> Result<(f32, f32), InferenceError> {
    let Some(&[x, y, ..]) = outputs.get(1).map(Vec::as_slice) else {
        return Err(InferenceError::Run("the iris model gave too few outputs".into()));
    };
    // Crop pixels from the centre, in half eye widths; mirrored crops are flipped back.
    let half_eye = IRIS_SIZE as f32 / EYE_SCALE / 2.0;
    let dx = (x - IRIS_SIZE as f32 / 2.0) / half_eye;
    Ok((if mirror { -dx } else { dx }, (y - IRIS_SIZE as f32 / 2.0) / half_eye))
}
