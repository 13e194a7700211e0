//! Head pose and gaze from landmarks: geometry only. Angles are in degrees. Yaw is positive when the candidate
//! turns to their left (towards the image's right), pitch positive when they look up; roll is the eye line's
//! tilt in the image.
//!
//! Yaw comes from the depth difference across the cheeks, pitch from the depth difference between forehead and
//! chin, both in the face's upright frame, so roll does not leak into them. (On a portrait looking into the
//! camera, pitch reads about -11: the mesh's forehead leans a little towards the camera.) Gaze adds the irises' offsets
//! within the eyes (an iris at an eye corner is about `EYE_RANGE` degrees of eye rotation) to the head pose.
//! Eye contact means the gaze points at the camera, within a tolerance that allows for a screen just below it.

use super::landmarks::{Landmarks, point};

/// Eye rotation (degrees) when the iris sits at an eye corner.
const EYE_RANGE: f32 = 45.0;
/// Gaze within this of the camera counts as eye contact: sideways, and up or down.
const CONTACT_YAW: f32 = 12.0;
const CONTACT_PITCH: f32 = 15.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

pub fn head_pose(face: &Landmarks) -> Pose {
    let m = &face.mesh;
    let (right, left) = (m[point::RIGHT_CHEEK], m[point::LEFT_CHEEK]);
    let yaw = (left[2] - right[2]).atan2(left[0] - right[0]).to_degrees();
    let (top, chin) = (m[point::FOREHEAD], m[point::CHIN]);
    // Looking down pushes the chin away from the camera (larger z) and the forehead towards it.
    let pitch = -(chin[2] - top[2]).atan2(chin[1] - top[1]).to_degrees();
    Pose { yaw, pitch, roll: face.region.angle.to_degrees() }
}

/// Where the eyes point: head pose plus the irises' mean offset, as (yaw, pitch).
pub fn gaze(face: &Landmarks, head: &Pose) -> (f32, f32) {
    let [(rx, ry), (lx, ly)] = face.irises;
    let (dx, dy) = (((rx + lx) / 2.0).clamp(-1.0, 1.0), ((ry + ly) / 2.0).clamp(-1.0, 1.0));
    (head.yaw + dx * EYE_RANGE, head.pitch - dy * EYE_RANGE)
}

pub fn eye_contact((yaw, pitch): (f32, f32)) -> bool {
    yaw.abs() <= CONTACT_YAW && pitch.abs() <= CONTACT_PITCH
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::image::Region;

    /// A face whose cheeks and chin sit at the given depths (z grows away from the camera).
    fn face(cheek_depths: (f32, f32), forehead_chin_depths: (f32, f32), irises: [(f32, f32); 2]) -> Landmarks {
        let mut mesh = vec![[0.0; 3]; 468];
        mesh[point::RIGHT_CHEEK] = [-50.0, 0.0, cheek_depths.0];
        mesh[point::LEFT_CHEEK] = [50.0, 0.0, cheek_depths.1];
        mesh[point::FOREHEAD] = [0.0, -60.0, forehead_chin_depths.0];
        mesh[point::CHIN] = [0.0, 60.0, forehead_chin_depths.1];
        let region = Region { cx: 0.0, cy: 0.0, size: 200.0, angle: 0.3 };
        Landmarks { presence: 1.0, mesh, region, irises }
    }

    #[test]
    fn turning_left_is_positive_yaw_and_looking_down_negative_pitch() {
        let frontal = head_pose(&face((0.0, 0.0), (0.0, 0.0), [(0.0, 0.0); 2]));
        assert!(frontal.yaw.abs() < 1e-3 && frontal.pitch.abs() < 1e-3);
        assert!((frontal.roll - 0.3_f32.to_degrees()).abs() < 1e-3);
        // Left cheek 50 px further away over a 100 px span: 26.6 degrees to the left.
        let left = head_pose(&face((-25.0, 25.0), (0.0, 0.0), [(0.0, 0.0); 2]));
        assert!((left.yaw - 26.57).abs() < 0.1, "{left:?}");
        let down = head_pose(&face((0.0, 0.0), (-20.0, 20.0), [(0.0, 0.0); 2]));
        assert!(down.pitch < frontal.pitch - 15.0, "{down:?}");
    }

    #[test]
    fn eyes_turned_against_the_head_can_still_meet_the_camera() {
        let straight = face((0.0, 0.0), (0.0, 0.0), [(0.0, 0.0); 2]);
        let pose = Pose { yaw: 0.0, pitch: 0.0, roll: 0.0 };
        assert!(eye_contact(gaze(&straight, &pose)));
        // Irises halfway to the image's right: eyes look about 22 degrees to the candidate's left.
        let aside = face((0.0, 0.0), (0.0, 0.0), [(0.5, 0.0); 2]);
        assert!(!eye_contact(gaze(&aside, &pose)));
        // Head turned 20 degrees to the right, eyes turned back towards the camera: contact.
        let turned = Pose { yaw: -20.0, pitch: 0.0, roll: 0.0 };
        let (yaw, _) = gaze(&face((0.0, 0.0), (0.0, 0.0), [(0.45, 0.0); 2]), &turned);
        assert!(yaw.abs() < 2.0 && eye_contact((yaw, 0.0)));
    }
}
