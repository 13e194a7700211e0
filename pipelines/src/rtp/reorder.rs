//! Puts a stream's RTP packets back in sequence order, as a jitter buffer does before playout. A packet that
//! arrives early waits for the ones before it; once `depth` packets wait behind a gap, the missing ones count
//! as lost (the decoder conceals them) and the stream moves on. Packets from before what was released (late or
//! repeated) are dropped. Without it, a network that reorders (jitter) makes every early packet look like a
//! loss and every late one like a duplicate: the audio is garbled though nothing was lost.

use std::collections::BTreeMap;

/// What the reorder buffer releases, in order.
#[derive(Debug, PartialEq)]
pub enum Released<T> {
    Packet(T),
    /// This many packets never came before the next one released.
    Lost(u64),
}

pub struct Reorder<T> {
    depth: usize,
    /// The next sequence number to release, extended past 16 bits.
    next: Option<u64>,
    waiting: BTreeMap<u64, T>,
    /// Packets dropped for coming after their place was released.
    pub late: u64,
}

impl<T> Reorder<T> {
    pub fn new(depth: usize) -> Self {
        Self { depth, next: None, waiting: BTreeMap::new(), late: 0 }
    }

    /// Takes packet `seq` and returns what can be released now.
    pub fn push(&mut self, seq: u16, packet: T) -> Vec<Released<T>> {
        // Start far from zero so that extended numbers before the first one stay positive.
        let next = *self.next.get_or_insert(u64::from(seq) + (1 << 32));
        let distance = i64::from(seq.wrapping_sub(next as u16) as i16);
        if distance < 0 {
            self.late += 1;
            return Vec::new();
        }
        self.waiting.entry(next + distance as u64).or_insert(packet);
        let mut out = Vec::new();
        self.release(&mut out, false);
        out
    }

    /// Releases everything waiting, gaps counted as lost (the stream paused: nothing more is coming soon).
    pub fn flush(&mut self) -> Vec<Released<T>> {
        let mut out = Vec::new();
        self.release(&mut out, true);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn release(&mut self, out: &mut Vec<Released<T>>, all: bool) {
        while let (Some(next), Some((&first, _))) = (self.next, self.waiting.first_key_value()) {
            if first != next {
                if !all && self.waiting.len() <= self.depth {
                    return;
                }
                out.push(Released::Lost(first - next));
            }
            let (_, packet) = self.waiting.pop_first().expect("a first entry");
            out.push(Released::Packet(packet));
            self.next = Some(first + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(out: Vec<Released<u16>>) -> Vec<String> {
        out.into_iter()
            .map(|r| match r {
                Released::Packet(p) => p.to_string(),
                Released::Lost(n) => format!("lost {n}"),
            })
            .collect()
    }

    #[test]
    fn packets_in_order_pass_at_once() {
        let mut reorder = Reorder::new(4);
        for seq in 10..20 {
            assert_eq!(packets(reorder.push(seq, seq)), vec![seq.to_string()]);
        }
        assert!(reorder.is_empty());
    }

    #[test]
    fn an_early_packet_waits_for_the_one_before_it() {
        let mut reorder = Reorder::new(4);
        assert_eq!(packets(reorder.push(1, 1)), ["1"]);
        assert!(reorder.push(3, 3).is_empty());
        assert!(reorder.push(4, 4).is_empty());
        assert_eq!(packets(reorder.push(2, 2)), ["2", "3", "4"]);
        // A copy of a released packet, or one older still, is dropped.
        assert!(reorder.push(2, 2).is_empty() && reorder.push(0, 0).is_empty());
        assert_eq!(reorder.late, 2);
    }

    #[test]
    fn a_lost_packet_is_given_up_once_depth_packets_wait_behind_it() {
        let mut reorder = Reorder::new(3);
        reorder.push(1, 1);
        for seq in 3..6 {
            assert!(reorder.push(seq, seq).is_empty(), "{seq} waits for 2");
        }
        assert_eq!(packets(reorder.push(6, 6)), ["lost 1", "3", "4", "5", "6"]);
        // It turns up after all: too late.
        assert!(reorder.push(2, 2).is_empty());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut reorder = Reorder::new(4);
        assert_eq!(packets(reorder.push(65534, 65534)), ["65534"]);
        assert!(reorder.push(0, 0).is_empty());
        assert_eq!(packets(reorder.push(65535, 65535)), ["65535", "0"]);
        assert_eq!(packets(reorder.push(1, 1)), ["1"]);
    }

    #[test]
    fn a_flush_releases_what_waits_with_its_gaps() {
        let mut reorder = Reorder::new(8);
        reorder.push(1, 1);
        reorder.push(4, 4);
        reorder.push(5, 5);
        assert_eq!(packets(reorder.flush()), ["lost 2", "4", "5"]);
        assert!(reorder.is_empty());
        assert_eq!(packets(reorder.push(6, 6)), ["6"]);
    }
}
