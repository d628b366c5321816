//! The tar entry filter: a physical backup's tar is written by whoever can
//! write to the bucket and extracted as root, so `untar::admit` is the line
//! between the archive and the host.
//!
//! Input: one byte for the member's type, four for its mode, then its path
//! and link name separated by a NUL.
//!
//! Properties: whatever is admitted lands under the target (relative, no
//! `..`, no root); links, devices and FIFOs are never admitted as files or
//! directories; a symlink is admitted only under `pg_tblspc/` and only to a
//! declared tablespace location.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use stockops::recovery::untar::{admit, Admitted, EntryHeaderView, Kind, Rules};

const TABLESPACE: &str = "/srv/tablespace";

fn kind(b: u8) -> Kind {
    match b % 10 {
        0 => Kind::File,
        1 => Kind::Directory,
        2 => Kind::Symlink,
        3 => Kind::HardLink,
        4 => Kind::CharDevice,
        5 => Kind::BlockDevice,
        6 => Kind::Fifo,
        7 => Kind::PaxGlobal,
        _ => Kind::Other(b),
    }
}

fn stays_inside(p: &Path) {
    assert!(p.is_relative(), "{p:?} is not relative");
    assert!(
        p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
        "{p:?} leaves the target"
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let kind = kind(data[0]);
    let mode = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let rest = &data[5..];
    let (path, link) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let rules = Rules {
        tablespaces: vec![TABLESPACE.into()],
    };
    let entry = EntryHeaderView {
        path,
        kind,
        mode,
        link,
        size: u64::from(data[0]),
    };
    match admit(&entry, &rules) {
        Ok(Admitted::Directory(p)) => {
            assert_eq!(kind, Kind::Directory);
            stays_inside(&p);
        }
        Ok(Admitted::File { path, .. }) => {
            assert_eq!(kind, Kind::File, "a {kind:?} admitted as a file");
            stays_inside(&path);
        }
        Ok(Admitted::Symlink { path, target }) => {
            assert_eq!(kind, Kind::Symlink);
            stays_inside(&path);
            assert!(path.starts_with("pg_tblspc"), "a symlink at {path:?}");
            assert!(target.starts_with(TABLESPACE), "a symlink to {target:?}");
        }
        Ok(Admitted::Skip) => assert!(
            matches!(kind, Kind::Directory | Kind::PaxGlobal),
            "a {kind:?} skipped silently"
        ),
        Err(_) => {}
    }
});
