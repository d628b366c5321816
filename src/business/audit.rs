//! Verifying the audit log's hash chain, outside the database.
//!
//! The server seals events into `audit.seals` in id order: position n holds
//! `sha256(chain(n-1) || event_hash)`, starting from 32 zero bytes, and
//! each event's hash is `sha256` of its canonical text (`audit.canonical`).
//! This module recomputes both from what `api.audit_chain` returns and names
//! the first record that does not match: an altered event, a removed one, a
//! gap in the chain. A head printed earlier (`POSITION:HASH`, to be recorded
//! in each backup's manifest) proves that nothing was cut off the end since.
//!
//! What it cannot see on its own: a superuser who rewrites an event *and*
//! every chain row after it. Against that, compare with a head kept outside
//! the database (`--expect-head`).

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::exit;

const PAGE: i32 = 10_000;

/// The end of the chain: its last position and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub position: i64,
    pub hash: [u8; 32],
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.position, hex(&self.hash))
    }
}

impl Serialize for Head {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::str::FromStr for Head {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let bad = || {
            exit::usage(format!(
                "expected a head as POSITION:HASH (64 hex digits), got {s:?}"
            ))
        };
        let (pos, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let position: i64 = pos.parse().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Head {
            position,
            hash: out,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Events sealed by this run before verifying.
    pub sealed_now: i32,
    /// Records checked in the chain.
    pub chained: i64,
    /// Events not sealed yet: recorded, not yet tamper-evident.
    pub unsealed: i64,
    pub head: Head,
    /// The first bad record, in words; None when everything verifies.
    pub problem: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ChainRow {
    chain_position: i64,
    event_id: i64,
    sealed_hash: Vec<u8>,
    /// The head a seal recorded, on the last event of each seal.
    seal_head: Option<Vec<u8>>,
    canonical: Option<String>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Check one chained record; `chain` is the chain value through it.
fn check(row: &ChainRow, expected_position: i64, chain: &[u8; 32]) -> Option<String> {
    let (id, pos) = (row.event_id, row.chain_position);
    if pos != expected_position {
        return Some(format!(
            "chain positions {expected_position}..{} are missing: sealed records were removed (the next one left is event {id})",
            pos - 1
        ));
    }
    let Some(canonical) = &row.canonical else {
        return Some(format!(
            "event {id} (position {pos}) was sealed and is gone: it was deleted"
        ));
    };
    if sha256(&[canonical.as_bytes()]).as_slice() != row.sealed_hash.as_slice() {
        return Some(format!(
            "event {id} (position {pos}) does not match the hash sealed for it: its content was altered"
        ));
    }
    if row
        .seal_head
        .as_ref()
        .is_some_and(|h| h.as_slice() != chain.as_slice())
    {
        return Some(format!(
            "the seal ending at position {pos} (event {id}) does not match the chain: the seal was altered"
        ));
    }
    None
}

/// Chain what can be chained. Two seals: the first sets a horizon at the
/// newest event, the second chains everything up to it, provided no
/// transaction that was running at the first is still running.
pub async fn seal(conn: &mut PgConnection) -> anyhow::Result<i32> {
    let mut sealed = 0;
    for _ in 0..2 {
        let n: i32 = sqlx::query_scalar("SELECT api.audit_seal()")
            .fetch_one(&mut *conn)
            .await
            .map_err(crate::db::explain)?;
        sealed += n;
    }
    Ok(sealed)
}

/// Seal (unless told not to), then verify the whole chain and the unsealed events.
pub async fn verify(
    conn: &mut PgConnection,
    seal_first: bool,
    expect: Option<Head>,
) -> anyhow::Result<Verification> {
    let sealed_now = if seal_first { seal(conn).await? } else { 0 };
    let mut head = Head {
        position: 0,
        hash: [0u8; 32],
    };
    let mut problem = None;
    let mut at_expected: Option<[u8; 32]> = None;
    'pages: loop {
        let rows: Vec<ChainRow> = sqlx::query_as(
            "SELECT chain_position, event_id, sealed_hash, seal_head, canonical
               FROM api.audit_chain(p_after_position => $1, p_limit => $2)",
        )
        .bind(head.position)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::db::explain)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let chain = sha256(&[&head.hash, &row.sealed_hash]);
            if let Some(p) = check(row, head.position + 1, &chain) {
                problem = Some(p);
                break 'pages;
            }
            head.position = row.chain_position;
            head.hash = chain;
            if expect.is_some_and(|e| e.position == head.position) {
                at_expected = Some(head.hash);
            }
        }
    }
    let unsealed: Vec<(i64, bool)> =
        sqlx::query_as("SELECT event_id, skipped FROM api.audit_unsealed()")
            .fetch_all(&mut *conn)
            .await
            .map_err(crate::db::explain)?;
    if problem.is_none() {
        problem = unsealed.iter().find(|(_, skipped)| *skipped).map(|(id, _)| {
            format!("event {id} is below the sealed point but not in the chain: it was inserted behind the chain")
        });
    }
    if let (None, Some(e)) = (&problem, expect) {
        problem = match at_expected {
            Some(h) if h == e.hash => None,
            Some(h) => Some(format!(
                "position {} has hash {}, expected {}: the log was rewritten since that head was taken",
                e.position,
                hex(&h),
                hex(&e.hash)
            )),
            None if e.position == 0 => None,
            None => Some(format!(
                "the expected head, position {}, is missing: the log now ends at position {}; records after it were removed",
                e.position, head.position
            )),
        };
    }
    Ok(Verification {
        sealed_now,
        chained: head.position,
        unsealed: unsealed.len() as i64,
        head,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips() {
        let h = Head {
            position: 42,
            hash: [0xab; 32],
        };
        let parsed: Head = h.to_string().parse().unwrap();
        assert_eq!(parsed, h);
        assert!("42:abc".parse::<Head>().is_err());
        assert!("x:".parse::<Head>().is_err());
    }

    #[test]
    fn a_chain_verifies_and_a_changed_byte_is_named() {
        let canonical =
            r#"["1", "0", "alice", null, "api.x", {}, null, null, null, "1"]"#.to_string();
        let event_hash = sha256(&[canonical.as_bytes()]);
        let zero = [0u8; 32];
        let chain = sha256(&[&zero, &event_hash]);
        let row = ChainRow {
            chain_position: 1,
            event_id: 1,
            sealed_hash: event_hash.to_vec(),
            seal_head: Some(chain.to_vec()),
            canonical: Some(canonical.clone()),
        };
        assert_eq!(check(&row, 1, &chain), None);
        assert!(check(&row, 2, &chain).unwrap().contains("missing"));
        assert!(check(&row, 1, &zero).unwrap().contains("seal was altered"));
        let altered = ChainRow {
            canonical: Some(canonical.replace("alice", "mallory")),
            ..row
        };
        assert!(check(&altered, 1, &zero)
            .unwrap()
            .contains("content was altered"));
    }
}
