//! Backup ids: a repository lister, `--backup` and a manifest's `id` hand
//! stockops a string that becomes part of every object key of the backup.
//!
//! Property: an accepted id is exactly `YYYYMMDDTHHMMSSZ-xxxx` (21 ASCII
//! bytes), so a key built from it stays under its own `backups/<id>/`; and
//! every id stockops makes (years 0 to 9999) is accepted.
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use stockops::repository::catalog;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if catalog::is_id(s) {
            let b = s.as_bytes();
            assert_eq!(b.len(), 21, "{s:?}");
            for (i, &c) in b.iter().enumerate() {
                let ok = match i {
                    8 => c == b'T',
                    15 => c == b'Z',
                    16 => c == b'-',
                    17..=20 => c.is_ascii_hexdigit(),
                    _ => c.is_ascii_digit(),
                };
                assert!(ok, "{s:?} accepted with {:?} at {i}", c as char);
            }
            let key = catalog::key(s, catalog::MANIFEST);
            assert_eq!(key.matches('/').count(), 2, "{key}");
            assert!(!key.contains(".."), "{key}");
        }
    }
    // Whatever the clock says, a new id is an id.
    if let Ok(bytes) = <[u8; 8]>::try_from(data) {
        // 0000-01-01 to 9999-12-31 in seconds since the epoch.
        let secs =
            i64::from_le_bytes(bytes).rem_euclid(253_402_300_800 + 62_167_219_200) - 62_167_219_200;
        let now = DateTime::from_timestamp(secs, 0).expect("in range");
        let id = catalog::new_id(now);
        assert!(catalog::is_id(&id), "new_id({now}) = {id:?}");
    }
});
