//! Prometheus metrics (prefix `candor_`), one registry per application so tests in one process stay apart. The
//! HTTP middleware labels requests by route template, never by raw path, to keep label cardinality bounded.


use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};


/// Reads the inference pool: (workers, busy, waiting).
type PoolReader = Box<dyn Fn() -> (usize, usize, i64) + Send + Sync>;

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub db_connections: IntGauge,
    pub db_connections_idle: IntGauge,
    pub auth_failures: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub rtc_peers: IntGaugeVec,
    pub rtp_packets: IntCounterVec,
    pub rtp_bytes: IntCounterVec,
    pub decode_errors: IntCounterVec,
    pub rtp_packets_lost: IntCounterVec,
    pub rtp_jitter: HistogramVec,
    pub video_frames_dropped: IntCounter,
    pub video_frames_stale: IntCounter,
    pub vision_frame: Histogram,
    pub vision_batch: Histogram,
    pub peer_failures: IntCounter,
    /// Candidates' connections by event: dropped, rejoined, expired (no rejoin within the grace period).
    pub session_connections: IntCounterVec,
    pub session_duration: Histogram,
    pub speech_stage: HistogramVec,
    pub stt_realtime_factor: Histogram,
    pub turns: IntCounterVec,
    /// Read from the inference pool at each scrape (`watch_pool`), like the two below.
    inference_queue_depth: IntGauge,
    inference_workers: IntGauge,
    inference_workers_busy: IntGauge,
    pool: std::sync::OnceLock<PoolReader>,
    /// Live candidate sessions on this node, connected or waiting for a rejoin (what to scale out on).
    pub live_sessions: IntGauge,
    /// Read from the allocator at each scrape.
    heap_in_use: IntGauge,
    runtime_tasks: IntGauge,
    pub speech_merged_chunks: IntCounter,
    pub speech_overflow_ms: IntCounter,
    pub silence_checks_late: IntCounter,
    pub voice_to_voice: Histogram,
    pub voice_stage: HistogramVec,
    pub brain_calls: IntCounterVec,
    /// Notification emails by kind and outcome (sent, failed, invalid).
    pub emails: IntCounterVec,
    /// Recordings by event: started, finished, failed, expired (retention), erased (account deletion).
    pub recordings: IntCounterVec,
    /// Media bytes written to recordings (plaintext, before sealing).
    pub recording_bytes: IntCounter,
    pub brain_up: IntGauge,
    pub redis_up: IntGauge,
    pub storage_dropped: IntCounter,
    pub stt_redecodes: IntCounter,
    pub stt_ahead_dropped: IntCounter,
    pub stt_partials_shed: IntCounter,
    /// Reply sentences synthesised while the candidate's turn was ending, by whether the reply used them.
    pub voice_prepared: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("candor".into()), None).expect("a static prefix is valid");
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route template, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route template and method")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route", "method"],
        )
        .expect("valid metric");
        let db_connections = IntGauge::new("db_pool_connections", "Open database connections").expect("valid metric");
        let db_connections_idle =
            IntGauge::new("db_pool_idle_connections", "Idle database connections").expect("valid metric");
        let auth_failures = IntCounterVec::new(
            Opts::new("auth_failures_total", "Rejected authentication attempts by reason"),
            &["reason"],
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limit_total", "Rate limiter decisions: rejected, or allowed because the store failed"),
            &["decision"],
        )
        .expect("valid metric");
        let rtc_peers = IntGaugeVec::new(Opts::new("rtc_peers", "Connected WebRTC peers by role"), &["role"])
            .expect("valid metric");
        let rtp_packets = IntCounterVec::new(
            Opts::new("rtp_packets_total", "RTP packets by media kind and direction"),
            &["kind", "direction"],
        )
        .expect("valid metric");
        let rtp_bytes = IntCounterVec::new(
            Opts::new("rtp_bytes_total", "RTP payload bytes by media kind and direction"),
            &["kind", "direction"],
        )
        .expect("valid metric");
        let rtp_packets_lost = IntCounterVec::new(
            Opts::new("rtp_packets_lost_total", "Inbound RTP packets lost, from receiver statistics, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let rtp_jitter = HistogramVec::new(
            HistogramOpts::new("rtp_jitter_seconds", "Inbound RTP interarrival jitter, sampled every 5 s per stream")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32]),
            &["kind"],
        )
        .expect("valid metric");
        let decode_errors =
            IntCounterVec::new(Opts::new("decode_errors_total", "Media that failed to decode, by kind"), &["kind"])
                .expect("valid metric");
        let video_frames_dropped = IntCounter::new(
            "video_frames_dropped_total",
            "Encoded video frames dropped, because the decoder was behind or a packet never came (a keyframe is requested each time)",
        )
        .expect("valid metric");
        let video_frames_stale = IntCounter::new(
            "video_frames_stale_total",
            "Decoded frames not analysed because a newer one arrived first (the newest frame wins)",
        )
        .expect("valid metric");
        let vision_frame = Histogram::with_opts(
            HistogramOpts::new("vision_frame_seconds", "Face analysis time per video frame (a batch's time shared among its frames)")
                .buckets(vec![0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]),
        )
        .expect("valid metric");
        let vision_batch = Histogram::with_opts(
            HistogramOpts::new("vision_batch_frames", "Frames, from every session, analysed together in one batch")
                .buckets(vec![1.0, 2.0, 4.0, 8.0]),
        )
        .expect("valid metric");
        let peer_failures =
            IntCounter::new("peer_failures_total", "Peer connections that failed (ICE or DTLS)").expect("valid metric");
        let session_connections = IntCounterVec::new(
            Opts::new("session_connections_total", "Candidates' connections by event: dropped, rejoined, expired"),
            &["event"],
        )
        .expect("valid metric");
        let session_duration = Histogram::with_opts(
            HistogramOpts::new("session_duration_seconds", "Length of live candidate sessions")
                .buckets(vec![10.0, 30.0, 60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0]),
        )
        .expect("valid metric");
        let speech_stage = HistogramVec::new(
            HistogramOpts::new(
                "speech_stage_seconds",
                "Speech pipeline latency by stage: vad and pipeline_chunk (VAD and any STT) per chunk, \
                 per_audio_second (chunk time per second of audio), stt_partial, stt_final, turn_wait (silence \
                 the turn detector waited)",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]),
            &["stage"],
        )
        .expect("valid metric");
        let stt_realtime_factor = Histogram::with_opts(
            HistogramOpts::new("stt_realtime_factor", "Final speech-to-text decode time per second of audio")
                .buckets(vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]),
        )
        .expect("valid metric");
        let turns = IntCounterVec::new(
            Opts::new("turns_total", "Candidate turns ended, by what the detector waited for (silence, filler, ...)"),
            &["reason"],
        )
        .expect("valid metric");
        let inference_queue_depth =
            IntGauge::new("inference_queue_depth", "Jobs waiting for an inference worker").expect("valid metric");
        let inference_workers =
            IntGauge::new("inference_workers", "Inference workers (threads) in the pool").expect("valid metric");
        let inference_workers_busy =
            IntGauge::new("inference_workers_busy", "Inference workers running a job now").expect("valid metric");
        let live_sessions = IntGauge::new(
            "live_sessions",
            "Live candidate sessions on this node, connected or waiting for a rejoin",
        )
        .expect("valid metric");
        let speech_merged_chunks = IntCounter::new(
            "speech_merged_chunks_total",
            "Audio chunks that waited for a busy pipeline and went in merged with later audio",
        )
        .expect("valid metric");
        let speech_overflow_ms = IntCounter::new(
            "speech_overflow_milliseconds_total",
            "Audio dropped (oldest first) because the speech backlog exceeded 30 s",
        )
        .expect("valid metric");
        let silence_checks_late = IntCounter::new(
            "audio_silence_checks_late_total",
            "Checks for a silent sender that ran too late to tell its silence from the server's own stall (skipped)",
        )
        .expect("valid metric");
        let voice_to_voice = Histogram::with_opts(
            HistogramOpts::new(
                "voice_to_voice_seconds",
                "From the end of the candidate's last voiced audio to the first interviewer audio packet sent",
            )
            .buckets(vec![0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0]),
        )
        .expect("valid metric");
        let voice_stage = HistogramVec::new(
            HistogramOpts::new(
                "reply_stage_seconds",
                "The interviewer's reply by stage: decide (the conversation's own work after the final transcript),                  brain (an LLM judgement), first_audio (synthesis of the first sentence)",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]),
            &["stage"],
        )
        .expect("valid metric");
        let brain_calls = IntCounterVec::new(
            Opts::new("brain_calls_total", "Judgements asked of a brain, by brain and outcome"),
            &["brain", "outcome"],
        )
        .expect("valid metric");
        let emails = IntCounterVec::new(
            Opts::new("emails_total", "Notification emails by kind (report_ready, coach_invited, password_reset) and outcome (sent, failed, invalid)"),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let recordings = IntCounterVec::new(
            Opts::new("recordings_total", "Recordings by event: started, finished, recovered (after a crash), failed, expired, erased"),
            &["event"],
        )
        .expect("valid metric");
        let recording_bytes = IntCounter::new("recording_bytes_total", "Media bytes written to recordings")
            .expect("valid metric");
        let redis_up = IntGauge::new("redis_up", "1 while Redis answers (or none is configured), 0 while rate limits count on this node alone")
            .expect("valid metric");
        let brain_up = IntGauge::new("brain_up", "1 while the LLM endpoint answers (or none is configured), 0 while it is down")
            .expect("valid metric");
        brain_up.set(1);
        redis_up.set(1);
        let storage_dropped = IntCounter::new(
            "storage_dropped_total",
            "Per-second samples not stored because a session's storage queue was full",
        )
        .expect("valid metric");
        let stt_redecodes = IntCounter::new(
            "stt_redecodes_total",
            "Speech-to-text decodes repeated carefully because the first looked degenerate (a loop)",
        )
        .expect("valid metric");
        let stt_ahead_dropped = IntCounter::new(
            "stt_ahead_dropped_total",
            "Finals decoded ahead in a silence and dropped because the candidate went on speaking",
        )
        .expect("valid metric");
        let stt_partials_shed = IntCounter::new(
            "stt_partials_shed_total",
            "Partial transcripts not decoded, or stopped part-way, because other inference jobs were waiting (partials use spare capacity)",
        )
        .expect("valid metric");
        let voice_prepared = IntCounterVec::new(
            Opts::new(
                "voice_prepared_total",
                "Reply sentences synthesised in the silence that was ending the candidate's turn, by outcome: used \
                 (the reply began with it), unused (the reply changed, or the candidate went on) or skipped (no \
                 inference worker was free, so the reply is made once the turn ends)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let heap_in_use = IntGauge::new(
            "heap_in_use_bytes",
            "Memory the C allocator has handed out and not taken back (glibc's mallinfo2: in use in its arenas plus \
             its mmapped blocks): live memory, where resident memory also counts what fragmentation keeps",
        )
        .expect("valid metric");
        let runtime_tasks = IntGauge::new(
            "runtime_alive_tasks",
            "Tasks alive on the async runtime: steady under a steady load, and back where it was once sessions end",
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(Opts::new("build_info", "Build of the running server"), &["version"])
            .expect("valid metric");
        // Series whose labels are known start at zero: rates and alert rules see them before the first event, and
        // every family the dashboard and the alert rules name is in the first scrape.
        for kind in ["audio", "video"] {
            for direction in ["in", "out"] {
                rtp_packets.with_label_values(&[kind, direction]);
                rtp_bytes.with_label_values(&[kind, direction]);
            }
            decode_errors.with_label_values(&[kind]);
            rtp_packets_lost.with_label_values(&[kind]);
            rtp_jitter.with_label_values(&[kind]);
        }
        for role in ["candidate", "observer"] {
            rtc_peers.with_label_values(&[role]);
        }
        for event in ["dropped", "rejoined", "expired"] {
            session_connections.with_label_values(&[event]);
        }
        for stage in ["vad", "pipeline_chunk", "stt_partial", "stt_final", "stt_final_wait", "turn_wait"] {
            speech_stage.with_label_values(&[stage]);
        }
        for stage in ["decide", "brain", "first_audio"] {
            voice_stage.with_label_values(&[stage]);
        }
        // `ok`, `invalid` (a reply the interviewer refused), and each `BrainError::outcome`.
        for outcome in ["ok", "invalid", "timeout", "http_error", "incomplete", "down", "unreachable", "refused", "malformed"] {
            brain_calls.with_label_values(&["llm", outcome]);
        }
        for outcome in ["used", "unused", "skipped"] {
            voice_prepared.with_label_values(&[outcome]);
        }
        for kind in ["report_ready", "coach_invited", "password_reset"] {
            for outcome in ["sent", "failed", "invalid"] {
                emails.with_label_values(&[kind, outcome]);
            }
        }
        for event in ["started", "finished", "recovered", "failed", "expired", "erased"] {
            recordings.with_label_values(&[event]);
        }
        for decision in ["rejected", "store_error"] {
            rate_limited.with_label_values(&[decision]);
        }
        for reason in ["bad_credentials", "missing", "invalid", "expired", "unknown", "revoked", "reused", "user_deleted", "reset_token"] {
            auth_failures.with_label_values(&[reason]);
        }
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(db_connections.clone()),
            Box::new(db_connections_idle.clone()),
            Box::new(auth_failures.clone()),
            Box::new(rate_limited.clone()),
            Box::new(rtc_peers.clone()),
            Box::new(rtp_packets.clone()),
            Box::new(rtp_bytes.clone()),
            Box::new(decode_errors.clone()),
            Box::new(rtp_packets_lost.clone()),
            Box::new(rtp_jitter.clone()),
            Box::new(video_frames_dropped.clone()),
            Box::new(video_frames_stale.clone()),
            Box::new(vision_frame.clone()),
            Box::new(vision_batch.clone()),
            Box::new(peer_failures.clone()),
            Box::new(session_connections.clone()),
            Box::new(session_duration.clone()),
            Box::new(speech_stage.clone()),
            Box::new(stt_realtime_factor.clone()),
            Box::new(turns.clone()),
            Box::new(inference_queue_depth.clone()),
            Box::new(inference_workers.clone()),
            Box::new(inference_workers_busy.clone()),
            Box::new(live_sessions.clone()),
            Box::new(speech_merged_chunks.clone()),
            Box::new(speech_overflow_ms.clone()),
            Box::new(silence_checks_late.clone()),
            Box::new(voice_to_voice.clone()),
            Box::new(voice_stage.clone()),
            Box::new(brain_calls.clone()),
            Box::new(emails.clone()),
            Box::new(recordings.clone()),
            Box::new(recording_bytes.clone()),
            Box::new(brain_up.clone()),
            Box::new(redis_up.clone()),
            Box::new(storage_dropped.clone()),
            Box::new(stt_redecodes.clone()),
            Box::new(stt_ahead_dropped.clone()),
            Box::new(stt_partials_shed.clone()),
            Box::new(voice_prepared.clone()),
            Box::new(heap_in_use.clone()),
            Box::new(runtime_tasks.clone()),
            Box::new(build_info),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        // CPU time, resident memory and open files of the process (what the load generator reads).
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("metric names are unique");
        Self {
            registry,
            http_requests,
            http_duration,
            db_connections,
            db_connections_idle,
            auth_failures,
            rate_limited,
            rtc_peers,
            rtp_packets,
            rtp_bytes,
            decode_errors,
            rtp_packets_lost,
            rtp_jitter,
            video_frames_dropped,
            video_frames_stale,
            vision_frame,
            vision_batch,
            peer_failures,
            session_connections,
            session_duration,
            speech_stage,
            stt_realtime_factor,
            turns,
            inference_queue_depth,
            inference_workers,
            inference_workers_busy,
            pool: std::sync::OnceLock::new(),
            live_sessions,
            speech_merged_chunks,
            speech_overflow_ms,
            silence_checks_late,
            voice_to_voice,
            voice_stage,
            brain_calls,
            emails,
            recordings,
            recording_bytes,
            brain_up,
            redis_up,
            storage_dropped,
            stt_redecodes,
            stt_ahead_dropped,
            stt_partials_shed,
            voice_prepared,
            heap_in_use,
            runtime_tasks,
        }
    }

    /// Counts one inbound RTP packet.
    pub fn rtp_in(&self, audio: bool, payload_bytes: usize) {
        self.count_rtp(audio, "in", payload_bytes);
    }

    /// Counts one outbound RTP packet (interviewer voice, or media forwarded to an observer).
    pub fn rtp_out(&self, audio: bool, payload_bytes: usize) {
        self.count_rtp(audio, "out", payload_bytes);
    }

    fn count_rtp(&self, audio: bool, direction: &str, payload_bytes: usize) {
        let kind = if audio { "audio" } else { "video" };
        self.rtp_packets.with_label_values(&[kind, direction]).inc();
        self.rtp_bytes.with_label_values(&[kind, direction]).inc_by(payload_bytes as u64);
    }

    /// Prometheus text exposition of every metric.
    /// Has each scrape read the inference pool through `read`: (workers, busy, waiting). The first call wins.
    pub fn watch_pool(&self, read: impl Fn() -> (usize, usize, i64) + Send + Sync + 'static) {
        let _ = self.pool.set(Box::new(read));
    }

    pub fn render(&self) -> String {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallinfo2 only reads the allocator's own counters (under its locks).
            let info = unsafe { libc::mallinfo2() };
            self.heap_in_use.set(i64::try_from(info.uordblks + info.hblkhd).unwrap_or(i64::MAX));
        }
        if let Some(read) = self.pool.get() {
            let (workers, busy, waiting) = read();
            self.inference_workers.set(i64::try_from(workers).unwrap_or(i64::MAX));
            self.inference_workers_busy.set(i64::try_from(busy).unwrap_or(i64::MAX));
            self.inference_queue_depth.set(waiting);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.runtime_tasks.set(i64::try_from(runtime.metrics().num_alive_tasks()).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
