//! `stockops watch`: every committed stock movement as one JSON line, within
//! a second of its commit.
//!
//! What is printed comes only from committed ledger rows, read by id through
//! `api.stock_feed` with the connected login's privileges. A notification on
//! `stockops_stock` is only a wake-up: any login may `NOTIFY` on any channel,
//! so its payload is never read, and a forged one costs one extra look at the
//! ledger. While it is connected the watcher holds a shared advisory lock
//! ([`WATCH_LOCK`]); a statement that appends movements notifies when it
//! cannot take that lock (migration 0007), so nothing a session can set
//! decides whether its movements are announced. Every few seconds the watcher
//! also looks without being woken.
//!
//! Ids are handed out before commit, so a movement with a lower id may
//! commit after one with a higher id has been printed. The watcher keeps the
//! ids below the highest it read that it has not seen ([`Cursor`]), asks for
//! them again each time, and forgets one only once no transaction that could
//! still commit it is running (the horizon from `api.stock_feed_position`).
//!
//! When the server goes away (a restart, a failover) the watcher says so,
//! reconnects with a bounded backoff, catches up on what was committed
//! meanwhile and goes on.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, Pool, Postgres};

/// The NOTIFY channel migration 0007 wakes watchers on.
pub const CHANNEL: &str = "stockops_stock";

/// The advisory lock a watcher holds (shared) while connected; the ledger's
/// trigger notifies only when it cannot take it (migration 0007).
pub const WATCH_LOCK: i64 = 6_003_624_428_089_673_044;

/// At most this many movements fetched per call.
const BATCH: i32 = 10_000;

/// At most this many horizons waiting; beyond, the newest two are merged,
/// which only makes the watcher keep a gap longer.
const HORIZONS: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub warehouse: Option<String>,
    pub sku: Option<String>,
}

impl Filter {
    fn accepts(&self, c: &Change) -> bool {
        self.warehouse.as_deref().is_none_or(|w| w == c.warehouse)
            && self.sku.as_deref().is_none_or(|s| s == c.sku)
    }
}

/// One stock movement as printed: a committed ledger row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Change {
    pub movement_id: i64,
    pub sku: String,
    pub warehouse: String,
    pub kind: String,
    pub quantity: i32,
    /// The level of that product in that warehouse before and after.
    pub old_level: i32,
    pub new_level: i32,
    pub occurred_at: DateTime<Utc>,
    /// The login that made the change.
    pub actor: String,
}

/// A line of output.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Event {
    Change(Change),
}

/// Where events go: stdout for the command, a channel for the benchmark.
pub trait Sink {
    fn emit(&mut self, event: Event) -> std::io::Result<()>;
}

/// One JSON object a line on stdout, flushed at once.
pub struct JsonLines;

impl Sink for JsonLines {
    fn emit(&mut self, event: Event) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// Look at the ledger this often even when nothing wakes the watcher.
const SWEEP: Duration = Duration::from_secs(3);

/// Ids below the cursor not seen yet, as inclusive ranges (first → last): a
/// transaction still running may commit them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Gaps(BTreeMap<i64, i64>);

impl Gaps {
    fn add(&mut self, first: i64, last: i64) {
        if first <= last {
            self.0.insert(first, last);
        }
    }

    /// Remove `id`; true when it was a gap.
    fn take(&mut self, id: i64) -> bool {
        let Some((&first, &last)) = self.0.range(..=id).next_back() else {
            return false;
        };
        if id > last {
            return false;
        }
        self.0.remove(&first);
        self.add(first, id - 1);
        self.add(id + 1, last);
        true
    }

    /// Forget every id up to `through`: none of them can commit any more.
    fn settle(&mut self, through: i64) {
        let mut kept = self.0.split_off(&through.saturating_add(1));
        if let Some((_, &last)) = self.0.iter().next_back() {
            if last > through {
                kept.insert(through + 1, last);
            }
        }
        self.0 = kept;
    }

    fn arrays(&self) -> (Vec<i64>, Vec<i64>) {
        self.0.iter().map(|(f, l)| (*f, *l)).unzip()
    }
}

/// Where the watcher stands in the ledger.
#[derive(Debug)]
struct Cursor {
    /// The highest id read: every id up to it was printed, is a gap, or can
    /// no longer commit.
    after: i64,
    gaps: Gaps,
    /// The last id handed out as of the previous look.
    issued: Option<i64>,
    /// (an id handed out, the xmax of a snapshot taken after it was read):
    /// once a snapshot's xmin reaches that xmax, every transaction that could
    /// commit an id up to it has ended.
    horizons: VecDeque<(i64, i64)>,
}

impl Cursor {
    fn new(after: i64) -> Self {
        Self {
            after,
            gaps: Gaps::default(),
            issued: None,
            horizons: VecDeque::new(),
        }
    }

    /// Record where the ledger stands; returns the id through which every
    /// transaction has ended, if one was reached.
    fn position(&mut self, issued: i64, xmin: i64, xmax: i64) -> Option<i64> {
        if let Some(prev) = self.issued.replace(issued) {
            if self.horizons.len() >= HORIZONS {
                self.horizons.pop_back();
            }
            self.horizons.push_back((prev, xmax));
        }
        let mut settled = None;
        while let Some(&(id, x)) = self.horizons.front() {
            if x > xmin {
                break;
            }
            settled = Some(id);
            self.horizons.pop_front();
        }
        settled
    }

    /// A committed movement read from the ledger: true when not seen before.
    fn accept(&mut self, id: i64) -> bool {
        if id > self.after {
            self.gaps.add(self.after + 1, id - 1);
            self.after = id;
            true
        } else {
            self.gaps.take(id)
        }
    }
}

/// What the listening task reports: a wake-up, or the end of the connection.
enum Heard {
    Wake,
    Lost(anyhow::Error),
}

/// LISTEN on its own task, so the main loop can wait on a channel (which is
/// cancel-safe) beside the sweep timer. Payloads are dropped unread.
async fn listen(pool: &Pool<Postgres>) -> anyhow::Result<tokio::sync::mpsc::Receiver<Heard>> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let heard = match listener.try_recv().await {
                Ok(Some(_)) => Heard::Wake,
                Ok(None) => Heard::Lost(anyhow::anyhow!("the connection was closed")),
                Err(e) => Heard::Lost(e.into()),
            };
            let lost = matches!(heard, Heard::Lost(_));
            if lost {
                let _ = tx.send(heard).await;
                return;
            }
            // Room for one wake-up: while it waits, more are dropped, since
            // the look it causes sees what they announced (notifications
            // arrive after their commit). A flood costs a look at a time.
            if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(heard) {
                return;
            }
        }
    });
    Ok(rx)
}

async fn fetch(conn: &mut PgConnection, cursor: &Cursor) -> anyhow::Result<Vec<Change>> {
    let (from, to) = cursor.gaps.arrays();
    Ok(sqlx::query_as(
        "SELECT * FROM api.stock_feed(p_after => $1, p_gap_from => $2, p_gap_to => $3, p_limit => $4)",
    )
    .bind(cursor.after)
    .bind(from)
    .bind(to)
    .bind(BATCH)
    .fetch_all(conn)
    .await?)
}

/// Print every committed movement not printed yet; returns how many.
async fn sweep(
    conn: &mut PgConnection,
    filter: &Filter,
    cursor: &mut Cursor,
    sink: &mut (dyn Sink + Send),
) -> anyhow::Result<usize> {
    // 1. Where the ledger stands, before reading it: what this snapshot
    //    proves ended has committed rows every later read sees.
    let (issued, xmin, xmax): (i64, i64, i64) = sqlx::query_as(
        "SELECT issued, snapshot_xmin, snapshot_xmax FROM api.stock_feed_position()",
    )
    .fetch_one(&mut *conn)
    .await?;
    let settled = cursor.position(issued, xmin, xmax);
    // 2. The gaps and everything after the cursor, a batch at a time.
    let mut count = 0;
    loop {
        let changes = fetch(conn, cursor).await?;
        let n = changes.len();
        for c in changes {
            if cursor.accept(c.movement_id) && filter.accepts(&c) {
                sink.emit(Event::Change(c))?;
                count += 1;
            }
        }
        if n < BATCH as usize {
            break;
        }
    }
    // 3. Gaps no running transaction can fill any more are rolled back ids.
    if let Some(through) = settled {
        cursor.gaps.settle(through);
    }
    Ok(count)
}

/// Take the watch lock, shared, for as long as `conn` lives; false when
/// someone holds it exclusively. Never waits: a login holding it on purpose
/// must not keep the watcher from starting. Meanwhile every ledger statement
/// notifies (it cannot take the lock either), and the watcher tries again at
/// each look.
async fn take_watch_lock(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock_shared($1)")
        .bind(WATCH_LOCK)
        .fetch_one(conn)
        .await?;
    if !locked {
        tracing::warn!(
            lock = WATCH_LOCK,
            "another session holds the watch lock exclusively; looking at the ledger every few seconds until it is free"
        );
    }
    Ok(locked)
}

/// Watch until the sink fails (a closed stdout).
pub async fn run(
    opts: &PgConnectOptions,
    filter: &Filter,
    sink: &mut (dyn Sink + Send),
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<()> {
    let opts = opts.clone().application_name("stockops watch");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(opts);
    let mut ready = ready;
    let mut cursor: Option<Cursor> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let opened = async {
            let heard = listen(&pool).await?;
            let mut conn = pool.acquire().await?.detach();
            let locked = take_watch_lock(&mut conn).await?;
            anyhow::Ok((heard, conn, locked))
        };
        let (mut heard, mut conn, mut locked) = match opened.await {
            Ok(s) => s,
            Err(e) if cursor.is_none() => {
                return Err(e.context("connecting to watch stock changes"))
            }
            Err(e) => {
                tracing::warn!(error = %crate::exit::one_line(&e), retry_in_ms = backoff.as_millis() as u64, "still disconnected");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let state = match cursor.as_mut() {
            None => {
                let head: i64 = sqlx::query_scalar("SELECT api.stock_changes_head()")
                    .fetch_one(&mut conn)
                    .await?;
                tracing::info!(from_movement = head, "watching stock changes");
                cursor.insert(Cursor::new(head))
            }
            Some(state) => {
                let caught = sweep(&mut conn, filter, state, sink).await?;
                tracing::warn!(
                    caught_up = caught,
                    "reconnected to the server; changes committed while disconnected are above"
                );
                state
            }
        };
        if let Some(tx) = ready.take() {
            let _ = tx.send(());
        }
        let mut next_sweep = tokio::time::Instant::now() + SWEEP;
        let lost: anyhow::Error = loop {
            tokio::select! {
                h = heard.recv() => match h {
                    Some(Heard::Wake) => {}
                    Some(Heard::Lost(e)) => break e,
                    None => break anyhow::anyhow!("the listening task ended"),
                },
                _ = tokio::time::sleep_until(next_sweep) => {}
            }
            next_sweep = tokio::time::Instant::now() + SWEEP;
            if !locked {
                match take_watch_lock(&mut conn).await {
                    Ok(l) => locked = l,
                    Err(e) => break e,
                }
            }
            if let Err(e) = sweep(&mut conn, filter, state, sink).await {
                if e.downcast_ref::<std::io::Error>().is_some() {
                    return Err(e.context("printing a change"));
                }
                break e;
            }
        };
        tracing::warn!(
            error = %crate::exit::one_line(&lost),
            "lost the connection to the server; reconnecting"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_below_the_cursor_stay_wanted_until_taken() {
        let mut c = Cursor::new(10);
        assert!(c.accept(14));
        assert_eq!(c.gaps.arrays(), (vec![11], vec![13]));
        assert!(c.accept(12), "a lower id committed late is new");
        assert!(!c.accept(12), "printed once");
        assert!(!c.accept(14));
        assert!(!c.accept(9), "below where the watcher started");
        assert_eq!(c.gaps.arrays(), (vec![11, 13], vec![11, 13]));
    }

    #[test]
    fn gaps_are_forgotten_only_through_a_horizon() {
        let mut c = Cursor::new(0);
        c.accept(5);
        // First look: nothing to pair with yet.
        assert_eq!(c.position(5, 100, 100), None);
        // A transaction (xid 100) still runs: the horizon (5, 101) waits.
        assert_eq!(c.position(7, 100, 101), None);
        assert_eq!(c.position(7, 100, 103), None);
        // It ended: everything up to 5 is settled, and up to 7 once 103 is passed.
        assert_eq!(c.position(7, 102, 103), Some(5));
        c.gaps.settle(5);
        assert!(c.gaps.arrays().0.is_empty());
        assert_eq!(c.position(8, 103, 103), Some(7));
    }

    #[test]
    fn settling_splits_a_range() {
        let mut g = Gaps::default();
        g.add(3, 9);
        g.add(12, 12);
        g.settle(5);
        assert_eq!(g.arrays(), (vec![6, 12], vec![9, 12]));
        g.settle(i64::MAX);
        assert_eq!(g.arrays(), (vec![], vec![]));
    }

    #[test]
    fn horizons_stay_bounded() {
        let mut c = Cursor::new(0);
        for i in 0..1000 {
            assert_eq!(c.position(i, 1, 2 + i), None);
        }
        assert!(c.horizons.len() <= HORIZONS);
        assert_eq!(c.position(1000, 5000, 5000), Some(999));
    }
}
