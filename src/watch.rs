//! `stockops watch`: every committed stock movement as one JSON line, within
//! a second of its commit, from the ledger's NOTIFY (migration 0004).
//!
//! Two connections: one LISTENs on `stockops_stock`, whose notifications
//! carry movement ids only (any login may LISTEN, so they carry nothing
//! else), the other asks `api.stock_changes` for the details, with the
//! connected login's privileges. Notifications are delivered at commit and
//! dropped on rollback, so a rolled-back change never appears.
//!
//! The ledger only notifies while a watcher is connected (a session named
//! `stockops watch`), so a transaction that looked before this watcher
//! connected and committed after it started would go unannounced: every few
//! seconds, and after each reconnection, the watcher also asks for what came
//! after the last id it printed, and prints what it had not.
//!
//! When the server goes away (a restart, a failover) the watcher says so,
//! reconnects with a bounded backoff, catches up on what was committed
//! meanwhile and goes on.

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
    /// The level of that product in that warehouse before and after.
    pub old_level: i32,
    pub new_level: i32,
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

/// Catch up this often even when notifications flow.
const SWEEP: Duration = Duration::from_secs(3);

/// What the listening task reports.
enum Heard {
    Payload(String),
    Lost(anyhow::Error),
}

/// LISTEN on its own task, so the main loop can wait on a channel (which is
/// cancel-safe) beside the sweep timer.
async fn listen(pool: &Pool<Postgres>) -> anyhow::Result<tokio::sync::mpsc::Receiver<Heard>> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        loop {
            let heard = match listener.try_recv().await {
                Ok(Some(n)) => Heard::Payload(n.payload().to_string()),
                Ok(None) => Heard::Lost(anyhow::anyhow!("the connection was closed")),
                Err(e) => Heard::Lost(e.into()),
            };
            let lost = matches!(heard, Heard::Lost(_));
            if tx.send(heard).await.is_err() || lost {
                return;
            }
        }
    });
    Ok(rx)
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

/// What has been printed: ids lately seen (a sweep may overlap what the
/// notifications brought) and the highest.
#[derive(Default)]
struct Printed {
    seen: BTreeSet<i64>,
    last: i64,
}

/// Print every movement after the last one printed; returns how many.
async fn sweep(
    conn: &mut PgConnection,
    filter: &Filter,
    printed: &mut Printed,
    sink: &mut (dyn Sink + Send),
) -> anyhow::Result<usize> {
    let mut count = 0;
    loop {
        let changes = fetch(conn, None, Some(printed.last)).await?;
        let n = changes.len();
        for c in changes {
            if emit_change(c, filter, printed, sink)? {
                count += 1;
            }
        }
        if n < BATCH as usize {
            return Ok(count);
        }
    }
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
    let mut printed: Option<Printed> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let opened = async {
            let heard = listen(&pool).await?;
            let conn = pool.acquire().await?.detach();
            anyhow::Ok((heard, conn))
        };
        let (mut heard, mut conn) = match opened.await {
            Ok(s) => s,
            Err(e) if printed.is_none() => {
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
        let state = match printed.as_mut() {
            None => {
                let head: i64 = sqlx::query_scalar("SELECT api.stock_changes_head()")
                    .fetch_one(&mut conn)
                    .await?;
                tracing::info!(from_movement = head, "watching stock changes");
                printed.insert(Printed {
                    seen: BTreeSet::new(),
                    last: head,
                })
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
            let payload = tokio::select! {
                h = heard.recv() => match h {
                    Some(Heard::Payload(p)) => p,
                    Some(Heard::Lost(e)) => break e,
                    None => break anyhow::anyhow!("the listening task ended"),
                },
                _ = tokio::time::sleep_until(next_sweep) => {
                    next_sweep = tokio::time::Instant::now() + SWEEP;
                    if let Err(e) = sweep(&mut conn, filter, state, sink).await {
                        break e;
                    }
                    continue;
                }
            };
            match Notice::parse(&payload) {
                Some(Notice::Movements(ids)) => match fetch(&mut conn, Some(&ids), None).await {
                    Ok(changes) => {
                        for c in changes {
                            emit_change(c, filter, state, sink)?;
                        }
                    }
                    Err(e) => break e,
                },
                Some(Notice::Bulk { count, first, last }) => {
                    state.last = state.last.max(last);
                    if filter.warehouse.is_none() && filter.sku.is_none() {
                        sink.emit(Event::Bulk {
                            bulk: true,
                            movements: count,
                            first_id: first,
                            last_id: last,
                        })?;
                    }
                }
                None => tracing::warn!(%payload, "ignored a notification not from stockops"),
            }
        };
        tracing::warn!(
            error = %crate::exit::one_line(&lost),
            "lost the connection to the server; reconnecting"
        );
    }
}

/// Print a change once; true when printed.
fn emit_change(
    c: Change,
    filter: &Filter,
    printed: &mut Printed,
    sink: &mut (dyn Sink + Send),
) -> std::io::Result<bool> {
    if !printed.seen.insert(c.movement_id) {
        return Ok(false);
    }
    while printed.seen.len() > 100_000 {
        printed.seen.pop_first();
    }
    printed.last = printed.last.max(c.movement_id);
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
