//! The vision models (converted from TFLite by `models/convert_tflite.py`) and the face analysis built on them,
//! on a real portrait (the manifest's `test-portrait`: a smiling astronaut looking into the camera). Skipped
//! when absent, unless CANDOR_TEST_REQUIRE_SERVICES is set.

#[allow(dead_code)] // the speech helpers
mod support;

use std::path::PathBuf;
use std::process::Command;

use candor_pipelines::inference::{ImageModel, init_runtime};
use candor_pipelines::video::image::Region;
use candor_pipelines::video::{FaceAnalyzer, FaceReading, RgbImage};
use support::models_dir;

fn present(names: &[&str]) -> Option<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = names.iter().map(|n| models_dir().join(n)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        assert!(
            std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(),
            "{} is missing: run models/fetch.py fetch and fetch test-portrait",
            missing.display()
        );
        eprintln!("skipped: {} is missing", missing.display());
        return None;
    }
    init_runtime(&models_dir().join("libonnxruntime.so")).unwrap();
    Some(paths)
}

/// The 512x512 portrait as RGB bytes, decoded by the ffmpeg command line tool.
fn portrait() -> Option<Vec<u8>> {
    let path = present(&["astronaut.png"])?.remove(0);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg is installed by the test command");
    assert!(out.status.success() && out.stdout.len() == 512 * 512 * 3);
    Some(out.stdout)
}

fn image(data: &[u8]) -> RgbImage<'_> {
    RgbImage { width: 512, height: 512, data }
}

/// A new `width` x `height` picture showing `region` of the portrait (scaled to the picture's height).
fn reframe(data: &[u8], region: Region, width: usize, height: usize, mirror: bool) -> Vec<u8> {
    let square = image(data).crop(&region, height, mirror, |v| v);
    let mut out = vec![0_u8; width * height * 3];
    let left = (width - height) / 2;
    for row in 0..height {
        for (col, value) in square[row * height * 3..][..height * 3].iter().enumerate() {
            out[(row * width + left) * 3 + col] = value.round() as u8;
        }
    }
    out
}

fn square(cx: f32, cy: f32, size: f32) -> Region {
    Region { cx, cy, size, angle: 0.0 }
}

const FACE: Region = Region { cx: 235.0, cy: 115.0, size: 200.0, angle: 0.0 };
const FLAG: Region = Region { cx: 75.0, cy: 75.0, size: 150.0, angle: 0.0 };

#[test]
fn the_converted_face_mesh_finds_the_face_and_its_features_in_a_portrait() {
    let (Some(paths), Some(data)) = (present(&["face-landmarks/face_landmark.onnx"]), portrait()) else { return };
    let mesh = ImageModel::load(&paths[0], &[192, 192, 3]).unwrap();
    assert!(mesh.batches(), "converted with a free batch dimension");
    let outputs = mesh.run(image(&data).crop(&FACE, 192, false, |v| v / 255.0)).unwrap();
    let (landmarks, presence) = (&outputs[0], outputs[1][0]);
    assert_eq!(landmarks.len(), 468 * 3);
    assert!(presence > 4.0, "a face is present: logit {presence}");
    let point = |i: usize| (landmarks[i * 3], landmarks[i * 3 + 1]);
    let (right_eye, left_eye, nose, mouth) = (point(33), point(263), point(1), point(13));
    assert!(right_eye.0 < nose.0 && nose.0 < left_eye.0, "eyes either side of the nose: {right_eye:?} {left_eye:?}");
    assert!(right_eye.1 < nose.1 && nose.1 < mouth.1, "eyes above the nose above the mouth");

    let background = mesh.run(image(&data).crop(&FLAG, 192, false, |v| v / 255.0)).unwrap();
    assert!(background[1][0] < -2.0, "no face in the flag: logit {}", background[1][0]);
}

#[test]
fn the_converted_iris_model_follows_the_eye_within_its_crop() {
    let (Some(paths), Some(data)) = (present(&["face-landmarks/iris_landmark.onnx"]), portrait()) else { return };
    let iris = ImageModel::load(&paths[0], &[64, 64, 3]).unwrap();
    let centre_x = |region: Region, mirror: bool| {
        let outputs = iris.run(image(&data).crop(&region, 64, mirror, |v| v / 255.0)).unwrap();
        assert_eq!((outputs[0].len(), outputs[1].len()), (71 * 3, 5 * 3));
        outputs[1][0]
    };
    // The subject's right eye is centred near (202, 101); her left eye (249, 103) goes in mirrored.
    let x = centre_x(square(202.0, 101.0, 64.0), false);
    assert!((x - 32.0).abs() < 6.0, "iris centre near the crop's centre: {x}");
    // The same eye with the crop moved 12 px right: the iris moves left in the crop (the model, trained on
    // centred eyes, pulls it a little back towards the middle).
    let moved = centre_x(square(214.0, 101.0, 64.0), false);
    assert!((5.0..=14.0).contains(&(x - moved)), "iris at {x} then {moved}");
    let mirrored = centre_x(square(249.0, 103.0, 64.0), true);
    assert!((mirrored - 32.0).abs() < 6.0, "left eye, mirrored: {mirrored}");
}

#[test]
fn the_converted_expression_model_reads_a_smile_as_happy() {
    let (Some(paths), Some(data)) = (present(&["expression.onnx"]), portrait()) else { return };
    let expression = ImageModel::load(&paths[0], &[64, 64, 1]).unwrap();
    let classify = |region: Region| {
        let grey = image(&data).crop_grey(&region, 64, |v| (v / 255.0 - 0.5) * 2.0);
        expression.run(grey).unwrap().remove(0)
    };
    let face = classify(square(235.0, 115.0, 120.0));
    assert_eq!(face.len(), 7);
    assert!((face.iter().sum::<f32>() - 1.0).abs() < 1e-3, "probabilities: {face:?}");
    assert!(face[3] > 0.8, "happy: {face:?}");
    assert!(classify(FLAG)[3] < 0.5, "the flag is no smile");
}

fn analyzer() -> Option<FaceAnalyzer> {
    present(&["blazeface_128.onnx", "face-landmarks", "expression.onnx"])?;
    Some(FaceAnalyzer::load(&models_dir()).unwrap())
}

fn analyze(analyzer: &FaceAnalyzer, data: &[u8], width: u32, height: u32) -> Option<FaceReading> {
    analyzer.analyze(&RgbImage { width, height, data }, None).unwrap()
}

#[test]
fn a_frontal_smiling_face_in_a_webcam_frame_is_found_looking_at_the_camera() {
    let (Some(analyzer), Some(data)) = (analyzer(), portrait()) else { return };
    // The portrait's upper part in a 640x480 frame, as a webcam would show a candidate.
    let frame = reframe(&data, square(256.0, 200.0, 400.0), 640, 480, false);
    let reading = analyze(&analyzer, &frame, 640, 480).expect("a face");
    // The face centre maps to ((235 - 56) * 1.2 + 80, (115 - 0) * 1.2) in the frame.
    let expected = ((235.0 - 56.0) * 1.2 + 80.0, 115.0 * 1.2);
    assert!((reading.centre.0 - expected.0).abs() < 20.0 && (reading.centre.1 - expected.1).abs() < 20.0);
    assert!(reading.head.yaw.abs() < 10.0 && reading.head.pitch.abs() < 15.0 && reading.head.roll.abs() < 8.0);
    assert!(reading.eye_contact, "{reading:?}");
    assert!(reading.expression[3] > 0.8, "happy: {:?}", reading.expression);

    let empty = reframe(&data, FLAG, 640, 480, false);
    assert_eq!(analyze(&analyzer, &empty, 640, 480), None, "no face in the flag");
}

#[test]
fn head_pose_is_mirrored_with_the_picture_and_roll_does_not_leak_into_yaw() {
    let (Some(analyzer), Some(data)) = (analyzer(), portrait()) else { return };
    let view = square(235.0, 130.0, 260.0);
    let upright = analyze(&analyzer, &reframe(&data, view, 320, 320, false), 320, 320).expect("a face");
    let mirrored = analyze(&analyzer, &reframe(&data, view, 320, 320, true), 320, 320).expect("a face");
    assert!((upright.head.yaw + mirrored.head.yaw).abs() < 3.0, "{:?} vs {:?}", upright.head, mirrored.head);
    assert!((upright.head.pitch - mirrored.head.pitch).abs() < 3.0);

    // The camera rolled by 25 degrees: the eye line tilts by as much, the rest of the pose stays.
    let rolled = Region { angle: 25_f32.to_radians(), ..view };
    let tilted = analyze(&analyzer, &reframe(&data, rolled, 320, 320, false), 320, 320).expect("a face");
    assert!((tilted.head.roll - (upright.head.roll - 25.0)).abs() < 5.0, "{:?} vs {:?}", tilted.head, upright.head);
    assert!((tilted.head.yaw - upright.head.yaw).abs() < 5.0 && (tilted.head.pitch - upright.head.pitch).abs() < 5.0);
    assert_eq!(tilted.eye_contact, upright.eye_contact);
}

#[test]
fn a_face_found_once_is_tracked_without_the_detector_and_found_again_when_lost() {
    let (Some(analyzer), Some(data)) = (analyzer(), portrait()) else { return };
    let frame = reframe(&data, square(256.0, 200.0, 400.0), 640, 480, false);
    let image = RgbImage { width: 640, height: 480, data: &frame };
    let first = analyzer.analyze(&image, None).unwrap().expect("a face");
    assert!(!first.tracked);
    let second = analyzer.analyze(&image, Some(first.next)).unwrap().expect("still the face");
    assert!(second.tracked, "found where it was, without the detector");
    let moved = ((second.centre.0 - first.centre.0).powi(2) + (second.centre.1 - first.centre.1).powi(2)).sqrt();
    assert!(moved < 5.0 && (second.head.yaw - first.head.yaw).abs() < 3.0, "{first:?} vs {second:?}");
    assert_eq!(second.eye_contact, first.eye_contact);
    // Looking in the wrong place (the face moved away): the detector finds it again.
    let elsewhere = Region { cx: 80.0, cy: 400.0, ..first.next };
    let found = analyzer.analyze(&image, Some(elsewhere)).unwrap().expect("found again");
    assert!(!found.tracked && (found.centre.0 - first.centre.0).abs() < 5.0);
}

#[test]
fn frames_of_many_streams_analysed_in_one_batch_read_as_each_alone() {
    let (Some(analyzer), Some(data)) = (analyzer(), portrait()) else { return };
    let webcam = reframe(&data, square(256.0, 200.0, 400.0), 640, 480, false);
    let mirrored = reframe(&data, square(235.0, 130.0, 260.0), 320, 320, true);
    let rolled = reframe(&data, Region { angle: 25_f32.to_radians(), ..square(235.0, 130.0, 260.0) }, 320, 320, false);
    let empty = reframe(&data, FLAG, 640, 480, false);
    let webcam = RgbImage { width: 640, height: 480, data: &webcam };
    let tracked = analyzer.analyze(&webcam, None).unwrap().expect("a face").next;
    let lost = Region { cx: 80.0, cy: 400.0, ..tracked };
    // Tracked, detected, lost and found again, no face: every path through the analysis in one batch.
    let frames = [
        (webcam, Some(tracked)),
        (RgbImage { width: 320, height: 320, data: &mirrored }, None),
        (RgbImage { width: 640, height: 480, data: &empty }, None),
        (webcam, Some(lost)),
        (RgbImage { width: 320, height: 320, data: &rolled }, None),
        (webcam, None),
    ];
    let together = analyzer.analyze_batch(&frames).unwrap();
    assert_eq!(together.len(), frames.len());
    assert_eq!(together.iter().map(Option::is_some).collect::<Vec<_>>(), [true, true, false, true, true, true]);
    assert_eq!(together.iter().map(|r| r.as_ref().is_some_and(|r| r.tracked)).collect::<Vec<_>>(), [
        true, false, false, false, false, false
    ]);
    for ((image, track), batched) in frames.iter().zip(&together) {
        let alone = analyzer.analyze(image, *track).unwrap();
        let (Some(alone), Some(batched)) = (alone, batched) else { continue };
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * a.abs().max(1.0);
        let pairs = [
            (alone.score, batched.score),
            (alone.centre.0, batched.centre.0),
            (alone.head.yaw, batched.head.yaw),
            (alone.head.pitch, batched.head.pitch),
            (alone.head.roll, batched.head.roll),
            (alone.gaze.0, batched.gaze.0),
            (alone.gaze.1, batched.gaze.1),
        ];
        assert!(pairs.iter().all(|&(a, b)| close(a, b)), "{alone:?} vs {batched:?}");
        assert!(alone.expression.iter().zip(batched.expression).all(|(&a, b)| close(a, b)));
        assert_eq!((alone.tracked, alone.eye_contact), (batched.tracked, batched.eye_contact));
    }
    assert!(analyzer.analyze_batch(&[]).unwrap().is_empty());
}
