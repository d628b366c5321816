//! `stockops watch`: every committed stock movement as one JSON line, within
//! a second of its commit, from the ledger's NOTIFY (migration 0004).
//!
//! Two connections: one LISTENs on `stockops_stock`, whose notifications
//! carry movement ids only (any login may LISTEN, so they carry nothing
//! else), the other asks `api.stock_changes` for the details, with the
//! connected login's privileges. Notifications are delivered at commit and
//! dropped on rollback, so a rolled-back change never appears.
//!
//! When the server goes away (a restart, a failover) the watcher says so,
//! reconnects with a bounded backoff, catches up on what was committed
//! meanwhile (`p_after` the last id it printed) and goes on.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, Pool, Postgres};

/// The NOTIFY channel migration 0004 sends on.
pub const CHANNEL: &str = "stockops_stock";

/// At most this many movements fetched per call.
const BATCH: i32 = 10_000;

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

/// One stock movement as printed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Change {
    pub movement_id: i64,
    pub sku: String,
    pub warehouse: String,
    pub kind: String,
    pub quantity: i32,
    /// Level before and after; absent when the feed's side table no longer
    /// has them (older than the last million movements, or after a crash).
    pub old_level: Option<i32>,
    pub new_level: Option<i32>,
    pub occurred_at: DateTime<Utc>,
    /// The login that made the change.
    pub actor: String,
}

/// What one notification announces.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    Movements(Vec<i64>),
    /// A statement of many movements (a seed, a bulk load): not itemised.
    Bulk {
        count: i64,
        first: i64,
        last: i64,
    },
}

impl Notice {
    pub fn parse(payload: &str) -> Option<Self> {
        if let Some(rest) = payload.strip_prefix("bulk ") {
            let mut it = rest.split(' ').map(str::parse::<i64>);
            return match (it.next(), it.next(), it.next()) {
                (Some(Ok(count)), Some(Ok(first)), Some(Ok(last))) => {
                    Some(Notice::Bulk { count, first, last })
                }
                _ => None,
            };
        }
        payload
            .split(',')
            .map(|id| id.parse::<i64>().ok())
            .collect::<Option<Vec<_>>>()
            .map(Notice::Movements)
    }
}

/// A line of output.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Event {
    Change(Change),
    Bulk {
        bulk: bool,
        movements: i64,
        first_id: i64,
        last_id: i64,
    },
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

struct Session {
    listener: PgListener,
    conn: PgConnection,
}

async fn open(pool: &Pool<Postgres>) -> anyhow::Result<Session> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let conn = pool.acquire().await?.detach();
    Ok(Session { listener, conn })
}

async fn fetch(
    conn: &mut PgConnection,
    ids: Option<&[i64]>,
    after: Option<i64>,
) -> anyhow::Result<Vec<Change>> {
    Ok(
        sqlx::query_as(
            "SELECT * FROM api.stock_changes(p_ids => $1, p_after => $2, p_limit => $3)",
        )
        .bind(ids)
        .bind(after)
        .bind(BATCH)
        .fetch_all(conn)
        .await?,
    )
}

/// Watch until the sink fails (a closed stdout) or, with `stop`, until it fires.
pub async fn run(
    opts: &PgConnectOptions,
    filter: &Filter,
    sink: &mut dyn Sink,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<()> {
    let opts = opts.clone().application_name("stockops watch");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(opts);
    let mut ready = ready;
    // Ids printed lately: a catch-up after a reconnection may overlap what
    // the notifications already brought.
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut last: Option<i64> = None;
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let mut session = match open(&pool).await {
            Ok(s) => s,
            Err(e) if first => return Err(e.context("connecting to watch stock changes")),
            Err(e) => {
                tracing::warn!(error = %crate::exit::one_line(&e), retry_in_ms = backoff.as_millis() as u64, "still disconnected");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        match last {
            None => {
                let head: i64 = sqlx::query_scalar("SELECT api.stock_changes_head()")
                    .fetch_one(&mut session.conn)
                    .await?;
                last = Some(head);
                tracing::info!(from_movement = head, "watching stock changes");
            }
            Some(after) => {
                let mut caught = 0usize;
                let mut from = after;
                loop {
                    let changes = fetch(&mut session.conn, None, Some(from)).await?;
                    let n = changes.len();
                    for c in changes {
                        from = from.max(c.movement_id);
                        if emit_change(c, filter, &mut seen, &mut last, sink)? {
                            caught += 1;
                        }
                    }
                    if n < BATCH as usize {
                        break;
                    }
                }
                tracing::warn!(
                    caught_up = caught,
                    "reconnected to the server; changes committed while disconnected are above"
                );
            }
        }
        first = false;
        if let Some(tx) = ready.take() {
            let _ = tx.send(());
        }
        // Notifications until the connection drops.
        let dropped = loop {
            match session.listener.try_recv().await {
                Ok(Some(n)) => match Notice::parse(n.payload()) {
                    Some(Notice::Movements(ids)) => {
                        let changes = match fetch(&mut session.conn, Some(&ids), None).await {
                            Ok(c) => c,
                            Err(e) => break e,
                        };
                        for c in changes {
                            emit_change(c, filter, &mut seen, &mut last, sink)?;
                        }
                    }
                    Some(Notice::Bulk {
                        count,
                        first,
                        last: to,
                    }) => {
                        last = Some(last.unwrap_or(0).max(to));
                        if filter.warehouse.is_none() && filter.sku.is_none() {
                            sink.emit(Event::Bulk {
                                bulk: true,
                                movements: count,
                                first_id: first,
                                last_id: to,
                            })?;
                        }
                    }
                    None => tracing::warn!(
                        payload = n.payload(),
                        "ignored a notification not from stockops"
                    ),
                },
                Ok(None) => break anyhow::anyhow!("the connection was closed"),
                Err(e) => break e.into(),
            }
        };
        tracing::warn!(
            error = %crate::exit::one_line(&dropped),
            "lost the connection to the server; reconnecting"
        );
    }
}

/// Print a change once; true when printed.
fn emit_change(
    c: Change,
    filter: &Filter,
    seen: &mut BTreeSet<i64>,
    last: &mut Option<i64>,
    sink: &mut dyn Sink,
) -> std::io::Result<bool> {
    if !seen.insert(c.movement_id) {
        return Ok(false);
    }
    while seen.len() > 100_000 {
        seen.pop_first();
    }
    *last = Some(last.unwrap_or(0).max(c.movement_id));
    if !filter.accepts(&c) {
        return Ok(false);
    }
    sink.emit(Event::Change(c))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(Notice::parse("7"), Some(Notice::Movements(vec![7])));
        assert_eq!(
            Notice::parse("7,9,12"),
            Some(Notice::Movements(vec![7, 9, 12]))
        );
        assert_eq!(
            Notice::parse("bulk 1000 5 1004"),
            Some(Notice::Bulk {
                count: 1000,
                first: 5,
                last: 1004
            })
        );
        assert_eq!(Notice::parse("bulk 1000 5"), None);
        assert_eq!(Notice::parse("hello"), None);
        assert_eq!(Notice::parse(""), None);
    }
}
