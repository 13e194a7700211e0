//! The vision side of a live session: `VisionFeed` takes the decoded frames (about five a second) and analyses
//! them on the inference pool, one at a time. Queue policy: one frame in flight and one waiting; a newer frame
//! replaces the waiting one, so stale frames are dropped (and counted), never queued. Readings fold into the
//! per-second `vision.metrics` (also stored as samples) and the sparse eye-contact cue.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candor_pipelines::inference::InferenceError;
use candor_pipelines::video::image::Region;
use candor_pipelines::video::{DecodedFrame, FaceReading, RgbImage, VisionWindow};
use candor_signaling::EventBody;
use candor_signaling::events::CueKind;
use tokio::sync::oneshot;

use super::SessionContext;
use crate::domain::SampleKind;
use super::pool::completion;
use super::engines::Engines;

/// Seconds with a face over which eye contact is judged for the cue, and the share under which it comes.
const CONTACT_WINDOW: usize = 20;
const LOW_CONTACT: f32 = 0.3;

type Done = (Result<Option<FaceReading>, InferenceError>, Duration);

pub struct VisionFeed {
    ctx: SessionContext,
    engines: Arc<Engines>,
    waiting: Option<DecodedFrame>,
    in_flight: Option<oneshot::Receiver<Done>>,
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
        let (Some(analyzer), Some(frame)) = (self.engines.vision.clone(), self.waiting.take()) else { return };
        let track = self.track;
        let job = move || {
            let started = Instant::now();
            let image = RgbImage { width: frame.width, height: frame.height, data: &frame.rgb };
            (analyzer.analyze(&image, track), started.elapsed())
        };
        match self.engines.pool.submit(job) {
            Ok(rx) => self.in_flight = Some(rx),
            // The pool is full of speech work, which must not wait: this frame goes, a newer one will come.
            Err(_) => self.ctx.metrics.video_frames_stale.inc(),
        }
    }

    /// Completes when a frame's analysis is done; pending while nothing is in flight.
    pub async fn done(&mut self) -> Done {
        completion(&mut self.in_flight).await
    }

    pub fn handle(&mut self, (reading, elapsed): Done) {
        self.in_flight = None;
        self.ctx.metrics.vision_frame.observe(elapsed.as_secs_f64());
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
