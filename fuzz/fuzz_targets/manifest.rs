//! Manifests: `manifest.json` is the repository's only plaintext object, and
//! anyone who can write to the bucket can write one. The encrypted metadata
//! is no safer: its recipients are public keys, printed in the manifest.
//!
//! Properties: a manifest stockops accepts writes back and reads again to
//! the same bytes, and what restore, drill, pitr and prune compute from it
//! (the server's major version, the WAL segments a physical backup needs)
//! cannot panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockops::repository::catalog::{self, Manifest, Metadata, PhysicalMetadata};
use stockops::backup::wal::{self, WalName};

const OLD: &str = "000000010000000000000001";
const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn round_trip(m: &Manifest) {
    let json = serde_json::to_vec(m).expect("a manifest serialises");
    let again: Manifest = serde_json::from_slice(&json).expect("stockops reads what it writes");
    assert_eq!(serde_json::to_vec(&again).unwrap(), json);
}

/// What the commands compute from a manifest before touching anything.
fn use_it(m: &Manifest) {
    let _ = m.server_major();
    let _ = m.require_logical();
    let _ = m.object(catalog::DATA);
    if let Some(w) = &m.wal {
        // prune: which archived WAL files no kept backup needs.
        let archived = wal::parse_key(&WalName::parse(OLD).unwrap().key(SHA), 1).unwrap();
        let starts = [(w.timeline, w.start_segment.as_str())];
        let _ = wal::before(&[archived], &starts, w.segment_size);
        // pitr: the segment recovery ended in.
        if let Some(lsn) = wal::parse_lsn(&w.stop_lsn) {
            let _ = wal::lsn_segment(lsn, w.timeline, w.segment_size);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        round_trip(&m);
        use_it(&m);
    }
    let _ = serde_json::from_slice::<Metadata>(data);
    let _ = serde_json::from_slice::<PhysicalMetadata>(data);
});
