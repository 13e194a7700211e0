//! `EventSink`: where a session's v1 events go: the candidate's `events` data channel (once open), the observers
//! (a broadcast that drops for observers that lag, never blocking the session), and a log line on failure.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use candor_signaling::events::CueKind;
use candor_signaling::{Event, EventBody};
use tokio::sync::broadcast;
use webrtc::data_channel::DataChannel;

/// Events an observer may lag behind before it misses some; about a minute of steady events.
const OBSERVER_BACKLOG: usize = 256;
/// Cues are sparse: at most one per this interval, whichever pipeline asks.
const CUE_INTERVAL_MS: u64 = 20_000;

#[derive(Clone)]
pub struct EventSink {
    started: Instant,
    channel: Arc<Mutex<Option<Arc<dyn DataChannel>>>>,
    observers: broadcast::Sender<Arc<str>>,
    last_cue_ms: Arc<Mutex<Option<u64>>>,
}

impl EventSink {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            channel: Arc::new(Mutex::new(None)),
            observers: broadcast::channel(OBSERVER_BACKLOG).0,
            last_cue_ms: Arc::new(Mutex::new(None)),
        }
    }

    /// Milliseconds since the session started.
    pub fn t_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn attach(&self, channel: Arc<dyn DataChannel>) {
        *self.channel.lock().unwrap_or_else(|p| p.into_inner()) = Some(channel);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.observers.subscribe()
    }

    /// Stamps and sends one event.
    pub async fn send(&self, body: EventBody) {
        let text: Arc<str> = Event::new(self.t_ms(), body).to_json().into();
        let _ = self.observers.send(text.clone());
        let channel = self.channel.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(channel) = channel
            && let Err(e) = channel.send_text(&text).await
        {
            tracing::debug!(error = %e, "event not delivered: data channel closed");
        }
    }
}

impl EventSink {
    /// Sends a cue unless one went out less than `CUE_INTERVAL_MS` ago.
    pub async fn cue(&self, kind: CueKind, text: &str) {
        let now = self.t_ms();
        {
            let mut last = self.last_cue_ms.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|last| now < last + CUE_INTERVAL_MS) {
                return;
            }
            *last = Some(now);
        }
        self.send(EventBody::Cue { kind, text: text.to_string() }).await;
    }
}
