//! Watching the consumer group for partitions nobody consumes.
//!
//! A group coordinator can leave a group in a state where some input partitions have no
//! owner: seen on tansu 0.6 when a member was killed (`kill -9`) and its replacement joined
//! within the session timeout; the replacement was assigned nothing, indefinitely. Apache
//! Kafka expires the dead member after the session timeout and rebalances, but nothing in the
//! client notices either way. So the engine describes its own group every
//! [`CHECK_EVERY`] (one `DescribeGroups` and one metadata request, off the loop's thread) and:
//! - exports the count of unowned input partitions (`shelfguard_unowned_partitions`);
//! - reports not-ready while any stay unowned for longer than the session timeout;
//! - then leaves and rejoins the group (unsubscribe + subscribe), at most once per
//!   [`REJOIN_BACKOFF`]; on Apache Kafka that is an ordinary rebalance, harmless.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::config::KafkaArgs;

/// How often the group is described.
pub const CHECK_EVERY: Duration = Duration::from_secs(3);
/// Longest one description may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two rejoins.
pub const REJOIN_BACKOFF: Duration = Duration::from_secs(30);

/// What one description of the group found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// Input (topic, partition) pairs that exist.
    pub partitions: BTreeSet<(String, i32)>,
    /// Those owned by some member.
    pub owned: BTreeSet<(String, i32)>,
    /// Members of the group.
    pub members: usize,
}

impl Ownership {
    pub fn unowned(&self) -> usize {
        self.partitions.difference(&self.owned).count()
    }

    /// Something is wrong when a partition has no owner, or when this member holds none
    /// although the group has no more members than partitions (every assignor then gives
    /// each member at least one: the others' share includes a dead member's).
    fn idle(&self, mine: usize) -> bool {
        self.unowned() > 0
            || (mine == 0 && !self.partitions.is_empty() && self.members <= self.partitions.len())
    }
}

/// What the loop should do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition has an owner (or the group could not be described: nothing to act on).
    Fine,
    /// Partitions are unowned, not yet for longer than the session timeout.
    Waiting,
    /// Partitions have been unowned for longer than the session timeout: not ready.
    Stuck { rejoin: bool },
}

/// The state of the watch between checks.
pub struct Watch {
    client: Arc<BaseConsumer>,
    group: String,
    topics: Vec<String>,
    session_timeout: Duration,
    /// The check running now, if any.
    running: Option<JoinHandle<Option<Ownership>>>,
    last_check: Option<Instant>,
    /// Since when partitions have been unowned.
    unowned_since: Option<Instant>,
    last_rejoin: Option<Instant>,
    /// The latest finding (None: unknown).
    pub latest: Option<Ownership>,
}

impl Watch {
    pub fn new(
        args: &KafkaArgs,
        service: &str,
        group: &str,
        topics: Vec<String>,
    ) -> anyhow::Result<Self> {
        let client: BaseConsumer = args.reader(&format!("{service}-group-watch")).create()?;
        Ok(Self {
            client: Arc::new(client),
            group: group.to_owned(),
            topics,
            session_timeout: args.session_timeout(),
            running: None,
            last_check: None,
            unowned_since: None,
            last_rejoin: None,
            latest: None,
        })
    }

    /// Starts a check when one is due, and takes the result of a finished one. Never blocks.
    /// `mine`: how many input partitions this member holds now.
    pub fn poll(&mut self, now: Instant, mine: usize) -> Option<Verdict> {
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
            .last_check
            .is_some_and(|t| now.duration_since(t) < CHECK_EVERY)
        {
            return None;
        }
        self.last_check = Some(now);
        let (client, group, topics) =
            (self.client.clone(), self.group.clone(), self.topics.clone());
        self.running = Some(tokio::task::spawn_blocking(move || {
            describe(&client, &group, &topics)
        }));
        None
    }

    fn judge(&mut self, found: Option<Ownership>, mine: usize, now: Instant) -> Verdict {
        self.latest = found.clone();
        let Some(o) = found else {
            self.unowned_since = None;
            return Verdict::Fine;
        };
        if !o.idle(mine) {
            self.unowned_since = None;
            return Verdict::Fine;
        }
        let since = *self.unowned_since.get_or_insert(now);
        if now.duration_since(since) <= self.session_timeout {
            return Verdict::Waiting;
        }
        let rejoin = self
            .last_rejoin
            .is_none_or(|t| now.duration_since(t) >= REJOIN_BACKOFF);
        if rejoin {
            self.last_rejoin = Some(now);
            self.unowned_since = None;
        }
        Verdict::Stuck { rejoin }
    }
}

/// Describes `group`: which input partitions exist and which its members own.
fn describe(client: &BaseConsumer, group: &str, topics: &[String]) -> Option<Ownership> {
    let mut partitions = BTreeSet::new();
    for t in topics {
        let md = client
            .fetch_metadata(Some(t), DESCRIBE_TIMEOUT)
            .inspect_err(|e| debug!(topic = t, error = %e, "metadata for the group watch"))
            .ok()?;
        for mt in md.topics() {
            for p in mt.partitions() {
                partitions.insert((mt.name().to_owned(), p.id()));
            }
        }
    }
    let groups = client
        .fetch_group_list(Some(group), DESCRIBE_TIMEOUT)
        .inspect_err(|e| debug!(group, error = %e, "describing the group"))
        .ok()?;
    let g = groups.groups().iter().find(|g| g.name() == group)?;
    let mut owned = BTreeSet::new();
    for m in g.members() {
        match m.assignment().map(parse_assignment) {
            Some(Some(parts)) => owned.extend(parts),
            Some(None) => {
                warn!(
                    group,
                    member = m.id(),
                    "unreadable member assignment: group watch skipped"
                );
                return None;
            }
            None => {}
        }
    }
    owned.retain(|tp| partitions.contains(tp));
    Some(Ownership {
        partitions,
        owned,
        members: g.members().len(),
    })
}

/// Parses a consumer-protocol member assignment (version, [topic, [partition]], user data).
pub fn parse_assignment(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut r = Reader(bytes);
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let _version = r.i16()?;
    let topics = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = r.i16()?;
        let name = String::from_utf8(r.take(usize::try_from(len).ok()?)?.to_vec()).ok()?;
        let n = r.i32()?;
        for _ in 0..n.max(0) {
            out.push((name.clone(), r.i32()?));
        }
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes());
        b
    }

    #[test]
    fn assignments_parse() {
        let b = assignment(&[("a", &[0, 2]), ("bb", &[1])]);
        assert_eq!(
            parse_assignment(&b),
            Some(vec![("a".into(), 0), ("a".into(), 2), ("bb".into(), 1)])
        );
        assert_eq!(parse_assignment(&[]), Some(vec![]));
        assert_eq!(parse_assignment(&b[..5]), None);
    }

    fn watch() -> Watch {
        let args = KafkaArgs::local("127.0.0.1:1", "");
        Watch::new(&args, "t", "g", vec![]).unwrap()
    }

    fn ownership(owned: &[i32]) -> Option<Ownership> {
        Some(Ownership {
            partitions: (0..3).map(|p| ("t".to_owned(), p)).collect(),
            owned: owned.iter().map(|p| ("t".to_owned(), *p)).collect(),
            members: 1,
        })
    }

    #[test]
    fn unowned_partitions_are_stuck_after_the_session_timeout_and_rejoin_is_rate_limited() {
        let mut w = watch();
        let t0 = Instant::now();
        assert_eq!(w.judge(ownership(&[0, 1, 2]), 1, t0), Verdict::Fine);
        assert_eq!(w.judge(ownership(&[0]), 1, t0), Verdict::Waiting);
        let late = t0 + w.session_timeout + Duration::from_secs(1);
        assert_eq!(
            w.judge(ownership(&[0]), 1, late),
            Verdict::Stuck { rejoin: true }
        );
        // Still stuck right after the rejoin: the back-off holds the next one.
        let later = late + w.session_timeout + Duration::from_secs(2);
        assert_eq!(
            w.judge(ownership(&[0]), 1, late + Duration::from_secs(1)),
            Verdict::Waiting
        );
        assert_eq!(
            w.judge(ownership(&[0]), 1, later),
            Verdict::Stuck { rejoin: false }
        );
        assert_eq!(
            w.judge(ownership(&[0]), 1, late + REJOIN_BACKOFF),
            Verdict::Stuck { rejoin: true }
        );
        assert_eq!(
            w.judge(None, 1, later),
            Verdict::Fine,
            "unknown is not acted on"
        );
        assert_eq!(w.judge(ownership(&[0, 1, 2]), 1, later), Verdict::Fine);
    }
}
