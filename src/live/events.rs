//! `EventSink`: where a session's v1 events go: the candidate's `events` data channel (once open), the observers
//! (a broadcast that drops for observers that lag, never blocking the session), and a log line on failure.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use candor_signaling::{Event, EventBody};
use tokio::sync::broadcast;
use webrtc::data_channel::DataChannel;

/// Events an observer may lag behind before it misses some; about a minute of steady events.
const OBSERVER_BACKLOG: usize = 256;

#[derive(Clone)]
pub struct EventSink {
    started: Instant,
    channel: Arc<Mutex<Option<Arc<dyn DataChannel>>>>,
    observers: broadcast::Sender<Arc<str>>,
}

impl EventSink {
    pub fn new(started: Instant) -> Self {
        Self { started, channel: Arc::new(Mutex::new(None)), observers: broadcast::channel(OBSERVER_BACKLOG).0 }
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
