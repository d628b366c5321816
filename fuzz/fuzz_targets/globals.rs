//! A backup's roles (`roles.json`): written from role settings any login
//! controls, and, by anyone who can write to the bucket and read the public
//! recipients, forgeable whole. `restore --with-globals` applies it as a
//! superuser, so what `Globals::parse` accepts must be safe to quote.
//!
//! Properties: an accepted object validates, every setting name is made of
//! words of the server's grammar (no quote, space or `;` reaches the
//! statement template), every role name fits a PostgreSQL name, and a list
//! setting splits into elements that, quoted again, split the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockops::backup::globals::{self, Globals};

fn requote(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("\"{}\"", i.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // The list grammar on its own, for any text.
        if let Some(items) = globals::split_list(text) {
            assert_eq!(globals::split_list(&requote(&items)).as_deref(), Some(&items[..]));
        }
        let _ = globals::looks_like_sql(text);
    }
    let Ok(g) = Globals::parse(data) else {
        return;
    };
    assert!(g.validate().is_ok());
    for s in &g.settings {
        let parts = globals::setting_name(&s.name).expect("validated");
        for p in parts {
            assert!(p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$'), "{p:?}");
        }
        assert!(!s.value.contains('\0'));
    }
    for r in &g.roles {
        assert!(!r.name.is_empty() && r.name.len() <= 63 && !r.name.contains('\0'));
    }
    let json = serde_json::to_vec(&g).unwrap();
    assert_eq!(Globals::parse(&json).unwrap(), g);
    let _ = g.suspicious();
});
