//! The soak: candidates come and go against a running server for a long time while the server's own figures are
//! sampled. Each of `Load::sessions` slots runs one candidate after another: it signs up, interviews for
//! `Load::duration` (its answer again and again, its camera on), ends the interview, and checks that every final
//! transcript it received is stored as a turn. A warm-up generation runs first (models load, pools fill).
//!
//! The verdict: the live heap under full load in the last third of the run within 5% of the first third's
//! (medians), and resident memory too when asked (`Soak::rss_limit`: resident memory keeps rising for the first
//! minutes as the allocator's arenas settle, so a short run cannot judge it); and the idle server at the end back
//! where it was after the warm-up: the same runtime tasks, and no more open files and threads than the database
//! pool's new connections hold. A server that leaks a task, a file or a buffer per session, or loses a turn,
//! fails.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::load::{Load, TRANSCRIPT_GRACE, repeated, scrape, sign_up, sum};
use crate::Client;

/// The live heap under load may grow this much from the first third of the run to the last.
pub const HEAP_GROWTH_LIMIT: f64 = 0.05;
/// What one database connection may hold: SQLite's database and WAL files and its worker thread (a PostgreSQL
/// connection holds one socket).
const FILES_PER_DB_CONNECTION: f64 = 2.0;
const THREADS_PER_DB_CONNECTION: f64 = 1.0;
/// How long a stored turn may take to show in the interview after its session ended (the storage writer runs
/// off the media path).
const STORED_GRACE: Duration = Duration::from_secs(30);
/// How long the server may take to be idle again after the last session: sessions end, tasks finish.
const SETTLE: Duration = Duration::from_secs(90);
/// How long its figures must then hold still: longer than an idle thread of the async runtime's blocking pool
/// lives (10 s), so that threads it started for a moment are gone.
const STEADY: Duration = Duration::from_secs(12);

pub struct Soak {
    /// The candidates: `sessions` at once, each interviewing for `duration`.
    pub load: Load,
    /// How long candidates keep coming after the warm-up.
    pub total: Duration,
    pub sample_every: Duration,
    /// How much resident memory under load may grow from the first third of the run to the last (e.g. 0.05);
    /// `None`: reported, not judged.
    pub rss_limit: Option<f64>,
}

/// The server's figures at one moment (from its `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t_s: f64,
    pub live_sessions: f64,
    pub rss_mb: f64,
    pub heap_mb: f64,
    pub open_fds: f64,
    pub tasks: f64,
    pub threads: f64,
    pub db_connections: f64,
}

impl Sample {
    fn of(text: &str, t_s: f64) -> Self {
        Self {
            t_s,
            live_sessions: sum(text, "candor_rtc_peers", "role=\"candidate\""),
            rss_mb: sum(text, "candor_process_resident_memory_bytes", "") / 1e6,
            heap_mb: sum(text, "candor_heap_in_use_bytes", "") / 1e6,
            open_fds: sum(text, "candor_process_open_fds", ""),
            tasks: sum(text, "candor_runtime_alive_tasks", ""),
            threads: sum(text, "candor_process_threads", ""),
            db_connections: sum(text, "candor_db_pool_connections", ""),
        }
    }

    fn to_json(self) -> Value {
        json!({"t_s": self.t_s, "live_sessions": self.live_sessions, "rss_mb": self.rss_mb, "heap_mb": self.heap_mb,
               "open_fds": self.open_fds, "tasks": self.tasks, "threads": self.threads, "db_connections": self.db_connections})
    }
}

/// One candidate's interview as the soak saw it.
#[derive(Debug, Default)]
struct Outcome {
    answers: usize,
    transcribed: usize,
    /// Final transcripts received but not stored.
    unstored: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Candidates after the warm-up, and those that could not interview.
    pub candidates: usize,
    pub failures: Vec<String>,
    /// Answers the candidates finished speaking, final transcripts they received, and those not in the database.
    pub answers: usize,
    pub transcribed: usize,
    pub unstored: Vec<String>,
    /// The idle server after the warm-up and after the last candidate.
    pub baseline: Sample,
    pub end: Sample,
    /// Every sample, the idle ones included.
    pub samples: Vec<Sample>,
    /// Candidates at once (full load).
    pub sessions: usize,
    pub rss_limit: Option<f64>,
}

impl SoakReport {
    /// The median of `figure` under full load in the first and the last third of the soak (after the warm-up).
    fn under_load(&self, figure: impl Fn(&Sample) -> f64) -> Option<(f64, f64)> {
        let (start, end) = (self.baseline.t_s, self.end.t_s);
        let third = (end - start) / 3.0;
        let median = |from: f64, to: f64| {
            let mut values: Vec<f64> = self
                .samples
                .iter()
                .filter(|s| s.live_sessions >= self.sessions as f64 && (from..to).contains(&s.t_s))
                .map(&figure)
                .collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied()
        };
        Some((median(start, start + third)?, median(end - third, end)?))
    }

    /// Resident memory under load, first and last third, in MB.
    pub fn rss_under_load(&self) -> Option<(f64, f64)> {
        self.under_load(|s| s.rss_mb)
    }

    /// The live heap under load, first and last third, in MB.
    pub fn heap_under_load(&self) -> Option<(f64, f64)> {
        self.under_load(|s| s.heap_mb)
    }

    /// Why the soak failed; empty when it passed.
    pub fn misses(&self) -> Vec<String> {
        let mut misses: Vec<String> = self.failures.iter().map(|f| format!("a candidate failed: {f}")).collect();
        if self.candidates == 0 {
            misses.push("no candidate ran after the warm-up".into());
        }
        if self.transcribed < self.answers {
            misses.push(format!("{} of {} answers came back as final transcripts", self.transcribed, self.answers));
        }
        if !self.unstored.is_empty() {
            misses.push(format!("{} final transcripts not stored: {:?}", self.unstored.len(), self.unstored));
        }
        let growth = |(first, last): (f64, f64)| last / first.max(1.0) - 1.0;
        match (self.heap_under_load(), self.rss_under_load()) {
            (Some(heap), Some(rss)) => {
                if growth(heap) >= HEAP_GROWTH_LIMIT {
                    misses.push(format!("the live heap under load grew {:.1}% ({:.0} -> {:.0} MB)", growth(heap) * 100.0, heap.0, heap.1));
                }
                if let Some(limit) = self.rss_limit.filter(|limit| growth(rss) >= *limit) {
                    misses.push(format!(
                        "resident memory under load grew {:.1}% ({:.0} -> {:.0} MB; limit {:.0}%)",
                        growth(rss) * 100.0,
                        rss.0,
                        rss.1,
                        limit * 100.0
                    ));
                }
            }
            _ => misses.push("too few samples under full load to judge memory".into()),
        }
        let (b, e) = (self.baseline, self.end);
        let new_connections = (e.db_connections - b.db_connections).max(0.0);
        if e.open_fds - b.open_fds > new_connections * FILES_PER_DB_CONNECTION {
            misses.push(format!("open files {} -> {} (database connections {} -> {})", b.open_fds, e.open_fds, b.db_connections, e.db_connections));
        }
        if e.threads - b.threads > new_connections * THREADS_PER_DB_CONNECTION {
            misses.push(format!("threads {} -> {} (database connections {} -> {})", b.threads, e.threads, b.db_connections, e.db_connections));
        }
        if e.tasks > b.tasks {
            misses.push(format!("runtime tasks {} -> {}", b.tasks, e.tasks));
        }
        misses
    }

    pub fn to_json(&self) -> Value {
        json!({
            "candidates": self.candidates,
            "failures": self.failures,
            "answers": self.answers,
            "transcribed": self.transcribed,
            "unstored": self.unstored,
            "sessions": self.sessions,
            "rss_under_load_mb": self.rss_under_load().map(|(first, last)| json!({"first_third": first, "last_third": last})),
            "heap_under_load_mb": self.heap_under_load().map(|(first, last)| json!({"first_third": first, "last_third": last})),
            "rss_limit": self.rss_limit,
            "baseline": self.baseline.to_json(),
            "end": self.end.to_json(),
            "peak_rss_mb": self.samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max),
            "misses": self.misses(),
            "samples": self.samples.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        })
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (b, e) = (self.baseline, self.end);
        let peak = self.samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
        writeln!(f, "candidates: {} after the warm-up, {} failed", self.candidates, self.failures.len())?;
        writeln!(f, "answers: {} spoken, {} transcribed, {} not stored", self.answers, self.transcribed, self.unstored.len())?;
        let mut under_load = |what: &str, figures: Option<(f64, f64)>| match figures {
            Some((first, last)) => writeln!(
                f,
                "{what} under load ({} at once): {first:.0} MB in the first third, {last:.0} MB in the last ({:+.1}%)",
                self.sessions,
                (last / first.max(1.0) - 1.0) * 100.0
            ),
            None => writeln!(f, "{what} under load: too few samples"),
        };
        under_load("resident memory", self.rss_under_load())?;
        under_load("live heap", self.heap_under_load())?;
        writeln!(f, "peak resident memory {peak:.0} MB")?;
        writeln!(f, "idle server, after the warm-up -> after the soak ({} samples):", self.samples.len())?;
        writeln!(f, "  resident memory {:.0} -> {:.0} MB, live heap {:.0} -> {:.0} MB", b.rss_mb, e.rss_mb, b.heap_mb, e.heap_mb)?;
        writeln!(f, "  open files {} -> {}, threads {} -> {}, database connections {} -> {}", b.open_fds, e.open_fds, b.threads, e.threads, b.db_connections, e.db_connections)?;
        writeln!(f, "  runtime tasks {} -> {}", b.tasks, e.tasks)?;
        match self.misses().as_slice() {
            [] => write!(f, "passed"),
            misses => write!(f, "FAILED: {}", misses.join("; ")),
        }
    }
}

pub async fn soak(soak: &Soak) -> Result<SoakReport, crate::load::LoadError> {
    // The sampler keeps one connection; the candidates keep none. Connections they left idle in a shared pool
    // would each hold a socket and a task on the server, as many as happened to be open at once, and the idle
    // server after the soak would differ from the one after the warm-up by the load generator's own pool.
    let http = reqwest::Client::new();
    let candidates_http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let base = format!("http://{}", soak.load.server);
    let started = Instant::now();
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();

    // The warm-up generation: one candidate per slot, all at once.
    let warm_up = join_all((0..soak.load.sessions).map(|slot| candidate(&soak.load, &candidates_http, &base, format!("soak-{run}-warm-{slot}"))));
    let warm_up_failures: Vec<String> = warm_up.await.into_iter().filter_map(Result::err).collect();
    if warm_up_failures.len() == soak.load.sessions {
        return Err(crate::load::LoadError::NoSession(warm_up_failures.join("; ")));
    }
    let baseline = settle(&http, &base, started).await?;

    let samples = Mutex::new(vec![baseline]);
    let outcomes = Mutex::new(Vec::new());
    let until = Instant::now() + soak.total;
    let slots = join_all((0..soak.load.sessions).map(|slot| {
        let (http, base, outcomes) = (&candidates_http, &base, &outcomes);
        async move {
            tokio::time::sleep(soak.load.phase(slot)).await; // not all in step
            for n in 0.. {
                if Instant::now() + soak.load.duration > until {
                    break;
                }
                let outcome = candidate(&soak.load, http, base, format!("soak-{run}-{slot}-{n}")).await;
                outcomes.lock().unwrap_or_else(|p| p.into_inner()).push(outcome);
            }
        }
    }));
    let sampling = async {
        let mut ticker = tokio::time::interval(soak.sample_every);
        loop {
            ticker.tick().await;
            if let Ok(text) = scrape(&http, &base).await {
                samples.lock().unwrap_or_else(|p| p.into_inner()).push(Sample::of(&text, started.elapsed().as_secs_f64()));
            }
        }
    };
    tokio::select! {
        _ = slots => {}
        () = sampling => unreachable!("sampling runs until the slots are done"),
    }
    let end = settle(&http, &base, started).await?;

    let mut samples = samples.into_inner().unwrap_or_else(|p| p.into_inner());
    samples.push(end);
    let outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut report = SoakReport {
        candidates: outcomes.len(),
        failures: Vec::new(),
        answers: 0,
        transcribed: 0,
        unstored: Vec::new(),
        baseline,
        end,
        samples,
        sessions: soak.load.sessions,
        rss_limit: soak.rss_limit,
    };
    for outcome in outcomes {
        match outcome {
            Ok(o) => {
                report.answers += o.answers;
                report.transcribed += o.transcribed;
                report.unstored.extend(o.unstored);
            }
            Err(e) => report.failures.push(e),
        }
    }
    Ok(report)
}

/// One candidate's whole interview: sign up, talk for the load's duration, end, and check what was stored.
async fn candidate(load: &Load, http: &reqwest::Client, base: &str, name: String) -> Result<Outcome, String> {
    let (token, interview) = sign_up(http, base, &format!("{name}@example.com")).await?;
    let audio = repeated(&load.answer, load.pause, Duration::ZERO, load.duration + Duration::from_secs(5));
    let client = Client::connect(load.candidate(token.clone(), interview.clone(), audio)).await.map_err(|e| format!("{name}: {e}"))?;
    if !client.wait_until(Duration::from_secs(20), Client::is_connected).await {
        client.end().await;
        return Err(format!("{name}: did not connect within 20 s"));
    }
    tokio::time::sleep(load.duration).await;
    let answers = load.answers_in_window(0);
    let finals = |c: &Client| c.events().into_iter().filter(|e| e["type"] == "transcript.final").collect::<Vec<_>>();
    client.wait_until(TRANSCRIPT_GRACE, |c| finals(c).len() >= answers).await;
    let turns: Vec<String> = finals(&client).iter().filter_map(|e| e["turn_id"].as_str().map(String::from)).collect();
    client.end().await;

    let url = format!("{base}/api/v1/interviews/{interview}");
    let deadline = Instant::now() + STORED_GRACE;
    let unstored = loop {
        let detail = match http.get(&url).bearer_auth(&token).send().await {
            Ok(response) => response.text().await.ok().and_then(|text| serde_json::from_str::<Value>(&text).ok()),
            Err(_) => None,
        };
        let stored: Vec<&str> = detail.as_ref().and_then(|d| d["turns"].as_array()).into_iter().flatten().filter_map(|t| t["id"].as_str()).collect();
        let unstored: Vec<String> = turns.iter().filter(|t| !stored.contains(&t.as_str())).cloned().collect();
        if unstored.is_empty() || Instant::now() > deadline {
            break unstored;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(Outcome { answers, transcribed: turns.len(), unstored })
}

/// Waits until no session is live and the open files, tasks and threads have held still for `STEADY` (sampled
/// every second), or `SETTLE` has passed; returns the last sample.
async fn settle(http: &reqwest::Client, base: &str, started: Instant) -> Result<Sample, crate::load::LoadError> {
    let deadline = Instant::now() + SETTLE;
    let mut steady_since: Option<(Instant, Sample)> = None;
    loop {
        let sample = Sample::of(&scrape(http, base).await?, started.elapsed().as_secs_f64());
        let same = |s: &Sample| s.open_fds == sample.open_fds && s.tasks == sample.tasks && s.threads == sample.threads;
        steady_since = match steady_since {
            Some((since, first)) if sample.live_sessions == 0.0 && same(&first) => Some((since, first)),
            _ if sample.live_sessions == 0.0 => Some((Instant::now(), sample)),
            _ => None,
        };
        if steady_since.is_some_and(|(since, _)| since.elapsed() >= STEADY) || Instant::now() > deadline {
            return Ok(sample);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Sample = Sample { t_s: 0.0, live_sessions: 0.0, rss_mb: 400.0, heap_mb: 150.0, open_fds: 40.0, tasks: 12.0, threads: 20.0, db_connections: 3.0 };

    /// A 90 s soak of two candidates at once, sampled every 10 s at full load: resident memory and the live heap
    /// from `first` MB to `last` MB in even steps.
    fn report(first: f64, last: f64, end: Sample) -> SoakReport {
        let mb = |i: usize| first + (last - first) * i as f64 / 9.0;
        let samples = (0..10).map(|i| Sample { t_s: i as f64 * 10.0, live_sessions: 2.0, rss_mb: mb(i), heap_mb: mb(i), ..IDLE }).collect();
        let end = Sample { t_s: 95.0, ..end };
        let (baseline, sessions, rss_limit) = (IDLE, 2, Some(0.05));
        SoakReport { candidates: 4, failures: Vec::new(), answers: 8, transcribed: 8, unstored: Vec::new(), baseline, end, samples, sessions, rss_limit }
    }

    #[test]
    fn a_server_back_where_it_was_passes_and_any_leak_fails() {
        assert!(report(500.0, 510.0, IDLE).misses().is_empty(), "{:?}", report(500.0, 510.0, IDLE).misses());
        let grown = report(500.0, 540.0, IDLE).misses();
        assert!(grown.len() == 2 && grown[0].starts_with("the live heap under load grew 5.2%"), "{grown:?}");
        assert!(grown[1].starts_with("resident memory under load grew 5.2%"), "{grown:?}");
        let mut unjudged = report(500.0, 540.0, IDLE);
        unjudged.rss_limit = None;
        unjudged.samples.iter_mut().for_each(|s| s.heap_mb = 150.0);
        assert!(unjudged.misses().is_empty(), "resident memory is only reported: {:?}", unjudged.misses());
        assert_eq!(report(500.0, 500.0, Sample { tasks: 13.0, ..IDLE }).misses(), ["runtime tasks 12 -> 13"]);
        let file = report(500.0, 500.0, Sample { open_fds: 41.0, ..IDLE }).misses();
        assert_eq!(file, ["open files 40 -> 41 (database connections 3 -> 3)"]);
        let thread = report(500.0, 500.0, Sample { threads: 21.0, ..IDLE }).misses();
        assert_eq!(thread, ["threads 20 -> 21 (database connections 3 -> 3)"]);
        let pool = Sample { open_fds: 42.0, threads: 21.0, db_connections: 4.0, ..IDLE };
        assert!(report(500.0, 500.0, pool).misses().is_empty(), "a new database connection holds two files and a thread");
        let mut lost = report(500.0, 500.0, IDLE);
        lost.transcribed = 7;
        lost.unstored = vec!["t1".into()];
        assert_eq!(lost.misses().len(), 2, "{:?}", lost.misses());
        assert!(lost.to_string().contains("FAILED"));
        let mut idle_only = report(500.0, 500.0, IDLE);
        idle_only.samples.iter_mut().for_each(|s| s.live_sessions = 1.0);
        assert_eq!(idle_only.misses(), ["too few samples under full load to judge memory"]);
    }

    #[test]
    fn samples_are_read_from_the_metrics() {
        let text = "candor_rtc_peers{role=\"candidate\"} 2\ncandor_rtc_peers{role=\"observer\"} 1\n\
                    candor_process_resident_memory_bytes 4.5e8\ncandor_heap_in_use_bytes 1.5e8\n\
                    candor_process_open_fds 44\ncandor_runtime_alive_tasks 31\ncandor_process_threads 25\n\
                    candor_db_pool_connections 3\n";
        let sample = Sample::of(text, 3.0);
        let expected = Sample { t_s: 3.0, live_sessions: 2.0, rss_mb: 450.0, heap_mb: 150.0, open_fds: 44.0, tasks: 31.0, threads: 25.0, db_connections: 3.0 };
        assert_eq!(sample, expected);
    }
}
