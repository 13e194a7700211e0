//! A bad network between the client and the server, made in the client's own UDP sockets (both directions), as
//! `tc netem` would make it on a link: random loss, random delay (which reorders), and blackouts. It is a WebRTC
//! runtime that wraps the standard one, so every datagram the peer connection sends or receives (ICE, DTLS,
//! SRTP, SCTP) goes through it; nothing else changes. Decisions come from a fixed seed, so runs repeat.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime, Transmit,
};

/// What the link does to datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// Share of datagrams lost, each way (0.05 is 5%).
    pub loss: f64,
    /// Datagrams sent are held for a random time up to this, so they also arrive out of order.
    pub jitter: Duration,
    /// Nothing gets through, either way, from this long after the client starts, for this long.
    pub blackout: Option<(Duration, Duration)>,
    pub seed: u64,
}

impl Impairment {
    /// Parses `loss=5%,jitter=100ms,blackout=2s@10s,seed=7` (any subset).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut impairment = Self::default();
        let ms = |value: &str| -> Result<Duration, String> {
            let (number, seconds) = match (value.strip_suffix("ms"), value.strip_suffix('s')) {
                (Some(n), _) => (n, 0.001),
                (None, Some(n)) => (n, 1.0),
                _ => (value, 0.001),
            };
            let number = number.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
            number.map(|n| Duration::from_secs_f64(n * seconds)).ok_or_else(|| format!("not a duration: {value:?}"))
        };
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("expected key=value: {part:?}"))?;
            match key.trim() {
                "loss" => {
                    let percent = value.trim_end_matches('%').parse::<f64>().map_err(|_| format!("not a loss: {value:?}"))?;
                    impairment.loss = (percent / 100.0).clamp(0.0, 1.0);
                }
                "jitter" => impairment.jitter = ms(value)?,
                "blackout" => {
                    let (length, at) = value.split_once('@').ok_or_else(|| format!("expected length@start: {value:?}"))?;
                    impairment.blackout = Some((ms(at)?, ms(length)?));
                }
                "seed" => impairment.seed = value.parse().map_err(|_| format!("not a seed: {value:?}"))?,
                other => return Err(format!("unknown impairment {other:?} (loss, jitter, blackout, seed)")),
            }
        }
        Ok(impairment)
    }

    /// The standard runtime with this link in every UDP socket.
    pub fn runtime(self) -> Option<Arc<dyn Runtime>> {
        let inner = webrtc::runtime::default_runtime()?;
        Some(Arc::new(Impaired { inner, link: Arc::new(Link::new(self)) }))
    }
}

/// The shared state of one impaired link.
struct Link {
    impairment: Impairment,
    started: Instant,
    random: Mutex<StdRng>,
}

/// What happens to one datagram.
enum Fate {
    Pass,
    Lose,
    Hold(Duration),
}

impl Link {
    fn new(impairment: Impairment) -> Self {
        let random = Mutex::new(StdRng::seed_from_u64(impairment.seed));
        Self { impairment, started: Instant::now(), random }
    }

    fn dark(&self) -> bool {
        self.impairment.blackout.is_some_and(|(at, length)| {
            let t = self.started.elapsed();
            t >= at && t < at + length
        })
    }

    fn fate(&self, sending: bool) -> Fate {
        if self.dark() {
            return Fate::Lose;
        }
        let mut random = self.random.lock().unwrap_or_else(|p| p.into_inner());
        if random.random::<f64>() < self.impairment.loss {
            return Fate::Lose;
        }
        match self.impairment.jitter {
            jitter if sending && !jitter.is_zero() => Fate::Hold(jitter.mul_f64(random.random::<f64>())),
            _ => Fate::Pass,
        }
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("impairment", &self.impairment).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Impaired {
    inner: Arc<dyn Runtime>,
    link: Arc<Link>,
}

impl Runtime for Impaired {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(&self, pool_size: usize, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(ImpairedSocket { inner: self.inner.wrap_udp_socket(socket)?, link: self.link.clone() }))
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn name(&self) -> &'static str {
        "impaired"
    }
}

/// A UDP socket behind the link. One datagram per call each way (no segmentation offload), so each is judged
/// on its own.
#[derive(Debug)]
struct ImpairedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    link: Arc<Link>,
}

impl AsyncUdpSocket for ImpairedSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let sent = transmit.contents.len();
        match self.link.fate(true) {
            Fate::Pass => self.inner.poll_send(cx, transmit),
            Fate::Lose => Poll::Ready(Ok(sent)),
            Fate::Hold(delay) => {
                let (socket, datagram, to) = (self.inner.clone(), transmit.contents.to_vec(), transmit.destination);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = socket.send_to(&datagram, to).await;
                });
                Poll::Ready(Ok(sent))
            }
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> Poll<io::Result<usize>> {
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                // Lost on the way in: read the next.
                Poll::Ready(Ok(_)) if matches!(self.link.fate(false), Fate::Lose) => {}
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impairments_parse_and_bad_ones_are_refused() {
        let parsed = Impairment::parse("loss=5%,jitter=100ms,blackout=2s@10s,seed=7").unwrap();
        assert_eq!(
            parsed,
            Impairment {
                loss: 0.05,
                jitter: Duration::from_millis(100),
                blackout: Some((Duration::from_secs(10), Duration::from_secs(2))),
                seed: 7,
            }
        );
        assert_eq!(Impairment::parse("").unwrap(), Impairment::default());
        assert!(Impairment::parse("loss=lots").is_err());
        assert!(Impairment::parse("delay=5ms").is_err());
        assert!(Impairment::parse("blackout=2s").is_err());
    }

    #[test]
    fn the_link_loses_about_the_share_asked_and_holds_within_the_jitter() {
        let link = Link::new(Impairment { loss: 0.1, jitter: Duration::from_millis(100), seed: 3, ..Default::default() });
        let (mut lost, mut held) = (0, Vec::new());
        for _ in 0..10_000 {
            match link.fate(true) {
                Fate::Lose => lost += 1,
                Fate::Hold(d) => held.push(d),
                Fate::Pass => {}
            }
        }
        assert!((850..1150).contains(&lost), "{lost} of 10000 lost");
        assert!(held.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(held.iter().any(|d| *d > Duration::from_millis(90)) && held.iter().any(|d| *d < Duration::from_millis(10)));
        // Received datagrams are lost but never held.
        assert!((0..1000).all(|_| !matches!(link.fate(false), Fate::Hold(_))));
    }

    #[test]
    fn nothing_gets_through_a_blackout() {
        let link = Link::new(Impairment { blackout: Some((Duration::ZERO, Duration::from_secs(3600))), ..Default::default() });
        assert!((0..100).all(|_| matches!(link.fate(true), Fate::Lose) && matches!(link.fate(false), Fate::Lose)));
        let after = Link::new(Impairment { blackout: Some((Duration::from_secs(3600), Duration::from_secs(1))), ..Default::default() });
        assert!(matches!(after.fate(true), Fate::Pass));
    }
}
