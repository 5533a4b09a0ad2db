//! Watching the consumer group for partitions nobody consumes.
//!
//! A group coordinator can leave a group in a state where some input partitions have no
//! working owner: seen on tansu 0.6 when a member was killed (`kill -9`) and its replacement
//! joined within the session timeout; the replacement was assigned nothing, indefinitely.
//! Apache Kafka expires the dead member after the session timeout and rebalances, but nothing
//! in the client notices either way.
//!
//! The group's own description would tell, but tansu 0.6 answers `ListGroups` with nothing, so
//! librdkafka never describes the group. What every broker does answer is the group's
//! committed offsets and the partitions' high watermarks. So every [`CHECK_EVERY`] (off the
//! loop's thread) the engine looks at each input partition it does **not** hold: one with
//! records waiting (high watermark above the group's committed offset) whose committed offset
//! has not moved for longer than the session timeout has nobody consuming it. Then the engine
//! - exports how many such partitions there are (`shelfguard_unowned_partitions`);
//! - reports not-ready while there are any;
//! - when it holds no input partition itself (the replacement's case above), leaves and rejoins
//!   the group (unsubscribe + subscribe). On Apache Kafka that is an ordinary rebalance; its
//!   cost is that other members' partitions are revoked and restored again, so rejoins back off
//!   from [`REJOIN_BACKOFF`], doubling up to [`MAX_REJOIN_BACKOFF`] while the group stays stuck
//!   (a member restoring a large state for longer than the session timeout looks stuck too, and
//!   must be left to finish);
//! - when it holds partitions itself, rejoins only once the group has stayed stuck for
//!   [`HOLDER_PATIENCE`] session timeouts, with the same back-off: seen on tansu 0.6 after a
//!   series of `kill -9`, the one live member kept its partitions while the dead members' stayed
//!   assigned to them for minutes; a rejoin makes the coordinator rebalance and drop the members
//!   that do not answer. The patience leaves a long restore elsewhere time to finish first.
//!
//! A partition whose owner works has a committed offset that moves (offsets are committed
//! every second) or no records waiting; either way it is never counted.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::config::KafkaArgs;

/// How often the group's offsets are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(3);
/// Longest one look may take.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two rejoins; it doubles while the group stays stuck.
pub const REJOIN_BACKOFF: Duration = Duration::from_secs(30);
/// Most time between two rejoins.
pub const MAX_REJOIN_BACKOFF: Duration = Duration::from_secs(600);
/// How many session timeouts a member that holds partitions waits, while the group stays
/// stuck, before it rejoins too.
pub const HOLDER_PATIENCE: u32 = 6;

/// One input partition as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset (negative: none yet).
    pub committed: i64,
    /// The partition's low and high watermarks.
    pub low: i64,
    pub high: i64,
}

impl Position {
    /// Records are waiting for the group on this partition.
    fn waiting(&self) -> bool {
        let from = if self.committed >= 0 {
            self.committed
        } else {
            self.low
        };
        self.high > from
    }
}

/// What the loop should do after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition it does not hold is consumed (or could not be looked at: nothing to
    /// act on).
    Fine,
    /// Some partitions have records waiting and an offset that has not moved, not yet for
    /// longer than the session timeout.
    Waiting,
    /// Partitions have had nobody consuming them for longer than the session timeout.
    Stuck { rejoin: bool },
}

/// The state of the watch between looks.
pub struct Watch {
    /// A client of the service's group that never joins it: it only reads committed offsets,
    /// watermarks and metadata.
    client: Arc<BaseConsumer>,
    topics: Vec<String>,
    session_timeout: Duration,
    /// The look running now, if any.
    running: Option<JoinHandle<Option<Vec<Position>>>>,
    last_look: Option<Instant>,
    /// Per partition: its committed offset at the last look and since when it has not moved.
    still: HashMap<(String, i32), (i64, Instant)>,
    last_rejoin: Option<Instant>,
    /// Since when the group has been stuck without a break (None: not stuck).
    stuck_since: Option<Instant>,
    /// The wait before the next rejoin (doubles while stuck, back to the least once fine).
    backoff: Duration,
    /// Partitions without a consumer at the latest look (None: unknown).
    pub unowned: Option<usize>,
}

impl Watch {
    pub fn new(
        args: &KafkaArgs,
        service: &str,
        group: &str,
        topics: Vec<String>,
    ) -> anyhow::Result<Self> {
        let mut config = args.reader(&format!("{service}-group-watch"));
        config.set("group.id", group);
        let client: BaseConsumer = config.create()?;
        Ok(Self {
            client: Arc::new(client),
            topics,
            session_timeout: args.session_timeout(),
            running: None,
            last_look: None,
            still: HashMap::new(),
            last_rejoin: None,
            stuck_since: None,
            backoff: REJOIN_BACKOFF,
            unowned: None,
        })
    }

    /// Starts a look when one is due, and judges a finished one. Never blocks. `mine`: the
    /// input partitions this member holds now.
    pub fn poll(&mut self, now: Instant, mine: &BTreeSet<(String, i32)>) -> Option<Verdict> {
        if let Some(handle) = &self.running {
            if !handle.is_finished() {
                return None;
            }
            let handle = self.running.take()?;
            let found = futures::FutureExt::now_or_never(handle)
                .and_then(Result::ok)
                .flatten();
            return Some(self.judge(found, mine, now));
        }
        if self
            .last_look
            .is_some_and(|t| now.duration_since(t) < CHECK_EVERY)
        {
            return None;
        }
        self.last_look = Some(now);
        let (client, topics) = (self.client.clone(), self.topics.clone());
        self.running = Some(tokio::task::spawn_blocking(move || look(&client, &topics)));
        None
    }

    fn judge(
        &mut self,
        found: Option<Vec<Position>>,
        mine: &BTreeSet<(String, i32)>,
        now: Instant,
    ) -> Verdict {
        let Some(positions) = found else {
            self.unowned = None;
            return Verdict::Fine;
        };
        let mut waiting = 0;
        let mut stalled = 0;
        for p in positions {
            let tp = (p.topic.clone(), p.partition);
            let entry = self.still.entry(tp.clone()).or_insert((p.committed, now));
            if entry.0 != p.committed {
                *entry = (p.committed, now);
            }
            if mine.contains(&tp) || !p.waiting() {
                continue;
            }
            if now.duration_since(entry.1) > self.session_timeout {
                stalled += 1;
            } else {
                waiting += 1;
            }
        }
        self.unowned = Some(stalled);
        if stalled == 0 {
            self.backoff = REJOIN_BACKOFF;
            self.stuck_since = None;
            return if waiting > 0 {
                Verdict::Waiting
            } else {
                Verdict::Fine
            };
        }
        let due = self
            .last_rejoin
            .is_none_or(|t| now.duration_since(t) >= self.backoff);
        let since = *self.stuck_since.get_or_insert(now);
        let patient = now.duration_since(since) >= self.session_timeout * HOLDER_PATIENCE;
        let rejoin = due && (mine.is_empty() || patient);
        if rejoin {
            if self.last_rejoin.is_some() {
                self.backoff = (self.backoff * 2).min(MAX_REJOIN_BACKOFF);
            }
            self.last_rejoin = Some(now);
        }
        Verdict::Stuck { rejoin }
    }
}

/// The group's committed offset and the watermarks of every input partition.
fn look(client: &BaseConsumer, topics: &[String]) -> Option<Vec<Position>> {
    // Serve the client's queued events (errors, logs): it is never polled otherwise.
    if let Some(Err(e)) = client.poll(Duration::ZERO) {
        debug!(error = %e, "group watch: client event");
    }
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = client
            .fetch_metadata(Some(t), LOOK_TIMEOUT)
            .inspect_err(|e| debug!(topic = t, error = %e, "group watch: metadata"))
            .ok()?;
        for mt in md.topics() {
            for p in mt.partitions() {
                tpl.add_partition(mt.name(), p.id());
            }
        }
    }
    let committed = client
        .committed_offsets(tpl, LOOK_TIMEOUT)
        .inspect_err(|e| debug!(error = %e, "group watch: committed offsets"))
        .ok()?;
    let mut out = Vec::new();
    for e in committed.elements() {
        let (low, high) = client
            .fetch_watermarks(e.topic(), e.partition(), LOOK_TIMEOUT)
            .inspect_err(|err| debug!(topic = e.topic(), error = %err, "group watch: watermarks"))
            .ok()?;
        let committed = match e.offset() {
            Offset::Offset(o) => o,
            _ => -1,
        };
        out.push(Position {
            topic: e.topic().to_owned(),
            partition: e.partition(),
            committed,
            low,
            high,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        let args = KafkaArgs::local("127.0.0.1:1", "");
        Watch::new(&args, "t", "g", vec![]).unwrap()
    }

    fn at(partition: i32, committed: i64, high: i64) -> Position {
        Position {
            topic: "t".into(),
            partition,
            committed,
            low: 0,
            high,
        }
    }

    #[test]
    fn a_partition_with_records_waiting_and_an_offset_that_does_not_move_is_unowned() {
        let mut w = watch();
        let t0 = Instant::now();
        let none = BTreeSet::new();
        // Partition 1 has records waiting; 2 has none; 0 too is still.
        let look = || Some(vec![at(0, 0, 50), at(1, 10, 20), at(2, 5, 5)]);
        assert_eq!(w.judge(look(), &none, t0), Verdict::Waiting);
        let late = t0 + w.session_timeout + Duration::from_secs(1);
        assert_eq!(
            w.judge(look(), &none, late),
            Verdict::Stuck { rejoin: true }
        );
        assert_eq!(w.unowned, Some(2));
        // Still stuck: the next rejoin waits for the back-off, which then doubles.
        let soon = late + Duration::from_secs(3);
        assert_eq!(
            w.judge(look(), &none, soon),
            Verdict::Stuck { rejoin: false }
        );
        let next = late + REJOIN_BACKOFF;
        assert_eq!(
            w.judge(look(), &none, next),
            Verdict::Stuck { rejoin: true }
        );
        assert_eq!(
            w.judge(look(), &none, next + REJOIN_BACKOFF),
            Verdict::Stuck { rejoin: false },
            "doubled"
        );
        assert_eq!(
            w.judge(look(), &none, next + REJOIN_BACKOFF * 2),
            Verdict::Stuck { rejoin: true }
        );
        let mine: BTreeSet<_> = [("t".to_owned(), 0)].into();
        let later = next + REJOIN_BACKOFF * 10;
        // Someone consumes it again: its offset moves; the back-off is back to the least.
        let moved = || Some(vec![at(0, 0, 50), at(1, 15, 20), at(2, 5, 5)]);
        assert_eq!(w.judge(moved(), &mine, later), Verdict::Waiting);
        assert_eq!(w.unowned, Some(0));
        assert_eq!(w.backoff, REJOIN_BACKOFF);
        // Then it stalls again. A member that holds partitions reports at once, and rejoins
        // only after its patience.
        let stuck = later + w.session_timeout + Duration::from_secs(1);
        assert_eq!(
            w.judge(moved(), &mine, stuck),
            Verdict::Stuck { rejoin: false }
        );
        assert_eq!(w.unowned, Some(1));
        let patience = w.session_timeout * HOLDER_PATIENCE;
        assert_eq!(
            w.judge(moved(), &mine, stuck + patience - Duration::from_secs(1)),
            Verdict::Stuck { rejoin: false }
        );
        assert_eq!(
            w.judge(moved(), &mine, stuck + patience),
            Verdict::Stuck { rejoin: true }
        );
        // Once it is ours, it is not counted however still it is.
        let all: BTreeSet<_> = (0..3).map(|p| ("t".to_owned(), p)).collect();
        assert_eq!(w.judge(moved(), &all, stuck + patience * 2), Verdict::Fine);
        assert_eq!(
            w.judge(None, &mine, stuck + patience * 2),
            Verdict::Fine,
            "unknown is not acted on"
        );
        assert_eq!(w.unowned, None);
    }

    #[test]
    fn a_partition_never_committed_counts_from_its_low_watermark() {
        let mut w = watch();
        let t0 = Instant::now();
        let none = BTreeSet::new();
        let late = t0 + w.session_timeout + Duration::from_secs(1);
        assert_eq!(w.judge(Some(vec![at(0, -1, 0)]), &none, t0), Verdict::Fine);
        assert_eq!(
            w.judge(Some(vec![at(0, -1, 0)]), &none, late),
            Verdict::Fine
        );
        assert_eq!(
            w.judge(Some(vec![at(0, -1, 3)]), &none, late),
            Verdict::Stuck { rejoin: true }
        );
    }
}
