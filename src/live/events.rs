//! `EventSink`: where a session's v1 events go: the candidate's `events` data channel, the observers (a
//! broadcast that drops for observers that lag, never blocking the session), and a log line on failure. Events
//! sent before the data channel opens (the greeting starts as soon as media flows), or while a dropped candidate
//! is away, wait for it, up to `EARLY_EVENTS`; beyond that the oldest are dropped.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use candor_signaling::events::CueKind;
use candor_signaling::{Event, EventBody};
use tokio::sync::broadcast;
use webrtc::data_channel::DataChannel;

/// Events an observer may lag behind before it misses some; about a minute of steady events.
const OBSERVER_BACKLOG: usize = 256;
/// Events kept for a data channel that has not opened yet.
const EARLY_EVENTS: usize = 64;
/// Cues are sparse: at most one per this interval, whichever pipeline asks.
const CUE_INTERVAL_MS: u64 = 20_000;

#[derive(Clone)]
pub struct EventSink {
    started: Instant,
    channel: Arc<Mutex<Channel>>,
    observers: broadcast::Sender<Arc<str>>,
    last_cue_ms: Arc<Mutex<Option<u64>>>,
}

impl EventSink {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            channel: Arc::default(),
            observers: broadcast::channel(OBSERVER_BACKLOG).0,
            last_cue_ms: Arc::new(Mutex::new(None)),
        }
    }

    /// Milliseconds since the session started.
    pub fn t_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The candidate's data channel is open: early events go out first, in order.
    pub async fn attach(&self, channel: Arc<dyn DataChannel>) {
        // Events sent while the early ones go out join the queue, so order holds; the channel counts as open
        // once the queue is empty.
        loop {
            let early = {
                let mut state = self.channel.lock().unwrap_or_else(|p| p.into_inner());
                if state.early.is_empty() {
                    state.open = Some(channel);
                    return;
                }
                std::mem::take(&mut state.early)
            };
            for text in early {
                deliver(&channel, &text).await;
            }
        }
    }

    /// The candidate's connection is gone: events wait for the data channel of the connection they rejoin on,
    /// as early ones do.
    pub fn detach(&self) {
        self.channel.lock().unwrap_or_else(|p| p.into_inner()).open = None;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.observers.subscribe()
    }

    /// Stamps and sends one event.
    pub async fn send(&self, body: EventBody) {
        let text: Arc<str> = Event::new(self.t_ms(), body).to_json().into();
        let _ = self.observers.send(text.clone());
        let open = {
            let mut state = self.channel.lock().unwrap_or_else(|p| p.into_inner());
            if state.open.is_none() {
                if state.early.len() == EARLY_EVENTS {
                    state.early.remove(0);
                }
                state.early.push(text.clone());
            }
            state.open.clone()
        };
        if let Some(channel) = open {
            deliver(&channel, &text).await;
        }
    }
}

/// The candidate's data channel once open; until then the events waiting for it.
#[derive(Default)]
struct Channel {
    open: Option<Arc<dyn DataChannel>>,
    early: Vec<Arc<str>>,
}

impl EventSink {
    /// Waits, up to `patience`, until the peer has acknowledged every event sent: closing the connection
    /// drops what SCTP still holds, and the last events (`report.ready`, `session.state` ended) matter most.
    pub async fn drain(&self, patience: std::time::Duration) {
        let open = self.channel.lock().unwrap_or_else(|p| p.into_inner()).open.clone();
        let Some(channel) = open else { return };
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            match channel.outstanding_bytes().await {
                Ok(0) | Err(_) => return,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }
}

async fn deliver(channel: &Arc<dyn DataChannel>, text: &str) {
    if let Err(e) = channel.send_text(text).await {
        tracing::debug!(error = %e, "event not delivered: data channel closed");
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
