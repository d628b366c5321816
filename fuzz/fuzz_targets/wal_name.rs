//! WAL names and keys: PostgreSQL hands `wal push`/`wal fetch` a file name,
//! and the repository's listing (anyone who can write to the bucket) hands
//! `wal verify`, `prune` and recovery every `wal/...` key. An LSN comes from
//! a manifest or `--to-lsn`.
//!
//! Properties: an accepted name is one of PostgreSQL's four shapes, holds
//! no `/` or `..`, and its key reads back to the same name; an accepted key
//! is exactly the key its name would be stored under; an accepted LSN is
//! PostgreSQL's `X/X` with at most 8 hex digits a side, and renders back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockops::backup::wal::{self, Kind, WalName};

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn name(s: &str) {
    let Some(w) = WalName::parse(s) else { return };
    assert_eq!(w.name, s);
    assert!(
        s.is_ascii() && !s.contains('/') && !s.contains(".."),
        "{s:?}"
    );
    assert_eq!(Some(w.timeline), u32::from_str_radix(&s[..8], 16).ok());
    let len = match w.kind {
        Kind::Segment => 24,
        Kind::Partial => 32,
        Kind::History => 16,
        Kind::Backup => 40,
    };
    assert_eq!(s.len(), len, "{s:?} is a {:?}", w.kind);
    let key = w.key(SHA);
    let back = wal::parse_key(&key, 1).unwrap_or_else(|| panic!("{key} does not read back"));
    assert_eq!(
        (back.name, back.timeline, back.kind),
        (w.name, w.timeline, w.kind)
    );
    assert_eq!(back.sha256, SHA);
}

fn key(s: &str) {
    let Some(a) = wal::parse_key(s, 7) else {
        return;
    };
    let w = WalName::parse(&a.name).expect("an accepted key names a WAL file");
    assert_eq!(
        w.key(&a.sha256),
        s,
        "the key is the one its name is stored under"
    );
    assert_eq!(
        (a.timeline, a.kind, a.stored_bytes),
        (w.timeline, w.kind, 7)
    );
}

fn lsn(s: &str) {
    let Some(l) = wal::parse_lsn(s) else { return };
    let (hi, lo) = s.trim().split_once('/').expect("accepted");
    let grammar = |x: &str| (1..=8).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(
        grammar(hi) && grammar(lo),
        "{s:?} accepted as an LSN ({l:X})"
    );
    let rendered = format!("{:X}/{:X}", l >> 32, l & 0xFFFF_FFFF);
    let canonical = |x: &str| x.trim_start_matches('0').to_ascii_uppercase();
    assert_eq!(
        rendered,
        format!("{:0>1}/{:0>1}", canonical(hi), canonical(lo)),
        "{s:?}"
    );
}

fn segment(s: &str) {
    // Every size PostgreSQL allows (initdb --wal-segsize: 1 MiB to 1 GiB).
    for size in (20..=30).map(|bits| 1u64 << bits) {
        let Some((tl, n)) = wal::segment_number(s, size) else {
            return;
        };
        let per_id = 0x1_0000_0000 / size;
        if u64::from_str_radix(&s[16..24], 16).unwrap() < per_id {
            assert_eq!(wal::segment_name(tl, n, size), s, "size {size}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    name(s);
    key(s);
    lsn(s);
    segment(s);
});
