//! The vision side of a live session: `VisionFeed` takes the decoded frames (about five a second) and has them
//! analysed, one at a time per session, in batches with every other session's (`face_batcher`). Queue policy:
//! one frame in flight and one waiting; a newer frame replaces the waiting one, so stale frames are dropped (and
//! counted), never queued. Readings fold into the per-second `vision.metrics` (also stored as samples) and the
//! sparse eye-contact cue.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candor_pipelines::inference::InferenceError;
use candor_pipelines::video::image::Region;
use candor_pipelines::video::{DecodedFrame, FaceAnalyzer, FaceReading, RgbImage, VisionWindow};
use candor_signaling::EventBody;
use candor_signaling::events::CueKind;
use tokio::sync::oneshot;

use super::SessionContext;
use super::batch::Batcher;
use super::engines::Engines;
use super::pool::InferencePool;
use crate::domain::SampleKind;

/// Seconds with a face over which eye contact is judged for the cue, and the share under which it comes.
const CONTACT_WINDOW: usize = 20;
const LOW_CONTACT: f32 = 0.3;
/// Frames in one batch at most: on one CPU core 8 take about 80 ms, as long as a worker should be kept from
/// speech that may be waiting for it.
const MAX_BATCH: usize = 8;

/// A frame to analyse, with where the previous frame's face was.
type Frame = (DecodedFrame, Option<Region>);

/// One frame's analysis.
pub struct Analysed {
    reading: Result<Option<FaceReading>, InferenceError>,
    /// The frame's share of its batch's time.
    elapsed: Duration,
    /// The batch's size, given to its first frame only (so each batch is counted once).
    batch: Option<usize>,
}

pub type FaceBatcher = Batcher<Frame, Analysed>;

/// Face analysis on `pool` for every session's frames, gathered into batches.
pub fn face_batcher(analyzer: Arc<FaceAnalyzer>, pool: Arc<InferencePool>) -> Arc<FaceBatcher> {
    Batcher::new(pool, MAX_BATCH, move |frames: Vec<Frame>| {
        let started = Instant::now();
        let images: Vec<_> = frames
            .iter()
            .map(|(frame, track)| (RgbImage { width: frame.width, height: frame.height, data: &frame.rgb }, *track))
            .collect();
        let readings = match analyzer.analyze_batch(&images) {
            Ok(readings) => readings.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e); frames.len()],
        };
        let elapsed = started.elapsed() / u32::try_from(frames.len()).unwrap_or(u32::MAX).max(1);
        let batch = |i: usize| (i == 0).then_some(frames.len());
        readings.into_iter().enumerate().map(|(i, reading)| Analysed { reading, elapsed, batch: batch(i) }).collect()
    })
}

pub struct VisionFeed {
    ctx: SessionContext,
    engines: Arc<Engines>,
    waiting: Option<DecodedFrame>,
    in_flight: Option<oneshot::Receiver<Analysed>>,
    window: VisionWindow,
    /// Where the last frame's face was: the next frame looks there first (no detector while it is found).
    track: Option<Region>,
    /// Eye-contact share of recent seconds that showed a face.
    recent_contact: VecDeque<f32>,
}

impl VisionFeed {
    pub fn new(ctx: SessionContext, engines: Arc<Engines>) -> Self {
        Self {
            ctx,
            engines,
            waiting: None,
            in_flight: None,
            window: VisionWindow::default(),
            track: None,
            recent_contact: VecDeque::new(),
        }
    }

    /// A newly decoded frame: analysed next, unless a newer one comes first.
    pub fn push(&mut self, frame: DecodedFrame) {
        if self.engines.vision.is_none() {
            return;
        }
        if self.waiting.replace(frame).is_some() {
            self.ctx.metrics.video_frames_stale.inc();
        }
        self.submit();
    }

    fn submit(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let (Some(batcher), Some(frame)) = (self.engines.vision.as_ref(), self.waiting.take()) else { return };
        self.in_flight = Some(batcher.submit((frame, self.track)));
    }

    /// Completes when a frame's analysis is done (`None`: the pool was full of speech work, which must not
    /// wait, and refused it); pending while nothing is in flight.
    pub async fn done(&mut self) -> Option<Analysed> {
        match self.in_flight.as_mut() {
            Some(rx) => rx.await.ok(),
            None => std::future::pending().await,
        }
    }

    pub fn handle(&mut self, analysed: Option<Analysed>) {
        self.in_flight = None;
        // Refused: this frame goes, a newer one will come.
        let Some(Analysed { reading, elapsed, batch }) = analysed else {
            return self.ctx.metrics.video_frames_stale.inc();
        };
        self.ctx.metrics.vision_frame.observe(elapsed.as_secs_f64());
        if let Some(frames) = batch {
            self.ctx.metrics.vision_batch.observe(frames as f64);
        }
        match reading {
            Ok(reading) => {
                self.track = reading.as_ref().map(|r| r.next);
                self.window.push(reading.as_ref());
            }
            Err(e) => {
                self.track = None;
                tracing::warn!(error = %e, "face analysis failed on a frame");
            }
        }
        self.submit();
    }

    /// The last second's `vision.metrics` (face fields `null` when nothing was analysed), stored and sent, and
    /// the eye-contact cue when it has been low for a while.
    pub async fn second(&mut self, frame_size: (u32, u32), fps: f32) {
        let summary = self.window.take();
        let round = |v: f32, step: f32| (v / step).round() * step;
        let field = |value: Option<f32>, step| value.map(|v| round(v, step));
        let body = EventBody::VisionMetrics {
            face: summary.as_ref().map(|s| s.face),
            eye_contact: field(summary.as_ref().and_then(|s| s.eye_contact), 0.01),
            head_yaw: field(summary.as_ref().and_then(|s| s.head_yaw), 0.1),
            head_pitch: field(summary.as_ref().and_then(|s| s.head_pitch), 0.1),
            expression: summary.as_ref().and_then(|s| s.expression.as_ref()).map(|labels| {
                labels.iter().map(|&(label, p)| (label.to_string(), round(p, 0.01))).collect::<BTreeMap<_, _>>()
            }),
            frame_width: Some(frame_size.0),
            frame_height: Some(frame_size.1),
            fps: Some(round(fps, 0.1)),
        };
        if summary.is_some() {
            let t_ms = self.ctx.events.t_ms() / 1000 * 1000;
            self.ctx.recorder.sample(SampleKind::Vision, t_ms, &body);
        }
        self.ctx.events.send(body).await;

        if let Some(contact) = summary.and_then(|s| s.eye_contact) {
            self.recent_contact.push_back(contact);
            if self.recent_contact.len() > CONTACT_WINDOW {
                self.recent_contact.pop_front();
            }
            let mean = self.recent_contact.iter().sum::<f32>() / self.recent_contact.len() as f32;
            if self.recent_contact.len() == CONTACT_WINDOW && mean < LOW_CONTACT {
                let text = "Look into the camera now and then: to the interviewer it reads as eye contact.";
                self.ctx.events.cue(CueKind::EyeContact, text).await;
            }
        }
    }
}
