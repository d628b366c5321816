//! Order files: `import orders` reads whatever a reseller uploads (any
//! bytes, any encoding, any line ends) into typed lines and rejects.
//!
//! Properties: every accepted line holds what the api is promised (a
//! quantity in 1..=MAX_QUANTITY, a price in (0, MAX_PRICE] with at most two
//! decimals, a date from FIRST_DATE to the run's latest, trimmed non-empty
//! codes, the one reseller asked for); line numbers only grow; a reject's
//! raw text reads back as the same fields; and the result does not depend
//! on how the bytes arrive (a pipe hands them over in pieces).
//!
//! The first input byte chooses the run: bit 0 `--reseller R1`, the rest the
//! size of the pieces the file arrives in.
#![no_main]

use std::io::Read;

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use stockops::business::etl::reader::{Checks, OrderReader, Record, FIRST_DATE, MAX_PRICE, MAX_QUANTITY};

/// A reader that hands over at most `piece` bytes per call.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.piece.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Every record, and how reading ended (`Err` text when it failed); at most
/// as many records as the input has bytes, so a loop cannot hide.
fn read_all(
    input: impl Read,
    checks: Checks,
    limit: usize,
) -> Result<(char, Vec<Record>, Option<String>), String> {
    let mut reader = OrderReader::new(input, checks).map_err(|e| format!("{e:#}"))?;
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return Ok((reader.shape.delimiter, records, None)),
            Err(e) => return Ok((reader.shape.delimiter, records, Some(format!("{e:#}")))),
        }
        assert!(records.len() <= limit + 1, "more records than bytes");
    }
}

fn check_accepted(r: &Record, checks: &Checks) {
    let Ok(line) = &r.parsed else { return };
    assert!(
        (1..=MAX_QUANTITY).contains(&i64::from(line.quantity)),
        "{r:?}"
    );
    assert!(
        line.unit_price > Decimal::ZERO && line.unit_price <= Decimal::from(MAX_PRICE),
        "{r:?}"
    );
    assert!(line.unit_price.scale() <= 2, "{r:?}");
    let (y, m, d) = FIRST_DATE;
    let first = NaiveDate::from_ymd_opt(y, m, d).unwrap();
    assert!(
        line.order_date >= first && line.order_date <= checks.latest_date,
        "{r:?}"
    );
    for code in [&line.order_ref, &line.reseller, &line.sku] {
        assert!(!code.is_empty() && code.trim() == code.as_str(), "{r:?}");
    }
    if let Some(only) = &checks.reseller {
        assert!(line.reseller.eq_ignore_ascii_case(only), "{r:?}");
    }
}

/// The raw text stored with a reject reads back as one record, and those
/// fields, quoted where they need it, are the raw text again.
fn check_raw(r: &Record, delimiter: char) {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .has_headers(false)
        .flexible(true)
        .from_reader(r.raw.as_bytes());
    let mut fields = csv::StringRecord::new();
    assert!(csv.read_record(&mut fields).unwrap(), "{r:?}");
    assert!(
        !csv.read_record(&mut csv::StringRecord::new()).unwrap(),
        "{r:?} is one record"
    );
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([delimiter, '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_string()
            }
        })
        .collect();
    assert_eq!(quoted.join(&delimiter.to_string()), r.raw, "{fields:?}");
}

fn summary(result: &Result<(char, Vec<Record>, Option<String>), String>) -> String {
    match result {
        Err(e) => format!("header: {e}"),
        Ok((d, records, end)) => {
            let lines: Vec<String> = records
                .iter()
                .map(|r| format!("{} {:?} {:?}", r.line, r.raw, r.parsed))
                .collect();
            format!("{d:?} {lines:#?} {end:?}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&run, file)) = data.split_first() else {
        return;
    };
    let checks = Checks {
        reseller: (run & 1 == 1).then(|| "R1".to_string()),
        latest_date: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
    };
    let whole = read_all(file, checks.clone(), file.len());
    if let Ok((delimiter, records, _)) = &whole {
        let mut last = 1;
        for r in records {
            assert!(
                r.line > last,
                "line numbers only grow: {} after {last}",
                r.line
            );
            last = r.line;
            check_accepted(r, &checks);
            check_raw(r, *delimiter);
        }
    }
    let piece = usize::from(run >> 1) + 1;
    let pieces = read_all(Pieces { data: file, piece }, checks, file.len());
    assert_eq!(
        summary(&whole),
        summary(&pieces),
        "read in pieces of {piece} bytes"
    );
});
