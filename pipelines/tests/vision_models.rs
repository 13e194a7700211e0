//! The vision models as converted from TFLite by `models/convert_tflite.py`, run through ONNX Runtime on a real
//! portrait (the `test-portrait` entry of the manifest). They must load, keep their TFLite input and output
//! shapes, and see what is in the picture. Skipped when absent, unless CANDOR_TEST_REQUIRE_SERVICES is set.

mod support;

use std::path::PathBuf;
use std::process::Command;

use candor_pipelines::inference::{init_runtime, load_model};
use ort::value::Tensor;
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
fn portrait(path: &PathBuf) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg is installed by the test command");
    assert!(out.status.success() && out.stdout.len() == 512 * 512 * 3);
    out.stdout
}

/// A `size`-pixel square at (x, y) resampled (nearest) to n x n, NHWC floats in [0, 1]; mirrored if asked.
fn crop(rgb: &[u8], (x, y, size): (f32, f32, f32), n: usize, mirror: bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * n * 3);
    for row in 0..n {
        for col in 0..n {
            let col = if mirror { n - 1 - col } else { col };
            let sx = (x + (col as f32 + 0.5) * size / n as f32) as usize;
            let sy = (y + (row as f32 + 0.5) * size / n as f32) as usize;
            out.extend(rgb[(sy * 512 + sx) * 3..][..3].iter().map(|&v| f32::from(v) / 255.0));
        }
    }
    out
}

fn run(session: &mut ort::session::Session, input: &str, shape: [usize; 4], data: Vec<f32>) -> Vec<Vec<f32>> {
    let outputs = session.run(ort::inputs![input => Tensor::from_array((shape, data)).unwrap()]).unwrap();
    outputs.iter().map(|(_, value)| value.try_extract_tensor::<f32>().unwrap().1.to_vec()).collect()
}

const FACE: (f32, f32, f32) = (135.0, 15.0, 200.0);
const FLAG: (f32, f32, f32) = (0.0, 0.0, 150.0);

#[test]
fn the_converted_face_mesh_finds_the_face_and_its_features_in_a_portrait() {
    let Some(paths) = present(&["face-landmarks/face_landmark.onnx", "astronaut.png"]) else { return };
    let image = portrait(&paths[1]);
    let mut mesh = load_model(&paths[0]).unwrap();

    let outputs = run(&mut mesh, "input_1", [1, 192, 192, 3], crop(&image, FACE, 192, false));
    let (landmarks, presence) = (&outputs[0], outputs[1][0]);
    assert_eq!(landmarks.len(), 468 * 3);
    assert!(presence > 4.0, "a face is present: logit {presence}");
    let point = |i: usize| (landmarks[i * 3], landmarks[i * 3 + 1]);
    let (right_eye, left_eye, nose, mouth) = (point(33), point(263), point(1), point(13));
    assert!(right_eye.0 < nose.0 && nose.0 < left_eye.0, "eyes either side of the nose: {right_eye:?} {left_eye:?}");
    assert!(right_eye.1 < nose.1 && nose.1 < mouth.1, "eyes above the nose above the mouth");

    let background = run(&mut mesh, "input_1", [1, 192, 192, 3], crop(&image, FLAG, 192, false));
    assert!(background[1][0] < -2.0, "no face in the flag: logit {}", background[1][0]);
}

#[test]
fn the_converted_iris_model_follows_the_eye_within_its_crop() {
    let Some(paths) = present(&["face-landmarks/iris_landmark.onnx", "astronaut.png"]) else { return };
    let image = portrait(&paths[1]);
    let mut iris = load_model(&paths[0]).unwrap();
    // The subject's right eye is centred near (202, 101); her left eye (249, 103) goes in mirrored.
    let centred = run(&mut iris, "input_1", [1, 64, 64, 3], crop(&image, (170.0, 69.0, 64.0), 64, false));
    assert_eq!((centred[0].len(), centred[1].len()), (71 * 3, 5 * 3));
    let x = centred[1][0];
    assert!((x - 32.0).abs() < 6.0, "iris centre near the crop's centre: {x}");
    // The same eye with the crop moved 12 px right: the iris moves left in the crop (the model, trained on
    // centred eyes, pulls it a little back towards the middle).
    let moved = run(&mut iris, "input_1", [1, 64, 64, 3], crop(&image, (182.0, 69.0, 64.0), 64, false));
    assert!((5.0..=14.0).contains(&(x - moved[1][0])), "iris at {x} then {}", moved[1][0]);
    let mirrored = run(&mut iris, "input_1", [1, 64, 64, 3], crop(&image, (217.0, 71.0, 64.0), 64, true));
    assert!((mirrored[1][0] - 32.0).abs() < 6.0, "left eye, mirrored: {}", mirrored[1][0]);
}

#[test]
fn the_converted_expression_model_reads_a_smile_as_happy() {
    let Some(paths) = present(&["expression.onnx", "astronaut.png"]) else { return };
    let image = portrait(&paths[1]);
    let mut expression = load_model(&paths[0]).unwrap();
    let grey = |region| -> Vec<f32> {
        let rgb = crop(&image, region, 64, false);
        rgb.chunks_exact(3).map(|p| ((p[0] + p[1] + p[2]) / 3.0 - 0.5) * 2.0).collect()
    };
    const CLASSES: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
    let top = |p: &[f32]| CLASSES[p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0];

    let face = &run(&mut expression, "x", [1, 64, 64, 1], grey((175.0, 55.0, 120.0)))[0];
    assert_eq!(face.len(), 7);
    assert!((face.iter().sum::<f32>() - 1.0).abs() < 1e-3, "probabilities: {face:?}");
    assert_eq!(top(face), "happy", "{face:?}");
    assert!(face[3] > 0.8);
    let flag = &run(&mut expression, "x", [1, 64, 64, 1], grey(FLAG))[0];
    assert!(flag[3] < 0.5, "the flag is no smile: {flag:?}");
}
